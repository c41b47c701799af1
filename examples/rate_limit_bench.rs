//! What the rate limiter costs a request: the counter's upsert alone, and `GET /api/v1/me`
//! served by a real server with the limiter off and on (quota far above the load), one request
//! at a time, `N` requests each after 50 to warm up. Prints the mean per request.
//!
//! Give a database of its own (it is migrated and written to):
//!
//! ```text
//! cargo run --release --example rate_limit_bench -- sqlite:///tmp/msb-rl/bench.db 1000
//! cargo run --release --example rate_limit_bench -- postgres://postgres@127.0.0.1:5432/msb_rl 1000
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use mashangban::app::Application;
use mashangban::auth::{Actor, Principal, TokenIssuer};
use mashangban::config::Settings;
use mashangban::db::{self, DatabaseUrl};

fn settings(url: &str, limited: bool) -> Settings {
    let mut settings = Settings::defaults();
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = url.into();
    settings.jwt.secret = "bench-secret-8c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f".into();
    settings.sla.worker = false;
    settings.mail.worker = false;
    settings.rate_limit.enabled = limited;
    settings.rate_limit.official = 1_000_000_000;
    settings
}

async fn per_request(url: &str, limited: bool, n: u32) -> Duration {
    let settings = settings(url, limited);
    let app = Application::build(settings.clone())
        .await
        .expect("server starts");
    let address = format!("http://127.0.0.1:{}/api/v1/me", app.port());
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    let principal = Principal {
        subject: "bench-admin".into(),
        actor: Actor::Admin,
    };
    let token = TokenIssuer::new(&settings.jwt).issue(
        &principal,
        Duration::from_secs(3600),
        chrono::Utc::now(),
    );
    let client = reqwest::Client::new();
    let get = || client.get(&address).bearer_auth(&token).send();
    for _ in 0..50 {
        get().await.expect("answered");
    }
    let started = Instant::now();
    for _ in 0..n {
        assert_eq!(get().await.expect("answered").status(), 200);
    }
    let mean = started.elapsed() / n;
    handle.stop(true).await;
    mean
}

#[actix_web::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u32>().ok()),
    ) else {
        eprintln!("usage: rate_limit_bench DATABASE_URL N");
        return ExitCode::from(2);
    };
    let parsed = DatabaseUrl::parse(url).expect("a sqlite:// or postgres:// URL");
    let mut conn = db::establish(&parsed, &settings(url, true).database).expect("connects");
    db::migrate(&mut conn, &parsed).expect("migrates");
    let started = Instant::now();
    for i in 0..n {
        db::rate_limits::hit(&mut conn, &format!("official:bench{}", i % 50), 0).expect("counts");
    }
    let upsert = started.elapsed() / n;
    drop(conn);
    let off = per_request(url, false, n).await;
    let on = per_request(url, true, n).await;
    println!("upsert alone {upsert:?}; GET /api/v1/me limiter off {off:?}, on {on:?}");
    ExitCode::SUCCESS
}
