//! The mail sender: delivers the transactional outbox (`notifications`) by SMTP, or as `.eml`
//! files when no SMTP server is configured.
//!
//! The rules (see `docs/notifications.md`):
//!
//! - A request never waits for mail. Lifecycle steps, the breach detector and ratings only write
//!   rows ([`crate::db::notifications::enqueue`]) in their own transaction; this worker, a
//!   background task of each server instance (`[mail] worker`), delivers them later.
//! - Mails are taken a batch at a time (`[mail] batch`), in one write transaction that holds
//!   each row for a lease ([`crate::db::notifications::claim`]), so two instances never send
//!   the same row at once. A mail is started only while enough of the lease is left to finish
//!   it; the rest of the batch is given back. A sender that dies mid-batch loses its hold when
//!   the lease runs out, and those mails are tried again.
//! - Outcomes are recorded in chunks, one write transaction each (at most 20 mails, none
//!   waiting more than 200 ms after the mail before it is done): one commit per chunk instead of
//!   two per mail.
//! - Every attempt of a row carries the row's stored `Message-ID`. Delivery is at least once: a
//!   crash between the SMTP server's acceptance and the recording of its chunk resends those
//!   mails with the same `Message-ID` (archives and many clients see it is the same mail; a
//!   plain inbox may show it twice).
//! - A failure counts an attempt, keeps the error, and schedules the next attempt after
//!   `backoff_base_secs · 2^(attempts − 1)`, at most `backoff_max_secs`; after `max_attempts`, or
//!   at once on a permanent refusal (5xx, an address that cannot be parsed), the row is parked as
//!   `dead`.
//! - Blocking work (the database, files) runs on the blocking pool, never on an async worker;
//!   SMTP is async, over one connection kept while mails are due (`TCP_NODELAY`; see
//!   [`transport`]); no database connection is held while a mail is on the wire.
//! - On a graceful stop the worker finishes the mail in hand, records every outcome it holds,
//!   gives the rest of its batch back, and closes its SMTP connection with `QUIT`.

mod transport;

pub use self::transport::{Failure, Link, Transport, message};

use std::time::{Duration, Instant};

use actix_web::web;
use chrono::{DateTime, NaiveDateTime, SubsecRound, TimeDelta, Utc};
use lettre::message::Mailbox;

use crate::background::StopSignal;
use crate::config::{ConfigError, MailSettings};
use crate::db::Database;
use crate::db::notifications::{self, Attempt, NotificationRow, Outcome};
use crate::error::ApiError;
use crate::http::Metrics;

/// A mail sender: the transport, the `From`, and the retry rules.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    settings: MailSettings,
}

impl Mailer {
    /// The sender `settings` describe; fails on a `From` that is not an address, a TLS set-up
    /// that cannot be made, or an `.eml` folder that cannot be created.
    pub fn new(settings: &MailSettings) -> Result<Self, ConfigError> {
        let from = settings
            .from
            .parse()
            .map_err(|e| ConfigError::key("mail.from", e))?;
        Ok(Self {
            transport: Transport::new(settings)?,
            from,
            settings: settings.clone(),
        })
    }

    /// How long a sender holds the mails it takes (the lease, `30 s + 10 × timeout_secs`):
    /// taken together, a batch shares one lease.
    fn lease(&self) -> TimeDelta {
        TimeDelta::seconds(30 + 10 * self.settings.timeout_secs as i64)
    }

    /// How much of the lease must be left for a mail to be started: the longest its exchange
    /// can take (two tries, the kept connection and a new one, each a connect and a send, each
    /// bounded by `timeout_secs`), plus 30 s to record the outcome. A mail started with that
    /// much left is done while the lease still holds, so no other sender can have taken it.
    fn budget(&self) -> TimeDelta {
        TimeDelta::seconds(30 + 4 * self.settings.timeout_secs as i64)
    }

    /// Whether a mail held until `lease_until` may still be started at `now`.
    fn may_start(&self, lease_until: NaiveDateTime, now: DateTime<Utc>) -> bool {
        now.naive_utc() + self.budget() <= lease_until
    }

    /// Sends the mail of `row` over `link` (the kept connection, else a new one) and judges
    /// the outcome; the database is not touched.
    async fn send(&self, link: &mut Link, row: &NotificationRow) -> Outcome {
        let outcome = match message(row, &self.from) {
            Ok(mail) => self.transport.send(link, &mail).await,
            Err(failure) => Err(failure),
        };
        let done = Utc::now().trunc_subsecs(6);
        let attempts = row.attempts.saturating_add(1);
        Outcome {
            id: row.id.clone(),
            attempts,
            attempt: self.judge(outcome, attempts, done),
            at: done.naive_utc(),
        }
    }

    /// How long closing the SMTP connection may take.
    fn quit_limit(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs)
    }

    /// What attempt number `attempts` with `outcome`, ending at `now`, means for the row.
    fn judge(&self, outcome: Result<(), Failure>, attempts: i32, now: DateTime<Utc>) -> Attempt {
        match outcome {
            Ok(()) => Attempt::Sent,
            Err(failure) if failure.permanent || attempts >= self.settings.max_attempts => {
                Attempt::Dead {
                    error: failure.reason,
                }
            }
            Err(failure) => {
                let wait = backoff(
                    attempts,
                    self.settings.backoff_base_secs,
                    self.settings.backoff_max_secs,
                );
                Attempt::Retry {
                    error: failure.reason,
                    retry_at: (now + TimeDelta::seconds(wait.as_secs() as i64)).naive_utc(),
                }
            }
        }
    }
}

/// Delay before the next attempt after `attempts` failed ones: `base · 2^(attempts − 1)`
/// seconds, at most `max`.
pub fn backoff(attempts: i32, base_secs: u64, max_secs: u64) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 32) as u32;
    Duration::from_secs(
        base_secs
            .saturating_mul(2u64.saturating_pow(doublings))
            .min(max_secs),
    )
}

fn log(row: &NotificationRow, attempts: i32, attempt: &Attempt, recorded: bool) {
    let (id, kind, message_id) = (&row.id, &row.kind, &row.message_id);
    if !recorded {
        tracing::warn!(%id, %kind, %message_id, attempts, "mail outcome not recorded: another sender took the mail after this one's hold ran out");
    }
    match attempt {
        Attempt::Sent => tracing::info!(%id, %kind, %message_id, attempts, "mail sent"),
        Attempt::Retry { error, retry_at } => {
            tracing::warn!(%id, %kind, attempts, %error, retry_at = %retry_at.and_utc(), "mail not sent; will retry")
        }
        Attempt::Dead { error } => {
            tracing::warn!(%id, %kind, attempts, %error, "mail not sent; parked as dead")
        }
    }
}

/// Most outcomes kept unrecorded: a chunk is recorded (one transaction) once it has this many.
const RECORD_EVERY: usize = 20;

/// Longest an outcome waits unrecorded while the sender goes on with the batch (checked after
/// each mail).
const RECORD_AFTER: Duration = Duration::from_millis(200);

/// The outcomes of mails sent under one lease and not recorded yet.
struct Unrecorded {
    lease_until: NaiveDateTime,
    rows: Vec<NotificationRow>,
    outcomes: Vec<Outcome>,
    oldest: Option<Instant>,
}

impl Unrecorded {
    fn new(lease_until: NaiveDateTime) -> Self {
        Self {
            lease_until,
            rows: Vec::new(),
            outcomes: Vec::new(),
            oldest: None,
        }
    }

    fn push(&mut self, row: NotificationRow, outcome: Outcome) {
        self.oldest.get_or_insert_with(Instant::now);
        self.rows.push(row);
        self.outcomes.push(outcome);
    }

    /// Whether the chunk is due: [`RECORD_EVERY`] outcomes, or one older than [`RECORD_AFTER`].
    fn due(&self) -> bool {
        self.outcomes.len() >= RECORD_EVERY
            || self.oldest.is_some_and(|at| at.elapsed() >= RECORD_AFTER)
    }

    /// Records every outcome kept (one write transaction), counts them in `metrics` and logs
    /// each. On a database error the outcomes are dropped: their rows keep the lease and are
    /// tried again when it runs out (a sent mail then goes out a second time).
    async fn record(&mut self, database: &Database, metrics: &Metrics) -> Result<(), ApiError> {
        if self.outcomes.is_empty() {
            return Ok(());
        }
        let outcomes = std::mem::take(&mut self.outcomes);
        let rows = std::mem::take(&mut self.rows);
        self.oldest = None;
        let lease_until = self.lease_until;
        let (outcomes, recorded) = database
            .run(move |conn| {
                let recorded = notifications::record_all(conn, lease_until, &outcomes)?;
                Ok((outcomes, recorded))
            })
            .await?;
        for ((row, outcome), recorded) in rows.iter().zip(&outcomes).zip(recorded) {
            log(row, outcome.attempts, &outcome.attempt, recorded);
            if recorded {
                metrics.mail_attempt(match outcome.attempt {
                    Attempt::Sent => "sent",
                    Attempt::Retry { .. } => "retry",
                    Attempt::Dead { .. } => "dead",
                });
            }
        }
        Ok(())
    }
}

/// The sender worker: runs until `stop` is raised, then finishes the mail in hand.
///
/// Each look takes up to `[mail] batch` due mails under one lease (one write transaction,
/// [`notifications::claim`]) and sends them one after the other over one SMTP connection, kept
/// while mails are due and closed when a look finds none. Outcomes are recorded in chunks (one
/// write transaction each, [`notifications::record_all`]): every 20 mails (`RECORD_EVERY`),
/// when one has waited 200 ms (`RECORD_AFTER`), and at the end of the batch. A mail is started
/// only while enough of the lease is left to finish it (`Mailer::budget`); the mails of the
/// batch not started (too little lease left, or a stop) are given back at once
/// ([`notifications::release`]). When nothing is due (or the database does not answer) it
/// sleeps `[mail] tick_ms`.
pub async fn deliver(
    database: Database,
    mailer: Mailer,
    metrics: web::Data<Metrics>,
    mut stop: StopSignal,
) {
    let tick = Duration::from_millis(mailer.settings.tick_ms);
    let batch = mailer.settings.batch;
    let mut link = Link::default();
    tracing::info!(transport = %mailer.transport, "mail sender started");
    while !stop.requested() {
        let now = Utc::now().trunc_subsecs(6);
        let lease_until = (now + mailer.lease()).naive_utc();
        let claimed = database
            .run(move |conn| {
                Ok(notifications::claim(
                    conn,
                    now.naive_utc(),
                    lease_until,
                    batch,
                )?)
            })
            .await;
        let rows = match claimed {
            Ok(rows) if !rows.is_empty() => rows,
            Ok(_) => {
                link.close(mailer.quit_limit()).await;
                stop.sleep(tick).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the mail outbox; retrying");
                link.close(mailer.quit_limit()).await;
                stop.sleep(tick).await;
                continue;
            }
        };
        let mut unrecorded = Unrecorded::new(lease_until);
        let mut rows = rows.into_iter().peekable();
        let mut recorded = Ok(());
        while let Some(row) =
            rows.next_if(|_| !stop.requested() && mailer.may_start(lease_until, Utc::now()))
        {
            let outcome = mailer.send(&mut link, &row).await;
            unrecorded.push(row, outcome);
            if unrecorded.due() {
                recorded = unrecorded.record(&database, &metrics).await;
                if recorded.is_err() {
                    break;
                }
            }
        }
        if recorded.is_ok() {
            recorded = unrecorded.record(&database, &metrics).await;
        }
        let left: Vec<String> = rows.map(|row| row.id).collect();
        if recorded.is_ok() && !left.is_empty() {
            recorded = database
                .run(move |conn| Ok(notifications::release(conn, &left, lease_until)?))
                .await
                .map(drop);
        }
        if let Err(error) = recorded {
            tracing::warn!(%error, "mail delivery could not use the database; retrying");
            link.close(mailer.quit_limit()).await;
            stop.sleep(tick).await;
        }
    }
    link.close(mailer.quit_limit()).await;
    tracing::info!("mail sender stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let secs = |attempts| backoff(attempts, 5, 3600).as_secs();
        assert_eq!(
            [1, 2, 3, 4, 5].map(secs),
            [5, 10, 20, 40, 80],
            "base · 2^(attempts − 1)"
        );
        assert_eq!(secs(11), 3600);
        assert_eq!(secs(1000), 3600, "no overflow");
        assert_eq!(secs(0), 5);
    }

    fn mailer(max_attempts: i32) -> Mailer {
        let mut settings = crate::config::Settings::defaults().mail;
        settings.max_attempts = max_attempts;
        settings.outbox_dir = std::env::temp_dir()
            .join("mashangban-notify-unit")
            .display()
            .to_string();
        Mailer::new(&settings).unwrap()
    }

    #[test]
    fn a_mail_starts_only_while_the_lease_can_cover_its_whole_exchange() {
        let mut mailer = mailer(8);
        assert_eq!(mailer.settings.timeout_secs, 10);
        assert_eq!(mailer.lease(), TimeDelta::seconds(130), "as documented");
        assert_eq!(mailer.budget(), TimeDelta::seconds(70));
        let now = Utc::now().trunc_subsecs(6);
        let lease_until = (now + mailer.lease()).naive_utc();
        assert!(mailer.may_start(lease_until, now), "the batch's first mail");
        assert!(mailer.may_start(lease_until, now + TimeDelta::seconds(60)));
        assert!(!mailer.may_start(lease_until, now + TimeDelta::seconds(61)));
        // Every allowed timeout leaves a window to start mails in.
        for timeout_secs in [1, 10, 300] {
            mailer.settings.timeout_secs = timeout_secs;
            assert!(mailer.budget() < mailer.lease(), "{timeout_secs}");
        }
    }

    #[test]
    fn failures_retry_with_backoff_until_the_last_attempt_then_park() {
        let mailer = mailer(3);
        let now = Utc::now();
        let transient = || {
            Err(Failure {
                permanent: false,
                reason: "connection refused".into(),
            })
        };
        assert_eq!(mailer.judge(Ok(()), 1, now), Attempt::Sent);
        match mailer.judge(transient(), 2, now) {
            Attempt::Retry { retry_at, error } => {
                assert_eq!(retry_at, (now + TimeDelta::seconds(10)).naive_utc());
                assert_eq!(error, "connection refused");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            mailer.judge(transient(), 3, now),
            Attempt::Dead { .. }
        ));
        let refused = Err(Failure {
            permanent: true,
            reason: "550 no such mailbox".into(),
        });
        assert!(matches!(
            mailer.judge(refused, 1, now),
            Attempt::Dead { .. }
        ));
    }
}
