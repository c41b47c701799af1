//! 帮办 grants (`authorizations`) and the acts officials take for enterprises
//! (`assisted_acts`). The rule that reads them is `domain::assistance`.
//!
//! A grant is never deleted: revoking it stamps `revoked_at`, so every act taken under it
//! keeps naming a grant that can be read. Grants and revocations are audited in the same
//! transaction; their events carry the grant's id where a request's events carry the
//! request's (the chain is one for everything).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::{assisted_acts, authorizations, requests};
use super::{DbConnection, audit, write_transaction};
use crate::domain::UnitCode;
use crate::domain::assistance::{Assistant, Coverage, Grant};
use crate::domain::audit::Entry;
use crate::error::ApiError;

type Backend = <DbConnection as Connection>::Backend;

/// A stored grant.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorizations, treat_none_as_default_value = false)]
pub struct AuthorizationRow {
    /// UUID v7.
    pub id: String,
    /// The granting enterprise.
    pub uscc: String,
    /// The named official's token subject.
    pub official: Option<String>,
    /// The unit whose desk is named.
    pub desk_unit: Option<String>,
    /// The one request covered.
    pub request_id: Option<String>,
    /// Period start (UTC).
    pub valid_from: Option<NaiveDateTime>,
    /// Period end (UTC, exclusive).
    pub valid_until: Option<NaiveDateTime>,
    /// 领导干部帮办.
    pub leader: bool,
    /// Who granted it (the enterprise token's subject).
    pub granted_by: String,
    /// When (UTC).
    pub created_at: NaiveDateTime,
    /// When revoked (UTC).
    pub revoked_at: Option<NaiveDateTime>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

impl AuthorizationRow {
    /// The grant as the rule sees it (`None` for a row the schema's checks would refuse).
    pub fn as_grant(&self) -> Option<Grant<'_>> {
        let assistant = match (&self.official, &self.desk_unit) {
            (Some(subject), None) => Assistant::Official(subject.clone()),
            (None, Some(unit)) => Assistant::Desk(unit.parse().ok()?),
            _ => return None,
        };
        let coverage = match (&self.request_id, self.valid_from, self.valid_until) {
            (Some(id), None, None) => Coverage::Request(id),
            (None, Some(from), Some(until)) => Coverage::Period {
                from: from.and_utc(),
                until: until.and_utc(),
            },
            _ => return None,
        };
        Some(Grant {
            id: &self.id,
            enterprise: &self.uscc,
            assistant,
            coverage,
            leader: self.leader,
            revoked_at: self.revoked_at.map(|t| t.and_utc()),
        })
    }
}

/// A stored act of an official for an enterprise.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = assisted_acts, treat_none_as_default_value = false)]
pub struct AssistedActRow {
    /// UUID v7.
    pub id: String,
    /// The request.
    pub request_id: String,
    /// The enterprise.
    pub uscc: String,
    /// `intake`, `supplement` or `withdraw`.
    pub action: String,
    /// The official's token subject.
    pub official: String,
    /// `clerk` or `supervisor`.
    pub role: String,
    /// The official's unit.
    pub unit: Option<String>,
    /// The grant.
    pub authorization_id: Option<String>,
    /// Under a leader grant.
    pub leader: bool,
    /// A walk-in's identity method.
    pub identity_method: Option<String>,
    /// A walk-in's verified name.
    pub verified_name: Option<String>,
    /// When (UTC).
    pub at: NaiveDateTime,
}

/// Records an act; called inside the step's own write transaction.
pub fn record_act(conn: &mut DbConnection, act: &AssistedActRow) -> QueryResult<()> {
    diesel::insert_into(assisted_acts::table)
        .values(act)
        .execute(conn)
        .map(|_| ())
}

/// What a grant attempt came to.
#[derive(Debug)]
pub enum Granted {
    /// Stored and audited.
    Stored(Box<AuthorizationRow>),
    /// The request named is not the enterprise's (or does not exist).
    NoSuchRequest,
}

/// Stores a grant with its audit event. A request-scoped grant must name one of the
/// enterprise's own requests.
pub fn grant(
    conn: &mut DbConnection,
    row: &AuthorizationRow,
    event: Entry,
) -> Result<Granted, ApiError> {
    write_transaction(conn, |conn| {
        if let Some(request) = &row.request_id {
            let owned: i64 = requests::table
                .filter(requests::id.eq(request))
                .filter(requests::uscc.eq(&row.uscc))
                .count()
                .get_result(conn)?;
            if owned == 0 {
                return Ok(Granted::NoSuchRequest);
            }
        }
        diesel::insert_into(authorizations::table)
            .values(row)
            .execute(conn)?;
        audit::append(conn, event)?;
        Ok(Granted::Stored(Box::new(row.clone())))
    })
}

/// What a revocation came to.
#[derive(Debug)]
pub enum Revoked {
    /// Revoked now.
    Done(Box<AuthorizationRow>),
    /// It was revoked before.
    Already(Box<AuthorizationRow>),
    /// No grant of this enterprise has the id.
    Missing,
}

/// Revokes grant `id` of enterprise `uscc` (once), with its audit event made by `event` from
/// the grant as it was.
pub fn revoke(
    conn: &mut DbConnection,
    id: &str,
    uscc: &str,
    by: &str,
    now: NaiveDateTime,
    event: &dyn Fn(&AuthorizationRow) -> Entry,
) -> Result<Revoked, ApiError> {
    write_transaction(conn, |conn| {
        let Some(row) = find_of(conn, id, uscc)? else {
            return Ok(Revoked::Missing);
        };
        if row.revoked_at.is_some() {
            return Ok(Revoked::Already(Box::new(row)));
        }
        // Conditional on still being live, so two revocations at once stamp it once.
        let updated = diesel::update(
            authorizations::table
                .filter(authorizations::id.eq(id))
                .filter(authorizations::revoked_at.is_null()),
        )
        .set((
            authorizations::revoked_at.eq(now),
            authorizations::revoked_by.eq(by),
        ))
        .execute(conn)?;
        let after = find_of(conn, id, uscc)?.ok_or_else(|| ApiError::internal("grant vanished"))?;
        if updated == 0 {
            return Ok(Revoked::Already(Box::new(after)));
        }
        audit::append(conn, event(&row))?;
        Ok(Revoked::Done(Box::new(after)))
    })
}

fn find_of(conn: &mut DbConnection, id: &str, uscc: &str) -> QueryResult<Option<AuthorizationRow>> {
    authorizations::table
        .filter(authorizations::id.eq(id))
        .filter(authorizations::uscc.eq(uscc))
        .select(AuthorizationRow::as_select())
        .first(conn)
        .optional()
}

/// Who may see which grants.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// The granting enterprise: all of its own.
    Enterprise(String),
    /// An official: those naming them, or (a clerk) their unit's desk.
    Official {
        /// Token subject.
        subject: String,
        /// A clerk's unit.
        clerk_of: Option<UnitCode>,
    },
}

fn visible_to(viewer: &Viewer) -> authorizations::BoxedQuery<'static, Backend> {
    let query = authorizations::table.into_boxed();
    match viewer {
        Viewer::Enterprise(uscc) => query.filter(authorizations::uscc.eq(uscc.clone())),
        Viewer::Official {
            subject,
            clerk_of: Some(unit),
        } => query.filter(
            authorizations::official
                .eq(subject.clone())
                .or(authorizations::desk_unit.eq(unit.to_string())),
        ),
        Viewer::Official {
            subject,
            clerk_of: None,
        } => query.filter(authorizations::official.eq(subject.clone())),
    }
}

/// The grants `viewer` may see, newest first, at most `limit`.
pub fn list(
    conn: &mut DbConnection,
    viewer: &Viewer,
    limit: i64,
) -> QueryResult<Vec<AuthorizationRow>> {
    visible_to(viewer)
        .order(authorizations::id.desc())
        .limit(limit)
        .select(AuthorizationRow::as_select())
        .load(conn)
}

/// Grant `id`, if `viewer` may see it.
pub fn find(
    conn: &mut DbConnection,
    viewer: &Viewer,
    id: &str,
) -> QueryResult<Option<AuthorizationRow>> {
    visible_to(viewer)
        .filter(authorizations::id.eq(id.to_string()))
        .select(AuthorizationRow::as_select())
        .first(conn)
        .optional()
}

/// The grants of enterprise `uscc` that name the official (by subject, or a clerk's desk).
pub fn naming(
    conn: &mut DbConnection,
    uscc: &str,
    subject: &str,
    clerk_of: Option<UnitCode>,
) -> QueryResult<Vec<AuthorizationRow>> {
    visible_to(&Viewer::Official {
        subject: subject.into(),
        clerk_of,
    })
    .filter(authorizations::uscc.eq(uscc.to_string()))
    .order(authorizations::id)
    .select(AuthorizationRow::as_select())
    .load(conn)
}

/// The acts taken under grant `id`, oldest first.
pub fn acts_under(conn: &mut DbConnection, id: &str) -> QueryResult<Vec<AssistedActRow>> {
    assisted_acts::table
        .filter(assisted_acts::authorization_id.eq(id))
        .order(assisted_acts::id)
        .select(AssistedActRow::as_select())
        .load(conn)
}

/// A group as stored: unit, action, leader grant, identity method, how many.
type Grouped = (Option<String>, String, bool, Option<String>, i64);

/// One group of acts: unit, action, leader grant, walk-in, how many.
pub type ActCount = (Option<String>, String, bool, bool, i64);

/// Acts counted per acting unit, action, leader flag and walk-in (no grant), optionally for
/// one unit and a time window `[from, to)`.
pub fn count_acts(
    conn: &mut DbConnection,
    unit: Option<UnitCode>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> QueryResult<Vec<ActCount>> {
    let mut query = assisted_acts::table
        .group_by((
            assisted_acts::unit,
            assisted_acts::action,
            assisted_acts::leader,
            assisted_acts::identity_method,
        ))
        .select((
            assisted_acts::unit,
            assisted_acts::action,
            assisted_acts::leader,
            assisted_acts::identity_method,
            diesel::dsl::count_star(),
        ))
        .into_boxed();
    if let Some(unit) = unit {
        query = query.filter(assisted_acts::unit.eq(unit.to_string()));
    }
    if let Some(from) = from {
        query = query.filter(assisted_acts::at.ge(from.naive_utc()));
    }
    if let Some(to) = to {
        query = query.filter(assisted_acts::at.lt(to.naive_utc()));
    }
    let rows: Vec<Grouped> = query.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(unit, action, leader, method, n)| (unit, action, leader, method.is_some(), n))
        .collect())
}
