//! Prometheus metrics: request counts and latency histograms by route pattern and status, and
//! the SLA detector's marks and detection delay, the mail sender's attempts, and the working
//! calendar's days left to its horizon with the horizon notices this instance checked.
//!
//! Besides, the standard `process_*` metrics (CPU, resident memory, open file descriptors,
//! start time; Linux), `mashangban_build_info{version}` and, read at each scrape, the outbox's
//! `mashangban_outbox_pending` and `mashangban_outbox_dead`.
//!
//! Each application owns its registries (no global state), so tests can run several servers
//! in one process. Every label has a bounded set of values, whatever clients send: routes are
//! labelled by their pattern (`/api/v1/requests/{id}`), never by the raw path, and unmatched
//! paths share one label; methods outside the standard nine share the label `OTHER`.
//!
//! Who may read `/metrics` is [`MetricsAccess`]'s business (see `docs/security.md`).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use sha2::{Digest, Sha256};

use crate::db::notifications::OutboxCounts;
use crate::error::{ApiError, ErrorCode};
use crate::http::request_line::Refused;

/// Latency buckets in seconds, from 1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The HTTP metrics of one application.
#[derive(Clone)]
pub struct Metrics {
    /// Ours, every name prefixed `mashangban_`.
    registry: Registry,
    /// The standard `process_*` metrics, under their standard names.
    process: Registry,
    /// The outbox gauges: gathered only when the scrape could read them.
    outbox: Registry,
    outbox_pending: IntGauge,
    outbox_dead: IntGauge,
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
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "Always 1; the version of the running binary"),
            &["version"],
        )
        .expect("static metric definition is valid");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry
            .register(Box::new(build_info))
            .expect("first registration");

        let process = Registry::new();
        #[cfg(target_os = "linux")]
        process
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("first registration");

        let outbox = Registry::new_custom(Some("mashangban".into()), None)
            .expect("static registry prefix is valid");
        let outbox_pending = IntGauge::new(
            "outbox_pending",
            "Notification mails waiting to be sent (all instances; read at the scrape)",
        )
        .expect("static metric definition is valid");
        let outbox_dead = IntGauge::new(
            "outbox_dead",
            "Notification mails parked after their last attempt failed (read at the scrape)",
        )
        .expect("static metric definition is valid");
        for gauge in [&outbox_pending, &outbox_dead] {
            outbox
                .register(Box::new(gauge.clone()))
                .expect("first registration");
        }
        Self {
            registry,
            process,
            outbox,
            outbox_pending,
            outbox_dead,
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

    /// The Prometheus text exposition of every metric. The outbox gauges appear only with
    /// `outbox` (the scrape's reading): when the database does not answer they are absent,
    /// which a rule can tell from zero, rather than stale.
    pub fn render(&self, outbox: Option<OutboxCounts>) -> String {
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        if let Some(counts) = outbox {
            self.outbox_pending.set(counts.pending);
            self.outbox_dead.set(counts.dead);
            families.extend(self.outbox.gather());
        }
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut buffer)
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
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let request = response.request();
        let route = if request.extensions().contains::<Refused>() {
            // Refused for its request line: not worth a route lookup.
            None
        } else {
            request.match_pattern()
        };
        let route = route.unwrap_or_else(|| "unmatched".to_string());
        metrics.observe(
            method,
            &route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

/// The label of `method`: its name for the standard methods (RFC 9110 and `PATCH`), `OTHER`
/// for anything else, so made-up methods cannot grow the number of series.
pub fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    STANDARD
        .into_iter()
        .find(|m| *m == method.as_str())
        .unwrap_or("OTHER")
}

/// Who may read `/metrics` on one listener (`[metrics]`, see `docs/security.md`).
#[derive(Clone)]
pub enum MetricsAccess {
    /// Served here; with a token, only to scrapes that send it as a bearer token.
    Here {
        /// SHA-256 of `metrics.token`, when one is set (compared digest to digest, so the
        /// comparison's time says nothing about the token).
        token_digest: Option<[u8; 32]>,
    },
    /// Served on the separate `metrics.bind` listener: 404 on this one.
    Elsewhere,
}

impl MetricsAccess {
    /// Served on this listener, requiring `token` when not empty.
    pub fn here(token: &str) -> Self {
        Self::Here {
            token_digest: (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into()),
        }
    }

    /// Whether `req` may read the metrics here: `Ok`, 404 (not served here) or 401.
    pub fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let expected = match self {
            Self::Elsewhere => return Err(ApiError::not_found("no resource at /metrics")),
            Self::Here { token_digest: None } => return Ok(()),
            Self::Here {
                token_digest: Some(digest),
            } => digest,
        };
        let challenge = HeaderValue::from_static("Bearer realm=\"metrics\"");
        let sent = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(sent) = sent else {
            return Err(ApiError::new(
                ErrorCode::MissingToken,
                "the metrics need the bearer token configured as metrics.token",
            )
            .with_header(WWW_AUTHENTICATE, challenge));
        };
        let digest: [u8; 32] = Sha256::digest(sent.trim().as_bytes()).into();
        if digest != *expected {
            return Err(ApiError::new(
                ErrorCode::InvalidToken,
                "the metrics token is not accepted",
            )
            .with_header(WWW_AUTHENTICATE, challenge));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "OTHER");
    }

    #[test]
    fn build_info_and_process_metrics_are_exposed() {
        let text = Metrics::new().render(None);
        assert!(
            text.contains(&format!(
                "mashangban_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(&format!("\n{name} ")), "{name}: {text}");
        }
        assert!(!text.contains("outbox"), "{text}");
        let text = Metrics::new().render(Some(OutboxCounts {
            pending: 3,
            dead: 1,
        }));
        assert!(text.contains("mashangban_outbox_pending 3"), "{text}");
        assert!(text.contains("mashangban_outbox_dead 1"), "{text}");
    }

    #[test]
    fn observations_appear_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.observe("GET", "/health/live", 200, 0.003);
        metrics.observe("GET", "/health/live", 200, 0.2);
        let text = metrics.render(None);
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
        let text = metrics.render(None);
        assert!(
            text.contains("mashangban_calendar_horizon_days{calendar=\"cn-shanghai\"} 32"),
            "{text}"
        );
        metrics.calendar_horizon("cn-shanghai", None);
        assert!(!metrics.render(None).contains("calendar=\"cn-shanghai\""));
    }
}
