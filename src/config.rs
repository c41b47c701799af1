//! Typed settings, layered from `config/default.toml` (compiled in), an optional file and
//! `MASHANGBAN_<SECTION>_<KEY>` environment variables.
//!
//! Every struct denies unknown fields, so a misspelt key stops the server with a message
//! naming it instead of being silently ignored. Values that parse but make no sense (a bind
//! address without a port, an unknown URL scheme, a short secret) are checked in
//! [`Settings::validate`].
//!
//! Secrets (`jwt.secret`, `mail.password`, `metrics.token`, `database.url`, which may carry a
//! password) can also be read from a file named by `MASHANGBAN_<SECTION>_<KEY>_FILE`, as
//! container orchestrators mount them; see [`SECRET_FILE_KEYS`] and `docs/security.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

use crate::db::DatabaseUrl;
use crate::domain::{Channel, Uscc};

/// The default configuration, as shipped in `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "MASHANGBAN_";

/// Variables with the prefix that are not configuration keys.
const ENV_NOT_KEYS: &[&str] = &["config"];

/// Prefix of the clerks' client's variables (`MASHANGBAN_CLIENT_CONFIG`,
/// `MASHANGBAN_CLIENT_CA_FILE`): not the server's configuration either.
const ENV_CLIENT_PREFIX: &str = "client_";

/// Short environment names for keys that live in a section.
const ENV_ALIASES: &[(&str, &str)] = &[("bind", "server.bind")];

/// Sections of the configuration; an environment variable `MASHANGBAN_<SECTION>_<KEY>` maps to
/// `[section] key`.
const SECTIONS: &[&str] = &[
    "server",
    "database",
    "jwt",
    "catalog",
    "calendar",
    "log",
    "open311",
    "sla",
    "rating",
    "mail",
    "metrics",
    "rate_limit",
    "cors",
    "appointments",
];

/// Keys whose value may come from a file: `MASHANGBAN_<VAR>_FILE=/run/secrets/…` sets the key
/// to the file's content without its trailing newline. Setting both the variable and its
/// `_FILE` twin is refused, so it is never unclear which one is used.
pub const SECRET_FILE_KEYS: &[(&str, &str)] = &[
    ("JWT_SECRET", "jwt.secret"),
    ("MAIL_PASSWORD", "mail.password"),
    ("METRICS_TOKEN", "metrics.token"),
    ("DATABASE_URL", "database.url"),
];

/// All settings of one server process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP listener.
    pub server: ServerSettings,
    /// Database connection.
    pub database: DatabaseSettings,
    /// Token validation and issuing.
    pub jwt: JwtSettings,
    /// The district catalog.
    pub catalog: FileSettings,
    /// The working calendar.
    pub calendar: CalendarSettings,
    /// Logging.
    pub log: LogSettings,
    /// The Open311 GeoReport v2 interface.
    pub open311: Open311Settings,
    /// The SLA engine.
    pub sla: SlaSettings,
    /// Notification mail: SMTP or `.eml` files, and the sender worker.
    pub mail: MailSettings,
    /// Ratings and rectification.
    pub rating: RatingSettings,
    /// Who may read `/metrics`, and where.
    pub metrics: MetricsSettings,
    /// Rate limits per enterprise, official and client address.
    pub rate_limit: RateLimitSettings,
    /// Cross-origin requests from browser portals (off unless origins are listed).
    pub cors: CorsSettings,
    /// Appointments (统一预约): the hall file, booking limits and the no-show/reminder worker.
    pub appointments: AppointmentSettings,
}

/// `[appointments]`: the hall's counters and the booking rules (see `docs/appointments.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointmentSettings {
    /// Path of the hall file (counters, matters, hours, slots); empty for the compiled-in
    /// `config/appointments.toml`.
    pub file: String,
    /// How many days after today slots are offered (1 to 366).
    pub days_ahead: u32,
    /// Most bookings (not cancelled) one enterprise holds in one week, Monday to Sunday.
    pub weekly_limit: u32,
    /// Minutes before a slot's start after which the booking can no longer be cancelled or
    /// moved.
    pub cutoff_minutes: u32,
    /// Minutes after a slot's end after which a booking not checked in is a no-show.
    pub grace_minutes: u32,
    /// Minutes before a slot's start from which a clerk may check the visitor in.
    pub check_in_early_minutes: u32,
    /// Whether this instance runs the no-show and reminder worker (several may; each no-show
    /// and reminder happens once).
    pub worker: bool,
    /// Longest the worker sleeps between looks, in milliseconds.
    pub tick_ms: u64,
    /// Most appointments the worker handles per look.
    pub batch: i64,
}

impl AppointmentSettings {
    /// The hall file, when one is configured.
    pub fn path(&self) -> Option<&Path> {
        file_path(&self.file)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(&str, bool, &str); 7] = [
            (
                "appointments.days_ahead",
                (1..=366).contains(&self.days_ahead),
                "must be 1 to 366",
            ),
            (
                "appointments.weekly_limit",
                (1..=1000).contains(&self.weekly_limit),
                "must be 1 to 1000",
            ),
            (
                "appointments.cutoff_minutes",
                self.cutoff_minutes <= 10_080,
                "must be 0 to 10080 (a week)",
            ),
            (
                "appointments.grace_minutes",
                self.grace_minutes <= 1440,
                "must be 0 to 1440 (a day)",
            ),
            (
                "appointments.check_in_early_minutes",
                self.check_in_early_minutes <= 1440,
                "must be 0 to 1440 (a day)",
            ),
            (
                "appointments.tick_ms",
                (10..=60_000).contains(&self.tick_ms),
                "must be 10 to 60000",
            ),
            (
                "appointments.batch",
                (1..=100_000).contains(&self.batch),
                "must be 1 to 100000",
            ),
        ];
        for (key, ok, why) in checks {
            if !ok {
                return Err(ConfigError::key(key, why));
            }
        }
        Ok(())
    }
}

/// `[metrics]`: where `/metrics` is served and who may read it (see `docs/security.md`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// A separate `host:port` serving only `/metrics` (the main listener then answers 404 for
    /// it); empty: the main listener serves it.
    pub bind: String,
    /// Bearer token every scrape must send; empty: none (a secret: never logged).
    pub token: String,
}

impl fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("bind", &self.bind)
            .field(
                "token",
                &if self.token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

impl MetricsSettings {
    /// The separate listen address, when one is configured.
    pub fn bind_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let bind = self.bind.trim();
        if bind.is_empty() {
            return Ok(None);
        }
        resolve_bind(bind, "metrics.bind").map(Some)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if !self.token.is_empty() {
            if let Some(weakness) = crate::auth::secret::weakness(&self.token) {
                return Err(ConfigError::key("metrics.token", weakness));
            }
        }
        Ok(())
    }
}

/// `[rate_limit]`: how many requests each caller may make per window (see
/// `docs/security.md`). Counted in the database, so several instances on one database
/// share the counts.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Whether requests are limited at all.
    pub enabled: bool,
    /// Length of the fixed window, in seconds.
    pub window_secs: u32,
    /// Requests per window of one enterprise (the token's `uscc`), all its users together.
    pub enterprise: u32,
    /// Requests per window of one official: a clerk, supervisor or administrator (the token's
    /// `sub`).
    pub official: u32,
    /// Requests per window of one client address without a valid token (catalog, Open311,
    /// docs; health and metrics are never limited). IPv6 addresses count by /64.
    pub address: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (set by a reverse proxy
    /// in front of every instance), not from the connection. Only behind such a proxy: a
    /// client could otherwise choose its own address.
    pub trust_forwarded_for: bool,
}

impl RateLimitSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=86_400).contains(&self.window_secs) {
            return Err(ConfigError::key(
                "rate_limit.window_secs",
                "must be 1 to 86400",
            ));
        }
        for (key, quota) in [
            ("rate_limit.enterprise", self.enterprise),
            ("rate_limit.official", self.official),
            ("rate_limit.address", self.address),
        ] {
            if quota == 0 {
                return Err(ConfigError::key(
                    key,
                    "must be at least 1 (set rate_limit.enabled = false to turn limits off)",
                ));
            }
        }
        Ok(())
    }
}

/// `[cors]`: which browser origins may call the API cross-origin (see
/// `docs/security.md`). No origin listed (the default): no CORS headers at all, and a
/// preflight is not answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins allowed, exactly as a browser sends them: `https://portal.example.gov.cn`
    /// (scheme, host, optional port; no path, no `*`).
    pub allowed_origins: Vec<String>,
    /// Methods a preflight may ask for.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for.
    pub allowed_headers: Vec<String>,
    /// Response headers the portal's scripts may read.
    pub exposed_headers: Vec<String>,
    /// Seconds a browser may cache a preflight's answer.
    pub max_age_secs: u32,
}

impl CorsSettings {
    /// Whether any origin is allowed (CORS is on).
    pub fn enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }

    /// Checks that origins are origins, methods methods and headers header names.
    fn validate(&self) -> Result<(), ConfigError> {
        for origin in &self.allowed_origins {
            let bad = |why: &str| {
                ConfigError::key(
                    "cors.allowed_origins",
                    format!("`{origin}` {why}; write an origin like https://portal.example.gov.cn"),
                )
            };
            let url = url::Url::parse(origin).map_err(|e| bad(&format!("is not a URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad("is not http or https"));
            }
            if url.origin().ascii_serialization() != *origin {
                return Err(bad(
                    "is not an origin alone (no path, query, user, trailing slash or `*`)",
                ));
            }
        }
        for method in &self.allowed_methods {
            actix_web::http::Method::from_bytes(method.as_bytes()).map_err(|_| {
                ConfigError::key(
                    "cors.allowed_methods",
                    format!("`{method}` is not a method"),
                )
            })?;
        }
        for (key, names) in [
            ("cors.allowed_headers", &self.allowed_headers),
            ("cors.exposed_headers", &self.exposed_headers),
        ] {
            for name in names {
                actix_web::http::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| ConfigError::key(key, format!("`{name}` is not a header name")))?;
            }
        }
        if self.max_age_secs > 86_400 {
            return Err(ConfigError::key("cors.max_age_secs", "must be 0 to 86400"));
        }
        Ok(())
    }
}

/// `[rating]`: the rectification a bad rating opens.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingSettings {
    /// Working days for the unit to contact the enterprise.
    pub contact_days: u32,
    /// Working days for the unit to rectify and close the case.
    pub rectify_days: u32,
}

/// `[mail]`: where notification mails go and how the sender worker retries (see
/// `docs/notifications.md`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// SMTP server; empty: no SMTP, mails are written as `.eml` files to `outbox_dir`.
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// How the SMTP connection is secured.
    pub tls: MailTls,
    /// A PEM file of CA certificates trusted for the SMTP server, besides the system's store and
    /// the compiled-in Mozilla roots; empty: none.
    pub smtp_ca_file: String,
    /// SMTP user; empty: no authentication.
    pub username: String,
    /// SMTP password (a secret: never logged).
    pub password: String,
    /// The `From` of every mail, e.g. `马上办 <noreply@example.gov.cn>`.
    pub from: String,
    /// The administrators' address: mails about the system itself (the working calendar's
    /// horizon) go there.
    pub admin_email: String,
    /// Seconds one SMTP connect, read or write may take.
    pub timeout_secs: u64,
    /// Attempts before a mail is parked as dead.
    pub max_attempts: i32,
    /// First retry delay in seconds; doubled on each further failure.
    pub backoff_base_secs: u64,
    /// Longest retry delay in seconds.
    pub backoff_max_secs: u64,
    /// Folder of the `.eml` files when `host` is empty.
    pub outbox_dir: String,
    /// Whether this instance runs the sender worker (several may; a mail is held by one at a
    /// time).
    pub worker: bool,
    /// Longest the worker sleeps when nothing is due, in milliseconds.
    pub tick_ms: u64,
    /// Most mails the worker claims at once (one transaction, one lease).
    pub batch: i64,
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("smtp_ca_file", &self.smtp_ca_file)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("from", &self.from)
            .field("admin_email", &self.admin_email)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base_secs", &self.backoff_base_secs)
            .field("backoff_max_secs", &self.backoff_max_secs)
            .field("outbox_dir", &self.outbox_dir)
            .field("worker", &self.worker)
            .field("tick_ms", &self.tick_ms)
            .field("batch", &self.batch)
            .finish()
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain text (a relay on the same host or network only).
    None,
    /// Plain connect, then STARTTLS, required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl MailSettings {
    /// Checks the values serde cannot: ranges, the sender address, credentials in pairs.
    fn validate(&self) -> Result<(), ConfigError> {
        let host = self.host.trim();
        if host.chars().any(char::is_whitespace) || host.contains(['/', '@']) {
            return Err(ConfigError::key(
                "mail.host",
                "must be a host name or address, without scheme or port",
            ));
        }
        if self.port == 0 {
            return Err(ConfigError::key("mail.port", "must be 1 to 65535"));
        }
        if self.username.is_empty() != self.password.is_empty() {
            return Err(ConfigError::key(
                "mail.username",
                "username and password go together: set both or neither",
            ));
        }
        self.from.parse::<lettre::message::Mailbox>().map_err(|e| {
            ConfigError::key(
                "mail.from",
                format!(
                    "`{}` is not an address like 马上办 <noreply@example.gov.cn> ({e})",
                    self.from
                ),
            )
        })?;
        self.admin_email
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| {
                ConfigError::key(
                    "mail.admin_email",
                    format!(
                        "`{}` is not an address like admin@example.gov.cn ({e})",
                        self.admin_email
                    ),
                )
            })?;
        if !(1..=300).contains(&self.timeout_secs) {
            return Err(ConfigError::key("mail.timeout_secs", "must be 1 to 300"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigError::key("mail.max_attempts", "must be 1 to 100"));
        }
        if !(1..=86_400).contains(&self.backoff_base_secs) {
            return Err(ConfigError::key(
                "mail.backoff_base_secs",
                "must be 1 to 86400",
            ));
        }
        if !(self.backoff_base_secs..=604_800).contains(&self.backoff_max_secs) {
            return Err(ConfigError::key(
                "mail.backoff_max_secs",
                "must be at least mail.backoff_base_secs and at most 604800 (a week)",
            ));
        }
        if host.is_empty() && self.outbox_dir.trim().is_empty() {
            return Err(ConfigError::key(
                "mail.outbox_dir",
                "must name a folder when mail.host is empty",
            ));
        }
        if !(10..=10_000).contains(&self.tick_ms) {
            return Err(ConfigError::key("mail.tick_ms", "must be 10 to 10000"));
        }
        if !(1..=1000).contains(&self.batch) {
            return Err(ConfigError::key("mail.batch", "must be 1 to 1000"));
        }
        Ok(())
    }
}

/// `[sla]`: how clocks warn and how the detection worker runs.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    /// Share of a clock's allowance after which it warns, in percent (1 to 100).
    pub warn_percent: u32,
    /// Longest the detection worker sleeps between looks, in milliseconds.
    pub tick_ms: u64,
    /// Most clocks the worker marks in one transaction.
    pub batch: i64,
    /// Whether this instance runs the detection worker (several instances may; each breach is
    /// marked once).
    pub worker: bool,
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// `host:port` to listen on.
    pub bind: String,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Largest accepted request body in bytes.
    pub body_limit_bytes: usize,
    /// Longest accepted request target (path and query) in bytes; a longer one gets 414.
    pub max_uri_bytes: usize,
    /// Seconds in-flight requests get after a stop signal.
    pub shutdown_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open. Longer than any load balancer's or
    /// client pool's idle timeout in front of it, so that the server is never the one closing
    /// a connection a client is about to reuse (the client would see it cut mid-request).
    pub keep_alive_secs: u64,
}

/// `[database]`: where the data lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Most pooled connections for HTTP requests.
    pub pool_size: u32,
    /// Most connections of the background workers' own pool (detector, mail sender, calendar
    /// follower, appointment worker, rate-limit sweeper): HTTP reads can never take them.
    pub background_pool_size: u32,
    /// Seconds to wait for a connection.
    pub connect_timeout_secs: u64,
    /// SQLite lock wait in milliseconds.
    pub sqlite_busy_timeout_ms: u32,
}

/// `[jwt]`: bearer tokens.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// HS256 secret; empty: generated into the SQLite data folder on first start (refused
    /// on PostgreSQL), see [`crate::auth::secret`].
    pub secret: String,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Tolerated clock skew in seconds.
    pub leeway_secs: u64,
    /// Lifetime of issued tokens, in humantime syntax (`1h`, `30m`).
    pub default_ttl: String,
    /// Longest lifetime (`exp` − `iat`) of an accepted token, in humantime syntax.
    pub max_ttl: String,
    /// Public keys of external issuers, by `kid`.
    #[serde(default)]
    pub keys: BTreeMap<String, PublicKeySettings>,
}

impl fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSettings")
            .field("secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JwtSettings {
    /// Longest lifetime of an accepted (or issued) token.
    pub fn max_ttl(&self) -> Duration {
        parse_duration(&self.max_ttl).expect("validated at load")
    }
}

/// One external verification key (`[jwt.keys.<kid>]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeySettings {
    /// `RS256` or `EdDSA`.
    pub algorithm: KeyAlgorithm,
    /// PEM-encoded public key.
    pub public_key: String,
}

/// Asymmetric algorithms accepted from external issuers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// Ed25519.
    EdDSA,
}

/// `[catalog]`: a data file replacing the compiled-in one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Path of the file; empty for the compiled-in data.
    pub file: String,
}

impl FileSettings {
    /// The file, when one is configured.
    pub fn path(&self) -> Option<&Path> {
        file_path(&self.file)
    }
}

/// `[calendar]`: the working calendar's file, and when administrators hear that its
/// configured years run out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// Path of the calendar file; empty for the compiled-in cn-shanghai calendar.
    pub file: String,
    /// Days before the calendar's horizon (its last configured day) from which the
    /// administrators (`mail.admin_email`) are mailed, once per horizon; 0: never.
    pub horizon_notice_days: u32,
}

impl CalendarSettings {
    /// The file, when one is configured.
    pub fn path(&self) -> Option<&Path> {
        file_path(&self.file)
    }
}

/// A configured path; `None` when empty.
fn file_path(file: &str) -> Option<&Path> {
    (!file.trim().is_empty()).then(|| Path::new(file.trim()))
}

/// `[log]`: how the server logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Line format.
    pub format: LogFormat,
    /// `RUST_LOG`-style filter.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for people.
    Human,
    /// One JSON object per line for log shippers.
    Json,
}

/// `[open311]`: the Open311 GeoReport v2 interface at `/open311/v2` (see `docs/open311.md`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Open311Settings {
    /// The `jurisdiction_id` this endpoint serves; empty to ignore the parameter.
    pub jurisdiction_id: String,
    /// Discovery: how to reach the people who run the endpoint.
    pub contact: String,
    /// Discovery: how to obtain an API key.
    pub key_service: String,
    /// Discovery: the endpoint's public URL (`https://…/open311/v2`); empty: from the request.
    pub public_url: String,
    /// The API keys allowed to submit requests, by key.
    #[serde(default)]
    pub api_keys: BTreeMap<String, Open311Client>,
}

impl fmt::Debug for Open311Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys are secrets: show whom they speak for, never the keys themselves.
        f.debug_struct("Open311Settings")
            .field("jurisdiction_id", &self.jurisdiction_id)
            .field("contact", &self.contact)
            .field("key_service", &self.key_service)
            .field("public_url", &self.public_url)
            .field("api_keys", &self.api_keys.values().collect::<Vec<_>>())
            .finish()
    }
}

/// One Open311 API key (`[open311.api_keys.<key>]`): the enterprise it submits for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Open311Client {
    /// Unified social credit code of the enterprise.
    pub uscc: String,
    /// The enterprise's name, as on its requests.
    pub name: String,
    /// Channel its requests come through: `online`, `window` or `self_service`.
    pub channel: Channel,
}

/// Shortest Open311 API key accepted, in characters.
pub const OPEN311_KEY_MIN_LEN: usize = 16;

impl Open311Settings {
    /// Checks every key: long enough, and an enterprise that could submit a request.
    fn validate(&self) -> Result<(), ConfigError> {
        let public_url = self.public_url.trim();
        if !public_url.is_empty() {
            let ok = url::Url::parse(public_url)
                .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
            if !ok {
                return Err(ConfigError::key(
                    "open311.public_url",
                    format!(
                        "`{public_url}` is not an http(s) URL like https://api.example.gov.cn/open311/v2"
                    ),
                ));
            }
        }
        for (key, client) in &self.api_keys {
            // The key is a secret: errors name its first characters only.
            let entry = format!("open311.api_keys.{}", shown_key(key));
            if key.chars().count() < OPEN311_KEY_MIN_LEN
                || !key.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(ConfigError::key(
                    &entry,
                    format!(
                        "an API key must be at least {OPEN311_KEY_MIN_LEN} visible ASCII characters"
                    ),
                ));
            }
            Uscc::parse(&client.uscc).map_err(|e| ConfigError::key(&format!("{entry}.uscc"), e))?;
            let name = client.name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                return Err(ConfigError::key(
                    &format!("{entry}.name"),
                    "must be the enterprise name, 1 to 200 characters",
                ));
            }
            if client.channel == Channel::CrossRegion {
                return Err(ConfigError::key(
                    &format!("{entry}.channel"),
                    "cross_region needs an intake region per request, which GeoReport cannot carry; use online, window or self_service",
                ));
            }
        }
        Ok(())
    }
}

/// A configuration problem, rendered as one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// A problem with the value of `key`.
    pub fn key(key: &str, problem: impl fmt::Display) -> Self {
        Self(format!("{key}: {problem}"))
    }
}

impl Settings {
    /// Loads the layered configuration: defaults, then `file`, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(environment());
        for (key, value) in secret_files(|name| std::env::var_os(name))? {
            figment = figment.merge((key, value));
        }
        Self::from_figment(figment)
    }

    /// The compiled-in defaults alone, ignoring files and the environment (tests use this).
    pub fn defaults() -> Self {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)))
            .expect("config/default.toml is valid")
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(describe)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: addresses, URLs, durations and secrets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        DatabaseUrl::parse(&self.database.url).map_err(|e| ConfigError::key("database.url", e))?;
        if !(1..=60).contains(&self.rating.contact_days) {
            return Err(ConfigError::key("rating.contact_days", "must be 1 to 60"));
        }
        if !(1..=250).contains(&self.rating.rectify_days) {
            return Err(ConfigError::key("rating.rectify_days", "must be 1 to 250"));
        }
        if self.calendar.horizon_notice_days > 366 {
            return Err(ConfigError::key(
                "calendar.horizon_notice_days",
                "must be 0 (never) to 366",
            ));
        }
        if !(1..=100).contains(&self.sla.warn_percent) {
            return Err(ConfigError::key("sla.warn_percent", "must be 1 to 100"));
        }
        if !(10..=1000).contains(&self.sla.tick_ms) {
            return Err(ConfigError::key(
                "sla.tick_ms",
                "must be 10 to 1000 (breaches are marked within a second)",
            ));
        }
        if !(1..=100_000).contains(&self.sla.batch) {
            return Err(ConfigError::key("sla.batch", "must be 1 to 100000"));
        }
        self.appointments.validate()?;
        if self.database.pool_size == 0 {
            return Err(ConfigError::key("database.pool_size", "must be at least 1"));
        }
        if self.database.background_pool_size == 0 {
            return Err(ConfigError::key(
                "database.background_pool_size",
                "must be at least 1",
            ));
        }
        if self.database.connect_timeout_secs == 0 {
            return Err(ConfigError::key(
                "database.connect_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.server.body_limit_bytes == 0 {
            return Err(ConfigError::key(
                "server.body_limit_bytes",
                "must be at least 1",
            ));
        }
        if !(1..=3600).contains(&self.server.keep_alive_secs) {
            return Err(ConfigError::key(
                "server.keep_alive_secs",
                "must be 1 to 3600 seconds",
            ));
        }
        if self.server.max_uri_bytes < 256 {
            return Err(ConfigError::key(
                "server.max_uri_bytes",
                "must be at least 256",
            ));
        }
        if !self.jwt.secret.is_empty() {
            if let Some(weakness) = crate::auth::secret::weakness(&self.jwt.secret) {
                return Err(ConfigError::key("jwt.secret", weakness));
            }
        }
        if self.jwt.issuer.is_empty() {
            return Err(ConfigError::key("jwt.issuer", "must not be empty"));
        }
        if self.jwt.audience.is_empty() {
            return Err(ConfigError::key("jwt.audience", "must not be empty"));
        }
        let default_ttl = parse_duration(&self.jwt.default_ttl)
            .map_err(|e| ConfigError::key("jwt.default_ttl", e))?;
        let max_ttl =
            parse_duration(&self.jwt.max_ttl).map_err(|e| ConfigError::key("jwt.max_ttl", e))?;
        if default_ttl > max_ttl {
            return Err(ConfigError::key(
                "jwt.default_ttl",
                format!(
                    "`{}` is longer than jwt.max_ttl (`{}`)",
                    self.jwt.default_ttl, self.jwt.max_ttl
                ),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::key("log.level", e))?;
        self.open311.validate()?;
        self.mail.validate()?;
        self.metrics.validate()?;
        self.rate_limit.validate()?;
        self.cors.validate()?;
        Ok(())
    }

    /// The listen address, resolved.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        resolve_bind(&self.server.bind, "server.bind")
    }

    /// Lifetime of issued tokens.
    pub fn default_ttl(&self) -> Duration {
        parse_duration(&self.jwt.default_ttl).expect("validated at load")
    }

    /// Longest lifetime of an accepted (or issued) token.
    pub fn max_ttl(&self) -> Duration {
        self.jwt.max_ttl()
    }
}

/// `bind` resolved to one socket address, or an error naming `key`.
fn resolve_bind(bind: &str, key: &str) -> Result<SocketAddr, ConfigError> {
    bind.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| ConfigError::key(key, format!("`{bind}` is not a host:port")))
}

/// The `(key, value)` layers of the secrets read from `MASHANGBAN_<VAR>_FILE` files.
/// `var` reads one environment variable (injected, so tests need not change the process's).
fn secret_files(
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let mut layers = Vec::new();
    for (name, key) in SECRET_FILE_KEYS {
        let file_var = format!("{ENV_PREFIX}{name}_FILE");
        let Some(path) = var(&file_var) else { continue };
        if var(&format!("{ENV_PREFIX}{name}")).is_some() {
            return Err(ConfigError::key(
                key,
                format!("both {ENV_PREFIX}{name} and {file_var} are set; set one"),
            ));
        }
        layers.push((*key, read_secret_file(Path::new(&path), key, &file_var)?));
    }
    Ok(layers)
}

/// The content of a secret file without its trailing newline; never echoed in errors.
fn read_secret_file(path: &Path, key: &str, var: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::key(key, format!("cannot read {var}={}: {e}", path.display())))?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(ConfigError::key(
            key,
            format!("{var}={} is empty", path.display()),
        ));
    }
    Ok(value.to_string())
}

/// Parses a human duration such as `30m`, `1h` or `2h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 30m or 1h ({e})"))?;
    if duration.is_zero() {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(duration)
}

/// The `MASHANGBAN_*` environment as a configuration layer.
fn environment() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| is_config_key(key.as_str()))
        .map(|key| env_key_to_path(key.as_str()).into())
}

/// Whether the variable `MASHANGBAN_<key>` is a configuration key: not the test suite's
/// (`MASHANGBAN_TEST_*`) nor one of [`ENV_NOT_KEYS`]. Figment hands the key over as spelt in
/// the environment (`CONFIG`), so the comparison ignores case.
fn is_config_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    !key.starts_with("test_")
        && !key.starts_with(ENV_CLIENT_PREFIX)
        && !ENV_NOT_KEYS.contains(&key.as_str())
        // `<NAME>_FILE` of a secret is read by `secret_files`, not a key of its own.
        && !SECRET_FILE_KEYS
            .iter()
            .any(|(name, _)| key == format!("{}_file", name.to_ascii_lowercase()))
}

/// `database_pool_size` → `database.pool_size`; aliases first; unknown sections stay
/// top-level keys, which the settings then reject as unknown.
fn env_key_to_path(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    if let Some((_, path)) = ENV_ALIASES.iter().find(|(alias, _)| *alias == key) {
        return (*path).to_string();
    }
    for section in SECTIONS {
        if let Some(rest) = key.strip_prefix(section).and_then(|r| r.strip_prefix('_')) {
            // `jwt_keys_<kid>_<field>` nests one level deeper; a kid keeps its own spelling.
            return format!("{section}.{rest}");
        }
    }
    key
}

/// Turns a figment error into one line naming the key and where it came from.
fn describe(error: figment::Error) -> ConfigError {
    let key = redacted_path(&error.path);
    let origin = error
        .metadata
        .as_ref()
        .map(|m| {
            if m.name.contains("environment") {
                let var = env_var_for(&error);
                format!(" (from environment variable {var})")
            } else {
                match &m.source {
                    Some(source) => format!(" (from {source})"),
                    None => format!(" (from {})", m.name),
                }
            }
        })
        .unwrap_or_default();
    let message = match &error.kind {
        figment::error::Kind::UnknownField(..) => {
            return ConfigError(format!("unknown key `{key}`{origin}"));
        }
        kind => kind.to_string(),
    };
    if key.is_empty() {
        ConfigError(format!("{message}{origin}"))
    } else {
        ConfigError::key(&key, format!("{message}{origin}"))
    }
}

/// A key path for messages, with an Open311 API key (a secret that names its own table) cut
/// to its first characters.
fn redacted_path(path: &[String]) -> String {
    let mut parts = path.to_vec();
    if parts.len() > 2 && parts[0] == "open311" && parts[1] == "api_keys" {
        parts[2] = shown_key(&parts[2]);
    }
    parts.join(".")
}

/// The first characters of an API key, for messages.
fn shown_key(key: &str) -> String {
    format!("{}…", key.chars().take(4).collect::<String>())
}

/// Best guess at the variable that set the failing key, for the error line.
fn env_var_for(error: &figment::Error) -> String {
    let parts: Vec<String> = error.path.iter().map(|p| p.to_ascii_uppercase()).collect();
    format!("{ENV_PREFIX}{}", parts.join("_"))
}

/// Path of the config file named by `MASHANGBAN_CONFIG`, if set.
pub fn config_file_from_env() -> Option<PathBuf> {
    std::env::var_os(format!("{ENV_PREFIX}CONFIG")).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let settings = Settings::defaults();
        assert_eq!(settings.server.bind, "127.0.0.1:8080");
        assert_eq!(settings.database.url, "sqlite://./data/mashangban.db");
        assert_eq!(settings.default_ttl(), Duration::from_secs(3600));
    }

    #[test]
    fn environment_names_map_to_sections() {
        assert_eq!(env_key_to_path("BIND"), "server.bind");
        assert_eq!(env_key_to_path("DATABASE_URL"), "database.url");
        assert_eq!(env_key_to_path("DATABASE_POOL_SIZE"), "database.pool_size");
        assert_eq!(env_key_to_path("JWT_SECRET"), "jwt.secret");
        assert_eq!(
            env_key_to_path("SERVER_BODY_LIMIT_BYTES"),
            "server.body_limit_bytes"
        );
        assert_eq!(env_key_to_path("COLOUR"), "colour");
    }

    #[test]
    fn the_config_file_and_test_variables_are_not_keys() {
        // Figment passes keys as spelt in the environment: upper case.
        for key in [
            "CONFIG",
            "config",
            "TEST_DATABASE_URL",
            "test_x",
            "CLIENT_CONFIG",
            "CLIENT_CA_FILE",
        ] {
            assert!(!is_config_key(key), "{key}");
        }
        for key in [
            "DATABASE_URL",
            "BIND",
            "CONFIGURATION",
            "CORS_ALLOWED_ORIGINS",
        ] {
            assert!(is_config_key(key), "{key}");
        }
    }

    #[test]
    fn cors_is_off_by_default_and_checks_origins() {
        let settings = Settings::defaults();
        assert!(!settings.cors.enabled());
        assert!(
            settings
                .cors
                .allowed_headers
                .iter()
                .any(|h| h == "Idempotency-Key")
        );
        assert_eq!(
            env_key_to_path("CORS_ALLOWED_ORIGINS"),
            "cors.allowed_origins"
        );
        let on = load_with("[cors]\nallowed_origins = [\"https://portal.example.gov.cn\", \"http://localhost:5173\"]").unwrap();
        assert!(on.cors.enabled());
        for origin in [
            "*",
            "https://portal.example.gov.cn/",
            "https://portal.example.gov.cn/app",
            "ftp://portal.example.gov.cn",
            "portal.example.gov.cn",
        ] {
            let err = load_with(&format!("[cors]\nallowed_origins = [\"{origin}\"]"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("cors.allowed_origins"), "{origin}: {err}");
        }
        let err = load_with("[cors]\nallowed_headers = [\"bad header\"]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cors.allowed_headers"), "{err}");
    }

    fn load_with(toml: &str) -> Result<Settings, ConfigError> {
        Settings::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(toml)))
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_with("[database]\npool_sise = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key `database.pool_sise`"), "{err}");
    }

    #[test]
    fn the_background_pool_needs_a_connection() {
        let err = load_with("[database]\nbackground_pool_size = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.background_pool_size"), "{err}");
        assert_eq!(Settings::defaults().database.background_pool_size, 2);
    }

    #[test]
    fn bad_value_is_named() {
        let err = load_with("[database]\npool_size = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.pool_size"), "{err}");
        let err = load_with("[server]\nbind = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.bind"), "{err}");
        let err = load_with("[jwt]\nsecret = \"short\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("jwt.secret"), "{err}");
        let err = load_with("[jwt]\ndefault_ttl = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("jwt.default_ttl"), "{err}");
        let err = load_with("[log]\nformat = \"xml\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.format"), "{err}");
    }

    #[test]
    fn open311_has_no_keys_by_default_and_checks_them() {
        let settings = Settings::defaults();
        assert!(settings.open311.api_keys.is_empty());
        assert_eq!(settings.open311.jurisdiction_id, "putuo.sh.gov.cn");
        assert_eq!(
            env_key_to_path("OPEN311_JURISDICTION_ID"),
            "open311.jurisdiction_id"
        );

        let key = "[open311.api_keys.kiosk-0123456789abcdef]";
        let good = format!(
            "{key}\nuscc = \"91350100M000100Y43\"\nname = \"马上办\"\nchannel = \"self_service\""
        );
        let settings = load_with(&good).unwrap();
        let client = &settings.open311.api_keys["kiosk-0123456789abcdef"];
        assert_eq!(client.channel, Channel::SelfService);
        // The key is a secret: Debug does not show it.
        assert!(!format!("{settings:?}").contains("0123456789abcdef"));

        for (toml, named) in [
            (
                good.replace("kiosk-0123456789abcdef", "short"),
                "open311.api_keys.shor…",
            ),
            (
                good.replace("91350100M000100Y43", "91350100M000100Y44"),
                ".uscc",
            ),
            (good.replace("马上办", " "), ".name"),
            (good.replace("self_service", "cross_region"), ".channel"),
            (good.replace("self_service", "fax"), "channel"),
            (format!("{good}\ncolour = \"red\""), "colour"),
        ] {
            let err = load_with(&toml).unwrap_err().to_string();
            assert!(err.contains(named), "{named}: {err}");
            assert!(!err.contains("0123456789abcdef"), "{err}");
        }
    }

    #[test]
    fn unknown_url_scheme_is_named() {
        let err = load_with("[database]\nurl = \"mysql://root@localhost/x\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("database.url") && err.contains("mysql"),
            "{err}"
        );
    }

    #[test]
    fn mail_keys_come_from_the_environment_and_are_checked() {
        assert_eq!(env_key_to_path("MAIL_HOST"), "mail.host");
        assert_eq!(env_key_to_path("MAIL_MAX_ATTEMPTS"), "mail.max_attempts");
        let settings = Settings::defaults();
        assert!(settings.mail.host.is_empty() && settings.mail.worker);
        assert_eq!(settings.mail.tls, MailTls::Starttls);
        let err = load_with("[mail]\ntls = \"ssl\"").unwrap_err().to_string();
        assert!(err.contains("mail.tls"), "{err}");
        let err = load_with("[mail]\nfrom = \"nobody\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mail.from"), "{err}");
        let secret = load_with("[mail]\nusername = \"u\"\npassword = \"hunter2-smtp\"").unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn secrets_come_from_files_without_their_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret-value\r\n").unwrap();
        let var = |set: &'static [(&'static str, bool)]| {
            let file = file.clone();
            move |name: &str| {
                set.iter().find(|(n, _)| *n == name).map(|(_, is_file)| {
                    if *is_file {
                        file.clone().into_os_string()
                    } else {
                        "direct".into()
                    }
                })
            }
        };
        let layers = secret_files(var(&[("MASHANGBAN_METRICS_TOKEN_FILE", true)])).unwrap();
        assert_eq!(layers, vec![("metrics.token", "s3cret-value".to_string())]);
        assert!(secret_files(var(&[])).unwrap().is_empty());
        let err = secret_files(var(&[
            ("MASHANGBAN_MAIL_PASSWORD_FILE", true),
            ("MASHANGBAN_MAIL_PASSWORD", false),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("mail.password: both"), "{err}");
        std::fs::write(&file, "\n").unwrap();
        let err = secret_files(var(&[("MASHANGBAN_JWT_SECRET_FILE", true)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("jwt.secret") && err.contains("is empty"),
            "{err}"
        );
        // A file layer sets a nested key.
        let figment = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(("metrics.token", "0123456789abcdef0123456789abcdef"));
        let settings = Settings::from_figment(figment).unwrap();
        assert_eq!(settings.metrics.token, "0123456789abcdef0123456789abcdef");
        assert!(!format!("{settings:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn no_secret_is_shipped_and_lifetimes_are_capped() {
        let settings = Settings::defaults();
        assert!(settings.jwt.secret.is_empty());
        assert_eq!(settings.max_ttl(), Duration::from_secs(12 * 3600));
        assert_eq!(settings.server.max_uri_bytes, 2048);
        assert!(settings.metrics.bind.is_empty() && settings.metrics.token.is_empty());
        assert_eq!(env_key_to_path("METRICS_BIND"), "metrics.bind");
        let err = load_with("[jwt]\nmax_ttl = \"30m\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("jwt.default_ttl"), "{err}");
        let err = load_with("[server]\nmax_uri_bytes = 10")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.max_uri_bytes"), "{err}");
    }

    #[test]
    fn rate_limits_are_on_by_default_and_checked() {
        assert_eq!(env_key_to_path("RATE_LIMIT_ENABLED"), "rate_limit.enabled");
        assert_eq!(
            env_key_to_path("RATING_CONTACT_DAYS"),
            "rating.contact_days"
        );
        let settings = Settings::defaults();
        assert!(settings.rate_limit.enabled);
        assert_eq!(settings.rate_limit.window_secs, 60);
        let err = load_with("[rate_limit]\naddress = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rate_limit.address"), "{err}");
        let err = load_with("[rate_limit]\nwindow_secs = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rate_limit.window_secs"), "{err}");
    }

    #[test]
    fn the_horizon_notice_has_a_lead_time_and_an_address() {
        assert_eq!(
            env_key_to_path("CALENDAR_HORIZON_NOTICE_DAYS"),
            "calendar.horizon_notice_days"
        );
        assert_eq!(env_key_to_path("MAIL_ADMIN_EMAIL"), "mail.admin_email");
        let settings = Settings::defaults();
        assert_eq!(settings.calendar.horizon_notice_days, 60);
        assert_eq!(
            settings.mail.admin_email,
            "马上办管理员 <admin@mashangban.example>"
        );
        let err = load_with("[mail]\nadmin_email = \"admins\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mail.admin_email"), "{err}");
        let err = load_with("[calendar]\nhorizon_notice_days = 400")
            .unwrap_err()
            .to_string();
        assert!(err.contains("calendar.horizon_notice_days"), "{err}");
        assert!(load_with("[calendar]\nhorizon_notice_days = 0").is_ok());
    }
}
