//! Prometheus scrape endpoint (public, outside `/api/v1`).

use actix_web::{HttpResponse, get, web};
use chrono::Utc;

use crate::db::calendars::Calendars;
use crate::http::Metrics;

/// Request counts and latency histograms by route and status, the SLA detector's marks, the
/// mail sender's attempts, and the days left to the working calendar's horizon
/// (`mashangban_calendar_horizon_days{calendar}`, computed at the scrape), in Prometheus text
/// format.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
               body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(metrics: web::Data<Metrics>, calendars: web::Data<Calendars>) -> HttpResponse {
    let calendar = calendars.current();
    metrics.calendar_horizon(calendar.code(), calendar.horizon().days_left(Utc::now()));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}
