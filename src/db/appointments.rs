//! Storing appointments (统一预约) and keeping their limits under concurrency.
//!
//! Every limit is kept by the database's own guarantees, never by a lock in this process, so
//! several instances on one PostgreSQL book together safely:
//! - **capacity**: a booking takes a place with one conditional `UPDATE` of the slot's row in
//!   `appointment_slots` (`booked = booked + 1 … WHERE booked < capacity`). On PostgreSQL the
//!   row lock queues concurrent bookings of one slot, and each re-reads the count the one before
//!   it committed (READ COMMITTED re-checks the `WHERE` on the new row); on SQLite every write
//!   transaction is `BEGIN IMMEDIATE`, one at a time. Either way 50 bookings of the last 3
//!   places give exactly 3.
//! - **weekly limit**: the same conditional `UPDATE` on the enterprise's row of the week in
//!   `appointment_weeks`.
//! - **one active booking per matter and day**: a partial unique index; a concurrent second
//!   booking fails on it and is retried, and the retry sees the first.
//! - **the worker** marks a no-show or writes a reminder with a conditional update of the row
//!   as it was read (its revision and state), so of several instances exactly one succeeds,
//!   and only that one writes the audit event or the mail.
//!
//! Audit events of an appointment carry `appointment:<id>` where a request's events carry the
//! request id.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::notifications::{self, Notice};
use super::requests::Scope;
use super::schema::{appointment_slots, appointment_weeks, appointments, requests};
use super::{DbConnection, audit, write_transaction};
use crate::domain::Catalog;
use crate::domain::appointment::{Hall, Status};
use crate::domain::audit::Entry;
use crate::domain::notice::{About, AppointmentStage, Message};
use crate::error::ApiError;

/// A stored appointment.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = appointments, treat_none_as_default_value = false)]
pub struct AppointmentRow {
    /// UUID v7.
    pub id: String,
    /// The enterprise.
    pub uscc: String,
    /// Matter code.
    pub matter: String,
    /// The counter's unit.
    pub unit: String,
    /// Counter code.
    pub counter: String,
    /// Slot start (UTC).
    pub starts_at: NaiveDateTime,
    /// Slot end (UTC).
    pub ends_at: NaiveDateTime,
    /// The slot's local date, `YYYY-MM-DD`.
    pub local_date: String,
    /// Monday of the slot's week, `YYYY-MM-DD`.
    pub week: String,
    /// `booked`, `cancelled`, `checked_in`, `no_show`.
    pub status: String,
    /// Contact name.
    pub contact_name: String,
    /// Contact phone.
    pub contact_phone: String,
    /// Contact e-mail (the mails go there).
    pub contact_email: String,
    /// The request it is for.
    pub request_id: Option<String>,
    /// `Idempotency-Key` it was booked with.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the booking body.
    pub body_sha256: Option<String>,
    /// When it becomes a no-show (UTC).
    pub no_show_at: NaiveDateTime,
    /// When the reminder is due (UTC); `None`: no reminder.
    pub reminder_due_at: Option<NaiveDateTime>,
    /// When the reminder was written to the outbox (UTC).
    pub reminded_at: Option<NaiveDateTime>,
    /// Checked in (UTC).
    pub checked_in_at: Option<NaiveDateTime>,
    /// The clerk who checked it in (token subject).
    pub checked_in_by: Option<String>,
    /// Cancelled (UTC).
    pub cancelled_at: Option<NaiveDateTime>,
    /// Booked (UTC).
    pub created_at: NaiveDateTime,
    /// Last changed (UTC).
    pub updated_at: NaiveDateTime,
    /// Revision (`ETag` `"r<revision>"`).
    pub revision: i32,
}

impl AppointmentRow {
    /// The state; a stored text outside the CHECK constraint cannot occur.
    pub fn state(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Cancelled)
    }
}

/// One counter's slot a booking may take a place in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The counter's unit.
    pub unit: String,
    /// Counter code.
    pub counter: String,
    /// Start (UTC).
    pub starts_at: NaiveDateTime,
    /// End (UTC).
    pub ends_at: NaiveDateTime,
    /// Places of the slot.
    pub capacity: i32,
    /// When a booking of it becomes a no-show (UTC).
    pub no_show_at: NaiveDateTime,
}

/// An `Idempotency-Key` presented with a booking.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The key.
    pub key: String,
    /// SHA-256 of the canonical body.
    pub body_sha256: String,
}

/// A booking to make.
#[derive(Debug, Clone)]
pub struct NewBooking {
    /// The row; its unit, counter, times and no-show time are those of the place it gets.
    pub row: AppointmentRow,
    /// The places to try, in order (the counters serving the matter at that time).
    pub places: Vec<Place>,
    /// The enterprise's weekly limit.
    pub weekly_limit: i32,
}

/// The audit events and mails of a change, made once the row is known.
pub type Compose<'a> = &'a dyn Fn(&AppointmentRow) -> (Vec<Entry>, Vec<Notice>);

/// What a booking or a move did.
#[derive(Debug)]
pub enum Outcome {
    /// Done: the row as stored.
    Done(AppointmentRow),
    /// The key was used before with the same body: that booking, as it is now.
    Replay(AppointmentRow),
    /// The key was used before with another body.
    KeyReused,
    /// No place left in the slot (at any counter tried).
    SlotFull,
    /// The enterprise holds an active booking of the matter that day: its id.
    AlreadyBooked(String),
    /// The enterprise holds its weekly limit of bookings in that week.
    WeeklyLimit,
    /// The appointment is not the revision expected, or not booked any more (moves only).
    Stale,
}

/// Why one attempt stopped; a refusal rolls the transaction back.
enum Stop {
    Retry,
    Refused(Box<Outcome>),
    Failed(ApiError),
}

impl From<DieselError> for Stop {
    fn from(error: DieselError) -> Self {
        Stop::Failed(error.into())
    }
}

fn is_unique_violation(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Runs `attempt` in write transactions until it is not a lost race (three times at most).
fn with_retries(
    conn: &mut DbConnection,
    mut attempt: impl FnMut(&mut DbConnection) -> Result<Outcome, Stop>,
) -> Result<Outcome, ApiError> {
    for _ in 0..3 {
        match write_transaction(conn, &mut attempt) {
            Ok(outcome) => return Ok(outcome),
            Err(Stop::Retry) => continue,
            Err(Stop::Refused(outcome)) => return Ok(*outcome),
            Err(Stop::Failed(error)) => return Err(error),
        }
    }
    Err(ApiError::internal("an appointment kept losing races"))
}

/// Makes sure the slot's counter row exists (a concurrent insert of it is fine).
fn ensure_slot(conn: &mut DbConnection, place: &Place) -> QueryResult<()> {
    let there: i64 = appointment_slots::table
        .find((&place.counter, place.starts_at))
        .count()
        .get_result(conn)?;
    if there > 0 {
        return Ok(());
    }
    // A savepoint: on PostgreSQL a refused insert would otherwise end the transaction.
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(appointment_slots::table)
            .values((
                appointment_slots::counter.eq(&place.counter),
                appointment_slots::starts_at.eq(place.starts_at),
                appointment_slots::unit.eq(&place.unit),
                appointment_slots::booked.eq(0),
            ))
            .execute(conn)
    });
    match inserted {
        Err(error) if !is_unique_violation(&error) => Err(error),
        _ => Ok(()),
    }
}

/// Takes one place of `place` if one is left.
fn take_place(conn: &mut DbConnection, place: &Place) -> QueryResult<bool> {
    ensure_slot(conn, place)?;
    let taken = diesel::update(
        appointment_slots::table
            .find((&place.counter, place.starts_at))
            .filter(appointment_slots::booked.lt(place.capacity)),
    )
    .set(appointment_slots::booked.eq(appointment_slots::booked + 1))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Gives back one place of the slot `counter`, `starts_at`.
fn free_place(conn: &mut DbConnection, counter: &str, starts_at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(
        appointment_slots::table
            .find((counter, starts_at))
            .filter(appointment_slots::booked.gt(0)),
    )
    .set(appointment_slots::booked.eq(appointment_slots::booked - 1))
    .execute(conn)?;
    Ok(())
}

/// Counts one more booking of `uscc` in `week` if it stays within `limit`.
fn take_week(conn: &mut DbConnection, uscc: &str, week: &str, limit: i32) -> QueryResult<bool> {
    let there: i64 = appointment_weeks::table
        .find((uscc, week))
        .count()
        .get_result(conn)?;
    if there == 0 {
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(appointment_weeks::table)
                .values((
                    appointment_weeks::uscc.eq(uscc),
                    appointment_weeks::week.eq(week),
                    appointment_weeks::active.eq(0),
                ))
                .execute(conn)
        });
        if let Err(error) = inserted {
            if !is_unique_violation(&error) {
                return Err(error);
            }
        }
    }
    let taken = diesel::update(
        appointment_weeks::table
            .find((uscc, week))
            .filter(appointment_weeks::active.lt(limit)),
    )
    .set(appointment_weeks::active.eq(appointment_weeks::active + 1))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Counts one booking of `uscc` in `week` less.
fn free_week(conn: &mut DbConnection, uscc: &str, week: &str) -> QueryResult<()> {
    diesel::update(
        appointment_weeks::table
            .find((uscc, week))
            .filter(appointment_weeks::active.gt(0)),
    )
    .set(appointment_weeks::active.eq(appointment_weeks::active - 1))
    .execute(conn)?;
    Ok(())
}

/// The enterprise's active booking of `matter` on `date`, other than `except`.
fn same_day(
    conn: &mut DbConnection,
    uscc: &str,
    matter: &str,
    date: &str,
    except: &str,
) -> QueryResult<Option<String>> {
    appointments::table
        .filter(appointments::uscc.eq(uscc))
        .filter(appointments::matter.eq(matter))
        .filter(appointments::local_date.eq(date))
        .filter(appointments::status.eq_any([Status::Booked.as_str(), Status::CheckedIn.as_str()]))
        .filter(appointments::id.ne(except))
        .select(appointments::id)
        .first(conn)
        .optional()
}

/// Takes a place at the first of `places` that has one; the place taken.
fn take_first(conn: &mut DbConnection, places: &[Place]) -> QueryResult<Option<Place>> {
    for place in places {
        if take_place(conn, place)? {
            return Ok(Some(place.clone()));
        }
    }
    Ok(None)
}

/// Books: replays an idempotent retry, or checks the day and week limits, takes a place and
/// stores the booking with its audit event and confirmation mail, all in one transaction.
pub fn book(
    conn: &mut DbConnection,
    new: &NewBooking,
    claim: Option<&Claim>,
    now: DateTime<Utc>,
    compose: Compose<'_>,
) -> Result<Outcome, ApiError> {
    with_retries(conn, |conn| {
        let row = &new.row;
        if let Some(claim) = claim {
            let earlier: Option<AppointmentRow> = appointments::table
                .filter(appointments::uscc.eq(&row.uscc))
                .filter(appointments::idempotency_key.eq(&claim.key))
                .select(AppointmentRow::as_select())
                .first(conn)
                .optional()?;
            if let Some(earlier) = earlier {
                return Ok(
                    if earlier.body_sha256.as_deref() == Some(claim.body_sha256.as_str()) {
                        Outcome::Replay(earlier)
                    } else {
                        Outcome::KeyReused
                    },
                );
            }
        }
        if let Some(id) = same_day(conn, &row.uscc, &row.matter, &row.local_date, "")? {
            return Err(Stop::Refused(Box::new(Outcome::AlreadyBooked(id))));
        }
        if !take_week(conn, &row.uscc, &row.week, new.weekly_limit)? {
            return Err(Stop::Refused(Box::new(Outcome::WeeklyLimit)));
        }
        let Some(place) = take_first(conn, &new.places)? else {
            return Err(Stop::Refused(Box::new(Outcome::SlotFull)));
        };
        let mut row = row.clone();
        row.unit = place.unit;
        row.counter = place.counter;
        row.starts_at = place.starts_at;
        row.ends_at = place.ends_at;
        row.no_show_at = place.no_show_at;
        if let Some(claim) = claim {
            row.idempotency_key = Some(claim.key.clone());
            row.body_sha256 = Some(claim.body_sha256.clone());
        }
        match diesel::insert_into(appointments::table)
            .values(&row)
            .execute(conn)
        {
            Ok(_) => {}
            // A concurrent booking of the same key, or of the same matter and day, won: the
            // retry finds it.
            Err(error) if is_unique_violation(&error) => return Err(Stop::Retry),
            Err(error) => return Err(error.into()),
        }
        let (events, notices) = compose(&row);
        audit::append_many(conn, events)?;
        notifications::enqueue(conn, &notices, now)?;
        Ok(Outcome::Done(row))
    })
}

/// A move to another slot.
#[derive(Debug, Clone)]
pub struct Move {
    /// The appointment.
    pub id: String,
    /// The revision the enterprise read.
    pub expected_revision: i32,
    /// The places to try (one slot time, the counters serving the matter then).
    pub places: Vec<Place>,
    /// The new slot's local date.
    pub local_date: String,
    /// The new slot's week.
    pub week: String,
    /// When the new slot's reminder is due.
    pub reminder_due_at: Option<NaiveDateTime>,
    /// The enterprise's weekly limit.
    pub weekly_limit: i32,
}

/// Moves a booking to another slot in one transaction: the new place is taken (or the move is
/// refused and nothing changes), the old one given back, the day and week limits kept.
pub fn reschedule(
    conn: &mut DbConnection,
    change: &Move,
    now: DateTime<Utc>,
    compose: Compose<'_>,
) -> Result<Outcome, ApiError> {
    let now_naive = now.naive_utc();
    with_retries(conn, |conn| {
        let current: AppointmentRow = match find(conn, &change.id)? {
            Some(row) => row,
            None => return Err(Stop::Refused(Box::new(Outcome::Stale))),
        };
        if current.revision != change.expected_revision || current.state() != Status::Booked {
            return Err(Stop::Refused(Box::new(Outcome::Stale)));
        }
        if let Some(id) = same_day(
            conn,
            &current.uscc,
            &current.matter,
            &change.local_date,
            &current.id,
        )? {
            return Err(Stop::Refused(Box::new(Outcome::AlreadyBooked(id))));
        }
        if change.week != current.week {
            if !take_week(conn, &current.uscc, &change.week, change.weekly_limit)? {
                return Err(Stop::Refused(Box::new(Outcome::WeeklyLimit)));
            }
            free_week(conn, &current.uscc, &current.week)?;
        }
        // Row locks in one order (counter, start), so two moves in opposite directions between
        // the same slots cannot deadlock on PostgreSQL.
        let new_first = change
            .places
            .first()
            .is_some_and(|p| (&p.counter, p.starts_at) < (&current.counter, current.starts_at));
        if !new_first {
            free_place(conn, &current.counter, current.starts_at)?;
        }
        let Some(place) = take_first(conn, &change.places)? else {
            return Err(Stop::Refused(Box::new(Outcome::SlotFull)));
        };
        if new_first {
            free_place(conn, &current.counter, current.starts_at)?;
        }
        let moved = diesel::update(
            appointments::table
                .find(&current.id)
                .filter(appointments::revision.eq(current.revision))
                .filter(appointments::status.eq(Status::Booked.as_str())),
        )
        .set((
            appointments::unit.eq(&place.unit),
            appointments::counter.eq(&place.counter),
            appointments::starts_at.eq(place.starts_at),
            appointments::ends_at.eq(place.ends_at),
            appointments::no_show_at.eq(place.no_show_at),
            appointments::local_date.eq(&change.local_date),
            appointments::week.eq(&change.week),
            appointments::reminder_due_at.eq(change.reminder_due_at),
            appointments::reminded_at.eq(None::<NaiveDateTime>),
            appointments::updated_at.eq(now_naive),
            appointments::revision.eq(current.revision + 1),
        ))
        .execute(conn);
        match moved {
            Ok(1) => {}
            Ok(_) => return Err(Stop::Refused(Box::new(Outcome::Stale))),
            Err(error) if is_unique_violation(&error) => return Err(Stop::Retry),
            Err(error) => return Err(error.into()),
        }
        let row = find(conn, &current.id)?.ok_or(Stop::Refused(Box::new(Outcome::Stale)))?;
        let (events, notices) = compose(&row);
        audit::append_many(conn, events)?;
        notifications::enqueue(conn, &notices, now)?;
        Ok(Outcome::Done(row))
    })
}

/// Cancels a booked appointment of revision `expected_revision`, giving its place and its
/// week's count back; `None` when it is not that revision or not booked any more.
pub fn cancel(
    conn: &mut DbConnection,
    id: &str,
    expected_revision: i32,
    now: DateTime<Utc>,
    compose: Compose<'_>,
) -> Result<Option<AppointmentRow>, ApiError> {
    let now_naive = now.naive_utc();
    write_transaction(conn, |conn| {
        let changed = diesel::update(
            appointments::table
                .find(id)
                .filter(appointments::revision.eq(expected_revision))
                .filter(appointments::status.eq(Status::Booked.as_str())),
        )
        .set((
            appointments::status.eq(Status::Cancelled.as_str()),
            appointments::cancelled_at.eq(now_naive),
            appointments::updated_at.eq(now_naive),
            appointments::revision.eq(expected_revision + 1),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        let row = find(conn, id)?.ok_or_else(|| ApiError::internal("cancelled row vanished"))?;
        free_place(conn, &row.counter, row.starts_at)?;
        free_week(conn, &row.uscc, &row.week)?;
        let (events, notices) = compose(&row);
        audit::append_many(conn, events)?;
        notifications::enqueue(conn, &notices, now)?;
        Ok(Some(row))
    })
}

/// Checks a booked appointment in; `None` when it is not booked any more.
pub fn check_in(
    conn: &mut DbConnection,
    id: &str,
    clerk: &str,
    now: DateTime<Utc>,
    compose: Compose<'_>,
) -> Result<Option<AppointmentRow>, ApiError> {
    let now_naive = now.naive_utc();
    write_transaction(conn, |conn| {
        let changed = diesel::update(
            appointments::table
                .find(id)
                .filter(appointments::status.eq(Status::Booked.as_str())),
        )
        .set((
            appointments::status.eq(Status::CheckedIn.as_str()),
            appointments::checked_in_at.eq(now_naive),
            appointments::checked_in_by.eq(clerk),
            appointments::updated_at.eq(now_naive),
            appointments::revision.eq(appointments::revision + 1),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        let row = find(conn, id)?.ok_or_else(|| ApiError::internal("checked-in row vanished"))?;
        let (events, _) = compose(&row);
        audit::append_many(conn, events)?;
        Ok(Some(row))
    })
}

/// The booked status as a literal, so the partial indexes serve the worker's reads.
fn booked() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>("appointments.status = 'booked'")
}

/// Booked appointments whose no-show time has come, oldest first, at most `limit`.
pub fn due_no_shows(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<AppointmentRow>> {
    appointments::table
        .filter(booked())
        .filter(appointments::no_show_at.le(now.naive_utc()))
        .order((appointments::no_show_at, appointments::id))
        .limit(limit)
        .select(AppointmentRow::as_select())
        .load(conn)
}

/// Marks `row` (as read) a no-show, with its audit event, unless another instance (or a
/// check-in) changed it first. Whether this call marked it.
pub fn mark_no_show(
    conn: &mut DbConnection,
    row: &AppointmentRow,
    now: DateTime<Utc>,
    event: Entry,
) -> Result<bool, ApiError> {
    let now_naive = now.naive_utc();
    write_transaction(conn, |conn| {
        let changed = diesel::update(
            appointments::table
                .find(&row.id)
                .filter(appointments::revision.eq(row.revision))
                .filter(appointments::status.eq(Status::Booked.as_str())),
        )
        .set((
            appointments::status.eq(Status::NoShow.as_str()),
            appointments::updated_at.eq(now_naive),
            appointments::revision.eq(row.revision + 1),
        ))
        .execute(conn)?;
        if changed == 1 {
            audit::append(conn, event)?;
        }
        Ok(changed == 1)
    })
}

/// Booked appointments whose reminder is due and not written, oldest first, at most `limit`.
pub fn due_reminders(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<AppointmentRow>> {
    appointments::table
        .filter(booked())
        .filter(appointments::reminded_at.is_null())
        .filter(appointments::reminder_due_at.le(now.naive_utc()))
        .order((appointments::reminder_due_at, appointments::id))
        .limit(limit)
        .select(AppointmentRow::as_select())
        .load(conn)
}

/// Writes `row`'s (as read) reminder to the outbox unless another instance did, or the
/// booking changed since it was read. Whether this call wrote it.
pub fn remind(
    conn: &mut DbConnection,
    row: &AppointmentRow,
    now: DateTime<Utc>,
    notice: &Notice,
) -> Result<bool, ApiError> {
    write_transaction(conn, |conn| {
        let changed = diesel::update(
            appointments::table
                .find(&row.id)
                .filter(appointments::revision.eq(row.revision))
                .filter(appointments::status.eq(Status::Booked.as_str()))
                .filter(appointments::reminded_at.is_null()),
        )
        .set(appointments::reminded_at.eq(now.naive_utc()))
        .execute(conn)?;
        if changed == 1 {
            notifications::enqueue(conn, std::slice::from_ref(notice), now)?;
        }
        Ok(changed == 1)
    })
}

/// One appointment, whoever's.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<AppointmentRow>> {
    appointments::table
        .find(id)
        .select(AppointmentRow::as_select())
        .first(conn)
        .optional()
}

/// Whether `scope` sees `row`: an enterprise its own, a unit its counters', the district all.
pub fn visible(row: &AppointmentRow, scope: &Scope) -> bool {
    match scope {
        Scope::Enterprise(uscc) => row.uscc == *uscc,
        Scope::Unit(unit) => row.unit == unit.as_str(),
        Scope::All => true,
    }
}

/// List filters; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Only slots on this local date, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Only this state.
    pub status: Option<String>,
    /// Only this matter.
    pub matter: Option<String>,
    /// Only this unit.
    pub unit: Option<String>,
}

/// The appointments `scope` sees, by slot start, at most `limit`.
pub fn list(
    conn: &mut DbConnection,
    scope: &Scope,
    filters: &Filters,
    limit: i64,
) -> QueryResult<Vec<AppointmentRow>> {
    let mut query = appointments::table.into_boxed();
    query = match scope {
        Scope::Enterprise(uscc) => query.filter(appointments::uscc.eq(uscc.clone())),
        Scope::Unit(unit) => query.filter(appointments::unit.eq(unit.as_str())),
        Scope::All => query,
    };
    if let Some(date) = &filters.date {
        query = query.filter(appointments::local_date.eq(date.clone()));
    }
    if let Some(status) = &filters.status {
        query = query.filter(appointments::status.eq(status.clone()));
    }
    if let Some(matter) = &filters.matter {
        query = query.filter(appointments::matter.eq(matter.clone()));
    }
    if let Some(unit) = &filters.unit {
        query = query.filter(appointments::unit.eq(unit.clone()));
    }
    query
        .order((
            appointments::starts_at,
            appointments::counter,
            appointments::id,
        ))
        .limit(limit)
        .select(AppointmentRow::as_select())
        .load(conn)
}

/// No-shows per enterprise among the appointments `scope` sees, most first.
pub fn no_shows(conn: &mut DbConnection, scope: &Scope) -> QueryResult<Vec<(String, i64)>> {
    let mut query = appointments::table
        .filter(appointments::status.eq(Status::NoShow.as_str()))
        .into_boxed();
    query = match scope {
        Scope::Enterprise(uscc) => query.filter(appointments::uscc.eq(uscc.clone())),
        Scope::Unit(unit) => query.filter(appointments::unit.eq(unit.as_str())),
        Scope::All => query,
    };
    let usccs: Vec<String> = query.select(appointments::uscc).load(conn)?;
    let mut tally = std::collections::BTreeMap::<String, i64>::new();
    for uscc in usccs {
        *tally.entry(uscc).or_default() += 1;
    }
    let mut counts: Vec<(String, i64)> = tally.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(counts)
}

/// The id of the enterprise's own request named by its id or its number (`PT…`).
pub fn own_request(
    conn: &mut DbConnection,
    uscc: &str,
    reference: &str,
) -> QueryResult<Option<String>> {
    requests::table
        .filter(requests::uscc.eq(uscc))
        .filter(
            requests::id
                .eq(reference)
                .or(requests::number.eq(reference)),
        )
        .select(requests::id)
        .first(conn)
        .optional()
}

/// Places taken per counter and slot start, for the slots of `counters` from `from` to `to`.
pub fn taken(
    conn: &mut DbConnection,
    counters: &[String],
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(String, NaiveDateTime, i32)>> {
    appointment_slots::table
        .filter(appointment_slots::counter.eq_any(counters))
        .filter(appointment_slots::starts_at.ge(from))
        .filter(appointment_slots::starts_at.le(to))
        .select((
            appointment_slots::counter,
            appointment_slots::starts_at,
            appointment_slots::booked,
        ))
        .load(conn)
}

/// The counter as a visitor reads it: `A01 市场监管 1 号窗口`.
pub fn counter_label(hall: &Hall, code: &str) -> String {
    match hall.counter(code) {
        Some((_, counter)) => format!("{code} {}", counter.name),
        None => code.to_string(),
    }
}

/// The slot in local time: `2026-12-01 09:00–09:30`.
pub fn slot_text(row: &AppointmentRow, zone: Tz) -> String {
    let start = row.starts_at.and_utc().with_timezone(&zone);
    let end = row.ends_at.and_utc().with_timezone(&zone);
    format!("{}–{}", start.format("%Y-%m-%d %H:%M"), end.format("%H:%M"))
}

/// Where a booking's calendar entry is served.
pub fn calendar_path(id: &str) -> String {
    format!("/api/v1/appointments/{id}/calendar")
}

/// The mail of `stage` about `row`, to its contact.
pub fn notice(
    row: &AppointmentRow,
    stage: AppointmentStage,
    catalog: &Catalog,
    hall: &Hall,
    zone: Tz,
    cutoff_minutes: u32,
) -> Notice {
    Notice {
        request_id: None,
        recipient: row.contact_email.clone(),
        message: Message::Appointment {
            stage,
            counter: counter_label(hall, &row.counter),
            slot: slot_text(row, zone),
            calendar_path: calendar_path(&row.id),
            cutoff_minutes,
        },
        about: About::of(catalog, &row.id, &row.matter),
    }
}

/// The audit trail's name for an appointment.
pub fn trail(id: &str) -> String {
    format!("appointment:{id}")
}

/// The worker's actor in the audit trail.
pub const WORKER: &str = "appointment-worker";

/// One look of the worker: marks the no-shows due and writes the reminders due, at most
/// `batch` of each, each exactly once across instances. Answers how many of each this call did.
pub fn work(
    conn: &mut DbConnection,
    catalog: &Catalog,
    hall: &Hall,
    zone: Tz,
    cutoff_minutes: u32,
    now: DateTime<Utc>,
    batch: i64,
) -> Result<(usize, usize), ApiError> {
    let mut marked = 0;
    for row in due_no_shows(conn, now, batch)? {
        let event = Entry {
            request_id: trail(&row.id),
            actor: WORKER.into(),
            role: "system".into(),
            unit: Some(row.unit.clone()),
            action: "appointment.no_show".into(),
            state_before: Some(Status::Booked.as_str().into()),
            state_after: Some(Status::NoShow.as_str().into()),
            payload: serde_json::json!({
                "uscc": row.uscc,
                "matter": row.matter,
                "counter": row.counter,
                "slot_start": row.starts_at.and_utc(),
                "no_show_at": row.no_show_at.and_utc(),
            }),
            at: now,
        };
        if mark_no_show(conn, &row, now, event)? {
            marked += 1;
        }
    }
    let mut reminded = 0;
    for row in due_reminders(conn, now, batch)? {
        let mail = notice(
            &row,
            AppointmentStage::Reminder,
            catalog,
            hall,
            zone,
            cutoff_minutes,
        );
        if remind(conn, &row, now, &mail)? {
            reminded += 1;
        }
    }
    Ok((marked, reminded))
}
