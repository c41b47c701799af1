//! Intake throughput of the database layer without HTTP: the write transaction of
//! `POST /api/v1/requests` for `tax.registration`, and nothing else.
//!
//! Opens the same pool the server opens (`Database::open` with the default settings and the
//! given URL, migrations included), records the built-in catalog's version, then runs
//! `THREADS` threads for `SECONDS` seconds. Each thread loops "take a pooled connection, call
//! `mashangban::db::requests::create` with a `NewRequest`, give the connection back" and
//! records the time of each round. `create` is the crate's own intake transaction (SQLite
//! `BEGIN IMMEDIATE`): counter update and read, the request, its task, its material, its three
//! clocks, the routing decision and the audit event appended to the chain. The rows are those
//! the handler's `plan` makes for the README's `tax.registration` body (one `tax` lead task,
//! one provided material, clocks `window_intake` pending, `supplement_notice` running,
//! `statutory` pending), with fresh UUID v7 ids; no `Idempotency-Key`.
//!
//! Left out, compared with the endpoint: HTTP and JSON, token verification, the body check and
//! routing (`plan`), the hop to actix's blocking pool, and rendering the answer.
//!
//! Prints rounds per second and the p50/p99/max latency of one round, in microseconds. The
//! pool size is the server's default (8) unless `MASHANGBAN_DATABASE_POOL_SIZE` says otherwise.
//!
//! ```text
//! cargo run --release --example intake_bench -- sqlite:///tmp/msb-intake/bench.db 8 15
//! cargo run --release --example intake_bench -- postgres://postgres@127.0.0.1:5432/msb_intake 8 15
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, TimeDelta, Utc};
use mashangban::config::Settings;
use mashangban::db::requests::{
    self, ClockRow, Intake, MaterialRow, NewRequest, RequestRecord, RequestRow, RoutingDecisionRow,
    TaskRow,
};
use mashangban::db::{Database, clocks, write_transaction};
use mashangban::domain::Catalog;
use mashangban::domain::clock::Clock;
use uuid::Uuid;

const USCC: &str = "91350100M000100Y43";
const MATTER: &str = "tax.registration";

/// The rows the handler plans for the README's `tax.registration` submission, made now.
fn new_request(catalog_version: &str) -> (NewRequest, chrono::NaiveDateTime) {
    let now = Utc::now().trunc_subsecs(6);
    let at = now.naive_utc();
    let id = Uuid::now_v7().to_string();
    let task_id = Uuid::now_v7().to_string();
    let clock = |kind: &str, target: &str, running: bool| {
        let kind = kind.parse().expect("a clock kind");
        let mut row: ClockRow = clocks::to_row(
            &Clock::new(kind, target.parse().expect("a clock target")),
            Uuid::now_v7().to_string(),
            id.clone(),
            None,
            "tax".into(),
            MATTER.into(),
        );
        if running {
            row.state = "running".into();
            row.started_at = Some(at);
            row.due_at = Some(at + TimeDelta::days(7));
            row.check_at = row.due_at;
        }
        row
    };
    let explanation = serde_json::json!({
        "catalog_version": catalog_version,
        "kind": "matter",
        "code": MATTER,
        "lead_unit": "tax",
        "lead_rule": "matter `tax.registration` names `tax` as its lead unit: one intake, one feedback point",
        "tasks": [{"unit": "tax", "matter": MATTER, "role": "lead",
                   "rule": "matter `tax.registration` led by `tax` (catalog lead unit)"}],
    });
    let new = NewRequest {
        request: RequestRow {
            id: id.clone(),
            number: String::new(),
            uscc: USCC.into(),
            applicant_name: "上海马上办科技有限公司".into(),
            kind: "matter".into(),
            code: MATTER.into(),
            channel: "online".into(),
            intake_region: None,
            contact_email: "office@example.com".into(),
            form: r#"{"taxpayer_type":"small_scale"}"#.into(),
            commitment: false,
            status: "submitted".into(),
            lead_unit: "tax".into(),
            catalog_version: catalog_version.into(),
            revision: 1,
            created_at: at,
            updated_at: at,
            special_procedure: false,
            extended: false,
            deemed_accepted_at: None,
            result_kind: None,
            certificate: None,
            delivered_at: None,
        },
        tasks: vec![TaskRow {
            id: task_id,
            request_id: id.clone(),
            unit: "tax".into(),
            matter_code: MATTER.into(),
            category: "tax".into(),
            role: "lead".into(),
            status: "submitted".into(),
            created_at: at,
            claimed_by: None,
            claimed_at: None,
            special_procedure: false,
            opinion: None,
            opinion_note: None,
            opinion_by: None,
            opinion_at: None,
        }],
        materials: vec![MaterialRow {
            id: Uuid::now_v7().to_string(),
            request_id: id.clone(),
            matter_code: MATTER.into(),
            code: "business_licence".into(),
            name: "licence.pdf".into(),
            sha256: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
            size_bytes: Some(48213),
            status: "provided".into(),
            due_at: None,
            supplied_at: None,
            supplied_by: None,
            received_at_window: false,
        }],
        clocks: vec![
            clock("window_intake", "PT20M", false),
            clock("supplement_notice", "5 working_days", true),
            clock("statutory", "20 working_days", false),
        ],
        routing: RoutingDecisionRow {
            id: Uuid::now_v7().to_string(),
            request_id: id,
            catalog_version: catalog_version.into(),
            reason: "intake".into(),
            explanation: explanation.to_string(),
            decided_at: at,
        },
        number_day: now
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
            .format("%Y%m%d")
            .to_string(),
        assisted: None,
    };
    (new, at)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, threads, seconds] = args.as_slice() else {
        eprintln!("usage: intake_bench <database-url> <threads> <seconds>");
        return ExitCode::from(2);
    };
    let (Ok(threads), Ok(seconds)) = (threads.parse::<usize>(), seconds.parse::<u64>()) else {
        eprintln!("threads and seconds must be whole numbers");
        return ExitCode::from(2);
    };

    let mut settings = Settings::defaults();
    settings.database.url = url.clone();
    if let Some(size) = std::env::var("MASHANGBAN_DATABASE_POOL_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        settings.database.pool_size = size;
    }
    let database = match Database::open(&settings.database) {
        Ok(database) => database,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Requests reference their catalog version, as the server records it on start.
    let catalog = Catalog::builtin();
    let version = catalog.version().to_string();
    {
        let mut conn = database.pool_get().expect("pooled connection");
        let now = Utc::now().naive_utc();
        write_transaction(&mut conn, |conn| {
            requests::ensure_catalog_version(conn, &catalog, now)
        })
        .expect("catalog version recorded");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let database = database.clone();
            let stop = Arc::clone(&stop);
            let version = version.clone();
            thread::spawn(move || {
                // The handler renders an answer only for idempotent intakes; none here.
                let render = |_: &RequestRecord| String::new();
                let mut rounds: Vec<u32> = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let (new, now) = new_request(&version);
                    let mut conn = database.pool_get().expect("pooled connection");
                    match requests::create(&mut conn, &new, None, now, &render) {
                        Ok(Intake::Created(_)) => {}
                        Ok(_) => panic!("no idempotency key, yet not created"),
                        Err(e) => panic!("intake failed: {e:?}"),
                    }
                    drop(conn);
                    let micros = started.elapsed().as_micros();
                    rounds.push(u32::try_from(micros).unwrap_or(u32::MAX));
                }
                rounds
            })
        })
        .collect();
    let started = Instant::now();
    thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut rounds: Vec<u32> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker thread"))
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    if rounds.is_empty() {
        eprintln!("no round completed");
        return ExitCode::FAILURE;
    }
    rounds.sort_unstable();
    let at = |q: f64| rounds[((rounds.len() - 1) as f64 * q).round() as usize];
    println!(
        "intakes={} seconds={elapsed:.1} threads={threads} pool={} ops_per_s={:.0} p50_us={} p99_us={} max_us={}",
        rounds.len(),
        settings.database.pool_size,
        rounds.len() as f64 / elapsed,
        at(0.50),
        at(0.99),
        rounds[rounds.len() - 1],
    );
    ExitCode::SUCCESS
}
