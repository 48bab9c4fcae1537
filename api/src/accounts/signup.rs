//! Signing up: the account, its first session, its trusted device, the
//! email that proves the address (within the address's budget) and the
//! jobs that run at once, in one transaction.
//!
//! The account starts unverified: the only email it causes is the link
//! that proves the address, which carries nothing the signer typed. The
//! welcome email and the Stripe customer follow the proof
//! ([`super::confirmation`]); the onboarding guide (private to the
//! account) and the team's Slack notice run at once. An address held by an
//! account that never proved it is taken over ([`TakenOver`]).
//!
//! The confirmation email comes out of the address's budget (three an
//! hour to an address that has not proven itself, whoever signs up with
//! it): however many accounts a client makes for one address, its owner
//! gets at most three emails an hour. Past the budget the signup still
//! succeeds and says a link was sent recently.

use std::time::Duration;

use catalogue::{AccountEmail, AccountEmailKind, OnboardingPdf, SlackNotify};
use store::mail_budgets::{Allowance, Budget, Taken};
use store::{mail_budgets, users};
use uuid::Uuid;

use super::take_over::TakenOver;
use crate::auth::{issue_token, trust_device};
use crate::domain::NewUser;
use crate::error::ApiError;
use crate::outbox::{JobRef, UnitOfWork};
use crate::request_id::RequestId;
use crate::state::AppState;

/// A new account, signed in on a device it trusts from now on.
pub struct SignedUp {
    /// The account as created.
    pub user: users::User,
    /// Its first session.
    pub token: String,
    /// The device's token for later logins.
    pub device_token: String,
    /// What became of the email that proves the address.
    pub confirmation: Confirmation,
    /// The account's jobs, in the order recorded.
    pub jobs: Vec<JobRef>,
    /// Where the time went, for clients and the benchmark.
    pub timing: Timing,
}

/// What became of the email that proves the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// Recorded among the jobs.
    Sent,
    /// Not sent: the address's budget for this hour is spent.
    SentRecently,
}

/// A signup's time, by where it was spent.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Waiting for a hashing thread.
    pub argon2_queue: Duration,
    /// Hashing the password.
    pub argon2: Duration,
    /// The transaction, commit included.
    pub db: Duration,
    /// From the commit to the jobs handed to Redis.
    pub enqueue: Duration,
}

/// Creates the account of `new_user` and records its jobs; hands them to
/// Redis before it returns. Fails when a proven account has the address.
pub async fn sign_up(
    state: &AppState,
    request: &RequestId,
    new_user: NewUser,
) -> Result<SignedUp, ApiError> {
    let hashed = state
        .passwords
        .hash(new_user.password.expose().to_owned())
        .await?;
    let password_hash = hashed.value;

    let user_id = Uuid::now_v7();
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    let mut work = UnitOfWork::begin(state, request).await?;
    let taken_over = TakenOver::from_address(&mut work, new_user.email.as_str()).await?;
    let account = users::NewAccount {
        id: user_id,
        email: new_user.email.as_str(),
        name: new_user.name.as_str(),
        password_hash: &password_hash,
    };
    let user = users::create(work.conn(), account).await?;
    let token = issue_token(work.conn(), user_id).await?;
    let device_token = trust_device(work.conn(), user_id).await?;
    let budget = Budget::UnprovenAddress(&user.email);
    let confirmation =
        match mail_budgets::take(work.conn(), budget, Allowance::THREE_AN_HOUR).await? {
            Taken::Sent => {
                let verify =
                    AccountEmail::new(user_id, AccountEmailKind::VerifyEmail).at_epoch(user.epoch);
                work.record(&verify).await?;
                Confirmation::Sent
            }
            Taken::Spent { .. } => Confirmation::SentRecently,
        };
    work.record(&SlackNotify { user_id }).await?;
    work.record(&OnboardingPdf { user_id }).await?;
    let committed = work.commit().await?;
    if let Some(taken_over) = taken_over {
        taken_over.committed();
    }

    // The business event, at info: with the request's id it joins this
    // signup's lines in the worker's log.
    tracing::info!(jobs = committed.jobs.len(), "account created");
    Ok(SignedUp {
        user,
        token,
        device_token,
        confirmation,
        jobs: committed.jobs,
        timing: Timing {
            argon2_queue: hashed.queued,
            argon2: hashed.ran,
            db: committed.in_transaction,
            enqueue: committed.handing_over,
        },
    })
}
