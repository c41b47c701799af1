//! HTTP plumbing shared by every route: request ids and access logs, metrics, security
//! headers and CORS, the request-line and body-size limits, rate limits, the refusal of NUL
//! characters, `HEAD` and conditional `GET`, problem+json for extractor failures, the
//! 404/405 fallback, and the drain of connections on a graceful stop.

pub mod conditional;
pub mod cors;
pub mod drain;
pub mod extract;
pub mod fallback;
pub mod head;
pub mod metrics;
pub mod nul;
pub mod rate_limit;
pub mod request_id;
pub mod request_line;
pub mod security;

pub use self::fallback::RouteTable;
pub use self::metrics::Metrics;
pub use self::request_id::RequestId;
