//! The way back into an account for whoever reads its email, even while
//! strangers hold it locked.
//!
//! Asking for a link takes the same time whether or not the address has
//! an account, so it tells nobody which addresses do: the work for a known
//! address is a query and a record in Postgres, and the hand-over to Redis
//! happens after the answer (the relay delivers it if Redis is slow or
//! down), so Redis' health does not show either. The worker makes the
//! single-use link when it sends the email, so the link is in no payload,
//! bound to the address and the credentials of the moment it was asked
//! for; at most three an hour per address, counted atomically
//! ([`mail_budgets`]), so the address cannot be flooded.
//!
//! Following the link sets the password (a new credentials' epoch: every
//! other link, and every login in flight, is void), ends the lockout and
//! every session, trusts no device any more, and tells the address; the
//! caller is signed in, like after a login.

use std::time::{Duration, Instant};

use catalogue::{AccountEmail, AccountEmailKind, OnboardingPdf, SlackNotify};
use store::mail_budgets::{Allowance, Budget, Taken};
use store::{devices, mail_budgets, resets, tokens, users};
use uuid::Uuid;

use super::confirmation::record_welcome;
use super::take_over::TakenOver;
use crate::auth::{hash_token, issue_token, trust_device};
use crate::domain::{EmailAddress, Password, UserName};
use crate::error::ApiError;
use crate::outbox::UnitOfWork;
use crate::request_id::RequestId;
use crate::state::AppState;

/// Asking for a link never returns sooner: the work for a known address
/// (a query, a record) hides inside it.
const FORGOT_FLOOR: Duration = Duration::from_millis(250);

/// Signed in after following a reset link.
pub struct SignedIn {
    /// The account, the one that held the address or the owner's new one.
    pub user_id: Uuid,
    /// A new session.
    pub token: String,
    /// This device, trusted from now on.
    pub device_token: String,
}

/// Records a reset email for the account using `email`, if there is one
/// and its address has room in its budget; returns after the same time
/// either way.
pub async fn forgot(state: &AppState, request: &RequestId, email: &str) -> Result<(), ApiError> {
    let started = Instant::now();
    let email = email.trim();
    if email.len() <= EmailAddress::MAX_LEN && !email.contains('\0') {
        request_reset(state, request, email).await?;
    }
    tokio::time::sleep_until((started + FORGOT_FLOOR).into()).await;
    Ok(())
}

/// Records the reset email of the account using `email`, if there is one
/// and its address has room in its budget, and hands it to Redis after
/// the answer.
async fn request_reset(state: &AppState, request: &RequestId, email: &str) -> Result<(), ApiError> {
    let Some(account) = users::standing_by_email(&state.pool, email).await? else {
        return Ok(());
    };
    tracing::Span::current().record("user_id", tracing::field::display(account.user_id));
    let mut work = UnitOfWork::begin(state, request).await?;
    let budget = Budget::Resets(&account.email);
    if let Taken::Spent { .. } =
        mail_budgets::take(work.conn(), budget, Allowance::THREE_AN_HOUR).await?
    {
        tracing::info!("password reset asked for again within the hour; not sent");
        return Ok(());
    }
    let job =
        AccountEmail::new(account.user_id, AccountEmailKind::PasswordReset).at_epoch(account.epoch);
    work.record(&job).await?;
    // A stalled Redis must not make the answer for a known address slower
    // than for an unknown one.
    work.commit_and_hand_over_later().await?;
    Ok(())
}

/// Spends the reset link whose token is `token` and sets `password`:
/// once, before it expires. For an address its account never proved, the
/// address's owner gets a new account instead ([`owners_account`]).
pub async fn reset(
    state: &AppState,
    request: &RequestId,
    token: &str,
    password: Password,
) -> Result<SignedIn, ApiError> {
    let link = hash_token(token.trim());
    // Hashing first costs a hash per bad link; spending the link first
    // would lose it to a hashing queue that is full. Per-client limits
    // bound the first.
    let password_hash = state
        .passwords
        .hash(password.expose().to_owned())
        .await?
        .value;

    let mut work = UnitOfWork::begin(state, request).await?;
    let linked = resets::consume(work.conn(), &link)
        .await?
        .ok_or(ApiError::InvalidResetLink)?;
    let (email, verified) = users::address(work.conn(), linked)
        .await?
        .ok_or(ApiError::InvalidResetLink)?;
    let mut taken_over = None;
    let user_id = if verified {
        if !users::set_password(work.conn(), linked, &password_hash).await? {
            return Err(ApiError::InvalidResetLink);
        }
        tokens::revoke_all_of_user(work.conn(), linked).await?;
        devices::revoke_all_of_user(work.conn(), linked).await?;
        work.record(&AccountEmail::new(
            linked,
            AccountEmailKind::PasswordChanged,
        ))
        .await?;
        linked
    } else {
        // Nobody had proven the address; whoever reads it just did. The
        // account that held it goes, with what its signer typed.
        taken_over = Some(
            TakenOver::from_address(&mut work, &email)
                .await?
                .ok_or(ApiError::InvalidResetLink)?,
        );
        owners_account(&mut work, state, &email, &password_hash).await?
    };
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    let token = issue_token(work.conn(), user_id).await?;
    let device_token = trust_device(work.conn(), user_id).await?;
    // Other sessions were revoked in the database; this instance's cache
    // forgets them on commit, other instances within the cache's lifetime.
    work.forget_sessions(linked);
    work.commit().await?;
    if let Some(taken_over) = taken_over {
        taken_over.committed();
    }
    tracing::info!("password reset");
    Ok(SignedIn {
        user_id,
        token,
        device_token,
    })
}

/// A reset link followed for an address its account never proved (that
/// account taken over): the address's owner gets a new, confirmed account
/// with the new password, named after the address (nothing a stranger
/// typed), and its onboarding jobs.
async fn owners_account(
    work: &mut UnitOfWork<'_>,
    state: &AppState,
    email: &str,
    password_hash: &str,
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
    users::create(work.conn(), account)
        .await
        .map_err(|error| match error {
            users::CreateError::EmailTaken => ApiError::InvalidResetLink,
            users::CreateError::Database(error) => ApiError::database(error),
        })?;
    users::mark_verified(work.conn(), user_id, email).await?;
    record_welcome(work, state, user_id).await?;
    work.record(&SlackNotify { user_id }).await?;
    work.record(&OnboardingPdf { user_id }).await?;
    Ok(user_id)
}
