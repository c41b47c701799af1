//! Moving requests through the lifecycle, and the clerks' queue.
//!
//! A step is one write transaction: a conditional update of the request on its revision (so of
//! two people acting at once, the second gets "changed first" instead of overwriting), the
//! tasks, a re-routing decision when there is one, and the audit event.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::clocks::{self, ClockStep, Which};
use super::notifications::{self, Notice};
use super::requests::{self, RequestRecord, RoutingDecisionRow, Scope, TaskRow};
use super::schema::{clocks as clocks_table, requests as requests_table, routing_decisions, tasks};
use super::{DbConnection, audit, write_transaction};
use crate::domain::UnitCode;
use crate::domain::audit::Entry;
use crate::domain::calendar::Calendar;
use crate::domain::clock::Rules;
use crate::domain::lifecycle::{Action, Opinion};
use crate::domain::request::{ClockState, Status, TaskRole};
use crate::error::ApiError;

/// A step on one unit's own task: a bundle unit's review or decision, a co-unit's opinion
/// ([`crate::domain::lifecycle::Target::Task`]).
#[derive(Debug, Clone)]
pub struct TaskStep {
    /// The task.
    pub task_id: String,
    /// Its state after.
    pub status: Status,
    /// Its special-procedure flag after.
    pub special_procedure: bool,
    /// The opinion given (give_opinion).
    pub opinion: Option<GivenOpinion>,
}

/// A co-unit's opinion, as stored on its task.
#[derive(Debug, Clone)]
pub struct GivenOpinion {
    /// The opinion.
    pub opinion: Opinion,
    /// Its note.
    pub note: Option<String>,
    /// Who gave it (token subject).
    pub by: String,
}

/// What the request keeps of its result.
#[derive(Debug, Clone)]
pub enum ResultUpdate {
    /// Decided: `approval` or `denial`.
    Decided {
        /// The result kind.
        kind: &'static str,
    },
    /// Delivered, with the certificate or decision number.
    Delivered {
        /// The number.
        certificate: String,
        /// When.
        at: NaiveDateTime,
    },
}

/// What the step does to the clocks (see [`crate::db::clocks::on_step`]).
#[derive(Debug, Clone)]
pub struct ClockEffects {
    /// The calendar in force.
    pub calendar: Arc<Calendar>,
    /// Warning share, percent.
    pub warn_percent: u32,
    /// A bundle (joint statutory limit).
    pub joint: bool,
    /// The special procedure's kind, for pause reasons.
    pub detail: String,
    /// A reroute after a return: the unit that returned it and when.
    pub returned: Option<(String, DateTime<Utc>)>,
    /// Steps the bundle as a whole took because of a task step (its decision, the start or
    /// end of a special procedure on it): applied to the request-level clocks.
    pub derived: Vec<Action>,
}

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
    /// The result to keep on the request, when the step decides or delivers it.
    pub result: Option<ResultUpdate>,
    /// For a re-routing: the new lead unit and the decision to store.
    pub reroute: Option<(UnitCode, RoutingDecisionRow)>,
    /// For a bundle's per-task step: the task.
    pub task: Option<TaskStep>,
    /// The action, for the clocks.
    pub action: Action,
    /// The clocks' side.
    pub clocks: ClockEffects,
    /// The audit event (its `request_id` is this request).
    pub event: Entry,
    /// Mails the step sends, written to the outbox with it.
    pub notices: Vec<Notice>,
    /// An enterprise's step taken by an official under a 帮办 grant: recorded with it.
    pub assisted: Option<super::authorizations::AssistedActRow>,
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
        match &step.task {
            // A unit's own task moves on its own; the request's state was derived from all.
            Some(task) => {
                diesel::update(tasks::table.find(&task.task_id))
                    .set((
                        tasks::status.eq(task.status.as_str()),
                        tasks::special_procedure.eq(task.special_procedure),
                    ))
                    .execute(conn)?;
                if let Some(given) = &task.opinion {
                    diesel::update(tasks::table.find(&task.task_id))
                        .set((
                            tasks::opinion.eq(given.opinion.as_str()),
                            tasks::opinion_note.eq(&given.note),
                            tasks::opinion_by.eq(&given.by),
                            tasks::opinion_at.eq(step.at),
                        ))
                        .execute(conn)?;
                }
            }
            None => follow_request(conn, step)?,
        }
        if step.action == Action::Accept {
            // The clerk who accepts the request takes its window task (the one in the
            // lead's queue): it is theirs from now on, whoever called it.
            diesel::update(
                tasks::table
                    .filter(tasks::request_id.eq(&step.request_id))
                    .filter(
                        tasks::role
                            .eq_any([TaskRole::Lead.as_str(), TaskRole::Coordinator.as_str()]),
                    ),
            )
            .set((
                tasks::claimed_by.eq(&step.event.actor),
                tasks::claimed_at.eq(step.at),
            ))
            .execute(conn)?;
        }
        match &step.result {
            Some(ResultUpdate::Decided { kind }) => {
                diesel::update(requests_table::table.find(&step.request_id))
                    .set(requests_table::result_kind.eq(*kind))
                    .execute(conn)?;
            }
            Some(ResultUpdate::Delivered { certificate, at }) => {
                diesel::update(requests_table::table.find(&step.request_id))
                    .set((
                        requests_table::certificate.eq(certificate),
                        requests_table::delivered_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            None => {}
        }
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
        let mut events = vec![step.event.clone()];
        events.extend(clock_events(conn, step)?);
        audit::append_many(conn, events)?;
        if let Some(act) = &step.assisted {
            super::authorizations::record_act(conn, act)?;
        }
        notifications::enqueue(conn, &step.notices, step.event.at)?;
        requests::find(conn, &Scope::All, &step.request_id)?
            .ok_or_else(|| StepError::Failed(ApiError::not_found("the request disappeared")))
    })
}

/// The tasks' side of a step on the request as a whole. The lead's review and decision of a
/// single matter move the lead's task only: a co-unit's opinion task is its own. Every other
/// step moves every task — except that an opinion already given stays given (the task stays
/// `completed`) until the request closes, and a return clears the opinions: the unit it is
/// re-routed to has the co-units give them again.
fn follow_request(conn: &mut DbConnection, step: &Step) -> QueryResult<()> {
    let of_request = tasks::table.filter(tasks::request_id.eq(&step.request_id));
    let moves = (
        tasks::status.eq(step.status.as_str()),
        tasks::special_procedure.eq(step.special_procedure),
    );
    let co = TaskRole::Co.as_str();
    if step.action.per_task() {
        diesel::update(of_request.filter(tasks::role.ne(co)))
            .set(moves)
            .execute(conn)?;
        return Ok(());
    }
    if step.action == Action::Return {
        diesel::update(of_request)
            .set((
                tasks::opinion.eq(None::<String>),
                tasks::opinion_note.eq(None::<String>),
                tasks::opinion_by.eq(None::<String>),
                tasks::opinion_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
    }
    let closes = matches!(
        step.status,
        Status::Completed | Status::Delivered | Status::Withdrawn | Status::NotAccepted
    );
    if closes {
        diesel::update(of_request).set(moves).execute(conn)?;
    } else {
        diesel::update(of_request.filter(tasks::role.ne(co).or(tasks::opinion.is_null())))
            .set(moves)
            .execute(conn)?;
    }
    Ok(())
}

/// The clocks' reaction to `step`, stored; returns their audit events.
fn clock_events(conn: &mut DbConnection, step: &Step) -> Result<Vec<Entry>, StepError> {
    let effects = &step.clocks;
    let rules = Rules {
        calendar: &effects.calendar,
        warn_percent: effects.warn_percent,
    };
    let now = step.event.at;
    let new_unit = step.reroute.as_ref().map(|(unit, _)| unit.to_string());
    let base = ClockStep {
        action: step.action,
        which: match &step.task {
            Some(task) => Which::Task(&task.task_id),
            None => Which::All,
        },
        joint: effects.joint,
        detail: &effects.detail,
        returned: effects
            .returned
            .as_ref()
            .map(|(unit, at)| (unit.as_str(), *at)),
        new_unit: new_unit.as_deref(),
        actor: &step.event.actor,
    };
    let mut events =
        clocks::on_step(conn, &step.request_id, &base, rules, now).map_err(StepError::Failed)?;
    let request_id = step.request_id.clone();
    for derived in &effects.derived {
        let step = ClockStep {
            action: *derived,
            which: Which::RequestOnly,
            returned: None,
            new_unit: None,
            ..base.clone()
        };
        events.extend(
            clocks::on_step(conn, &request_id, &step, rules, now).map_err(StepError::Failed)?,
        );
    }
    Ok(events)
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
    /// The request's lead unit.
    pub lead_unit: String,
    /// Earliest due time of the request's running clocks.
    pub due_at: Option<NaiveDateTime>,
}

/// Open tasks of `unit`, earliest due first (no due time last, then oldest first).
pub fn queue(conn: &mut DbConnection, unit: UnitCode, limit: i64) -> QueryResult<Vec<QueueItem>> {
    let open: Vec<&str> = OPEN.iter().map(|s| s.as_str()).collect();
    // The oldest open tasks' ids first, from `tasks_unit_status_created` alone; then only those
    // rows, with their requests. In one statement SQLite read and joined every open task of
    // the unit before sorting them.
    let task_ids: Vec<String> = tasks::table
        .filter(tasks::unit.eq(unit.as_str()))
        .filter(tasks::status.eq_any(&open))
        .order(tasks::created_at)
        .limit(limit)
        .select(tasks::id)
        .load(conn)?;
    let rows: Vec<(TaskRow, String, String)> = tasks::table
        .inner_join(requests_table::table)
        .filter(tasks::id.eq_any(&task_ids))
        .order(tasks::created_at)
        .select((
            TaskRow::as_select(),
            requests_table::number,
            requests_table::lead_unit,
        ))
        .load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|(t, _, _)| t.request_id.as_str()).collect();
    // All the clocks of these requests (a few each, through `clocks_request`); the running
    // ones are picked here. With `state = 'running'` in the statement SQLite's planner, whose
    // statistics are sampled (`analysis_limit`), read every running clock of the district
    // through `clocks_state_due` instead (19,000 at 1,000,000 requests).
    let running = ClockState::Running.as_str();
    let dues: Vec<(String, Option<NaiveDateTime>)> = clocks_table::table
        .filter(clocks_table::request_id.eq_any(&ids))
        .select((
            clocks_table::request_id,
            clocks_table::state,
            clocks_table::due_at,
        ))
        .load::<(String, String, Option<NaiveDateTime>)>(conn)?
        .into_iter()
        .filter(|(_, state, _)| state == running)
        .map(|(request_id, _, due_at)| (request_id, due_at))
        .collect();
    let mut items: Vec<QueueItem> = rows
        .into_iter()
        .map(|(task, number, lead_unit)| {
            let due_at = dues
                .iter()
                .filter(|(id, _)| *id == task.request_id)
                .filter_map(|(_, due)| *due)
                .min();
            QueueItem {
                task,
                number,
                lead_unit,
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

/// Claims the next waiting, unclaimed task of `unit` for `clerk`: a request waiting at the
/// window when the unit leads it (one intake: only the lead calls), or a unit's own review
/// or opinion task once the request is accepted. The claim is a conditional update, so two
/// clerks can never get the same task, on either backend.
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
                let at_window = item.task.status == Status::Submitted.as_str()
                    && item.lead_unit == unit.as_str();
                let own_review = item.task.status == Status::Accepted.as_str()
                    && item.task.role != TaskRole::Coordinator.as_str();
                item.task.claimed_by.is_none() && (at_window || own_review)
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
