//! Refuses request lines no legitimate client sends, before any other work (no database, no
//! route matching): a method longer than [`MAX_METHOD_BYTES`] gets 400, a request target
//! (path and query) longer than `server.max_uri_bytes` gets 414, both as problem+json.
//!
//! Without this, a client could send methods or paths of up to the HTTP parser's head limit
//! (over 100 KB), and every later layer (access log, metrics, 404 detail) would carry them.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{ResponseError, http::Method};

use crate::error::{ApiError, ErrorCode};

/// Longest accepted method, in bytes. The longest registered HTTP method (`UPDATEREDIRECTREF`,
/// WebDAV) has 17; every method this API answers has at most 7.
pub const MAX_METHOD_BYTES: usize = 16;

/// `server.max_uri_bytes`, in the application's data.
#[derive(Debug, Clone, Copy)]
pub struct UriLimit(pub usize);

/// In the request's extensions when this layer refused it, so later layers (the metrics) skip
/// their own work on the request line.
#[derive(Debug, Clone, Copy)]
pub struct Refused;

/// Why `method` and `target_len` are refused, if they are.
fn refusal(method: &Method, target_len: usize, limit: usize) -> Option<ApiError> {
    if method.as_str().len() > MAX_METHOD_BYTES {
        return Some(ApiError::new(
            ErrorCode::BadRequest,
            format!("the method is longer than {MAX_METHOD_BYTES} bytes"),
        ));
    }
    (target_len > limit).then(|| {
        ApiError::new(
            ErrorCode::UriTooLong,
            format!("the request target (path and query) is longer than {limit} bytes"),
        )
    })
}

/// Middleware: answers 400 or 414 for an over-long method or target.
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let limit = req.app_data::<UriLimit>().map_or(usize::MAX, |l| l.0);
    let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if let Some(error) = refusal(req.method(), target_len, limit) {
        req.extensions_mut().insert(Refused);
        return Ok(req.into_response(error.error_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_methods_and_targets_are_refused() {
        assert!(refusal(&Method::GET, 2048, 2048).is_none());
        let method = Method::from_bytes(b"PROPFIND").unwrap();
        assert!(refusal(&method, 10, 2048).is_none());
        let long = Method::from_bytes("X".repeat(17).as_bytes()).unwrap();
        assert_eq!(
            refusal(&long, 10, 2048).unwrap().code(),
            ErrorCode::BadRequest
        );
        assert_eq!(
            refusal(&Method::GET, 2049, 2048).unwrap().code(),
            ErrorCode::UriTooLong
        );
    }
}
