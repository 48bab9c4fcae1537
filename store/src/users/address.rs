//! An account's address: proven by a link, moved to another, or taken
//! back from an account that never proved it.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::CreateError;
use crate::db::OnConstraint;

/// The link sent to `email` was followed: the account whose address it is
/// has proven it. Returns whether this call verified it (`false`: verified
/// already, the address changed since, or the account is gone or being
/// deleted).
pub async fn mark_verified(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update users set email_verified_at = now(), updated_at = now()
         where user_id = $1 and lower(email) = lower($2)
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
        "update users set email = $2, email_verified_at = now(),
                          credentials_epoch = credentials_epoch + 1, updated_at = now()
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
        "update users set deleting_since = now(), credentials_epoch = credentials_epoch + 1,
                          updated_at = now()
         where lower(email) = lower($1) and deleting_since is null
           and email_verified_at is null
         returning user_id",
        email,
    )
    .fetch_optional(conn)
    .await
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

/// Whether an account that proved `email` holds it (an email change to it
/// would fail): one not proven would lose it to the change.
pub async fn is_taken(db: impl PgExecutor<'_>, email: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from users
                          where lower(email) = lower($1) and deleting_since is null
                            and email_verified_at is not null) as "taken!""#,
        email
    )
    .fetch_one(db)
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
