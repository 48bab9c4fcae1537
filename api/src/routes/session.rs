//! `POST /api/login` and `DELETE /api/session(s)`: sessions, their tokens,
//! and the per-account limit on failed logins.
//!
//! Failed logins are counted per account in Postgres, each attempt before
//! its password is hashed: past `LOGIN_FAILURE_LIMIT` attempts in
//! `LOGIN_FAILURE_WINDOW_SECS` that did not succeed, the account takes no
//! password until the window ends, from every address and on every api
//! instance, however many guesses arrive at once. It answers what an
//! unknown address or a wrong password answers (401, after a hash), so
//! the lockout tells nobody that the address has an account. A stranger
//! can keep doing that, but only to strangers: a device that has signed
//! in to the account before sends its `device_token`, and its attempts
//! are counted on the device instead (OWASP's device cookie), under the
//! same limit.
//!
//! A session is issued only while the account's credentials are still
//! the ones the password was checked against: a login in flight when the
//! owner resets the password or ends every session gets none.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use super::users::UserBody;
use crate::accounts::sessions::{LoggedIn, end_every_session, log_in};
use crate::auth::{AuthUser, revoke_token};
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
        (status = 401, description = "Wrong email or password, or the account (or this device) is locked after failed logins: one answer for all", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "login", skip_all, fields(user_id = tracing::field::Empty))]
async fn login(
    State(state): State<AppState>,
    JsonBody(form): JsonBody<LoginForm>,
) -> Result<Json<LoginResponse>, ApiError> {
    let LoggedIn {
        user_id,
        token,
        device_token,
    } = log_in(
        &state,
        &form.email,
        form.password,
        form.device_token.as_deref(),
    )
    .await?;
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

/// Revokes every token of the calling user, this one included, and any
/// login in flight.
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
    end_every_session(&state, auth.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
