//! Conditional `GET`: `If-None-Match` answered with `304 Not Modified` (RFC 9110 §13.1.2)
//! wherever a response carries an `ETag` (the catalog, a request's detail, a rectification
//! case), so a portal that keeps what it read revalidates it without the body.
//!
//! The comparison is the weak one the RFC prescribes for `If-None-Match`: `W/"r3"` matches
//! `"r3"`; a list matches if any member does; `*` matches any current representation. The
//! handler still runs (its answer decides the `ETag` and whether the resource exists, and
//! for whom); only the body is saved. A `304` keeps the headers a cache updates from (`ETag`,
//! `Cache-Control`, `Vary`, …) and drops the body's own (`Content-Type`, `Content-Length`).

use std::str::FromStr;

use actix_web::HttpResponse;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, EntityTag, Header, IfNoneMatch};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;

/// Whether `If-None-Match: condition` matches a representation with `etag` (weak comparison).
pub fn none_match_fails(condition: &IfNoneMatch, etag: &EntityTag) -> bool {
    match condition {
        IfNoneMatch::Any => true,
        IfNoneMatch::Items(tags) => tags.iter().any(|tag| tag.weak_eq(etag)),
    }
}

/// Middleware: turns a `200` to a `GET`/`HEAD` whose `ETag` matches `If-None-Match` into a
/// `304` without a body.
pub async fn not_modified(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let condition = (matches!(*req.method(), Method::GET | Method::HEAD)
        && req.headers().contains_key(IfNoneMatch::name()))
    .then(|| IfNoneMatch::parse(&req).ok())
    .flatten();
    let response = next.call(req).await?;
    let Some(condition) = condition else {
        return Ok(response.map_into_left_body());
    };
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| EntityTag::from_str(v).ok());
    let matched = response.status() == StatusCode::OK
        && etag.is_some_and(|etag| none_match_fails(&condition, &etag));
    if !matched {
        return Ok(response.map_into_left_body());
    }
    let mut not_modified = HttpResponse::NotModified().finish();
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            not_modified
                .headers_mut()
                .append(name.clone(), value.clone());
        }
    }
    let (req, _) = response.into_parts();
    Ok(ServiceResponse::new(req, not_modified).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> EntityTag {
        text.parse().unwrap()
    }

    #[test]
    fn weak_comparison_lists_and_any() {
        let strong = tag("\"r3\"");
        let items = |tags: &[&str]| IfNoneMatch::Items(tags.iter().map(|t| tag(t)).collect());
        assert!(none_match_fails(&IfNoneMatch::Any, &strong));
        assert!(none_match_fails(&items(&["\"r3\""]), &strong));
        assert!(none_match_fails(&items(&["W/\"r3\""]), &strong));
        assert!(none_match_fails(&items(&["\"r3\""]), &tag("W/\"r3\"")));
        assert!(none_match_fails(&items(&["\"r1\"", "\"r3\""]), &strong));
        assert!(!none_match_fails(&items(&["\"r1\"", "W/\"r2\""]), &strong));
        assert!(!none_match_fails(&items(&["\"R3\""]), &strong));
    }
}
