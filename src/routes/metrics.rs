//! Prometheus scrape endpoint (outside `/api/v1`). Who may read it is configured in
//! `[metrics]` ([`MetricsAccess`], `docs/security.md`).

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::Utc;

use crate::db::Database;
use crate::db::calendars::Calendars;
use crate::db::notifications;
use crate::error::ApiError;
use crate::http::Metrics;
use crate::http::metrics::MetricsAccess;

/// Request counts and latency histograms by route and status, the SLA detector's marks, the
/// mail sender's attempts, the days left to the working calendar's horizon
/// (`mashangban_calendar_horizon_days{calendar}`), the outbox's pending and dead mails
/// (`mashangban_outbox_pending`, `mashangban_outbox_dead`; these three computed at the scrape),
/// `mashangban_build_info{version}` and the standard `process_*` metrics, in Prometheus text
/// format.
///
/// With `metrics.token` set, the scrape must send it as a bearer token (401 otherwise); with
/// `metrics.bind` set, the metrics are served on that listener only and this one answers 404.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4",
         body = String, content_type = "text/plain"),
        (status = 401, description = "`metrics.token` is set and the scrape did not send it",
         body = crate::error::Problem, content_type = "application/problem+json",
         headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"metrics\"`"))),
        (status = 404, description = "`metrics.bind` is set: the metrics are served there",
         body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
#[get("/metrics")]
pub async fn metrics(
    req: HttpRequest,
    access: web::Data<MetricsAccess>,
    metrics: web::Data<Metrics>,
    calendars: web::Data<Calendars>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    access.check(&req)?;
    let calendar = calendars.current();
    metrics.calendar_horizon(calendar.code(), calendar.horizon().days_left(Utc::now()));
    // A scrape still answers when the database does not: without the outbox gauges.
    let outbox = match database.run(|conn| Ok(notifications::counts(conn)?)).await {
        Ok(counts) => Some(counts),
        Err(error) => {
            tracing::warn!(%error, "metrics: cannot count the outbox");
            None
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render(outbox)))
}
