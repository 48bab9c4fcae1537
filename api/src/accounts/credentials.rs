//! Changes the signed-in owner makes to the account's credentials, after
//! giving the password again: a new password, a new address.
//!
//! A change is made only while the credentials are still those the
//! password was checked against ([`users::hold_credentials`]): a reset
//! committed meanwhile voids it.

use catalogue::{AccountEmail, AccountEmailKind};
use store::mail_budgets::Budget;
use store::tokens::PasswordCheck;
use store::{tokens, users};

use super::links;
use crate::auth::AuthUser;
use crate::domain::{EmailAddress, FieldErrors, Password};
use crate::error::ApiError;
use crate::outbox::{JobRef, UnitOfWork};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The account as the password asked again found it.
pub struct Confirmed {
    /// Its address now.
    pub email: String,
    /// Whether that address is proven.
    pub verified: bool,
    /// The credentials' epoch the password was checked against: hold it
    /// ([`users::hold_credentials`]) in the transaction that makes the
    /// change, so a reset committed meanwhile voids the change.
    pub epoch: i64,
}

/// Checks a signed-in user's password again before a change to the
/// account (a new password or address, deletion). Counted on the session,
/// before the hash runs: a stolen session cannot guess the password any
/// faster than a stranger at the login form, and strangers' failed logins
/// never block the owner's own session.
pub async fn confirm_password(
    state: &AppState,
    auth: &AuthUser,
    password: String,
) -> Result<Confirmed, ApiError> {
    let limit = state.login_failures;
    let (email, verified, stored_hash, epoch) =
        match tokens::begin_password_check(&state.pool, &auth.token, limit).await? {
            PasswordCheck::Counted {
                email,
                verified,
                password_hash,
                epoch,
            } => (email, verified, password_hash, epoch),
            PasswordCheck::Locked { for_secs } => {
                return Err(ApiError::RateLimited(for_secs.ceil().max(1.0) as u64));
            }
            // Gone or being deleted: the session is nobody's any more.
            PasswordCheck::NoSession => return Err(ApiError::Unauthorized),
        };
    if !state.passwords.verify(password, Some(stored_hash)).await? {
        return Err(ApiError::WrongPassword);
    }
    tokens::clear_password_failures(&state.pool, &auth.token).await?;
    Ok(Confirmed {
        email,
        verified,
        epoch,
    })
}

/// Sets `new` as the password of the signed-in user, who gave `current`:
/// ends every other session, keeps this one, and tells the address.
pub async fn change_password(
    state: &AppState,
    request: &RequestId,
    auth: &AuthUser,
    current: String,
    new: Password,
) -> Result<(), ApiError> {
    let confirmed = confirm_password(state, auth, current).await?;
    let password_hash = state.passwords.hash(new.expose().to_owned()).await?.value;
    let mut work = UnitOfWork::begin(state, request).await?;
    // Reset, deleted or changed by another request since the check.
    if !users::hold_credentials(work.conn(), auth.user_id, confirmed.epoch).await?
        || !users::set_password(work.conn(), auth.user_id, &password_hash).await?
    {
        return Err(ApiError::Unauthorized);
    }
    tokens::revoke_others(work.conn(), auth.user_id, &auth.token).await?;
    work.record(&AccountEmail::new(
        auth.user_id,
        AccountEmailKind::PasswordChanged,
    ))
    .await?;
    work.forget_sessions(auth.user_id);
    work.commit().await?;
    tracing::info!("password changed");
    Ok(())
}

/// Sends a link to `email` for the signed-in user, who gave `password`,
/// and tells the current address at once when it is proven, naming the
/// new one only masked; the account moves when the link is followed
/// ([`super::confirmation::verify`]). Returns the link's job.
pub async fn request_email_change(
    state: &AppState,
    request: &RequestId,
    auth: &AuthUser,
    password: String,
    email: EmailAddress,
) -> Result<JobRef, ApiError> {
    let confirmed = confirm_password(state, auth, password).await?;
    if super::same_address(&confirmed.email, email.as_str()) {
        let problem = "is already the account's address".to_owned();
        return Err(ApiError::Validation(FieldErrors::from([(
            "email", problem,
        )])));
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
    links::send(state, request, auth.user_id, epoch, &budgets, &jobs).await
}

/// An address as a notice to another mailbox may show it: its first
/// character and its domain (`n•••@example.com`).
fn mask(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}•••@{domain}")
}
