//! Session tokens: the `api_tokens` row. This module is the only writer of
//! that table.
//!
//! ```text
//! issue → revoke (one, or all of a user) | expire → purge
//! password asked again: failures counted on the session, 0 → n (within a window,
//!                       at most the limit) → 0 on success or when the window ends
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

/// Which of `hashes` are still valid sessions: one query for however
/// many (the live streams' check that their tokens were not revoked).
pub async fn still_valid(
    db: impl PgExecutor<'_>,
    hashes: &[TokenHash],
) -> Result<Vec<TokenHash>, sqlx::Error> {
    let given: Vec<&[u8]> = hashes.iter().map(|hash| &hash[..]).collect();
    let rows = sqlx::query_scalar!(
        "select token_hash from api_tokens
         where token_hash = any($1) and expires_at > now()",
        &given as &[&[u8]],
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| TokenHash::try_from(row.as_slice()).ok())
        .collect())
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

/// A password asked again of a signed-in user, counted on the session.
#[derive(Debug, Clone, PartialEq)]
pub enum PasswordCheck {
    /// Counted: verify the password against this hash.
    Counted {
        /// The account's address now.
        email: String,
        /// Whether that address is proven.
        verified: bool,
        /// Its Argon2id PHC string.
        password_hash: String,
        /// The credentials' epoch the hash belongs to: what the change the
        /// password authorizes is made under.
        epoch: i64,
    },
    /// The session has used up its attempts for the window.
    Locked {
        /// Seconds until the window ends.
        for_secs: f64,
    },
    /// The session is gone, or its account is gone or being deleted.
    NoSession,
}

/// Counts an attempt of the session `hash` to prove its account's password
/// again (a password change, an email change, a deletion), before the
/// password is checked: on the session, not on the account, so strangers'
/// failed logins never lock the owner's own session out of its account,
/// and a stolen session gets no more guesses than `limit` allows a login
/// (the row lock orders concurrent attempts).
pub async fn begin_password_check(
    db: &sqlx::PgPool,
    hash: &TokenHash,
    limit: platform::config::LoginFailureLimit,
) -> Result<PasswordCheck, sqlx::Error> {
    let max = i32::try_from(limit.max).unwrap_or(i32::MAX);
    let window = limit.window.as_secs_f64();
    let counted = sqlx::query!(
        r#"update api_tokens t set
             password_failures = case when t.password_failures_since > now() - make_interval(secs => $3)
                                      then t.password_failures + 1 else 1 end,
             password_failures_since = case when t.password_failures_since > now() - make_interval(secs => $3)
                                            then t.password_failures_since else now() end
         from users u
         where t.token_hash = $1 and t.expires_at > now()
           and u.user_id = t.user_id and u.deleting_since is null
           and not ($2 > 0 and t.password_failures >= $2
                    and t.password_failures_since > now() - make_interval(secs => $3))
         returning u.email, u.email_verified_at is not null as "verified!",
                   u.password_hash, u.credentials_epoch"#,
        &hash[..],
        max,
        window,
    )
    .fetch_optional(db)
    .await?;
    if let Some(row) = counted {
        return Ok(PasswordCheck::Counted {
            email: row.email,
            verified: row.verified,
            password_hash: row.password_hash,
            epoch: row.credentials_epoch,
        });
    }
    let locked = sqlx::query_scalar!(
        r#"select greatest(extract(epoch from t.password_failures_since
                                              + make_interval(secs => $2) - now())::float8,
                           0) as "for_secs!"
           from api_tokens t join users u using (user_id)
           where t.token_hash = $1 and t.expires_at > now() and u.deleting_since is null"#,
        &hash[..],
        window,
    )
    .fetch_optional(db)
    .await?;
    Ok(
        locked.map_or(PasswordCheck::NoSession, |for_secs| PasswordCheck::Locked {
            for_secs,
        }),
    )
}

/// The session proved the password: its count starts over.
pub async fn clear_password_failures(
    db: impl PgExecutor<'_>,
    hash: &TokenHash,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update api_tokens set password_failures = 0, password_failures_since = null
         where token_hash = $1 and password_failures > 0",
        &hash[..],
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes expired tokens (scheduled maintenance). Returns how many.
pub async fn purge_expired(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!("delete from api_tokens where expires_at < now()")
        .execute(db)
        .await?;
    Ok(deleted.rows_affected())
}
