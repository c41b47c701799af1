//! Security headers on every response, and who may read a response from a cache.
//!
//! * `X-Content-Type-Options: nosniff` everywhere: a browser never guesses a script or a page
//!   out of a JSON, CSV or text body.
//! * `Cache-Control: no-store` on every answer that may carry personal or internal data
//!   ([`holds_personal_data`]): the API under `/api/v1` except the public catalog, the Open311
//!   requests and tokens, `/metrics`. Shared and browser caches keep none of it. The public
//!   catalog keeps the `public, max-age=300` its handlers set.
//! * `X-Frame-Options: DENY` and a `Content-Security-Policy` with `frame-ancestors 'none'`
//!   everywhere: nothing of ours is meant to be framed. The docs UI (`/docs/`) gets the
//!   policy the vendored Swagger UI works under ([`DOCS_CSP`]); every other answer is data, and
//!   its policy allows nothing at all.
//!
//! See `docs/security.md`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use actix_web::middleware::Next;

/// The policy of the docs UI: its own scripts and styles (Swagger UI sets inline `style`
/// attributes, hence `'unsafe-inline'` for styles only; no inline or remote script), its
/// `data:` images, and requests ("Try it out", the document itself) to this server alone.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The policy of every data answer: nothing may load, nothing may frame it.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The catalog paths under `/api/v1/` that are public and cacheable.
const PUBLIC_CATALOG: &[&str] = &["units", "matters", "bundles"];

/// Whether answers at `path` may hold personal or internal data, and so must not be stored by
/// any cache.
pub fn holds_personal_data(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        let first = rest.split('/').next().unwrap_or_default();
        return !PUBLIC_CATALOG.contains(&first);
    }
    path == "/api/v1"
        || path == "/metrics"
        || path.starts_with("/open311/v2/requests")
        || path.starts_with("/open311/v2/tokens/")
}

/// Whether `path` is the docs UI.
fn is_docs(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

/// Middleware: sets the headers above on every answer, errors included.
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let personal = holds_personal_data(req.path());
    let docs = is_docs(req.path());
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if docs { DOCS_CSP } else { API_CSP }),
    );
    if personal {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_is_everything_but_the_catalog_and_public_pages() {
        for path in [
            "/api/v1/me",
            "/api/v1/requests",
            "/api/v1/requests/0190c3a0-0000-7000-8000-000000000001",
            "/api/v1/queue",
            "/api/v1/unitsx",
            "/metrics",
            "/open311/v2/requests.json",
            "/open311/v2/requests/PT20261127-000001.xml",
            "/open311/v2/tokens/x.json",
        ] {
            assert!(holds_personal_data(path), "{path}");
        }
        for path in [
            "/api/v1/units",
            "/api/v1/matters",
            "/api/v1/matters/market.establish",
            "/api/v1/bundles",
            "/health/live",
            "/open311/v2/services.json",
            "/open311/v2/discovery.json",
            "/docs/",
            "/api-docs/openapi.json",
        ] {
            assert!(!holds_personal_data(path), "{path}");
        }
    }
}
