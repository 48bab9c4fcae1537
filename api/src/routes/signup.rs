//! `POST /api/signup`: create the account, record its jobs, answer at once.

use std::time::Instant;

use crate::domain::{NewUser, SignupForm};
use crate::outbox;
use crate::request_id::RequestId;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::jobs::{OnboardingPdf, SlackNotify, StripeCustomer, WelcomeEmail};
use shared::users;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::issue_token;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

use super::endpoints::{Endpoints, Limits};
use super::jobs::JobRef;
use super::users::UserBody;

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
    jobs: Vec<JobRef>,
}

/// Creates the account and starts its jobs (welcome email, Stripe
/// customer, Slack notification, onboarding guide); answers before any of
/// them runs.
#[utoipa::path(post, path = "/api/signup", tag = "account",
    request_body = SignupForm,
    responses(
        (status = 201, description = "The account, a session token and the jobs it started", body = SignupResponse,
         headers(("Server-Timing" = String, description = "argon2_queue, argon2, db, enqueue"))),
        (status = 400, description = "The body is not JSON", body = crate::error::Body),
        (status = 409, description = "The email has an account already, in any letter case", body = crate::error::Body),
        (status = 413, description = "The body is over 16 KiB", body = crate::error::Body),
        (status = 415, description = "Not `application/json`", body = crate::error::Body),
        (status = 422, description = "Invalid fields, each named in `fields`", body = crate::error::Body),
        (status = 429, description = "Too many signups and logins from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 503, description = "At capacity or a dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "signup", skip_all, fields(user_id = tracing::field::Empty))]
async fn signup(
    State(state): State<AppState>,
    request: RequestId,
    JsonBody(form): JsonBody<SignupForm>,
) -> Result<Response, ApiError> {
    let new_user = NewUser::try_from(form).map_err(ApiError::Validation)?;

    let hashed = state
        .passwords
        .hash(new_user.password.expose().to_owned())
        .await?;
    let password_hash = hashed.value;
    let transaction = Instant::now();

    let user_id = Uuid::now_v7();
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    let mut tx = state.pool.begin().await?;
    let account = users::NewAccount {
        id: user_id,
        email: new_user.email.as_str(),
        name: new_user.name.as_str(),
        password_hash: &password_hash,
    };
    let user = users::create(&mut tx, account)
        .await
        .map_err(|error| match error {
            users::CreateError::EmailTaken => ApiError::EmailTaken,
            users::CreateError::Database(error) => ApiError::database(error),
        })?;
    let token = issue_token(&mut *tx, user_id).await?;
    let device_token = super::session::trust_device(&mut *tx, user_id).await?;
    let records = [
        outbox::record(&mut tx, &state.queues, &request, &WelcomeEmail { user_id }).await?,
        outbox::record(
            &mut tx,
            &state.queues,
            &request,
            &StripeCustomer { user_id },
        )
        .await?,
        outbox::record(&mut tx, &state.queues, &request, &SlackNotify { user_id }).await?,
        outbox::record(&mut tx, &state.queues, &request, &OnboardingPdf { user_id }).await?,
    ];
    tx.commit().await?;
    let committed = Instant::now();

    let dispatched = outbox::dispatch(&state.pool, &state.queues, &records).await;
    let answered = Instant::now();
    let jobs = records
        .iter()
        .zip(dispatched)
        .map(|(record, dispatch)| JobRef::new(&state, record, dispatch))
        .collect();

    // The business event, at info: with the request's id it joins this
    // signup's lines in the worker's log.
    tracing::info!(jobs = records.len(), "account created");
    let body = SignupResponse {
        user: user.into(),
        token,
        device_token,
        jobs,
    };
    // Server-Timing lets clients and the benchmark see where the time went
    // without a profiler: waiting for and running Argon2, the transaction,
    // and commit-to-response (enqueueing).
    let timing = format!(
        "argon2_queue;dur={:.3}, argon2;dur={:.3}, db;dur={:.3}, enqueue;dur={:.3}",
        ms(hashed.queued),
        ms(hashed.ran),
        ms(committed - transaction),
        ms(answered - committed),
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
