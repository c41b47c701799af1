//! HTTP plumbing shared by every route: request ids and access logs, metrics, security
//! headers and CORS, the body-size limit, `HEAD` and conditional `GET`, problem+json for
//! extractor failures, and the 404/405 fallback.

pub mod conditional;
pub mod cors;
pub mod extract;
pub mod fallback;
pub mod head;
pub mod metrics;
pub mod request_id;
pub mod security;

pub use self::fallback::RouteTable;
pub use self::metrics::Metrics;
pub use self::request_id::RequestId;
