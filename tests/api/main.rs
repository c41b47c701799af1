//! Integration tests: one binary, each test with its own real server and database.

mod helpers;
mod smtp_sink;

mod appointments;
mod audit;
mod auth;
mod authority;
mod behalf;
mod browser;
mod calendars;
mod cli;
mod client;
mod clocks;
mod drain;
mod health;
mod horizon;
mod http;
mod limits;
mod mail;
mod materials;
mod open311;
mod openapi;
mod plans;
mod prepared;
mod rate_limits;
mod ratings;
mod requests;
mod schema_parity;
mod security;
mod sla;
mod tickets;
mod tls;
mod workflow;
