//! Black-box tests of the HTTP API: real Postgres, Redis, worker and SMTP sink.

mod admin;
mod health;
mod jobs;
mod session;
mod signup;
mod validation;
