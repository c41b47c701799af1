//! Liveness and readiness probes (public).

use actix_web::http::header::{CacheControl, CacheDirective, HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::Database;
use crate::error::{ApiError, ErrorCode};
use crate::http::drain::Drain;

/// Probe answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when healthy.
    #[schema(example = "ok")]
    pub status: String,
    /// The database backend, for readiness.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "sqlite")]
    pub database: Option<String>,
}

fn no_store(body: Health) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(body)
}

/// The process is up and serving HTTP.
#[utoipa::path(tag = "health", responses((status = 200, description = "Alive", body = Health)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    no_store(Health {
        status: "ok".into(),
        database: None,
    })
}

/// The process can serve requests: it is not stopping, and the database answers.
///
/// From SIGTERM or SIGINT on, the answer is 503 `shutting_down` at once (before the database
/// is asked), so a load balancer takes the instance out while its last requests finish.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Stopping (`shutting_down`) or database not answering (`database_unavailable`)", body = crate::error::Problem,
         content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait before retrying")))
    )
)]
#[get("/health/ready")]
pub async fn ready(
    db: web::Data<Database>,
    drain: web::Data<Drain>,
) -> Result<HttpResponse, ApiError> {
    if drain.draining() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "this instance is stopping; send requests to another one",
        )
        .with_header(RETRY_AFTER, HeaderValue::from_static("5")));
    }
    db.ping().await?;
    Ok(no_store(Health {
        status: "ok".into(),
        database: Some(db.backend().to_string()),
    }))
}
