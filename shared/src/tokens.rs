//! Session tokens: the `api_tokens` row. This module is the only writer of
//! that table.
//!
//! ```text
//! issue → revoke (one, or all of a user) | expire → purge
//! ```
//!
//! Only a token's SHA-256 is stored: reading the table does not let anyone
//! sign in. Making and hashing tokens is the api's business; this module
//! keeps the rows.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// SHA-256 of a bearer token (or of any of our single-use secrets).
pub type TokenHash = [u8; 32];

/// A new secret for a client (a session, a trusted device, a reset link):
/// 32 random bytes as unpadded base64url (43 characters), and its hash,
/// the only thing stored.
pub fn mint() -> Result<(String, TokenHash), getrandom::Error> {
    use base64::Engine as _;
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    Ok((token, hash))
}

/// SHA-256 of a secret: what we store and compare, never the secret itself.
/// Comparing digests also keeps timing from revealing a secret's prefix.
pub fn hash(token: &str) -> TokenHash {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header, trimmed; `None`
/// when the header is missing, malformed or empty.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// The hash of a token set in the configuration (`METRICS_TOKEN`,
/// `ADMIN_TOKEN`), trimmed as [`bearer`] trims what clients send.
pub fn hash_setting(secret: &secrecy::SecretString) -> TokenHash {
    use secrecy::ExposeSecret as _;
    hash(secret.expose_secret().trim())
}

/// Whether `given` hashes to `expected`, compared in constant time: for
/// the secrets held in memory (the operator's and the scraper's tokens),
/// where an early exit would leak how much of the digest matched.
pub fn matches(given: &str, expected: &TokenHash) -> bool {
    use subtle::ConstantTimeEq as _;
    hash(given).ct_eq(expected).into()
}

/// Whether a stored digest equals `expected`, in constant time.
pub fn same(stored: &[u8], expected: &TokenHash) -> bool {
    use subtle::ConstantTimeEq as _;
    stored.ct_eq(&expected[..]).into()
}

/// How long a token from signup or login stays valid.
pub const TTL_DAYS: i32 = 30;

/// A stored, unexpired token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Whose token it is.
    pub user_id: Uuid,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Stores a new token of `user_id`, valid for [`TTL_DAYS`], inside the
/// caller's transaction or pool.
pub async fn issue(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    hash: &TokenHash,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into api_tokens (token_hash, user_id, expires_at)
         values ($1, $2, now() + make_interval(days => $3))",
        &hash[..],
        user_id,
        TTL_DAYS,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The session behind `hash`, if it exists and has not expired.
pub async fn find(
    db: impl PgExecutor<'_>,
    hash: &TokenHash,
) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as!(
        Session,
        "select user_id, expires_at from api_tokens
         where token_hash = $1 and expires_at > now()",
        &hash[..],
    )
    .fetch_optional(db)
    .await
}

/// Revokes one token. Returns whether it existed.
pub async fn revoke(db: impl PgExecutor<'_>, hash: &TokenHash) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!("delete from api_tokens where token_hash = $1", &hash[..])
        .execute(db)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Revokes every token of `user_id` (sign out everywhere, a password change,
/// an account deletion). Returns how many there were.
pub async fn revoke_all_of_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!("delete from api_tokens where user_id = $1", user_id)
        .execute(db)
        .await?;
    Ok(deleted.rows_affected())
}

/// Revokes every token of `user_id` but `keep` (a password change ends
/// the other sessions, not the one that made it). Returns how many went.
pub async fn revoke_others(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    keep: &TokenHash,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!(
        "delete from api_tokens where user_id = $1 and token_hash <> $2",
        user_id,
        &keep[..],
    )
    .execute(db)
    .await?;
    Ok(deleted.rows_affected())
}

/// Deletes expired tokens (scheduled maintenance). Returns how many.
pub async fn purge_expired(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!("delete from api_tokens where expires_at < now()")
        .execute(db)
        .await?;
    Ok(deleted.rows_affected())
}
