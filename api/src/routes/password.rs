//! `POST /api/password/forgot` and `POST /api/password/reset`: the way
//! back into an account for whoever reads its email, even while strangers
//! hold it locked; and `POST /api/me/password`, a change by the signed-in
//! owner, who knows the current one.
//!
//! `forgot` answers the same 202, after the same minimum time, whether or
//! not the address has an account, so it tells nobody which addresses do:
//! its work for a known address is a query and a record in Postgres, and
//! the hand-over to Redis happens after the answer (the relay delivers it
//! if Redis is slow or down), so Redis' health does not show either. For
//! an address that has an account it records an `account-email` job (the
//! worker makes the single-use link when it sends it, so the link is in
//! no payload, bound to the address and the credentials of the moment it
//! was asked for); at most three an hour per address, counted atomically
//! ([`mail_budgets`]), so the address cannot be flooded.
//! `reset` spends the link, sets the password (a new credentials' epoch:
//! every other link, and every login in flight, is void), ends the lockout
//! and every session, trusts no device any more, and sends a notice to the
//! address; it answers like a login, so the page that called it is signed
//! in. A change ends every other session and sends the same notice.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalogue::{AccountEmail, AccountEmailKind, OnboardingPdf, SlackNotify};
use serde::{Deserialize, Serialize};
use store::mail_budgets::{Allowance, Budget, Taken};
use store::{devices, mail_budgets, resets, tokens, users};
use utoipa_axum::routes;
use uuid::Uuid;

use super::endpoints::{Endpoints, Limits};
use super::session::{confirm_password, trust_device};
use super::signup::Evicted;
use super::users::UserBody;
use crate::auth::{AuthUser, hash_token, issue_token};
use crate::domain::{EmailAddress, FieldErrors, Password, UserName};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::outbox;
use crate::request_id::RequestId;
use crate::state::AppState;

/// `forgot` never answers sooner: the work for a known address (a query,
/// a record, an enqueue) hides inside it.
const FORGOT_FLOOR: Duration = Duration::from_millis(250);

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
        (status = 400, description = "The body is not JSON", body = crate::error::Body),
        (status = 422, description = "`email` is missing or not text", body = crate::error::Body),
        (status = 429, description = "Too many attempts from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 503, description = "A dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "password_forgot", skip_all, fields(user_id = tracing::field::Empty))]
async fn forgot(
    State(state): State<AppState>,
    request: RequestId,
    JsonBody(form): JsonBody<ForgotForm>,
) -> Result<(StatusCode, Json<ForgotAnswer>), ApiError> {
    let started = Instant::now();
    let email = form.email.trim();
    if email.len() <= EmailAddress::MAX_LEN && !email.contains('\0') {
        request_reset(&state, &request, email).await?;
    }
    tokio::time::sleep_until((started + FORGOT_FLOOR).into()).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(ForgotAnswer {
            message: "If an account uses this address, a link to reset its password is on its way.",
        }),
    ))
}

/// Records the reset email of the account using `email`, if there is one
/// and its address has room in its budget, and hands it to Redis after
/// the answer.
async fn request_reset(state: &AppState, request: &RequestId, email: &str) -> Result<(), ApiError> {
    let Some(account) = users::standing_by_email(&state.pool, email).await? else {
        return Ok(());
    };
    tracing::Span::current().record("user_id", tracing::field::display(account.user_id));
    let mut tx = state.pool.begin().await?;
    let budget = Budget::Resets(&account.email);
    if let Taken::Spent { .. } =
        mail_budgets::take(&mut tx, budget, Allowance::THREE_AN_HOUR).await?
    {
        tracing::info!("password reset asked for again within the hour; not sent");
        return Ok(());
    }
    let job =
        AccountEmail::new(account.user_id, AccountEmailKind::PasswordReset).at_epoch(account.epoch);
    let record = outbox::record(&mut tx, &state.queues, request, &job).await?;
    tx.commit().await?;
    // Not awaited: a stalled Redis must not make the answer for a known
    // address slower than for an unknown one. Pending until then, the
    // record is the relay's to deliver if this hand-over fails.
    let (pool, queues) = (state.pool.clone(), state.queues.clone());
    tokio::spawn(async move { outbox::dispatch(&pool, &queues, &[record]).await });
    Ok(())
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
        (status = 429, description = "Too many attempts from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 503, description = "At capacity or a dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "password_reset", skip_all, fields(user_id = tracing::field::Empty))]
async fn reset(
    State(state): State<AppState>,
    request: RequestId,
    JsonBody(form): JsonBody<ResetForm>,
) -> Result<Json<ResetAnswer>, ApiError> {
    let password = Password::parse(&form.password)
        .map_err(|problem| ApiError::Validation(FieldErrors::from([("password", problem)])))?;
    let link = hash_token(form.token.trim());
    // Hashing first costs a hash per bad link; spending the link first
    // would lose it to a hashing queue that is full. Per-client limits
    // bound the first.
    let password_hash = state
        .passwords
        .hash(password.expose().to_owned())
        .await?
        .value;

    let mut tx = state.pool.begin().await?;
    let linked = resets::consume(&mut tx, &link)
        .await?
        .ok_or(ApiError::InvalidResetLink)?;
    let (email, verified) = users::address(&mut *tx, linked)
        .await?
        .ok_or(ApiError::InvalidResetLink)?;
    let mut records = Vec::new();
    let mut evicted = None;
    let user_id = if verified {
        if !users::set_password(&mut *tx, linked, &password_hash).await? {
            return Err(ApiError::InvalidResetLink);
        }
        tokens::revoke_all_of_user(&mut *tx, linked).await?;
        devices::revoke_all_of_user(&mut *tx, linked).await?;
        let notice = AccountEmail::new(linked, AccountEmailKind::PasswordChanged);
        records.push(outbox::record(&mut tx, &state.queues, &request, &notice).await?);
        linked
    } else {
        // Nobody had proven the address; whoever reads it just did. The
        // account that held it goes, with what its signer typed.
        evicted = Some(
            Evicted::from_address(&mut tx, &state, &request, &email)
                .await?
                .ok_or(ApiError::InvalidResetLink)?,
        );
        owners_account(
            &state,
            &request,
            &mut tx,
            &email,
            &password_hash,
            &mut records,
        )
        .await?
    };
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    let token = issue_token(&mut *tx, user_id).await?;
    let device_token = trust_device(&mut *tx, user_id).await?;
    tx.commit().await?;
    // Other sessions were revoked in the database; this instance's cache
    // forgets them now, other instances within the cache's lifetime.
    state.tokens.remove_user(linked);
    records.extend(evicted.map(|evicted| evicted.committed(&state)));
    outbox::dispatch(&state.pool, &state.queues, &records).await;
    tracing::info!("password reset");

    let user = UserBody::find(&state.pool, user_id)
        .await?
        .ok_or(ApiError::InvalidResetLink)?;
    Ok(Json(ResetAnswer {
        user,
        token,
        device_token,
    }))
}

/// A reset link followed for an address its account never proved (that
/// account evicted): the address's owner gets a new, confirmed account with
/// the new password, named after the address (nothing a stranger typed),
/// and its onboarding jobs.
async fn owners_account(
    state: &AppState,
    request: &RequestId,
    tx: &mut sqlx::PgConnection,
    email: &str,
    password_hash: &str,
    records: &mut Vec<outbox::JobRecord>,
) -> Result<Uuid, ApiError> {
    let user_id = Uuid::now_v7();
    let local = email.split('@').next().unwrap_or_default();
    let name: String = local.chars().take(UserName::MAX_CHARS).collect();
    let account = users::NewAccount {
        id: user_id,
        email,
        name: if name.is_empty() { "Acme user" } else { &name },
        password_hash,
    };
    users::create(&mut *tx, account)
        .await
        .map_err(|error| match error {
            users::CreateError::EmailTaken => ApiError::InvalidResetLink,
            users::CreateError::Database(error) => ApiError::database(error),
        })?;
    users::mark_verified(&mut *tx, user_id, email).await?;
    super::email::record_welcome(&mut *tx, state, request, user_id, records).await?;
    let queues = &state.queues;
    records.push(outbox::record(&mut *tx, queues, request, &SlackNotify { user_id }).await?);
    records.push(outbox::record(&mut *tx, queues, request, &OnboardingPdf { user_id }).await?);
    Ok(user_id)
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
        (status = 400, description = "The body is not JSON", body = crate::error::Body),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 403, description = "`current_password` is wrong (`wrong_password`)", body = crate::error::Body),
        (status = 422, description = "The new password is invalid (named in `fields`)", body = crate::error::Body),
        (status = 429, description = "Too many attempts from this client, or failed passwords in this session", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 503, description = "At capacity or a dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
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
    let confirmed = confirm_password(&state, &auth, form.current_password).await?;
    let password_hash = state
        .passwords
        .hash(password.expose().to_owned())
        .await?
        .value;
    let mut tx = state.pool.begin().await?;
    // Reset, deleted or changed by another request since the check.
    if !users::hold_credentials(&mut tx, auth.user_id, confirmed.epoch).await?
        || !users::set_password(&mut *tx, auth.user_id, &password_hash).await?
    {
        return Err(ApiError::Unauthorized);
    }
    tokens::revoke_others(&mut *tx, auth.user_id, &auth.token).await?;
    let notice = AccountEmail::new(auth.user_id, AccountEmailKind::PasswordChanged);
    let record = outbox::record(&mut tx, &state.queues, &request, &notice).await?;
    tx.commit().await?;
    state.tokens.remove_user(auth.user_id);
    outbox::dispatch(&state.pool, &state.queues, &[record]).await;
    tracing::info!("password changed");
    Ok(StatusCode::NO_CONTENT)
}
