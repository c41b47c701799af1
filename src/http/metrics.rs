//! Prometheus metrics: request counts and latency histograms by route pattern and status, and
//! the SLA detector's marks and detection delay, the mail sender's attempts, and the working
//! calendar's days left to its horizon with the horizon notices this instance checked.
//!
//! Each application owns its registry (no global state), so tests can run several servers in
//! one process. Routes are labelled by their pattern (`/api/v1/requests/{id}`), never by the
//! raw path, so the number of series stays bounded; unmatched paths share one label.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds, from 1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The HTTP metrics of one application.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    sla_marks: IntCounterVec,
    sla_delay: prometheus::Histogram,
    mail_attempts: IntCounterVec,
    calendar_horizon: IntGaugeVec,
    horizon_notices: IntCounterVec,
}

impl Metrics {
    /// Registers the collectors in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("mashangban".into()), None)
            .expect("static registry prefix is valid");
        let labels = &["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests served"),
            labels,
        )
        .expect("static metric definition is valid");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request head to response head",
            )
            .buckets(BUCKETS.to_vec()),
            labels,
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(requests.clone()))
            .expect("first registration");
        registry
            .register(Box::new(latency.clone()))
            .expect("first registration");
        let sla_marks = IntCounterVec::new(
            Opts::new(
                "sla_marks_total",
                "Clock warnings and breaches marked by this instance's detector",
            ),
            &["change"],
        )
        .expect("static metric definition is valid");
        let sla_delay = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "sla_detection_delay_seconds",
                "From a clock's due time to the breach being marked",
            )
            .buckets(BUCKETS.to_vec()),
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(sla_marks.clone()))
            .expect("first registration");
        registry
            .register(Box::new(sla_delay.clone()))
            .expect("first registration");
        let mail_attempts = IntCounterVec::new(
            Opts::new(
                "mail_attempts_total",
                "Delivery attempts of outbox mails by this instance's sender, by outcome",
            ),
            &["outcome"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(mail_attempts.clone()))
            .expect("first registration");
        let calendar_horizon = IntGaugeVec::new(
            Opts::new(
                "calendar_horizon_days",
                "Days from today to the calendar's last configured day (negative once passed); \
                 due times after it are provisional",
            ),
            &["calendar"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(calendar_horizon.clone()))
            .expect("first registration");
        let horizon_notices = IntCounterVec::new(
            Opts::new(
                "calendar_horizon_notices_total",
                "Horizon mails to the administrators this instance wrote (`written`) or found \
                 written already (`already_written`)",
            ),
            &["outcome"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(horizon_notices.clone()))
            .expect("first registration");
        Self {
            registry,
            requests,
            latency,
            sla_marks,
            sla_delay,
            mail_attempts,
            calendar_horizon,
            horizon_notices,
        }
    }

    /// Counts one served request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// Counts one mark of the SLA detector (`warned`, `breached`); for a breach, how long after
    /// the due time it was marked.
    pub fn sla_marked(&self, change: &str, delay_seconds: Option<f64>) {
        self.sla_marks.with_label_values(&[change]).inc();
        if let Some(delay) = delay_seconds {
            self.sla_delay.observe(delay.max(0.0));
        }
    }

    /// Counts one delivery attempt of the mail sender: `sent`, `retry` or `dead`.
    pub fn mail_attempt(&self, outcome: &str) {
        self.mail_attempts.with_label_values(&[outcome]).inc();
    }

    /// Sets the days left to `calendar`'s horizon; `None` (no configured year) removes the
    /// series.
    pub fn calendar_horizon(&self, calendar: &str, days_left: Option<i64>) {
        match days_left {
            Some(days) => self
                .calendar_horizon
                .with_label_values(&[calendar])
                .set(days),
            None => {
                let _ = self.calendar_horizon.remove_label_values(&[calendar]);
            }
        }
    }

    /// Counts one horizon check that found the mail due: `written` or `already_written`.
    pub fn horizon_notice(&self, outcome: &str) {
        self.horizon_notices.with_label_values(&[outcome]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buffer).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: times each request and records it under its route pattern.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_string());
        metrics.observe(
            &method,
            &route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_appear_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.observe("GET", "/health/live", 200, 0.003);
        metrics.observe("GET", "/health/live", 200, 0.2);
        let text = metrics.render();
        assert!(text.contains(
            "mashangban_http_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains(
            "mashangban_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health/live\",status=\"200\",le=\"0.005\"} 1"
        ), "{text}");
    }

    #[test]
    fn the_horizon_gauge_is_set_and_removed() {
        let metrics = Metrics::new();
        metrics.calendar_horizon("cn-shanghai", Some(32));
        let text = metrics.render();
        assert!(
            text.contains("mashangban_calendar_horizon_days{calendar=\"cn-shanghai\"} 32"),
            "{text}"
        );
        metrics.calendar_horizon("cn-shanghai", None);
        assert!(!metrics.render().contains("calendar=\"cn-shanghai\""));
    }
}
