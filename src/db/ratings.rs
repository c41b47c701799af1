//! Ratings and rectification cases in the database. Each change is one write transaction with
//! its clocks, audit events and mails.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::clocks::{self as clock_rows};
use super::notifications::{self, Notice};
use super::requests::ClockRow;
use super::schema::{clocks, ratings, rectifications, requests};
use super::{DbConnection, audit, write_transaction};
use crate::domain::UnitCode;
use crate::domain::audit::Entry;
use crate::domain::clock::Rules;
use crate::domain::rating::{CaseStatus, CaseStep};
use crate::domain::request::ClockKind;
use crate::error::{ApiError, ErrorCode};

/// A stored rating.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ratings, treat_none_as_default_value = false)]
pub struct RatingRow {
    /// The request.
    pub request_id: String,
    /// The enterprise.
    pub uscc: String,
    /// 1 to 5.
    pub level: i32,
    /// Comment.
    pub comment: String,
    /// The unit rated.
    pub unit: String,
    /// Matter or bundle code.
    pub matter: String,
    /// When (UTC).
    pub created_at: NaiveDateTime,
}

/// A stored rectification case.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = rectifications, treat_none_as_default_value = false)]
pub struct CaseRow {
    /// UUID v7.
    pub id: String,
    /// The request rated.
    pub request_id: String,
    /// The unit that must rectify.
    pub unit: String,
    /// The rating's level.
    pub level: i32,
    /// `open`, `contacted`, `closed`.
    pub status: String,
    /// When the enterprise was contacted (UTC).
    pub contacted_at: Option<NaiveDateTime>,
    /// What the contact found.
    pub contact_note: Option<String>,
    /// When closed (UTC).
    pub closed_at: Option<NaiveDateTime>,
    /// What was rectified.
    pub closing_note: Option<String>,
    /// Opened (UTC).
    pub created_at: NaiveDateTime,
    /// Revision.
    pub revision: i32,
    /// Why it was closed without a recorded contact.
    pub no_contact_reason: Option<String>,
}

/// A case with its request's number, the rating that opened it and its clocks.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case.
    pub case: CaseRow,
    /// The request's number.
    pub number: String,
    /// The bad rating that opened it (always there: a case is opened with its rating).
    pub rating: Option<RatingRow>,
    /// Its two clocks.
    pub clocks: Vec<ClockRow>,
}

/// Whose cases a listing holds; both parts optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct CaseScope {
    /// Only the cases of this unit.
    pub unit: Option<UnitCode>,
    /// Only the cases opened by this enterprise's ratings (its unified social credit code).
    pub uscc: Option<String>,
}

/// What a rating writes.
#[derive(Debug, Clone)]
pub struct NewRating {
    /// The rating.
    pub rating: RatingRow,
    /// The case and its clocks, for a bad rating.
    pub case: Option<(CaseRow, Vec<ClockRow>)>,
    /// Audit events (the rating, the case, the clocks' starts).
    pub events: Vec<Entry>,
    /// Mails (the unit's supervisor, for a bad rating).
    pub notices: Vec<Notice>,
}

/// Stores a rating and what it opens; `already_rated` (409) when the request has one.
pub fn rate(conn: &mut DbConnection, new: &NewRating) -> Result<(), ApiError> {
    write_transaction(conn, |conn| {
        match diesel::insert_into(ratings::table)
            .values(&new.rating)
            .execute(conn)
        {
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(already_rated());
            }
            other => other?,
        };
        super::rollups::count_rating(conn, &new.rating)?;
        if let Some((case, clock_list)) = &new.case {
            diesel::insert_into(rectifications::table)
                .values(case)
                .execute(conn)?;
            for clock in clock_list {
                diesel::insert_into(clocks::table)
                    .values(clock)
                    .execute(conn)?;
            }
        }
        audit::append_many(conn, new.events.clone())?;
        notifications::enqueue(conn, &new.notices, new.rating.created_at.and_utc())?;
        Ok(())
    })
}

fn already_rated() -> ApiError {
    ApiError::new(
        ErrorCode::AlreadyRated,
        "this request has been rated already: one rating per request",
    )
}

/// The rating of a request, if any.
pub fn rating_of(conn: &mut DbConnection, request_id: &str) -> QueryResult<Option<RatingRow>> {
    ratings::table
        .find(request_id)
        .select(RatingRow::as_select())
        .first(conn)
        .optional()
}

fn with_parts(conn: &mut DbConnection, rows: Vec<CaseRow>) -> QueryResult<Vec<Case>> {
    let ids: Vec<&str> = rows.iter().map(|c| c.request_id.as_str()).collect();
    let numbers: Vec<(String, String)> = requests::table
        .filter(requests::id.eq_any(&ids))
        .select((requests::id, requests::number))
        .load(conn)?;
    let rated: Vec<RatingRow> = ratings::table
        .filter(ratings::request_id.eq_any(&ids))
        .select(RatingRow::as_select())
        .load(conn)?;
    let all_clocks: Vec<ClockRow> = clocks::table
        .filter(clocks::request_id.eq_any(&ids))
        .filter(clocks::kind.eq_any([
            ClockKind::RectificationContact.as_str(),
            ClockKind::Rectification.as_str(),
        ]))
        .order(clocks::id)
        .select(ClockRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|case| Case {
            number: numbers
                .iter()
                .find(|(id, _)| *id == case.request_id)
                .map(|(_, n)| n.clone())
                .unwrap_or_default(),
            rating: rated
                .iter()
                .find(|r| r.request_id == case.request_id)
                .cloned(),
            clocks: all_clocks
                .iter()
                .filter(|c| c.request_id == case.request_id)
                .cloned()
                .collect(),
            case,
        })
        .collect())
}

/// Cases in `scope`, newest first, optionally in one status; with the total matching.
pub fn cases(
    conn: &mut DbConnection,
    scope: &CaseScope,
    status: Option<CaseStatus>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Case>, super::Total)> {
    let filtered = || {
        let mut query = rectifications::table.into_boxed();
        if let Some(unit) = scope.unit {
            query = query.filter(rectifications::unit.eq(unit.as_str()));
        }
        if let Some(uscc) = &scope.uscc {
            query = query.filter(
                rectifications::request_id.eq_any(
                    ratings::table
                        .filter(ratings::uscc.eq(uscc.clone()))
                        .select(ratings::request_id),
                ),
            );
        }
        if let Some(status) = status {
            query = query.filter(rectifications::status.eq(status.as_str()));
        }
        query
    };
    let total = super::count_up_to(
        conn,
        filtered().select(rectifications::id),
        super::TOTAL_CAP,
    )?;
    let rows: Vec<CaseRow> = filtered()
        .order((rectifications::created_at.desc(), rectifications::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(CaseRow::as_select())
        .load(conn)?;
    Ok((with_parts(conn, rows)?, total))
}

/// One case.
pub fn case(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Case>> {
    let row: Option<CaseRow> = rectifications::table
        .find(id)
        .select(CaseRow::as_select())
        .first(conn)
        .optional()?;
    Ok(with_parts(conn, row.into_iter().collect())?.pop())
}

/// A step on a case.
#[derive(Debug, Clone)]
pub struct Step {
    /// The case.
    pub id: String,
    /// The revision the actor saw.
    pub expected_revision: i32,
    /// Contact or close.
    pub step: CaseStep,
    /// The state after.
    pub status: CaseStatus,
    /// The note.
    pub note: String,
    /// Closing without a recorded contact: why.
    pub no_contact_reason: Option<String>,
    /// Who.
    pub actor: String,
    /// The audit event of the step.
    pub event: Entry,
    /// Mails (the enterprise, on closing).
    pub notices: Vec<Notice>,
}

/// Records a step on a case with its clocks; `None` when someone changed it first.
pub fn step(
    conn: &mut DbConnection,
    step: &Step,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Case>, ApiError> {
    write_transaction(conn, |conn| {
        let at = now.naive_utc();
        let target = rectifications::table
            .filter(rectifications::id.eq(&step.id))
            .filter(rectifications::revision.eq(step.expected_revision));
        let changed = match step.step {
            CaseStep::Contact => diesel::update(target)
                .set((
                    rectifications::status.eq(step.status.as_str()),
                    rectifications::contacted_at.eq(at),
                    rectifications::contact_note.eq(&step.note),
                    rectifications::revision.eq(step.expected_revision + 1),
                ))
                .execute(conn)?,
            CaseStep::Close => diesel::update(target)
                .set((
                    rectifications::status.eq(step.status.as_str()),
                    rectifications::closed_at.eq(at),
                    rectifications::closing_note.eq(&step.note),
                    rectifications::no_contact_reason.eq(&step.no_contact_reason),
                    rectifications::revision.eq(step.expected_revision + 1),
                ))
                .execute(conn)?,
        };
        if changed == 0 {
            return Ok(None);
        }
        let request_id = step.event.request_id.clone();
        let kinds: &[ClockKind] = match step.step {
            CaseStep::Contact => &[ClockKind::RectificationContact],
            CaseStep::Close => &[ClockKind::RectificationContact, ClockKind::Rectification],
        };
        let mut events = vec![step.event.clone()];
        events.extend(clock_rows::stop_kinds(
            conn,
            &request_id,
            kinds,
            rules,
            &step.actor,
            now,
        )?);
        audit::append_many(conn, events)?;
        notifications::enqueue(conn, &step.notices, now)?;
        Ok(case(conn, &step.id)?)
    })
}
