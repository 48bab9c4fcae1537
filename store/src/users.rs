//! Users: the `users` row. This file is the only writer of that table;
//! every other module reads it (through the queries of `users/read.rs` or
//! its own) or calls one of these transitions.
//!
//! ```text
//! create (unverified; or reclaim_unverified: a squatter's goes to deleting) → mark_verified
//!        → (welcome email sent, Stripe customer set or deleted at Stripe, guide stored,
//!           avatar switched, password set, follow-up sent, product mail off or on)*
//!        → deleting (the owner asked; nothing new starts) → (Stripe customer forgotten) → delete
//! login attempts: counted before the password is checked, 0 → n (within a window, at most the limit)
//!                 → 0 on success or when the window ends
//! credentials epoch: n → n + 1 when the password is set, the address moves or deletion
//!                    begins; links and new sessions of epoch n are void
//! sessions epoch: n → n + 1 when every session is ended; new sessions of epoch n are void
//! ```
//!
//! Each write says in its SQL what it may change: a Stripe customer id is
//! set once, an avatar only moves to a newer photo, a lockout window restarts
//! only once the last one has ended. Deleting a user removes its tokens,
//! photos rows and job records with it (`on delete cascade`); files in
//! storage are the photos owner's to name ([`crate::photos`]).

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::db::OnConstraint;
use platform::config::LoginFailureLimit;

mod account;
mod read;

pub use account::{CreateError, LoginAttempt, NewAccount, User};
pub use read::{
    Leftovers, Standing, address, hold_credentials, hold_for_session, id_by_email,
    id_by_stripe_customer, is_taken, leftovers, lock, standing, standing_by_email,
};

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

/// Counts an attempt to log in to `email` (any letter case) before the
/// password is checked, so however many guesses arrive at once, at most
/// `limit.max` per window get as far as the hash: the row lock orders
/// concurrent attempts and each sees the count the previous one left. A
/// successful login clears the count ([`clear_login_failures`]). The window
/// starts at the first failure and restarts once it has ended.
pub async fn begin_login_attempt(
    db: &sqlx::PgPool,
    email: &str,
    limit: LoginFailureLimit,
) -> Result<LoginAttempt, sqlx::Error> {
    let max = i32::try_from(limit.max).unwrap_or(i32::MAX);
    let window = limit.window.as_secs_f64();
    let counted = sqlx::query!(
        r#"update users set
             login_failures = case when login_failures_since > now() - make_interval(secs => $3)
                                   then login_failures + 1 else 1 end,
             login_failures_since = case when login_failures_since > now() - make_interval(secs => $3)
                                         then login_failures_since else now() end
         where lower(email) = lower($1) and deleting_since is null
           and not ($2 > 0 and login_failures >= $2
                    and login_failures_since > now() - make_interval(secs => $3))
         returning user_id, password_hash, login_failures,
                   credentials_epoch + sessions_epoch as "session_epoch!""#,
        email,
        max,
        window,
    )
    .fetch_optional(db)
    .await?;
    if let Some(row) = counted {
        return Ok(LoginAttempt::Counted {
            user_id: row.user_id,
            password_hash: row.password_hash,
            failures: row.login_failures,
            session_epoch: row.session_epoch,
        });
    }
    // Not counted: no such account, or locked.
    read::lockout(db, email, window).await
}

/// A successful login ends any lockout window.
pub async fn clear_login_failures(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update users set login_failures = 0, login_failures_since = null
         where user_id = $1 and (login_failures > 0 or login_failures_since is not null)",
        user_id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Replaces the password (a reset or a change) and ends any lockout:
/// whoever can read the account's email, or knew its password, is its
/// owner. A new epoch: every link and login asked for before is void.
/// `false` when the user is gone or being deleted.
pub async fn set_password(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update users set password_hash = $2, login_failures = 0, login_failures_since = null,
                          credentials_epoch = credentials_epoch + 1, updated_at = now()
         where user_id = $1 and deleting_since is null",
        user_id,
        password_hash,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The owner ended every session: a new sessions epoch, so a login whose
/// password was checked before this commits gets no session. Links stay:
/// they go to the owner's mailbox, and whoever knows the password must
/// not be able to void the owner's reset link without a trace. Returns
/// whether there is such a user.
pub async fn end_every_session(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update users set sessions_epoch = sessions_epoch + 1, updated_at = now()
         where user_id = $1",
        user_id,
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
