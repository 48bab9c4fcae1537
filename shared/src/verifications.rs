//! Email verification links: the `email_verifications` row. This module is
//! the only writer of that table.
//!
//! ```text
//! issue (the email is sent) → consume (once, before expiry) → purge
//!                           → expire                        → purge
//! ```
//!
//! A link proves that whoever holds it reads `email`: the account's own
//! address after signup, or the new one of an email change. Like a reset
//! link, its 256-bit token is made by the worker when it sends the email
//! and only its SHA-256 is stored. Using a link spends every other open
//! link of the account for the same address.

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::tokens::TokenHash;

/// What a spent link proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The account the link was sent for.
    pub user_id: Uuid,
    /// The address it was sent to.
    pub email: String,
}

/// Stores a new link proving `email` for `user_id`, valid for `ttl`.
pub async fn issue(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    email: &str,
    hash: &TokenHash,
    ttl: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into email_verifications (token_hash, user_id, email, expires_at)
         values ($1, $2, $3, now() + make_interval(secs => $4))",
        &hash[..],
        user_id,
        email,
        ttl.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Spends the link `hash`, and every other open link of its account for
/// the same address, inside the caller's transaction (with the change it
/// authorizes). `None` when it is unknown, used or expired.
pub async fn consume(
    conn: &mut PgConnection,
    hash: &TokenHash,
) -> Result<Option<Proof>, sqlx::Error> {
    let Some(proof) = sqlx::query_as!(
        Proof,
        "update email_verifications set used_at = now()
         where token_hash = $1 and used_at is null and expires_at > now()
         returning user_id, email",
        &hash[..],
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    sqlx::query!(
        "update email_verifications set used_at = now()
         where user_id = $1 and lower(email) = lower($2) and used_at is null",
        proof.user_id,
        proof.email,
    )
    .execute(&mut *conn)
    .await?;
    Ok(Some(proof))
}

/// Removes links that can no longer be used (spent or expired); returns
/// how many.
pub async fn purge_spent(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "delete from email_verifications where used_at is not null or expires_at <= now()"
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
