//! mashangban (马上办): the enterprise service-request backend of a district government service
//! centre. See `docs/architecture.md` for the layers and the path of one request through them.

pub mod app;
pub mod appointment_worker;
pub mod auth;
pub mod background;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod notify;
pub mod routes;
pub mod sla;
pub mod telemetry;
pub mod tls;
