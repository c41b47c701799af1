//! The clerks' queue: their unit's open tasks, and taking the next one.

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Actor, Principal};
use crate::db::Database;
use crate::db::calendars::Calendars;
use crate::db::workflow::{self, QueueItem};
use crate::domain::UnitCode;
use crate::domain::request::{Status, TaskRole};
use crate::error::ApiError;
use crate::routes::requests::{RequestView, etag, view};

/// Most tasks listed.
const LISTED: i64 = 200;

/// A task in a unit's queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEntry {
    /// Task id.
    pub task_id: String,
    /// Request id.
    pub request_id: String,
    /// Request number.
    pub number: String,
    /// Matter (the bundle code for a coordinator).
    pub matter: String,
    /// Unit.
    pub unit: String,
    /// Lead, co-operating unit or coordinator.
    pub role: TaskRole,
    /// State.
    pub status: Status,
    /// Clerk who took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// Earliest due time of the request's running clocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
}

/// The unit's open tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queue {
    /// Earliest due first.
    pub items: Vec<QueueEntry>,
}

/// The task taken, and its request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Claimed {
    /// The task, now claimed by the caller.
    pub task: QueueEntry,
    /// Its request.
    pub request: RequestView,
}

fn entry(item: QueueItem) -> QueueEntry {
    QueueEntry {
        status: item.task.status.parse().unwrap_or(Status::Submitted),
        role: item.task.role.parse().unwrap_or(TaskRole::Lead),
        task_id: item.task.id,
        request_id: item.task.request_id,
        number: item.number,
        matter: item.task.matter_code,
        unit: item.task.unit,
        claimed_by: item.task.claimed_by,
        due_at: item.due_at.map(|t| t.and_utc()),
    }
}

fn clerk_unit(principal: &Principal) -> Result<UnitCode, ApiError> {
    match principal.actor {
        Actor::Clerk(unit) => Ok(unit),
        _ => Err(ApiError::forbidden("the queue belongs to a unit's clerks")),
    }
}

/// The caller's unit's open tasks, earliest due first (clerks).
#[utoipa::path(
    tag = "queue",
    operation_id = "queue_list",
    security(("bearer" = [])),
    responses((status = 200, description = "The queue", body = Queue), crate::routes::AuthFailures)
)]
#[get("/api/v1/queue")]
pub async fn list(principal: Principal, db: web::Data<Database>) -> Result<HttpResponse, ApiError> {
    let unit = clerk_unit(&principal)?;
    let items = db
        .run(move |conn| Ok(workflow::queue(conn, unit, LISTED)?))
        .await?;
    Ok(HttpResponse::Ok().json(Queue {
        items: items.into_iter().map(entry).collect(),
    }))
}

/// Take the next waiting task of the caller's unit (clerks). Two clerks never get the same
/// one. 204 when nothing is waiting.
#[utoipa::path(
    tag = "queue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Taken", body = Claimed,
         headers(("ETag" = String, description = "The request's revision, for If-Match (as GET /api/v1/requests/{id} gives it)"))),
        (status = 204, description = "Nothing is waiting"),
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/queue/next")]
pub async fn next(
    principal: Principal,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
) -> Result<HttpResponse, ApiError> {
    let unit = clerk_unit(&principal)?;
    let clerk = principal.subject.clone();
    let now = Utc::now().trunc_subsecs(6).naive_utc();
    let claimed = db
        .run(move |conn| workflow::claim_next(conn, unit, &clerk, now))
        .await?;
    Ok(match claimed {
        Some((item, record)) => HttpResponse::Ok()
            .insert_header((header::ETAG, etag(&record)))
            .json(Claimed {
                task: entry(item),
                request: view(&record, calendars.current().horizon()),
            }),
        None => HttpResponse::NoContent().finish(),
    })
}
