//! `GET /api/v1/me`: who the bearer token speaks for.

use actix_web::{HttpResponse, get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Actor, Principal, Role};
use crate::domain::UnitCode;

/// The caller as the server understood the token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The token's subject.
    pub subject: String,
    /// The role.
    pub role: Role,
    /// The enterprise's unified social credit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "91350100M000100Y43")]
    pub uscc: Option<String>,
    /// The unit of a clerk or unit supervisor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitCode>,
}

/// Echo the verified identity of the caller (any role).
#[utoipa::path(
    tag = "session",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me), crate::routes::AuthFailures)
)]
#[get("/api/v1/me")]
pub async fn me(principal: Principal) -> HttpResponse {
    let (uscc, unit) = match &principal.actor {
        Actor::Enterprise(uscc) => (Some(uscc.to_string()), None),
        Actor::Clerk(unit) => (None, Some(*unit)),
        Actor::Supervisor(unit) => (None, *unit),
        Actor::Admin => (None, None),
    };
    HttpResponse::Ok().json(Me {
        subject: principal.subject.clone(),
        role: principal.actor.role(),
        uscc,
        unit,
    })
}
