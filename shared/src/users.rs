//! Users: the `users` row. This module is the only writer of that table;
//! every other module reads it or calls one of these transitions.
//!
//! ```text
//! create (unverified; or reclaim_unverified: a squatter's goes to deleting) → mark_verified
//!        → (welcome email sent, Stripe customer set, guide stored, avatar switched, password set)*
//!        → deleting (the owner asked; nothing new starts) → (Stripe customer forgotten) → delete
//! login attempts: counted before the password is checked, 0 → n (within a window, at most the limit)
//!                 → 0 on success or when the window ends
//! ```
//!
//! Each write says in its SQL what it may change: a Stripe customer id is
//! set once, an avatar only moves to a newer photo, a lockout window restarts
//! only once the last one has ended. Deleting a user removes its tokens,
//! photos rows and job records with it (`on delete cascade`); files in
//! storage are the photos owner's to name ([`crate::photos`]).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::db::OnConstraint;

mod login;

pub use login::{LoginAttempt, begin_login_attempt, clear_login_failures};

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

/// Inserts the account inside the caller's transaction, so its token and
/// job records commit with it or not at all.
pub async fn create(conn: &mut PgConnection, new: NewAccount<'_>) -> Result<User, CreateError> {
    sqlx::query_as!(
        User,
        r#"insert into users (user_id, email, name, password_hash)
           values ($1, $2, $3, $4)
           returning user_id as id, email, name, created_at,
                     email_verified_at is not null as "email_verified!""#,
        new.id,
        new.email,
        new.name,
        new.password_hash,
    )
    .fetch_one(conn)
    .await
    .on_constraint("users_email_key", || CreateError::EmailTaken)
}

/// The account with this address, in any letter case, unless it is being
/// deleted.
pub async fn id_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select user_id from users where lower(email) = lower($1) and deleting_since is null",
        email
    )
    .fetch_optional(db)
    .await
}

/// Replaces the password (a reset or a change) and ends any lockout:
/// whoever can read the account's email, or knew its password, is its
/// owner. `false` when the user is gone or being deleted.
pub async fn set_password(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update users set password_hash = $2, login_failures = 0, login_failures_since = null,
                          updated_at = now()
         where user_id = $1 and deleting_since is null",
        user_id,
        password_hash,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The welcome email was handed to the mail transport: a redelivered job
/// must not send it again.
pub async fn mark_welcome_email_sent(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update users set welcome_email_sent_at = now(), updated_at = now()
         where user_id = $1 and welcome_email_sent_at is null",
        user_id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records the user's Stripe customer, unless one is recorded already (a
/// user has exactly one). Returns whether this call set it.
pub async fn set_stripe_customer(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    customer_id: &str,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "update users set stripe_customer_id = $2, updated_at = now()
         where user_id = $1 and stripe_customer_id is null",
        user_id,
        customer_id,
    )
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// The user's onboarding guide is stored at `key`.
pub async fn set_onboarding_pdf(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update users set onboarding_pdf_key = $2, updated_at = now() where user_id = $1",
        user_id,
        key,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Makes `photo_id` the user's avatar, unless a newer photo already is:
/// uploads are ordered by their v7 ids, so a photo that finishes after a
/// newer one does not take the avatar back. Returns whether it switched.
/// Called by [`crate::photos::mark_ready`] in its transaction.
pub async fn switch_avatar(
    conn: &mut PgConnection,
    user_id: Uuid,
    photo_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "update users set avatar_photo_id = $2, updated_at = now()
         where user_id = $1 and (avatar_photo_id is null or avatar_photo_id < $2)",
        user_id,
        photo_id,
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Holds the user's row until the caller's transaction ends, so checks of
/// one account's limits run one at a time. `false`: the user is gone or
/// being deleted, and takes nothing new.
pub async fn lock(conn: &mut PgConnection, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let found = sqlx::query_scalar!(
        "select user_id from users where user_id = $1 and deleting_since is null for update",
        user_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// The link sent to `email` was followed (`None`: a reset link, sent to
/// the account's address): the account whose address it is has proven it. Returns whether this call verified it (`false`: verified
/// already, the address changed since, or the account is gone or being
/// deleted).
pub async fn mark_verified(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    email: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update users set email_verified_at = now(), updated_at = now()
         where user_id = $1 and ($2::text is null or lower(email) = lower($2))
           and email_verified_at is null and deleting_since is null",
        user_id,
        email,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves the account to `email`, which a link sent there has just proven
/// (so the account is verified from now on). Returns the address it had,
/// or `None` when the account is gone or being deleted; `EmailTaken` when
/// another account holds `email` (free it first with
/// [`reclaim_unverified`] if that one never proved it).
pub async fn change_email(
    conn: &mut PgConnection,
    user_id: Uuid,
    email: &str,
) -> Result<Option<String>, CreateError> {
    let Some(old) = sqlx::query_scalar!(
        "select email from users where user_id = $1 and deleting_since is null for update",
        user_id,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    sqlx::query!(
        "update users set email = $2, email_verified_at = now(), updated_at = now()
         where user_id = $1",
        user_id,
        email,
    )
    .execute(&mut *conn)
    .await
    .on_constraint("users_email_key", || CreateError::EmailTaken)?;
    Ok(Some(old))
}

/// Starts the deletion of the account that holds `email` without having
/// proven it, if there is one: a new signup for the address wins over a
/// squatter. Returns the account to clean up (the caller records its
/// `account-deletion` job in the same transaction).
pub async fn reclaim_unverified(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "update users set deleting_since = now(), updated_at = now()
         where lower(email) = lower($1) and deleting_since is null
           and email_verified_at is null
         returning user_id",
        email,
    )
    .fetch_optional(conn)
    .await
}

/// An account's address and whether it is proven; `None` when the account
/// is gone or being deleted.
pub async fn address(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Option<(String, bool)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select email, email_verified_at is not null as "verified!" from users
           where user_id = $1 and deleting_since is null"#,
        user_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| (row.email, row.verified)))
}

/// The address of the account, unless it is gone or being deleted.
pub async fn email_of(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select email from users where user_id = $1 and deleting_since is null",
        user_id
    )
    .fetch_optional(db)
    .await
}

/// The owner asked to delete the account (their password checked): from
/// now on it logs nobody in, takes no upload, and jobs treat it as gone.
/// Returns whether this call marked it (`false`: already being deleted, or
/// gone).
pub async fn begin_deletion(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let marked = sqlx::query!(
        "update users set deleting_since = now(), updated_at = now()
         where user_id = $1 and deleting_since is null",
        user_id,
    )
    .execute(db)
    .await?;
    Ok(marked.rows_affected() == 1)
}

/// What the clean-up of an account being deleted must remove outside
/// Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftovers {
    /// The Stripe customer to delete, until [`forget_stripe_customer`].
    pub stripe_customer_id: Option<String>,
    /// The stored onboarding guide.
    pub onboarding_pdf_key: Option<String>,
}

/// The leftovers of an account being deleted; `None` when the account is
/// gone or not being deleted (the clean-up then has nothing to do).
pub async fn leftovers(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Option<Leftovers>, sqlx::Error> {
    sqlx::query_as!(
        Leftovers,
        "select stripe_customer_id, onboarding_pdf_key from users
         where user_id = $1 and deleting_since is not null",
        user_id,
    )
    .fetch_optional(db)
    .await
}

/// The Stripe customer of an account being deleted no longer exists at
/// Stripe: a rerun of the clean-up does not ask again.
pub async fn forget_stripe_customer(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update users set stripe_customer_id = null, updated_at = now()
         where user_id = $1 and deleting_since is not null",
        user_id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes the account: its tokens, devices, reset links, photo rows and
/// job records go with it (`on delete cascade`). Files in storage are not
/// rows: delete them first (their keys from [`crate::photos::ids_of_user`]
/// and [`leftovers`]). Returns whether there was such a user.
pub async fn delete(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!("delete from users where user_id = $1", user_id)
        .execute(db)
        .await?;
    Ok(deleted.rows_affected() == 1)
}
