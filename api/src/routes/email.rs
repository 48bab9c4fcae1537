//! `POST /api/email/verify` and `POST /api/email/verify/resend`: proving
//! an account's address.
//!
//! The link in the confirmation email leads to the web app's
//! `/verify-email#token=…`, which sends the token here. The proof starts
//! what waited for it (the welcome email, the Stripe customer). Resending
//! is limited per account ([`RESENDS_PER_HOUR`]) and, like every
//! credential endpoint, per client.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::jobs::{AccountEmail, AccountEmailKind, Job as _, StripeCustomer, WelcomeEmail};
use shared::{records, users, verifications};
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use super::jobs::JobRef;
use super::users::UserBody;
use crate::auth::{AuthUser, hash_token};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::outbox;
use crate::request_id::RequestId;
use crate::state::AppState;

/// Confirmation emails one account gets per hour at most, the one sent at
/// signup included.
pub const RESENDS_PER_HOUR: i64 = 3;

/// Both are counted per client.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(verify), Limits::CREDENTIALS)
        .add(routes!(resend), Limits::CREDENTIALS)
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

/// Confirms the address a link was sent to: once, before it expires.
#[utoipa::path(post, path = "/api/email/verify", tag = "account",
    request_body = VerifyForm,
    responses(
        (status = 200, description = "The address is confirmed; the welcome email and billing setup are on their way", body = VerifyAnswer),
        (status = 400, description = "The body is not JSON, or the link is unknown, used or expired (`invalid_verification_link`)", body = crate::error::Body),
        (status = 422, description = "`token` is missing or not text", body = crate::error::Body),
        (status = 429, description = "Too many attempts from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 503, description = "A dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "email_verify", skip_all, fields(user_id = tracing::field::Empty))]
async fn verify(
    State(state): State<AppState>,
    request: RequestId,
    JsonBody(form): JsonBody<VerifyForm>,
) -> Result<Json<VerifyAnswer>, ApiError> {
    let link = hash_token(form.token.trim());
    let mut tx = state.pool.begin().await?;
    let proof = verifications::consume(&mut tx, &link)
        .await?
        .ok_or(ApiError::InvalidVerificationLink)?;
    let user_id = proof.user_id;
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    if !users::mark_verified(&mut *tx, user_id, Some(&proof.email)).await? {
        // Verified since the email was sent, or no longer this address.
        return Err(ApiError::InvalidVerificationLink);
    }
    let records = [
        outbox::record(&mut tx, &state.queues, &request, &WelcomeEmail { user_id }).await?,
        outbox::record(
            &mut tx,
            &state.queues,
            &request,
            &StripeCustomer { user_id },
        )
        .await?,
    ];
    tx.commit().await?;
    let dispatched = outbox::dispatch(&state.pool, &state.queues, &records).await;
    tracing::info!("email address confirmed");
    let user = UserBody::find(&state.pool, user_id)
        .await?
        .ok_or(ApiError::InvalidVerificationLink)?;
    let jobs = records
        .iter()
        .zip(dispatched)
        .map(|(record, dispatch)| JobRef::new(&state, record, dispatch))
        .collect();
    Ok(Json(VerifyAnswer { user, jobs }))
}

/// The confirmation email that is on its way.
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
        (status = 429, description = "Three confirmation emails this hour already, or too many attempts from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 503, description = "A dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "email_verify_resend", skip_all, fields(user_id = %auth.user_id))]
async fn resend(
    State(state): State<AppState>,
    auth: AuthUser,
    request: RequestId,
) -> Result<(StatusCode, Json<ResendAnswer>), ApiError> {
    let (_, verified) = users::address(&state.pool, auth.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if verified {
        return Err(ApiError::AlreadyVerified);
    }
    let hour = Duration::from_secs(3600);
    let sent = records::count_recent(
        &state.pool,
        auth.user_id,
        AccountEmail::QUEUE,
        &json!({ "kind": "verify-email" }),
        hour,
    )
    .await?;
    if sent >= RESENDS_PER_HOUR {
        return Err(ApiError::RateLimited(hour.as_secs()));
    }
    let job = AccountEmail {
        user_id: auth.user_id,
        kind: AccountEmailKind::VerifyEmail,
    };
    let mut tx = state.pool.begin().await?;
    let record = outbox::record(&mut tx, &state.queues, &request, &job).await?;
    tx.commit().await?;
    let dispatched = outbox::dispatch(&state.pool, &state.queues, std::slice::from_ref(&record))
        .await
        .pop()
        .unwrap_or(outbox::DispatchState::Pending);
    Ok((
        StatusCode::ACCEPTED,
        Json(ResendAnswer {
            job: JobRef::new(&state, &record, dispatched),
        }),
    ))
}
