//! Integration tests: one binary, each test with its own real server and database.

mod helpers;
mod smtp_sink;

mod audit;
mod auth;
mod authority;
mod calendars;
mod cli;
mod client;
mod clocks;
mod health;
mod horizon;
mod http;
mod mail;
mod materials;
mod open311;
mod openapi;
mod ratings;
mod requests;
mod schema_parity;
mod sla;
mod tls;
mod workflow;
