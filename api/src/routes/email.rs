//! `POST /api/email/verify`, `POST /api/email/verify/resend` and
//! `POST /api/me/email`: proving an account's address, and moving it to a
//! new one. The flows and their rules are [`crate::accounts::confirmation`]
//! and [`crate::accounts::credentials`]; here are their answers.
//!
//! Sending links is limited per address, whoever asks, per account, and,
//! like every credential endpoint, per client.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use super::users::UserBody;
use crate::accounts::confirmation::{self, Verified};
use crate::accounts::credentials::request_email_change;
use crate::auth::AuthUser;
use crate::domain::{EmailAddress, FieldErrors};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::outbox::JobRef;
use crate::request_id::RequestId;
use crate::state::AppState;

/// All three are counted per client.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(verify), Limits::CREDENTIALS)
        .add(routes!(resend), Limits::CREDENTIALS)
        .add(routes!(change), Limits::CREDENTIALS)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct VerifyForm {
    /// The `token` of the link in the confirmation email.
    token: String,
}

/// The account with its address confirmed, and the jobs that waited for it.
#[derive(Serialize, utoipa::ToSchema)]
struct VerifyAnswer {
    user: UserBody,
    jobs: Vec<JobRef>,
}

/// Confirms the address a link was sent to: once, before it expires. For
/// a new address (an email change) the account moves to it.
#[utoipa::path(post, path = "/api/email/verify", tag = "account",
    request_body = VerifyForm,
    responses(
        (status = 200, description = "The address is confirmed (the welcome email and billing setup are on their way), or the account now uses it (the old address is told); a link followed again answers the same with no jobs", body = VerifyAnswer),
        (status = 400, description = "The body is not JSON, or the link is unknown, expired, or void since the account's password or address changed (`invalid_verification_link`)", body = crate::error::Body),
        (status = 409, description = "The new address has a confirmed account since (`email_taken`)", body = crate::error::Body),
        (status = 422, description = "`token` is missing or not text", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "email_verify", skip_all, fields(user_id = tracing::field::Empty))]
async fn verify(
    State(state): State<AppState>,
    request: RequestId,
    JsonBody(form): JsonBody<VerifyForm>,
) -> Result<Json<VerifyAnswer>, ApiError> {
    let Verified { user_id, jobs } = confirmation::verify(&state, &request, &form.token).await?;
    let user = UserBody::find(&state.pool, user_id)
        .await?
        .ok_or(ApiError::InvalidVerificationLink)?;
    Ok(Json(VerifyAnswer { user, jobs }))
}

/// The email with the link, on its way.
#[derive(Serialize, utoipa::ToSchema)]
struct ResendAnswer {
    job: JobRef,
}

/// Sends the confirmation link again to the signed-in user's address.
#[utoipa::path(post, path = "/api/email/verify/resend", tag = "account", security(("bearer" = [])),
    responses(
        (status = 202, description = "A new link is on its way (earlier ones still work until they expire)", body = ResendAnswer),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 409, description = "The address is confirmed already (`already_verified`)", body = crate::error::Body),
        (status = 429, description = "Three confirmation emails this hour already (to this account, or to its address whoever asked), or too many attempts from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "email_verify_resend", skip_all, fields(user_id = %auth.user_id))]
async fn resend(
    State(state): State<AppState>,
    auth: AuthUser,
    request: RequestId,
) -> Result<(StatusCode, Json<ResendAnswer>), ApiError> {
    let job = confirmation::resend(&state, &request, auth.user_id).await?;
    Ok((StatusCode::ACCEPTED, Json(ResendAnswer { job })))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ChangeForm {
    /// The account's password, asked again.
    password: String,
    /// The address to move to.
    email: String,
}

/// Sends a link to a new address and tells the current one at once; the
/// account moves when the link is followed (the old address is then told
/// again).
#[utoipa::path(post, path = "/api/me/email", tag = "account", security(("bearer" = [])),
    request_body = ChangeForm,
    responses(
        (status = 202, description = "A link is on its way to the new address; nothing changes until it is followed", body = ResendAnswer),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 403, description = "The password is wrong (`wrong_password`)", body = crate::error::Body),
        (status = 409, description = "Another confirmed account has this address (`email_taken`)", body = crate::error::Body),
        (status = 422, description = "The address is invalid or already the account's (named in `fields`)", body = crate::error::Body),
        (status = 429, description = "Three links this hour already (from this account, or to this address whoever asked), failed passwords in this session, or too many attempts from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "email_change", skip_all, fields(user_id = %auth.user_id))]
async fn change(
    State(state): State<AppState>,
    auth: AuthUser,
    request: RequestId,
    JsonBody(form): JsonBody<ChangeForm>,
) -> Result<(StatusCode, Json<ResendAnswer>), ApiError> {
    let email = EmailAddress::parse(&form.email)
        .map_err(|problem| ApiError::Validation(FieldErrors::from([("email", problem)])))?;
    let job = request_email_change(&state, &request, &auth, form.password, email).await?;
    Ok((StatusCode::ACCEPTED, Json(ResendAnswer { job })))
}
