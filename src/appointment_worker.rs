//! The appointment worker: a background task of every instance (`appointments.worker`) that
//! marks no-shows (爽约) once a slot's end plus the grace period has passed without check-in,
//! and writes the reminder mail the working day before each slot.
//!
//! It works the way the breach detector (`crate::sla`) does: each look is one indexed read of
//! what is due (partial indexes on `no_show_at` and `reminder_due_at` of booked appointments),
//! and each change is a conditional update of the row as it was read, so with several
//! instances on one PostgreSQL every no-show is marked — and audited — once, and every reminder
//! written once ([`crate::db::appointments::work`]). A backlog after downtime is worked off
//! `appointments.batch` at a time without waiting.

use std::time::Duration;

use actix_web::web;
use chrono::Utc;

use crate::background::StopSignal;
use crate::config::AppointmentSettings;
use crate::db::Database;
use crate::db::appointments;
use crate::db::calendars::Calendars;
use crate::domain::Catalog;
use crate::domain::appointment::Hall;

/// Runs until dropped.
pub async fn run(
    database: Database,
    calendars: web::Data<Calendars>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    settings: AppointmentSettings,
    mut stop: StopSignal,
) {
    let tick = Duration::from_millis(settings.tick_ms);
    while !stop.requested() {
        let now = Utc::now();
        let batch = settings.batch;
        let zone = calendars.current().time_zone();
        let (catalog, hall) = (catalog.clone(), hall.clone());
        let cutoff = settings.cutoff_minutes;
        let look = database
            .run(move |conn| appointments::work(conn, &catalog, &hall, zone, cutoff, now, batch))
            .await;
        let pause = match look {
            Ok((marked, reminded)) => {
                if marked > 0 || reminded > 0 {
                    tracing::info!(
                        marked,
                        reminded,
                        "appointments: no-shows marked, reminders written"
                    );
                }
                if marked as i64 >= batch || reminded as i64 >= batch {
                    Duration::ZERO
                } else {
                    tick
                }
            }
            Err(error) => {
                tracing::warn!(%error, "appointment worker failed; retrying");
                tick
            }
        };
        if !pause.is_zero() && !stop.sleep(pause).await {
            break;
        }
    }
}
