//! `POST /api/signup`: create the account, record its jobs, answer at once.
//!
//! The account starts unverified: the only email it causes is the link
//! that proves the address, which carries nothing the signer typed. The
//! welcome email and the Stripe customer follow the proof
//! (`POST /api/email/verify`); the onboarding guide (private to the
//! account) and the team's Slack notice run at once. An address held by an
//! account that never proved it is taken over: that account is marked for
//! deletion and its clean-up recorded in the same transaction, so a
//! stranger cannot keep an address from its owner.
//!
//! The confirmation email comes out of the address's budget (three an
//! hour to an address that has not proven itself, whoever signs up with
//! it): however many accounts a client makes for one address, its owner
//! gets at most three emails an hour. Past the budget the signup still
//! succeeds and says a link was sent recently.

use std::time::Instant;

use crate::domain::{NewUser, SignupForm};
use crate::outbox;
use crate::request_id::RequestId;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use catalogue::{AccountDeletion, AccountEmail, AccountEmailKind, OnboardingPdf, SlackNotify};
use serde::Serialize;
use store::mail_budgets::{Allowance, Budget, Taken};
use store::{devices, mail_budgets, tokens, users};
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
        (status = 400, description = "The body is not JSON", body = crate::error::Body),
        (status = 409, description = "The email has a confirmed account already, in any letter case", body = crate::error::Body),
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
    let evicted = Evicted::from_address(&mut tx, &state, &request, new_user.email.as_str()).await?;
    let account = users::NewAccount {
        id: user_id,
        email: new_user.email.as_str(),
        name: new_user.name.as_str(),
        password_hash: &password_hash,
    };
    let user = users::create(&mut tx, account).await?;
    let token = issue_token(&mut *tx, user_id).await?;
    let device_token = super::session::trust_device(&mut *tx, user_id).await?;
    let mut records = Vec::with_capacity(4);
    let budget = Budget::UnprovenAddress(&user.email);
    let confirmation_email =
        match mail_budgets::take(&mut tx, budget, Allowance::THREE_AN_HOUR).await? {
            Taken::Sent => {
                let verify =
                    AccountEmail::new(user_id, AccountEmailKind::VerifyEmail).at_epoch(user.epoch);
                records.push(outbox::record(&mut tx, &state.queues, &request, &verify).await?);
                ConfirmationEmail::Sent
            }
            Taken::Spent { .. } => ConfirmationEmail::SentRecently,
        };
    records.push(outbox::record(&mut tx, &state.queues, &request, &SlackNotify { user_id }).await?);
    records
        .push(outbox::record(&mut tx, &state.queues, &request, &OnboardingPdf { user_id }).await?);
    tx.commit().await?;
    let committed = Instant::now();

    let own = records.len();
    if let Some(evicted) = evicted {
        records.push(evicted.committed(&state));
    }
    let dispatched = outbox::dispatch(&state.pool, &state.queues, &records).await;
    let answered = Instant::now();
    // The squatter's clean-up is not this account's job.
    let jobs = records
        .iter()
        .zip(dispatched)
        .take(own)
        .map(|(record, dispatch)| JobRef::new(&state, record, dispatch))
        .collect();

    // The business event, at info: with the request's id it joins this
    // signup's lines in the worker's log.
    tracing::info!(jobs = own, "account created");
    let body = SignupResponse {
        user: user.into(),
        token,
        device_token,
        confirmation_email,
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

/// An account that held an address without proving it, taken over: marked
/// for deletion, its sessions and devices ended, and its clean-up job
/// recorded, all in the caller's transaction. A signup, a reset or an
/// email change to the address does this, so a stranger cannot keep an
/// address from its owner.
pub(super) struct Evicted {
    user_id: Uuid,
    cleanup: outbox::JobRecord,
}

impl Evicted {
    /// Takes `email` from the account that holds it unproven, if any.
    pub(super) async fn from_address(
        tx: &mut sqlx::PgConnection,
        state: &AppState,
        request: &RequestId,
        email: &str,
    ) -> Result<Option<Self>, ApiError> {
        let Some(user_id) = users::reclaim_unverified(&mut *tx, email).await? else {
            return Ok(None);
        };
        tokens::revoke_all_of_user(&mut *tx, user_id).await?;
        devices::revoke_all_of_user(&mut *tx, user_id).await?;
        let job = AccountDeletion { user_id };
        let cleanup = outbox::record(&mut *tx, &state.queues, request, &job).await?;
        Ok(Some(Self { user_id, cleanup }))
    }

    /// Once the transaction committed: this instance forgets the evicted
    /// sessions now; the clean-up is the caller's to dispatch.
    pub(super) fn committed(self, state: &AppState) -> outbox::JobRecord {
        tracing::info!(squatter = %self.user_id, "an unproven account's address was taken over");
        state.tokens.remove_user(self.user_id);
        self.cleanup
    }
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
