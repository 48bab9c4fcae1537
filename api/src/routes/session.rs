//! `POST /api/login` and `DELETE /api/session(s)`: sessions, their tokens,
//! and the per-account limit on failed logins.
//!
//! Failed logins are counted per account in Postgres: past
//! `LOGIN_FAILURE_LIMIT` failures in `LOGIN_FAILURE_WINDOW_SECS`, the
//! account answers 429 (before any hashing) until the window ends, from
//! every address and on every api instance. The cost is that anyone can
//! hold one account's logins off for the window; its owner's existing
//! sessions keep working.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;

use crate::domain::EmailAddress;
use shared::config::LoginFailureLimit;
use shared::users;

use super::endpoints::{Endpoints, Limits};
use super::users::UserBody;
use crate::auth::{AuthUser, issue_token, revoke_all_tokens, revoke_token};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// `POST /api/login` (a credential endpoint, counted per client),
/// `DELETE /api/session` (this token) and `DELETE /api/sessions` (all of
/// the user's tokens: sign out everywhere).
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(login), Limits::CREDENTIALS)
        .add(routes!(logout), Limits::JSON)
        .add(routes!(logout_everywhere), Limits::JSON)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginForm {
    email: String,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LoginResponse {
    user: UserBody,
    token: String,
}

/// A new session token for the account's owner.
#[utoipa::path(post, path = "/api/login", tag = "account",
    request_body = LoginForm,
    responses(
        (status = 200, description = "The user and a new token", body = LoginResponse),
        (status = 400, description = "The body is not JSON", body = crate::error::Body),
        (status = 401, description = "Wrong email or password", body = crate::error::Body),
        (status = 422, description = "A field is missing or not text", body = crate::error::Body),
        (status = 429, description = "Too many attempts from this client, or failed logins on this account", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 503, description = "At capacity or a dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "login", skip_all, fields(user_id = tracing::field::Empty))]
async fn login(
    State(state): State<AppState>,
    JsonBody(form): JsonBody<LoginForm>,
) -> Result<Json<LoginResponse>, ApiError> {
    let email = form.email.trim();
    // No account can have such an address (signup refuses it), and
    // Postgres refuses text with NUL in it: wrong credentials, not a 500.
    if email.len() > EmailAddress::MAX_LEN || email.contains('\0') {
        return Err(ApiError::InvalidCredentials);
    }
    let limit = state.login_failures;
    let user = users::login_candidate(&state.pool, email, limit).await?;
    if let Some(user) = &user {
        tracing::Span::current().record("user_id", tracing::field::display(user.user_id));
    }
    if let Some(seconds) = user.as_ref().and_then(|user| user.locked_for) {
        return Err(ApiError::RateLimited(seconds.ceil().max(1.0) as u64));
    }
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    if !state.passwords.verify(form.password, stored_hash).await? {
        if let Some(user) = &user {
            record_failure(&state, user.user_id, limit).await?;
        }
        return Err(ApiError::InvalidCredentials);
    }
    let user = user.ok_or(ApiError::InvalidCredentials)?;
    if user.failures > 0 {
        users::clear_login_failures(&state.pool, user.user_id).await?;
    }
    let token = issue_token(&state.pool, user.user_id).await?;
    let user = UserBody::find(&state.pool, user.user_id)
        .await?
        // Deleted between the check and now: as if it never existed.
        .ok_or(ApiError::InvalidCredentials)?;
    Ok(Json(LoginResponse { user, token }))
}

/// Counts a failed login; the window restarts when the last one has ended.
async fn record_failure(
    state: &AppState,
    user_id: uuid::Uuid,
    limit: LoginFailureLimit,
) -> Result<(), ApiError> {
    let failures = users::record_login_failure(&state.pool, user_id, limit.window).await?;
    if limit.max > 0 && u32::try_from(failures).is_ok_and(|failures| failures == limit.max) {
        // Once per lockout, not once per attempt.
        tracing::warn!(%user_id, failures, "too many failed logins; account locked for the window");
    }
    Ok(())
}

/// Revokes the calling token.
#[utoipa::path(delete, path = "/api/session", tag = "account", security(("bearer" = [])),
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, description = "No valid token", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "logout", skip_all, fields(user_id = %auth.user_id))]
async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode, ApiError> {
    revoke_token(&state, &auth.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes every token of the calling user, this one included.
#[utoipa::path(delete, path = "/api/sessions", tag = "account", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every token of the user is revoked"),
        (status = 401, description = "No valid token", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "logout_everywhere", skip_all, fields(user_id = %auth.user_id))]
async fn logout_everywhere(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<StatusCode, ApiError> {
    revoke_all_tokens(&state, auth.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
