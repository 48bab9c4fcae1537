//! Sessions: a login, counted against the per-account limit on failed
//! logins, and every session of an account ended.
//!
//! Failed logins are counted per account in Postgres, each attempt before
//! its password is hashed: past `LOGIN_FAILURE_LIMIT` attempts in
//! `LOGIN_FAILURE_WINDOW_SECS` that did not succeed, the account takes no
//! password until the window ends, from every address and on every api
//! instance, however many guesses arrive at once. It answers what an
//! unknown address or a wrong password answers (401, after a hash), so
//! the lockout tells nobody that the address has an account. A stranger
//! can keep doing that, but only to strangers: a device that has signed
//! in to the account before sends its `device_token`, and its attempts
//! are counted on the device instead (OWASP's device cookie), under the
//! same limit.
//!
//! A session is issued only while the account's credentials are still
//! the ones the password was checked against: a login in flight when the
//! owner resets the password or ends every session gets none.

use store::devices::DeviceAttempt;
use store::tokens::TokenHash;
use store::users::LoginAttempt;
use store::{devices, tokens, users};
use uuid::Uuid;

use crate::auth::{hash_token, issue_token, trust_device};
use crate::domain::EmailAddress;
use crate::error::ApiError;
use crate::state::AppState;

/// A session for the account's owner, on a device it trusts from now on.
pub struct LoggedIn {
    /// The account.
    pub user_id: Uuid,
    /// The new session's token.
    pub token: String,
    /// The device's token for later logins.
    pub device_token: String,
}

/// Checks `password` for the account of `email` and opens a session; every
/// refusal (unknown address, wrong password, locked account or device) is
/// the same [`ApiError::InvalidCredentials`], after the same hashing work.
pub async fn log_in(
    state: &AppState,
    email: &str,
    password: String,
    device_token: Option<&str>,
) -> Result<LoggedIn, ApiError> {
    let email = email.trim();
    // No account can have such an address (signup refuses it), and
    // Postgres refuses text with NUL in it: wrong credentials, not a 500.
    if email.len() > EmailAddress::MAX_LEN || email.contains('\0') {
        return Err(ApiError::InvalidCredentials);
    }
    let device = device_token
        .map(str::trim)
        .filter(|token| !token.is_empty() && token.len() <= MAX_DEVICE_TOKEN_LEN)
        .map(|token| (token.to_owned(), hash_token(token)));
    let attempt = begin_attempt(state, email, device.as_ref().map(|(_, hash)| hash)).await?;
    if let Some(user_id) = attempt.user_id {
        tracing::Span::current().record("user_id", tracing::field::display(user_id));
    }
    let (stored_hash, epoch) = match attempt.outcome {
        Outcome::Verify {
            hash,
            session_epoch,
        } => (Some(hash), session_epoch),
        // Hash anyway: a locked account or an unknown address takes as long
        // as a wrong password, and answers the same.
        Outcome::Locked | Outcome::NoAccount => (None, 0),
    };
    if !state.passwords.verify(password, stored_hash).await? {
        if let (Some(user_id), false) = (attempt.user_id, attempt.on_device)
            && u32::try_from(attempt.failures).is_ok_and(|n| n == state.login_failures.max)
        {
            // Once per lockout, not once per guess.
            tracing::warn!(%user_id, "too many failed logins; account locked for the window");
        }
        return Err(ApiError::InvalidCredentials);
    }
    let user_id = attempt.user_id.ok_or(ApiError::InvalidCredentials)?;
    let mut tx = state.pool.begin().await?;
    // The password was right for these credentials and sessions; a reset,
    // "end every session" or a deletion that committed since voided them.
    if !users::hold_for_session(&mut tx, user_id, epoch).await? {
        return Err(ApiError::InvalidCredentials);
    }
    // A success clears the count it was made under, and only that one: the
    // owner logging in from a trusted device gives strangers no new guesses.
    let device_token = match (&device, attempt.on_device) {
        (Some((token, hash)), true) => {
            devices::clear_failures(&mut *tx, hash).await?;
            token.clone()
        }
        _ => {
            users::clear_login_failures(&mut *tx, user_id).await?;
            trust_device(&mut *tx, user_id).await?
        }
    };
    let token = issue_token(&mut *tx, user_id).await?;
    tx.commit().await?;
    Ok(LoggedIn {
        user_id,
        token,
        device_token,
    })
}

/// Longest device token looked up; ours are 43 characters.
const MAX_DEVICE_TOKEN_LEN: usize = 64;

/// A login attempt, counted before the password is checked.
struct Attempt {
    user_id: Option<Uuid>,
    /// Counted on the device (it is trusted by this account) rather than
    /// on the account.
    on_device: bool,
    /// Attempts counted on the account in its window, this one included.
    failures: i32,
    outcome: Outcome,
}

enum Outcome {
    /// Check the password against this hash, read at these epochs.
    Verify { hash: String, session_epoch: i64 },
    /// Locked for the rest of the window.
    Locked,
    /// No account has the address.
    NoAccount,
}

/// Counts the attempt on the device when it is one the account trusts, on
/// the account otherwise: strangers' failures lock the account for
/// strangers only.
async fn begin_attempt(
    state: &AppState,
    email: &str,
    device: Option<&TokenHash>,
) -> Result<Attempt, ApiError> {
    let limit = state.login_failures;
    if let Some(hash) = device {
        match devices::begin_attempt(&state.pool, hash, email, limit).await? {
            DeviceAttempt::Counted {
                user_id,
                password_hash,
                session_epoch,
            } => {
                return Ok(Attempt {
                    user_id: Some(user_id),
                    on_device: true,
                    failures: 0,
                    outcome: Outcome::Verify {
                        hash: password_hash,
                        session_epoch,
                    },
                });
            }
            DeviceAttempt::Locked { .. } => {
                return Ok(Attempt {
                    user_id: None,
                    on_device: true,
                    failures: 0,
                    outcome: Outcome::Locked,
                });
            }
            DeviceAttempt::NotTrusted => {}
        }
    }
    Ok(
        match users::begin_login_attempt(&state.pool, email, limit).await? {
            LoginAttempt::Counted {
                user_id,
                password_hash,
                failures,
                session_epoch,
            } => Attempt {
                user_id: Some(user_id),
                on_device: false,
                failures,
                outcome: Outcome::Verify {
                    hash: password_hash,
                    session_epoch,
                },
            },
            LoginAttempt::Locked { user_id, .. } => Attempt {
                user_id: Some(user_id),
                on_device: false,
                failures: 0,
                outcome: Outcome::Locked,
            },
            LoginAttempt::NoAccount => Attempt {
                user_id: None,
                on_device: false,
                failures: 0,
                outcome: Outcome::NoAccount,
            },
        },
    )
}

/// Ends every session of `user_id`, and any login in flight.
pub async fn end_every_session(state: &AppState, user_id: Uuid) -> Result<(), ApiError> {
    let mut tx = state.pool.begin().await?;
    // A new sessions epoch first: a login whose password was checked
    // before this commits gets no session.
    users::end_every_session(&mut *tx, user_id).await?;
    tokens::revoke_all_of_user(&mut *tx, user_id).await?;
    tx.commit().await?;
    state.tokens.remove_user(user_id);
    state.events.end_user(user_id);
    Ok(())
}
