//! `POST /api/password/forgot` and `POST /api/password/reset`: the way
//! back into an account for whoever reads its email
//! ([`crate::accounts::reset`]); and `POST /api/me/password`, a change by
//! the signed-in owner, who knows the current one
//! ([`crate::accounts::credentials`]).
//!
//! `forgot` answers the same 202, after the same minimum time, whether or
//! not the address has an account. `reset` answers like a login, so the
//! page that called it is signed in. A change ends every other session
//! and tells the address.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use super::users::UserBody;
use crate::accounts;
use crate::accounts::credentials::change_password;
use crate::accounts::reset::SignedIn;
use crate::auth::AuthUser;
use crate::domain::{FieldErrors, Password};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::request_id::RequestId;
use crate::state::AppState;

/// Both are credential endpoints, counted per client.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(forgot), Limits::CREDENTIALS)
        .add(routes!(reset), Limits::CREDENTIALS)
        .add(routes!(change), Limits::CREDENTIALS)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ForgotForm {
    email: String,
}

/// The same for every address.
#[derive(Serialize, utoipa::ToSchema)]
struct ForgotAnswer {
    #[schema(
        example = "If an account uses this address, a link to reset its password is on its way."
    )]
    message: &'static str,
}

/// Sends a password reset link to the address, if an account uses it.
#[utoipa::path(post, path = "/api/password/forgot", tag = "account",
    request_body = ForgotForm,
    responses(
        (status = 202, description = "The same answer whether or not an account uses the address", body = ForgotAnswer),
        (status = 422, description = "`email` is missing or not text", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "password_forgot", skip_all, fields(user_id = tracing::field::Empty))]
async fn forgot(
    State(state): State<AppState>,
    request: RequestId,
    JsonBody(form): JsonBody<ForgotForm>,
) -> Result<(StatusCode, Json<ForgotAnswer>), ApiError> {
    accounts::reset::forgot(&state, &request, &form.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ForgotAnswer {
            message: "If an account uses this address, a link to reset its password is on its way.",
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ResetForm {
    /// The `token` of the link in the reset email.
    token: String,
    /// The new password, 8 to 128 characters.
    password: String,
}

/// Signed in with the new password, like a login.
#[derive(Serialize, utoipa::ToSchema)]
struct ResetAnswer {
    user: UserBody,
    token: String,
    device_token: String,
}

/// Sets a new password with a reset link's token: once, before it expires.
#[utoipa::path(post, path = "/api/password/reset", tag = "account",
    request_body = ResetForm,
    responses(
        (status = 200, description = "The password is set, every other session ended; a new session", body = ResetAnswer),
        (status = 400, description = "The body is not JSON, or the link is unknown, used or expired (`invalid_reset_link`)", body = crate::error::Body),
        (status = 422, description = "The password is invalid (named in `fields`)", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "password_reset", skip_all, fields(user_id = tracing::field::Empty))]
async fn reset(
    State(state): State<AppState>,
    request: RequestId,
    JsonBody(form): JsonBody<ResetForm>,
) -> Result<Json<ResetAnswer>, ApiError> {
    let password = Password::parse(&form.password)
        .map_err(|problem| ApiError::Validation(FieldErrors::from([("password", problem)])))?;
    let SignedIn {
        user_id,
        token,
        device_token,
    } = accounts::reset::reset(&state, &request, &form.token, password).await?;
    let user = UserBody::find(&state.pool, user_id)
        .await?
        .ok_or(ApiError::InvalidResetLink)?;
    Ok(Json(ResetAnswer {
        user,
        token,
        device_token,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ChangeForm {
    /// The password the account has now.
    current_password: String,
    /// The new password, 8 to 128 characters.
    new_password: String,
}

/// Sets a new password for the signed-in user, who proves they know the
/// current one: ends every other session, keeps this one, and tells the
/// account's address.
#[utoipa::path(post, path = "/api/me/password", tag = "account", security(("bearer" = [])),
    request_body = ChangeForm,
    responses(
        (status = 204, description = "The password is changed; every other session has ended"),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 403, description = "`current_password` is wrong (`wrong_password`)", body = crate::error::Body),
        (status = 422, description = "The new password is invalid (named in `fields`)", body = crate::error::Body),
        (status = 429, description = "Too many attempts from this client, or failed passwords in this session", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "password_change", skip_all, fields(user_id = %auth.user_id))]
async fn change(
    State(state): State<AppState>,
    auth: AuthUser,
    request: RequestId,
    JsonBody(form): JsonBody<ChangeForm>,
) -> Result<StatusCode, ApiError> {
    let password = Password::parse(&form.new_password)
        .map_err(|problem| ApiError::Validation(FieldErrors::from([("new_password", problem)])))?;
    change_password(&state, &request, &auth, form.current_password, password).await?;
    Ok(StatusCode::NO_CONTENT)
}
