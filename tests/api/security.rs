//! Hardening (docs/security.md): bounded request lines and metric labels, who may read
//! `/metrics` and what it shows, and the lifetime cap of tokens.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use diesel::RunQueryDsl;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mashangban::auth::{Actor, Principal, TokenIssuer};
use mashangban::db::notifications::NotificationRow;
use mashangban::db::schema::notifications;

use crate::helpers::{self, TestApp, problem};
use crate::on_both_backends;

/// The `method` label values of `mashangban_http_requests_total` in a scrape.
fn method_labels(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| l.starts_with("mashangban_http_requests_total{"))
        .filter_map(|l| l.split("method=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

async fn made_up_methods_share_one_label(app: &TestApp) {
    for i in 0..40 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
    }
    app.get("/health/live", None).await;
    let scrape = app.get("/metrics", None).await.text().await.unwrap();
    let methods = method_labels(&scrape);
    assert_eq!(
        methods,
        BTreeSet::from(["GET".to_string(), "OTHER".to_string()]),
        "{scrape}"
    );
    assert!(
        scrape.contains(
            "mashangban_http_requests_total{method=\"OTHER\",route=\"/health/live\",status=\"405\"} 40"
        ),
        "{scrape}"
    );
}

async fn long_methods_are_400_and_long_targets_414(app: &TestApp) {
    let method = reqwest::Method::from_bytes("X".repeat(20 * 1024).as_bytes()).unwrap();
    let response = app
        .client
        .request(method, app.url("/health/live"))
        .send()
        .await
        .unwrap();
    let body = problem(response, 400).await;
    assert_eq!(body["code"], "bad_request");
    assert!(
        body["detail"].as_str().unwrap().contains("16 bytes"),
        "{body}"
    );

    let path = format!("/api/v1/requests/{}", "a".repeat(10 * 1024));
    let body = problem(app.get(&path, None).await, 414).await;
    assert_eq!(body["code"], "uri_too_long");
    assert!(body["detail"].as_str().unwrap().len() < 200, "{body}");
    // A long query counts too; a target at the limit passes.
    let query = format!("/health/live?x={}", "q".repeat(4096));
    assert_eq!(app.get(&query, None).await.status(), 414);
    let limit = app.settings.server.max_uri_bytes;
    let fits = format!(
        "/health/live?x={}",
        "q".repeat(limit - "/health/live?x=".len())
    );
    assert_eq!(app.get(&fits, None).await.status(), 200);

    // Both refusals are counted, under bounded labels.
    let scrape = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        scrape.contains(
            "mashangban_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"400\"} 1"
        ),
        "{scrape}"
    );
    assert!(
        scrape.contains(
            "mashangban_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"414\"} 2"
        ),
        "{scrape}"
    );
}

fn mail(status: &str) -> NotificationRow {
    let now = Utc::now().naive_utc();
    let id = uuid::Uuid::now_v7().to_string();
    NotificationRow {
        message_id: format!("<{id}@mashangban>"),
        id,
        request_id: None,
        kind: "accepted".into(),
        recipient: "a@example.com".into(),
        subject: "s".into(),
        body: "b".into(),
        status: status.into(),
        attempts: 0,
        next_attempt_at: now,
        locked_until: None,
        last_error: None,
        created_at: now,
        sent_at: None,
    }
}

async fn the_scrape_shows_the_outbox_build_and_process(app: &TestApp) {
    let scrape = app.get("/metrics", None).await.text().await.unwrap();
    for expected in [
        "mashangban_outbox_pending 0",
        "mashangban_outbox_dead 0",
        &format!(
            "mashangban_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
        "\nprocess_resident_memory_bytes ",
        "\nprocess_open_fds ",
        "\nprocess_start_time_seconds ",
        "\nprocess_cpu_seconds_total ",
    ] {
        assert!(scrape.contains(expected), "{expected}: {scrape}");
    }
    let mut conn = helpers::connect(app);
    let rows = [mail("pending"), mail("pending"), mail("dead"), mail("sent")];
    for row in &rows {
        diesel::insert_into(notifications::table)
            .values(row)
            .execute(&mut conn)
            .unwrap();
    }
    let scrape = app.get("/metrics", None).await.text().await.unwrap();
    assert!(scrape.contains("mashangban_outbox_pending 2"), "{scrape}");
    assert!(scrape.contains("mashangban_outbox_dead 1"), "{scrape}");
}

async fn tokens_beyond_the_lifetime_cap_are_401(app: &TestApp) {
    let issuer = TokenIssuer::new(&app.settings.jwt);
    let principal = Principal {
        subject: "x".into(),
        actor: Actor::Admin,
    };
    let cap = app.settings.max_ttl();
    let at_cap = issuer.issue(&principal, cap, Utc::now());
    assert_eq!(app.get("/api/v1/me", Some(&at_cap)).await.status(), 200);

    let year = issuer.issue(&principal, Duration::from_secs(365 * 86_400), Utc::now());
    let mut claims = issuer.claims(&principal, Duration::from_secs(60), Utc::now());
    claims.iat += 86_400;
    claims.exp += 86_400;
    let from_tomorrow = issuer.sign(&claims);
    let claims = issuer.claims(&principal, Duration::from_secs(60), Utc::now());
    let mut value = serde_json::to_value(&claims).unwrap();
    value.as_object_mut().unwrap().remove("iat");
    let without_iat = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &value,
        &EncodingKey::from_secret(app.settings.jwt.secret.as_bytes()),
    )
    .unwrap();
    for (token, expected) in [
        (year, "lifetime"),
        (from_tomorrow, "issued in the future"),
        (without_iat, "`iat`"),
    ] {
        let body = problem(app.get("/api/v1/me", Some(&token)).await, 401).await;
        assert_eq!(body["code"], "invalid_token");
        assert!(
            body["detail"].as_str().unwrap().contains(expected),
            "{body}"
        );
    }
}

on_both_backends!(
    made_up_methods_share_one_label,
    long_methods_are_400_and_long_targets_414,
    the_scrape_shows_the_outbox_build_and_process,
    tokens_beyond_the_lifetime_cap_are_401,
);

const METRICS_TOKEN: &str = "metrics-token-0c1d2e3f4a5b6c7d8e9f";

#[actix_web::test]
async fn a_metrics_token_is_required_when_set() {
    let (dir, url) = helpers::fresh_sqlite();
    let mut settings = helpers::test_settings(&url);
    settings.metrics.token = METRICS_TOKEN.into();
    let app = helpers::start(settings, Some(dir), None).await;

    let response = app.get("/metrics", None).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"metrics\""
    );
    assert_eq!(problem(response, 401).await["code"], "missing_token");
    let response = app.get("/metrics", Some("not-the-token")).await;
    assert_eq!(problem(response, 401).await["code"], "invalid_token");
    // An API token is no metrics token.
    let admin = app.admin_token();
    assert_eq!(app.get("/metrics", Some(&admin)).await.status(), 401);
    let response = app.get("/metrics", Some(METRICS_TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("mashangban_build_info")
    );
}

#[actix_web::test]
async fn a_metrics_listener_takes_metrics_off_the_main_one() {
    let (dir, url) = helpers::fresh_sqlite();
    let mut settings = helpers::test_settings(&url);
    settings.metrics.bind = "127.0.0.1:0".into();
    settings.metrics.token = METRICS_TOKEN.into();
    let app = helpers::start(settings, Some(dir), None).await;
    let metrics = app.metrics_address.clone().expect("metrics listener");
    assert_ne!(metrics, app.address);

    let body = problem(app.get("/metrics", Some(METRICS_TOKEN)).await, 404).await;
    assert_eq!(body["code"], "not_found");

    let scrape = |path: &str, token: Option<&str>| {
        let mut request = app.client.get(format!("{metrics}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(scrape("/metrics", None).await.unwrap().status(), 401);
    let response = scrape("/metrics", Some(METRICS_TOKEN)).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("mashangban_outbox_pending 0"), "{text}");
    // Only the metrics are there.
    let response = scrape("/health/live", Some(METRICS_TOKEN)).await.unwrap();
    assert_eq!(problem(response, 404).await["code"], "not_found");
    assert_eq!(
        app.get("/health/live", None).await.status(),
        200,
        "the main listener serves the rest"
    );
}
