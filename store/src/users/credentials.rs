//! An account's credentials: its password and lockout window, and the two
//! epochs that void what was issued under old credentials (links, new
//! sessions), with the row locks that hold them still while a session or a
//! link is issued.

use platform::config::LoginFailureLimit;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

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
    lockout(db, email, window).await
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
async fn lockout(
    db: impl PgExecutor<'_>,
    email: &str,
    window_secs: f64,
) -> Result<LoginAttempt, sqlx::Error> {
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
    Ok(
        locked.map_or(LoginAttempt::NoAccount, |row| LoginAttempt::Locked {
            user_id: row.user_id,
            for_secs: row.for_secs,
        }),
    )
}
