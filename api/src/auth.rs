//! Password hashing and opaque bearer tokens.
//!
//! Tokens are 32 random bytes; only their SHA-256 is stored, so reading the
//! `api_tokens` table does not let anyone sign in. Argon2id is deliberately
//! slow, so it runs on the blocking pool and never stalls the async runtime.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::PasswordHasher;
use argon2::{Argon2, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::token_cache::TokenHash;

/// How long a token from signup or login stays valid.
pub const TOKEN_TTL_DAYS: i32 = 30;

/// Argon2 hashes running at once. Each takes 19 MiB and a full core, so more
/// than one per core only adds memory (512 blocking threads would be ~10 GB);
/// extra requests wait their turn instead.
static ARGON2_SLOTS: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
});

/// A result with the time spent waiting for an Argon2 slot and hashing.
#[derive(Debug)]
pub struct Timed<T> {
    /// The result.
    pub value: T,
    /// Waiting for a free core.
    pub queued: Duration,
    /// Hashing.
    pub ran: Duration,
}

/// Runs Argon2 work on the blocking pool, at most one per core, in the caller's span.
async fn argon2<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<Timed<T>, ApiError> {
    let asked = Instant::now();
    let _slot = ARGON2_SLOTS
        .acquire()
        .await
        .context("the Argon2 semaphore is never closed")?;
    let queued = asked.elapsed();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let value = span.in_scope(work);
        Timed {
            value,
            queued,
            ran: started.elapsed(),
        }
    })
    .await
    .context("an Argon2 task panicked")
    .map_err(ApiError::Internal)
}

/// Hashes `password` with Argon2id (default parameters: 19 MiB, 2 passes),
/// in a PHC string that records its own parameters.
pub async fn hash_password(password: String) -> Result<Timed<String>, ApiError> {
    let timed = argon2(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))
    })
    .await?;
    Ok(Timed {
        value: timed.value.map_err(ApiError::Internal)?,
        queued: timed.queued,
        ran: timed.ran,
    })
}

/// Checks `password` against a stored PHC hash. With no stored hash (unknown
/// email) it checks against a dummy, so a login takes as long whether or not
/// the account exists and the timing does not reveal who has signed up.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        Argon2::default()
            .hash_password(b"dummy password for timing")
            .expect("argon2 hashes a constant with default parameters")
            .to_string()
    });
    argon2(move || {
        let exists = stored.is_some();
        let hash = stored.unwrap_or_else(|| DUMMY.clone());
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        exists && matches
    })
    .await
    .map(|timed| timed.value)
}

/// A new random token: the string for the client and the hash to store.
pub fn new_token() -> Result<(String, TokenHash), ApiError> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the OS random source failed: {e}"))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// SHA-256 of a token: what we store and compare, never the token itself.
/// Comparing digests also keeps timing from revealing a secret's prefix.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header, trimmed; `None`
/// when the header is missing, malformed or empty.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Issues a token for `user_id` inside the caller's transaction or pool.
pub async fn issue_token<'c>(
    db: impl sqlx::PgExecutor<'c>,
    user_id: Uuid,
) -> Result<String, ApiError> {
    let (token, hash) = new_token()?;
    sqlx::query!(
        "insert into api_tokens (token_hash, user_id, expires_at)
         values ($1, $2, now() + make_interval(days => $3))",
        &hash[..],
        user_id,
        TOKEN_TTL_DAYS,
    )
    .execute(db)
    .await?;
    Ok(token)
}

/// The user behind a valid `Authorization: Bearer <token>` header.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    /// Who is calling.
    pub user_id: Uuid,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let hash = hash_token(token);
        if let Some(user_id) = state.tokens.get(&hash) {
            return Ok(Self { user_id });
        }
        let row = sqlx::query!(
            "select user_id, expires_at from api_tokens
             where token_hash = $1 and expires_at > now()",
            &hash[..],
        )
        .fetch_optional(&state.pool)
        .await?
        .ok_or(ApiError::Unauthorized)?;
        let expires_in = (row.expires_at - Utc::now()).to_std().unwrap_or_default();
        state.tokens.insert(hash, row.user_id, expires_in);
        let user_id = row.user_id;
        Ok(Self { user_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_only_their_hash_is_kept() {
        let (first, first_hash) = new_token().unwrap();
        let (second, _) = new_token().unwrap();
        assert_ne!(first, second);
        assert_eq!(first.len(), 43, "32 bytes in unpadded base64url");
        assert_eq!(first_hash, hash_token(&first));
        assert_ne!(&first_hash[..], first.as_bytes());
    }

    #[tokio::test]
    async fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse".into()).await.unwrap().value;
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("wrong horse".into(), Some(hash))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("dummy password for timing".into(), None)
                .await
                .unwrap()
        );
    }
}
