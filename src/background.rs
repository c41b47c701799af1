//! The stop signal of the background workers (the breach detector, the mail sender, the
//! calendar follower, the appointment worker, the rate-limit sweeper).
//!
//! On a graceful stop the server first drains its HTTP connections, then asks the workers to
//! stop ([`Stopper::stop`]) and waits for them: each finishes the unit of work in hand (a batch
//! of clocks in its transaction, the mail on the wire and its outcome) and returns at the next
//! [`StopSignal::sleep`] or [`StopSignal::requested`] check, instead of being cut in the middle.

use std::time::Duration;

use tokio::sync::watch;

/// The side that asks the workers to stop.
#[derive(Debug)]
pub struct Stopper(watch::Sender<bool>);

/// The side a worker holds: cheap to clone, one per worker.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

/// A new stop signal, not raised.
pub fn signal() -> (Stopper, StopSignal) {
    let (sender, receiver) = watch::channel(false);
    (Stopper(sender), StopSignal(receiver))
}

impl Stopper {
    /// Raises the signal for every worker.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl StopSignal {
    /// A signal that is never raised (for a worker run on its own, as in the benchmarks).
    pub fn never() -> Self {
        let (sender, receiver) = watch::channel(false);
        // The receiver keeps the last value once the sender is gone: false, for ever.
        drop(sender);
        Self(receiver)
    }

    /// Whether the workers are asked to stop.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps `pause`, or less when the stop is asked for meanwhile. Answers whether the worker
    /// may go on (false: stop now).
    pub async fn sleep(&mut self, pause: Duration) -> bool {
        if self.requested() {
            return false;
        }
        let raised = self.0.wait_for(|stop| *stop);
        match actix_web::rt::time::timeout(pause, raised).await {
            Ok(Ok(_)) => false,
            // The sender is gone without raising: nobody can stop us; sleep the rest.
            Ok(Err(_)) => {
                actix_web::rt::time::sleep(pause).await;
                true
            }
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_raised_signal_ends_a_sleep_at_once() {
        let (stopper, mut signal) = signal();
        assert!(!signal.requested());
        assert!(
            signal.sleep(Duration::from_millis(1)).await,
            "not raised: go on"
        );
        let mut sleeper = signal.clone();
        let sleeping =
            actix_web::rt::spawn(async move { sleeper.sleep(Duration::from_secs(3600)).await });
        stopper.stop();
        assert!(!sleeping.await.unwrap(), "raised: stop");
        assert!(signal.requested());
        assert!(!signal.sleep(Duration::from_secs(3600)).await);
    }

    #[actix_web::test]
    async fn never_is_never_raised() {
        let mut signal = StopSignal::never();
        assert!(!signal.requested());
        assert!(signal.sleep(Duration::from_millis(1)).await);
    }
}
