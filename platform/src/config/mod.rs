//! One typed [`Settings`], read from the environment by both binaries
//! (12-factor), grouped by concern: each group is handed whole to the code
//! that uses it.
//!
//! Each group is one file: its struct, what each field means, and one
//! line per field naming its variable, default and syntax, which both
//! reads it and writes it back ([`Settings::to_env`], for child processes,
//! so tests change settings as typed values). To add a setting, add the
//! field and its line, then document the variable in `.env.example` and
//! `docs/configuration.md` (a test checks both). `variables.rs` holds the
//! syntaxes (seconds, secrets, lists, …).

mod alerts;
mod auth;
mod bounds;
mod database;
mod events;
mod links;
mod mail;
mod maintenance;
mod photos;
mod providers;
mod queues;
mod redis;
mod server;
mod storage;
mod telemetry;
mod variables;
mod worker;

use std::fmt;

use catalogue::{QueueName, QueueSettings, QueueTable};
use variables::{Env, Group as _, Nested, variables};

pub use alerts::AlertSettings;
pub use auth::{
    ARGON2_DEFAULT_ITERATIONS, ARGON2_DEFAULT_MEMORY_KIB, ARGON2_MIN_ITERATIONS,
    ARGON2_MIN_MEMORY_KIB, Argon2Settings, AuthSettings, LoginFailureLimit,
};
pub use database::DatabaseSettings;
pub use events::EventSettings;
pub use links::LinkSettings;
pub use mail::MailSettings;
pub use maintenance::MaintenanceSettings;
pub use photos::{PhotoSettings, UploadLimits};
pub use providers::{Provider, ProviderSettings};
pub use redis::RedisSettings;
pub use server::{CorsOrigins, HttpLimits, ServerSettings};
pub use storage::{S3Settings, StorageSettings};
pub use telemetry::{LogFormat, TelemetrySettings};
pub use worker::WorkerSettings;

/// Everything either binary needs to know about its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres.
    pub database: DatabaseSettings,
    /// Redis, where the queues live.
    pub redis: RedisSettings,
    /// The api's HTTP server: address, limits, browsers, scrapers.
    pub server: ServerSettings,
    /// Live streams of job status to browsers.
    pub events: EventSettings,
    /// The links both binaries hand out: their base, how long tokens work.
    pub links: LinkSettings,
    /// Sign-up, login and operator access.
    pub auth: AuthSettings,
    /// Profile photos: what is accepted, and per-account limits.
    pub photos: PhotoSettings,
    /// Where files are kept.
    pub storage: StorageSettings,
    /// Outgoing email.
    pub mail: MailSettings,
    /// Third-party services (Stripe, Slack).
    pub providers: ProviderSettings,
    /// How each queue is retried, kept and consumed (`QUEUE_<NAME>_…`).
    pub queues: QueueTable,
    /// The worker process.
    pub worker: WorkerSettings,
    /// Housekeeping: how often, and what is old enough to go.
    pub maintenance: MaintenanceSettings,
    /// Telling the team when a queue stops moving.
    pub alerts: AlertSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
}

variables! {
    Settings {
        database: Nested,
        redis: Nested,
        server: Nested,
        events: Nested,
        links: Nested,
        auth: Nested,
        photos: Nested,
        storage: Nested,
        mail: Nested,
        providers: Nested,
        queues: Nested,
        worker: Nested,
        maintenance: Nested,
        alerts: Nested,
        telemetry: Nested,
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment (which is shared by every test thread).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(&lookup);
        let settings = Self::read(&mut env);
        env.finish(settings)
    }

    /// Every variable, with the value that reads back as these settings
    /// (an empty value is the same as unset): what a child process (a test's
    /// `worker` binary) is started with. Secrets are in it, exposed.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        self.write(&mut vars);
        vars
    }

    /// How `queue`'s jobs are retried, kept and consumed.
    pub fn queue(&self, queue: QueueName) -> QueueSettings {
        self.queues.get(queue)
    }
}

/// The settings that were missing or malformed, all of them.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration (see .env.example):")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// Loads `./.env` into the process environment, so `cargo run -p api` works
/// like `scripts/dev`; variables already set win. Only the working
/// directory is searched (not its parents), so a process started elsewhere,
/// by a test for instance, never picks up a developer's file. No file is
/// fine; a malformed one is an error naming the line.
pub fn load_dotenv() -> Result<(), String> {
    match dotenvy::from_path(".env") {
        Ok(()) => Ok(()),
        Err(error) if error.not_found() => Ok(()),
        Err(error) => Err(format!("cannot read .env: {error}")),
    }
}

#[cfg(test)]
mod tests;
