//! HTTP conventions: problem+json for 404, 405 and 413; `HEAD`; conditional `GET`; security
//! headers; CORS.

use reqwest::Method;
use reqwest::header::HeaderMap;

use crate::helpers::{self, TestApp, problem};
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
        assert_eq!(response.headers()["allow"], "GET, HEAD", "{method} {path}");
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

/// Headers that differ between two answers to the same request (`ratelimit` counts each one).
const VOLATILE: &[&str] = &["date", "x-request-id", "ratelimit"];

fn stable(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| !VOLATILE.contains(&name.as_str()))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
        .collect();
    all.sort();
    all
}

/// A request of enterprise A; answers its path.
async fn a_request(app: &TestApp) -> String {
    let created = helpers::submit(app, &crate::requests::matter_body("market.establish")).await;
    format!("/api/v1/requests/{}", created["id"].as_str().unwrap())
}

async fn head_answers_as_get_without_a_body(app: &TestApp) {
    let token = app.enterprise_token();
    let request = a_request(app).await;
    for (path, token) in [
        ("/health/live", None),
        ("/health/ready", None),
        ("/api/v1/units", None),
        ("/api/v1/matters", None),
        ("/api/v1/matters/market.establish", None),
        ("/api/v1/bundles", None),
        ("/api/v1/me", Some(token.as_str())),
        (request.as_str(), Some(token.as_str())),
        ("/docs/", None),
        ("/api-docs/openapi.json", None),
        ("/open311/v2/services.json", None),
        ("/open311/v2/services.xml", None),
        // Errors too: the same status and problem headers.
        ("/api/v1/matters/no.such", None),
        ("/api/v1/me", None),
    ] {
        let send = |method: Method| {
            let mut builder = app.client.request(method, app.url(path));
            if let Some(token) = token {
                builder = builder.bearer_auth(token);
            }
            builder.send()
        };
        let get = send(Method::GET).await.unwrap();
        let head = send(Method::HEAD).await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(stable(head.headers()), stable(get.headers()), "HEAD {path}");
        assert!(head.headers().contains_key("x-request-id"), "HEAD {path}");
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }

    // On the wire: the GET's Content-Length, and not one byte of body after the head.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let raw = format!("HEAD /api/v1/matters HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length = app
        .get("/api/v1/matters", None)
        .await
        .bytes()
        .await
        .unwrap()
        .len();
    assert!(
        head.contains(&format!("content-length: {length}")),
        "{head}"
    );
    assert!(body.is_empty(), "{body}");

    // HEAD where only POST is served is a 405 naming HEAD; nowhere at all, a 404.
    let response = app
        .client
        .head(app.url(&format!("{request}/actions")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let response = app.client.head(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

async fn if_none_match_answers_304(app: &TestApp) {
    let token = app.enterprise_token();
    let request = a_request(app).await;
    for (path, token) in [
        ("/api/v1/units", None),
        ("/api/v1/matters", None),
        ("/api/v1/matters?text=market", None),
        ("/api/v1/matters/market.establish", None),
        ("/api/v1/bundles", None),
        (request.as_str(), Some(token.as_str())),
    ] {
        let send = |method: Method, condition: Option<String>| {
            let mut builder = app.client.request(method, app.url(path));
            if let Some(token) = token {
                builder = builder.bearer_auth(token);
            }
            if let Some(condition) = condition {
                builder = builder.header("If-None-Match", condition);
            }
            builder.send()
        };
        let first = send(Method::GET, None).await.unwrap();
        assert_eq!(first.status(), 200, "{path}");
        let etag = first.headers()["etag"].to_str().unwrap().to_string();
        let cache_control = first.headers()["cache-control"].clone();
        let opaque = etag.trim_start_matches("W/").to_string();
        for condition in [
            etag.clone(),
            format!("W/{opaque}"),
            format!("\"other\", {etag}"),
            format!("W/\"x\",W/{opaque}"),
            "*".to_string(),
        ] {
            for method in [Method::GET, Method::HEAD] {
                let response = send(method.clone(), Some(condition.clone())).await.unwrap();
                assert_eq!(
                    response.status(),
                    304,
                    "{method} {path} If-None-Match: {condition}"
                );
                assert_eq!(response.headers()["etag"], etag.as_str(), "{path}");
                assert_eq!(response.headers()["cache-control"], cache_control, "{path}");
                assert!(!response.headers().contains_key("content-type"), "{path}");
                assert!(response.bytes().await.unwrap().is_empty());
            }
        }
        for condition in ["\"other\"", "W/\"other\", \"r999\""] {
            let response = send(Method::GET, Some(condition.to_string()))
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path} If-None-Match: {condition}");
            assert!(!response.bytes().await.unwrap().is_empty());
        }
    }
    // Not found is not "not modified", whatever the condition.
    let response = app
        .client
        .get(app.url("/api/v1/matters/no.such"))
        .header("If-None-Match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

/// `If-Match` per RFC 9110 §13.1.1: `*` matches the current revision, a list matches if any
/// member names it; an empty one names none (412).
async fn if_match_takes_any_and_lists(app: &TestApp) {
    let request = a_request(app).await;
    let clerk = app.clerk_token("market".parse().unwrap());
    let step = |condition: &'static str, action: &'static str| {
        app.client
            .post(app.url(&format!("{request}/actions")))
            .bearer_auth(&clerk)
            .header("If-Match", condition)
            .json(&serde_json::json!({ "action": action }))
            .send()
    };
    let response = step("*", "call").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"r2\"");
    let response = step("\"r9\", W/\"r2\"", "accept").await.unwrap();
    assert_eq!(response.status(), 200);
    let response = step("\"r1\", \"r2\"", "start_review").await.unwrap();
    assert_eq!(response.headers()["etag"], "\"r3\"");
    assert_eq!(problem(response, 412).await["code"], "precondition_failed");
    let response = step("", "start_review").await.unwrap();
    assert_eq!(problem(response, 412).await["code"], "precondition_failed");
}

async fn security_headers_are_sent(app: &TestApp) {
    let token = app.enterprise_token();
    let admin = app.admin_token();
    let request = a_request(app).await;
    let cases: Vec<(&str, Option<&str>, bool)> = vec![
        ("/api/v1/units", None, false),
        ("/api/v1/matters/market.establish", None, false),
        ("/open311/v2/services.json", None, false),
        ("/api/v1/me", Some(&token), true),
        ("/api/v1/me", None, true),
        (&request, Some(&token), true),
        ("/api/v1/requests", Some(&token), true),
        ("/api/v1/instances", Some(&admin), true),
        ("/metrics", Some(&admin), true),
        ("/open311/v2/requests.json", None, true),
    ];
    for (path, token, personal) in cases {
        let response = app.get(path, token).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        let cache = headers.get("cache-control").map(|v| v.to_str().unwrap());
        if personal {
            assert_eq!(cache, Some("no-store"), "{path}");
        } else {
            assert_ne!(cache, Some("no-store"), "{path}");
        }
    }
    for path in ["/health/live", "/nowhere", "/api-docs/openapi.json"] {
        let response = app.get(path, None).await;
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    // The docs UI: a policy its own scripts, styles and images load under, and no framing.
    let page = app.get("/docs/", None).await;
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    // The page loads nothing from elsewhere and has no inline script the policy would block.
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("http"),
        "{html}"
    );
}

on_both_backends!(
    unknown_paths_are_problem_404,
    wrong_methods_are_problem_405_with_allow,
    oversized_bodies_are_problem_413,
    head_answers_as_get_without_a_body,
    if_none_match_answers_304,
    if_match_takes_any_and_lists,
    security_headers_are_sent,
);

/// `{"bundle": null}` without a matter names nothing to route: 422, not a crash (found by
/// schemathesis from the intake example).
#[actix_web::test]
async fn a_null_bundle_without_a_matter_is_422() {
    let app = helpers::spawn_sqlite().await;
    let mut body = crate::requests::matter_body("market.establish");
    let object = body.as_object_mut().unwrap();
    object.remove("matter");
    object.insert("bundle".into(), serde_json::Value::Null);
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    let body = problem(response, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/matter", "{body}");
}

const PORTAL: &str = "https://portal.example.gov.cn";

async fn preflight(app: &TestApp, origin: &str, method: &str, headers: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url("/api/v1/requests"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn cors_is_off_unless_origins_are_configured() {
    let app = helpers::spawn_sqlite().await;
    let response = preflight(&app, PORTAL, "POST", "authorization,content-type").await;
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    problem(response, 405).await;
    let response = app
        .client
        .get(app.url("/api/v1/units"))
        .header("Origin", PORTAL)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !response
            .headers()
            .keys()
            .any(|name| name.as_str().starts_with("access-control-"))
    );
}

#[actix_web::test]
async fn cors_answers_listed_origins_only() {
    let (dir, url) = helpers::fresh_sqlite();
    let mut settings = helpers::test_settings(&url);
    settings.cors.allowed_origins = vec![PORTAL.into(), "http://localhost:5173".into()];
    let app = helpers::start(settings, Some(dir), None).await;

    // A preflight from a listed origin, for what the portal needs.
    let response = preflight(
        &app,
        PORTAL,
        "POST",
        "authorization,content-type,if-match,idempotency-key",
    )
    .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], PORTAL);
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("PUT"),
        "{methods}"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in [
        "authorization",
        "content-type",
        "if-match",
        "idempotency-key",
    ] {
        assert!(allowed.contains(header), "{allowed}");
    }
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(
        headers["vary"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin")
    );

    // The answer itself names the origin and exposes what the portal reads.
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(app.enterprise_token())
        .header("Origin", PORTAL)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], PORTAL);
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in ["etag", "location", "retry-after", "x-request-id"] {
        assert!(exposed.contains(header), "{exposed}");
    }

    // Another origin: the preflight is refused (problem+json), the answer carries no allowance.
    for (origin, method, headers) in [
        ("https://evil.example.com", "POST", "authorization"),
        (
            "https://portal.example.gov.cn.evil.example.com",
            "GET",
            "authorization",
        ),
        ("http://portal.example.gov.cn", "GET", "authorization"),
        (PORTAL, "PATCH", "authorization"),
        (PORTAL, "POST", "x-unlisted"),
    ] {
        let response = preflight(&app, origin, method, headers).await;
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{origin} {method} {headers}"
        );
        let body = problem(response, 403).await;
        assert_eq!(body["code"], "forbidden");
    }
    let response = app
        .client
        .get(app.url("/api/v1/units"))
        .header("Origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

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
