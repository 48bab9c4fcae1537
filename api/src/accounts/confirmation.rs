//! Proving an account's address, and moving it to a new one.
//!
//! The link in a confirmation email leads to the web app's
//! `/verify-email#token=…`, whose token comes here. For the account's own
//! address the proof starts what waited for it (the welcome email, the
//! Stripe customer, the follow-up a day later); for the new address of an
//! email change it is the change itself, and the old address is told.
//!
//! Every link is bound to the credentials it was asked under (see
//! [`store::verifications`]): a change asked for by someone who once had
//! the password dies with the owner's password reset. A link followed
//! twice, or two links followed at once, confirm once: the account's row
//! is locked while a link is spent, and the later one answers what the
//! first did, with no jobs.

use catalogue::{AccountEmail, AccountEmailKind, FollowUpEmail, StripeCustomer, WelcomeEmail};
use store::mail_budgets::Budget;
use store::{users, verifications};
use uuid::Uuid;

use super::links;
use super::take_over::TakenOver;
use crate::auth::hash_token;
use crate::error::ApiError;
use crate::outbox::{JobRef, UnitOfWork};
use crate::request_id::RequestId;
use crate::state::AppState;

/// An address proven by a link.
pub struct Verified {
    /// The account whose address it is now.
    pub user_id: Uuid,
    /// What the proof started; none when the link was spent before.
    pub jobs: Vec<JobRef>,
}

/// Spends the confirmation link whose token is `token`: proves the
/// account's address, or moves the account to the new one.
pub async fn verify(
    state: &AppState,
    request: &RequestId,
    token: &str,
) -> Result<Verified, ApiError> {
    let link = hash_token(token.trim());
    let mut work = UnitOfWork::begin(state, request).await?;
    let Some(proof) = verifications::consume(work.conn(), &link).await? else {
        drop(work);
        // Followed again (a double click, a second tab): what the first
        // time did stands, and this one starts nothing.
        let user_id = verifications::proven_by(&state.pool, &link)
            .await?
            .ok_or(ApiError::InvalidVerificationLink)?;
        return Ok(Verified {
            user_id,
            jobs: vec![],
        });
    };
    let user_id = proof.user_id;
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    let (current, was_verified) = users::address(work.conn(), user_id)
        .await?
        .ok_or(ApiError::InvalidVerificationLink)?;
    let mut taken_over = None;
    if super::same_address(&current, &proof.email) {
        if !users::mark_verified(work.conn(), user_id, &proof.email).await? {
            // Verified by another link since this one was sent: spending
            // it (committed) is all there is to do.
            work.commit().await?;
            return Ok(Verified {
                user_id,
                jobs: vec![],
            });
        }
    } else {
        // An email change. Whoever signed up with the new address without
        // proving it loses it, as to a signup.
        taken_over = TakenOver::from_address(&mut work, &proof.email).await?;
        users::change_email(work.conn(), user_id, &proof.email)
            .await?
            .ok_or(ApiError::InvalidVerificationLink)?;
        if was_verified {
            let notice = AccountEmail::to(user_id, AccountEmailKind::EmailChanged, &current);
            work.record(&notice).await?;
        }
    }
    if !was_verified {
        record_welcome(&mut work, state, user_id).await?;
    }
    let committed = work.commit().await?;
    if let Some(taken_over) = taken_over {
        taken_over.committed();
    }
    // The address the user's open tabs show is confirmed (or changed).
    state.feed.publish(queue::feed::Change::Account(user_id));
    tracing::info!("email address confirmed");
    Ok(Verified {
        user_id,
        jobs: committed.jobs,
    })
}

/// Sends the confirmation link of the account's address again, within
/// the account's and the address's budgets; the job of the email.
pub async fn resend(
    state: &AppState,
    request: &RequestId,
    user_id: Uuid,
) -> Result<JobRef, ApiError> {
    let account = users::standing(&state.pool, user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if account.verified {
        return Err(ApiError::AlreadyVerified);
    }
    let job = AccountEmail::new(user_id, AccountEmailKind::VerifyEmail).at_epoch(account.epoch);
    let budgets = [
        Budget::Account("verify-email", user_id),
        Budget::UnprovenAddress(&account.email),
    ];
    links::send(state, request, user_id, account.epoch, &budgets, &[job]).await
}

/// What waits for an account's address to be proven, recorded in the
/// caller's unit of work: the welcome email, the Stripe customer, and the
/// follow-up email `FOLLOW_UP_DELAY_SECS` later (when product mail is on).
pub(super) async fn record_welcome(
    work: &mut UnitOfWork<'_>,
    state: &AppState,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    work.record(&WelcomeEmail { user_id }).await?;
    work.record(&StripeCustomer { user_id }).await?;
    if state.unsubscribe.is_some() {
        work.record_delayed(&FollowUpEmail { user_id }, state.mail.follow_up_delay)
            .await?;
    }
    Ok(())
}
