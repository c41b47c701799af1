//! HTTP conventions: problem+json for 404, 405 and 413.

use crate::helpers::{TestApp, problem};
use crate::on_both_backends;

async fn unknown_paths_are_problem_404(app: &TestApp) {
    for path in [
        "/nowhere",
        "/api/v1/nothing-here",
        "/api/v2/me",
        "/health/live/extra",
    ] {
        let body = problem(app.get(path, None).await, 404).await;
        assert_eq!(body["code"], "not_found", "{path}");
        assert!(body["detail"].as_str().unwrap().contains(path), "{body}");
    }
}

async fn wrong_methods_are_problem_405_with_allow(app: &TestApp) {
    for (method, path) in [
        (reqwest::Method::POST, "/health/live"),
        (reqwest::Method::DELETE, "/health/ready"),
        (reqwest::Method::PUT, "/api/v1/me"),
        (reqwest::Method::PATCH, "/metrics"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], "GET", "{method} {path}");
        let body = problem(response, 405).await;
        assert_eq!(body["code"], "method_not_allowed");
    }
}

async fn oversized_bodies_are_problem_413(app: &TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A raw request that declares a body one byte over the limit and sends none of it: the
    // refusal must come from the declared length alone, before anything reads the body.
    let limit = app.settings.server.body_limit_bytes;
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "POST /api/v1/me HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        limit + 1
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "payload_too_large");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&limit.to_string())
    );
}

on_both_backends!(
    unknown_paths_are_problem_404,
    wrong_methods_are_problem_405_with_allow,
    oversized_bodies_are_problem_413,
);

/// Every error code the API can send is documented and distinct.
#[test]
fn error_codes_are_stable_and_distinct() {
    use mashangban::error::ErrorCode;
    let mut seen = std::collections::HashSet::new();
    for code in ErrorCode::ALL {
        let text = code.as_str();
        assert!(seen.insert(text), "duplicate code {text}");
        assert_eq!(
            serde_json::to_value(code).unwrap(),
            serde_json::Value::String(text.into())
        );
        assert!(code.status().is_client_error() || code.status().is_server_error());
    }
}

/// A keep-alive connection left idle for longer than a typical client pool keeps it (5 s, the
/// old actix default, is shorter than most load balancers' 60 s) is still served: the server
/// must not be the side that closes a connection a client is about to reuse, or the client
/// sees its request cut off (`IncompleteMessage`), as a large CSV export once did in CI.
#[actix_web::test]
async fn an_idle_keep_alive_connection_is_still_served() {
    use actix_web::rt::time::{sleep, timeout};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn answer(stream: &mut tokio::net::TcpStream, address: &str) -> String {
        let request = format!("GET /health/live HTTP/1.1\r\nHost: {address}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = vec![0u8; 4096];
        let read = timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("an answer");
        String::from_utf8_lossy(&buffer[..read.unwrap()]).to_string()
    }

    let app = crate::helpers::spawn_sqlite().await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    assert!(
        answer(&mut stream, &address)
            .await
            .starts_with("HTTP/1.1 200")
    );
    sleep(Duration::from_secs(6)).await;
    let second = answer(&mut stream, &address).await;
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "closed while idle: {second:?}"
    );
}

/// When SQLite's lock wait runs out, the answer is a retryable 503 with `Retry-After`, never a
/// 500, and nothing is changed; once the lock is free the same request goes through.
#[actix_web::test]
async fn a_busy_sqlite_answers_503_and_changes_nothing() {
    use diesel::connection::SimpleConnection;
    let (dir, url) = crate::helpers::fresh_sqlite();
    let mut settings = crate::helpers::test_settings(&url);
    settings.database.sqlite_busy_timeout_ms = 200;
    let app = crate::helpers::start(settings, Some(dir), None).await;
    let body = crate::requests::matter_body("market.establish");
    let post = || {
        app.client
            .post(app.url("/api/v1/requests"))
            .bearer_auth(app.enterprise_token())
            .json(&body)
            .send()
    };
    // Another process's writer holds SQLite's write lock.
    let mut intruder = crate::helpers::connect(&app);
    let mashangban::db::DbConnection::Sqlite(raw) = &mut intruder else {
        unreachable!("a SQLite test")
    };
    raw.batch_execute("BEGIN IMMEDIATE").unwrap();
    let response = post().await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string()),
        Some("1".to_string())
    );
    let problem = problem(response, 503).await;
    assert_eq!(problem["code"], "database_unavailable");
    raw.batch_execute("ROLLBACK").unwrap();
    let listed: serde_json::Value = app
        .get("/api/v1/requests", Some(&app.enterprise_token()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 0, "nothing was stored: {listed}");
    assert_eq!(post().await.unwrap().status(), 201);
}
