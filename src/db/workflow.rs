//! Moving requests through the lifecycle, and the clerks' queue.
//!
//! A step is one write transaction: a conditional update of the request on its revision (so of
//! two people acting at once, the second gets "changed first" instead of overwriting), the
//! tasks, a re-routing decision when there is one, and the audit event.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::requests::{self, RequestRecord, RoutingDecisionRow, Scope, TaskRow};
use super::schema::{clocks, requests as requests_table, routing_decisions, tasks};
use super::{DbConnection, audit, write_transaction};
use crate::domain::UnitCode;
use crate::domain::audit::Entry;
use crate::domain::request::{ClockState, Status, TaskRole};
use crate::error::ApiError;

/// One step to record.
#[derive(Debug, Clone)]
pub struct Step {
    /// The request.
    pub request_id: String,
    /// The revision the actor saw (`If-Match`).
    pub expected_revision: i32,
    /// State after.
    pub status: Status,
    /// Special procedure flag after.
    pub special_procedure: bool,
    /// Extension flag after.
    pub extended: bool,
    /// For a re-routing: the new lead unit and the decision to store.
    pub reroute: Option<(UnitCode, RoutingDecisionRow)>,
    /// The audit event (its `request_id` is this request).
    pub event: Entry,
    /// When.
    pub at: NaiveDateTime,
}

/// Why a step was not recorded.
#[derive(Debug)]
pub enum StepError {
    /// Someone changed the request since the actor read it.
    Stale {
        /// The current revision.
        revision: i32,
        /// The current state.
        status: String,
    },
    /// Anything else.
    Failed(ApiError),
}

impl From<diesel::result::Error> for StepError {
    fn from(error: diesel::result::Error) -> Self {
        StepError::Failed(error.into())
    }
}

/// Records `step`, or reports that the request changed first.
pub fn record(conn: &mut DbConnection, step: &Step) -> Result<RequestRecord, StepError> {
    write_transaction(conn, |conn| {
        let mut changes = diesel::update(
            requests_table::table
                .filter(requests_table::id.eq(&step.request_id))
                .filter(requests_table::revision.eq(step.expected_revision)),
        )
        .set((
            requests_table::status.eq(step.status.as_str()),
            requests_table::special_procedure.eq(step.special_procedure),
            requests_table::extended.eq(step.extended),
            requests_table::revision.eq(step.expected_revision + 1),
            requests_table::updated_at.eq(step.at),
        ))
        .execute(conn)?;
        if changes == 0 {
            let (revision, status): (i32, String) = requests_table::table
                .find(&step.request_id)
                .select((requests_table::revision, requests_table::status))
                .first(conn)?;
            return Err(StepError::Stale { revision, status });
        }
        // Every task follows the request (per-unit task steps for bundles come later).
        diesel::update(tasks::table.filter(tasks::request_id.eq(&step.request_id)))
            .set(tasks::status.eq(step.status.as_str()))
            .execute(conn)?;
        if let Some((unit, decision)) = &step.reroute {
            changes = diesel::update(requests_table::table.find(&step.request_id))
                .set(requests_table::lead_unit.eq(unit.as_str()))
                .execute(conn)?;
            debug_assert_eq!(changes, 1);
            // The lead task moves to the new unit and back into its queue.
            diesel::update(
                tasks::table
                    .filter(tasks::request_id.eq(&step.request_id))
                    .filter(
                        tasks::role
                            .eq_any([TaskRole::Lead.as_str(), TaskRole::Coordinator.as_str()]),
                    ),
            )
            .set((
                tasks::unit.eq(unit.as_str()),
                tasks::claimed_by.eq(None::<String>),
                tasks::claimed_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
            diesel::insert_into(routing_decisions::table)
                .values(decision)
                .execute(conn)?;
        }
        audit::append(conn, step.event.clone())?;
        requests::find(conn, &Scope::All, &step.request_id)?
            .ok_or_else(|| StepError::Failed(ApiError::not_found("the request disappeared")))
    })
}

/// States whose tasks are still in someone's queue.
pub const OPEN: [Status; 7] = [
    Status::Submitted,
    Status::Called,
    Status::Accepted,
    Status::SupplementRequired,
    Status::UnderReview,
    Status::Approved,
    Status::Denied,
];

/// A task in a queue, with its request's number and earliest running due time.
#[derive(Debug, Clone)]
pub struct QueueItem {
    /// The task.
    pub task: TaskRow,
    /// The request's number.
    pub number: String,
    /// Earliest due time of the request's running clocks.
    pub due_at: Option<NaiveDateTime>,
}

/// Open tasks of `unit`, earliest due first (no due time last, then oldest first).
pub fn queue(conn: &mut DbConnection, unit: UnitCode, limit: i64) -> QueryResult<Vec<QueueItem>> {
    let open: Vec<&str> = OPEN.iter().map(|s| s.as_str()).collect();
    let rows: Vec<(TaskRow, String)> = tasks::table
        .inner_join(requests_table::table)
        .filter(tasks::unit.eq(unit.as_str()))
        .filter(tasks::status.eq_any(&open))
        .order(tasks::created_at)
        .limit(limit)
        .select((TaskRow::as_select(), requests_table::number))
        .load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|(t, _)| t.request_id.as_str()).collect();
    let dues: Vec<(String, Option<NaiveDateTime>)> = clocks::table
        .filter(clocks::request_id.eq_any(&ids))
        .filter(clocks::state.eq(ClockState::Running.as_str()))
        .select((clocks::request_id, clocks::due_at))
        .load(conn)?;
    let mut items: Vec<QueueItem> = rows
        .into_iter()
        .map(|(task, number)| {
            let due_at = dues
                .iter()
                .filter(|(id, _)| *id == task.request_id)
                .filter_map(|(_, due)| *due)
                .min();
            QueueItem {
                task,
                number,
                due_at,
            }
        })
        .collect();
    items.sort_by(|a, b| match (a.due_at, b.due_at) {
        (Some(x), Some(y)) => x.cmp(&y).then(a.task.created_at.cmp(&b.task.created_at)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.task.created_at.cmp(&b.task.created_at),
    });
    Ok(items)
}

/// Claims the next waiting (submitted, unclaimed) task of `unit` for `clerk`. The claim is a
/// conditional update, so two clerks can never get the same task, on either backend.
pub fn claim_next(
    conn: &mut DbConnection,
    unit: UnitCode,
    clerk: &str,
    now: NaiveDateTime,
) -> Result<Option<(QueueItem, RequestRecord)>, ApiError> {
    write_transaction(conn, |conn| {
        let waiting: Vec<QueueItem> = queue(conn, unit, 500)?
            .into_iter()
            .filter(|item| {
                item.task.status == Status::Submitted.as_str() && item.task.claimed_by.is_none()
            })
            .collect();
        for mut item in waiting {
            let claimed = diesel::update(
                tasks::table
                    .filter(tasks::id.eq(&item.task.id))
                    .filter(tasks::claimed_by.is_null()),
            )
            .set((tasks::claimed_by.eq(clerk), tasks::claimed_at.eq(now)))
            .execute(conn)?;
            if claimed == 1 {
                item.task.claimed_by = Some(clerk.to_string());
                item.task.claimed_at = Some(now);
                let record = requests::find(conn, &Scope::All, &item.task.request_id)?
                    .ok_or_else(|| ApiError::not_found("the request disappeared"))?;
                return Ok(Some((item, record)));
            }
        }
        Ok(None)
    })
}
