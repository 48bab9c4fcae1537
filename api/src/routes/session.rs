//! `POST /api/login` and `DELETE /api/session(s)`: sessions, their tokens,
//! and the per-account limit on failed logins.
//!
//! Failed logins are counted per account in Postgres, each attempt before
//! its password is hashed: past `LOGIN_FAILURE_LIMIT` attempts in
//! `LOGIN_FAILURE_WINDOW_SECS` that did not succeed, the account answers
//! 429 until the window ends, from every address and on every api
//! instance, however many guesses arrive at once. A stranger can keep
//! doing that, but only to strangers: a device that has signed in to the
//! account before sends its `device_token`, and its attempts are counted
//! on the device instead (OWASP's device cookie), under the same limit.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;

use crate::domain::EmailAddress;
use shared::devices::{self, DeviceAttempt};
use shared::tokens::TokenHash;
use shared::users::{self, LoginAttempt};
use uuid::Uuid;

use super::endpoints::{Endpoints, Limits};
use super::users::UserBody;
use crate::auth::{AuthUser, hash_token, issue_token, new_token, revoke_all_tokens, revoke_token};
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
    /// The `device_token` of an earlier signup or login on this device:
    /// with it, the device can still log in while strangers' failed
    /// guesses have locked the account.
    #[schema(nullable = false)]
    device_token: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LoginResponse {
    user: UserBody,
    token: String,
    /// Keep it on this device and send it with the next login.
    device_token: String,
}

/// A new session token for the account's owner.
#[utoipa::path(post, path = "/api/login", tag = "account",
    request_body = LoginForm,
    responses(
        (status = 200, description = "The user, a new token and the device's token", body = LoginResponse),
        (status = 400, description = "The body is not JSON", body = crate::error::Body),
        (status = 401, description = "Wrong email or password", body = crate::error::Body),
        (status = 422, description = "A field is missing or not text", body = crate::error::Body),
        (status = 429, description = "Too many attempts from this client, or failed logins on this account (or this device)", body = crate::error::Body, headers(("Retry-After" = u64))),
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
    let device = form
        .device_token
        .as_deref()
        .map(str::trim)
        .filter(|token| !token.is_empty() && token.len() <= MAX_DEVICE_TOKEN_LEN)
        .map(|token| (token.to_owned(), hash_token(token)));
    let attempt = begin_attempt(&state, email, device.as_ref().map(|(_, hash)| hash)).await?;
    if let Some(user_id) = attempt.user_id {
        tracing::Span::current().record("user_id", tracing::field::display(user_id));
    }
    let stored_hash = match attempt.outcome {
        Outcome::Verify(hash) => hash,
        Outcome::Locked(seconds) => {
            return Err(ApiError::RateLimited(seconds.ceil().max(1.0) as u64));
        }
        // Hash anyway: an unknown address takes as long as a wrong password.
        Outcome::NoAccount => None,
    };
    if !state.passwords.verify(form.password, stored_hash).await? {
        if let (Some(user_id), false) = (attempt.user_id, attempt.on_device)
            && u32::try_from(attempt.failures).is_ok_and(|n| n == state.login_failures.max)
        {
            // Once per lockout, not once per guess.
            tracing::warn!(%user_id, "too many failed logins; account locked for the window");
        }
        return Err(ApiError::InvalidCredentials);
    }
    let user_id = attempt.user_id.ok_or(ApiError::InvalidCredentials)?;
    // A success clears the count it was made under, and only that one: the
    // owner logging in from a trusted device gives strangers no new guesses.
    let device_token = match (&device, attempt.on_device) {
        (Some((token, hash)), true) => {
            devices::clear_failures(&state.pool, hash).await?;
            token.clone()
        }
        _ => {
            users::clear_login_failures(&state.pool, user_id).await?;
            trust_device(&state.pool, user_id).await?
        }
    };
    let token = issue_token(&state.pool, user_id).await?;
    let user = UserBody::find(&state.pool, user_id)
        .await?
        // Deleted between the check and now: as if it never existed.
        .ok_or(ApiError::InvalidCredentials)?;
    Ok(Json(LoginResponse {
        user,
        token,
        device_token,
    }))
}

/// Longest device token looked up; ours are 43 characters.
const MAX_DEVICE_TOKEN_LEN: usize = 64;

/// A login attempt, counted before the password is checked.
struct Attempt {
    user_id: Option<Uuid>,
    /// Counted on the device (it is trusted by this account) rather than
    /// on the account.
    on_device: bool,
    /// Attempts counted on the account in its window, this one included.
    failures: i32,
    outcome: Outcome,
}

enum Outcome {
    /// Check the password against this hash.
    Verify(Option<String>),
    /// Locked for this many seconds.
    Locked(f64),
    /// No account has the address.
    NoAccount,
}

/// Counts the attempt on the device when it is one the account trusts, on
/// the account otherwise: strangers' failures lock the account for
/// strangers only.
async fn begin_attempt(
    state: &AppState,
    email: &str,
    device: Option<&TokenHash>,
) -> Result<Attempt, ApiError> {
    let limit = state.login_failures;
    if let Some(hash) = device {
        match devices::begin_attempt(&state.pool, hash, email, limit).await? {
            DeviceAttempt::Counted {
                user_id,
                password_hash,
            } => {
                return Ok(Attempt {
                    user_id: Some(user_id),
                    on_device: true,
                    failures: 0,
                    outcome: Outcome::Verify(Some(password_hash)),
                });
            }
            DeviceAttempt::Locked { for_secs } => {
                return Ok(Attempt {
                    user_id: None,
                    on_device: true,
                    failures: 0,
                    outcome: Outcome::Locked(for_secs),
                });
            }
            DeviceAttempt::NotTrusted => {}
        }
    }
    Ok(
        match users::begin_login_attempt(&state.pool, email, limit).await? {
            LoginAttempt::Counted {
                user_id,
                password_hash,
                failures,
            } => Attempt {
                user_id: Some(user_id),
                on_device: false,
                failures,
                outcome: Outcome::Verify(Some(password_hash)),
            },
            LoginAttempt::Locked { user_id, for_secs } => Attempt {
                user_id: Some(user_id),
                on_device: false,
                failures: 0,
                outcome: Outcome::Locked(for_secs),
            },
            LoginAttempt::NoAccount => Attempt {
                user_id: None,
                on_device: false,
                failures: 0,
                outcome: Outcome::NoAccount,
            },
        },
    )
}

/// Checks a signed-in user's password again before a change to the
/// account (a new password or address, deletion). Counted like a login on
/// the account, before the hash runs: a stolen session cannot guess the
/// password any faster than a stranger at the login form. Returns the
/// account's address, read on the way.
pub(super) async fn confirm_password(
    state: &AppState,
    user_id: Uuid,
    password: String,
) -> Result<String, ApiError> {
    // Gone or being deleted: the session is nobody's any more.
    let (email, _) = users::address(&state.pool, user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let stored_hash =
        match users::begin_login_attempt(&state.pool, &email, state.login_failures).await? {
            LoginAttempt::Counted { password_hash, .. } => password_hash,
            LoginAttempt::Locked { for_secs, .. } => {
                return Err(ApiError::RateLimited(for_secs.ceil().max(1.0) as u64));
            }
            LoginAttempt::NoAccount => return Err(ApiError::Unauthorized),
        };
    if !state.passwords.verify(password, Some(stored_hash)).await? {
        return Err(ApiError::WrongPassword);
    }
    users::clear_login_failures(&state.pool, user_id).await?;
    Ok(email)
}

/// Trusts this device for `user_id` from now on: the token for the client.
pub(super) async fn trust_device<'c>(
    db: impl sqlx::PgExecutor<'c>,
    user_id: Uuid,
) -> Result<String, ApiError> {
    let (token, hash) = new_token()?;
    devices::issue(db, user_id, &hash).await?;
    Ok(token)
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
