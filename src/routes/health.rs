//! Liveness and readiness probes (public).

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::Database;
use crate::error::ApiError;

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

/// The process can serve requests: the database answers.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Database not answering", body = crate::error::Problem,
         content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait before retrying")))
    )
)]
#[get("/health/ready")]
pub async fn ready(db: web::Data<Database>) -> Result<HttpResponse, ApiError> {
    db.ping().await?;
    Ok(no_store(Health {
        status: "ok".into(),
        database: Some(db.backend().to_string()),
    }))
}
