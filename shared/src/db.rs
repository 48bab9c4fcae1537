//! The Postgres pool and the migrations embedded in both binaries.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::config::Settings;

/// Migrations from `migrations/`, compiled into the binary so a deploy needs
/// no extra files.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Builds the pool without connecting: a process starts even while Postgres
/// is still coming up, and `/readyz` reports the truth meanwhile.
pub fn pool(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        // A request should fail fast with a 503 rather than queue for ever
        // behind an exhausted pool or an unreachable server.
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(settings.database_url.expose_secret())
}
