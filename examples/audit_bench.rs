//! What the audit chain costs a write, without HTTP: one small change per write transaction,
//! with and without the chain's append, and batch appends.
//!
//! Opens the same pool the server opens (`Database::open` with the default settings and the
//! given URL, migrations included) and runs `THREADS` threads for `SECONDS` seconds. Each
//! thread loops "take a pooled connection, run one write transaction
//! (`db::write_transaction`: `BEGIN IMMEDIATE` on SQLite), give the connection back" and
//! records the time of each round. `MODE` says what the transaction does:
//!
//! - `change`: a conditional update of a row of the thread's own (`UPDATE audit_bench_rows SET
//!   revision = revision + 1 WHERE id = ? AND revision = ?`, the shape of an action's
//!   `If-Match` update), and nothing else. Threads never touch each other's rows, so on
//!   PostgreSQL nothing but the commit serialises them.
//! - `change+audit`: the same, then `db::audit::append` of one event, as every action does:
//!   the chain's advisory lock (PostgreSQL), the head read and the insert.
//! - `batch:N`: `db::audit::append_many` of N events (the SLA worker's clock events).
//!
//! The scratch table `audit_bench_rows` is created in the benchmark database (use a database
//! of its own). Prints transactions per second, events per second and the p50/p99/max
//! latency of one round in microseconds. The pool size is the server's default (8) unless
//! `MASHANGBAN_DATABASE_POOL_SIZE` says otherwise.
//!
//! ```text
//! cargo run --release --example audit_bench -- sqlite:///tmp/msb-audit/bench.db 8 15 change+audit
//! cargo run --release --example audit_bench -- postgres://postgres@127.0.0.1:5432/msb_audit 64 15 change
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use mashangban::config::Settings;
use mashangban::db::{Database, DbConnection, audit, write_transaction};
use mashangban::domain::audit::Entry;
use serde_json::json;

/// What one transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Change,
    ChangeAndAudit,
    Batch(usize),
}

impl Mode {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "change" => Some(Self::Change),
            "change+audit" => Some(Self::ChangeAndAudit),
            _ => text
                .strip_prefix("batch:")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .map(Self::Batch),
        }
    }

    fn events(self) -> usize {
        match self {
            Self::Change => 0,
            Self::ChangeAndAudit => 1,
            Self::Batch(n) => n,
        }
    }
}

/// An event like an action's: a clerk accepting a request.
fn entry(row: i64) -> Entry {
    Entry {
        request_id: format!("bench-{row}"),
        actor: "clerk-tax-li".into(),
        role: "clerk".into(),
        unit: Some("tax".into()),
        action: "accept".into(),
        state_before: Some("called".into()),
        state_after: Some("accepted".into()),
        payload: json!({}),
        at: Utc::now().trunc_subsecs(6),
    }
}

/// The `If-Match`-shaped update of one row at `revision`.
fn change(conn: &mut DbConnection, row: i64, revision: i64) -> QueryResult<()> {
    let changed = diesel::sql_query(
        "UPDATE audit_bench_rows SET revision = revision + 1 WHERE id = $1 AND revision = $2",
    )
    .bind::<BigInt, _>(row)
    .bind::<BigInt, _>(revision)
    .execute(conn)?;
    assert_eq!(changed, 1, "row {row} at revision {revision}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, threads, seconds, mode] = args.as_slice() else {
        eprintln!(
            "usage: audit_bench <database-url> <threads> <seconds> <change|change+audit|batch:N>"
        );
        return ExitCode::from(2);
    };
    let (Ok(threads), Ok(seconds), Some(mode)) = (
        threads.parse::<usize>(),
        seconds.parse::<u64>(),
        Mode::parse(mode),
    ) else {
        eprintln!("threads and seconds are whole numbers; mode is change, change+audit or batch:N");
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
    {
        let mut conn = database.pool_get().expect("pooled connection");
        diesel::sql_query(
            "CREATE TABLE IF NOT EXISTS audit_bench_rows (id BIGINT PRIMARY KEY, revision BIGINT NOT NULL)",
        )
        .execute(&mut *conn)
        .expect("scratch table");
        diesel::sql_query("DELETE FROM audit_bench_rows")
            .execute(&mut *conn)
            .expect("scratch table emptied");
        for row in 0..threads {
            diesel::sql_query("INSERT INTO audit_bench_rows (id, revision) VALUES ($1, 0)")
                .bind::<BigInt, _>(i64::try_from(row).expect("few threads"))
                .execute(&mut *conn)
                .expect("scratch row");
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let database = database.clone();
            let stop = Arc::clone(&stop);
            let row = i64::try_from(thread).expect("few threads");
            thread::spawn(move || {
                let mut rounds: Vec<u32> = Vec::with_capacity(1 << 16);
                let mut revision = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let mut conn = database.pool_get().expect("pooled connection");
                    write_transaction(&mut conn, |conn| match mode {
                        Mode::Change => change(conn, row, revision),
                        Mode::ChangeAndAudit => {
                            change(conn, row, revision)?;
                            audit::append(conn, entry(row)).map(|_| ())
                        }
                        Mode::Batch(n) => {
                            audit::append_many(conn, (0..n).map(|_| entry(row)).collect())
                                .map(|_| ())
                        }
                    })
                    .expect("write transaction");
                    drop(conn);
                    if !matches!(mode, Mode::Batch(_)) {
                        revision += 1;
                    }
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
    // The chain must still hold after the run.
    let mut conn = database.pool_get().expect("pooled connection");
    let verified = audit::verify(&mut conn, None).expect("chain read");
    if let Err(broken) = verified {
        eprintln!("the chain is broken after the run: {broken}");
        return ExitCode::FAILURE;
    }
    rounds.sort_unstable();
    let at = |q: f64| rounds[((rounds.len() - 1) as f64 * q).round() as usize];
    let per_s = rounds.len() as f64 / elapsed;
    println!(
        "backend={} mode={} threads={threads} pool={} seconds={elapsed:.1} transactions={} \
         tx_per_s={per_s:.0} events_per_s={:.0} p50_us={} p99_us={} max_us={}",
        database.backend(),
        args[3],
        settings.database.pool_size,
        rounds.len(),
        per_s * mode.events() as f64,
        at(0.50),
        at(0.99),
        rounds[rounds.len() - 1],
    );
    ExitCode::SUCCESS
}
