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
//!
//! A link is bound to the credentials' epoch it was asked under
//! ([`crate::users::set_password`]): a confirmation asked for by
//! someone who once had the password is void once the owner set a new
//! one, moved the address or began the deletion.

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

/// Stores a new link proving `email` for `user_id`, valid for `ttl`, if the
/// account's credentials are still at `epoch` (the one the link was asked
/// under). Returns whether it did; `false`: the account moved on, send
/// nothing.
pub async fn issue(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    epoch: i64,
    email: &str,
    hash: &TokenHash,
    ttl: Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "insert into email_verifications (token_hash, user_id, email, epoch, expires_at)
         select $1, user_id, $3, credentials_epoch, now() + make_interval(secs => $5)
         from users where user_id = $2 and credentials_epoch = $4 and deleting_since is null",
        &hash[..],
        user_id,
        email,
        epoch,
        ttl.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Spends the link `hash`, and every other open link of its account for
/// the same address, inside the caller's transaction (with the change it
/// authorizes). `None` when it is unknown, used, expired, or void (the
/// account's credentials moved on since it was asked for).
///
/// The account's row is locked first and stays locked until the caller
/// commits: two links of one account followed at once are spent one after
/// the other, and the second sees the address the first confirmed.
pub async fn consume(
    conn: &mut PgConnection,
    hash: &TokenHash,
) -> Result<Option<Proof>, sqlx::Error> {
    let Some(owner) = sqlx::query_scalar!(
        "select user_id from email_verifications where token_hash = $1",
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
    let Some(proof) = sqlx::query_as!(
        Proof,
        "update email_verifications v set used_at = now()
         from users u
         where v.token_hash = $1 and v.used_at is null and v.expires_at > now()
           and u.user_id = v.user_id and u.credentials_epoch = v.epoch
         returning v.user_id, v.email",
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

/// The account a link was followed for a moment ago, if that account now
/// holds the proven address the link was for: the same link followed
/// again (a double click, a second tab) is answered like the first, not
/// as an error. A link spent longer ago than [`FOLLOWED_AGAIN_WITHIN`]
/// names nobody.
pub async fn proven_by(
    db: impl PgExecutor<'_>,
    hash: &TokenHash,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select v.user_id from email_verifications v join users u using (user_id)
         where v.token_hash = $1 and v.used_at > now() - make_interval(secs => $2)
           and lower(u.email) = lower(v.email) and u.email_verified_at is not null
           and u.deleting_since is null",
        &hash[..],
        FOLLOWED_AGAIN_WITHIN.as_secs_f64(),
    )
    .fetch_optional(db)
    .await
}

/// How long after its first use a link is still answered as followed.
pub const FOLLOWED_AGAIN_WITHIN: Duration = Duration::from_secs(600);

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
