//! The NUL character (U+0000) is refused everywhere, in one place.
//!
//! PostgreSQL cannot store U+0000 in `TEXT` (the statement fails: a 500), while SQLite stores
//! it silently; a string with it is never meaningful here. [`refuse`] looks at every request
//! before routing and answers `422 validation_failed` naming the field when the path, the query
//! string or a JSON or form body carries one, so no handler and no database ever sees it, and
//! both backends answer alike:
//!
//! - a path segment with `%00`: the path parameter's name (`id`), else `path`;
//! - a query parameter with `%00`: the parameter's name (`status`), else `query`;
//! - a JSON body (`application/json`, `…+json`) with the escape `\u0000` in a member name or
//!   a string: its JSON pointer (`/form/company_name`);
//! - a form body (`application/x-www-form-urlencoded`, Open311) with `%00`: the field's name.
//!
//! Headers cannot carry NUL: the HTTP parser refuses them. A raw NUL byte inside a JSON string
//! is not JSON and is left to the JSON extractor (400). Bodies are read once, up to the body
//! limit, scanned, and handed on unchanged; bodies of other media types are not read.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpMessage, ResponseError};
use futures_util::StreamExt;
use serde_json::Value;

use super::RouteTable;
use super::extract::{BodyLimit, too_large};
use crate::error::{ApiError, ErrorCode, FieldError, escape_pointer};

/// What the client is told about the field.
const MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// Middleware: refuses a request with U+0000 in its path, query or JSON/form body (422).
pub async fn refuse(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let table = req.app_data::<web::Data<RouteTable>>().cloned();
    let mut found = in_path(req.path(), table.as_ref().map(|t| t.get_ref()));
    if found.is_none() {
        found = in_form(req.query_string().as_bytes(), "query");
    }
    if found.is_none() {
        let body = body_kind(&req);
        if body != BodyKind::Other {
            let limit = req
                .app_data::<BodyLimit>()
                .map(|l| l.0)
                .unwrap_or(usize::MAX);
            let bytes = match read_body(&mut req, limit).await {
                Ok(bytes) => bytes,
                Err(error) => return Ok(req.into_response(error.error_response())),
            };
            found = match body {
                BodyKind::Json => in_json(&bytes),
                BodyKind::Form => in_form(&bytes, "body"),
                BodyKind::Other => None,
            };
            req.set_payload(Payload::from(bytes));
        }
    }
    match found {
        Some(pointer) => {
            let error = ApiError::validation(vec![FieldError {
                pointer,
                message: MESSAGE.into(),
            }]);
            Ok(req.into_response(error.error_response()))
        }
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Other,
}

fn body_kind(req: &ServiceRequest) -> BodyKind {
    let media = req.content_type().to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") {
        BodyKind::Json
    } else if media == "application/x-www-form-urlencoded" {
        BodyKind::Form
    } else {
        BodyKind::Other
    }
}

/// The whole body, refused (413) past `limit` bytes.
async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(ErrorCode::BadRequest, format!("cannot read the body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The parameter named by the first path segment that decodes to a NUL.
fn in_path(path: &str, table: Option<&RouteTable>) -> Option<String> {
    let index = path
        .trim_matches('/')
        .split('/')
        .position(|segment| has_encoded_nul(segment.as_bytes()))?;
    Some(
        table
            .and_then(|t| t.parameter_at(path, index))
            .unwrap_or_else(|| "path".into()),
    )
}

/// `%00`: the only way to a decoded NUL in a URL or a form body (raw NUL bytes are refused by
/// the HTTP parser in the request line, and are not URL-encoded text).
fn has_encoded_nul(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| w == b"%00") || bytes.contains(&0)
}

/// The name of the first `name=value` pair whose name or value holds a NUL; `whole` when
/// the name itself does.
fn in_form(bytes: &[u8], whole: &str) -> Option<String> {
    if !has_encoded_nul(bytes) {
        return None;
    }
    url::form_urlencoded::parse(bytes)
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| {
            if name.contains('\0') {
                whole.to_string()
            } else {
                name.into_owned()
            }
        })
}

/// The JSON pointer of the first member name or string holding a NUL.
fn in_json(bytes: &[u8]) -> Option<String> {
    // Cheap test first: a NUL in a JSON string is always written `\u0000`.
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    // Not JSON: the JSON extractor answers for it.
    let value: Value = serde_json::from_slice(bytes).ok()?;
    pointer_to_nul(&value, String::new())
}

fn pointer_to_nul(value: &Value, at: String) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then_some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| pointer_to_nul(item, format!("{at}/{i}"))),
        Value::Object(members) => members.iter().find_map(|(name, member)| {
            let here = format!("{at}/{}", escape_pointer(name));
            if name.contains('\0') {
                Some(here)
            } else {
                pointer_to_nul(member, here)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_nul_is_found_with_its_pointer() {
        assert_eq!(in_json(br#"{"a":"x"}"#), None);
        assert_eq!(
            in_json(br#"{"a":"x\\u0000"}"#),
            None,
            "an escaped backslash"
        );
        assert_eq!(in_json(br#"{"a":"x\u0000"}"#), Some("/a".into()));
        assert_eq!(
            in_json(br#"{"form":{"a/b":["ok","n\u0000"]}}"#),
            Some("/form/a~1b/1".into())
        );
        assert_eq!(in_json(br#"{"k\u0000":1}"#), Some("/k\u{0}".into()));
        assert_eq!(in_json(br#"not json \u0000"#), None);
    }

    #[test]
    fn form_and_path_nul_are_named() {
        assert_eq!(in_form(b"a=1&b=x%00y", "query"), Some("b".into()));
        assert_eq!(in_form(b"a%00=1", "query"), Some("query".into()));
        assert_eq!(in_form(b"a=100%25", "query"), None);
        assert_eq!(in_path("/api/v1/requests/x%00", None), Some("path".into()));
        assert_eq!(in_path("/api/v1/requests/x", None), None);
    }
}
