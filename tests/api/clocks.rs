//! The SLA clocks through the real server: how lifecycle steps move them, and the detector
//! marking warnings and breaches when they fall due, exactly once, also after downtime.
//!
//! Waiting twenty minutes or five working days is not an option in a test, so where a clock
//! must fall due the test moves its stored times (`due_at`, `warn_at`, `check_at`) to just
//! ahead of now, directly in the database — the same instants the clock would have reached.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use mashangban::auth::Actor;
use mashangban::db::DbConnection;
use mashangban::domain::UnitCode;
use serde_json::{Value, json};

use crate::helpers::{
    self, TestApp, act, act_ok as ok, connect, fresh_postgres, fresh_sqlite, problem, start,
    test_settings,
};
use crate::on_both_backends;
use crate::requests::matter_body;

async fn submit(app: &TestApp, matter: &str) -> String {
    let created = helpers::submit(app, &matter_body(matter)).await;
    created["id"].as_str().unwrap().to_string()
}

async fn read(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/requests/{id}"), Some(&app.admin_token()))
        .await
        .json()
        .await
        .unwrap()
}

fn clock<'a>(request: &'a Value, kind: &str) -> &'a Value {
    request["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind && c["task_id"].is_null())
        .unwrap_or_else(|| panic!("no {kind} clock in {request}"))
}

fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// Moves a running clock so that it warns at `warn` and falls due at `due`.
fn fall_due(conn: &mut DbConnection, clock_id: &str, warn: NaiveDateTime, due: NaiveDateTime) {
    use mashangban::db::schema::clocks;
    let changed = diesel::update(clocks::table.find(clock_id))
        .set((
            clocks::warn_at.eq(warn),
            clocks::due_at.eq(due),
            clocks::check_at.eq(warn.min(due)),
        ))
        .execute(conn)
        .unwrap();
    assert_eq!(changed, 1);
}

/// Audit events of `action` for the clock `clock_id`.
async fn clock_events(app: &TestApp, request: &str, clock_id: &str, action: &str) -> usize {
    let events: Value = app
        .get(
            &format!("/api/v1/requests/{request}/events"),
            Some(&app.admin_token()),
        )
        .await
        .json()
        .await
        .unwrap();
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["payload"]["clock"] == clock_id)
        .count()
}

/// Polls until `check` holds on the request, for at most `limit`.
async fn eventually(app: &TestApp, id: &str, limit: Duration, check: impl Fn(&Value) -> bool) {
    let until = std::time::Instant::now() + limit;
    loop {
        let request = read(app, id).await;
        if check(&request) {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "not within {limit:?}: {request}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_due_clock_is_marked_once(app: &TestApp) {
    let id = submit(app, "market.establish").await;
    let clerk = app.clerk_token(UnitCode::Market);
    let called = ok(app, &clerk, &id, json!({"action": "call"})).await;
    let window = clock(&called, "window_intake");
    assert_eq!(window["state"], "running");
    let started = instant(&window["started_at"]);
    assert_eq!(
        (instant(&window["due_at"]) - started).num_minutes(),
        20,
        "{window}"
    );
    assert_eq!(
        (instant(&window["warn_at"]) - started).num_minutes(),
        16,
        "80 % of 20 minutes"
    );
    let clock_id = window["id"].as_str().unwrap().to_string();

    let now = Utc::now().naive_utc();
    let warn = now + chrono::TimeDelta::milliseconds(400);
    let due = now + chrono::TimeDelta::milliseconds(900);
    fall_due(&mut connect(app), &clock_id, warn, due);
    eventually(app, &id, Duration::from_secs(4), |r| {
        clock(r, "window_intake")["state"] == "breached"
    })
    .await;
    let request = read(app, &id).await;
    let window = clock(&request, "window_intake");
    let breached = instant(&window["breached_at"]);
    let warned = instant(&window["warned_at"]);
    // Never before its time (how soon after is the benchmark's and /metrics' business).
    assert!(breached >= due.and_utc(), "marked {breached}, due {due}");
    assert!(warned >= warn.and_utc() && warned <= breached);
    assert!(window["stopped_at"].is_null(), "still open");
    // Exactly once in the trail, however many ticks passed.
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(clock_events(app, &id, &clock_id, "clock.warned").await, 1);
    assert_eq!(clock_events(app, &id, &clock_id, "clock.breached").await, 1);
    // Operations see the detector's work in the metrics.
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("mashangban_sla_marks_total{change=\"breached\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("mashangban_sla_detection_delay_seconds_count 1"));

    // Accepting late stops it, still breached.
    let accepted = ok(app, &clerk, &id, json!({"action": "accept"})).await;
    let window = clock(&accepted, "window_intake");
    assert_eq!(window["state"], "breached");
    assert!(window["stopped_at"].is_string());
    assert_eq!(
        clock_events(app, &id, &clock_id, "clock.stopped_late").await,
        1
    );
}

async fn supplement_pauses_and_the_extension_extends(app: &TestApp) {
    let id = submit(app, "market.establish").await;
    let clerk = app.clerk_token(UnitCode::Market);
    let submitted = read(app, &id).await;
    let promised = clock(&submitted, "promised");
    assert_eq!(
        promised["state"], "running",
        "the promised limit runs from receipt"
    );
    assert_eq!(clock(&submitted, "statutory")["state"], "pending");
    ok(app, &clerk, &id, json!({"action": "call"})).await;
    let paused = ok(
        app,
        &clerk,
        &id,
        json!({"action": "request_supplement", "items": ["lease contract", "ID copy"]}),
    )
    .await;
    assert_eq!(clock(&paused, "promised")["state"], "paused");
    // Half a working day was promised; what is left waits for the supplement.
    let left = clock(&paused, "promised")["remaining_minutes"]
        .as_i64()
        .unwrap();
    assert!((0..=210).contains(&left), "{left}");
    assert_eq!(clock(&paused, "supplement_notice")["state"], "met");
    assert_eq!(clock(&paused, "window_intake")["state"], "met");
    let pauses = clock(&paused, "promised")["pauses"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0]["reason"], "supplement required (补正)");

    let resumed = ok(
        app,
        &app.enterprise_token(),
        &id,
        json!({"action": "supplement"}),
    )
    .await;
    let promised = clock(&resumed, "promised");
    assert_eq!(promised["state"], "running");
    assert!(promised["remaining_minutes"].is_null());
    assert!(promised["pauses"][0]["to"].is_string());
    // The pause is closed, and its length is what the clock counts as paused.
    let pause = &promised["pauses"][0];
    let paused = (instant(&pause["to"]) - instant(&pause["from"])).num_seconds();
    assert_eq!(promised["paused_seconds"].as_i64().unwrap(), paused);

    ok(app, &clerk, &id, json!({"action": "call"})).await;
    let accepted = ok(app, &clerk, &id, json!({"action": "accept"})).await;
    let statutory = clock(&accepted, "statutory").clone();
    assert_eq!(statutory["state"], "running");
    let due = instant(&statutory["due_at"]);

    // The unit's supervisor extends once, with a reason; the due time moves by 10 working days.
    let supervisor = app.token(Actor::Supervisor(Some(UnitCode::Market)));
    let response = act(
        app,
        &supervisor,
        &id,
        json!({"action": "approve_extension"}),
    )
    .await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "/reason"
    );
    let extended = ok(
        app,
        &supervisor,
        &id,
        json!({"action": "approve_extension", "reason": "expert opinion needed"}),
    )
    .await;
    assert_eq!(extended["extended"], true);
    let statutory = clock(&extended, "statutory");
    assert_eq!(statutory["extended_days"], 10);
    let new_due = instant(&statutory["due_at"]);
    let days = (new_due - due).num_days();
    assert!(
        (14..=20).contains(&days),
        "10 working days later: {due} → {new_due}"
    );
    let response = act(
        app,
        &supervisor,
        &id,
        json!({"action": "approve_extension", "reason": "again"}),
    )
    .await;
    assert_eq!(problem(response, 409).await["code"], "action_not_allowed");
}

async fn silence_for_five_working_days_counts_as_acceptance(app: &TestApp) {
    let id = submit(app, "market.establish").await;
    let clerk = app.clerk_token(UnitCode::Market);
    // The clerk called it, and then nothing happened for five working days (received long
    // ago, so the statutory limit counted from receipt has run out too).
    ok(app, &clerk, &id, json!({"action": "call"})).await;
    let request = read(app, &id).await;
    let notice = clock(&request, "supplement_notice");
    let clock_id = notice["id"].as_str().unwrap().to_string();
    let now = Utc::now().naive_utc();
    {
        use mashangban::db::schema::requests;
        let long_ago = now - chrono::TimeDelta::days(60);
        diesel::update(requests::table.find(&id))
            .set(requests::created_at.eq(long_ago))
            .execute(&mut connect(app))
            .unwrap();
    }
    fall_due(
        &mut connect(app),
        &clock_id,
        now - chrono::TimeDelta::seconds(2),
        now - chrono::TimeDelta::seconds(1),
    );
    eventually(app, &id, Duration::from_secs(4), |r| {
        r["deemed_accepted_from"].is_string()
    })
    .await;
    let request = read(app, &id).await;
    assert_eq!(request["deemed_accepted_from"], request["created_at"]);
    // A state, not a note: accepted, with its tasks, and no longer refusable.
    assert_eq!(request["status"], "accepted");
    assert_eq!(request["deemed"], true);
    assert!(
        request["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "accepted")
    );
    assert_eq!(clock(&request, "window_intake")["state"], "met");
    let statutory = clock(&request, "statutory");
    assert_eq!(statutory["started_at"], request["created_at"]);
    // Sixty days from receipt is past its limit: breached at once.
    assert_eq!(statutory["state"], "breached");
    let response = act(
        app,
        &clerk,
        &id,
        json!({"action": "refuse", "reason": "late"}),
    )
    .await;
    let body = problem(response, 409).await;
    assert!(
        body["detail"].as_str().unwrap().contains("Art. 32"),
        "{body}"
    );
    // The enterprise is told; the breach found at that moment reaches the supervisor.
    let mails: Vec<(String, String)> = {
        use mashangban::db::schema::notifications;
        notifications::table
            .filter(notifications::request_id.eq(&id))
            .select((notifications::kind, notifications::recipient))
            .load(&mut connect(app))
            .unwrap()
    };
    assert!(
        mails.contains(&("deemed_accepted".into(), "office@example.com".into())),
        "{mails:?}"
    );
    let market_head = mashangban::domain::Catalog::builtin()
        .unit(UnitCode::Market)
        .supervisor_email
        .clone();
    assert!(
        mails.contains(&("clock_breached".into(), market_head)),
        "{mails:?}"
    );
    // The review goes on from here like any accepted request.
    ok(app, &clerk, &id, json!({"action": "start_review"})).await;
    let events: Value = app
        .get(
            &format!("/api/v1/requests/{id}/events"),
            Some(&app.admin_token()),
        )
        .await
        .json()
        .await
        .unwrap();
    let deemed = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "request.deemed_accepted")
        .count();
    assert_eq!(deemed, 1);
}

on_both_backends!(
    a_due_clock_is_marked_once,
    supplement_pauses_and_the_extension_extends,
    silence_for_five_working_days_counts_as_acceptance,
);

/// Runs `scenario` on a fresh database of each backend: first with a server whose detector is
/// off (the "downtime"), then with detectors on.
async fn breaches_after_downtime_are_marked_once_by_several_instances(
    url: String,
    pg: Option<(String, String)>,
) {
    let mut settings = test_settings(&url);
    settings.sla.worker = false;
    let down = start(settings, None, pg).await;
    let clerk = down.clerk_token(UnitCode::Market);
    let mut clock_ids = Vec::new();
    for _ in 0..20 {
        let id = submit(&down, "market.establish").await;
        let called = ok(&down, &clerk, &id, json!({"action": "call"})).await;
        clock_ids.push((
            id,
            clock(&called, "window_intake")["id"]
                .as_str()
                .unwrap()
                .to_string(),
        ));
    }
    // They all fell due an hour ago, while nothing was watching.
    let mut conn = connect(&down);
    let past = Utc::now().naive_utc() - chrono::TimeDelta::hours(1);
    for (_, clock_id) in &clock_ids {
        fall_due(&mut conn, clock_id, past, past);
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        clock_events(&down, &clock_ids[0].0, &clock_ids[0].1, "clock.breached").await,
        0,
        "no detector ran"
    );
    // Three instances come up on the same database at once.
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(start(test_settings(&url), None, None).await);
    }
    for (id, _) in &clock_ids {
        eventually(&down, id, Duration::from_secs(5), |r| {
            clock(r, "window_intake")["state"] == "breached"
        })
        .await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    for (id, clock_id) in &clock_ids {
        assert_eq!(clock_events(&down, id, clock_id, "clock.breached").await, 1);
        assert_eq!(clock_events(&down, id, clock_id, "clock.warned").await, 1);
        let request = read(&down, id).await;
        let window = clock(&request, "window_intake");
        assert_eq!(window["warned_at"], window["breached_at"], "{window}");
        assert!(window["breached_at"].is_string());
    }
    let verified: Value = down
        .get("/api/v1/audit/verify", Some(&down.admin_token()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["status"], "ok", "{verified}");
    drop(instances);
}

#[actix_web::test]
async fn sqlite_breaches_after_downtime_are_marked_once_by_several_instances() {
    let (_dir, url) = fresh_sqlite();
    breaches_after_downtime_are_marked_once_by_several_instances(url, None).await;
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time"
)]
async fn postgres_breaches_after_downtime_are_marked_once_by_several_instances() {
    let (admin, name, url) = fresh_postgres().expect("PostgreSQL configured");
    breaches_after_downtime_are_marked_once_by_several_instances(url, Some((admin, name))).await;
}
