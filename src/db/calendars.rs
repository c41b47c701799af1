//! The working calendar as the running server sees it: the file's calendar with the days
//! administrators set or removed at runtime (`calendar_days`) applied on top.
//!
//! Every server instance holds the current calendar in memory ([`Calendars::current`]) and
//! re-reads the stored days when they change ([`Calendars::reload`], called after a change
//! here ([`change_day`]), on every read of the calendar endpoints, and by the SLA worker on
//! its tick, so a change made through another instance on the same PostgreSQL reaches this
//! one within a tick).

use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::schema::calendar_days;
use super::{DbConnection, audit, clocks, write_transaction};
use crate::domain::audit::Entry;
use crate::domain::calendar::{Calendar, DayKind};
use crate::error::ApiError;

/// PostgreSQL advisory lock serialising calendar changes between instances (SQLite's
/// `BEGIN IMMEDIATE` already does), so each change's `state_before` is exact.
const CHANGE_LOCK_KEY: i64 = 0x6d73_6263_616c; // "msbcal"

/// A stored runtime change of one day.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = calendar_days)]
pub struct CalendarDayRow {
    /// Calendar code.
    pub calendar: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `holiday`, `working_day` or `regular`.
    pub kind: String,
    /// Who changed it.
    pub changed_by: String,
    /// When (UTC).
    pub changed_at: NaiveDateTime,
}

/// The stored name of a day's override: `holiday`, `working_day`, or `regular` (none: the
/// weekday decides).
pub fn kind_name(kind: Option<DayKind>) -> &'static str {
    match kind {
        Some(DayKind::Holiday) => "holiday",
        Some(DayKind::WorkingDay) => "working_day",
        None => "regular",
    }
}

/// An administrator's change of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayChange {
    /// The date.
    pub date: NaiveDate,
    /// The override to store; `None` removes it (stored as `regular`), whether it came from
    /// the file or from an earlier change.
    pub kind: Option<DayKind>,
    /// The administrator (token subject).
    pub actor: String,
    /// When (UTC, microseconds).
    pub at: DateTime<Utc>,
}

/// What [`change_day`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayChanged {
    /// The row as stored.
    pub row: CalendarDayRow,
    /// The date's override before the change.
    pub previous: Option<DayKind>,
    /// Running clocks whose due time moved.
    pub clocks_moved: usize,
}

/// Stores `change` in one write transaction: the row (updated, or inserted when the date has
/// none), a `calendar.set_day` / `calendar.clear_day` audit event (request id
/// `calendar:<code>`, states `holiday` / `working_day` / `regular`), and every running clock
/// moved to the new calendar. After the commit this instance's calendar is reloaded.
///
/// Repeating a change is recorded again (a new `changed_at`, another audit event with equal
/// states); the calendar stays the same and no clock moves.
pub fn change_day(
    conn: &mut DbConnection,
    calendars: &Calendars,
    change: &DayChange,
    warn_percent: u32,
) -> Result<DayChanged, ApiError> {
    let code = calendars.code().to_string();
    let row = CalendarDayRow {
        calendar: code.clone(),
        day: change.date.format("%Y-%m-%d").to_string(),
        kind: kind_name(change.kind).into(),
        changed_by: change.actor.clone(),
        changed_at: change.at.naive_utc(),
    };
    let (previous, clocks_moved) = write_transaction(conn, |conn| -> Result<_, ApiError> {
        if let DbConnection::Pg(_) = conn {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({CHANGE_LOCK_KEY})"))
                .execute(conn)?;
        }
        let mut calendar = calendars.stored(conn)?;
        let previous = calendar.day_kind(change.date);
        let updated = diesel::update(calendar_days::table.find((&row.calendar, &row.day)))
            .set(&row)
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(calendar_days::table)
                .values(&row)
                .execute(conn)?;
        }
        let action = match change.kind {
            Some(_) => "calendar.set_day",
            None => "calendar.clear_day",
        };
        audit::append(
            conn,
            Entry {
                request_id: format!("calendar:{code}"),
                actor: change.actor.clone(),
                role: "admin".into(),
                unit: None,
                action: action.into(),
                state_before: Some(kind_name(previous).into()),
                state_after: Some(row.kind.clone()),
                payload: json!({ "calendar": code, "date": row.day, "kind": row.kind }),
                at: change.at,
            },
        )?;
        apply(&mut calendar, &row);
        let moved = clocks::follow_calendar(conn, &calendar, change.date, warn_percent, change.at)?;
        Ok((previous, moved))
    })?;
    // Committed: a failed reload only delays this instance until its next one.
    if let Err(error) = calendars.reload(conn) {
        tracing::warn!(%error, "calendar day stored, but reloading the calendar failed");
    }
    Ok(DayChanged {
        row,
        previous,
        clocks_moved,
    })
}

/// What a stored row does to the file's calendar.
fn apply(calendar: &mut Calendar, row: &CalendarDayRow) {
    let Ok(date) = NaiveDate::parse_from_str(&row.day, "%Y-%m-%d") else {
        tracing::warn!(day = %row.day, "ignoring a stored calendar day that is not a date");
        return;
    };
    match row.kind.as_str() {
        "holiday" => calendar.set_day(date, DayKind::Holiday),
        "working_day" => calendar.set_day(date, DayKind::WorkingDay),
        _ => calendar.clear_day(date),
    }
}

/// The file's calendar and the current one.
#[derive(Debug)]
pub struct Calendars {
    file: Calendar,
    current: RwLock<Arc<Calendar>>,
    /// The stored rows last applied, to tell whether a reload changed anything.
    applied: Mutex<Vec<CalendarDayRow>>,
}

impl Calendars {
    /// Starts from the file's calendar, with no runtime change applied yet.
    pub fn new(file: Calendar) -> Self {
        Self {
            current: RwLock::new(Arc::new(file.clone())),
            file,
            applied: Mutex::new(Vec::new()),
        }
    }

    /// The calendar's code.
    pub fn code(&self) -> &str {
        self.file.code()
    }

    /// The calendar in force now.
    pub fn current(&self) -> Arc<Calendar> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The calendar as the file defines it, without runtime changes.
    pub fn file(&self) -> &Calendar {
        &self.file
    }

    /// The file's calendar with the stored days applied, read on `conn` (inside the caller's
    /// transaction, it includes that transaction's own changes). The calendar in force is left
    /// alone: [`Calendars::reload`] after the commit.
    pub fn stored(&self, conn: &mut DbConnection) -> QueryResult<Calendar> {
        Ok(self.build(&self.rows(conn)?))
    }

    /// Re-reads the stored days and applies them to the file's calendar. Returns whether the
    /// calendar in force changed.
    pub fn reload(&self, conn: &mut DbConnection) -> QueryResult<bool> {
        // Read under the lock: a reload that read the rows before a change committed must not
        // replace the calendar of one that read them after.
        let mut applied = self
            .applied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let rows = self.rows(conn)?;
        if *applied == rows {
            return Ok(false);
        }
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(self.build(&rows));
        *applied = rows;
        Ok(true)
    }

    /// The stored days of this calendar, by date.
    fn rows(&self, conn: &mut DbConnection) -> QueryResult<Vec<CalendarDayRow>> {
        calendar_days::table
            .filter(calendar_days::calendar.eq(self.code()))
            .order(calendar_days::day)
            .select(CalendarDayRow::as_select())
            .load(conn)
    }

    /// The file's calendar with `rows` applied.
    fn build(&self, rows: &[CalendarDayRow]) -> Calendar {
        let mut calendar = self.file.clone();
        for row in rows {
            apply(&mut calendar, row);
        }
        calendar
    }
}
