//! What the slow work and the account's preferences set on it: the welcome
//! and follow-up emails sent, its Stripe customer, its guide, its avatar,
//! whether it gets product mail. Each is set once or only moves forward.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

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

/// The follow-up email was handed over: a redelivered job does not send it
/// again. Returns whether this call marked it.
pub async fn mark_follow_up_sent(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let marked = sqlx::query!(
        "update users set follow_up_sent_at = now(), updated_at = now()
         where user_id = $1 and follow_up_sent_at is null",
        user_id,
    )
    .execute(db)
    .await?;
    Ok(marked.rows_affected() == 1)
}

/// Opts the user out of product mail, or back in. Transactional mail
/// (links, notices) is not affected. Returns whether there is such a user.
pub async fn set_product_email(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    wanted: bool,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "update users set updated_at = now(), product_email_unsubscribed_at =
            case when $2 then null else coalesce(product_email_unsubscribed_at, now()) end
         where user_id = $1",
        user_id,
        wanted,
    )
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Stripe deleted the customer `customer_id`: whoever had it has none now
/// (the next signup-like flow may create another). Returns that user.
pub async fn stripe_customer_deleted(
    db: impl PgExecutor<'_>,
    customer_id: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "update users set stripe_customer_id = null, updated_at = now()
         where stripe_customer_id = $1 returning user_id",
        customer_id,
    )
    .fetch_optional(db)
    .await
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
