//! Reads of the `users` row its owner offers (it writes nothing here): an
//! account by address, its address and credentials' epoch, what its
//! deletion must clean up, and the row locks that order one account's
//! limit checks and hold its credentials still while a session or a link
//! is issued.

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

/// Where an account stands: its address, whether it is proven, and the
/// epoch of its credentials (see [`super::set_password`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The account.
    pub user_id: Uuid,
    /// Its address now.
    pub email: String,
    /// Whether the address is proven.
    pub verified: bool,
    /// Its credentials' epoch now.
    pub epoch: i64,
}

/// Where the account `user_id` stands; `None` when it is gone or being
/// deleted.
pub async fn standing(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Option<Standing>, sqlx::Error> {
    sqlx::query_as!(
        Standing,
        r#"select user_id, email, email_verified_at is not null as "verified!",
                  credentials_epoch as epoch
           from users where user_id = $1 and deleting_since is null"#,
        user_id
    )
    .fetch_optional(db)
    .await
}

/// Where the account using `email` (any letter case) stands; `None` when
/// no account that is not being deleted uses it.
pub async fn standing_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<Standing>, sqlx::Error> {
    sqlx::query_as!(
        Standing,
        r#"select user_id, email, email_verified_at is not null as "verified!",
                  credentials_epoch as epoch
           from users where lower(email) = lower($1) and deleting_since is null"#,
        email
    )
    .fetch_optional(db)
    .await
}

/// Holds the account's row until the caller's transaction ends, if neither
/// its credentials nor its sessions moved past `session_epoch` (the sum
/// [`super::LoginAttempt::Counted`] read with the password hash): a login
/// whose password was checked before a reset or "end every session"
/// committed gets no session. `false`: they moved, or the account is gone
/// or being deleted.
pub async fn hold_for_session(
    conn: &mut PgConnection,
    user_id: Uuid,
    session_epoch: i64,
) -> Result<bool, sqlx::Error> {
    let found = sqlx::query_scalar!(
        "select user_id from users
         where user_id = $1 and credentials_epoch + sessions_epoch = $2
           and deleting_since is null
         for update",
        user_id,
        session_epoch,
    )
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Holds the account's row until the caller's transaction ends, if its
/// credentials are still at `epoch`: whatever the transaction issues (a
/// change, a link's email) is made under the credentials that were
/// checked, and a password reset, an address move or a deletion
/// committing meanwhile waits for it or voids it. `false`: the
/// account moved past `epoch`, is gone or is being deleted.
pub async fn hold_credentials(
    conn: &mut PgConnection,
    user_id: Uuid,
    epoch: i64,
) -> Result<bool, sqlx::Error> {
    let found = sqlx::query_scalar!(
        "select user_id from users
         where user_id = $1 and credentials_epoch = $2 and deleting_since is null
         for update",
        user_id,
        epoch,
    )
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// What a login attempt that was not counted found: no account with this
/// address, or one locked for the rest of its window (a window that ended
/// in between reads as locked for no time: the client retries at once).
pub(super) async fn lockout(
    db: impl PgExecutor<'_>,
    email: &str,
    window_secs: f64,
) -> Result<super::LoginAttempt, sqlx::Error> {
    let locked = sqlx::query!(
        r#"select user_id,
                  greatest(extract(epoch from login_failures_since
                                              + make_interval(secs => $2) - now())::float8,
                           0) as "for_secs!"
           from users where lower(email) = lower($1) and deleting_since is null"#,
        email,
        window_secs,
    )
    .fetch_optional(db)
    .await?;
    Ok(locked.map_or(super::LoginAttempt::NoAccount, |row| {
        super::LoginAttempt::Locked {
            user_id: row.user_id,
            for_secs: row.for_secs,
        }
    }))
}
