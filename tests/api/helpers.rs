//! The test harness: a real server on port 0 against a fresh SQLite file, or a fresh
//! PostgreSQL database when `MASHANGBAN_TEST_DATABASE_URL` is set.

use std::io::Write;
use std::sync::Once;
use std::time::Duration;

use chrono::Utc;
use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use mashangban::app::Application;
use mashangban::auth::{Actor, Principal, TokenIssuer};
use mashangban::config::{Open311Client, Settings};
use mashangban::db::{self, DatabaseUrl, DbConnection};
use mashangban::domain::{Channel, UnitCode, Uscc};
use serde_json::Value;
use tempfile::TempDir;

/// Names the PostgreSQL server tests use (any database on it; fresh ones are created).
pub const PG_ENV: &str = "MASHANGBAN_TEST_DATABASE_URL";

/// A valid unified social credit code (the example of GB 32100-2015).
pub const USCC_A: &str = "91350100M000100Y43";

/// The Open311 API key of enterprise A on every test server (online channel).
pub const OPEN311_KEY_A: &str = "open311-test-key-enterprise-a";
/// The Open311 API key of a second enterprise, `9144030071526726XG` (self-service channel).
pub const OPEN311_KEY_B: &str = "open311-test-key-enterprise-b";

/// The HS256 secret of every test server (a strong one: a weak one is refused at start).
pub const TEST_JWT_SECRET: &str = "test-secret-5f2c9a41-7d3e-4b8a-9c60-e1f3a2b4c5d6";

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// `http://127.0.0.1:PORT` of the separate metrics listener, when `metrics.bind` is set.
    pub metrics_address: Option<String>,
    /// The settings the server runs with.
    pub settings: Settings,
    /// A client without default headers.
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    _dir: Option<TempDir>,
    pg_database: Option<(String, String)>,
}

impl TestApp {
    /// Full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A signed token for `actor`, valid for an hour.
    pub fn token(&self, actor: Actor) -> String {
        let principal = Principal {
            subject: format!("test-{}", actor.role().as_str()),
            actor,
        };
        TokenIssuer::new(&self.settings.jwt).issue(
            &principal,
            Duration::from_secs(3600),
            Utc::now(),
        )
    }

    /// A signed token for `actor` with the subject `subject` (several officials of one unit).
    pub fn token_for(&self, subject: &str, actor: Actor) -> String {
        let principal = Principal {
            subject: subject.into(),
            actor,
        };
        TokenIssuer::new(&self.settings.jwt).issue(
            &principal,
            Duration::from_secs(3600),
            Utc::now(),
        )
    }

    /// Token of enterprise A.
    pub fn enterprise_token(&self) -> String {
        self.token(Actor::Enterprise(Uscc::parse(USCC_A).unwrap()))
    }

    /// Token of an administrator.
    pub fn admin_token(&self) -> String {
        self.token(Actor::Admin)
    }

    /// Token of a clerk of `unit`.
    pub fn clerk_token(&self, unit: UnitCode) -> String {
        self.token(Actor::Clerk(unit))
    }

    /// GET `path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request reaches the server")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting; the runtime ends with the test anyway.
        drop(self.handle.stop(false));
        if let Some((admin_url, name)) = self.pg_database.take() {
            if let Ok(mut conn) = PgConnection::establish(&admin_url) {
                let _ =
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn);
            }
        }
    }
}

/// Settings for a test server on port 0 with `database_url`.
pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::defaults();
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.server.shutdown_timeout_secs = 1;
    settings.database.url = database_url.into();
    settings.database.pool_size = 4;
    // None is shipped; without one, the server would generate one into the data folder.
    settings.jwt.secret = TEST_JWT_SECRET.into();
    // Mail stays in the outbox table unless a test starts the sender with its own SMTP sink
    // (tests/api/mail.rs); nothing is written to ./data/outbox.
    settings.mail.worker = false;
    // Nor is the calendar's horizon mail written (today may be within its lead time): the
    // horizon tests turn it on.
    settings.calendar.horizon_notice_days = 0;
    for (key, uscc, name, channel) in [
        (
            OPEN311_KEY_A,
            USCC_A,
            "上海马上办科技有限公司",
            Channel::Online,
        ),
        (
            OPEN311_KEY_B,
            "9144030071526726XG",
            "深圳测试有限公司",
            Channel::SelfService,
        ),
    ] {
        settings.open311.api_keys.insert(
            key.into(),
            Open311Client {
                uscc: uscc.into(),
                name: name.into(),
                channel,
            },
        );
    }
    settings
}

/// Starts the server with `settings` and waits until it is bound.
pub async fn start(
    settings: Settings,
    dir: Option<TempDir>,
    pg: Option<(String, String)>,
) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("test server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        metrics_address,
        settings,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        handle,
        _dir: dir,
        pg_database: pg,
    }
}

/// A server on a fresh SQLite file in a temporary folder.
pub async fn spawn_sqlite() -> TestApp {
    let (dir, url) = fresh_sqlite();
    start(test_settings(&url), Some(dir), None).await
}

/// A fresh SQLite URL in a new temporary folder (kept alive by the returned guard).
pub fn fresh_sqlite() -> (TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}", dir.path().join("data/test.db").display());
    (dir, url)
}

/// A server on a fresh PostgreSQL database, or `None` (with a note) when none is configured.
pub async fn spawn_postgres() -> Option<TestApp> {
    let (admin_url, name, url) = fresh_postgres()?;
    Some(start(test_settings(&url), None, Some((admin_url, name))).await)
}

/// Creates a fresh PostgreSQL database; returns (server URL, database name, database URL).
///
/// A test that needs it is `#[ignore]`d unless the variable was set when the tests were built
/// (`build.rs` sets the `postgres_tests` cfg), so a run without PostgreSQL counts those tests
/// as ignored, never as passed; a build that expects PostgreSQL and does not find it fails.
pub fn fresh_postgres() -> Option<(String, String, String)> {
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        if cfg!(postgres_tests) {
            panic!("{PG_ENV} was set when the tests were built but is not set now");
        }
        static NOTE: Once = Once::new();
        NOTE.call_once(|| {
            // Written past the test harness's capture so it shows in every run.
            let _ = writeln!(
                std::io::stderr(),
                "note: PostgreSQL was skipped: set {PG_ENV}=postgres://… to run every test on PostgreSQL too"
            );
        });
        return None;
    };
    let name = format!("msb_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = PgConnection::establish(&admin_url)
        .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is unreachable: {e}"));
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .expect("create test database");
    let mut url = url::Url::parse(&admin_url).expect("valid PostgreSQL URL");
    url.set_path(&format!("/{name}"));
    Some((admin_url, name, url.to_string()))
}

/// Generates `#[actix_web::test]`s that run each named `async fn(&TestApp)` once on SQLite and
/// once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    let app = $crate::helpers::spawn_sqlite().await;
                    super::$name(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[cfg_attr(not(postgres_tests), ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time")]
                async fn $name() {
                    let app = $crate::helpers::spawn_postgres()
                        .await
                        .expect("MASHANGBAN_TEST_DATABASE_URL is set");
                    super::$name(&app).await;
                }
            )*
        }
    };
}

/// Reads a problem+json body, checking the media type and the status field.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(
        body["type"],
        format!("urn:mashangban:problem:{}", body["code"].as_str().unwrap())
    );
    body
}

/// A connection of our own to the server's database, to look at rows or to change them as an
/// intruder (or the passing of time) would.
pub fn connect(app: &TestApp) -> DbConnection {
    let url = DatabaseUrl::parse(&app.settings.database.url).unwrap();
    db::establish(&url, &app.settings.database).unwrap()
}

/// Submits `body` as enterprise A; answers the created request (201 checked).
pub async fn submit(app: &TestApp, body: &Value) -> Value {
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// POSTs `body` to `path` as `token`, with `If-Match` set to the `ETag` that `token` reads at
/// `read` (no `If-Match` when it cannot read one).
pub async fn post_if_match(
    app: &TestApp,
    token: &str,
    path: &str,
    read: &str,
    body: &Value,
) -> reqwest::Response {
    let current = app.get(read, Some(token)).await;
    let etag = current
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let mut request = app.client.post(app.url(path)).bearer_auth(token).json(body);
    if let Some(etag) = etag {
        request = request.header("If-Match", etag);
    }
    request.send().await.unwrap()
}

/// Reads request `id`'s `ETag`, then takes the lifecycle step `body` with it.
pub async fn act(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    post_if_match(
        app,
        token,
        &format!("/api/v1/requests/{id}/actions"),
        &format!("/api/v1/requests/{id}"),
        &body,
    )
    .await
}

/// [`act`], checking the answer is 200; answers the request after the step.
pub async fn act_ok(app: &TestApp, token: &str, id: &str, body: Value) -> Value {
    let response = act(app, token, id, body.clone()).await;
    let status = response.status();
    let json: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}: {json}");
    json
}

/// Runs `python3 SCRIPT ARGS…` (a script of the tests' own, talking to a live server) on the
/// blocking pool; asserts it exited 0 and printed `OK`, and answers what it printed.
pub async fn run_python(script: &'static str, args: Vec<String>) -> String {
    let output = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args(&args)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("OK"), "{stdout}");
    stdout
}
