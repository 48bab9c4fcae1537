//! The account types the writes of `users` take and give.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A user as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id (UUID v7).
    pub id: Uuid,
    /// The address as the user typed it (trimmed).
    pub email: String,
    /// The display name.
    pub name: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// Whether the address is proven (a link sent to it was followed).
    pub email_verified: bool,
    /// The credentials' epoch the account starts at: the confirmation
    /// link of its signup is bound to it.
    pub epoch: i64,
}

/// A new account, validated by the caller, with its password already hashed.
#[derive(Debug, Clone, Copy)]
pub struct NewAccount<'a> {
    /// The new user's id.
    pub id: Uuid,
    /// A valid address.
    pub email: &'a str,
    /// A valid display name.
    pub name: &'a str,
    /// The Argon2id PHC string.
    pub password_hash: &'a str,
}

/// Why [`create`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// Another account has this address, in any letter case.
    #[error("the email address has an account already")]
    EmailTaken,
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A login attempt on the account behind an address.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginAttempt {
    /// No account has this address.
    NoAccount,
    /// The attempt is counted as a failure until the password proves
    /// otherwise: verify it against this hash.
    Counted {
        /// The account.
        user_id: Uuid,
        /// Its Argon2id PHC string.
        password_hash: String,
        /// Attempts counted in the window, this one included.
        failures: i32,
        /// The credentials' and sessions' epochs the hash was read at (their
        /// sum, which grows whenever either does): a session is issued only
        /// while the account is still at it ([`super::hold_for_session`]).
        session_epoch: i64,
    },
    /// The account has used up its failures for the window.
    Locked {
        /// The account.
        user_id: Uuid,
        /// Seconds until the window ends.
        for_secs: f64,
    },
}
