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
//!
//! A link is bound to the address it was sent to and to the credentials'
//! epoch it was asked under ([`crate::users::set_password`]): once the
//! account's address moved, its password was set or its deletion began,
//! the link is void, however young. An account that never proved its
//! address is the exception to the epoch (not to the address): its
//! signer may be a squatter, and a squatter changing the password must
//! not void the link that lets the address's owner take the address back.
//! "End every session" voids no link: whoever knows the password could
//! otherwise void the owner's reset link silently.

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::tokens::TokenHash;

/// Stores a new reset link of `user_id` for its address now, valid for
/// `ttl`, if its credentials are still at `epoch` (the one the reset was
/// asked under). Returns the address the link is bound to, where the
/// email must go; `None`: the account moved on, send nothing.
pub async fn issue(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    epoch: i64,
    hash: &TokenHash,
    ttl: Duration,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into password_resets (token_hash, user_id, email, epoch, expires_at)
         select $1, user_id, email, credentials_epoch, now() + make_interval(secs => $4)
         from users
         where user_id = $2 and deleting_since is null
           and (credentials_epoch = $3 or email_verified_at is null)
         returning email",
        &hash[..],
        user_id,
        epoch,
        ttl.as_secs_f64(),
    )
    .fetch_optional(db)
    .await
}

/// Spends the link `hash` and every other open link of its account, inside
/// the caller's transaction (with the password change it authorizes).
/// `None` when it is unknown, used, expired, or void: the account's
/// address or credentials moved on since it was sent.
///
/// The account's row is locked first, so links of one account followed at
/// once are spent one after the other (each sees what the previous did)
/// instead of locking each other's links in opposite orders.
pub async fn consume(
    conn: &mut PgConnection,
    hash: &TokenHash,
) -> Result<Option<Uuid>, sqlx::Error> {
    let Some(owner) = sqlx::query_scalar!(
        "select user_id from password_resets where token_hash = $1",
        &hash[..],
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    if !crate::users::lock(&mut *conn, owner).await? {
        return Ok(None);
    }
    let Some(user_id) = sqlx::query_scalar!(
        "update password_resets r set used_at = now()
         from users u
         where r.token_hash = $1 and r.used_at is null and r.expires_at > now()
           and u.user_id = r.user_id and lower(u.email) = lower(r.email)
           and (u.credentials_epoch = r.epoch or u.email_verified_at is null)
         returning r.user_id",
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
