//! 容缺后补 through the real server: a request accepted with a material missing, the material
//! supplied later (online by the enterprise or by an official holding its 帮办 grant, or at the
//! window by a clerk of the lead unit),
//! delivery held until it arrives, its clock's warning and breach, and every refusal.
//!
//! Time is moved the way tests/api/clocks.rs does: the material clock's stored `warn_at`,
//! `due_at` and `check_at` are set to just ahead of now, and the test waits for the detector.

use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use mashangban::auth::Actor;
use mashangban::domain::{UnitCode, Uscc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, act, act_ok as ok, connect, post_if_match, problem, submit};
use crate::on_both_backends;
use crate::requests::{USCC_B, matter_body};

const SHA: &str = "C0FFEE00C0FFEE00C0FFEE00C0FFEE00C0FFEE00C0FFEE00C0FFEE00C0FFEE00";

/// `matter` submitted without its deferrable material `missing`, with the form changed by
/// `form`; answers the created request.
async fn deferred(app: &TestApp, matter: &str, missing: &str, form: Value) -> Value {
    let body = deferred_body(matter, missing, form);
    submit(app, &body).await
}

fn deferred_body(matter: &str, missing: &str, form: Value) -> Value {
    let mut body = matter_body(matter);
    let before = body["materials"].as_array().unwrap().len();
    body["materials"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["code"] != missing);
    assert_eq!(body["materials"].as_array().unwrap().len(), before - 1);
    for (key, value) in form.as_object().unwrap() {
        body["form"][key] = value.clone();
    }
    body
}

fn id_of(request: &Value) -> String {
    request["id"].as_str().unwrap().to_string()
}

fn material<'a>(request: &'a Value, code: &str) -> &'a Value {
    request["materials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["code"] == code)
        .unwrap_or_else(|| panic!("no material {code} in {request}"))
}

fn material_clocks(request: &Value) -> Vec<&Value> {
    request["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "material")
        .collect()
}

/// The one material clock of the request.
fn material_clock(request: &Value) -> &Value {
    let clocks = material_clocks(request);
    assert_eq!(clocks.len(), 1, "{request}");
    clocks[0]
}

async fn read(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/requests/{id}"), Some(&app.admin_token()))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn supply_body(code: &str, at_window: Option<bool>) -> Value {
    let mut body =
        json!({"code": code, "name": format!("{code}.pdf"), "size_bytes": 4096, "sha256": SHA});
    if let Some(flag) = at_window {
        body["received_at_window"] = json!(flag);
    }
    body
}

/// POSTs a supply as `token`, with the `ETag` that token reads.
async fn supply(app: &TestApp, token: &str, id: &str, body: &Value) -> reqwest::Response {
    post_if_match(
        app,
        token,
        &format!("/api/v1/requests/{id}/materials"),
        &format!("/api/v1/requests/{id}"),
        body,
    )
    .await
}

async fn supply_ok(app: &TestApp, token: &str, id: &str, body: &Value) -> (String, Value) {
    let response = supply(app, token, id, body).await;
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let json: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{json}");
    (etag, json)
}

/// The outbox rows of `kind` about request `id`.
async fn mails(app: &TestApp, id: &str, kind: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/api/v1/notifications?limit=100&request_id={id}&kind={kind}"),
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

/// The audit events of `action` on request `id`.
async fn events(app: &TestApp, id: &str, action: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/api/v1/requests/{id}/events"),
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

/// Takes `clerk` through call … complete on a single matter.
async fn up_to_completed(app: &TestApp, clerk: &str, id: &str) -> Value {
    let mut last = Value::Null;
    for action in ["call", "accept", "start_review", "approve", "complete"] {
        last = ok(app, clerk, id, json!({"action": action})).await;
    }
    assert_eq!(last["status"], "completed");
    last
}

async fn deliver(app: &TestApp, clerk: &str, id: &str) -> reqwest::Response {
    act(
        app,
        clerk,
        id,
        json!({"action": "deliver", "certificate": "91310107MA1G000009"}),
    )
    .await
}

async fn supplied_online_and_delivered_after(app: &TestApp) {
    let created = deferred(app, "market.establish", "premises_proof", json!({})).await;
    let id = id_of(&created);
    // Pending, with a material clock of its five working days, from receipt, due with it.
    let pending = material(&created, "premises_proof");
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["received_at_window"], false);
    assert!(pending["supplied_at"].is_null());
    let clock = material_clock(&created);
    assert_eq!(clock["state"], "running");
    assert_eq!(clock["target"], "5 working_days");
    assert_eq!(clock["unit"], "market");
    assert_eq!(clock["started_at"], created["created_at"]);
    assert_eq!(clock["due_at"], pending["due_at"]);
    // Every other material is provided and has no clock.
    assert_eq!(
        created["materials"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["status"] == "pending")
            .count(),
        1
    );

    // The lifecycle steps leave the material clock alone.
    let clerk = app.clerk_token(UnitCode::Market);
    let completed = up_to_completed(app, &clerk, &id).await;
    let clock = material_clock(&completed);
    assert_eq!(clock["state"], "running");
    assert!(clock["stopped_at"].is_null());

    // Delivery waits for the material.
    let refused = problem(deliver(app, &clerk, &id).await, 409).await;
    assert_eq!(refused["code"], "materials_pending");
    assert_eq!(refused["materials"], json!(["premises_proof"]));
    assert_eq!(read(app, &id).await["status"], "completed");

    // The enterprise supplies it online.
    let (etag, after) = supply_ok(
        app,
        &app.enterprise_token(),
        &id,
        &supply_body("premises_proof", None),
    )
    .await;
    let read_etag = app
        .get(&format!("/api/v1/requests/{id}"), Some(&app.admin_token()))
        .await
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(etag, read_etag, "the answer carries the new revision");
    assert_eq!(etag, "\"r7\"", "intake r1, five steps, the supply");
    let supplied = material(&after, "premises_proof");
    assert_eq!(supplied["status"], "provided");
    assert_eq!(supplied["sha256"], SHA.to_ascii_lowercase());
    assert_eq!(supplied["size_bytes"], 4096);
    assert_eq!(supplied["name"], "premises_proof.pdf");
    assert_eq!(supplied["received_at_window"], false);
    assert!(supplied["supplied_at"].is_string());
    assert_eq!(supplied["due_at"], pending["due_at"], "the due time stays");
    let clock = material_clock(&after);
    assert_eq!(clock["state"], "met");
    assert_eq!(clock["stopped_at"], supplied["supplied_at"]);
    assert_eq!(
        after["status"], "completed",
        "supplying is not a lifecycle step"
    );

    // Audited with what arrived, and the lead unit is told.
    let audited = events(app, &id, "material.supplied").await;
    assert_eq!(audited.len(), 1);
    let payload = &audited[0]["payload"];
    assert_eq!(payload["code"], "premises_proof");
    assert_eq!(payload["name"], "premises_proof.pdf");
    assert_eq!(payload["sha256"], SHA.to_ascii_lowercase());
    assert_eq!(payload["size"], 4096);
    assert_eq!(payload["received_at_window"], false);
    assert_eq!(audited[0]["role"], "enterprise");
    let met: Vec<Value> = events(app, &id, "clock.met")
        .await
        .into_iter()
        .filter(|e| e["payload"]["kind"] == "material")
        .collect();
    assert_eq!(met.len(), 1);
    assert_eq!(met[0]["payload"]["clock"], clock["id"]);
    let told = mails(app, &id, "material_supplied").await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["recipient"], "supervisor.market@putuo.sh.gov.cn");
    assert!(
        told[0]["subject"]
            .as_str()
            .unwrap()
            .contains("容缺材料已补交"),
        "{}",
        told[0]
    );

    // Now it may be delivered; afterwards nothing more is taken.
    let response = deliver(app, &clerk, &id).await;
    assert_eq!(response.status(), 200);
    let after: Value = response.json().await.unwrap();
    assert_eq!(after["status"], "delivered");
    let closed = problem(
        supply(
            app,
            &app.enterprise_token(),
            &id,
            &supply_body("premises_proof", None),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(closed["code"], "action_not_allowed");
    assert_eq!(closed["state"], "delivered");
}

async fn received_at_the_window_by_the_lead_unit(app: &TestApp) {
    let created = deferred(
        app,
        "construction.permit",
        "supervision_contract",
        json!({"heritage_protection": false}),
    )
    .await;
    let id = id_of(&created);
    assert_eq!(created["lead_unit"], "construction");
    assert_eq!(material_clock(&created)["unit"], "construction");
    let clerk = app.clerk_token(UnitCode::Construction);
    up_to_completed(app, &clerk, &id).await;
    assert_eq!(
        problem(deliver(app, &clerk, &id).await, 409).await["materials"],
        json!(["supervision_contract"])
    );

    let (_, after) = supply_ok(
        app,
        &clerk,
        &id,
        &supply_body("supervision_contract", Some(true)),
    )
    .await;
    let supplied = material(&after, "supervision_contract");
    assert_eq!(supplied["status"], "provided");
    assert_eq!(supplied["received_at_window"], true);
    assert_eq!(material_clock(&after)["state"], "met");
    let audited = events(app, &id, "material.supplied").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0]["role"], "clerk");
    assert_eq!(audited[0]["unit"], "construction");
    assert_eq!(audited[0]["payload"]["received_at_window"], true);
    let told = mails(app, &id, "material_supplied").await;
    assert_eq!(told.len(), 1);
    assert_eq!(
        told[0]["recipient"],
        "supervisor.construction@putuo.sh.gov.cn"
    );

    let response = deliver(app, &clerk, &id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "delivered"
    );
}

async fn a_matter_may_deliver_before_its_materials(app: &TestApp) {
    let created = deferred(app, "market.multi-site-filing", "premises_proof", json!({})).await;
    let id = id_of(&created);
    let clerk = app.clerk_token(UnitCode::Market);
    up_to_completed(app, &clerk, &id).await;
    let response = deliver(app, &clerk, &id).await;
    assert_eq!(response.status(), 200, "deliver_before_materials");
    let delivered: Value = response.json().await.unwrap();
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(material(&delivered, "premises_proof")["status"], "pending");
    assert_eq!(material_clock(&delivered)["state"], "running");
    // The material still follows, and stops its clock.
    let (_, after) = supply_ok(
        app,
        &app.enterprise_token(),
        &id,
        &supply_body("premises_proof", None),
    )
    .await;
    assert_eq!(material(&after, "premises_proof")["status"], "provided");
    assert_eq!(material_clock(&after)["state"], "met");
    assert_eq!(after["status"], "delivered");
}

/// Moves the clock so that it warns at `warn` and falls due at `due`.
fn fall_due(app: &TestApp, clock_id: &str, warn: NaiveDateTime, due: NaiveDateTime) {
    use mashangban::db::schema::clocks;
    let changed = diesel::update(clocks::table.find(clock_id))
        .set((
            clocks::warn_at.eq(warn),
            clocks::due_at.eq(due),
            clocks::check_at.eq(warn.min(due)),
        ))
        .execute(&mut connect(app))
        .unwrap();
    assert_eq!(changed, 1);
}

/// Polls until `check` holds on the request (at most ten seconds: a generous bound, not a
/// timing under test).
async fn eventually(app: &TestApp, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let request = read(app, id).await;
        if check(&request) {
            return request;
        }
        assert!(std::time::Instant::now() < until, "never: {request}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn an_overdue_material_reminds_the_enterprise_then_the_supervisor(app: &TestApp) {
    let created = deferred(app, "market.establish", "premises_proof", json!({})).await;
    let id = id_of(&created);
    let clock_id = material_clock(&created)["id"].as_str().unwrap().to_string();
    assert!(mails(app, &id, "material_due").await.is_empty());

    // The warning comes first and stays alone for a while; then the due time.
    let now = Utc::now().naive_utc();
    fall_due(
        app,
        &clock_id,
        now + chrono::TimeDelta::milliseconds(200),
        now + chrono::TimeDelta::hours(1),
    );
    let warned = eventually(app, &id, |r| material_clock(r)["warned_at"].is_string()).await;
    assert_eq!(material_clock(&warned)["state"], "running");
    let reminders = mails(app, &id, "material_due").await;
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0]["recipient"], "office@example.com");
    assert!(
        reminders[0]["subject"]
            .as_str()
            .unwrap()
            .contains("容缺材料即将到期 / deferred material due soon")
    );
    // The warning is the enterprise's business, not the unit's.
    assert!(mails(app, &id, "clock_warning").await.is_empty());

    let now = Utc::now().naive_utc();
    fall_due(
        app,
        &clock_id,
        now - chrono::TimeDelta::minutes(1),
        now + chrono::TimeDelta::milliseconds(200),
    );
    let breached = eventually(app, &id, |r| material_clock(r)["state"] == "breached").await;
    assert!(material_clock(&breached)["stopped_at"].is_null());
    let escalated = mails(app, &id, "clock_breached").await;
    assert_eq!(escalated.len(), 1, "{escalated:?}");
    assert_eq!(
        escalated[0]["recipient"],
        "supervisor.market@putuo.sh.gov.cn"
    );
    assert_eq!(
        mails(app, &id, "material_due").await.len(),
        1,
        "reminded once"
    );
    // A late material is the enterprise's lateness: not in the unit's on-time rate, unless
    // asked for by kind.
    let now = Utc::now();
    let period = format!(
        "from={}&to={}",
        (now - chrono::TimeDelta::days(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (now + chrono::TimeDelta::minutes(1)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let stats = |query: String| async move {
        let response = app
            .get(
                &format!("/api/v1/sla/stats?group_by=unit&{query}"),
                Some(&app.admin_token()),
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let all = stats(period.clone()).await;
    assert!(all["groups"].as_array().unwrap().is_empty(), "{all}");
    let materials = stats(format!("kind=material&{period}")).await;
    assert_eq!(materials["groups"][0]["key"], "market", "{materials}");
    assert_eq!(materials["groups"][0]["breached"], 1, "{materials}");

    // Supplied late: the clock stops, still breached.
    let (_, after) = supply_ok(
        app,
        &app.enterprise_token(),
        &id,
        &supply_body("premises_proof", None),
    )
    .await;
    let clock = material_clock(&after);
    assert_eq!(clock["state"], "breached");
    assert!(clock["stopped_at"].is_string());
    assert_eq!(events(app, &id, "clock.stopped_late").await.len(), 1);
}

async fn every_refusal_is_the_right_one(app: &TestApp) {
    // Joint review: construction leads, planning gives its opinion on its own task.
    let created = deferred(
        app,
        "construction.joint-review",
        "design_contract",
        json!({"heritage_protection": false}),
    )
    .await;
    let id = id_of(&created);
    let units: Vec<&str> = created["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["unit"].as_str().unwrap())
        .collect();
    assert!(units.contains(&"planning"), "{units:?}");
    let good = supply_body("design_contract", None);
    let window = supply_body("design_contract", Some(true));

    // Not the caller's to see: 404, as for a missing id.
    let other = app.token(Actor::Enterprise(Uscc::parse(USCC_B).unwrap()));
    let hidden = problem(supply(app, &other, &id, &good).await, 404).await;
    assert_eq!(hidden["code"], "not_found");
    let market = app.clerk_token(UnitCode::Market);
    assert_eq!(
        problem(supply(app, &market, &id, &window).await, 404).await["code"],
        "not_found"
    );
    let market_head = app.token(Actor::Supervisor(Some(UnitCode::Market)));
    assert_eq!(
        problem(supply(app, &market_head, &id, &good).await, 404).await["code"],
        "not_found"
    );
    let missing = problem(
        supply(
            app,
            &app.enterprise_token(),
            "0193f2a4-7c1e-7d2a-9b3c-1a2b3c4d5e6f",
            &good,
        )
        .await,
        404,
    )
    .await;
    assert_eq!(missing["code"], hidden["code"]);

    // A co-unit sees it but is not the lead.
    let planning = app.clerk_token(UnitCode::Planning);
    let co = problem(supply(app, &planning, &id, &window).await, 403).await;
    assert_eq!(co["code"], "not_lead_unit");
    let head = app.token(Actor::Supervisor(Some(UnitCode::Construction)));
    assert_eq!(
        problem(supply(app, &head, &id, &window).await, 403).await["code"],
        "forbidden"
    );

    // The flag must fit the caller.
    let lead = app.clerk_token(UnitCode::Construction);
    let flag = problem(supply(app, &lead, &id, &good).await, 422).await;
    assert_eq!(flag["errors"][0]["pointer"], "/received_at_window");
    let flag = problem(
        supply(app, &app.enterprise_token(), &id, &window).await,
        422,
    )
    .await;
    assert_eq!(flag["errors"][0]["pointer"], "/received_at_window");

    // Unknown code, bad file facts: 422 with pointers.
    let owner = app.enterprise_token();
    let unknown = problem(
        supply(app, &owner, &id, &supply_body("planning_permit", None)).await,
        422,
    )
    .await;
    assert_eq!(unknown["code"], "validation_failed");
    assert_eq!(unknown["errors"][0]["pointer"], "/code");
    assert!(
        unknown["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("design_contract"),
        "lists the matter's materials: {unknown}"
    );
    let bad = problem(
        supply(
            app,
            &owner,
            &id,
            &json!({"code": "design_contract", "name": "", "size_bytes": 0, "sha256": "abc", "colour": "red"}),
        )
        .await,
        422,
    )
    .await;
    let mut pointers: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    pointers.sort_unstable();
    assert_eq!(pointers, ["/colour", "/name", "/sha256", "/size_bytes"]);

    // A material of the matter that is not pending.
    let provided = problem(
        supply(app, &owner, &id, &supply_body("survey_report", None)).await,
        409,
    )
    .await;
    assert_eq!(provided["code"], "material_not_pending");
    assert_eq!(provided["pending"], json!(["design_contract"]));

    // If-Match: missing, then stale.
    let path = format!("/api/v1/requests/{id}/materials");
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&owner)
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(response, 428).await["code"],
        "precondition_required"
    );
    ok(app, &lead, &id, json!({"action": "call"})).await;
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&owner)
        .header("If-Match", "\"r1\"")
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["etag"], "\"r2\"");
    assert_eq!(problem(response, 412).await["code"], "precondition_failed");

    // None of that changed anything.
    let now = read(app, &id).await;
    assert_eq!(material(&now, "design_contract")["status"], "pending");
    assert_eq!(material_clock(&now)["state"], "running");
    assert!(events(app, &id, "material.supplied").await.is_empty());

    // Supplied once; a second time it is no longer pending.
    supply_ok(app, &owner, &id, &good).await;
    let again = problem(supply(app, &owner, &id, &good).await, 409).await;
    assert_eq!(again["code"], "material_not_pending");
    assert_eq!(again["pending"], json!([]));
    assert_eq!(events(app, &id, "material.supplied").await.len(), 1);
}

async fn a_withdrawn_request_cancels_the_material_clock(app: &TestApp) {
    let created = deferred(app, "market.establish", "premises_proof", json!({})).await;
    let id = id_of(&created);
    let after = ok(
        app,
        &app.enterprise_token(),
        &id,
        json!({"action": "withdraw"}),
    )
    .await;
    assert_eq!(after["status"], "withdrawn");
    let clock = material_clock(&after);
    assert_eq!(clock["state"], "cancelled");
    assert!(clock["stopped_at"].is_string());
    let closed = problem(
        supply(
            app,
            &app.enterprise_token(),
            &id,
            &supply_body("premises_proof", None),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(closed["code"], "action_not_allowed");
    assert_eq!(closed["state"], "withdrawn");
    assert_eq!(
        material(&read(app, &id).await, "premises_proof")["status"],
        "pending"
    );
}

async fn the_material_is_due_when_its_clock_is_after_a_calendar_change(app: &TestApp) {
    let created = deferred(app, "market.establish", "premises_proof", json!({})).await;
    let id = id_of(&created);
    let due_before = material_clock(&created)["due_at"]
        .as_str()
        .unwrap()
        .to_string();
    let due = chrono::DateTime::parse_from_rfc3339(&due_before)
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Shanghai);
    let date = due.format("%Y-%m-%d").to_string();
    let response = app
        .client
        .put(app.url(&format!("/api/v1/calendars/cn-shanghai/days/{date}")))
        .bearer_auth(app.admin_token())
        .json(&json!({"kind": "holiday"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let after = read(app, &id).await;
    let due_after = material_clock(&after)["due_at"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(due_after > due_before, "{due_before} -> {due_after}");
    assert_eq!(
        material(&after, "premises_proof")["due_at"],
        due_after.as_str()
    );
}

async fn heritage_projects_may_not_defer_or_commit(app: &TestApp) {
    let submit_raw = |body: Value| async move {
        app.client
            .post(app.url("/api/v1/requests"))
            .bearer_auth(app.enterprise_token())
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    // Relying on 容缺 with heritage protection.
    let body = deferred_body(
        "construction.permit",
        "supervision_contract",
        json!({"heritage_protection": true}),
    );
    let refused = problem(submit_raw(body).await, 422).await;
    assert_eq!(refused["errors"].as_array().unwrap().len(), 1, "{refused}");
    assert_eq!(refused["errors"][0]["pointer"], "/materials");
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("`heritage-protection`"), "{message}");
    assert!(message.contains("supervision_contract"), "{message}");

    // A signed commitment with heritage protection, every material declared.
    let mut body = matter_body("construction.permit");
    body["form"]["heritage_protection"] = json!(true);
    body["commitment"] = json!(true);
    let refused = problem(submit_raw(body).await, 422).await;
    assert_eq!(refused["errors"].as_array().unwrap().len(), 1, "{refused}");
    assert_eq!(refused["errors"][0]["pointer"], "/commitment");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`heritage-protection`")
    );

    // The same submission for a project without heritage protection is accepted.
    let mut body = deferred_body(
        "construction.permit",
        "supervision_contract",
        json!({"heritage_protection": false}),
    );
    body["commitment"] = json!(true);
    let response = submit_raw(body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["commitment"], true);
    assert_eq!(
        material(&created, "supervision_contract")["status"],
        "pending"
    );
    assert_eq!(material_clocks(&created).len(), 1);

    // Joint review too.
    let body = deferred_body(
        "construction.joint-review",
        "design_contract",
        json!({"heritage_protection": true}),
    );
    let refused = problem(submit_raw(body).await, 422).await;
    assert_eq!(refused["errors"][0]["pointer"], "/materials");
}

/// Enterprise A grants `body` (201); answers the grant's id.
async fn grant(app: &TestApp, body: Value) -> String {
    let response = app
        .client
        .post(app.url("/api/v1/authorizations"))
        .bearer_auth(app.enterprise_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let grant: Value = response.json().await.unwrap();
    grant["id"].as_str().unwrap().to_string()
}

/// An official holding a live 帮办 grant supplies a deferred material online for the
/// enterprise, audited under the grant like the enterprise's lifecycle steps; without a grant,
/// or after the enterprise revoked it, the official is refused with the grant's reason.
async fn a_grant_holder_supplies_online_for_the_enterprise(app: &TestApp) {
    let x = id_of(&deferred(app, "market.establish", "premises_proof", json!({})).await);
    let y = id_of(&deferred(app, "market.establish", "premises_proof", json!({})).await);
    let good = supply_body("premises_proof", None);
    // An official of an unrelated unit, and a supervisor of the lead unit: no grant names them.
    let zhang = app.token_for("zhang.wei", Actor::Clerk(UnitCode::Tax));
    let market_head = app.token_for("wang.head", Actor::Supervisor(Some(UnitCode::Market)));
    assert_eq!(
        problem(supply(app, &zhang, &x, &good).await, 404).await["code"],
        "not_found",
        "without a grant, a unit with nothing on the request does not see it"
    );
    let refused = problem(supply(app, &market_head, &x, &good).await, 403).await;
    assert_eq!(refused["code"], "authorization_required");
    assert_eq!(
        material(&read(app, &x).await, "premises_proof")["status"],
        "pending"
    );

    // With a grant for x, zhang supplies it online for the enterprise.
    let gid = grant(
        app,
        json!({"assistant": {"official": "zhang.wei"}, "request": x}),
    )
    .await;
    let (_, after) = supply_ok(app, &zhang, &x, &good).await;
    let supplied = material(&after, "premises_proof");
    assert_eq!(supplied["status"], "provided");
    assert_eq!(supplied["received_at_window"], false);
    assert_eq!(material_clock(&after)["state"], "met");
    // Audited as the official's act for the enterprise, under the grant.
    let audited = events(app, &x, "material.supplied").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0]["actor"], "zhang.wei");
    assert_eq!(audited[0]["role"], "clerk");
    assert_eq!(audited[0]["unit"], "tax");
    assert_eq!(audited[0]["payload"]["authorization"], gid.as_str());
    assert_eq!(
        audited[0]["payload"]["on_behalf_of"],
        crate::helpers::USCC_A
    );
    assert_eq!(audited[0]["payload"]["leader"], false);
    // And the grant lists the act, for the enterprise to read.
    let read_grant: Value = app
        .get(
            &format!("/api/v1/authorizations/{gid}"),
            Some(&app.enterprise_token()),
        )
        .await
        .json()
        .await
        .unwrap();
    let acts: Vec<&str> = read_grant["acts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(acts, ["supplement"], "{read_grant}");
    // The grant is for x only: on y zhang is told so.
    let refused = problem(supply(app, &zhang, &y, &good).await, 403).await;
    assert_eq!(refused["code"], "authorization_out_of_scope");
    assert_eq!(refused["authorization"], gid.as_str());
    // The window stays the lead unit's.
    let refused = problem(
        supply(app, &zhang, &y, &supply_body("premises_proof", Some(true))).await,
        404,
    )
    .await;
    assert_eq!(refused["code"], "not_found");

    // A grant for y, revoked by the enterprise: refused with the reason, nothing changes.
    let revoked = grant(
        app,
        json!({"assistant": {"official": "wang.head"}, "request": y}),
    )
    .await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/authorizations/{revoked}/revoke")))
        .bearer_auth(app.enterprise_token())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let refused = problem(supply(app, &market_head, &y, &good).await, 403).await;
    assert_eq!(refused["code"], "authorization_revoked");
    assert_eq!(refused["authorization"], revoked.as_str());
    assert_eq!(
        material(&read(app, &y).await, "premises_proof")["status"],
        "pending"
    );
    assert!(events(app, &y, "material.supplied").await.is_empty());
}

on_both_backends!(
    a_grant_holder_supplies_online_for_the_enterprise,
    supplied_online_and_delivered_after,
    received_at_the_window_by_the_lead_unit,
    a_matter_may_deliver_before_its_materials,
    an_overdue_material_reminds_the_enterprise_then_the_supervisor,
    every_refusal_is_the_right_one,
    a_withdrawn_request_cancels_the_material_clock,
    the_material_is_due_when_its_clock_is_after_a_calendar_change,
    heritage_projects_may_not_defer_or_commit,
);
