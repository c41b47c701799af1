//! SLA clocks in the database: stored rows to and from [`Clock`], the clocks' reaction to a
//! lifecycle step (in the step's transaction), following a calendar change, and the detection
//! worker's marking.
//!
//! Every change of a clock is an audit event (`clock.started`, `clock.paused`, …) appended in
//! the same transaction as the change.

use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::Bool;
use serde_json::json;

use super::DbConnection;
use super::notifications::{self, Notice};
use super::requests::ClockRow;
use super::schema::{clocks, materials, requests, tasks};
use crate::domain::audit::Entry;
use crate::domain::calendar::Calendar;
use crate::domain::clock::{self, Change, Clock, Pause, Reaction, Rules};
use crate::domain::lifecycle::Action;
use crate::domain::notice::{About, Message};
use crate::domain::request::{ClockKind, ClockState, Status};
use crate::domain::{Catalog, UnitCode};
use crate::error::ApiError;

type Backend = <DbConnection as Connection>::Backend;

/// Who the audit trail names for changes the engine makes by itself.
pub const ENGINE: &str = "sla-engine";

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A stored instant as the mails show it: local time of the calendar, to the minute.
fn local(t: NaiveDateTime, rules: Rules<'_>) -> String {
    utc(t)
        .with_timezone(&rules.calendar.time_zone())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn naive(t: Option<DateTime<Utc>>) -> Option<NaiveDateTime> {
    t.map(|t| t.naive_utc())
}

/// A new row for `clock`.
pub fn to_row(
    clock: &Clock,
    id: String,
    request_id: String,
    task_id: Option<String>,
    unit: String,
    matter: String,
) -> ClockRow {
    let mut row = ClockRow {
        id,
        request_id,
        task_id,
        kind: clock.kind.as_str().into(),
        target: clock.target.to_string(),
        state: String::new(),
        started_at: None,
        due_at: None,
        unit,
        matter,
        warn_at: None,
        warned_at: None,
        check_at: None,
        breached_at: None,
        stopped_at: None,
        paused_at: None,
        paused_seconds: 0,
        pauses: String::new(),
        resumed_at: None,
        remaining_seconds: None,
        extended_days: 0,
        worked_minutes: None,
        lost_to_unit: None,
        lost_minutes: 0,
        material_id: None,
    };
    write(&mut row, clock);
    row
}

/// Copies the clock's state into its row.
fn write(row: &mut ClockRow, clock: &Clock) {
    row.state = clock.state.as_str().into();
    row.started_at = naive(clock.started_at);
    row.due_at = naive(clock.due_at);
    row.warn_at = naive(clock.warn_at);
    row.warned_at = naive(clock.warned_at);
    row.check_at = naive(clock.check_at());
    row.breached_at = naive(clock.breached_at);
    row.stopped_at = naive(clock.stopped_at);
    row.paused_at = naive(clock.paused_at);
    row.paused_seconds = clock.paused_seconds;
    row.pauses = serde_json::to_string(&clock.pauses).expect("serialisable");
    row.resumed_at = naive(clock.resumed_at);
    row.remaining_seconds = clock.remaining_seconds;
    row.extended_days = i32::try_from(clock.extended_days).unwrap_or(i32::MAX);
    row.worked_minutes = clock.worked_minutes;
    row.lost_to_unit = clock.lost_to_unit.clone();
    row.lost_minutes = clock.lost_minutes;
}

/// The clock a stored row describes.
pub fn from_row(row: &ClockRow) -> Result<Clock, ApiError> {
    let bad = |what: &str| ApiError::internal(format!("clock {}: bad {what}", row.id));
    let at = |t: Option<NaiveDateTime>| t.map(utc);
    Ok(Clock {
        kind: row.kind.parse().map_err(|_| bad("kind"))?,
        target: row.target.parse().map_err(|_| bad("target"))?,
        state: row.state.parse().map_err(|_| bad("state"))?,
        started_at: at(row.started_at),
        due_at: at(row.due_at),
        warn_at: at(row.warn_at),
        warned_at: at(row.warned_at),
        breached_at: at(row.breached_at),
        stopped_at: at(row.stopped_at),
        paused_at: at(row.paused_at),
        paused_seconds: row.paused_seconds,
        pauses: serde_json::from_str::<Vec<Pause>>(&row.pauses).map_err(|_| bad("pauses"))?,
        resumed_at: at(row.resumed_at),
        remaining_seconds: row.remaining_seconds,
        extended_days: u32::try_from(row.extended_days).unwrap_or(0),
        worked_minutes: row.worked_minutes,
        lost_to_unit: row.lost_to_unit.clone(),
        lost_minutes: row.lost_minutes,
    })
}

/// What a clock was when read: its state, `check_at` and `stopped_at`.
type Guard<'a> = (&'a str, Option<NaiveDateTime>, Option<NaiveDateTime>);

/// Stores every mutable column of `row`, but only if the stored clock is still as read (the
/// `guard`'s state, `check_at` and `stopped_at`): false when someone changed it first. A clock
/// that stops here is added to the statistics' rollups in the same transaction.
fn save(conn: &mut DbConnection, row: &ClockRow, guard: Guard<'_>) -> QueryResult<bool> {
    let changes = (
        clocks::state.eq(&row.state),
        clocks::started_at.eq(row.started_at),
        clocks::due_at.eq(row.due_at),
        clocks::unit.eq(&row.unit),
        clocks::warn_at.eq(row.warn_at),
        clocks::warned_at.eq(row.warned_at),
        clocks::check_at.eq(row.check_at),
        clocks::breached_at.eq(row.breached_at),
        clocks::stopped_at.eq(row.stopped_at),
        clocks::paused_at.eq(row.paused_at),
        clocks::paused_seconds.eq(row.paused_seconds),
        clocks::pauses.eq(&row.pauses),
        clocks::resumed_at.eq(row.resumed_at),
        clocks::remaining_seconds.eq(row.remaining_seconds),
        (
            clocks::extended_days.eq(row.extended_days),
            clocks::worked_minutes.eq(row.worked_minutes),
            clocks::lost_to_unit.eq(&row.lost_to_unit),
            clocks::lost_minutes.eq(row.lost_minutes),
        ),
    );
    let (state, check_at, stopped_at) = guard;
    // Two steps may stop a breached clock at once (its state and `check_at` stay as they
    // were): only one of them may stop it, and count it.
    let as_read: Box<dyn BoxableExpression<clocks::table, Backend, SqlType = Bool>> =
        match stopped_at {
            None => Box::new(clocks::stopped_at.is_null()),
            Some(_) => Box::new(clocks::stopped_at.is_not_null()),
        };
    let target = clocks::table
        .find(&row.id)
        .filter(clocks::state.eq(state))
        .filter(as_read);
    let updated = match check_at {
        Some(check_at) => diesel::update(target.filter(clocks::check_at.eq(check_at)))
            .set(changes)
            .execute(conn)?,
        None => diesel::update(target.filter(clocks::check_at.is_null()))
            .set(changes)
            .execute(conn)?,
    } == 1;
    if updated && stopped_at.is_none() && row.stopped_at.is_some() {
        super::rollups::count_stopped(conn, row)?;
    }
    Ok(updated)
}

/// Reads nothing, writes `row` changed by `change` — but only if the clock is still as read
/// (state, `check_at` and `stopped_at`): on PostgreSQL the detector or another step may change it between
/// our read and our write. Then it reads the clock again and applies `change` to what it is
/// now (up to three times). Returns the stored row, the state before and the changes; `None`
/// when `change` changes nothing.
fn guarded(
    conn: &mut DbConnection,
    row: ClockRow,
    mut change: impl FnMut(ClockRow) -> Result<Option<(ClockRow, Vec<Change>)>, ApiError>,
) -> Result<Option<(ClockRow, ClockState, Vec<Change>)>, ApiError> {
    let mut current = row;
    for _ in 0..3 {
        let before: ClockState = current.state.parse().unwrap_or(ClockState::Pending);
        let guard = (current.state.clone(), current.check_at, current.stopped_at);
        let Some((row, changes)) = change(current.clone())? else {
            return Ok(None);
        };
        if save(conn, &row, (&guard.0, guard.1, guard.2))? {
            return Ok(Some((row, before, changes)));
        }
        current = clocks::table
            .find(&current.id)
            .select(ClockRow::as_select())
            .first(conn)?;
    }
    // The whole transaction rolls back; the caller may simply try again.
    Err(ApiError::internal(format!(
        "clock {} kept changing under the step",
        current.id
    )))
}

/// Applies a clock operation to a row: the row to store and the changes, or `None`.
fn with_clock(
    mut row: ClockRow,
    operate: impl FnOnce(&mut Clock) -> Result<Vec<Change>, ApiError>,
) -> Result<Option<(ClockRow, Vec<Change>)>, ApiError> {
    let mut clock = from_row(&row)?;
    let changes = operate(&mut clock)?;
    if changes.is_empty() {
        return Ok(None);
    }
    write(&mut row, &clock);
    Ok(Some((row, changes)))
}

/// The audit event of one clock change.
pub fn event(
    row: &ClockRow,
    before: ClockState,
    change: &Change,
    actor: &str,
    cause: Option<Action>,
    at: DateTime<Utc>,
) -> Entry {
    let detail = match change {
        Change::Paused(reason) => json!({ "reason": reason }),
        Change::Extended(days) => json!({ "working_days": days }),
        Change::LostToReturn(unit, minutes) => json!({ "unit": unit, "working_minutes": minutes }),
        _ => json!({}),
    };
    Entry {
        request_id: row.request_id.clone(),
        actor: actor.to_string(),
        role: "system".into(),
        unit: Some(row.unit.clone()).filter(|u| !u.is_empty()),
        action: change.action().into(),
        state_before: Some(before.as_str().into()),
        state_after: Some(row.state.clone()),
        payload: json!({
            "clock": row.id,
            "kind": row.kind,
            "task": row.task_id,
            "target": row.target,
            "due_at": row.due_at.map(utc),
            "caused_by": cause,
            "detail": detail,
        }),
        at,
    }
}

/// Which of a request's clocks a step touches.
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    /// Every clock of the request (a step on the request as a whole).
    All,
    /// Clocks on the request itself, not on a task.
    RequestOnly,
    /// The clocks of one task.
    Task(&'a str),
}

/// What a lifecycle step does to the clocks.
#[derive(Debug, Clone)]
pub struct ClockStep<'a> {
    /// The step.
    pub action: Action,
    /// Which clocks.
    pub which: Which<'a>,
    /// A bundle: its request-level statutory limit is joint (Art. 42).
    pub joint: bool,
    /// The special procedure's kind, for the pause reason.
    pub detail: &'a str,
    /// A reroute after a return: the returning unit and when it returned the request.
    pub returned: Option<(&'a str, DateTime<Utc>)>,
    /// A reroute: the new lead unit, which request-level clocks now count against.
    pub new_unit: Option<&'a str>,
    /// Who took the step.
    pub actor: &'a str,
}

/// Applies `step` to the request's clocks, stores them, and returns the audit events.
pub fn on_step(
    conn: &mut DbConnection,
    request_id: &str,
    step: &ClockStep<'_>,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<Entry>, ApiError> {
    let mut rows: Vec<ClockRow> = clocks::table
        .filter(clocks::request_id.eq(request_id))
        .order(clocks::id)
        .select(ClockRow::as_select())
        .load(conn)?;
    let touched = |row: &ClockRow| match step.which {
        Which::All => true,
        Which::RequestOnly => row.task_id.is_none(),
        Which::Task(task) => row.task_id.as_deref() == Some(task),
    };
    rows.retain(touched);
    let renewed = renew(conn, request_id, &rows, step.action)?;
    rows.extend(renewed);
    let mut events = Vec::new();
    for row in rows {
        if let Some((row, before, changes)) =
            guarded(conn, row, |row| react_row(row, step, rules, now))?
        {
            for change in &changes {
                events.push(event(
                    &row,
                    before,
                    change,
                    step.actor,
                    Some(step.action),
                    now,
                ));
            }
        }
    }
    Ok(events)
}

/// New pending clocks for the visit clocks `action` opens again ([`clock::renews`]): one per
/// kind (and task) whose every clock has stopped — the next call after a supplement, the first
/// call of the unit a request was re-routed to, an acceptance after re-routing. A request-level
/// clock counts against the request's lead unit as it is now. Stored; answers the new rows.
fn renew(
    conn: &mut DbConnection,
    request_id: &str,
    rows: &[ClockRow],
    action: Action,
) -> Result<Vec<ClockRow>, ApiError> {
    let mut seen = std::collections::HashSet::new();
    let mut renewed = Vec::new();
    // Newest first: the first row of a kind (and task) met is its latest clock.
    for latest in rows.iter().rev() {
        let kind: ClockKind = latest.kind.parse().map_err(ApiError::internal)?;
        if !clock::renews(action, kind) || !seen.insert((&latest.kind, &latest.task_id)) {
            continue;
        }
        let still_there = rows
            .iter()
            .filter(|r| r.kind == latest.kind && r.task_id == latest.task_id)
            .any(|r| r.stopped_at.is_none());
        if still_there {
            continue; // pending or counting: the step acts on it
        }
        let unit = match &latest.task_id {
            Some(_) => latest.unit.clone(),
            None => requests::table
                .find(request_id)
                .select(requests::lead_unit)
                .first(conn)?,
        };
        let mut fresh = to_row(
            &Clock::new(kind, latest.target.parse().map_err(ApiError::internal)?),
            uuid::Uuid::now_v7().to_string(),
            request_id.to_string(),
            latest.task_id.clone(),
            unit,
            latest.matter.clone(),
        );
        fresh.material_id = latest.material_id.clone();
        diesel::insert_into(clocks::table)
            .values(&fresh)
            .execute(conn)?;
        renewed.push(fresh);
    }
    Ok(renewed)
}

/// Stops the open clocks of `kinds` on the request (a step outside the lifecycle: a
/// rectification case's contact or closing), stored; returns their audit events.
pub fn stop_kinds(
    conn: &mut DbConnection,
    request_id: &str,
    kinds: &[ClockKind],
    rules: Rules<'_>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Entry>, ApiError> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let rows: Vec<ClockRow> = clocks::table
        .filter(clocks::request_id.eq(request_id))
        .filter(clocks::kind.eq_any(&kinds))
        .filter(clocks::stopped_at.is_null())
        .select(ClockRow::as_select())
        .load(conn)?;
    stop_rows(conn, rows, rules, actor, now)
}

/// Stops the open clock watching the deferred material `material_id` (it was supplied),
/// stored: met, or stopped late; returns its audit events.
pub fn stop_material(
    conn: &mut DbConnection,
    material_id: &str,
    rules: Rules<'_>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Entry>, ApiError> {
    let rows: Vec<ClockRow> = clocks::table
        .filter(clocks::material_id.eq(material_id))
        .filter(clocks::kind.eq(ClockKind::Material.as_str()))
        .filter(clocks::stopped_at.is_null())
        .select(ClockRow::as_select())
        .load(conn)?;
    stop_rows(conn, rows, rules, actor, now)
}

/// Stops each of `rows`, stored; returns their audit events.
fn stop_rows(
    conn: &mut DbConnection,
    rows: Vec<ClockRow>,
    rules: Rules<'_>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Entry>, ApiError> {
    let mut events = Vec::new();
    for row in rows {
        let stopped = guarded(conn, row, |row| {
            with_clock(row, |clock| {
                Ok(clock
                    .stop(rules, now)
                    .map_err(ApiError::internal)?
                    .into_iter()
                    .collect())
            })
        })?;
        if let Some((row, before, changes)) = stopped {
            for change in &changes {
                events.push(event(&row, before, change, actor, None, now));
            }
        }
    }
    Ok(events)
}

/// What `step` does to one clock: the row as it should be stored and the changes, or `None`
/// when nothing changes.
fn react_row(
    mut row: ClockRow,
    step: &ClockStep<'_>,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Option<(ClockRow, Vec<Change>)>, ApiError> {
    let mut clock = from_row(&row)?;
    let mut changes = Vec::new();
    if let Some((unit, returned_at)) = step.returned {
        changes.extend(clock.charge_return(rules, unit, returned_at, now));
    }
    let joint = step.joint && row.task_id.is_none();
    // A co-unit's opinion clock is its own: the lead's review steps on the request leave it.
    let others_review = clock.kind == ClockKind::Opinion
        && step.action.per_task()
        && !matches!(step.which, Which::Task(_));
    let reaction =
        clock::reaction(step.action, clock.kind, joint, step.detail).filter(|_| !others_review);
    if let Some(reaction) = reaction {
        let change = clock
            .react(&reaction, rules, now)
            .map_err(ApiError::internal)?;
        changes.extend(change);
        // A step taken after the due time finds the breach the detector has not marked yet.
        if matches!(reaction, Reaction::Resume | Reaction::Extend(_)) {
            changes.extend(clock.detect(now));
        }
    }
    let moved_unit = match (step.new_unit, &row.task_id) {
        (Some(unit), None)
            if (clock.is_open() || clock.state == ClockState::Pending) && row.unit != unit =>
        {
            row.unit = unit.to_string();
            true
        }
        _ => false,
    };
    if changes.is_empty() && !moved_unit {
        return Ok(None);
    }
    write(&mut row, &clock);
    Ok(Some((row, changes)))
}

/// Recomputes the due and warning times of every running clock after a calendar change, in
/// the caller's transaction, and records each moved clock in the audit trail. Returns how
/// many clocks moved.
///
/// Only clocks the changed `days` (one day, or the range a loaded year changed) can affect
/// are read, in one pass: running working-time clocks that started before the range ended and
/// fall due after it began (a day of margin either side for time zones). Every due time is
/// recomputed from the clock's stored facts.
pub fn follow_calendar(
    conn: &mut DbConnection,
    calendar: &Calendar,
    days: RangeInclusive<NaiveDate>,
    warn_percent: u32,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    let rules = Rules {
        calendar,
        warn_percent,
    };
    let from = (*days.start() - TimeDelta::days(1)).and_time(NaiveTime::MIN);
    let to = (*days.end() + TimeDelta::days(2)).and_time(NaiveTime::MIN);
    let rows: Vec<ClockRow> = clocks::table
        .filter(clocks::state.eq(ClockState::Running.as_str()))
        .filter(clocks::stopped_at.is_null())
        .filter(clocks::due_at.ge(from))
        .filter(clocks::started_at.lt(to))
        .filter(clocks::target.not_like("PT%"))
        .select(ClockRow::as_select())
        .load(conn)?;
    let mut events = Vec::new();
    for row in rows {
        let followed = guarded(conn, row, |row| {
            with_clock(row, |clock| {
                let mut changes: Vec<Change> = clock
                    .follow(rules)
                    .map_err(ApiError::internal)?
                    .into_iter()
                    .collect();
                if !changes.is_empty() {
                    changes.extend(clock.detect(now));
                }
                Ok(changes)
            })
        })?;
        if let Some((row, before, changes)) = followed {
            if let Some(material) = &row.material_id {
                // A deferred material is due when its clock is.
                diesel::update(materials::table.find(material))
                    .set(materials::due_at.eq(row.due_at))
                    .execute(conn)?;
            }
            for change in &changes {
                events.push(event(&row, before, change, ENGINE, None, now));
            }
        }
    }
    let moved = events
        .iter()
        .filter(|e| e.action == Change::Moved.action())
        .count();
    super::audit::append_many(conn, events)?;
    Ok(moved)
}

/// Marks the warnings and breaches due at `now`, at most `limit` clocks, each exactly once
/// even with several server instances: a clock is only written when it is still as it was
/// read. Returns the changes marked.
///
/// A supplement-notice clock that runs out makes the request count as accepted from receipt
/// (Art. 32): the request records it and its statutory clocks start from receipt.
///
/// The supervisor of the unit a clock counts against gets a mail for each warning and breach,
/// written to the outbox in the same transaction — except the warning of a deferred
/// material's clock (容缺后补), which reminds the enterprise instead: supplying it is the
/// enterprise's part; its breach goes to the lead unit's supervisor like any other.
pub fn detect_due(
    conn: &mut DbConnection,
    catalog: &Catalog,
    rules: Rules<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(ClockRow, Change)>, ApiError> {
    super::write_transaction(conn, |conn| {
        let rows: Vec<ClockRow> = clocks::table
            .filter(clocks::check_at.le(now.naive_utc()))
            .order(clocks::check_at)
            .limit(limit)
            .select(ClockRow::as_select())
            .load(conn)?;
        // Two set-based updates mark the batch: the breaches (with the warning they imply)
        // and the warnings. Each re-checks the clock at write time (still running, not marked,
        // due), so a clock a step stopped, paused or extended meanwhile is left alone, and of
        // two instances only one marks a clock. RETURNING says which ones this one marked.
        let at = now.naive_utc();
        let is_due = |row: &ClockRow| {
            row.state == ClockState::Running.as_str()
                && row.breached_at.is_none()
                && row.due_at.is_some_and(|due| due <= at)
        };
        let is_warning = |row: &ClockRow| {
            row.state == ClockState::Running.as_str()
                && row.warned_at.is_none()
                && row.warn_at.is_some_and(|warn| warn <= at)
                && row.due_at.is_some_and(|due| due > at)
        };
        let due_ids: Vec<&str> = rows
            .iter()
            .filter(|r| is_due(r))
            .map(|r| r.id.as_str())
            .collect();
        let warning_ids: Vec<&str> = rows
            .iter()
            .filter(|r| is_warning(r))
            .map(|r| r.id.as_str())
            .collect();
        let mut mine: std::collections::HashSet<String> =
            mark_breached(conn, &due_ids, at)?.into_iter().collect();
        mine.extend(mark_warned(conn, &warning_ids, at)?);

        let mut marked = Vec::new();
        let mut events = Vec::new();
        let mut notices = Vec::new();
        let mut late = Vec::new();
        for mut row in rows {
            let guard = (row.state.clone(), row.check_at, row.stopped_at);
            let was_due = is_due(&row) || is_warning(&row);
            let mut clock = from_row(&row)?;
            let before = clock.state;
            let changes = clock.detect(now);
            write(&mut row, &clock);
            if !mine.contains(&row.id) {
                // Another instance or a step got there first; or (never in normal running) a
                // stale check_at with nothing to mark, which the guarded write sets right.
                if !was_due {
                    save(conn, &row, (&guard.0, guard.1, guard.2))?;
                }
                continue;
            }
            for change in changes {
                events.push(event(&row, before, &change, ENGINE, None, now));
                if change == Change::Breached && row.kind == ClockKind::SupplementNotice.as_str() {
                    let deemed = deem_accepted(conn, catalog, &row.request_id, rules, now)?;
                    events.extend(deemed.events);
                    notices.extend(deemed.notice);
                    late.extend(deemed.breached);
                }
                marked.push((row.clone(), change));
            }
        }
        // Breaches a deemed acceptance found already past are mailed like any other.
        marked.extend(late);
        super::audit::append_many(conn, events)?;
        notices.extend(supervisor_notices(conn, catalog, rules, &marked)?);
        notices.extend(material_reminders(conn, catalog, rules, &marked)?);
        notifications::enqueue(conn, &notices, now)?;
        Ok(marked)
    })
}

/// Marks the running, unmarked, due clocks among `ids` breached (and warned, if they were not)
/// at `at`, in one statement per chunk; answers the ids it marked.
fn mark_breached(
    conn: &mut DbConnection,
    ids: &[&str],
    at: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    let mut marked = Vec::new();
    for chunk in ids.chunks(MARK_CHUNK) {
        let update = || {
            diesel::update(
                clocks::table
                    .filter(clocks::id.eq_any(chunk))
                    .filter(clocks::state.eq(ClockState::Running.as_str()))
                    .filter(clocks::breached_at.is_null())
                    .filter(clocks::stopped_at.is_null())
                    .filter(clocks::due_at.le(at)),
            )
            .set((
                clocks::state.eq(ClockState::Breached.as_str()),
                clocks::breached_at.eq(at),
                // A breach implies the warning: kept if marked, else marked now.
                clocks::warned_at.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
                >("COALESCE(warned_at, ")
                .bind::<diesel::sql_types::Timestamp, _>(at)
                .sql(")")),
                clocks::check_at.eq(None::<NaiveDateTime>),
            ))
            .returning(clocks::id)
        };
        marked.extend(match conn {
            DbConnection::Pg(c) => update().get_results::<String>(c)?,
            DbConnection::Sqlite(c) => update().get_results::<String>(c)?,
        });
    }
    Ok(marked)
}

/// Marks the running, unwarned clocks among `ids` whose warning time has come (and due time
/// not) warned at `at`; their next look is the due time. Answers the ids it marked.
fn mark_warned(
    conn: &mut DbConnection,
    ids: &[&str],
    at: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    let mut marked = Vec::new();
    for chunk in ids.chunks(MARK_CHUNK) {
        let update = || {
            diesel::update(
                clocks::table
                    .filter(clocks::id.eq_any(chunk))
                    .filter(clocks::state.eq(ClockState::Running.as_str()))
                    .filter(clocks::warned_at.is_null())
                    .filter(clocks::stopped_at.is_null())
                    .filter(clocks::warn_at.le(at))
                    .filter(clocks::due_at.gt(at)),
            )
            .set((
                clocks::warned_at.eq(at),
                clocks::check_at.eq(clocks::due_at),
            ))
            .returning(clocks::id)
        };
        marked.extend(match conn {
            DbConnection::Pg(c) => update().get_results::<String>(c)?,
            DbConnection::Sqlite(c) => update().get_results::<String>(c)?,
        });
    }
    Ok(marked)
}

/// Clocks per marking statement: bound parameters stay far under both databases' limits.
const MARK_CHUNK: usize = 1000;

/// A mail to the supervisor of the clock's unit for each warning and breach.
fn supervisor_notices(
    conn: &mut DbConnection,
    catalog: &Catalog,
    rules: Rules<'_>,
    marked: &[(ClockRow, Change)],
) -> QueryResult<Vec<Notice>> {
    let ids: Vec<&str> = marked
        .iter()
        .map(|(row, _)| row.request_id.as_str())
        .collect();
    let mut named: Vec<(String, String, String)> = Vec::new();
    for chunk in ids.chunks(1000) {
        named.extend(
            requests::table
                .filter(requests::id.eq_any(chunk))
                .select((requests::id, requests::number, requests::code))
                .load::<(String, String, String)>(conn)?,
        );
    }
    let mut notices = Vec::new();
    for (row, change) in marked {
        let Ok(unit) = row.unit.parse::<UnitCode>() else {
            continue;
        };
        let Some((_, number, code)) = named.iter().find(|(id, _, _)| *id == row.request_id) else {
            continue;
        };
        let due_at = row.due_at.map(|due| local(due, rules)).unwrap_or_default();
        let (clock, unit_name) = (row.kind.clone(), row.unit.clone());
        let message = match change {
            Change::Warned if row.kind == ClockKind::Material.as_str() => continue,
            Change::Warned => Message::ClockWarning {
                clock,
                unit: unit_name,
                due_at,
            },
            Change::Breached => Message::ClockBreached {
                clock,
                unit: unit_name,
                due_at,
            },
            _ => continue,
        };
        notices.push(Notice {
            request_id: Some(row.request_id.clone()),
            recipient: catalog.unit(unit).supervisor_email.clone(),
            message,
            about: About::of(catalog, number, code),
        });
    }
    Ok(notices)
}

/// A reminder to the enterprise for each warning of a deferred material's clock: which
/// material, due when.
fn material_reminders(
    conn: &mut DbConnection,
    catalog: &Catalog,
    rules: Rules<'_>,
    marked: &[(ClockRow, Change)],
) -> QueryResult<Vec<Notice>> {
    let mut notices = Vec::new();
    for (row, change) in marked {
        let (Change::Warned, Some(material)) = (change, &row.material_id) else {
            continue;
        };
        if row.kind != ClockKind::Material.as_str() {
            continue;
        }
        let (number, code, contact): (String, String, String) = requests::table
            .find(&row.request_id)
            .select((requests::number, requests::code, requests::contact_email))
            .first(conn)?;
        let (material_code, name): (String, String) = materials::table
            .find(material)
            .select((materials::code, materials::name))
            .first(conn)?;
        let due_at = row.due_at.map(|due| local(due, rules)).unwrap_or_default();
        notices.push(Notice {
            request_id: Some(row.request_id.clone()),
            recipient: contact,
            message: Message::MaterialDue {
                code: material_code,
                name,
                due_at,
            },
            about: About::of(catalog, &number, &code),
        });
    }
    Ok(notices)
}

/// What a deemed acceptance did.
struct Deemed {
    /// Its audit events.
    events: Vec<Entry>,
    /// The enterprise's mail.
    notice: Option<Notice>,
    /// Clocks it found already breached (the statutory limit counted from receipt).
    breached: Vec<(ClockRow, Change)>,
}

/// Art. 32: the applicant was not told within five working days what was missing, so the
/// request counts as accepted from receipt. A request still waiting at the window (submitted
/// or called) becomes `accepted` — it can no longer be refused — with its tasks, the window
/// clock stops, the co-units' opinion clocks start, and the statutory clocks start from
/// receipt; the enterprise is told. A request elsewhere (returned, withdrawn) only records it.
fn deem_accepted(
    conn: &mut DbConnection,
    catalog: &Catalog,
    request_id: &str,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Deemed, ApiError> {
    let mut deemed = Deemed {
        events: Vec::new(),
        notice: None,
        breached: Vec::new(),
    };
    let (received, status, number, code, email): (NaiveDateTime, String, String, String, String) =
        requests::table
            .find(request_id)
            .select((
                requests::created_at,
                requests::status,
                requests::number,
                requests::code,
                requests::contact_email,
            ))
            .first(conn)?;
    let marked = diesel::update(
        requests::table
            .find(request_id)
            .filter(requests::deemed_accepted_at.is_null()),
    )
    .set(requests::deemed_accepted_at.eq(received))
    .execute(conn)?;
    if marked == 0 {
        return Ok(deemed);
    }
    let waiting = [Status::Submitted.as_str(), Status::Called.as_str()];
    let mut accepted = false;
    if waiting.contains(&status.as_str()) {
        // Guarded by the state as read: a step that moved it meanwhile keeps its own.
        accepted = diesel::update(
            requests::table
                .find(request_id)
                .filter(requests::status.eq(&status)),
        )
        .set((
            requests::status.eq(Status::Accepted.as_str()),
            requests::revision.eq(requests::revision + 1),
            requests::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?
            == 1;
    }
    if accepted {
        diesel::update(
            tasks::table
                .filter(tasks::request_id.eq(request_id))
                .filter(tasks::status.eq_any(waiting)),
        )
        .set(tasks::status.eq(Status::Accepted.as_str()))
        .execute(conn)?;
        deemed.notice = Some(Notice {
            request_id: Some(request_id.to_string()),
            recipient: email,
            message: Message::DeemedAccepted {
                from: local(received, rules),
            },
            about: About::of(catalog, &number, &code),
        });
    }
    let after = if accepted {
        Status::Accepted.as_str().to_string()
    } else {
        status.clone()
    };
    deemed.events.push(Entry {
        request_id: request_id.to_string(),
        actor: ENGINE.into(),
        role: "system".into(),
        unit: None,
        action: "request.deemed_accepted".into(),
        state_before: Some(status),
        state_after: Some(after),
        payload: json!({
            "law": "Administrative Licensing Law, Art. 32: no supplement notice within five working days; accepted from receipt",
            "accepted_from": utc(received),
            "deemed": true,
        }),
        at: now,
    });
    let rows: Vec<ClockRow> = clocks::table
        .filter(clocks::request_id.eq(request_id))
        .filter(clocks::stopped_at.is_null())
        .select(ClockRow::as_select())
        .load(conn)?;
    for row in rows {
        let kind: ClockKind = row.kind.parse().map_err(ApiError::internal)?;
        // The statutory limit counts from receipt; what acceptance starts or stops at the
        // window follows only when the request really moved to `accepted`.
        let (starts_at, stops) = match kind {
            ClockKind::Statutory => (Some(utc(received)), false),
            ClockKind::Opinion if accepted => (Some(now), false),
            ClockKind::WindowIntake if accepted => (None, true),
            _ => continue,
        };
        let changed = guarded(conn, row, |row| {
            with_clock(row, |clock| {
                let mut changes: Vec<Change> = Vec::new();
                if let Some(from) = starts_at {
                    changes.extend(clock.start(rules, from).map_err(ApiError::internal)?);
                }
                if stops {
                    changes.extend(clock.stop(rules, now).map_err(ApiError::internal)?);
                }
                changes.extend(clock.detect(now));
                Ok(changes)
            })
        })?;
        if let Some((row, before, changes)) = changed {
            for change in &changes {
                deemed
                    .events
                    .push(event(&row, before, change, ENGINE, None, now));
                if *change == Change::Breached {
                    deemed.breached.push((row.clone(), change.clone()));
                }
            }
        }
    }
    Ok(deemed)
}

/// When the next clock needs looking at, if any.
pub fn next_check(conn: &mut DbConnection) -> QueryResult<Option<NaiveDateTime>> {
    clocks::table
        .filter(clocks::check_at.is_not_null())
        .select(diesel::dsl::min(clocks::check_at))
        .first(conn)
}
