//! Raw database ping throughput, without HTTP: the database half of `GET /health/ready`.
//!
//! Opens the same pool the server opens (`Database::open` with the default settings and the
//! given URL, migrations included), then runs `THREADS` threads for `SECONDS` seconds; each
//! thread loops "take a pooled connection, ping it (`SELECT 1`), give it back" and records the
//! time of each round. The pool tests connections on check-out, so one round is the same
//! database work as one readiness probe: two `SELECT 1` (check-out test plus the ping). The
//! pool size is the server's default (8) unless `MASHANGBAN_DATABASE_POOL_SIZE` says otherwise.
//!
//! Prints rounds per second and the p50/p99/max latency of one round, in microseconds.
//!
//! ```text
//! cargo run --release --example ping_bench -- sqlite:///tmp/msb-bench/ping.db 8 15
//! cargo run --release --example ping_bench -- postgres://postgres@127.0.0.1:5432/msb_bench 64 15
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use diesel::r2d2::R2D2Connection;
use mashangban::config::Settings;
use mashangban::db::Database;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, threads, seconds] = args.as_slice() else {
        eprintln!("usage: ping_bench <database-url> <threads> <seconds>");
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

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let database = database.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                // Nanoseconds; u32 keeps tens of millions of SQLite rounds in memory.
                let mut rounds: Vec<u32> = Vec::with_capacity(1 << 20);
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let mut conn = database.pool_get().expect("pooled connection");
                    R2D2Connection::ping(&mut *conn).expect("ping");
                    drop(conn);
                    let nanos = started.elapsed().as_nanos();
                    rounds.push(u32::try_from(nanos).unwrap_or(u32::MAX));
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
        eprintln!("no rounds completed");
        return ExitCode::FAILURE;
    }
    rounds.sort_unstable();
    let pick = |q: f64| rounds[((rounds.len() - 1) as f64 * q).round() as usize];
    let micros = |nanos: u32| f64::from(nanos) / 1e3;
    println!(
        "backend={} threads={threads} pool={} seconds={elapsed:.1} rounds={} ops/s={:.0} \
         p50={:.1}us p99={:.1}us max={:.1}us",
        database.backend(),
        settings.database.pool_size,
        rounds.len(),
        rounds.len() as f64 / elapsed,
        micros(pick(0.50)),
        micros(pick(0.99)),
        micros(pick(1.0)),
    );
    ExitCode::SUCCESS
}
