//! The working calendar as the running server sees it: the file's calendar with the days
//! administrators set or removed at runtime (`calendar_days`) applied on top.
//!
//! Every server instance holds the current calendar in memory ([`Calendars::current`]) and
//! re-reads the stored days when they change ([`Calendars::reload`], called after a change
//! here ([`change_day`], [`load_year`]), on every read of the calendar endpoints, and by the
//! calendar task of every instance every two seconds, so a change made through another
//! instance on the same PostgreSQL reaches this one within that time).
//!
//! A loaded year is stored as one row for **every** day of the year (`holiday`, `working_day`
//! or `regular`): a year whose every day has a row was decided whole by an administrator, so
//! it counts as configured and can move the horizon ([`Calendar::horizon`]). No other table
//! is needed, and every instance reads the same rows.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::notifications::{self, Notice};
use super::schema::calendar_days;
use super::{DbConnection, audit, clocks, write_transaction};
use crate::domain::audit::Entry;
use crate::domain::calendar::{Calendar, DayKind, YearDays, year_bounds};
use crate::domain::notice::{About, Message};
use crate::error::ApiError;

/// PostgreSQL advisory lock serialising calendar changes between instances (SQLite's
/// `BEGIN IMMEDIATE` already does), so each change's `state_before` is exact.
const CHANGE_LOCK_KEY: i64 = 0x6d73_6263_616c; // "msbcal"

/// A stored runtime change of one day.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = calendar_days, treat_none_as_default_value = false)]
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
    let (previous, clocks_moved) = in_change(
        conn,
        calendars,
        warn_percent,
        change.at,
        |conn, calendar| {
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
            apply(calendar, &row);
            Ok(Changed {
                outcome: previous,
                event: Entry {
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
                days: Some(change.date..=change.date),
            })
        },
    )?;
    Ok(DayChanged {
        row,
        previous,
        clocks_moved,
    })
}

/// An administrator's load of one whole year of holidays and working weekend days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearLoad {
    /// The year, checked whole.
    pub year: YearDays,
    /// The administrator (token subject).
    pub actor: String,
    /// When (UTC, microseconds).
    pub at: DateTime<Utc>,
}

/// What [`load_year`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearLoaded {
    /// Dates whose kind changed (their override before and after).
    pub days_changed: usize,
    /// The horizon before the load.
    pub horizon_before: Option<NaiveDate>,
    /// The horizon after it.
    pub horizon: Option<NaiveDate>,
    /// Running clocks whose due time moved.
    pub clocks_moved: usize,
}

/// Stores a whole year in one write transaction, in place of whatever the year had (from the
/// file or from earlier changes): one row per day of the year, one `calendar.load_year` audit
/// event (request id `calendar:<code>`, states `configured` / `not_configured`, the lists in
/// the payload), and the running clocks moved in one pass over the days that changed. After
/// the commit this instance's calendar is reloaded; other instances follow within their
/// re-read.
pub fn load_year(
    conn: &mut DbConnection,
    calendars: &Calendars,
    load: &YearLoad,
    warn_percent: u32,
) -> Result<YearLoaded, ApiError> {
    let code = calendars.code().to_string();
    let number = load.year.year();
    let (first, last) = year_bounds(number);
    let rows: Vec<CalendarDayRow> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|date| CalendarDayRow {
            calendar: code.clone(),
            day: date.format("%Y-%m-%d").to_string(),
            kind: kind_name(load.year.kind(date)).into(),
            changed_by: load.actor.clone(),
            changed_at: load.at.naive_utc(),
        })
        .collect();
    let (loaded, clocks_moved) =
        in_change(conn, calendars, warn_percent, load.at, |conn, calendar| {
            let was_configured = calendar.configured_years().any(|y| y == number);
            let horizon_before = calendar.horizon().last_day();
            let before: Vec<Option<DayKind>> = rows_dates(first, last)
                .map(|d| calendar.day_kind(d))
                .collect();
            diesel::delete(
                calendar_days::table
                    .filter(calendar_days::calendar.eq(&code))
                    .filter(calendar_days::day.ge(&rows[0].day))
                    .filter(calendar_days::day.le(&rows[rows.len() - 1].day)),
            )
            .execute(conn)?;
            let into = || diesel::insert_into(calendar_days::table);
            match &mut *conn {
                DbConnection::Sqlite(c) => into().values(&rows).execute(c)?,
                DbConnection::Pg(c) => into().values(&rows).execute(c)?,
            };
            calendar.load_year(&load.year);
            let changed: Vec<NaiveDate> = rows_dates(first, last)
                .zip(before)
                .filter(|(d, kind)| calendar.day_kind(*d) != *kind)
                .map(|(d, _)| d)
                .collect();
            let listed = |kind: DayKind| -> Vec<String> {
                load.year
                    .days()
                    .filter(|(_, k)| *k == kind)
                    .map(|(d, _)| d.format("%Y-%m-%d").to_string())
                    .collect()
            };
            let horizon = calendar.horizon().last_day();
            Ok(Changed {
                outcome: YearLoaded {
                    days_changed: changed.len(),
                    horizon_before,
                    horizon,
                    clocks_moved: 0,
                },
                event: Entry {
                    request_id: format!("calendar:{code}"),
                    actor: load.actor.clone(),
                    role: "admin".into(),
                    unit: None,
                    action: "calendar.load_year".into(),
                    state_before: Some(configured_name(was_configured).into()),
                    state_after: Some(configured_name(true).into()),
                    payload: json!({
                        "calendar": code,
                        "year": number,
                        "holidays": listed(DayKind::Holiday),
                        "working_days": listed(DayKind::WorkingDay),
                        "days_changed": changed.len(),
                        "horizon_before": horizon_before,
                        "horizon": horizon,
                    }),
                    at: load.at,
                },
                days: changed.first().zip(changed.last()).map(|(a, b)| *a..=*b),
            })
        })?;
    Ok(YearLoaded {
        clocks_moved,
        ..loaded
    })
}

/// Every date from `first` to `last`.
fn rows_dates(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    first.iter_days().take_while(move |d| *d <= last)
}

fn configured_name(configured: bool) -> &'static str {
    if configured {
        "configured"
    } else {
        "not_configured"
    }
}

/// What a calendar change wrote, for [`in_change`] to finish.
struct Changed<T> {
    /// What the change reports.
    outcome: T,
    /// Its audit event.
    event: Entry,
    /// The days whose kind may have changed: the running clocks over them follow.
    days: Option<RangeInclusive<NaiveDate>>,
}

/// The frame of every calendar change: one write transaction, serialised between instances (an
/// advisory lock on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already does) so each change reads
/// exact previous days; `change` writes its rows and applies them to the stored calendar it is
/// given; then its audit event, and the running clocks over its days moved in one pass. After
/// the commit this instance's calendar is reloaded. Returns the outcome and the clocks moved.
fn in_change<T>(
    conn: &mut DbConnection,
    calendars: &Calendars,
    warn_percent: u32,
    at: DateTime<Utc>,
    change: impl FnOnce(&mut DbConnection, &mut Calendar) -> Result<Changed<T>, ApiError>,
) -> Result<(T, usize), ApiError> {
    let done = write_transaction(conn, |conn| -> Result<_, ApiError> {
        super::locks::hold_until_commit(conn, CHANGE_LOCK_KEY)?;
        let mut calendar = calendars.stored(conn)?;
        let changed = change(conn, &mut calendar)?;
        audit::append(conn, changed.event)?;
        let moved = match changed.days {
            Some(days) => clocks::follow_calendar(conn, &calendar, days, warn_percent, at)?,
            None => 0,
        };
        Ok((changed.outcome, moved))
    })?;
    // Committed: a failed reload only delays this instance until its next one.
    if let Err(error) = calendars.reload(conn) {
        tracing::warn!(%error, "calendar change stored, but reloading the calendar failed");
    }
    Ok(done)
}

/// What [`notify_horizon`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HorizonNotice {
    /// The horizon is further away than the lead time: nothing to tell.
    NotDue,
    /// The mail was written to the outbox now.
    Written,
    /// The mail for this horizon was already in the outbox (written by this or another
    /// instance).
    AlreadyWritten,
}

/// Tells the administrators at `recipient`, through the outbox, that `calendar`'s horizon is
/// `lead_days` days away or less (or passed): at most once per calendar and horizon, whatever
/// the number of instances or of checks. The mail's `Message-ID` is made from the calendar
/// and the horizon, and the outbox's `message_id` is unique: of several writers, one row
/// stands. A horizon that moves (a year loaded) is a new horizon, told again when it is near.
pub fn notify_horizon(
    conn: &mut DbConnection,
    calendar: &Calendar,
    recipient: &str,
    lead_days: u32,
    now: DateTime<Utc>,
) -> QueryResult<HorizonNotice> {
    let horizon = calendar.horizon();
    if !horizon.notice_due(now, lead_days) {
        return Ok(HorizonNotice::NotDue);
    }
    let last_day = horizon.last_day();
    let key = format!(
        "calendar-horizon.{}.{}",
        calendar.code(),
        last_day.map_or_else(|| "none".to_string(), |d| d.to_string())
    );
    let notice = Notice {
        request_id: None,
        recipient: recipient.to_string(),
        message: Message::CalendarHorizon {
            calendar: calendar.code().to_string(),
            last_day: last_day.map(|d| d.to_string()),
            days_left: horizon.days_left(now),
            next_year: last_day.map_or(now.year(), |d| d.year() + 1),
        },
        about: About::calendar(calendar.code()),
    };
    Ok(if notifications::enqueue_once(conn, &notice, &key, now)? {
        HorizonNotice::Written
    } else {
        HorizonNotice::AlreadyWritten
    })
}

/// What a stored row does to the file's calendar; the row's date.
fn apply(calendar: &mut Calendar, row: &CalendarDayRow) -> Option<NaiveDate> {
    let Ok(date) = NaiveDate::parse_from_str(&row.day, "%Y-%m-%d") else {
        tracing::warn!(day = %row.day, "ignoring a stored calendar day that is not a date");
        return None;
    };
    match row.kind.as_str() {
        "holiday" => calendar.set_day(date, DayKind::Holiday),
        "working_day" => calendar.set_day(date, DayKind::WorkingDay),
        _ => calendar.clear_day(date),
    }
    Some(date)
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

    /// The file's calendar with `rows` applied; a year with a row for every day is configured
    /// (see the module doc).
    fn build(&self, rows: &[CalendarDayRow]) -> Calendar {
        let mut calendar = self.file.clone();
        let mut stored: BTreeMap<i32, i64> = BTreeMap::new();
        for row in rows {
            if let Some(date) = apply(&mut calendar, row) {
                *stored.entry(date.year()).or_default() += 1;
            }
        }
        for (year, count) in stored {
            let (first, last) = year_bounds(year);
            if count == (last - first).num_days() + 1 {
                calendar.mark_configured(year);
            }
        }
        calendar
    }
}
