//! The mail sender: delivers the transactional outbox (`notifications`) by SMTP, or as `.eml`
//! files when no SMTP server is configured.
//!
//! The rules (see `docs/notifications.md`):
//!
//! - A request never waits for mail. Lifecycle steps, the breach detector and ratings only write
//!   rows ([`crate::db::notifications::enqueue`]) in their own transaction; this worker, a
//!   background task of each server instance (`[mail] worker`), delivers them later.
//! - A mail is taken with a conditional update that holds it for a lease
//!   ([`crate::db::notifications::claim`]), so two instances never send the same row at once.
//!   A sender that dies mid-send loses its hold when the lease runs out, and the mail is tried
//!   again.
//! - Every attempt of a row carries the row's stored `Message-ID`. Delivery is at least once: a
//!   crash between the SMTP server's acceptance and our update resends the mail with the same
//!   `Message-ID` (archives and many clients see it is the same mail; a plain inbox may show it
//!   twice).
//! - A failure counts an attempt, keeps the error, and schedules the next attempt after
//!   `backoff_base_secs · 2^(attempts − 1)`, at most `backoff_max_secs`; after `max_attempts`, or
//!   at once on a permanent refusal (5xx, an address that cannot be parsed), the row is parked as
//!   `dead`.
//! - Blocking work (the database, files) runs on the blocking pool, never on an async worker;
//!   SMTP is async, over one connection kept while mails are due (`TCP_NODELAY`; see
//!   [`transport`]); no database connection is held while a mail is on the wire.
//! - On a graceful stop the worker finishes the mail in hand (sent and recorded) and closes its
//!   SMTP connection with `QUIT`.

mod transport;

pub use self::transport::{Failure, Link, Transport, message};

use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use lettre::message::Mailbox;

use crate::background::StopSignal;
use crate::config::{ConfigError, MailSettings};
use crate::db::Database;
use crate::db::notifications::{self, Attempt, NotificationRow};
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

    /// How long a sender holds a mail: enough for every step of one SMTP exchange to use its
    /// whole timeout, plus a margin.
    fn lease(&self) -> TimeDelta {
        TimeDelta::seconds(30 + 10 * self.settings.timeout_secs as i64)
    }

    /// Takes mail `id` if it is still free, sends it over `link`, and records the outcome.
    /// The claim and the record run on the blocking pool, each with its own pooled connection;
    /// none is held while the mail is on the wire. Does nothing when another sender has it.
    /// Answers the outcome recorded (`sent`, `retry`, `dead`), if any.
    pub async fn attempt(
        &self,
        database: &Database,
        link: &mut Link,
        id: String,
    ) -> Result<Option<&'static str>, String> {
        let now = Utc::now().trunc_subsecs(6);
        let lease_until = (now + self.lease()).naive_utc();
        let db = database.clone();
        let row = web::block(move || -> Result<_, String> {
            let mut conn = db.pool_get().map_err(|e| e.to_string())?;
            notifications::claim(&mut conn, &id, now.naive_utc(), lease_until)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        let Some(row) = row else {
            return Ok(None);
        };
        let outcome = match message(&row, &self.from) {
            Ok(mail) => self.transport.send(link, &mail).await,
            Err(failure) => Err(failure),
        };
        let done = Utc::now().trunc_subsecs(6);
        let attempts = row.attempts.saturating_add(1);
        let attempt = self.judge(outcome, attempts, done);
        let db = database.clone();
        let (row, attempt, recorded) = web::block(move || -> Result<_, String> {
            let mut conn = db.pool_get().map_err(|e| e.to_string())?;
            let recorded = notifications::record(
                &mut conn,
                &row.id,
                lease_until,
                attempts,
                &attempt,
                done.naive_utc(),
            )
            .map_err(|e| e.to_string())?;
            Ok((row, attempt, recorded))
        })
        .await
        .map_err(|e| e.to_string())??;
        log(&row, attempts, &attempt, recorded);
        Ok(recorded.then_some(match attempt {
            Attempt::Sent => "sent",
            Attempt::Retry { .. } => "retry",
            Attempt::Dead { .. } => "dead",
        }))
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

/// The sender worker: runs until `stop` is raised, then finishes the mail in hand.
///
/// Each look reads the ids of up to `[mail] batch` due mails; each is then taken, sent and
/// recorded, one after the other, over one SMTP connection kept while mails are due and closed
/// when a look finds none. When nothing is due (or the database does not answer) it sleeps
/// `[mail] tick_ms`.
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
    'looks: while !stop.requested() {
        let now = Utc::now().trunc_subsecs(6).naive_utc();
        let due = database
            .run(move |conn| Ok(notifications::due(conn, now, batch)?))
            .await;
        let ids = match due {
            Ok(ids) if !ids.is_empty() => ids,
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
        for id in ids {
            if stop.requested() {
                break 'looks;
            }
            match mailer.attempt(&database, &mut link, id).await {
                Ok(Some(outcome)) => metrics.mail_attempt(outcome),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "mail delivery could not use the database; retrying");
                    link.close(mailer.quit_limit()).await;
                    stop.sleep(tick).await;
                    continue 'looks;
                }
            }
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
