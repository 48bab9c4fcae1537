//! Opaque bearer tokens: issuing, checking and revoking them.
//!
//! Tokens are 32 random bytes; only their SHA-256 is stored, so reading the
//! `api_tokens` table does not let anyone sign in; [`store::tokens`] keeps
//! the rows. (Passwords are hashed in [`crate::passwords`].)

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::Utc;
use store::{devices, tokens};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::token_cache::TokenHash;

/// A new random token: the string for the client and the hash to store.
pub fn new_token() -> Result<(String, TokenHash), ApiError> {
    Ok(tokens::mint().map_err(|e| anyhow::anyhow!("the OS random source failed: {e}"))?)
}

/// SHA-256 of a token: what we store and compare, never the token itself.
pub fn hash_token(token: &str) -> TokenHash {
    tokens::hash(token)
}

/// The token of an `Authorization: Bearer <token>` header, trimmed; `None`
/// when the header is missing, malformed or empty.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    tokens::bearer(&parts.headers)
}

/// Issues a token for `user_id` inside the caller's transaction or pool.
pub async fn issue_token<'c>(
    db: impl sqlx::PgExecutor<'c>,
    user_id: Uuid,
) -> Result<String, ApiError> {
    let (token, hash) = new_token()?;
    tokens::issue(db, user_id, &hash).await?;
    Ok(token)
}

/// Trusts this device for `user_id` from now on: the token for the client.
pub async fn trust_device<'c>(
    db: impl sqlx::PgExecutor<'c>,
    user_id: Uuid,
) -> Result<String, ApiError> {
    let (token, hash) = new_token()?;
    devices::issue(db, user_id, &hash).await?;
    Ok(token)
}

/// Revokes one token: refused at once on this instance; other instances
/// stop trusting their cached copy within [`TokenCache::TTL`](crate::token_cache::TokenCache::TTL).
pub async fn revoke_token(state: &AppState, hash: &TokenHash) -> Result<(), ApiError> {
    tokens::revoke(&state.pool, hash).await?;
    state.tokens.remove(hash);
    state.events.revoke(hash);
    Ok(())
}

/// The user behind a valid `Authorization: Bearer <token>` header.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    /// Who is calling.
    pub user_id: Uuid,
    /// The token they called with, hashed (to revoke it on logout).
    pub token: TokenHash,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let hash = hash_token(token);
        if let Some(user_id) = state.tokens.get(&hash) {
            return Ok(Self {
                user_id,
                token: hash,
            });
        }
        let row = tokens::find(&state.pool, &hash)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let expires_in = (row.expires_at - Utc::now()).to_std().unwrap_or_default();
        state.tokens.insert(hash, row.user_id, expires_in);
        Ok(Self {
            user_id: row.user_id,
            token: hash,
        })
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
}
