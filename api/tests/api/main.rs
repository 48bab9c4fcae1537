//! Black-box tests of the HTTP API: real Postgres, Redis, worker and SMTP sink.

mod admin;
mod health;
mod jobs;
mod rate_limit;
mod session;
mod signup;
mod validation;
