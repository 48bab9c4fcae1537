//! The Postgres owners: one module per table, the only writer of its rows,
//! each naming its transitions as functions stated in SQL. Routes and jobs
//! call them; account deletion finds everything of a user here. [`db`]
//! holds the pool and the embedded migrations.
//!
//! - [`records`]: the job records (`jobs`), whose states only move forward
//!   (the api's outbox inserts them, the worker moves them on).
//! - [`users`]: accounts, their lockout window and what the jobs set on them.
//! - [`tokens`]: session tokens (`api_tokens`), stored hashed.
//! - [`resets`]: password reset links, stored hashed.
//! - [`verifications`]: email verification links, stored hashed.
//! - [`devices`]: devices trusted by an account during its lockout, stored hashed.
//! - [`mail_budgets`]: how many emails went to an address or an account lately, taken atomically.
//! - [`photos`]: the photo lifecycle, with the per-account upload limits.
//! - [`stripe_events`]: Stripe events as the webhook received them, once each.
//! - [`subscriptions`]: users' Stripe subscriptions, never overwritten by an older event.
//!
//! And [`unsubscribe`]: the signed links that opt a user out of product mail.
//! Tables only the api writes (operators' sessions, alert incidents) are
//! owned inside the api.

pub mod db;
pub mod devices;
pub mod mail_budgets;
pub mod photos;
pub mod records;
pub mod resets;
pub mod stripe_events;
pub mod subscriptions;
pub mod tokens;
pub mod unsubscribe;
pub mod users;
pub mod verifications;
