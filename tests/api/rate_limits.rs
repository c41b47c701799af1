//! Rate limits per enterprise, official and client address: the limit trips with 429 and the
//! RateLimit headers on both backends, two instances on one PostgreSQL share the count, SQLite
//! counts in the process and writes nothing, health and metrics are never limited. Each test
//! lowers the quotas for itself.

use mashangban::config::Settings;
use serde_json::Value;

use crate::helpers::{
    TestApp, connect, fresh_postgres, fresh_sqlite, problem, start, test_settings,
};

/// Which database the servers of a test share.
#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// `count` servers on one fresh database of `backend`, each with low quotas in an hour-long
/// window (so that no test straddles a window's end); `None` when PostgreSQL is not set up.
async fn servers(backend: Backend, count: usize) -> Option<Vec<TestApp>> {
    let low = |url: &str| -> Settings {
        let mut settings = test_settings(url);
        settings.rate_limit.enabled = true;
        settings.rate_limit.window_secs = 3600;
        settings.rate_limit.enterprise = 4;
        settings.rate_limit.official = 6;
        settings.rate_limit.address = 2;
        settings
    };
    let mut apps = Vec::new();
    match backend {
        Backend::Sqlite => {
            let (dir, url) = fresh_sqlite();
            let mut guard = Some(dir);
            for _ in 0..count {
                apps.push(start(low(&url), guard.take(), None).await);
            }
        }
        Backend::Postgres => {
            let (admin, name, url) = fresh_postgres()?;
            let mut guard = Some((admin, name));
            for _ in 0..count {
                // The last server drops the database; the others share it until then.
                let pg = if apps.len() + 1 == count {
                    guard.take()
                } else {
                    None
                };
                apps.push(start(low(&url), None, pg).await);
            }
        }
    }
    Some(apps)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

async fn the_limit_trips_with_429_and_the_ratelimit_headers(backend: Backend) {
    let Some(apps) = servers(backend, 1).await else {
        return;
    };
    let app = &apps[0];
    let token = app.enterprise_token();
    for left in (0..4).rev() {
        let response = app.get("/api/v1/me", Some(&token)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "ratelimit-policy").as_deref(),
            Some("\"enterprise\";q=4;w=3600")
        );
        let state = header(&response, "ratelimit").unwrap();
        assert!(
            state.starts_with(&format!("\"enterprise\";r={left};t=")),
            "{state}"
        );
    }
    let response = app.get("/api/v1/requests", Some(&token)).await;
    let retry: i64 = header(&response, "retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(
        header(&response, "ratelimit").unwrap(),
        format!("\"enterprise\";r=0;t={retry}")
    );
    assert_eq!(
        header(&response, "ratelimit-policy").as_deref(),
        Some("\"enterprise\";q=4;w=3600")
    );
    let body: Value = problem(response, 429).await;
    assert_eq!(body["code"], "too_many_requests");

    // Another user of the same enterprise shares its quota; an official has their own.
    let colleague = app.token(mashangban::auth::Actor::Enterprise(
        mashangban::domain::Uscc::parse(crate::helpers::USCC_A).unwrap(),
    ));
    assert_eq!(app.get("/api/v1/me", Some(&colleague)).await.status(), 429);
    let admin = app.admin_token();
    let response = app.get("/api/v1/me", Some(&admin)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "ratelimit-policy").as_deref(),
        Some("\"official\";q=6;w=3600")
    );
}

async fn two_instances_share_the_count(backend: Backend) {
    let Some(apps) = servers(backend, 2).await else {
        return;
    };
    let token = apps[0].enterprise_token();
    for app in [&apps[0], &apps[1], &apps[0], &apps[1]] {
        assert_eq!(app.get("/api/v1/me", Some(&token)).await.status(), 200);
    }
    // Four counted across both: the fifth is refused by either.
    assert_eq!(apps[0].get("/api/v1/me", Some(&token)).await.status(), 429);
    let response = apps[1].get("/api/v1/me", Some(&token)).await;
    assert_eq!(problem(response, 429).await["code"], "too_many_requests");

    // Concurrent requests on both servers: exactly the quota (6 for an official) get through.
    let admin = apps[0].admin_token();
    let answers = futures_util::future::join_all(
        (0..14).map(|i| apps[i % 2].get("/api/v1/me", Some(&admin))),
    )
    .await;
    let served = answers.iter().filter(|r| r.status() == 200).count();
    let refused = answers.iter().filter(|r| r.status() == 429).count();
    assert_eq!((served, refused), (6, 8));
}

/// On SQLite (one instance per file) the counts live in the process: a read stays a read,
/// never an upsert queued behind the single writer, and the limit trips all the same.
async fn sqlite_counts_in_the_process_and_writes_nothing() {
    let apps = servers(Backend::Sqlite, 1)
        .await
        .expect("SQLite needs no setup");
    let app = &apps[0];
    let token = app.enterprise_token();
    for _ in 0..4 {
        assert_eq!(app.get("/api/v1/me", Some(&token)).await.status(), 200);
    }
    let response = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(problem(response, 429).await["code"], "too_many_requests");
    for _ in 0..2 {
        assert_eq!(app.get("/api/v1/matters", None).await.status(), 200);
    }
    assert_eq!(app.get("/api/v1/matters", None).await.status(), 429);

    use diesel::prelude::*;
    use mashangban::db::schema::rate_limits;
    let mut conn = connect(app);
    let rows: i64 = rate_limits::table.count().get_result(&mut conn).unwrap();
    assert_eq!(rows, 0, "SQLite keeps no rate-limit rows");
}

async fn a_client_address_is_limited_on_the_catalog_but_not_on_health(backend: Backend) {
    let Some(apps) = servers(backend, 1).await else {
        return;
    };
    let app = &apps[0];
    for _ in 0..2 {
        let response = app.get("/api/v1/matters", None).await;
        assert_eq!(response.status(), 200);
        assert!(
            header(&response, "ratelimit")
                .unwrap()
                .starts_with("\"address\";")
        );
    }
    let response = app.get("/api/v1/units", None).await;
    assert_eq!(
        header(&response, "ratelimit-policy").as_deref(),
        Some("\"address\";q=2;w=3600")
    );
    problem(response, 429).await;
    // Open311 and a request with a token that does not verify count for the address too.
    assert_eq!(
        app.get("/open311/v2/services.json", None).await.status(),
        429
    );
    assert_eq!(app.get("/api/v1/me", Some("forged")).await.status(), 429);

    // Probes and scrapes are never counted.
    for path in ["/health/live", "/health/ready", "/metrics"] {
        for _ in 0..5 {
            let response = app.get(path, None).await;
            assert_eq!(response.status(), 200, "{path}");
            assert!(header(&response, "ratelimit").is_none(), "{path}");
        }
    }
    // A valid token has its own bucket, whatever the address.
    let token = app.enterprise_token();
    assert_eq!(app.get("/api/v1/matters", Some(&token)).await.status(), 200);
}

/// Switched off, nothing is counted and no header is sent (the switch is read before the
/// store is touched, so one backend suffices).
#[actix_web::test]
async fn disabled_limits_count_nothing() {
    let (dir, url) = fresh_sqlite();
    let mut settings = test_settings(&url);
    settings.rate_limit.enabled = false;
    settings.rate_limit.address = 1;
    let app = start(settings, Some(dir), None).await;
    for _ in 0..5 {
        let response = app.get("/api/v1/matters", None).await;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "ratelimit").is_none());
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[cfg_attr(not(postgres_tests), ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time")]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both!(
    the_limit_trips_with_429_and_the_ratelimit_headers,
    a_client_address_is_limited_on_the_catalog_but_not_on_health,
);

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time"
)]
async fn postgres_instances_share_the_count() {
    two_instances_share_the_count(Backend::Postgres).await;
}

#[actix_web::test]
async fn sqlite_counts_locally() {
    sqlite_counts_in_the_process_and_writes_nothing().await;
}

/// The 429 is documented on every counted operation (with its headers) and on no probe; the
/// 422 of a NUL character on every operation that takes input.
#[actix_web::test]
async fn the_document_declares_429_and_the_nul_422() {
    let (dir, url) = fresh_sqlite();
    let app = start(test_settings(&url), Some(dir), None).await;
    let doc: Value = app
        .get("/api-docs/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            let probe = path.starts_with("/health/") || path == "/metrics";
            assert_eq!(responses.get("429").is_none(), probe, "{method} {path}");
            let takes_input = operation["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["in"] != "header"))
                || operation.get("requestBody").is_some();
            if takes_input {
                assert!(responses.get("422").is_some(), "{method} {path}");
            }
        }
    }
    let headers = &doc["paths"]["/api/v1/requests"]["get"]["responses"]["429"]["headers"];
    for name in ["Retry-After", "RateLimit", "RateLimit-Policy"] {
        assert!(headers.get(name).is_some(), "{name}: {headers}");
    }
}
