//! `HEAD` wherever `GET` is served (RFC 9110 §9.3.2): the request is routed as the `GET` it
//! mirrors, so the status and every header are the `GET`'s; actix-http's HTTP/1 codec, which
//! remembers that the request on the wire was `HEAD`, writes the head (with the `GET`'s
//! `Content-Length`) and no body.
//!
//! Doing it once here, before routing, keeps every `#[get]` handler and the docs UI free of
//! a second registration, and the OpenAPI document (which lists `GET` only) the route table.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// Marks a request that arrived as `HEAD` and is routed as `GET`, so the 404/405 fallback can
/// name the method the client really used.
#[derive(Debug, Clone, Copy)]
pub struct HeadRequest;

/// Middleware: routes `HEAD` as `GET`. It must sit inside the middleware that log and count
/// requests, so they still see `HEAD`.
pub async fn as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(HeadRequest);
    }
    next.call(req).await
}
