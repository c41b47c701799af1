//! The breach detector: a background task of every server instance that marks clocks' warnings
//! and breaches within a second of their time.
//!
//! It reads the clocks through the `check_at` index (the next instant each running clock needs
//! looking at), never a scan of requests: each look is one indexed range read of what is due.
//! It sleeps until the earliest `check_at` or `sla.tick_ms`, whichever is sooner, so a clock
//! created by another instance is seen within a tick. After downtime the first looks catch up on
//! everything that fell due meanwhile, `sla.batch` clocks per transaction. Marking is a
//! conditional update on the clock as it was read, so with several instances on one PostgreSQL
//! each warning and breach is marked — and audited — exactly once.
//!
//! [`follow_calendar_days`], a task of every instance whether it runs the detector or not,
//! re-reads the calendar days every few seconds, so a change made through another instance
//! reaches this one's intake, steps and detector. It also tells the administrators when the
//! calendar's horizon is near ([`HorizonNotices`]): every instance checks, the outbox keeps one
//! mail per horizon (`db::calendars::notify_horizon`), and an instance that has seen the mail
//! written stops asking the database until the horizon moves.

use std::time::Duration;

use actix_web::web;
use chrono::{NaiveDate, Utc};

use crate::background::StopSignal;
use crate::config::SlaSettings;
use crate::db::calendars::{self, Calendars, HorizonNotice};
use crate::db::{Database, clocks};
use crate::domain::Catalog;
use crate::domain::clock::{Change, Rules};
use crate::http::Metrics;

/// How often the calendar days are re-read.
const CALENDAR_EVERY: Duration = Duration::from_secs(2);

/// Runs until `stop` is raised: a batch in hand is finished (its transaction committed) first.
pub async fn detect(
    database: Database,
    calendars: web::Data<Calendars>,
    catalog: web::Data<Catalog>,
    metrics: web::Data<Metrics>,
    settings: SlaSettings,
    mut stop: StopSignal,
) {
    let tick = Duration::from_millis(settings.tick_ms);
    while !stop.requested() {
        let now = Utc::now();
        let batch = settings.batch;
        let warn_percent = settings.warn_percent;
        let holder = calendars.clone();
        let catalog = catalog.clone();
        let metrics = metrics.clone();
        let look = database
            .run(move |conn| {
                let calendar = holder.current();
                let rules = Rules {
                    calendar: &calendar,
                    warn_percent,
                };
                let marked = clocks::detect_due(conn, &catalog, rules, now, batch)?;
                for (row, change) in &marked {
                    let delay = (*change == Change::Breached)
                        .then(|| {
                            row.due_at
                                .map(|due| (now.naive_utc() - due).as_seconds_f64())
                        })
                        .flatten();
                    metrics.sla_marked(change.action().trim_start_matches("clock."), delay);
                }
                let next = clocks::next_check(conn)?;
                Ok((marked.len(), next))
            })
            .await;
        let pause = match look {
            Ok((marked, _)) if marked as i64 >= batch => Duration::ZERO,
            Ok((marked, next)) => {
                if marked > 0 {
                    tracing::info!(marked, "SLA clocks marked");
                }
                next.and_then(|next| (next.and_utc() - Utc::now()).to_std().ok())
                    .map_or(tick, |until| until.min(tick))
            }
            Err(error) => {
                tracing::warn!(%error, "breach detection failed; retrying");
                tick
            }
        };
        if !pause.is_zero() && !stop.sleep(pause).await {
            break;
        }
    }
}

/// Who hears that the calendar's horizon is near, and how long before.
#[derive(Debug, Clone)]
pub struct HorizonNotices {
    /// The administrators' address (`mail.admin_email`).
    pub recipient: String,
    /// Days before the horizon from which they are told (`calendar.horizon_notice_days`);
    /// 0: never.
    pub lead_days: u32,
}

/// Re-reads the stored calendar days every two seconds, and after each re-read checks whether
/// the administrators must hear of the horizon; runs until `stop` is raised.
pub async fn follow_calendar_days(
    database: Database,
    calendars: web::Data<Calendars>,
    metrics: web::Data<Metrics>,
    notices: HorizonNotices,
    mut stop: StopSignal,
) {
    // The horizon whose mail this instance has seen in the outbox.
    let mut told: Option<Option<NaiveDate>> = None;
    while stop.sleep(CALENDAR_EVERY).await {
        let holder = calendars.clone();
        if let Err(error) = database.run(move |conn| Ok(holder.reload(conn)?)).await {
            tracing::warn!(%error, "cannot re-read the calendar days; keeping the ones in memory");
        }
        let calendar = calendars.current();
        let now = Utc::now();
        let horizon = calendar.horizon();
        if told == Some(horizon.last_day()) || !horizon.notice_due(now, notices.lead_days) {
            continue;
        }
        let recipient = notices.recipient.clone();
        let lead_days = notices.lead_days;
        let checked = database
            .run(move |conn| {
                Ok(calendars::notify_horizon(
                    conn, &calendar, &recipient, lead_days, now,
                )?)
            })
            .await;
        match checked {
            Ok(HorizonNotice::NotDue) => {}
            Ok(outcome) => {
                let written = outcome == HorizonNotice::Written;
                if written {
                    tracing::info!(horizon = ?horizon.last_day(), "calendar horizon mail written");
                }
                metrics.horizon_notice(if written {
                    "written"
                } else {
                    "already_written"
                });
                told = Some(horizon.last_day());
            }
            Err(error) => tracing::warn!(%error, "cannot check the calendar horizon mail"),
        }
    }
}
