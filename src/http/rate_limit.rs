//! Rate limits per enterprise, per official and per client address, shared by every instance
//! on one database.
//!
//! Each request falls in one bucket: an enterprise's token counts for its `uscc` (all its
//! users together), an official's token (clerk, supervisor, administrator) for its `sub`, and
//! a request without a valid token for its client address (IPv6 by /64). Health and metrics
//! are never counted. The count is a fixed window of `rate_limit.window_secs`. On PostgreSQL it
//! is kept in the `rate_limits` table ([`crate::db::rate_limits::hit`]: one upsert on the
//! blocking pool), so several instances on one database share it. On SQLite — one instance per
//! database file, the zero-setup deployment — it is kept in the process ([`LocalCounts`]): an
//! upsert per request would make every read a write, queued behind SQLite's single writer.
//!
//! A token verified here is kept in the request's extensions, so the handler's
//! [`crate::auth::Principal`] extractor does not verify it a second time.
//!
//! Answers carry the headers of draft-ietf-httpapi-ratelimit-headers-10 (September 2025):
//! `RateLimit-Policy: "enterprise";q=600;w=60` (the quota and window of the bucket's class)
//! and `RateLimit: "enterprise";r=12;t=41` (requests left, seconds until the window ends). One
//! request past the quota gets `429 too_many_requests` with `Retry-After` (RFC 9110) set to
//! the window's end, and does not reach the handler.
//!
//! When the database does not answer, the request goes through uncounted (the limiter fails
//! open; the handler then reports the database itself): an outage of the counter store must
//! not take the service down with it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::auth::{Actor, Authenticator, Verified};
use crate::config::RateLimitSettings;
use crate::db::rate_limits::{self, Hit};
use crate::db::{Backend, Database};
use crate::error::{ApiError, ErrorCode};

/// `RateLimit-Policy`: the quota policy of the caller's bucket.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: what is left of the caller's quota now.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Paths never limited: probes and scrapes must see the server as it is.
const EXEMPT: &[&str] = &["/health/live", "/health/ready", "/metrics"];

/// Longest bucket key stored as is; longer ones (a very long token subject) are hashed.
const KEY_MAX: usize = 160;

/// The three kinds of caller, each with its own quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An enterprise, by the token's `uscc`.
    Enterprise,
    /// A clerk, supervisor or administrator, by the token's `sub`.
    Official,
    /// A request without a valid token, by client address.
    Address,
}

impl Class {
    /// The policy's name in the headers, and the bucket key's prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Enterprise => "enterprise",
            Class::Official => "official",
            Class::Address => "address",
        }
    }

    /// Requests per window of this class.
    pub fn quota(self, settings: &RateLimitSettings) -> u32 {
        match self {
            Class::Enterprise => settings.enterprise,
            Class::Official => settings.official,
            Class::Address => settings.address,
        }
    }
}

/// Whom a request is counted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The class, which sets the quota.
    pub class: Class,
    /// The row key: `enterprise:<uscc>`, `official:<sub>`, `address:<ip>`.
    pub key: String,
}

impl Bucket {
    fn new(class: Class, id: &str) -> Self {
        let key = format!("{}:{id}", class.as_str());
        let key = if key.len() <= KEY_MAX {
            key
        } else {
            let digest = Sha256::digest(id.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}:sha256:{hex}", class.as_str())
        };
        Self { class, key }
    }

    /// The bucket of a verified caller.
    pub fn of_actor(actor: &Actor, subject: &str) -> Self {
        match actor {
            Actor::Enterprise(uscc) => Self::new(Class::Enterprise, uscc.as_str()),
            Actor::Clerk(_) | Actor::Supervisor(_) | Actor::Admin => {
                Self::new(Class::Official, subject)
            }
        }
    }

    /// The bucket of a client address; IPv6 addresses count by their /64 (one host has many).
    pub fn of_address(address: IpAddr) -> Self {
        let id = match address {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        };
        Self::new(Class::Address, &id)
    }
}

/// Where a fixed window of `window` seconds stands at `now` (Unix seconds).
fn window_start(now: i64, window: i64) -> i64 {
    now - now.rem_euclid(window)
}

/// Buckets held before the windows that have ended are swept out of [`LocalCounts`].
const LOCAL_SWEEP_AT: usize = 10_000;

/// The counts of a single instance, in its memory: the SQLite deployment's counter store.
#[derive(Debug, Default)]
pub struct LocalCounts {
    inner: Mutex<Local>,
}

#[derive(Debug, Default)]
struct Local {
    /// Bucket key → (window start, requests in it).
    windows: HashMap<String, (i64, i64)>,
    /// Size at which the ended windows are swept next (doubles while they are all current, so
    /// a flood of new buckets costs a sweep per doubling, not per request).
    sweep_at: usize,
}

impl LocalCounts {
    /// Counts one request of `bucket` in the window starting at `window_start`, the way
    /// [`rate_limits::hit`] does in the database: a newer window starts again at one, and a
    /// request stamped with an older window counts in the newer one.
    pub fn hit(&self, bucket: &str, window_start: i64) -> Hit {
        let mut local = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if local.windows.len() >= local.sweep_at.max(LOCAL_SWEEP_AT) {
            local.windows.retain(|_, (start, _)| *start >= window_start);
            local.sweep_at = local.windows.len().saturating_mul(2);
        }
        let entry = local
            .windows
            .entry(bucket.to_owned())
            .or_insert((window_start, 0));
        if entry.0 >= window_start {
            entry.1 += 1;
        } else {
            *entry = (window_start, 1);
        }
        Hit {
            window_start: entry.0,
            hits: entry.1,
        }
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        let local = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        local.windows.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The headers of an answer: `RateLimit-Policy`, `RateLimit`, and for a refusal
/// `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the request may go on.
    pub allowed: bool,
    /// `RateLimit-Policy` value.
    pub policy: String,
    /// `RateLimit` value.
    pub state: String,
    /// Seconds until the window ends (at least 1).
    pub reset: i64,
}

impl Verdict {
    /// The verdict on the `hits`-th request of a window that started at `start`, at `now`.
    pub fn new(
        class: Class,
        settings: &RateLimitSettings,
        hits: i64,
        start: i64,
        now: i64,
    ) -> Self {
        let quota = i64::from(class.quota(settings));
        let window = i64::from(settings.window_secs);
        let reset = (start + window - now).clamp(1, window);
        let name = class.as_str();
        Self {
            allowed: hits <= quota,
            policy: format!("\"{name}\";q={quota};w={window}"),
            state: format!("\"{name}\";r={};t={reset}", (quota - hits).max(0)),
            reset,
        }
    }

    fn headers(&self) -> [(HeaderName, HeaderValue); 2] {
        let value = |text: &str| HeaderValue::from_str(text).expect("ASCII header value");
        [
            (RATELIMIT_POLICY, value(&self.policy)),
            (RATELIMIT, value(&self.state)),
        ]
    }
}

/// The client address of `req`: the connection's peer, or with `trust_forwarded_for` the last
/// `X-Forwarded-For` entry (the one the trusted proxy appended).
fn client_address(req: &ServiceRequest, settings: &RateLimitSettings) -> Option<IpAddr> {
    if settings.trust_forwarded_for {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.peer_addr().map(|peer| peer.ip())
}

/// The bucket of `req`: its verified token's, else its client address's.
fn bucket_of(req: &ServiceRequest, settings: &RateLimitSettings) -> Option<Bucket> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let verified = token.and_then(|token| {
        req.app_data::<web::Data<Authenticator>>()?
            .verify(token)
            .ok()
    });
    match verified {
        Some(principal) => {
            let bucket = Bucket::of_actor(&principal.actor, &principal.subject);
            req.extensions_mut().insert(Verified(principal));
            Some(bucket)
        }
        None => client_address(req, settings).map(Bucket::of_address),
    }
}

/// Middleware: counts the request in its bucket; past the quota answers 429, otherwise adds
/// the RateLimit headers to the answer.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let settings = req
        .app_data::<web::Data<RateLimitSettings>>()
        .map(|s| *s.get_ref())
        .filter(|s| s.enabled);
    let database = req.app_data::<web::Data<Database>>().cloned();
    let (Some(settings), Some(database)) = (settings, database) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if EXEMPT.contains(&req.path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(bucket) = bucket_of(&req, &settings) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let now = Utc::now().timestamp();
    let start = window_start(now, i64::from(settings.window_secs));
    let local = req.app_data::<web::Data<LocalCounts>>().cloned();
    let counted = match (database.backend(), local) {
        (Backend::Sqlite, Some(local)) => Ok(local.hit(&bucket.key, start)),
        _ => {
            let key = bucket.key.clone();
            database
                .run(move |conn| Ok(rate_limits::hit(conn, &key, start)?))
                .await
        }
    };
    let hit = match counted {
        Ok(hit) => hit,
        Err(error) => {
            tracing::warn!(%error, bucket = %bucket.key, "rate limit not counted; request let through");
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
    };
    let verdict = Verdict::new(bucket.class, &settings, hit.hits, hit.window_start, now);
    if !verdict.allowed {
        tracing::info!(bucket = %bucket.key, hits = hit.hits, "rate limited");
        let mut error = ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "more than {} requests in {} seconds ({} limit); retry in {} seconds",
                bucket.class.quota(&settings),
                settings.window_secs,
                bucket.class.as_str(),
                verdict.reset
            ),
        )
        .with_header(
            header::RETRY_AFTER,
            HeaderValue::from_str(&verdict.reset.to_string()).expect("digits"),
        );
        for (name, value) in verdict.headers() {
            error = error.with_header(name, value);
        }
        return Ok(req.into_response(error.error_response()));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    for (name, value) in verdict.headers() {
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RateLimitSettings {
        RateLimitSettings {
            enabled: true,
            window_secs: 60,
            enterprise: 3,
            official: 5,
            address: 2,
            trust_forwarded_for: false,
        }
    }

    #[test]
    fn windows_are_aligned() {
        assert_eq!(window_start(1_000_000_019, 60), 999_999_960);
        assert_eq!(window_start(120, 60), 120);
        assert_eq!(window_start(179, 60), 120);
    }

    #[test]
    fn verdicts_count_down_and_refuse_past_the_quota() {
        let s = settings();
        let v = Verdict::new(Class::Enterprise, &s, 1, 120, 150);
        assert!(v.allowed);
        assert_eq!(v.policy, "\"enterprise\";q=3;w=60");
        assert_eq!(v.state, "\"enterprise\";r=2;t=30");
        let v = Verdict::new(Class::Enterprise, &s, 3, 120, 179);
        assert!(v.allowed);
        assert_eq!(v.state, "\"enterprise\";r=0;t=1");
        let v = Verdict::new(Class::Enterprise, &s, 4, 120, 150);
        assert!(!v.allowed);
        assert_eq!((v.state.as_str(), v.reset), ("\"enterprise\";r=0;t=30", 30));
        // A lagging clock never gives a reset past the window.
        assert_eq!(Verdict::new(Class::Address, &s, 1, 180, 150).reset, 60);
    }

    #[test]
    fn local_counts_follow_the_database_rule() {
        let counts = LocalCounts::default();
        assert_eq!(counts.hit("a", 120).hits, 1);
        assert_eq!(counts.hit("a", 120).hits, 2);
        assert_eq!(counts.hit("b", 120).hits, 1);
        // A new window starts again at one.
        let hit = counts.hit("a", 180);
        assert_eq!((hit.window_start, hit.hits), (180, 1));
        // A request stamped with an older window (a lagging clock) counts in the newer one.
        let hit = counts.hit("a", 120);
        assert_eq!((hit.window_start, hit.hits), (180, 2));
    }

    #[test]
    fn local_counts_sweep_ended_windows_and_stay_bounded() {
        let counts = LocalCounts::default();
        for i in 0..LOCAL_SWEEP_AT {
            counts.hit(&format!("old{i}"), 60);
        }
        assert_eq!(counts.len(), LOCAL_SWEEP_AT);
        // The next request of a new window sweeps every bucket of the ended one.
        counts.hit("new", 120);
        assert_eq!(counts.len(), 1);
        // A flood within one window is swept per doubling, and nothing current is lost.
        for i in 0..(3 * LOCAL_SWEEP_AT) {
            counts.hit(&format!("now{i}"), 120);
        }
        assert_eq!(counts.len(), 3 * LOCAL_SWEEP_AT + 1);
        assert_eq!(counts.hit("new", 120).hits, 2);
    }

    #[test]
    fn buckets_name_their_caller() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(Bucket::of_address(v4).key, "address:203.0.113.7");
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(Bucket::of_address(mapped).key, "address:203.0.113.7");
        let v6a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(Bucket::of_address(v6a), Bucket::of_address(v6b));
        assert_eq!(Bucket::of_address(v6a).key, "address:2001:db8:1:2::/64");
        let long = "x".repeat(500);
        let bucket = Bucket::of_actor(&Actor::Admin, &long);
        assert!(bucket.key.starts_with("official:sha256:") && bucket.key.len() < KEY_MAX);
    }
}
