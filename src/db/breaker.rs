//! The database breaker: once the pool could not hand out a connection (the database is down),
//! requests answer 503 at once instead of each waiting out the pool's connection timeout, and a
//! background probe alone tries to connect, every [`PROBE_EVERY`], until it can. Then the breaker
//! closes and requests go through again.
//!
//! Why: during an outage every request (and every readiness probe) used to wait the full
//! `database.connect_timeout_secs` before its 503, so a load balancer's 2 s health check saw a
//! time-out, not an answer, and waiting requests piled up. The probe connects directly (not
//! through the pool, whose own retries back off), so recovery is seen within a probe interval
//! plus one connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the probe tries while the breaker is open.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

/// Open (the database is known down) or closed.
#[derive(Debug, Default)]
pub struct Breaker {
    open: AtomicBool,
    probing: AtomicBool,
}

impl Breaker {
    /// Whether requests should be answered 503 at once.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// The pool could not hand out a connection: open, and start the probe.
    pub fn trip(self: &Arc<Self>, connect: impl Fn() -> bool + Send + 'static) {
        self.open.store(true, Ordering::Release);
        self.probe(connect);
    }

    /// Starts the probe unless one runs: it tries `connect` until it succeeds, then closes.
    pub fn probe(self: &Arc<Self>, connect: impl Fn() -> bool + Send + 'static) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let breaker = Arc::clone(self);
        std::thread::Builder::new()
            .name("db-breaker-probe".into())
            .spawn(move || {
                while !connect() {
                    std::thread::sleep(PROBE_EVERY);
                }
                breaker.open.store(false, Ordering::Release);
                breaker.probing.store(false, Ordering::Release);
                tracing::info!("the database answers again: breaker closed");
            })
            .map(drop)
            .unwrap_or_else(|error| {
                // No thread: let the next request try the pool itself.
                tracing::error!(%error, "could not start the database probe");
                self.open.store(false, Ordering::Release);
                self.probing.store(false, Ordering::Release);
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn it_stays_open_until_the_probe_connects_then_closes() {
        let breaker = Arc::new(Breaker::default());
        assert!(!breaker.is_open());
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&tries);
        breaker.trip(move || counted.fetch_add(1, Ordering::SeqCst) >= 2);
        assert!(breaker.is_open());
        // A second trip while probing starts no second probe.
        breaker.trip(|| panic!("only one probe at a time"));
        for _ in 0..100 {
            if !breaker.is_open() {
                break;
            }
            std::thread::sleep(PROBE_EVERY / 4);
        }
        assert!(!breaker.is_open());
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }
}
