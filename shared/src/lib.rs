//! What both binaries use, and only that: kept free of the worker's heavy
//! dependencies so the api stays small. What one binary alone needs lives
//! in that binary's crate.
//!
//! - [`config`]: the one typed [`Settings`](config::Settings), read from the environment.
//! - [`telemetry`]: tracing set-up (JSON in production, pretty in development).
//! - [`http`]: HTTP clients on our TLS stack (object storage, third-party APIs).
//! - [`dead_letters`]: failed jobs listed, retried and removed (the CLI and the dashboard).
//! - [`db`]: the Postgres pool and the embedded migrations.
//! - [`jobs`]: the job catalogue: one payload struct per queue, with its default options.
//! - [`metrics`]: the process's Prometheus recorder, rendered at `/metrics`.
//! - [`queue`]: the typed layer over BullMQ (`enqueue`, connection health).
//! - [`storage`]: files the jobs produce (local folder or object store), at deterministic keys.
//! - [`server`]: the HTTP/1 connection loop, with header, idle and connection limits.
//! - [`shutdown`]: the SIGINT/SIGTERM signal both binaries stop on.
//! - [`slack`]: posts to Slack webhooks as plain text, user text made inert.
//! - [`startup`]: `.env`, settings and telemetry, the same way in both binaries.
//!
//! One owner per table: each module below is the only writer of its table
//! and names its transitions as functions, stated in SQL. Routes and jobs
//! call them; account deletion finds everything of a user here.
//!
//! - [`records`]: the job records (`jobs`), whose states only move forward
//!   (the api's outbox inserts them, the worker moves them on).
//! - [`users`]: accounts, their lockout window and what the jobs set on them.
//! - [`tokens`]: session tokens (`api_tokens`), stored hashed.
//! - [`resets`]: password reset links, stored hashed.
//! - [`devices`]: devices trusted by an account during its lockout, stored hashed.
//! - [`photos`]: the photo lifecycle, with the per-account upload limits.
//! - [`stripe_events`]: Stripe events as the webhook received them, once each.
//! - [`subscriptions`]: users' Stripe subscriptions, never overwritten by an older event.
//! - [`verifications`]: email verification links, stored hashed.
//! - [`mail_budgets`]: how many emails went to an address or an account lately, taken atomically.
//! - [`admin`]: operators' dashboard sessions (server-side) and the audit log of their actions.
//! - [`incidents`]: alert incidents, opened and closed once each, and whether the team was told.
//!
//! And [`unsubscribe`]: the signed links that opt a user out of product mail.

pub mod admin;
pub mod config;
pub mod db;
pub mod dead_letters;
pub mod devices;
pub mod http;
pub mod incidents;
pub mod jobs;
pub mod mail_budgets;
pub mod metrics;
pub mod photos;
pub mod queue;
pub mod records;
pub mod resets;
pub mod server;
pub mod shutdown;
pub mod slack;
pub mod startup;
pub mod storage;
pub mod stripe_events;
pub mod subscriptions;
pub mod telemetry;
pub mod tokens;
pub mod unsubscribe;
pub mod users;
pub mod verifications;

/// `duration` in whole milliseconds, saturating: the unit BullMQ and Redis
/// take.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
