//! The failed-login count on the `users` row: counted before a password
//! is checked, cleared by a success.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::config::LoginFailureLimit;

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
        "update users set
             login_failures = case when login_failures_since > now() - make_interval(secs => $3)
                                   then login_failures + 1 else 1 end,
             login_failures_since = case when login_failures_since > now() - make_interval(secs => $3)
                                         then login_failures_since else now() end
         where lower(email) = lower($1) and deleting_since is null
           and not ($2 > 0 and login_failures >= $2
                    and login_failures_since > now() - make_interval(secs => $3))
         returning user_id, password_hash, login_failures",
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
        });
    }
    // Not counted: no such account, or locked. (A window that ended in
    // between reads as locked for no time: the client retries at once.)
    let locked = sqlx::query!(
        r#"select user_id,
                  greatest(extract(epoch from login_failures_since
                                              + make_interval(secs => $2) - now())::float8,
                           0) as "for_secs!"
           from users where lower(email) = lower($1) and deleting_since is null"#,
        email,
        window,
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
