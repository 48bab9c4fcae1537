//! `POST /api/signup`: create the account, record its jobs, answer at once.
//! The flow and its rules are [`crate::accounts::signup`]; this is its
//! HTTP answer (201, the session, the jobs, and `Server-Timing`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use super::users::UserBody;
use crate::accounts::signup::{Confirmation, SignedUp, sign_up};
use crate::domain::{NewUser, SignupForm};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::outbox::JobRef;
use crate::request_id::RequestId;
use crate::state::AppState;

/// `POST /api/signup`: a credential endpoint, counted per client.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints.add(routes!(signup), Limits::CREDENTIALS)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SignupResponse {
    user: UserBody,
    token: String,
    /// Keep it on this device and send it with later logins (see `POST /api/login`).
    device_token: String,
    /// Whether this signup sent a confirmation email.
    confirmation_email: ConfirmationEmail,
    jobs: Vec<JobRef>,
}

/// What became of the email that proves the address.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum ConfirmationEmail {
    /// On its way (an `account-email` job is among `jobs`).
    Sent,
    /// Not sent: the address had its three confirmation emails this hour
    /// already. Ask for one again later (`POST /api/email/verify/resend`).
    SentRecently,
}

/// Creates the account and starts its jobs (the email that confirms the
/// address, the Slack notification, the onboarding guide); answers before
/// any of them runs. The welcome email and the Stripe customer follow the
/// confirmation.
#[utoipa::path(post, path = "/api/signup", tag = "account",
    request_body = SignupForm,
    responses(
        (status = 201, description = "The account, a session token and the jobs it started", body = SignupResponse,
         headers(("Server-Timing" = String, description = "argon2_queue, argon2, db, enqueue"))),
        (status = 409, description = "The email has a confirmed account already, in any letter case", body = crate::error::Body),
        (status = 422, description = "Invalid fields, each named in `fields`", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "signup", skip_all, fields(user_id = tracing::field::Empty))]
async fn signup(
    State(state): State<AppState>,
    request: RequestId,
    JsonBody(form): JsonBody<SignupForm>,
) -> Result<Response, ApiError> {
    let new_user = NewUser::try_from(form).map_err(ApiError::Validation)?;
    let SignedUp {
        user,
        token,
        device_token,
        confirmation,
        jobs,
        timing,
    } = sign_up(&state, &request, new_user).await?;
    let body = SignupResponse {
        user: user.into(),
        token,
        device_token,
        confirmation_email: match confirmation {
            Confirmation::Sent => ConfirmationEmail::Sent,
            Confirmation::SentRecently => ConfirmationEmail::SentRecently,
        },
        jobs,
    };
    // Server-Timing lets clients and the benchmark see where the time went
    // without a profiler: waiting for and running Argon2, the transaction,
    // and commit-to-response (enqueueing).
    let timing = format!(
        "argon2_queue;dur={:.3}, argon2;dur={:.3}, db;dur={:.3}, enqueue;dur={:.3}",
        ms(timing.argon2_queue),
        ms(timing.argon2),
        ms(timing.db),
        ms(timing.enqueue),
    );
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&timing) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("server-timing"), value);
    }
    Ok(response)
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
