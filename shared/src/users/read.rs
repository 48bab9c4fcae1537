//! Reads of the `users` row its owner offers (it writes nothing here): an
//! account by address, its address, what its deletion must clean up, and
//! the row lock that orders one account's limit checks.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

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

/// The account whose Stripe customer is `customer_id`, unless it is being
/// deleted (its subscription no longer matters to us).
pub async fn id_by_stripe_customer(
    db: impl PgExecutor<'_>,
    customer_id: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select user_id from users where stripe_customer_id = $1 and deleting_since is null",
        customer_id
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
