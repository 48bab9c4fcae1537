//! An account's end: deletion begun (nothing new starts), its Stripe
//! customer forgotten, what is left of it listed, and the row removed with
//! everything that references it.

use sqlx::PgExecutor;
use uuid::Uuid;

/// The owner asked to delete the account (their password checked): from
/// now on it logs nobody in, takes no upload, and jobs treat it as gone.
/// Returns whether this call marked it (`false`: already being deleted, or
/// gone).
pub async fn begin_deletion(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let marked = sqlx::query!(
        "update users set deleting_since = now(), credentials_epoch = credentials_epoch + 1,
                          updated_at = now()
         where user_id = $1 and deleting_since is null",
        user_id,
    )
    .execute(db)
    .await?;
    Ok(marked.rows_affected() == 1)
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

/// What the clean-up of an account being deleted must remove outside
/// Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftovers {
    /// The Stripe customer to delete, until [`forget_stripe_customer`].
    pub stripe_customer_id: Option<String>,
    /// The stored onboarding guide.
    pub onboarding_pdf_key: Option<String>,
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
