//! The account as created, and why creating it can fail.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::OnConstraint;

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

/// Inserts the account inside the caller's transaction, so its token and
/// job records commit with it or not at all.
pub async fn create(conn: &mut PgConnection, new: NewAccount<'_>) -> Result<User, CreateError> {
    sqlx::query_as!(
        User,
        r#"insert into users (user_id, email, name, password_hash)
           values ($1, $2, $3, $4)
           returning user_id as id, email, name, created_at,
                     email_verified_at is not null as "email_verified!",
                     credentials_epoch as epoch"#,
        new.id,
        new.email,
        new.name,
        new.password_hash,
    )
    .fetch_one(conn)
    .await
    .on_constraint("users_email_key", || CreateError::EmailTaken)
}
