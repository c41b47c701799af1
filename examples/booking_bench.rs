//! Booking throughput of the database layer without HTTP: the write transaction of
//! `POST /api/v1/appointments`, beside the raw database doing the same insert.
//!
//! Opens the same pool the server opens (`Database::open` with the default settings and the
//! given URL, migrations included), then, for each concurrency given (default 8 and 64), runs
//! that many threads for `SECONDS` seconds twice:
//! - `booking`: each round is `mashangban::db::appointments::book`, the crate's own booking
//!   transaction (SQLite `BEGIN IMMEDIATE`): the one-a-day check, the week row's conditional
//!   update, the slot row's conditional update (`booked < capacity`), the appointment row,
//!   the audit event appended to the chain and the confirmation mail written to the outbox.
//! - `raw_insert`: each round is a write transaction with the INSERT of the same appointment
//!   row alone: what the database costs with no limit, no audit and no mail.
//!
//! Every round books another enterprise into one of 50 slots of one counter whose capacity is
//! high enough never to refuse (so the slot rows are contended as in a busy morning, but no
//! round is turned away). Left out, compared with the endpoint: HTTP and JSON, the token, the
//! slot and body checks, the hop to actix's blocking pool, and rendering the answer.
//!
//! Prints, per run, rounds per second and the p50/p99/max latency of one round (microseconds).
//! The pool size is the server's default (8) unless `MASHANGBAN_DATABASE_POOL_SIZE` says
//! otherwise.
//!
//! ```text
//! cargo run --release --example booking_bench -- sqlite:///tmp/msb-booking/bench.db 10
//! cargo run --release --example booking_bench -- postgres://postgres@127.0.0.1:5432/msb_booking 10 8 64
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, SubsecRound, TimeDelta, Utc};
use diesel::prelude::*;
use mashangban::config::Settings;
use mashangban::db::appointments::{self, AppointmentRow, NewBooking, Outcome, Place};
use mashangban::db::schema::appointments as table;
use mashangban::db::{Database, write_transaction};
use mashangban::domain::audit::Entry;
use mashangban::error::ApiError;

/// Slots the rounds spread over.
const SLOTS: i64 = 50;

/// The booking of round `n`: its own enterprise (so neither the day nor the week rule
/// refuses), one of [`SLOTS`] slots of counter `BENCH`.
fn booking(n: u64, base: NaiveDateTime) -> (AppointmentRow, Place) {
    let now = Utc::now().trunc_subsecs(6).naive_utc();
    let start = base + TimeDelta::minutes(30 * (n as i64 % SLOTS));
    let place = Place {
        unit: "market".into(),
        counter: "BENCH".into(),
        starts_at: start,
        ends_at: start + TimeDelta::minutes(30),
        capacity: i32::MAX,
        no_show_at: start + TimeDelta::minutes(45),
    };
    let row = AppointmentRow {
        id: uuid::Uuid::now_v7().to_string(),
        uscc: format!("BENCH{n:013}"),
        matter: "market.establish".into(),
        unit: place.unit.clone(),
        counter: place.counter.clone(),
        starts_at: place.starts_at,
        ends_at: place.ends_at,
        local_date: start.date().to_string(),
        week: start.date().to_string(),
        status: "booked".into(),
        contact_name: "张敏".into(),
        contact_phone: "13800138000".into(),
        contact_email: "office@example.com".into(),
        request_id: None,
        idempotency_key: None,
        body_sha256: None,
        no_show_at: place.no_show_at,
        reminder_due_at: Some(start - TimeDelta::days(1)),
        reminded_at: None,
        checked_in_at: None,
        checked_in_by: None,
        cancelled_at: None,
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    (row, place)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Booking,
    RawInsert,
}

fn run(
    database: &Database,
    kind: Kind,
    threads: usize,
    seconds: u64,
    counter: &Arc<AtomicU64>,
) -> Vec<u32> {
    // A future morning far enough ahead that no run meets another's slots by accident.
    let base = (Utc::now() + TimeDelta::days(400))
        .date_naive()
        .and_hms_opt(1, 0, 0)
        .expect("valid");
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let database = database.clone();
            let stop = Arc::clone(&stop);
            let counter = Arc::clone(counter);
            thread::spawn(move || {
                let mut rounds: Vec<u32> = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let (row, place) = booking(n, base);
                    let started = Instant::now();
                    let mut conn = database.pool_get().expect("pooled connection");
                    match kind {
                        Kind::Booking => {
                            let new = NewBooking {
                                row,
                                places: vec![place],
                                weekly_limit: i32::MAX,
                            };
                            let now = Utc::now();
                            let compose = |row: &AppointmentRow| {
                                let event = Entry {
                                    request_id: appointments::trail(&row.id),
                                    actor: row.uscc.clone(),
                                    role: "enterprise".into(),
                                    unit: None,
                                    action: "appointment.booked".into(),
                                    state_before: None,
                                    state_after: Some("booked".into()),
                                    payload: serde_json::json!({"counter": row.counter}),
                                    at: now,
                                };
                                (vec![event], vec![])
                            };
                            match appointments::book(&mut conn, &new, None, now, &compose) {
                                Ok(Outcome::Done(_)) => {}
                                Ok(other) => panic!("not booked: {other:?}"),
                                Err(e) => panic!("booking failed: {e:?}"),
                            }
                        }
                        Kind::RawInsert => {
                            write_transaction(&mut conn, |conn| -> Result<(), ApiError> {
                                diesel::insert_into(table::table)
                                    .values(&row)
                                    .execute(conn)?;
                                Ok(())
                            })
                            .expect("raw insert");
                        }
                    }
                    drop(conn);
                    let micros = started.elapsed().as_micros();
                    rounds.push(u32::try_from(micros).unwrap_or(u32::MAX));
                }
                rounds
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker thread"))
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(seconds)) = (args.first(), args.get(1)) else {
        eprintln!("usage: booking_bench <database-url> <seconds> [concurrency…] (default 8 64)");
        return ExitCode::from(2);
    };
    let Ok(seconds) = seconds.parse::<u64>() else {
        eprintln!("seconds must be a whole number");
        return ExitCode::from(2);
    };
    let levels: Vec<usize> = if args.len() > 2 {
        match args[2..].iter().map(|a| a.parse()).collect() {
            Ok(levels) => levels,
            Err(_) => {
                eprintln!("each concurrency must be a whole number");
                return ExitCode::from(2);
            }
        }
    } else {
        vec![8, 64]
    };
    let mut settings = Settings::defaults();
    settings.database.url = url.clone();
    if let Some(size) = std::env::var("MASHANGBAN_DATABASE_POOL_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        settings.database.pool_size = size;
    }
    // 64 threads queue for 8 connections: wait for one rather than fail.
    settings.database.connect_timeout_secs = 60;
    let database = match Database::open(&settings.database) {
        Ok(database) => database,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let counter = Arc::new(AtomicU64::new(
        u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0) % 1_000_000_000_000,
    ));
    for threads in levels {
        for kind in [Kind::Booking, Kind::RawInsert] {
            let started = Instant::now();
            let mut rounds = run(&database, kind, threads, seconds, &counter);
            let elapsed = started.elapsed().as_secs_f64();
            if rounds.is_empty() {
                eprintln!("no round completed");
                return ExitCode::FAILURE;
            }
            rounds.sort_unstable();
            let at = |q: f64| rounds[((rounds.len() - 1) as f64 * q).round() as usize];
            println!(
                "{} rounds={} seconds={elapsed:.1} threads={threads} pool={} ops_per_s={:.0} p50_us={} p99_us={} max_us={}",
                match kind {
                    Kind::Booking => "booking   ",
                    Kind::RawInsert => "raw_insert",
                },
                rounds.len(),
                settings.database.pool_size,
                rounds.len() as f64 / elapsed,
                at(0.50),
                at(0.99),
                rounds[rounds.len() - 1],
            );
        }
    }
    ExitCode::SUCCESS
}
