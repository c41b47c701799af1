//! Extractor failures (bad JSON, bad query, bad path, oversized body) as problem+json.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, ResponseError, web};

use crate::error::{ApiError, ErrorCode, FieldError};

/// The configured body-size limit, in app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// 413: the body is larger than `limit` bytes.
pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than {limit} bytes"),
    )
}

/// JSON bodies: limit and errors.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |error, _req: &HttpRequest| {
            let api = match &error {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => too_large(limit),
                JsonPayloadError::ContentType => ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send the body as application/json",
                ),
                JsonPayloadError::Deserialize(e) if e.is_data() => {
                    ApiError::validation(vec![FieldError {
                        pointer: format!("/ (line {}, column {})", e.line(), e.column()),
                        message: e.to_string(),
                    }])
                }
                other => ApiError::new(
                    ErrorCode::BadRequest,
                    format!("body is not valid JSON: {other}"),
                ),
            };
            actix_web::error::InternalError::from_response(error, api.error_response()).into()
        })
}

/// Query strings: errors name the parameter where serde does.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _req| {
        let api = match &error {
            QueryPayloadError::Deserialize(e) => ApiError::validation(vec![FieldError {
                pointer: "query".into(),
                message: e.to_string(),
            }]),
            other => ApiError::new(ErrorCode::BadRequest, other.to_string()),
        };
        actix_web::error::InternalError::from_response(error, api.error_response()).into()
    })
}

/// Path segments: a malformed id is simply not found.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error: PathError, _req| {
        let api = ApiError::not_found(format!("no such resource ({error})"));
        actix_web::error::InternalError::from_response(error, api.error_response()).into()
    })
}

/// Middleware: refuses a declared body above the limit before any handler reads it.
pub async fn limit_body(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<BodyLimit>()
        .map(|l| l.0)
        .unwrap_or(usize::MAX);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        let response = too_large(limit).error_response();
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The revision `If-Match` expects, given the `current` one (RFC 9110 §13.1.1): `*` and a list
/// naming `current` (`"r3"`; a weak `W/` prefix is tolerated) expect `current`; a list naming
/// only other revisions expects the first of them (the caller answers 412 with the current
/// `ETag`). `428` without the header, `412` when it names no revision. `what` names the
/// resource in the message.
pub fn if_match_revision(req: &HttpRequest, what: &str, current: i32) -> Result<i32, ApiError> {
    let value = req
        .headers()
        .get(actix_web::http::header::IF_MATCH)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PreconditionRequired,
                format!("send If-Match with the ETag of the {what} as you read it"),
            )
        })?;
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(current);
    }
    let named: Vec<i32> = text
        .split(',')
        .filter_map(|tag| {
            tag.trim()
                .trim_start_matches("W/")
                .strip_prefix("\"r")?
                .strip_suffix('"')?
                .parse::<i32>()
                .ok()
        })
        .collect();
    named
        .iter()
        .find(|&&revision| revision == current)
        .or(named.first())
        .copied()
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PreconditionFailed,
                format!("If-Match does not name a revision of this {what}; read it again"),
            )
        })
}
