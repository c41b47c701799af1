//! The one error type clients see.
//!
//! Every failure becomes an [`ApiError`]: an HTTP status, a stable machine [`ErrorCode`]
//! (snake_case, safe for a portal to translate), a human `detail`, optional per-field
//! [`FieldError`]s, and extra headers (`WWW-Authenticate`, `Allow`, `Retry-After`). It renders as
//! RFC 9457 `application/problem+json`. The underlying cause of a server-side failure is
//! logged (inside the request's span, so with its request id) and never sent to the client.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Stable machine codes of errors. Clients may rely on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed request (bad JSON, bad query string, bad header).
    BadRequest,
    /// Well-formed but invalid input; see `errors`.
    ValidationFailed,
    /// No bearer token was sent.
    MissingToken,
    /// The bearer token is invalid, expired or not for us.
    InvalidToken,
    /// Authenticated, but the role or unit may not do this.
    Forbidden,
    /// No such resource (or not yours).
    NotFound,
    /// The method is not supported on this path.
    MethodNotAllowed,
    /// The request body is larger than the configured limit.
    PayloadTooLarge,
    /// The request target (path and query) is longer than the configured limit.
    UriTooLong,
    /// An `Idempotency-Key` was used before with a different body.
    IdempotencyKeyReused,
    /// The request body is not JSON.
    UnsupportedMediaType,
    /// The action is not possible in the request's current state; see `state` and `allowed`.
    ActionNotAllowed,
    /// The request was already rated: one rating per request.
    AlreadyRated,
    /// The step belongs to the request's lead unit (一口受理、一处反馈); `lead_unit` names it.
    NotLeadUnit,
    /// The lead may not decide while a co-unit's opinion is outstanding; `missing` names them.
    OpinionsOutstanding,
    /// `If-Match` names a revision that is no longer current: someone changed it first.
    PreconditionFailed,
    /// The change needs `If-Match` with the current `ETag`.
    PreconditionRequired,
    /// The material named is not pending on the request (already provided, or never deferred).
    MaterialNotPending,
    /// The result may not be delivered while deferred materials (容缺) are pending; see
    /// `materials`.
    MaterialsPending,
    /// Every place of the appointment slot is taken (统一预约).
    SlotFull,
    /// The enterprise already holds an active booking for this matter on that day; see
    /// `appointment`.
    AlreadyBooked,
    /// The enterprise holds as many bookings in that week as it may; see `limit`.
    WeeklyLimitReached,
    /// Too close to the slot's start to cancel or move the booking; see `cutoff_at`.
    CutoffPassed,
    /// Check-in is not open for this appointment now (another day, too early, or past the
    /// no-show time); see `reason`.
    CheckInNotOpen,
    /// An enterprise's step (file, supplement, withdraw) by an official no 帮办 grant of the
    /// enterprise names.
    AuthorizationRequired,
    /// The official's 帮办 grant was revoked by the enterprise; `authorization` names it.
    AuthorizationRevoked,
    /// The official's 帮办 grant has expired; `authorization` names it.
    AuthorizationExpired,
    /// The official's 帮办 grant has not begun yet; `authorization` names it.
    AuthorizationNotStarted,
    /// The official's 帮办 grant covers another request only; `authorization` names it.
    AuthorizationOutOfScope,
    /// Too many requests from this caller in the current window; see `Retry-After`.
    TooManyRequests,
    /// The database does not answer; retry later.
    DatabaseUnavailable,
    /// This instance is stopping (readiness during the graceful stop); use another one.
    ShuttingDown,
    /// Something went wrong on our side; the log has the cause.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadRequest,
        ErrorCode::ValidationFailed,
        ErrorCode::MissingToken,
        ErrorCode::InvalidToken,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UriTooLong,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::ActionNotAllowed,
        ErrorCode::AlreadyRated,
        ErrorCode::NotLeadUnit,
        ErrorCode::OpinionsOutstanding,
        ErrorCode::PreconditionFailed,
        ErrorCode::PreconditionRequired,
        ErrorCode::MaterialNotPending,
        ErrorCode::MaterialsPending,
        ErrorCode::SlotFull,
        ErrorCode::AlreadyBooked,
        ErrorCode::WeeklyLimitReached,
        ErrorCode::CutoffPassed,
        ErrorCode::CheckInNotOpen,
        ErrorCode::AuthorizationRequired,
        ErrorCode::AuthorizationRevoked,
        ErrorCode::AuthorizationExpired,
        ErrorCode::AuthorizationNotStarted,
        ErrorCode::AuthorizationOutOfScope,
        ErrorCode::TooManyRequests,
        ErrorCode::DatabaseUnavailable,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
    ];

    /// The snake_case code as sent to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::MissingToken => "missing_token",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::ActionNotAllowed => "action_not_allowed",
            ErrorCode::AlreadyRated => "already_rated",
            ErrorCode::NotLeadUnit => "not_lead_unit",
            ErrorCode::OpinionsOutstanding => "opinions_outstanding",
            ErrorCode::PreconditionFailed => "precondition_failed",
            ErrorCode::PreconditionRequired => "precondition_required",
            ErrorCode::MaterialNotPending => "material_not_pending",
            ErrorCode::MaterialsPending => "materials_pending",
            ErrorCode::SlotFull => "slot_full",
            ErrorCode::AlreadyBooked => "already_booked",
            ErrorCode::WeeklyLimitReached => "weekly_limit_reached",
            ErrorCode::CutoffPassed => "cutoff_passed",
            ErrorCode::CheckInNotOpen => "check_in_not_open",
            ErrorCode::AuthorizationRequired => "authorization_required",
            ErrorCode::AuthorizationRevoked => "authorization_revoked",
            ErrorCode::AuthorizationExpired => "authorization_expired",
            ErrorCode::AuthorizationNotStarted => "authorization_not_started",
            ErrorCode::AuthorizationOutOfScope => "authorization_out_of_scope",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::DatabaseUnavailable => "database_unavailable",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status this code is sent with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::MissingToken | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden
            | ErrorCode::NotLeadUnit
            | ErrorCode::AuthorizationRequired
            | ErrorCode::AuthorizationRevoked
            | ErrorCode::AuthorizationExpired
            | ErrorCode::AuthorizationNotStarted
            | ErrorCode::AuthorizationOutOfScope => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::ActionNotAllowed
            | ErrorCode::AlreadyRated
            | ErrorCode::OpinionsOutstanding
            | ErrorCode::MaterialNotPending
            | ErrorCode::MaterialsPending
            | ErrorCode::SlotFull
            | ErrorCode::AlreadyBooked
            | ErrorCode::WeeklyLimitReached
            | ErrorCode::CutoffPassed
            | ErrorCode::CheckInNotOpen => StatusCode::CONFLICT,
            ErrorCode::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ErrorCode::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::DatabaseUnavailable | ErrorCode::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Short human summary, the problem's `title`.
    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "Malformed request",
            ErrorCode::ValidationFailed => "Invalid input",
            ErrorCode::MissingToken => "Authentication required",
            ErrorCode::InvalidToken => "Invalid token",
            ErrorCode::Forbidden => "Not allowed",
            ErrorCode::NotFound => "Not found",
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::PayloadTooLarge => "Request body too large",
            ErrorCode::UriTooLong => "Request target too long",
            ErrorCode::IdempotencyKeyReused => "Idempotency key reused",
            ErrorCode::UnsupportedMediaType => "Unsupported media type",
            ErrorCode::ActionNotAllowed => "Action not allowed now",
            ErrorCode::AlreadyRated => "Already rated",
            ErrorCode::NotLeadUnit => "Only the lead unit may do this",
            ErrorCode::OpinionsOutstanding => "Opinions outstanding",
            ErrorCode::PreconditionFailed => "Changed by someone else first",
            ErrorCode::PreconditionRequired => "If-Match required",
            ErrorCode::MaterialNotPending => "Material not pending",
            ErrorCode::MaterialsPending => "Deferred materials pending",
            ErrorCode::SlotFull => "Slot full",
            ErrorCode::AlreadyBooked => "Already booked that day",
            ErrorCode::WeeklyLimitReached => "Weekly booking limit reached",
            ErrorCode::CutoffPassed => "Too late to change the booking",
            ErrorCode::CheckInNotOpen => "Check-in not open",
            ErrorCode::AuthorizationRequired => "A 帮办 grant of the enterprise is required",
            ErrorCode::AuthorizationRevoked => "The 帮办 grant was revoked",
            ErrorCode::AuthorizationExpired => "The 帮办 grant has expired",
            ErrorCode::AuthorizationNotStarted => "The 帮办 grant has not begun",
            ErrorCode::AuthorizationOutOfScope => "The 帮办 grant covers another request",
            ErrorCode::TooManyRequests => "Too many requests",
            ErrorCode::DatabaseUnavailable => "Database unavailable",
            ErrorCode::ShuttingDown => "Shutting down",
            ErrorCode::Internal => "Internal error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One wrong input field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the field, or the parameter name.
    pub pointer: String,
    /// What is wrong with it.
    pub message: String,
}

/// Escapes one segment of a JSON pointer (RFC 6901): `~` as `~0`, `/` as `~1`.
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// RFC 9457 problem details, as sent on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the problem type: `urn:mashangban:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What happened in this occurrence.
    pub detail: String,
    /// Stable machine code.
    pub code: ErrorCode,
    /// Wrong fields, for `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension members of some problems (`state` and `allowed` for `action_not_allowed`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// An error answered to the client as problem+json. Boxed: it travels in every `Result` of
/// the request path, so it stays one pointer wide.
#[derive(Debug)]
pub struct ApiError(Box<Details>);

/// What an [`ApiError`] carries.
#[derive(Debug)]
struct Details {
    code: ErrorCode,
    detail: String,
    errors: Vec<FieldError>,
    extensions: serde_json::Map<String, serde_json::Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
    cause: Option<String>,
}

impl ApiError {
    /// An error with `code` and a human `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self(Box::new(Details {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            headers: Vec::new(),
            cause: None,
        }))
    }

    /// 422 listing every wrong field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!("{}: {}", errors[0].pointer, errors[0].message),
            n => format!("{n} fields are invalid"),
        };
        let mut error = Self::new(ErrorCode::ValidationFailed, detail);
        error.0.errors = errors;
        error
    }

    /// 404 for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    /// 503 with `Retry-After`: the database did not answer. The cause is logged.
    pub fn database_unavailable(cause: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::DatabaseUnavailable,
            "the database is not answering; retry shortly",
        )
        .with_header(
            actix_web::http::header::RETRY_AFTER,
            HeaderValue::from_static("5"),
        )
        .with_cause(cause)
    }

    /// 503 with `Retry-After: 1`: the database was too busy to take the change in time (SQLite's
    /// single writer). Nothing was changed; the same request may simply be sent again.
    pub fn database_busy(cause: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::DatabaseUnavailable,
            "the database is busy with other changes; nothing was changed, retry in a moment",
        )
        .with_header(
            actix_web::http::header::RETRY_AFTER,
            HeaderValue::from_static("1"),
        )
        .with_cause(cause)
    }

    /// 500 with the cause logged, not shown.
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::Internal,
            "an internal error occurred; it has been logged",
        )
        .with_cause(cause)
    }

    /// Adds an extension member to the problem body.
    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        self.0.extensions.insert(key.to_string(), value);
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// Records the cause for the log.
    pub fn with_cause(mut self, cause: impl fmt::Display) -> Self {
        self.0.cause = Some(cause.to_string());
        self
    }

    /// The machine code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The body sent to the client.
    pub fn problem(&self) -> Problem {
        let status = self.0.code.status();
        Problem {
            type_uri: format!("urn:mashangban:problem:{}", self.0.code),
            title: self.0.code.title().to_string(),
            status: status.as_u16(),
            detail: self.0.detail.clone(),
            code: self.0.code,
            errors: self.0.errors.clone(),
            extensions: self.0.extensions.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.code, self.0.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        match (&self.0.cause, self.0.code.status().is_server_error()) {
            (Some(cause), true) => tracing::error!(code = %self.0.code, %cause, "request failed"),
            (Some(cause), false) => tracing::info!(code = %self.0.code, %cause, "request refused"),
            (None, _) => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_JSON);
        for (name, value) in &self.0.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(self.problem())
    }
}

/// Whether a database error says the lock wait ran out (SQLite's `SQLITE_BUSY` /
/// `SQLITE_LOCKED`: "database is locked", "database table is locked", "database is busy").
fn is_busy(message: &str) -> bool {
    message.contains("database is locked")
        || message.contains("database table is locked")
        || message.contains("database is busy")
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => ApiError::not_found("no such resource"),
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                ApiError::database_unavailable(info.message())
            }
            // SQLite's lock wait (`database.sqlite_busy_timeout_ms`) ran out: retryable.
            Error::DatabaseError(_, info) if is_busy(info.message()) => {
                ApiError::database_busy(info.message())
            }
            other => ApiError::internal(other),
        }
    }
}
