//! The window queue (叫号) over HTTP, on both backends: numbers per unit per day that
//! concurrent issuing never duplicates, the queue's order, call-next that two clerks never
//! share, a linked request called with its ticket (its window clock starts), a walk-in linked
//! later, the waiting times in the SLA statistics, and every refusal.
//!
//! The actors: a clerk of `market` (the queue's unit, and the lead of `market.ip-dispute`), a
//! clerk of `justice` (co-unit of that matter), a clerk of `tax` (unrelated), supervisors, the
//! enterprise.

use chrono::{Duration, SubsecRound, Utc};
use diesel::prelude::*;
use futures_util::future::join_all;
use mashangban::auth::Actor;
use mashangban::db::tickets::{self, NewTicket, Official};
use mashangban::domain::UnitCode;
use mashangban::domain::ticket::TicketKind;
use serde_json::{Value, json};

use crate::helpers::{TestApp, connect, problem, submit};
use crate::on_both_backends;
use crate::requests::matter_body;

/// Led by `market`, with `justice` as co-operating unit.
const JOINT: &str = "market.ip-dispute";

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn ok(app: &TestApp, token: &str, path: &str, body: Value, status: u16) -> Value {
    let response = post(app, token, path, body.clone()).await;
    let got = response.status().as_u16();
    let json: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{path} {body}: {json}");
    json
}

async fn walk_in(app: &TestApp, token: &str, body: Value) -> Value {
    ok(app, token, "/api/v1/tickets", body, 201).await
}

async fn queue(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/tickets{query}"), Some(token))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn numbers(queue: &Value) -> Vec<String> {
    queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_str().unwrap().to_string())
        .collect()
}

/// An appointment ticket issued the way check-in will issue it.
fn appointment(app: &TestApp, slot_minutes_from_now: i64) -> tickets::Ticket {
    let now = Utc::now().trunc_subsecs(6);
    let mut conn = connect(app);
    tickets::issue(
        &mut conn,
        &NewTicket {
            unit: UnitCode::Market,
            kind: TicketKind::Appointment,
            appointment_id: Some(uuid_like()),
            request_id: None,
            uscc: Some(crate::helpers::USCC_A.into()),
            matter: Some("market.establish".into()),
            counter: None,
            slot_start: Some(now + Duration::minutes(slot_minutes_from_now)),
            by: Official {
                subject: "kiosk-1".into(),
                role: "clerk".into(),
                unit: Some("market".into()),
            },
            at: now,
        },
    )
    .unwrap()
}

fn uuid_like() -> String {
    format!("appointment-{}", Utc::now().timestamp_nanos_opt().unwrap())
}

async fn numbers_run_per_unit_and_the_queue_is_in_calling_order(app: &TestApp) {
    let market = app.clerk_token(UnitCode::Market);
    let tax = app.clerk_token(UnitCode::Tax);
    let first = walk_in(
        app,
        &market,
        json!({"uscc": crate::helpers::USCC_A, "counter": "3"}),
    )
    .await;
    assert_eq!(first["number"], "A001");
    assert_eq!(first["kind"], "walk_in");
    assert_eq!(first["state"], "waiting");
    assert_eq!(first["counter"], "3");
    assert!(first["waiting_seconds"].as_i64().unwrap() >= 0);
    let second = walk_in(app, &market, json!({})).await;
    assert_eq!(second["number"], "A002");
    // Another unit's numbers are its own.
    assert_eq!(walk_in(app, &tax, json!({})).await["number"], "B001");
    // An appointment checked in early waits behind the walk-ins; one in its slot goes first.
    let early = appointment(app, 60);
    let due = appointment(app, -5);
    assert_eq!(
        (early.number.as_str(), due.number.as_str()),
        ("A003", "A004")
    );
    let list = queue(app, &market, "").await;
    assert_eq!(list["unit"], "market");
    assert_eq!(numbers(&list), ["A004", "A001", "A002", "A003"]);
    assert_eq!(list["items"][0]["kind"], "appointment");
    // The tax queue holds only its own.
    assert_eq!(numbers(&queue(app, &tax, "").await), ["B001"]);
    // A unit supervisor sees the unit's queue; the district names the unit; another day is empty.
    let head = app.token(Actor::Supervisor(Some(UnitCode::Market)));
    assert_eq!(numbers(&queue(app, &head, "").await).len(), 4);
    let district = app.token(Actor::Supervisor(None));
    assert_eq!(numbers(&queue(app, &district, "?unit=tax").await), ["B001"]);
    assert!(numbers(&queue(app, &market, "?date=2020-01-02").await).is_empty());
    // Every issue is audited on the ticket's own trail.
    let mut conn = connect(app);
    use mashangban::db::schema::audit_events;
    let trail: Vec<String> = audit_events::table
        .filter(audit_events::request_id.eq(format!("ticket:{}", first["id"].as_str().unwrap())))
        .select(audit_events::action)
        .load(&mut conn)
        .unwrap();
    assert_eq!(trail, ["ticket_issued"]);
}

async fn concurrent_issuing_never_repeats_a_number(app: &TestApp) {
    let market = app.clerk_token(UnitCode::Market);
    let issued = join_all((0..16).map(|_| walk_in(app, &market, json!({})))).await;
    // And a second "instance" issuing straight into the database at the same time.
    let url = app.settings.database.url.clone();
    let settings = app.settings.database.clone();
    let direct = std::thread::spawn(move || {
        let url = mashangban::db::DatabaseUrl::parse(&url).unwrap();
        (0..8)
            .map(|_| {
                let mut conn = mashangban::db::establish(&url, &settings).unwrap();
                tickets::issue(
                    &mut conn,
                    &NewTicket {
                        unit: UnitCode::Market,
                        kind: TicketKind::WalkIn,
                        appointment_id: None,
                        request_id: None,
                        uscc: None,
                        matter: None,
                        counter: None,
                        slot_start: None,
                        by: Official {
                            subject: "other-instance".into(),
                            role: "clerk".into(),
                            unit: Some("market".into()),
                        },
                        at: Utc::now().trunc_subsecs(6),
                    },
                )
                .unwrap()
                .number
            })
            .collect::<Vec<_>>()
    });
    let mut all: Vec<String> = issued
        .iter()
        .map(|t| t["number"].as_str().unwrap().to_string())
        .collect();
    all.extend(direct.join().unwrap());
    all.sort();
    let expected: Vec<String> = (1..=24).map(|n| format!("A{n:03}")).collect();
    assert_eq!(all, expected);
}

async fn two_clerks_pressing_next_never_get_the_same_ticket(app: &TestApp) {
    let market = app.clerk_token(UnitCode::Market);
    for _ in 0..8 {
        walk_in(app, &market, json!({})).await;
    }
    let clerks: Vec<String> = (0..10)
        .map(|i| app.token_for(&format!("clerk-{i}"), Actor::Clerk(UnitCode::Market)))
        .collect();
    let answers = join_all(
        clerks
            .iter()
            .map(|token| post(app, token, "/api/v1/tickets/next", json!({"counter": "3"}))),
    )
    .await;
    let mut called = Vec::new();
    let mut nobody = 0;
    for answer in answers {
        match answer.status().as_u16() {
            200 => {
                let body: Value = answer.json().await.unwrap();
                assert_eq!(body["ticket"]["state"], "called");
                assert_eq!(body["ticket"]["called_counter"], "3");
                assert!(body.get("request").is_none(), "{body}");
                called.push(body["ticket"]["number"].as_str().unwrap().to_string());
            }
            204 => nobody += 1,
            other => panic!("unexpected {other}"),
        }
    }
    called.sort();
    let expected: Vec<String> = (1..=8).map(|n| format!("A{n:03}")).collect();
    assert_eq!(called, expected);
    assert_eq!(nobody, 2);
    let list = queue(app, &market, "").await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "called")
    );
}

/// The request's `window_intake` clock.
fn window_clock(request: &Value) -> Value {
    request["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "window_intake")
        .cloned()
        .unwrap_or_else(|| panic!("no window clock in {request}"))
}

async fn a_linked_ticket_calls_its_request_and_the_window_clock_runs(app: &TestApp) {
    let market = app.clerk_token(UnitCode::Market);
    let request = submit(app, &matter_body(JOINT)).await;
    let id = request["id"].as_str().unwrap();
    assert_eq!(request["status"], "submitted");
    let ticket = walk_in(app, &market, json!({"request": id, "matter": JOINT})).await;
    assert_eq!(ticket["request_id"], id);
    let called = ok(app, &market, "/api/v1/tickets/next", json!({}), 200).await;
    assert_eq!(called["ticket"]["id"], ticket["id"]);
    assert_eq!(called["request"]["status"], "called");
    assert_eq!(window_clock(&called["request"])["state"], "running");
    // The request's own trail has the call, naming the ticket.
    let mut conn = connect(app);
    use mashangban::db::schema::audit_events;
    let payloads: Vec<String> = audit_events::table
        .filter(audit_events::request_id.eq(id))
        .filter(audit_events::action.eq("call"))
        .select(audit_events::payload)
        .load(&mut conn)
        .unwrap();
    assert_eq!(payloads.len(), 1);
    let payload: Value = serde_json::from_str(&payloads[0]).unwrap();
    assert_eq!(payload["ticket"]["number"], ticket["number"]);
    // Done, then the ticket is closed.
    let path = format!("/api/v1/tickets/{}/actions", ticket["id"].as_str().unwrap());
    let done = ok(app, &market, &path, json!({"action": "done"}), 200).await;
    assert_eq!(done["ticket"]["state"], "done");
    let again = problem(
        post(app, &market, &path, json!({"action": "call"})).await,
        409,
    )
    .await;
    assert_eq!(again["code"], "action_not_allowed");
    assert_eq!(again["state"], "done");
    assert_eq!(again["allowed"], json!([]));
}

async fn a_walk_in_linked_after_its_call_calls_the_request_then(app: &TestApp) {
    let market = app.clerk_token(UnitCode::Market);
    let ticket = walk_in(app, &market, json!({})).await;
    let tid = ticket["id"].as_str().unwrap();
    let path = format!("/api/v1/tickets/{tid}/actions");
    // Called by name; nobody comes; called again; then it is linked.
    let called = ok(
        app,
        &market,
        &path,
        json!({"action": "call", "counter": "5"}),
        200,
    )
    .await;
    assert_eq!(called["ticket"]["called_counter"], "5");
    let first_call = called["ticket"]["called_at"].clone();
    let missed = ok(app, &market, &path, json!({"action": "no_answer"}), 200).await;
    assert_eq!(missed["ticket"]["state"], "no_answer");
    let recalled = ok(app, &market, &path, json!({"action": "call"}), 200).await;
    assert_eq!(recalled["ticket"]["state"], "called");
    // Waiting is measured to the first call.
    assert_eq!(recalled["ticket"]["called_at"], first_call);
    let request = submit(app, &matter_body(JOINT)).await;
    let rid = request["id"].as_str().unwrap();
    let link = format!("/api/v1/tickets/{tid}/request");
    let linked = ok(app, &market, &link, json!({"request": rid}), 200).await;
    assert_eq!(linked["ticket"]["request_id"], rid);
    assert_eq!(linked["request"]["status"], "called");
    assert_eq!(window_clock(&linked["request"])["state"], "running");
    // Linking again to the same request changes nothing; to another one is refused.
    let same = ok(app, &market, &link, json!({"request": rid}), 200).await;
    assert!(same.get("request").is_none());
    let other = submit(app, &matter_body(JOINT)).await;
    let refused = problem(
        post(app, &market, &link, json!({"request": other["id"]})).await,
        409,
    )
    .await;
    assert_eq!(refused["code"], "action_not_allowed");
    // A waiting ticket linked does not call its request.
    let waiting = walk_in(app, &market, json!({})).await;
    let link = format!(
        "/api/v1/tickets/{}/request",
        waiting["id"].as_str().unwrap()
    );
    let linked = ok(app, &market, &link, json!({"request": other["id"]}), 200).await;
    assert!(linked.get("request").is_none());
    let read = app
        .get(
            &format!("/api/v1/requests/{}", other["id"].as_str().unwrap()),
            Some(&market),
        )
        .await;
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["status"], "submitted");
}

async fn waiting_times_appear_in_the_sla_statistics(app: &TestApp) {
    let market = app.clerk_token(UnitCode::Market);
    let ticket = walk_in(app, &market, json!({})).await;
    let quick = walk_in(app, &market, json!({})).await;
    // The first visitor checked in ten minutes ago.
    {
        use mashangban::db::schema::tickets as t;
        let mut conn = connect(app);
        diesel::update(t::table.find(ticket["id"].as_str().unwrap()))
            .set(t::issued_at.eq((Utc::now() - Duration::minutes(10)).naive_utc()))
            .execute(&mut conn)
            .unwrap();
    }
    for _ in 0..2 {
        ok(app, &market, "/api/v1/tickets/next", json!({}), 200).await;
    }
    let district = app.token(Actor::Supervisor(None));
    let stats: Value = app
        .get("/api/v1/sla/stats", Some(&district))
        .await
        .json()
        .await
        .unwrap();
    let waiting = stats["waiting"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{stats}");
    assert_eq!(waiting[0]["unit"], "market");
    assert_eq!(waiting[0]["called"], 2);
    let p95 = waiting[0]["p95_wait_seconds"].as_i64().unwrap();
    assert!((600..660).contains(&p95), "{p95}");
    assert!(waiting[0]["median_wait_seconds"].as_i64().unwrap() < 60);
    let _ = quick;
    // A tax supervisor sees only tax: nothing waited there.
    let tax_head = app.token(Actor::Supervisor(Some(UnitCode::Tax)));
    let stats: Value = app
        .get("/api/v1/sla/stats", Some(&tax_head))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["waiting"], json!([]));
}

async fn every_refusal(app: &TestApp) {
    let market = app.clerk_token(UnitCode::Market);
    let justice = app.clerk_token(UnitCode::Justice);
    let tax = app.clerk_token(UnitCode::Tax);
    let enterprise = app.enterprise_token();
    let head = app.token(Actor::Supervisor(Some(UnitCode::Market)));
    let district = app.token(Actor::Supervisor(None));
    // Only clerks issue and call.
    for token in [&enterprise, &head, &district, &app.admin_token()] {
        problem(post(app, token, "/api/v1/tickets", json!({})).await, 403).await;
        problem(
            post(app, token, "/api/v1/tickets/next", json!({})).await,
            403,
        )
        .await;
    }
    // No token.
    let anonymous = app
        .client
        .post(app.url("/api/v1/tickets"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // Bad members, all at once; nothing issued.
    let bad = problem(
        post(
            app,
            &market,
            "/api/v1/tickets",
            json!({"uscc": "123", "matter": "no.such", "counter": "x".repeat(21)}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(bad["errors"].as_array().unwrap().len(), 3, "{bad}");
    problem(
        post(app, &market, "/api/v1/tickets", json!({"surprise": 1})).await,
        422,
    )
    .await;
    problem(
        post(
            app,
            &market,
            "/api/v1/tickets/next",
            json!({"counter": " "}),
        )
        .await,
        422,
    )
    .await;
    assert!(numbers(&queue(app, &market, "").await).is_empty());
    // The queue: the enterprise may not read it; a unit supervisor only their unit's; the
    // district must name the unit; a bad date or unit is a 422.
    problem(app.get("/api/v1/tickets", Some(&enterprise)).await, 403).await;
    problem(app.get("/api/v1/tickets?unit=tax", Some(&head)).await, 403).await;
    problem(
        app.get("/api/v1/tickets?unit=tax", Some(&market)).await,
        403,
    )
    .await;
    problem(app.get("/api/v1/tickets", Some(&district)).await, 422).await;
    problem(
        app.get("/api/v1/tickets?unit=mars", Some(&district)).await,
        422,
    )
    .await;
    problem(
        app.get("/api/v1/tickets?date=2026-13-01", Some(&market))
            .await,
        422,
    )
    .await;
    // A ticket for a request: the co-unit does not lead it (403), an unrelated unit does not
    // see it (404), nor does anyone a request that does not exist.
    let request = submit(app, &matter_body(JOINT)).await;
    let rid = request["id"].as_str().unwrap();
    let not_lead = problem(
        post(app, &justice, "/api/v1/tickets", json!({"request": rid})).await,
        403,
    )
    .await;
    assert_eq!(not_lead["code"], "not_lead_unit");
    problem(
        post(app, &tax, "/api/v1/tickets", json!({"request": rid})).await,
        404,
    )
    .await;
    problem(
        post(app, &market, "/api/v1/tickets", json!({"request": "nope"})).await,
        404,
    )
    .await;
    // Another unit's ticket is a 404 to every step; a missing one too.
    let ticket = walk_in(app, &market, json!({})).await;
    let tid = ticket["id"].as_str().unwrap();
    let path = format!("/api/v1/tickets/{tid}/actions");
    let link = format!("/api/v1/tickets/{tid}/request");
    problem(post(app, &tax, &path, json!({"action": "call"})).await, 404).await;
    problem(post(app, &tax, &link, json!({"request": rid})).await, 404).await;
    problem(
        post(
            app,
            &market,
            "/api/v1/tickets/nope/actions",
            json!({"action": "call"}),
        )
        .await,
        404,
    )
    .await;
    for token in [&enterprise, &head] {
        problem(
            post(app, token, &path, json!({"action": "call"})).await,
            403,
        )
        .await;
        problem(post(app, token, &link, json!({"request": rid})).await, 403).await;
    }
    // Not in the ticket's state; a counter where it means nothing; an unknown action.
    let early = problem(
        post(app, &market, &path, json!({"action": "done"})).await,
        409,
    )
    .await;
    assert_eq!(early["code"], "action_not_allowed");
    assert_eq!(early["state"], "waiting");
    assert_eq!(early["allowed"], json!(["call"]));
    problem(
        post(
            app,
            &market,
            &path,
            json!({"action": "no_answer", "counter": "1"}),
        )
        .await,
        422,
    )
    .await;
    problem(
        post(app, &market, &path, json!({"action": "dance"})).await,
        422,
    )
    .await;
    // Linking: an empty id, a request the unit does not lead, one it does not see.
    problem(
        post(app, &market, &link, json!({"request": " "})).await,
        422,
    )
    .await;
    let taxes = submit(app, &matter_body("tax.registration")).await;
    problem(
        post(app, &market, &link, json!({"request": taxes["id"]})).await,
        404,
    )
    .await;
    // The ticket is unchanged by all of that.
    let list = queue(app, &market, "").await;
    assert_eq!(list["items"][0]["state"], "waiting");
    assert_eq!(list["items"][0]["revision"], 1);
    assert!(list["items"][0]["request_id"].is_null());
}

on_both_backends!(
    numbers_run_per_unit_and_the_queue_is_in_calling_order,
    concurrent_issuing_never_repeats_a_number,
    two_clerks_pressing_next_never_get_the_same_ticket,
    a_linked_ticket_calls_its_request_and_the_window_clock_runs,
    a_walk_in_linked_after_its_call_calls_the_request_then,
    waiting_times_appear_in_the_sla_statistics,
    every_refusal,
);
