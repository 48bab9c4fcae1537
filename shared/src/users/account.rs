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
