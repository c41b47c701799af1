//! The audit chain: timelines, verification, tamper detection, concurrent appends.

use diesel::prelude::*;
use mashangban::auth::Actor;
use mashangban::db::{self, DatabaseUrl};
use mashangban::domain::UnitCode;
use serde_json::Value;

use crate::helpers::{TestApp, problem};
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
    let response = app
        .get("/api/v1/audit/verify", Some(&app.admin_token()))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Runs `sql` directly on the server's database, as an intruder with database access would.
fn tamper(app: &TestApp, sql: &str) {
    let url = DatabaseUrl::parse(&app.settings.database.url).unwrap();
    let mut conn = db::establish(&url, &app.settings.database).unwrap();
    let changed = diesel::sql_query(sql).execute(&mut conn).unwrap();
    assert_eq!(changed, 1, "{sql}");
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

on_both_backends!(
    intake_is_the_first_event_of_the_timeline,
    verification_is_for_supervisors_and_admins,
    an_edit_in_the_database_is_detected,
    a_deletion_in_the_database_is_detected,
    concurrent_writers_never_fork_the_chain,
);
