//! `GET /api/v1/instances`: server processes that ran against this database (admin).

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::db::{Database, instances};
use crate::error::ApiError;

/// How many starts the listing shows.
const LISTED: i64 = 50;

/// One server start.
#[derive(Debug, Serialize, ToSchema)]
pub struct Instance {
    /// Instance id (UUID v7).
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// Process id.
    pub pid: i64,
    /// Binary version.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it stopped gracefully; absent while running or after a crash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
}

impl From<instances::ServiceInstance> for Instance {
    fn from(row: instances::ServiceInstance) -> Self {
        Self {
            id: row.id,
            hostname: row.hostname,
            pid: row.pid,
            version: row.version,
            started_at: row.started_at.and_utc(),
            stopped_at: row.stopped_at.map(|t| t.and_utc()),
        }
    }
}

/// The 50 most recent server starts, newest first (admin only).
#[utoipa::path(
    tag = "operations",
    operation_id = "instances_list",
    security(("bearer" = [])),
    responses((status = 200, description = "Recent starts", body = Vec<Instance>), crate::routes::AuthFailures)
)]
#[get("/api/v1/instances")]
pub async fn list(principal: Principal, db: web::Data<Database>) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let rows = db.run(|conn| Ok(instances::recent(conn, LISTED)?)).await?;
    let body: Vec<Instance> = rows.into_iter().map(Instance::from).collect();
    Ok(HttpResponse::Ok().json(body))
}
