//! The audit chain: timelines, verification, tamper detection (also of the newest events,
//! with an anchor), concurrent and batch appends.

use chrono::{SubsecRound, Utc};
use diesel::prelude::*;
use mashangban::auth::Actor;
use mashangban::db::schema::audit_events;
use mashangban::db::{audit, write_transaction};
use mashangban::domain::UnitCode;
use mashangban::domain::audit::Entry;
use serde_json::{Value, json};

use crate::helpers::{TestApp, act_ok, connect, problem};
use crate::on_both_backends;
use crate::requests::matter_body;

async fn submit(app: &TestApp) -> String {
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(&matter_body("tax.registration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

async fn verification(app: &TestApp) -> Value {
    verification_at(app, "/api/v1/audit/verify").await
}

async fn verification_at(app: &TestApp, path: &str) -> Value {
    let response = app.get(path, Some(&app.admin_token())).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The verify path anchored at the head of an earlier verification.
fn anchored(head: &Value) -> String {
    format!(
        "/api/v1/audit/verify?anchor_seq={}&anchor_hash={}",
        head["seq"],
        head["hash"].as_str().unwrap()
    )
}

/// Runs `sql` directly on the server's database, as an intruder with database access would;
/// returns the rows changed.
pub fn tamper_rows(app: &TestApp, sql: &str) -> usize {
    diesel::sql_query(sql).execute(&mut connect(app)).unwrap()
}

/// [`tamper_rows`], changing exactly one row.
fn tamper(app: &TestApp, sql: &str) {
    assert_eq!(tamper_rows(app, sql), 1, "{sql}");
}

/// Deletes the newest `n` events, as an intruder covering their tracks would.
pub fn delete_newest(app: &TestApp, n: usize) {
    let sql =
        format!("DELETE FROM audit_events WHERE seq > (SELECT MAX(seq) - {n} FROM audit_events)");
    assert_eq!(tamper_rows(app, &sql), n, "{sql}");
}

async fn intake_is_the_first_event_of_the_timeline(app: &TestApp) {
    let id = submit(app).await;
    let response = app
        .get(
            &format!("/api/v1/requests/{id}/events"),
            Some(&app.enterprise_token()),
        )
        .await;
    assert_eq!(response.status(), 200);
    let timeline: Value = response.json().await.unwrap();
    let events = timeline["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "intake");
    assert_eq!(events[0]["state_after"], "submitted");
    assert_eq!(events[0]["role"], "enterprise");
    assert_eq!(events[0]["payload"]["lead_unit"], "tax");
    assert_eq!(events[0]["hash"].as_str().unwrap().len(), 64);
    // Another unit's clerk cannot read it.
    let response = app
        .get(
            &format!("/api/v1/requests/{id}/events"),
            Some(&app.clerk_token(UnitCode::Justice)),
        )
        .await;
    assert_eq!(problem(response, 404).await["code"], "not_found");
}

async fn verification_is_for_supervisors_and_admins(app: &TestApp) {
    submit(app).await;
    assert_eq!(verification(app).await["status"], "ok");
    let response = app
        .get(
            "/api/v1/audit/verify",
            Some(&app.token(Actor::Supervisor(None))),
        )
        .await;
    assert_eq!(response.status(), 200);
    for token in [app.enterprise_token(), app.clerk_token(UnitCode::Market)] {
        let response = app.get("/api/v1/audit/verify", Some(&token)).await;
        assert_eq!(problem(response, 403).await["code"], "forbidden");
    }
}

async fn an_edit_in_the_database_is_detected(app: &TestApp) {
    for _ in 0..3 {
        submit(app).await;
    }
    let ok = verification(app).await;
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["count"], 3);
    tamper(
        app,
        "UPDATE audit_events SET state_after = 'approved' WHERE seq = 2",
    );
    let broken = verification(app).await;
    assert_eq!(broken["status"], "broken");
    assert_eq!(broken["broken_at_seq"], 2);
    assert_eq!(broken["count"], 1);
}

async fn a_deletion_in_the_database_is_detected(app: &TestApp) {
    for _ in 0..3 {
        submit(app).await;
    }
    tamper(app, "DELETE FROM audit_events WHERE seq = 2");
    let broken = verification(app).await;
    assert_eq!(broken["status"], "broken");
    assert_eq!(broken["broken_at_seq"], 2);
    assert!(broken["problem"].as_str().unwrap().contains("missing"));
}

async fn concurrent_writers_never_fork_the_chain(app: &TestApp) {
    let token = app.enterprise_token();
    let posts = (0..16).map(|_| {
        app.client
            .post(app.url("/api/v1/requests"))
            .bearer_auth(&token)
            .json(&matter_body("market.establish"))
            .send()
    });
    for response in futures_util::future::join_all(posts).await {
        assert_eq!(response.unwrap().status(), 201);
    }
    let result = verification(app).await;
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["count"], 16);
}

async fn removing_the_newest_events_is_detected_with_an_anchor(app: &TestApp) {
    for _ in 0..5 {
        submit(app).await;
    }
    let first = verification(app).await;
    assert_eq!(first["status"], "ok", "{first}");
    assert_eq!(first["count"], 5);
    let head = first["head"].clone();
    assert_eq!(head["seq"], 5);
    assert_eq!(head["hash"].as_str().unwrap().len(), 64);
    // The head is still there, and the chain grew: ok, with the new head.
    submit(app).await;
    let grown = verification_at(app, &anchored(&head)).await;
    assert_eq!(grown["status"], "ok", "{grown}");
    assert_eq!(grown["head"]["seq"], 6);
    let head = grown["head"].clone();

    delete_newest(app, 2);
    // Without the anchor the shorter chain holds, as before.
    let plain = verification(app).await;
    assert_eq!(plain["status"], "ok", "{plain}");
    assert_eq!(plain["count"], 4);
    // With it, the loss shows, naming the events.
    let cut = verification_at(app, &anchored(&head)).await;
    assert_eq!(cut["status"], "truncated", "{cut}");
    assert_eq!(cut["count"], 4);
    assert_eq!(cut["broken_at_seq"], 5);
    assert!(cut.get("head").is_none(), "{cut}");
    let problem = cut["problem"].as_str().unwrap();
    assert!(
        problem.contains("ends at event 4") && problem.contains("events 5 to 6"),
        "{problem}"
    );

    // New events fill the positions again: the anchored one is now another event.
    submit(app).await;
    submit(app).await;
    let rewritten = verification_at(app, &anchored(&head)).await;
    assert_eq!(rewritten["status"], "broken", "{rewritten}");
    assert_eq!(rewritten["broken_at_seq"], 6);
    assert_eq!(rewritten["count"], 5);
    assert!(
        rewritten["problem"].as_str().unwrap().contains("rewritten"),
        "{rewritten}"
    );
}

async fn the_anchor_is_checked(app: &TestApp) {
    // An empty chain has no head to keep.
    let empty = verification(app).await;
    assert_eq!(empty["status"], "ok");
    assert_eq!(empty["count"], 0);
    assert!(empty.get("head").is_none(), "{empty}");
    let hash = "0".repeat(64);
    let admin = app.admin_token();
    for (query, pointer) in [
        ("anchor_seq=1", "anchor_hash"),
        (&format!("anchor_hash={hash}") as &str, "anchor_seq"),
        (&format!("anchor_seq=0&anchor_hash={hash}"), "anchor_seq"),
        (&format!("anchor_seq=x&anchor_hash={hash}"), "anchor_seq"),
        ("anchor_seq=1&anchor_hash=ABC", "anchor_hash"),
        (
            &format!("anchor_seq=1&anchor_hash={}", "A".repeat(64)),
            "anchor_hash",
        ),
    ] {
        let response = app
            .get(&format!("/api/v1/audit/verify?{query}"), Some(&admin))
            .await;
        let body = problem(response, 422).await;
        assert_eq!(body["code"], "validation_failed", "{query}");
        assert_eq!(body["errors"][0]["pointer"], pointer, "{query}: {body}");
    }
    // A well-formed anchor beyond an empty chain: every event up to it is missing.
    let cut = verification_at(
        app,
        &format!("/api/v1/audit/verify?anchor_seq=1&anchor_hash={hash}"),
    )
    .await;
    assert_eq!(cut["status"], "truncated", "{cut}");
    assert_eq!(cut["broken_at_seq"], 1);
    assert!(
        cut["problem"]
            .as_str()
            .unwrap()
            .contains("event 1 was removed"),
        "{cut}"
    );
    // The anchor does not open the endpoint to others.
    let response = app
        .get(
            &format!("/api/v1/audit/verify?anchor_seq=1&anchor_hash={hash}"),
            Some(&app.clerk_token(UnitCode::Tax)),
        )
        .await;
    assert_eq!(problem(response, 403).await["code"], "forbidden");
}

fn entry(n: usize) -> Entry {
    Entry {
        request_id: format!("sla-{}", n % 7),
        actor: "sla-worker".into(),
        role: "system".into(),
        unit: (n % 2 == 0).then(|| "tax".into()),
        action: "clock_breached".into(),
        state_before: None,
        state_after: (n % 3 == 0).then(|| "under_review".into()),
        payload: json!({"clock": "statutory", "n": n}),
        at: Utc::now().trunc_subsecs(6),
    }
}

async fn a_batch_append_chains_thousands_of_events_at_once(app: &TestApp) {
    submit(app).await;
    let mut conn = connect(app);
    let events = actix_web::rt::task::spawn_blocking(move || {
        // The contract: inside a write transaction, or not at all.
        let outside = audit::append_many(&mut conn, vec![entry(0)]);
        assert!(
            matches!(outside, Err(diesel::result::Error::NotInTransaction)),
            "{outside:?}"
        );
        assert!(
            write_transaction(&mut conn, |c| audit::append_many(c, Vec::new()))
                .unwrap()
                .is_empty()
        );
        write_transaction(&mut conn, |c| {
            audit::append_many(c, (0..2500).map(entry).collect())
        })
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(events.len(), 2500);
    assert_eq!(events[0].seq, 2);
    assert_eq!(events[2499].seq, 2501);
    // The batch continues the chain; later appends continue the batch.
    submit(app).await;
    let result = verification(app).await;
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["count"], 2502);
    // A missing unit or state is stored as NULL.
    let nulls: i64 = audit_events::table
        .filter(audit_events::actor.eq("sla-worker"))
        .filter(audit_events::unit.is_null())
        .filter(audit_events::state_after.is_null())
        .count()
        .get_result(&mut connect(app))
        .unwrap();
    let expected = (0..2500).filter(|n| n % 2 == 1 && n % 3 != 0).count();
    assert_eq!(nulls, i64::try_from(expected).unwrap());
}

async fn the_enterprise_reads_units_and_no_routing_reasons(app: &TestApp) {
    let id = submit(app).await;
    act_ok(
        app,
        &app.clerk_token(UnitCode::Tax),
        &id,
        json!({"action": "return", "reason": "不属于本单位事项，内部意见"}),
    )
    .await;
    act_ok(
        app,
        &app.token(Actor::Supervisor(None)),
        &id,
        json!({"action": "reroute", "unit": "market", "reason": "属市场监管事项，协调记录"}),
    )
    .await;
    let path = format!("/api/v1/requests/{id}/events");
    let events = |body: Value| body["events"].as_array().unwrap().clone();
    let staff = events(
        app.get(&path, Some(&app.admin_token()))
            .await
            .json()
            .await
            .unwrap(),
    );
    let response = app.get(&path, Some(&app.enterprise_token())).await;
    assert_eq!(response.status(), 200);
    let seen = events(response.json().await.unwrap());
    let find = |events: &[Value], action: &str| {
        events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {events:?}"))
            .clone()
    };

    // Staff: the officials and the reasons, as stored.
    assert_eq!(find(&staff, "return")["actor"], "test-clerk");
    assert_eq!(
        find(&staff, "return")["payload"]["reason"],
        "不属于本单位事项，内部意见"
    );
    assert_eq!(find(&staff, "reroute")["actor"], "test-supervisor");
    assert_eq!(
        find(&staff, "reroute")["payload"]["reason"],
        "属市场监管事项，协调记录"
    );

    // The enterprise: units (the district for a district-wide supervisor), no reasons.
    assert_eq!(find(&seen, "intake")["actor"], "enterprise");
    let returned = find(&seen, "return");
    assert_eq!(returned["actor"], "tax");
    assert_eq!(returned["unit"], "tax");
    assert!(returned["payload"].get("reason").is_none(), "{returned}");
    let rerouted = find(&seen, "reroute");
    assert_eq!(rerouted["actor"], "district");
    assert_eq!(rerouted["payload"]["unit"], "market");
    assert!(rerouted["payload"].get("reason").is_none(), "{rerouted}");
    let text = Value::Array(seen.clone()).to_string();
    for hidden in ["内部意见", "协调记录", "test-clerk", "test-supervisor"] {
        assert!(!text.contains(hidden), "{hidden} in {text}");
    }
    assert_eq!(seen.len(), staff.len());
}

on_both_backends!(
    the_enterprise_reads_units_and_no_routing_reasons,
    intake_is_the_first_event_of_the_timeline,
    verification_is_for_supervisors_and_admins,
    an_edit_in_the_database_is_detected,
    a_deletion_in_the_database_is_detected,
    concurrent_writers_never_fork_the_chain,
    removing_the_newest_events_is_detected_with_an_anchor,
    the_anchor_is_checked,
    a_batch_append_chains_thousands_of_events_at_once,
);
