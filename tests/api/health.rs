//! Health probes, request ids and metrics.

use diesel::{Connection, RunQueryDsl, pg::PgConnection};

use crate::helpers::TestApp;
use crate::on_both_backends;

async fn live_and_ready_answer(app: &TestApp) {
    let live = app.get("/health/live", None).await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.headers()["cache-control"], "no-store");
    let body: serde_json::Value = live.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    let expected = if app.settings.database.url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(body["database"], expected);
}

async fn request_id_is_echoed_or_generated(app: &TestApp) {
    let sent = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-Id", "portal-42.a:b")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.headers()["x-request-id"], "portal-42.a:b");

    let generated = app.get("/health/live", None).await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);

    // An unusable id is replaced, not echoed.
    let bad = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-Id", "has spaces and \"quotes\"")
        .send()
        .await
        .unwrap();
    let id = bad.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    // Errors carry it too.
    let missing = app.get("/nowhere", None).await;
    assert!(missing.headers().contains_key("x-request-id"));
}

async fn metrics_count_requests_by_route_pattern(app: &TestApp) {
    for _ in 0..3 {
        app.get("/health/live", None).await;
    }
    app.get("/no/such/path", None).await;
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            "mashangban_http_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mashangban_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health/live\",status=\"200\",le=\"+Inf\"} 3"),
        "{text}"
    );
}

async fn instance_is_registered(app: &TestApp) {
    let response = app.get("/api/v1/instances", Some(&app.admin_token())).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(rows[0]["pid"], i64::from(std::process::id()));
    assert_eq!(rows[0]["version"], env!("CARGO_PKG_VERSION"));
    assert!(rows[0].get("stopped_at").is_none());
}

on_both_backends!(
    live_and_ready_answer,
    request_id_is_echoed_or_generated,
    metrics_count_requests_by_route_pattern,
    instance_is_registered,
);

/// With the database gone, readiness answers 503 with `Retry-After` (never 500) and liveness
/// still answers. Dropping a PostgreSQL database is the outage we can cause reliably.
#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time"
)]
async fn ready_reports_a_lost_database() {
    let (admin_url, name, url) = crate::helpers::fresh_postgres().expect("PostgreSQL configured");
    let mut settings = crate::helpers::test_settings(&url);
    settings.database.connect_timeout_secs = 1;
    let app = crate::helpers::start(settings, None, Some((admin_url.clone(), name.clone()))).await;
    assert_eq!(app.get("/health/ready", None).await.status(), 200);

    let mut conn = PgConnection::establish(&admin_url).unwrap();
    diesel::sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .unwrap();

    let response = app.get("/health/ready", None).await;
    assert_eq!(response.headers()["retry-after"], "5");
    let body = crate::helpers::problem(response, 503).await;
    assert_eq!(body["code"], "database_unavailable");
    assert_eq!(app.get("/health/live", None).await.status(), 200);
}

/// Once the database is known down, answers come at once (a breaker), not after the pool's
/// connection timeout: a load balancer's short health check sees a 503, not a time-out. When
/// the database is back, the probe closes the breaker and requests go through again.
#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time"
)]
async fn a_known_outage_answers_at_once_and_recovers() {
    use std::time::Duration;
    let (admin_url, name, url) = crate::helpers::fresh_postgres().expect("PostgreSQL configured");
    let mut settings = crate::helpers::test_settings(&url);
    // Far longer than the health check below waits.
    settings.database.connect_timeout_secs = 4;
    let database = settings.database.clone();
    let app = crate::helpers::start(settings, None, Some((admin_url.clone(), name.clone()))).await;
    let ready = || {
        app.client
            .get(app.url("/health/ready"))
            .timeout(Duration::from_millis(1500))
            .send()
    };
    assert_eq!(ready().await.unwrap().status(), 200);

    let mut admin = PgConnection::establish(&admin_url).unwrap();
    diesel::sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
    // The first request finds out the hard way (it waits the pool's timeout) ...
    let first = app.get("/health/ready", None).await;
    assert_eq!(first.status(), 503);
    // ... after that, every answer comes at once.
    for _ in 0..3 {
        let response = ready()
            .await
            .expect("answered within the health check's time-out");
        assert_eq!(response.status(), 503);
        let body = crate::helpers::problem(response, 503).await;
        assert_eq!(body["code"], "database_unavailable");
    }
    let response = app
        .client
        .get(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .timeout(Duration::from_millis(1500))
        .send()
        .await
        .expect("answered at once");
    assert_eq!(response.status(), 503);

    // The database comes back: the probe sees it and requests go through again.
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .unwrap();
    let parsed = mashangban::db::DatabaseUrl::parse(&url).unwrap();
    let mut conn = mashangban::db::establish(&parsed, &database).unwrap();
    mashangban::db::migrate(&mut conn, &parsed).unwrap();
    drop(conn);
    let mut recovered = false;
    for _ in 0..50 {
        if ready().await.is_ok_and(|r| r.status() == 200) {
            recovered = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "readiness came back after the database did");
}
