//! Password reset links: the `password_resets` row. This module is the
//! only writer of that table.
//!
//! ```text
//! issue (the reset email is sent) → consume (once, before expiry) → purge
//!                                 → expire                        → purge
//! ```
//!
//! A link is a 256-bit random token made by the worker when it sends the
//! email, so the token is never in a job's payload, in Redis or in a job
//! record; only its SHA-256 is stored. Using one link spends every other
//! link of the same account.

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::tokens::TokenHash;

/// Stores a new reset link of `user_id`, valid for `ttl`.
pub async fn issue(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    hash: &TokenHash,
    ttl: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into password_resets (token_hash, user_id, expires_at)
         values ($1, $2, now() + make_interval(secs => $3))",
        &hash[..],
        user_id,
        ttl.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Spends the link `hash` and every other open link of its account, inside
/// the caller's transaction (with the password change it authorizes).
/// `None` when it is unknown, used or expired.
pub async fn consume(
    conn: &mut PgConnection,
    hash: &TokenHash,
) -> Result<Option<Uuid>, sqlx::Error> {
    let Some(user_id) = sqlx::query_scalar!(
        "update password_resets set used_at = now()
         where token_hash = $1 and used_at is null and expires_at > now()
         returning user_id",
        &hash[..],
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    sqlx::query!(
        "update password_resets set used_at = now() where user_id = $1 and used_at is null",
        user_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(Some(user_id))
}

/// Removes links that can no longer be used (spent or expired); returns
/// how many.
pub async fn purge_spent(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "delete from password_resets where used_at is not null or expires_at <= now()"
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
