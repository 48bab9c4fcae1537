//! The Postgres pool and the migrations embedded in both binaries.

use std::time::Duration;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use platform::config::DatabaseSettings;

/// Migrations from `migrations/`, compiled into the binary so a deploy needs
/// no extra files.
///
/// Migrations applied by a newer release are tolerated, so rolling back a
/// release does not crash-loop its api: migrations are additive (expand now,
/// contract a release later), so the previous code runs on the newer schema.
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("../migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Applies the migrations this release knows and has not applied yet.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    migrator()
        .run(pool)
        .await
        .context("failed to run database migrations")
}

/// A pooled connection idle this long is pinged before a query uses it.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Builds the pool without connecting: a process starts even while Postgres
/// is still coming up, and `/readyz` reports the truth meanwhile.
pub fn pool(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        // A request should fail fast with a 503 rather than queue for ever
        // behind an exhausted pool or an unreachable server.
        .acquire_timeout(Duration::from_secs(3))
        // sqlx pings a connection when it goes back to the pool and, by
        // default, again when it is taken out: two extra round trips around
        // every query, a third of the polling path's cost. A connection in
        // steady use was just checked on release; only one that sat idle
        // (a restarted or failed-over server may have dropped it) is
        // pinged before use.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy(settings.url.expose_secret())
}

/// The pool, once this release's migrations are applied: what the api
/// starts with, and all that `api migrate` does.
pub async fn migrated_pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let pool = pool(settings).context("invalid DATABASE_URL")?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Turns the violation of one named constraint into the caller's own error,
/// in one line (after realworld-axum-sqlx): `.on_constraint("users_email_key", || EmailTaken)`.
/// Any other error converts as usual.
pub trait OnConstraint<T> {
    /// `f()` when the error is a violation of `constraint`, `E::from` otherwise.
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        f: impl FnOnce() -> E,
    ) -> Result<T, E>;
}

impl<T> OnConstraint<T> for Result<T, sqlx::Error> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        f: impl FnOnce() -> E,
    ) -> Result<T, E> {
        self.map_err(|error| match &error {
            sqlx::Error::Database(db) if db.constraint() == Some(constraint) => f(),
            _ => E::from(error),
        })
    }
}
