//! CORS for browser portals on other origins, with [`actix_cors`] (the actix project's own
//! middleware: preflights, `Vary: Origin`, origin matching, exposed headers; nothing here
//! re-implements the Fetch standard).
//!
//! Off unless `[cors] allowed_origins` lists origins: then no `Access-Control-*` header is
//! ever sent, and a preflight (`OPTIONS`) gets the ordinary 405. On: a preflight from a listed
//! origin asking for a listed method and headers gets `200` with the allowances; any other
//! preflight is refused, as problem+json 403 ([`refusals_as_problems`]). A non-preflight
//! request from an unlisted origin is served, without `Access-Control-Allow-Origin`, so the
//! browser withholds the answer from the page; bearer tokens (never cookies) make the API
//! safe against cross-site request forgery, so there is nothing to block on the server.

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Condition, Next};
use actix_web::{HttpResponse, ResponseError};

use crate::config::CorsSettings;
use crate::error::{ApiError, ErrorCode};

/// The CORS middleware `settings` describe; a no-op when no origin is listed.
pub fn middleware(settings: &CorsSettings) -> Condition<Cors> {
    let mut cors = Cors::default()
        .allowed_methods(settings.allowed_methods.iter().map(String::as_str))
        .allowed_headers(settings.allowed_headers.iter().map(String::as_str))
        .expose_headers(settings.exposed_headers.iter().map(String::as_str))
        .max_age(settings.max_age_secs as usize)
        .block_on_origin_mismatch(false);
    for origin in &settings.allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    Condition::new(settings.enabled(), cors)
}

/// Middleware (outside [`middleware`]): actix-cors refuses a preflight with a plain-text
/// 400; this answers it as our problem+json, 403 `forbidden`, naming what was refused.
pub async fn refusals_as_problems(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(ORIGIN)
        && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let origin = req
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let response = next.call(req).await?;
    if !(preflight && response.status() == StatusCode::BAD_REQUEST) {
        return Ok(response.map_into_left_body());
    }
    let (req, refused) = response.into_parts();
    let reason = match refused.into_body().try_into_bytes() {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => "refused".into(),
    };
    let problem: HttpResponse = ApiError::new(
        ErrorCode::Forbidden,
        format!("cross-origin request from `{origin}` refused: {reason}"),
    )
    .error_response();
    Ok(ServiceResponse::new(req, problem).map_into_right_body())
}
