//! The audit trail: a request's timeline, and verification of the whole chain.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::db::{Database, audit};
use crate::error::{ApiError, Problem};
use crate::routes::requests::visible;

/// One event of a request's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Position in the district-wide chain.
    pub seq: i64,
    /// What happened (`intake`, `accept`, …).
    pub action: String,
    /// Who (token subject; the enterprise's code for an intake).
    pub actor: String,
    /// Their role.
    pub role: String,
    /// Their unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// State before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_before: Option<String>,
    /// State after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_after: Option<String>,
    /// Reason and details.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
    /// This event's hash (SHA-256, hex).
    pub hash: String,
}

/// A request's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    /// The request.
    pub request_id: String,
    /// Its events, oldest first.
    pub events: Vec<EventView>,
}

/// The outcome of a chain verification.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    /// `ok` or `broken`.
    #[schema(example = "ok")]
    pub status: String,
    /// Events that verified.
    pub count: i64,
    /// Where the chain breaks, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at_seq: Option<i64>,
    /// What is wrong there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The request's timeline: every change, oldest first (who may read the request may read it).
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The timeline", body = Timeline),
        (status = 404, description = "No such request for this caller", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/requests/{id}/events")]
pub async fn timeline(
    principal: Principal,
    id: web::Path<String>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&principal, &db, id.into_inner()).await?;
    let request_id = record.request.id;
    let lookup = request_id.clone();
    let rows = db
        .run(move |conn| Ok(audit::for_request(conn, &lookup)?))
        .await?;
    let events = rows
        .iter()
        .map(|row| {
            let event = row.to_event();
            EventView {
                seq: event.seq,
                action: event.entry.action,
                actor: event.entry.actor,
                role: event.entry.role,
                unit: event.entry.unit,
                state_before: event.entry.state_before,
                state_after: event.entry.state_after,
                payload: event.entry.payload,
                at: event.entry.at,
                hash: event.hash,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Timeline { request_id, events }))
}

/// Verify the whole audit chain (supervisors and administrators): `ok` with the count, or the
/// first event whose link is broken.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    responses((status = 200, description = "The verification", body = Verification), crate::routes::AuthFailures)
)]
#[get("/api/v1/audit/verify")]
pub async fn verify(
    principal: Principal,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Supervisor, Role::Admin])?;
    let outcome = db.run(|conn| Ok(audit::verify(conn)?)).await?;
    let body = match outcome {
        Ok(count) => Verification {
            status: "ok".into(),
            count,
            broken_at_seq: None,
            problem: None,
        },
        Err(broken) => Verification {
            status: "broken".into(),
            count: broken.seq - 1,
            broken_at_seq: Some(broken.seq),
            problem: Some(broken.problem),
        },
    };
    Ok(HttpResponse::Ok().json(body))
}
