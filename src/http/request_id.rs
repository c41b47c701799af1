//! `X-Request-Id`: accepted from the client when sane, generated (UUID v7) otherwise, echoed on
//! the response, and carried by the tracing span of the request so every log line has it.
//!
//! What the access line takes from the request (method, path, `User-Agent`) is clipped to a few
//! hundred bytes: a log line never carries unbounded client input.

use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;
use uuid::Uuid;

/// The header name.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Most bytes of a method logged.
const LOGGED_METHOD_BYTES: usize = 32;
/// Most bytes of a path or `User-Agent` logged.
const LOGGED_TEXT_BYTES: usize = 256;

/// `text` cut to at most `max` bytes (on a character boundary), marked with `…` when cut.
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

/// A client-sent id is kept if it is 1–128 characters of letters, digits and `-_.:`.
fn acceptable(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then_some(text)
}

/// Middleware: assigns the id, opens the span, logs one access line, echoes the header.
pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(acceptable)
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %clip(req.method().as_str(), LOGGED_METHOD_BYTES),
        path = %clip(req.path(), LOGGED_TEXT_BYTES),
        user_agent = %clip(&user_agent, LOGGED_TEXT_BYTES)
    );
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, elapsed_ms, "served"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_kept() {
        assert_eq!(
            acceptable(&HeaderValue::from_static("abc-123_x.y:z")),
            Some("abc-123_x.y:z")
        );
        assert_eq!(acceptable(&HeaderValue::from_static("")), None);
        assert_eq!(acceptable(&HeaderValue::from_static("has space")), None);
        let long = "a".repeat(129);
        assert_eq!(acceptable(&HeaderValue::from_str(&long).unwrap()), None);
    }

    #[test]
    fn logged_text_is_clipped_on_a_character_boundary() {
        assert_eq!(clip("GET", 32), "GET");
        assert_eq!(clip(&"x".repeat(300), 256).len(), 256 + "…".len());
        // 马 is three bytes: the cut falls before it rather than inside it.
        assert_eq!(clip("ab马", 3), "ab…");
    }
}
