//! The window queue (叫号, docs/tickets.md): walk-in tickets, the day's queue, call-next, a
//! ticket's own steps, and linking a ticket to the request the visit is about. Calling a ticket
//! linked to a request takes the request's `call` step (the actions endpoint's own step code,
//! [`crate::routes::actions::step_for`]), which starts its 20-minute window clock.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Actor, Principal};
use crate::config::SlaSettings;
use crate::db::Database;
use crate::db::calendars::Calendars;
use crate::db::requests::{self, Scope};
use crate::db::tickets::{self, NewTicket, Official, Pick, RequestCall, Ticket};
use crate::db::workflow::Step;
use crate::domain::lifecycle::{self, Action};
use crate::domain::request::Status;
use crate::domain::ticket::{self as rules, TicketAction, TicketKind, TicketState};
use crate::domain::{Catalog, UnitCode, Uscc};
use crate::error::{ApiError, FieldError, Problem};
use crate::routes::actions::{self, ActionBody, History, StepRules};
use crate::routes::requests::{RequestView, view};

/// Longest counter name.
const COUNTER_MAX: usize = 20;

/// A ticket in the window queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    /// Ticket id.
    pub id: String,
    /// What the visitor sees and the hall's screen calls: the unit's letter and the day's
    /// sequence.
    #[schema(example = "A017")]
    pub number: String,
    /// The unit whose queue it is in.
    pub unit: String,
    /// The district day, `YYYY-MM-DD`.
    pub date: String,
    /// How the visitor came.
    pub kind: TicketKind,
    /// Where it stands.
    pub state: TicketState,
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
    pub slot_start: Option<DateTime<Utc>>,
    /// Check-in.
    pub issued_at: DateTime<Utc>,
    /// First call.
    pub called_at: Option<DateTime<Utc>>,
    /// Who called it (token subject).
    pub called_by: Option<String>,
    /// The counter it was called to.
    pub called_counter: Option<String>,
    /// Done or not answered.
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds from check-in to the first call (to now while it waits).
    pub waiting_seconds: i64,
    /// Revision.
    pub revision: i32,
}

pub(crate) fn ticket_view(t: &Ticket, now: DateTime<Utc>) -> TicketView {
    let called_at = t.called_at.map(|c| c.and_utc());
    TicketView {
        id: t.id.clone(),
        number: t.number.clone(),
        unit: t.unit.clone(),
        date: NaiveDate::parse_from_str(&t.day, "%Y%m%d")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| t.day.clone()),
        kind: t.kind(),
        state: t.state(),
        appointment_id: t.appointment_id.clone(),
        request_id: t.request_id.clone(),
        uscc: t.uscc.clone(),
        matter: t.matter.clone(),
        counter: t.counter.clone(),
        slot_start: t.slot_start.map(|s| s.and_utc()),
        issued_at: t.issued_at.and_utc(),
        called_at,
        called_by: t.called_by.clone(),
        called_counter: t.called_counter.clone(),
        finished_at: t.finished_at.map(|f| f.and_utc()),
        waiting_seconds: rules::waiting_seconds(t.issued_at.and_utc(), called_at, now),
        revision: t.revision,
    }
}

/// A ticket after a call or a link, with its request when the request took its `call` step.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalledView {
    /// The ticket.
    pub ticket: TicketView,
    /// The linked request after its `call` step (its window clock running); absent when the
    /// ticket has no request, or the request was not waiting to be called.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestView>,
}

/// A unit's queue of one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketQueue {
    /// The unit.
    pub unit: String,
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// Waiting tickets in calling order (appointments in their slot, walk-ins by check-in,
    /// appointments checked in before their slot), then the others by number.
    pub items: Vec<TicketView>,
}

/// A walk-in ticket.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicketBody {
    /// The enterprise, when it says who it is.
    pub uscc: Option<String>,
    /// The matter, when known (a code of the catalog).
    pub matter: Option<String>,
    /// The request the visit is about, when it has one (the unit must lead it).
    pub request: Option<String>,
    /// The counter it is meant for (1 to 20 characters).
    pub counter: Option<String>,
}

/// Call-next.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NextBody {
    /// The calling counter: only tickets meant for it or for no counter (1 to 20 characters).
    pub counter: Option<String>,
}

/// A step on a ticket.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketActionBody {
    /// `call` (also again after `no_answer`), `done` or `no_answer`.
    pub action: TicketAction,
    /// The calling counter (`call`; 1 to 20 characters).
    pub counter: Option<String>,
}

/// Which request a ticket is about.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// Request id.
    pub request: String,
}

/// The day and unit of a queue.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// The day, `YYYY-MM-DD` (default: today, Shanghai).
    #[param(value_type = Option<String>, format = Date)]
    pub date: Option<String>,
    /// The unit (district supervisors and administrators: required; others: their own).
    #[param(value_type = Option<UnitCode>)]
    pub unit: Option<String>,
}

fn clerk_unit(principal: &Principal) -> Result<UnitCode, ApiError> {
    match principal.actor {
        Actor::Clerk(unit) => Ok(unit),
        _ => Err(ApiError::forbidden(
            "the window queue is worked by the unit's clerks",
        )),
    }
}

pub(crate) fn official(principal: &Principal) -> Official {
    let (_, unit) = principal.actor.claim_values();
    Official {
        subject: principal.subject.clone(),
        role: principal.actor.role().as_str().into(),
        unit,
    }
}

fn counter_of(value: &Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let counter = value.as_deref().map(str::trim)?;
    if counter.is_empty()
        || counter.chars().count() > COUNTER_MAX
        || counter.chars().any(char::is_control)
    {
        errors.push(FieldError {
            pointer: "/counter".into(),
            message: format!("1 to {COUNTER_MAX} characters, no control characters"),
        });
        return None;
    }
    Some(counter.to_string())
}

fn fail(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// What a ticket's call needs to build its request's step, on the blocking pool.
#[derive(Clone)]
struct StepEnv {
    principal: Principal,
    catalog: web::Data<Catalog>,
    calendars: web::Data<Calendars>,
    warn_percent: u32,
}

impl StepEnv {
    fn new(
        principal: &Principal,
        catalog: &web::Data<Catalog>,
        calendars: &web::Data<Calendars>,
        sla: &SlaSettings,
    ) -> Self {
        Self {
            principal: principal.clone(),
            catalog: catalog.clone(),
            calendars: calendars.clone(),
            warn_percent: sla.warn_percent,
        }
    }

    /// The linked request's `call` step, when the request waits for it and the caller may
    /// take it (the unit still leads it: a re-routed request is called by its new lead).
    fn request_call(
        &self,
        conn: &mut crate::db::DbConnection,
        ticket: &Ticket,
    ) -> Result<Option<Step>, ApiError> {
        let Some(request_id) = &ticket.request_id else {
            return Ok(None);
        };
        let Some(record) = requests::find(conn, &Scope::All, request_id)? else {
            return Ok(None);
        };
        if record.request.status != Status::Submitted.as_str() {
            return Ok(None);
        }
        let body = ActionBody {
            action: Action::Call,
            reason: None,
            items: None,
            kind: None,
            certificate: None,
            unit: None,
            task: None,
            opinion: None,
            note: None,
        };
        let rules = StepRules {
            catalog: &self.catalog,
            calendar: self.calendars.current(),
            warn_percent: self.warn_percent,
        };
        let now = Utc::now().trunc_subsecs(6);
        let parties = actions::parties_of(&record)?;
        match actions::step_for(
            &self.principal,
            &record,
            &parties,
            &body,
            record.request.revision,
            History::default(),
            &rules,
            now,
        ) {
            Ok(step) => Ok(Some(step)),
            // The unit no longer leads it (re-routed since): the ticket is called alone.
            Err(_)
                if lifecycle::authorize(&self.principal.actor, Action::Call, &parties, None)
                    .is_err() =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

fn called_view(
    called: tickets::Called,
    calendars: &Calendars,
    principal: &Principal,
) -> CalledView {
    let now = Utc::now();
    CalledView {
        ticket: ticket_view(&called.ticket, now),
        request: called
            .request
            .map(|r| view(&r, calendars.current().horizon()).for_actor(&principal.actor)),
    }
}

/// The request a ticket is to be linked to: it must exist, be visible to the clerk's unit and
/// be led by it (404 / 403 `not_lead_unit` otherwise, as for the request's own `call`).
async fn linkable(db: &Database, principal: &Principal, id: &str) -> Result<String, ApiError> {
    let record = crate::routes::requests::acted_on(db, id).await?;
    lifecycle::authorize(
        &principal.actor,
        Action::Call,
        &actions::parties_of(&record)?,
        None,
    )
    .map_err(|d| actions::denied(d, id))?;
    Ok(record.request.id)
}

/// Issue a walk-in ticket in the caller's unit's queue (clerks of the unit). The number is the
/// next of the unit's day (`A017`); two clerks issuing at once never get the same number. A
/// `request` named must be led by the unit (403 `not_lead_unit` otherwise, 404 when the unit
/// has nothing on it).
#[utoipa::path(
    tag = "tickets",
    operation_id = "tickets_issue",
    security(("bearer" = [])),
    request_body(content = NewTicketBody, example = json!({"uscc": "91350100M000100Y43", "matter": "market-establish", "counter": "3"})),
    responses(
        (status = 201, description = "Issued", body = TicketView),
        (status = 404, description = "`request` names no request the unit may see", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A member is wrong", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/tickets")]
pub async fn issue(
    principal: Principal,
    body: web::Json<NewTicketBody>,
    db: web::Data<Database>,
    catalog: web::Data<Catalog>,
) -> Result<HttpResponse, ApiError> {
    let unit = clerk_unit(&principal)?;
    let body = body.into_inner();
    let mut errors = Vec::new();
    let uscc = match body.uscc.as_deref().map(str::trim) {
        Some(code) => match Uscc::parse(code) {
            Ok(uscc) => Some(uscc.to_string()),
            Err(e) => {
                errors.push(FieldError {
                    pointer: "/uscc".into(),
                    message: e.to_string(),
                });
                None
            }
        },
        None => None,
    };
    let matter = body.matter.as_deref().map(str::trim).map(str::to_string);
    if let Some(code) = &matter {
        if catalog.matter(code).is_none() {
            errors.push(FieldError {
                pointer: "/matter".into(),
                message: format!("`{code}` is not a matter of the catalog"),
            });
        }
    }
    let counter = counter_of(&body.counter, &mut errors);
    if body.request.as_deref().is_some_and(|r| r.trim().is_empty()) {
        errors.push(FieldError {
            pointer: "/request".into(),
            message: "a request id".into(),
        });
    }
    fail(errors)?;
    let request_id = match body.request.as_deref().map(str::trim) {
        Some(id) => Some(linkable(&db, &principal, id).await?),
        None => None,
    };
    let new = NewTicket {
        unit,
        kind: TicketKind::WalkIn,
        appointment_id: None,
        request_id,
        uscc,
        matter,
        counter,
        slot_start: None,
        by: official(&principal),
        at: Utc::now().trunc_subsecs(6),
    };
    let ticket = db.run(move |conn| tickets::issue(conn, &new)).await?;
    Ok(HttpResponse::Created().json(ticket_view(&ticket, Utc::now())))
}

/// A unit's queue of a day: clerks and unit supervisors see their own unit's, district
/// supervisors and administrators any unit's (`unit=` required). Each ticket with its waiting
/// time so far.
#[utoipa::path(
    tag = "tickets",
    operation_id = "tickets_list",
    security(("bearer" = [])),
    params(QueueQuery),
    responses(
        (status = 200, description = "The queue", body = TicketQueue),
        (status = 422, description = "A parameter is wrong or missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/tickets")]
pub async fn list(
    principal: Principal,
    query: web::Query<QueueQuery>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let date = match query.date.as_deref().filter(|d| !d.is_empty()) {
        Some(text) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => Some(date),
            Err(_) => {
                errors.push(FieldError {
                    pointer: "date".into(),
                    message: "a day, YYYY-MM-DD".into(),
                });
                None
            }
        },
        None => None,
    };
    let asked = match query.unit.as_deref().filter(|u| !u.is_empty()) {
        Some(text) => match text.parse::<UnitCode>() {
            Ok(unit) => Some(unit),
            Err(e) => {
                errors.push(FieldError {
                    pointer: "unit".into(),
                    message: e.to_string(),
                });
                None
            }
        },
        None => None,
    };
    let own = match principal.actor {
        Actor::Clerk(unit) | Actor::Supervisor(Some(unit)) => Some(unit),
        Actor::Supervisor(None) | Actor::Admin => None,
        Actor::Enterprise(_) => {
            return Err(ApiError::forbidden(
                "the window queue is for the unit's clerks and supervisors",
            ));
        }
    };
    fail(errors)?;
    let unit = match (own, asked) {
        (Some(own), Some(other)) if own != other => {
            return Err(ApiError::forbidden(format!(
                "the queue of `{other}` is not for `{own}`"
            )));
        }
        (Some(unit), _) | (None, Some(unit)) => unit,
        (None, None) => {
            return Err(ApiError::validation(vec![FieldError {
                pointer: "unit".into(),
                message: "required: which unit's queue".into(),
            }]));
        }
    };
    let now = Utc::now();
    let day = match date {
        Some(date) => date.format("%Y%m%d").to_string(),
        None => rules::day_of(now),
    };
    let lookup = day.clone();
    let rows = db
        .run(move |conn| Ok(tickets::day_queue(conn, unit, &lookup, now)?))
        .await?;
    Ok(HttpResponse::Ok().json(TicketQueue {
        unit: unit.to_string(),
        date: NaiveDate::parse_from_str(&day, "%Y%m%d")
            .map(|d| d.to_string())
            .unwrap_or(day),
        items: rows.iter().map(|t| ticket_view(t, now)).collect(),
    }))
}

/// Call the next ticket of the caller's unit's queue of today (clerks): the first waiting one
/// in calling order, taken atomically (two clerks pressing "next" at once never get the same
/// ticket). A ticket linked to a request calls the request too (its window clock starts). 204
/// when nobody waits.
#[utoipa::path(
    tag = "tickets",
    operation_id = "tickets_next",
    security(("bearer" = [])),
    request_body(content = NextBody, example = json!({"counter": "3"})),
    responses(
        (status = 200, description = "Called", body = CalledView),
        (status = 204, description = "Nobody waits"),
        (status = 412, description = "The linked request changed at that very moment; call again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`counter` is wrong", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/tickets/next")]
pub async fn next(
    principal: Principal,
    body: web::Json<NextBody>,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
    catalog: web::Data<Catalog>,
) -> Result<HttpResponse, ApiError> {
    let unit = clerk_unit(&principal)?;
    let mut errors = Vec::new();
    let counter = counter_of(&body.counter, &mut errors);
    fail(errors)?;
    let env = StepEnv::new(&principal, &catalog, &calendars, &sla);
    let by = official(&principal);
    let now = Utc::now().trunc_subsecs(6);
    let called = db
        .run(move |conn| {
            let request_call: &RequestCall<'_> = &|conn, t| env.request_call(conn, t);
            tickets::call(
                conn,
                unit,
                Pick::Next {
                    counter: counter.as_deref(),
                },
                &by,
                counter.as_deref(),
                now,
                request_call,
            )
        })
        .await?;
    Ok(match called {
        Some(called) => HttpResponse::Ok().json(called_view(called, &calendars, &principal)),
        None => HttpResponse::NoContent().finish(),
    })
}

/// Take a step on a ticket of the caller's unit (clerks): `call` it (again, after
/// `no_answer`), mark it `done` or `no_answer`. Calling a ticket linked to a request calls the
/// request too. Another unit's ticket is a 404.
#[utoipa::path(
    tag = "tickets",
    operation_id = "tickets_act",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")),
    request_body(content = TicketActionBody, example = json!({"action": "call", "counter": "3"})),
    responses(
        (status = 200, description = "Done; the ticket (and its request, when called)", body = CalledView),
        (status = 404, description = "No such ticket in the caller's unit's queue", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`action_not_allowed`: not in the ticket's state (`state`, `allowed`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Someone else changed the ticket or its request first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A member is wrong", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/tickets/{id}/actions")]
#[allow(clippy::too_many_arguments)] // actix extractors: one per piece of app state
pub async fn act(
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<TicketActionBody>,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
    catalog: web::Data<Catalog>,
) -> Result<HttpResponse, ApiError> {
    let unit = clerk_unit(&principal)?;
    let id = id.into_inner();
    let body = body.into_inner();
    let mut errors = Vec::new();
    let counter = counter_of(&body.counter, &mut errors);
    if counter.is_some() && body.action != TicketAction::Call {
        errors.push(FieldError {
            pointer: "/counter".into(),
            message: "only for call".into(),
        });
    }
    fail(errors)?;
    let by = official(&principal);
    let now = Utc::now().trunc_subsecs(6);
    let called = match body.action {
        TicketAction::Call => {
            let env = StepEnv::new(&principal, &catalog, &calendars, &sla);
            db.run(move |conn| {
                let request_call: &RequestCall<'_> = &|conn, t| env.request_call(conn, t);
                tickets::call(
                    conn,
                    unit,
                    Pick::This(&id),
                    &by,
                    counter.as_deref(),
                    now,
                    request_call,
                )
            })
            .await?
            .ok_or_else(|| ApiError::internal("a named ticket was neither called nor refused"))?
        }
        action => {
            let ticket = db
                .run(move |conn| tickets::finish(conn, unit, &id, action, &by, now))
                .await?;
            tickets::Called {
                ticket,
                request: None,
            }
        }
    };
    Ok(HttpResponse::Ok().json(called_view(called, &calendars, &principal)))
}

/// Link a ticket of the caller's unit to the request the visit is about (clerks of the unit,
/// which must lead the request: 403 `not_lead_unit` otherwise). When the ticket was called already, the request is called
/// now (its window clock starts).
#[utoipa::path(
    tag = "tickets",
    operation_id = "tickets_link_request",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")),
    request_body(content = LinkBody, example = json!({"request": "01937a6e-8d1c-7cc0-a6b2-3f1e2d4c5b6a"})),
    responses(
        (status = 200, description = "Linked; the ticket (and its request, when called now)", body = CalledView),
        (status = 404, description = "No such ticket in the caller's unit's queue, or no such request for the unit", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`action_not_allowed`: the ticket is linked to another request", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Someone else changed the ticket or its request first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`request` is empty", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/tickets/{id}/request")]
#[allow(clippy::too_many_arguments)] // actix extractors: one per piece of app state
pub async fn link(
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<LinkBody>,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
    catalog: web::Data<Catalog>,
) -> Result<HttpResponse, ApiError> {
    let unit = clerk_unit(&principal)?;
    let id = id.into_inner();
    let asked = body.request.trim().to_string();
    if asked.is_empty() {
        return Err(ApiError::validation(vec![FieldError {
            pointer: "/request".into(),
            message: "required: a request id".into(),
        }]));
    }
    // The ticket first: another unit's ticket is a 404 whatever the request.
    let lookup = id.clone();
    db.run(move |conn| {
        tickets::find(conn, &lookup)?
            .filter(|t| t.unit == unit.as_str())
            .map(|_| ())
            .ok_or_else(|| {
                ApiError::not_found(format!("no ticket {lookup} in the queue of `{unit}`"))
            })
    })
    .await?;
    let request_id = linkable(&db, &principal, &asked).await?;
    let env = StepEnv::new(&principal, &catalog, &calendars, &sla);
    let by = official(&principal);
    let now = Utc::now().trunc_subsecs(6);
    let called = db
        .run(move |conn| {
            let request_call: &RequestCall<'_> = &|conn, t| env.request_call(conn, t);
            tickets::link(conn, unit, &id, &request_id, &by, now, request_call)
        })
        .await?;
    Ok(HttpResponse::Ok().json(called_view(called, &calendars, &principal)))
}
