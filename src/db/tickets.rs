//! The window queue's tickets: issuing (a number per unit per day that two writers can never
//! share), the day's queue, calling (call-next takes each ticket once), finishing, linking a
//! request, and the waiting times the SLA statistics report. Rules in
//! [`crate::domain::ticket`]; the API in `routes/tickets.rs`; docs/tickets.md.
//!
//! Every change is one write transaction with its audit event (the ticket's own trail,
//! `request_id` = `ticket:<id>`); calling a ticket linked to a request takes the request's
//! `call` step in the same transaction ([`crate::db::workflow::record`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;
use uuid::Uuid;

use super::requests::RequestRecord;
use super::schema::tickets;
use super::workflow::{self, Step, StepError};
use super::{DbConnection, audit, write_transaction};
use crate::domain::UnitCode;
use crate::domain::audit::Entry;
use crate::domain::ticket::{self, NotNow, Place, TicketAction, TicketKind, TicketState};
use crate::error::{ApiError, ErrorCode};

/// A stored ticket.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tickets, treat_none_as_default_value = false)]
pub struct Ticket {
    /// UUID v7.
    pub id: String,
    /// The unit whose queue it is in.
    pub unit: String,
    /// `YYYYMMDD`, Shanghai.
    pub day: String,
    /// The day's sequence in the unit.
    pub seq: i32,
    /// `A017`.
    pub number: String,
    /// `appointment` or `walk_in`.
    pub kind: String,
    /// The appointment checked in.
    pub appointment_id: Option<String>,
    /// The request the visit is about.
    pub request_id: Option<String>,
    /// The enterprise.
    pub uscc: Option<String>,
    /// The matter.
    pub matter: Option<String>,
    /// The counter it is meant for.
    pub counter: Option<String>,
    /// The booked slot's start.
    pub slot_start: Option<NaiveDateTime>,
    /// `waiting`, `called`, `done`, `no_answer`.
    pub state: String,
    /// Check-in.
    pub issued_at: NaiveDateTime,
    /// Who issued it.
    pub issued_by: String,
    /// First call.
    pub called_at: Option<NaiveDateTime>,
    /// Who called it last.
    pub called_by: Option<String>,
    /// The counter it was called to last.
    pub called_counter: Option<String>,
    /// Done or not answered.
    pub finished_at: Option<NaiveDateTime>,
    /// Revision, from 1.
    pub revision: i32,
}

impl Ticket {
    /// Its state (a stored value outside the set reads as `waiting`; the CHECK forbids it).
    pub fn state(&self) -> TicketState {
        self.state.parse().unwrap_or(TicketState::Waiting)
    }

    /// Its kind.
    pub fn kind(&self) -> TicketKind {
        self.kind.parse().unwrap_or(TicketKind::WalkIn)
    }

    /// What the queue's order needs of it.
    pub fn place(&self) -> Place {
        Place {
            kind: self.kind(),
            slot_start: self.slot_start.map(|t| t.and_utc()),
            issued_at: self.issued_at.and_utc(),
            seq: self.seq,
        }
    }
}

/// Who does something to a ticket, for its audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Official {
    /// Token subject.
    pub subject: String,
    /// Role as written in tokens (`clerk`, …).
    pub role: String,
    /// Their unit.
    pub unit: Option<String>,
}

/// A ticket to issue: a walk-in's (`POST /api/v1/tickets`) or an appointment's at check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    /// The unit whose queue it joins.
    pub unit: UnitCode,
    /// How the visitor came.
    pub kind: TicketKind,
    /// The appointment checked in.
    pub appointment_id: Option<String>,
    /// The request the visit is about (its lead unit must be `unit`: the caller checks).
    pub request_id: Option<String>,
    /// The enterprise.
    pub uscc: Option<String>,
    /// The matter code.
    pub matter: Option<String>,
    /// The counter it is meant for.
    pub counter: Option<String>,
    /// The booked slot's start (appointments).
    pub slot_start: Option<DateTime<Utc>>,
    /// Who issues it.
    pub by: Official,
    /// Check-in time (microseconds).
    pub at: DateTime<Utc>,
}

fn event(
    ticket: &Ticket,
    by: &Official,
    action: &str,
    before: Option<&str>,
    at: DateTime<Utc>,
) -> Entry {
    Entry {
        request_id: format!("ticket:{}", ticket.id),
        actor: by.subject.clone(),
        role: by.role.clone(),
        unit: by.unit.clone(),
        action: format!("ticket_{action}"),
        state_before: before.map(str::to_string),
        state_after: Some(ticket.state.clone()),
        payload: json!({
            "number": ticket.number,
            "unit": ticket.unit,
            "kind": ticket.kind,
            "request_id": ticket.request_id,
            "appointment_id": ticket.appointment_id,
            "counter": ticket.called_counter.as_ref().or(ticket.counter.as_ref()),
        }),
        at,
    }
}

/// Issues a ticket: the next number of the unit's day, in one write transaction with its audit
/// event. Callable on its own or inside a caller's write transaction (an appointment's check-in:
/// it then runs in a savepoint of it). Two writers never get the same number, on either
/// backend: `(unit, day, seq)` is unique, and the loser of a race takes the next one.
pub fn issue(conn: &mut DbConnection, new: &NewTicket) -> Result<Ticket, ApiError> {
    let day = ticket::day_of(new.at);
    write_transaction(conn, |conn| {
        let ticket = loop {
            let last: Option<i32> = tickets::table
                .filter(tickets::unit.eq(new.unit.as_str()))
                .filter(tickets::day.eq(&day))
                .select(diesel::dsl::max(tickets::seq))
                .first(conn)?;
            let seq = last.unwrap_or(0) + 1;
            let row = Ticket {
                id: Uuid::now_v7().to_string(),
                unit: new.unit.to_string(),
                day: day.clone(),
                seq,
                number: ticket::number(new.unit, seq),
                kind: new.kind.to_string(),
                appointment_id: new.appointment_id.clone(),
                request_id: new.request_id.clone(),
                uscc: new.uscc.clone(),
                matter: new.matter.clone(),
                counter: new.counter.clone(),
                slot_start: new.slot_start.map(|t| t.naive_utc()),
                state: TicketState::Waiting.to_string(),
                issued_at: new.at.naive_utc(),
                issued_by: new.by.subject.clone(),
                called_at: None,
                called_by: None,
                called_counter: None,
                finished_at: None,
                revision: 1,
            };
            // A savepoint: on PostgreSQL a failed INSERT would spoil the whole transaction.
            let inserted = conn.transaction(|conn| {
                diesel::insert_into(tickets::table)
                    .values(&row)
                    .execute(conn)
            });
            match inserted {
                Ok(_) => break row,
                // Another writer took this number first: take the next one.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
                Err(other) => return Err(other.into()),
            }
        };
        audit::append(conn, event(&ticket, &new.by, "issued", None, new.at))?;
        Ok(ticket)
    })
}

/// One ticket.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Ticket>> {
    tickets::table
        .find(id)
        .select(Ticket::as_select())
        .first(conn)
        .optional()
}

/// The tickets of `unit`'s day (`YYYYMMDD`): those waiting in queue order at `now`, then the
/// called, answered and missed ones by number.
pub fn day_queue(
    conn: &mut DbConnection,
    unit: UnitCode,
    day: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Ticket>> {
    let mut rows: Vec<Ticket> = tickets::table
        .filter(tickets::unit.eq(unit.as_str()))
        .filter(tickets::day.eq(day))
        .select(Ticket::as_select())
        .load(conn)?;
    rows.sort_by(|a, b| {
        let waiting = |t: &Ticket| t.state() != TicketState::Waiting;
        waiting(a).cmp(&waiting(b)).then_with(|| match a.state() {
            TicketState::Waiting => ticket::order(&a.place(), &b.place(), now),
            _ => a.seq.cmp(&b.seq),
        })
    });
    Ok(rows)
}

/// Which ticket a call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick<'a> {
    /// The first waiting ticket of the unit's day, in queue order; with a counter, the first
    /// meant for that counter or for none.
    Next {
        /// The calling counter.
        counter: Option<&'a str>,
    },
    /// This ticket (waiting, or called again after no answer).
    This(&'a str),
}

/// A ticket called, and the request its call moved (when it did).
#[derive(Debug, Clone)]
pub struct Called {
    /// The ticket, now called.
    pub ticket: Ticket,
    /// The linked request after its `call` step, when the step was taken.
    pub request: Option<RequestRecord>,
}

/// How the linked request's `call` step is built, given the ticket (its `request_id` is set):
/// `None` when the request is not waiting for it (it was called already, or is past the
/// window). The route builds it with the requests' own step code (`routes::actions`).
pub type RequestCall<'a> =
    dyn Fn(&mut DbConnection, &Ticket) -> Result<Option<Step>, ApiError> + 'a;

fn not_now(not_now: NotNow) -> ApiError {
    ApiError::new(ErrorCode::ActionNotAllowed, not_now.to_string())
        .with_extension("state", json!(not_now.state))
        .with_extension("allowed", json!(not_now.allowed))
}

/// A ticket of `unit`, or 404 (another unit's tickets are not the caller's to see).
fn of_unit(conn: &mut DbConnection, unit: UnitCode, id: &str) -> Result<Ticket, ApiError> {
    find(conn, id)?
        .filter(|t| t.unit == unit.as_str())
        .ok_or_else(|| ApiError::not_found(format!("no ticket {id} in the queue of `{unit}`")))
}

/// Takes the linked request's `call` step inside the current transaction.
fn call_request(
    conn: &mut DbConnection,
    ticket: &Ticket,
    request_call: &RequestCall<'_>,
) -> Result<Option<RequestRecord>, ApiError> {
    let Some(mut step) = request_call(conn, ticket)? else {
        return Ok(None);
    };
    step.event.payload["ticket"] = json!({"id": ticket.id, "number": ticket.number});
    match workflow::record(conn, &step) {
        Ok(record) => Ok(Some(record)),
        Err(StepError::Stale { revision, status }) => Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            format!(
                "someone else changed the ticket's request first: it is now {status} (revision r{revision}); call again"
            ),
        )),
        Err(StepError::Failed(error)) => Err(error),
    }
}

/// Calls a ticket of `unit`'s day for `by` at `counter`: a conditional update on its state and
/// revision, so two clerks pressing "next" at once never get the same ticket. A linked request
/// takes its `call` step in the same transaction (which starts its 20-minute window clock).
/// `Ok(None)`: nothing is waiting.
pub fn call(
    conn: &mut DbConnection,
    unit: UnitCode,
    pick: Pick<'_>,
    by: &Official,
    counter: Option<&str>,
    now: DateTime<Utc>,
    request_call: &RequestCall<'_>,
) -> Result<Option<Called>, ApiError> {
    let day = ticket::day_of(now);
    write_transaction(conn, |conn| {
        let candidates: Vec<Ticket> = match pick {
            Pick::Next { counter } => day_queue(conn, unit, &day, now)?
                .into_iter()
                .filter(|t| t.state() == TicketState::Waiting)
                .filter(|t| match (counter, &t.counter) {
                    (Some(mine), Some(theirs)) => mine == theirs,
                    _ => true,
                })
                .collect(),
            Pick::This(id) => {
                let found = of_unit(conn, unit, id)?;
                ticket::next(found.state(), TicketAction::Call).map_err(not_now)?;
                vec![found]
            }
        };
        for mut candidate in candidates {
            let before = candidate.state.clone();
            let first_call = candidate.called_at.unwrap_or(now.naive_utc());
            let taken = diesel::update(
                tickets::table
                    .filter(tickets::id.eq(&candidate.id))
                    .filter(tickets::state.eq(&before))
                    .filter(tickets::revision.eq(candidate.revision)),
            )
            .set((
                tickets::state.eq(TicketState::Called.as_str()),
                tickets::called_at.eq(first_call),
                tickets::called_by.eq(&by.subject),
                tickets::called_counter.eq(counter),
                tickets::revision.eq(candidate.revision + 1),
            ))
            .execute(conn)?;
            if taken == 0 {
                if let Pick::This(id) = pick {
                    let current = of_unit(conn, unit, id)?;
                    ticket::next(current.state(), TicketAction::Call).map_err(not_now)?;
                    return Err(ApiError::new(
                        ErrorCode::PreconditionFailed,
                        "someone else changed this ticket first; read it again",
                    ));
                }
                continue; // another clerk took it a moment ago
            }
            candidate.state = TicketState::Called.to_string();
            candidate.called_at = Some(first_call);
            candidate.called_by = Some(by.subject.clone());
            candidate.called_counter = counter.map(str::to_string);
            candidate.revision += 1;
            audit::append(conn, event(&candidate, by, "called", Some(&before), now))?;
            let request = match candidate.request_id {
                Some(_) => call_request(conn, &candidate, request_call)?,
                None => None,
            };
            return Ok(Some(Called {
                ticket: candidate,
                request,
            }));
        }
        Ok(None)
    })
}

/// Marks a called ticket of `unit` done or not answered.
pub fn finish(
    conn: &mut DbConnection,
    unit: UnitCode,
    id: &str,
    action: TicketAction,
    by: &Official,
    now: DateTime<Utc>,
) -> Result<Ticket, ApiError> {
    write_transaction(conn, |conn| {
        let mut found = of_unit(conn, unit, id)?;
        let after = ticket::next(found.state(), action).map_err(not_now)?;
        let before = found.state.clone();
        diesel::update(
            tickets::table
                .filter(tickets::id.eq(id))
                .filter(tickets::revision.eq(found.revision)),
        )
        .set((
            tickets::state.eq(after.as_str()),
            tickets::finished_at.eq(now.naive_utc()),
            tickets::revision.eq(found.revision + 1),
        ))
        .execute(conn)?;
        found.state = after.to_string();
        found.finished_at = Some(now.naive_utc());
        found.revision += 1;
        audit::append(conn, event(&found, by, action.as_str(), Some(&before), now))?;
        Ok(found)
    })
}

/// Links a ticket of `unit` without a request to `request_id`; when the ticket was called
/// already, the request takes its `call` step now, in the same transaction.
pub fn link(
    conn: &mut DbConnection,
    unit: UnitCode,
    id: &str,
    request_id: &str,
    by: &Official,
    now: DateTime<Utc>,
    request_call: &RequestCall<'_>,
) -> Result<Called, ApiError> {
    write_transaction(conn, |conn| {
        let mut found = of_unit(conn, unit, id)?;
        if let Some(linked) = &found.request_id {
            if linked == request_id {
                return Ok(Called {
                    ticket: found,
                    request: None,
                });
            }
            return Err(ApiError::new(
                ErrorCode::ActionNotAllowed,
                format!("the ticket is linked to request {linked} already"),
            )
            .with_extension("state", json!(found.state)));
        }
        let changed = diesel::update(
            tickets::table
                .filter(tickets::id.eq(id))
                .filter(tickets::request_id.is_null()),
        )
        .set((
            tickets::request_id.eq(request_id),
            tickets::revision.eq(found.revision + 1),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                "someone else linked this ticket first; read it again",
            ));
        }
        found.request_id = Some(request_id.to_string());
        found.revision += 1;
        let state = found.state.clone();
        audit::append(conn, event(&found, by, "linked", Some(&state), now))?;
        let request = match found.state() {
            TicketState::Called => call_request(conn, &found, request_call)?,
            _ => None,
        };
        Ok(Called {
            ticket: found,
            request,
        })
    })
}

/// The waiting times (seconds, ascending) of tickets first called in `[from, to)`, per unit in
/// code order; only `unit` when given.
pub fn waiting_times(
    conn: &mut DbConnection,
    unit: Option<&str>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(String, Vec<i64>)>> {
    let mut query = tickets::table
        .filter(tickets::called_at.ge(from))
        .filter(tickets::called_at.lt(to))
        .select((tickets::unit, tickets::issued_at, tickets::called_at))
        .into_boxed();
    if let Some(unit) = unit {
        query = query.filter(tickets::unit.eq(unit.to_string()));
    }
    let rows: Vec<(String, NaiveDateTime, Option<NaiveDateTime>)> = query.load(conn)?;
    let mut units: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for (unit, issued, called) in rows {
        let Some(called) = called else { continue };
        units.entry(unit).or_default().push(ticket::waiting_seconds(
            issued.and_utc(),
            Some(called.and_utc()),
            called.and_utc(),
        ));
    }
    Ok(units
        .into_iter()
        .map(|(unit, mut seconds)| {
            seconds.sort_unstable();
            (unit, seconds)
        })
        .collect())
}
