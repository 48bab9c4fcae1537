//! `POST /api/email/verify`, `POST /api/email/verify/resend` and
//! `POST /api/me/email`: proving an account's address, and moving it to a
//! new one.
//!
//! The link in a confirmation email leads to the web app's
//! `/verify-email#token=…`, which sends the token here. For the account's
//! own address the proof starts what waited for it (the welcome email, the
//! Stripe customer, the follow-up a day later); for the new address of an
//! email change it is the change itself, and the old address is told.
//! Asking for a change tells the current address at once when it is
//! proven, naming the new one only masked.
//!
//! Every link is bound to the credentials it was asked under (see
//! [`store::verifications`]): a change asked for by someone who once had
//! the password dies with the owner's password reset. Sending links is
//! limited per address, whoever asks (three an hour to an address that has
//! not proven itself), per account (three of each kind an hour), both
//! counted atomically in Postgres ([`mail_budgets`]), and, like every
//! credential endpoint, per client. A link followed twice, or two links
//! followed at once, confirm once: the account's row is locked while a
//! link is spent, and the later one answers what the first did, with no
//! jobs.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalogue::{AccountEmail, AccountEmailKind, FollowUpEmail, StripeCustomer, WelcomeEmail};
use serde::{Deserialize, Serialize};
use store::mail_budgets::{Allowance, Budget, Taken};
use store::{mail_budgets, users, verifications};
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use super::jobs::JobRef;
use super::session::confirm_password;
use super::signup::Evicted;
use super::users::UserBody;
use crate::auth::{AuthUser, hash_token};
use crate::domain::{EmailAddress, FieldErrors};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::outbox;
use crate::request_id::RequestId;
use crate::state::AppState;

/// What waits for an account's address to be proven, recorded inside the
/// caller's transaction: the welcome email, the Stripe customer, and the
/// follow-up email `FOLLOW_UP_DELAY_SECS` later (when product mail is on).
pub(super) async fn record_welcome(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    request: &RequestId,
    user_id: uuid::Uuid,
    records: &mut Vec<outbox::JobRecord>,
) -> Result<(), sqlx::Error> {
    let queues = &state.queues;
    records.push(outbox::record(&mut *tx, queues, request, &WelcomeEmail { user_id }).await?);
    records.push(outbox::record(&mut *tx, queues, request, &StripeCustomer { user_id }).await?);
    if state.unsubscribe.is_some() {
        let follow_up = FollowUpEmail { user_id };
        let delay = state.mail.follow_up_delay;
        records.push(outbox::record_delayed(&mut *tx, queues, request, &follow_up, delay).await?);
    }
    Ok(())
}

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
    let Some(proof) = verifications::consume(&mut tx, &link).await? else {
        drop(tx);
        // Followed again (a double click, a second tab): what the first
        // time did stands, and this one starts nothing.
        let user_id = verifications::proven_by(&state.pool, &link)
            .await?
            .ok_or(ApiError::InvalidVerificationLink)?;
        let user = UserBody::find(&state.pool, user_id)
            .await?
            .ok_or(ApiError::InvalidVerificationLink)?;
        return Ok(Json(VerifyAnswer { user, jobs: vec![] }));
    };
    let user_id = proof.user_id;
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    let (current, was_verified) = users::address(&mut *tx, user_id)
        .await?
        .ok_or(ApiError::InvalidVerificationLink)?;
    let mut records = Vec::new();
    let mut evicted = None;
    if same_address(&current, &proof.email) {
        if !users::mark_verified(&mut *tx, user_id, &proof.email).await? {
            // Verified by another link since this one was sent: spending
            // it (committed) is all there is to do.
            tx.commit().await?;
            let user = UserBody::find(&state.pool, user_id)
                .await?
                .ok_or(ApiError::InvalidVerificationLink)?;
            return Ok(Json(VerifyAnswer { user, jobs: vec![] }));
        }
    } else {
        // An email change. Whoever signed up with the new address without
        // proving it loses it, as to a signup.
        evicted = Evicted::from_address(&mut tx, &state, &request, &proof.email).await?;
        users::change_email(&mut tx, user_id, &proof.email)
            .await?
            .ok_or(ApiError::InvalidVerificationLink)?;
        if was_verified {
            let notice = AccountEmail::to(user_id, AccountEmailKind::EmailChanged, &current);
            records.push(outbox::record(&mut tx, &state.queues, &request, &notice).await?);
        }
    }
    if !was_verified {
        record_welcome(&mut tx, &state, &request, user_id, &mut records).await?;
    }
    tx.commit().await?;
    let own = records.len();
    if let Some(evicted) = evicted {
        records.push(evicted.committed(&state));
    }
    let dispatched = outbox::dispatch(&state.pool, &state.queues, &records).await;
    tracing::info!("email address confirmed");
    let user = UserBody::find(&state.pool, user_id)
        .await?
        .ok_or(ApiError::InvalidVerificationLink)?;
    // The squatter's clean-up is not this account's job.
    let jobs = records
        .iter()
        .zip(dispatched)
        .take(own)
        .map(|(record, dispatch)| JobRef::new(&state, record, dispatch))
        .collect();
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
        (status = 503, description = "A dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "email_verify_resend", skip_all, fields(user_id = %auth.user_id))]
async fn resend(
    State(state): State<AppState>,
    auth: AuthUser,
    request: RequestId,
) -> Result<(StatusCode, Json<ResendAnswer>), ApiError> {
    let account = users::standing(&state.pool, auth.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if account.verified {
        return Err(ApiError::AlreadyVerified);
    }
    let job =
        AccountEmail::new(auth.user_id, AccountEmailKind::VerifyEmail).at_epoch(account.epoch);
    let budgets = [
        Budget::Account("verify-email", auth.user_id),
        Budget::UnprovenAddress(&account.email),
    ];
    send(&state, &request, &auth, account.epoch, &budgets, &[job]).await
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
        (status = 400, description = "The body is not JSON", body = crate::error::Body),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 403, description = "The password is wrong (`wrong_password`)", body = crate::error::Body),
        (status = 409, description = "Another confirmed account has this address (`email_taken`)", body = crate::error::Body),
        (status = 422, description = "The address is invalid or already the account's (named in `fields`)", body = crate::error::Body),
        (status = 429, description = "Three links this hour already (from this account, or to this address whoever asked), failed passwords in this session, or too many attempts from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 503, description = "At capacity or a dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "email_change", skip_all, fields(user_id = %auth.user_id))]
async fn change(
    State(state): State<AppState>,
    auth: AuthUser,
    request: RequestId,
    JsonBody(form): JsonBody<ChangeForm>,
) -> Result<(StatusCode, Json<ResendAnswer>), ApiError> {
    let invalid = |problem: String| ApiError::Validation(FieldErrors::from([("email", problem)]));
    let email = EmailAddress::parse(&form.email).map_err(invalid)?;
    let confirmed = confirm_password(&state, &auth, form.password).await?;
    if same_address(&confirmed.email, email.as_str()) {
        return Err(invalid("is already the account's address".into()));
    }
    if users::is_taken(&state.pool, email.as_str()).await? {
        return Err(ApiError::EmailTaken);
    }
    let epoch = confirmed.epoch;
    let link = AccountEmail::to(
        auth.user_id,
        AccountEmailKind::ConfirmNewEmail,
        email.as_str(),
    )
    .at_epoch(epoch);
    // The address the account has now hears of it at once, whoever asked;
    // one it never proved gets nothing from us (it may be a stranger's,
    // and the notice would name a domain the asker chose).
    let notice = confirmed.verified.then(|| AccountEmail {
        hint: Some(mask(email.as_str())),
        ..AccountEmail::to(
            auth.user_id,
            AccountEmailKind::EmailChangeRequested,
            &confirmed.email,
        )
    });
    let budgets = [
        Budget::Account("confirm-new-email", auth.user_id),
        Budget::UnprovenAddress(email.as_str()),
    ];
    let jobs: Vec<AccountEmail> = std::iter::once(link).chain(notice).collect();
    send(&state, &request, &auth, epoch, &budgets, &jobs).await
}

/// An address as a notice to another mailbox may show it: its first
/// character and its domain (`n•••@example.com`).
fn mask(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}•••@{domain}")
}

/// Records `jobs` if every one of `budgets` has room and the account's
/// credentials are still at `epoch`, all in one transaction (a spent
/// budget gives back what the others took); enqueues them; the answer
/// points to the first.
async fn send(
    state: &AppState,
    request: &RequestId,
    auth: &AuthUser,
    epoch: i64,
    budgets: &[Budget<'_>],
    jobs: &[AccountEmail],
) -> Result<(StatusCode, Json<ResendAnswer>), ApiError> {
    let mut tx = state.pool.begin().await?;
    if !users::hold_credentials(&mut tx, auth.user_id, epoch).await? {
        return Err(ApiError::Unauthorized);
    }
    for &budget in budgets {
        if let Taken::Spent { retry_after_secs } =
            mail_budgets::take(&mut tx, budget, Allowance::THREE_AN_HOUR).await?
        {
            return Err(ApiError::RateLimited(retry_after_secs));
        }
    }
    let mut records = Vec::with_capacity(jobs.len());
    for job in jobs {
        records.push(outbox::record(&mut tx, &state.queues, request, job).await?);
    }
    tx.commit().await?;
    let dispatched = outbox::dispatch(&state.pool, &state.queues, &records).await;
    let first = dispatched
        .first()
        .copied()
        .unwrap_or(outbox::DispatchState::Pending);
    let record = records.first().ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("an account email was sent with no job"))
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ResendAnswer {
            job: JobRef::new(state, record, first),
        }),
    ))
}

/// Addresses are one account's in any letter case (the unique index is on
/// `lower(email)`).
fn same_address(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}
