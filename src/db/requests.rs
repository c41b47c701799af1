//! Requests and everything created with them: tasks, materials, clocks, routing decisions,
//! idempotency keys and the per-day number counter.
//!
//! Intake is one write transaction. With an `Idempotency-Key` the key is claimed first (its
//! primary key makes a concurrent second claim wait, then fail, on PostgreSQL; SQLite's
//! `BEGIN IMMEDIATE` serialises writers), so one key can never create two requests.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Bool, Text};

use super::schema::{
    catalog_versions, clocks, idempotency_keys, materials, request_counters, requests,
    routing_decisions, tasks,
};
use super::{DbConnection, TOTAL_CAP, Total, audit, count_up_to, write_transaction};
use crate::domain::audit::Entry;
use crate::domain::request::Status;
use crate::domain::{Catalog, UnitCode};
use crate::error::ApiError;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_RETENTION: TimeDelta = TimeDelta::hours(24);

type Backend = <DbConnection as Connection>::Backend;

/// A stored request.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = requests, treat_none_as_default_value = false)]
pub struct RequestRow {
    /// UUID v7.
    pub id: String,
    /// Human number.
    pub number: String,
    /// Enterprise.
    pub uscc: String,
    /// Enterprise name.
    pub applicant_name: String,
    /// `matter` or `bundle`.
    pub kind: String,
    /// Matter or bundle code.
    pub code: String,
    /// Channel.
    pub channel: String,
    /// Region, for cross-region intake.
    pub intake_region: Option<String>,
    /// Contact e-mail.
    pub contact_email: String,
    /// Form JSON text.
    pub form: String,
    /// Commitment chosen.
    pub commitment: bool,
    /// Status.
    pub status: String,
    /// Lead unit.
    pub lead_unit: String,
    /// Catalog version.
    pub catalog_version: String,
    /// Revision for ETags.
    pub revision: i32,
    /// Created (UTC).
    pub created_at: NaiveDateTime,
    /// Updated (UTC).
    pub updated_at: NaiveDateTime,
    /// Special procedure under way.
    pub special_procedure: bool,
    /// Extension granted.
    pub extended: bool,
    /// Deemed accepted from receipt (Art. 32), UTC.
    pub deemed_accepted_at: Option<NaiveDateTime>,
    /// `approval` / `denial`, once delivered.
    pub result_kind: Option<String>,
    /// Certificate or decision number delivered.
    pub certificate: Option<String>,
    /// When delivered (UTC).
    pub delivered_at: Option<NaiveDateTime>,
}

/// A stored task.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tasks, treat_none_as_default_value = false)]
pub struct TaskRow {
    /// UUID v7.
    pub id: String,
    /// Request.
    pub request_id: String,
    /// Unit.
    pub unit: String,
    /// Matter.
    pub matter_code: String,
    /// Category.
    pub category: String,
    /// Role.
    pub role: String,
    /// Status.
    pub status: String,
    /// Created (UTC).
    pub created_at: NaiveDateTime,
    /// Clerk who claimed it.
    pub claimed_by: Option<String>,
    /// When it was claimed (UTC).
    pub claimed_at: Option<NaiveDateTime>,
    /// A special procedure is under way on this task.
    pub special_procedure: bool,
    /// An opinion task's opinion.
    pub opinion: Option<String>,
    /// The opinion's note.
    pub opinion_note: Option<String>,
    /// Who gave the opinion.
    pub opinion_by: Option<String>,
    /// When the opinion was given (UTC).
    pub opinion_at: Option<NaiveDateTime>,
}

/// A stored material.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = materials, treat_none_as_default_value = false)]
pub struct MaterialRow {
    /// UUID v7.
    pub id: String,
    /// Request.
    pub request_id: String,
    /// Matter.
    pub matter_code: String,
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// SHA-256.
    pub sha256: Option<String>,
    /// Size.
    pub size_bytes: Option<i64>,
    /// `provided` / `pending`.
    pub status: String,
    /// Due, when pending (UTC).
    pub due_at: Option<NaiveDateTime>,
    /// When a deferred material was supplied (UTC).
    pub supplied_at: Option<NaiveDateTime>,
    /// Who supplied or recorded it.
    pub supplied_by: Option<String>,
    /// Received at the window by a clerk.
    pub received_at_window: bool,
}

/// A stored clock.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clocks, treat_none_as_default_value = false)]
pub struct ClockRow {
    /// UUID v7.
    pub id: String,
    /// Request.
    pub request_id: String,
    /// Task, for per-task clocks.
    pub task_id: Option<String>,
    /// Kind.
    pub kind: String,
    /// Target text.
    pub target: String,
    /// State.
    pub state: String,
    /// Start (UTC).
    pub started_at: Option<NaiveDateTime>,
    /// Due (UTC).
    pub due_at: Option<NaiveDateTime>,
    /// Unit it counts against.
    pub unit: String,
    /// Matter or bundle it counts for.
    pub matter: String,
    /// Warning instant (UTC).
    pub warn_at: Option<NaiveDateTime>,
    /// When the warning was marked (UTC).
    pub warned_at: Option<NaiveDateTime>,
    /// Next detection instant (UTC).
    pub check_at: Option<NaiveDateTime>,
    /// When marked breached (UTC).
    pub breached_at: Option<NaiveDateTime>,
    /// When stopped (UTC).
    pub stopped_at: Option<NaiveDateTime>,
    /// Start of the open pause (UTC).
    pub paused_at: Option<NaiveDateTime>,
    /// Total seconds paused.
    pub paused_seconds: i64,
    /// Pauses with reasons, JSON list.
    pub pauses: String,
    /// Counting restarted here (UTC).
    pub resumed_at: Option<NaiveDateTime>,
    /// Seconds left at the last pause.
    pub remaining_seconds: Option<i64>,
    /// Working days added by the extension.
    pub extended_days: i32,
    /// Handling time in working minutes when stopped.
    pub worked_minutes: Option<i64>,
    /// Unit charged with a return's lost time.
    pub lost_to_unit: Option<String>,
    /// Working minutes lost to a return.
    pub lost_minutes: i64,
    /// The deferred material a `material` clock watches.
    pub material_id: Option<String>,
}

/// A stored routing decision.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = routing_decisions, treat_none_as_default_value = false)]
pub struct RoutingDecisionRow {
    /// UUID v7.
    pub id: String,
    /// Request.
    pub request_id: String,
    /// Catalog version.
    pub catalog_version: String,
    /// `intake` / `reroute`.
    pub reason: String,
    /// Explanation JSON text.
    pub explanation: String,
    /// When (UTC).
    pub decided_at: NaiveDateTime,
}

/// A request with its parts.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// The request.
    pub request: RequestRow,
    /// Its tasks.
    pub tasks: Vec<TaskRow>,
    /// Its materials.
    pub materials: Vec<MaterialRow>,
    /// Its clocks.
    pub clocks: Vec<ClockRow>,
}

/// Everything intake writes (the number is assigned in the transaction).
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// The request (its `number` is overwritten).
    pub request: RequestRow,
    /// Tasks.
    pub tasks: Vec<TaskRow>,
    /// Materials.
    pub materials: Vec<MaterialRow>,
    /// Clocks.
    pub clocks: Vec<ClockRow>,
    /// The routing decision.
    pub routing: RoutingDecisionRow,
    /// Local date for the number, `YYYYMMDD`.
    pub number_day: String,
    /// Filed by an official for the enterprise (walk-in, or under a 帮办 grant): the act, and
    /// the official is the actor of the intake event.
    pub assisted: Option<super::authorizations::AssistedActRow>,
}

/// An idempotency key presented with an intake.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    /// Enterprise (keys are per enterprise).
    pub uscc: String,
    /// The key.
    pub key: String,
    /// SHA-256 of the canonical body.
    pub body_sha256: String,
}

/// What intake did.
#[derive(Debug)]
pub enum Intake {
    /// Created a request.
    Created(Box<RequestRecord>),
    /// The key was used before with the same body: the first response, to replay.
    Replay {
        /// Status of the first response.
        status: u16,
        /// Body of the first response.
        body: String,
    },
    /// The key was used before with another body.
    KeyReused,
}

/// Why one intake attempt stopped.
enum AttemptError {
    /// A concurrent claim of the same key won (PostgreSQL): look again once it committed.
    Retry,
    /// A real failure.
    Failed(ApiError),
}

impl From<DieselError> for AttemptError {
    fn from(error: DieselError) -> Self {
        AttemptError::Failed(error.into())
    }
}

impl From<ApiError> for AttemptError {
    fn from(error: ApiError) -> Self {
        AttemptError::Failed(error)
    }
}

/// Records the catalog version if this database has not seen it.
pub fn ensure_catalog_version(
    conn: &mut DbConnection,
    catalog: &Catalog,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let known: i64 = catalog_versions::table
        .filter(catalog_versions::version.eq(catalog.version()))
        .count()
        .get_result(conn)?;
    if known > 0 {
        return Ok(());
    }
    let inserted = diesel::insert_into(catalog_versions::table)
        .values((
            catalog_versions::version.eq(catalog.version()),
            catalog_versions::matters.eq(catalog.matters().count() as i32),
            catalog_versions::bundles.eq(catalog.bundles().count() as i32),
            catalog_versions::first_loaded_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        // Another instance recorded it at the same moment.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Creates a request (or replays an idempotent one). `render` makes the response body that a
/// replay will return.
pub fn create(
    conn: &mut DbConnection,
    new: &NewRequest,
    claim: Option<&IdempotencyClaim>,
    now: NaiveDateTime,
    render: &dyn Fn(&RequestRecord) -> String,
) -> Result<Intake, ApiError> {
    // A lost claim means the winner has committed, so one retry finds its row.
    for _ in 0..3 {
        match write_transaction(conn, |conn| attempt(conn, new, claim, now, render)) {
            Ok(intake) => return Ok(intake),
            Err(AttemptError::Retry) => continue,
            Err(AttemptError::Failed(error)) => return Err(error),
        }
    }
    Err(ApiError::internal("idempotency claim kept failing"))
}

fn attempt(
    conn: &mut DbConnection,
    new: &NewRequest,
    claim: Option<&IdempotencyClaim>,
    now: NaiveDateTime,
    render: &dyn Fn(&RequestRecord) -> String,
) -> Result<Intake, AttemptError> {
    if let Some(claim) = claim {
        let existing: Option<(String, i32, String, NaiveDateTime)> = idempotency_keys::table
            .find((&claim.uscc, &claim.key))
            .select((
                idempotency_keys::body_sha256,
                idempotency_keys::status_code,
                idempotency_keys::response_body,
                idempotency_keys::created_at,
            ))
            .first(conn)
            .optional()?;
        match existing {
            // Kept for IDEMPOTENCY_RETENTION; an older key (not swept yet) is forgotten here.
            Some((.., created_at)) if created_at < now - IDEMPOTENCY_RETENTION => {
                diesel::delete(idempotency_keys::table.find((&claim.uscc, &claim.key)))
                    .execute(conn)?;
            }
            Some((hash, status, body, _)) => {
                return Ok(if hash == claim.body_sha256 {
                    Intake::Replay {
                        status: status as u16,
                        body,
                    }
                } else {
                    Intake::KeyReused
                });
            }
            None => {}
        }
    }

    let mut request = new.request.clone();
    request.number = next_number(conn, &new.number_day)?;
    diesel::insert_into(requests::table)
        .values(&request)
        .execute(conn)?;
    // MultiConnection has no multi-row INSERT (SQLite's batch insert is its own dialect), so
    // rows go one statement each; all in this transaction.
    for task in &new.tasks {
        diesel::insert_into(tasks::table)
            .values(task)
            .execute(conn)?;
    }
    for material in &new.materials {
        diesel::insert_into(materials::table)
            .values(material)
            .execute(conn)?;
    }
    for clock in &new.clocks {
        diesel::insert_into(clocks::table)
            .values(clock)
            .execute(conn)?;
    }
    diesel::insert_into(routing_decisions::table)
        .values(&new.routing)
        .execute(conn)?;
    // The intake is the first event of the request's trail; the enterprise is the actor, or
    // the official who filed for it (帮办), with the enterprise named beside them.
    let mut payload = serde_json::json!({
        "number": request.number,
        "kind": request.kind,
        "code": request.code,
        "channel": request.channel,
        "lead_unit": request.lead_unit,
        "catalog_version": request.catalog_version,
        "tasks": new.tasks.iter().map(|t| &t.unit).collect::<Vec<_>>(),
    });
    let (actor, role, unit) = match &new.assisted {
        Some(act) => {
            payload["on_behalf_of"] = serde_json::json!(request.uscc);
            payload["authorization"] = serde_json::json!(act.authorization_id);
            payload["leader"] = serde_json::json!(act.leader);
            if let Some(method) = &act.identity_method {
                payload["identity_check"] = serde_json::json!({
                    "method": method,
                    "verified_name": act.verified_name,
                });
            }
            let mut act = act.clone();
            act.request_id = request.id.clone();
            super::authorizations::record_act(conn, &act)?;
            (act.official, act.role, act.unit)
        }
        None => (request.uscc.clone(), "enterprise".to_string(), None),
    };
    audit::append(
        conn,
        Entry {
            request_id: request.id.clone(),
            actor,
            role,
            unit,
            action: "intake".into(),
            state_before: None,
            state_after: Some(request.status.clone()),
            payload,
            at: request.created_at.and_utc(),
        },
    )?;
    let record = RequestRecord {
        request,
        tasks: new.tasks.clone(),
        materials: new.materials.clone(),
        clocks: new.clocks.clone(),
    };
    // The key is stored last, with its answer: one statement. Two intakes with the same new
    // key both get here (on PostgreSQL; SQLite's writer is exclusive); the second waits on the
    // key's unique index until the first commits, fails, and its whole transaction (its
    // request and its number included) is rolled back; the retry then replays the first.
    if let Some(claim) = claim {
        let stored = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::uscc.eq(&claim.uscc),
                idempotency_keys::idempotency_key.eq(&claim.key),
                idempotency_keys::body_sha256.eq(&claim.body_sha256),
                idempotency_keys::request_id.eq(&record.request.id),
                idempotency_keys::status_code.eq(201),
                idempotency_keys::response_body.eq(render(&record)),
                idempotency_keys::created_at.eq(now),
            ))
            .execute(conn);
        match stored {
            Ok(_) => {}
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(AttemptError::Retry);
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(Intake::Created(Box::new(record)))
}

/// Deletes the idempotency keys older than [`IDEMPOTENCY_RETENTION`] at `now`, outside any
/// intake (the background sweep); how many.
pub fn sweep_idempotency_keys(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    let cutoff = now - IDEMPOTENCY_RETENTION;
    // A write transaction, so that on SQLite the sweep queues with intake behind the
    // process's writer lock instead of racing it on SQLite's busy timeout.
    write_transaction(conn, |conn| {
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(cutoff)))
            .execute(conn)
    })
}

/// The next number of `day` (`YYYYMMDD`): `PT<day>-<6 digits>`.
fn next_number(conn: &mut DbConnection, day: &str) -> Result<String, ApiError> {
    loop {
        let updated = diesel::update(request_counters::table.find(day))
            .set(request_counters::last_number.eq(request_counters::last_number + 1))
            .execute(conn)?;
        if updated == 0 {
            let inserted = conn.transaction(|conn| {
                diesel::insert_into(request_counters::table)
                    .values((
                        request_counters::day.eq(day),
                        request_counters::last_number.eq(1),
                    ))
                    .execute(conn)
            });
            match inserted {
                Ok(_) => {}
                // Another writer created today's counter first: increment it instead.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        let last: i32 = request_counters::table
            .find(day)
            .select(request_counters::last_number)
            .first(conn)?;
        return Ok(format!("PT{day}-{last:06}"));
    }
}

/// Loads the parts of the given requests, in the order given.
pub(crate) fn with_parts(
    conn: &mut DbConnection,
    rows: Vec<RequestRow>,
) -> QueryResult<Vec<RequestRecord>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let all_tasks: Vec<TaskRow> = tasks::table
        .filter(tasks::request_id.eq_any(&ids))
        .order((tasks::request_id, tasks::id))
        .select(TaskRow::as_select())
        .load(conn)?;
    let all_materials: Vec<MaterialRow> = materials::table
        .filter(materials::request_id.eq_any(&ids))
        .order((materials::request_id, materials::id))
        .select(MaterialRow::as_select())
        .load(conn)?;
    let all_clocks: Vec<ClockRow> = clocks::table
        .filter(clocks::request_id.eq_any(&ids))
        .order((clocks::request_id, clocks::id))
        .select(ClockRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|request| RequestRecord {
            tasks: all_tasks
                .iter()
                .filter(|t| t.request_id == request.id)
                .cloned()
                .collect(),
            materials: all_materials
                .iter()
                .filter(|m| m.request_id == request.id)
                .cloned()
                .collect(),
            clocks: all_clocks
                .iter()
                .filter(|c| c.request_id == request.id)
                .cloned()
                .collect(),
            request,
        })
        .collect())
}

/// Who may see which requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One enterprise's own.
    Enterprise(String),
    /// Those with a task for the unit (and, for the service centre, every returned one).
    Unit(UnitCode),
    /// All (district-wide supervisors, administrators).
    All,
}

/// List filters; all optional and combined with AND.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Status.
    pub status: Option<String>,
    /// Matter or bundle code (a bundle's matters match too).
    pub matter: Option<String>,
    /// Category of any task.
    pub category: Option<String>,
    /// Unit of any task.
    pub unit: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Created at or after (UTC).
    pub created_from: Option<NaiveDateTime>,
    /// Created before (UTC).
    pub created_to: Option<NaiveDateTime>,
    /// Exactly this request number.
    pub number: Option<String>,
    /// Ids starting with this (lower-case hex digits and `-`, checked by the caller).
    pub id_prefix: Option<String>,
}

/// Statuses a request ends in. Nearly every request of a long history is in one of them, so
/// they are common in any unit's share; the other statuses hold only the work under way.
const SETTLED: [Status; 4] = [
    Status::NotAccepted,
    Status::Completed,
    Status::Delivered,
    Status::Withdrawn,
];

/// `EXISTS (a task of unit for this request)`: probed per request through
/// `tasks_unit_request`. An `IN (SELECT request_id …)` instead makes SQLite build the list of
/// all the unit's tasks (a big unit has hundreds of thousands) before the first row.
fn has_task_of(unit: &str) -> HasTaskOf<'_> {
    diesel::dsl::exists(
        tasks::table
            .filter(tasks::unit.eq(unit))
            .filter(diesel::dsl::sql::<Bool>("tasks.request_id = requests.id")),
    )
}

/// The type of [`has_task_of`].
type HasTaskOf<'a> = diesel::dsl::exists<
    diesel::dsl::Filter<
        diesel::dsl::Filter<tasks::table, diesel::dsl::Eq<tasks::unit, &'a str>>,
        diesel::expression::SqlLiteral<Bool>,
    >,
>;

/// The request list as one unit's tasks give it (`unit`'s ids, newest first), when that is
/// the cheap way in: the unit is the list's only restriction besides, at most, a settled
/// status (see [`driven_by_unit_tasks`]).
struct UnitTasks<'a> {
    /// The unit whose tasks drive the list.
    unit: &'a str,
    /// The settled status the requests must be in, checked per request.
    status: Option<&'a str>,
}

/// Whether the list is read from one unit's tasks backwards by request id (`tasks_unit_request`,
/// stopping at the page or the cap) rather than from the requests: when a unit (the scope's, or
/// `unit=`) is the only restriction, or comes with a settled status only. With no other
/// restriction the unit's own task rows hold the answer; a settled status holds most requests,
/// so few tasks are passed over. An open status is rare: the requests in it
/// (`requests_status_id`) are fewer than the unit's tasks, and the list is read from them.
fn driven_by_unit_tasks<'a>(scope: &'a Scope, f: &'a Filters) -> Option<UnitTasks<'a>> {
    let unit = match (scope, &f.unit) {
        (Scope::Unit(unit), None) if *unit != UnitCode::ServiceCenter => unit.as_str(),
        (Scope::All, Some(unit)) => unit.as_str(),
        _ => return None,
    };
    let Filters {
        status,
        matter: None,
        category: None,
        unit: _,
        channel: None,
        created_from: None,
        created_to: None,
        number: None,
        id_prefix: None,
    } = f
    else {
        return None;
    };
    let settled = |s: &str| SETTLED.iter().any(|settled| settled.as_str() == s);
    match status {
        None => Some(UnitTasks { unit, status: None }),
        Some(status) if settled(status) => Some(UnitTasks {
            unit,
            status: Some(status),
        }),
        Some(_) => None,
    }
}

impl<'a> UnitTasks<'a> {
    /// The ids of the requests listed, newest first, after the cursor (one per request: a unit
    /// may have several tasks in one).
    fn request_ids(&self, after: Option<&'a str>) -> tasks::BoxedQuery<'a, Backend, Text> {
        let mut ids = tasks::table
            .filter(tasks::unit.eq(self.unit))
            .select(tasks::request_id)
            .distinct()
            .order(tasks::request_id.desc())
            .into_boxed();
        if let Some(status) = self.status {
            ids = ids.filter(diesel::dsl::exists(
                requests::table
                    .filter(requests::status.eq(status))
                    .filter(diesel::dsl::sql::<Bool>("requests.id = tasks.request_id")),
            ));
        }
        if let Some(after) = after {
            ids = ids.filter(tasks::request_id.lt(after));
        }
        ids
    }
}

fn filtered<'a>(scope: &'a Scope, f: &'a Filters) -> requests::BoxedQuery<'a, Backend> {
    let mut query = requests::table.into_boxed();
    match scope {
        Scope::Enterprise(uscc) => query = query.filter(requests::uscc.eq(uscc)),
        Scope::Unit(UnitCode::ServiceCenter) => {
            // The service centre also sees every returned request: it arbitrates them.
            query = query.filter(
                has_task_of(UnitCode::ServiceCenter.as_str())
                    .or(requests::status.eq(Status::Returned.as_str())),
            )
        }
        Scope::Unit(unit) => query = query.filter(has_task_of(unit.as_str())),
        Scope::All => {}
    }
    if let Some(status) = &f.status {
        query = query.filter(requests::status.eq(status));
    }
    if let Some(code) = &f.matter {
        query = query.filter(
            requests::code.eq(code).or(requests::id.eq_any(
                tasks::table
                    .filter(tasks::matter_code.eq(code))
                    .select(tasks::request_id),
            )),
        );
    }
    if let Some(category) = &f.category {
        query = query.filter(
            requests::id.eq_any(
                tasks::table
                    .filter(tasks::category.eq(category))
                    .select(tasks::request_id),
            ),
        );
    }
    if let Some(unit) = &f.unit {
        query = query.filter(has_task_of(unit));
    }
    if let Some(channel) = &f.channel {
        query = query.filter(requests::channel.eq(channel));
    }
    if let Some(from) = f.created_from {
        query = query.filter(requests::created_at.ge(from));
    }
    if let Some(to) = f.created_to {
        query = query.filter(requests::created_at.lt(to));
    }
    if let Some(number) = &f.number {
        query = query.filter(requests::number.eq(number));
    }
    if let Some(prefix) = &f.id_prefix {
        query = query.filter(requests::id.like(format!("{prefix}%")));
    }
    query
}

/// One page of requests, newest first, after the cursor (an id: keyset paging, no offset),
/// with the total matching, counted up to [`TOTAL_CAP`]. Read from one unit's tasks when that
/// is the cheap way in ([`driven_by_unit_tasks`]), else from the requests; both give the same
/// rows.
pub fn list(
    conn: &mut DbConnection,
    scope: &Scope,
    filters: &Filters,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<(Vec<RequestRecord>, Total)> {
    let (total, rows) = match driven_by_unit_tasks(scope, filters) {
        Some(unit_tasks) => {
            // In the page's order, so the count reads the same index range the pages do.
            let total = count_up_to(conn, unit_tasks.request_ids(None), TOTAL_CAP)?;
            let ids: Vec<String> = unit_tasks.request_ids(after).limit(limit).load(conn)?;
            let rows: Vec<RequestRow> = requests::table
                .filter(requests::id.eq_any(&ids))
                .order(requests::id.desc())
                .select(RequestRow::as_select())
                .load(conn)?;
            (total, rows)
        }
        None => {
            let total = count_up_to(
                conn,
                filtered(scope, filters)
                    .select(requests::id)
                    .order(requests::id.desc()),
                TOTAL_CAP,
            )?;
            let mut page = filtered(scope, filters);
            if let Some(after) = after {
                page = page.filter(requests::id.lt(after));
            }
            let rows: Vec<RequestRow> = page
                .order(requests::id.desc())
                .limit(limit)
                .select(RequestRow::as_select())
                .load(conn)?;
            (total, rows)
        }
    };
    Ok((with_parts(conn, rows)?, total))
}

/// One request, if `scope` may see it.
pub fn find(
    conn: &mut DbConnection,
    scope: &Scope,
    id: &str,
) -> QueryResult<Option<RequestRecord>> {
    let row: Option<RequestRow> = filtered(scope, &Filters::default())
        .filter(requests::id.eq(id))
        .select(RequestRow::as_select())
        .first(conn)
        .optional()?;
    Ok(match row {
        Some(row) => with_parts(conn, vec![row])?.pop(),
        None => None,
    })
}

/// The routing decisions of a request, oldest first.
pub fn routing_decisions(
    conn: &mut DbConnection,
    request_id: &str,
) -> QueryResult<Vec<RoutingDecisionRow>> {
    routing_decisions::table
        .filter(routing_decisions::request_id.eq(request_id))
        .order(routing_decisions::id)
        .select(RoutingDecisionRow::as_select())
        .load(conn)
}
