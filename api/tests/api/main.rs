//! Black-box tests of the HTTP API: real Postgres, Redis, worker and SMTP sink.

mod admin;
mod browser_headers;
mod cli;
mod fuzz;
mod health;
mod jobs;
mod memory;
mod metrics;
mod openapi;
mod overload;
mod password;
mod rate_limit;
mod raw;
mod request_ids;
mod rollback;
mod schemathesis;
mod session;
mod signup;
mod slow_clients;
mod traces;
mod uploads;
mod validation;
mod verification;
mod web;
mod web_account;
mod webhooks;
