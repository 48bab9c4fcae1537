//! Operators: their dashboard sessions (`admin_sessions`) and the audit
//! log of what they did (`admin_audit`). This module is the only writer of
//! both tables.
//!
//! ```text
//! open session → (each request) live? → end (one, or every one) | expire
//! every action → audit row
//! ```
//!
//! A session is a random token in an `HttpOnly` cookie, stored hashed, so
//! it says nothing about `ADMIN_TOKEN` and signing out ends it on every
//! api instance. Each row keeps the hash of the `ADMIN_TOKEN` it was opened
//! with: rotating the token ends every session at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use store::tokens::TokenHash;

/// Opens a session whose cookie hashes to `session_hash`, for `lifetime`;
/// clears expired ones on the way (sign-ins are rare, so this is the sweep).
pub async fn open_session(
    db: impl PgExecutor<'_> + Copy,
    session_hash: &TokenHash,
    admin_token_hash: &TokenHash,
    client: &str,
    lifetime: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from admin_sessions where expires_at < now()")
        .execute(db)
        .await?;
    sqlx::query!(
        "insert into admin_sessions (session_hash, admin_token_hash, client, expires_at)
         values ($1, $2, $3, now() + make_interval(secs => $4))",
        &session_hash[..],
        &admin_token_hash[..],
        client,
        lifetime.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The `ADMIN_TOKEN` hash the live session `session_hash` was opened
/// with; `None` when it ended, expired or never was.
pub async fn session_token(
    db: impl PgExecutor<'_>,
    session_hash: &TokenHash,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar!(
        "select admin_token_hash from admin_sessions
         where session_hash = $1 and expires_at > now()",
        &session_hash[..],
    )
    .fetch_optional(db)
    .await
}

/// Ends the session `session_hash`; whether it was live.
pub async fn end_session(
    db: impl PgExecutor<'_>,
    session_hash: &TokenHash,
) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query!(
        "delete from admin_sessions where session_hash = $1",
        &session_hash[..],
    )
    .execute(db)
    .await?;
    Ok(ended.rows_affected() == 1)
}

/// Ends every session; how many there were.
pub async fn end_every_session(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let ended = sqlx::query!("delete from admin_sessions")
        .execute(db)
        .await?;
    Ok(ended.rows_affected())
}

/// One operator action, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// `token` (a script with `ADMIN_TOKEN`) or `session <8 hex>`.
    pub actor: String,
    /// The client's address.
    pub client: String,
    /// `sign_in`, `sign_out`, `sign_out_everyone`, `retry`, `retry_all`,
    /// `remove`, `pause` or `resume`.
    pub action: String,
    /// The queue acted on.
    pub queue: Option<String>,
    /// The job acted on.
    pub job_id: Option<String>,
    /// More, e.g. how many jobs a retry-all moved.
    pub detail: Option<String>,
}

/// Records `entry` (its `at` is the database's now).
pub async fn record(db: impl PgExecutor<'_>, entry: &AuditEntry) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into admin_audit (actor, client, action, queue, job_id, detail)
         values ($1, $2, $3, $4, $5, $6)",
        entry.actor,
        entry.client,
        entry.action,
        entry.queue,
        entry.job_id,
        entry.detail,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The latest `limit` actions, newest first.
pub async fn recent(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as!(
        AuditEntry,
        "select at, actor, client, action, queue, job_id, detail
         from admin_audit order by at desc, audit_id desc limit $1",
        limit,
    )
    .fetch_all(db)
    .await
}
