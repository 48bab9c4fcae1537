//! Trusted devices: the `trusted_devices` row. This module is the only
//! writer of that table.
//!
//! ```text
//! issue (signup, login) → attempts counted on the device → expire → purge
//!                       → revoke (all of a user)
//! ```
//!
//! A device that has signed in to an account holds a device token (OWASP's
//! device cookie). While the account is locked after failed logins, a login
//! that carries the token is counted on the device instead of the account,
//! under the same limit: a stranger's guesses lock the account for
//! strangers, not for its owner's devices, and a stolen device token buys
//! no more guesses than the account allows. Only the token's SHA-256 is
//! stored; making tokens is the api's business.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::tokens::TokenHash;
use platform::config::LoginFailureLimit;

/// How long a device stays trusted after it signed in.
pub const TTL_DAYS: i32 = 90;

/// A login attempt presented with a device token.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceAttempt {
    /// The device is trusted by the account with this address and the
    /// attempt is counted on it: verify the password against this hash.
    Counted {
        /// The account.
        user_id: Uuid,
        /// Its Argon2id PHC string.
        password_hash: String,
        /// The epochs the hash was read at, as
        /// [`crate::users::LoginAttempt::Counted`] has them.
        session_epoch: i64,
    },
    /// The device has used up its attempts for the window.
    Locked {
        /// Seconds until the device's window ends.
        for_secs: f64,
    },
    /// Unknown, expired, or another account's device: the attempt is the
    /// account's to count, as if no token had been sent.
    NotTrusted,
}

/// Trusts a new device of `user_id` for [`TTL_DAYS`], inside the caller's
/// transaction or pool.
pub async fn issue(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    hash: &TokenHash,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into trusted_devices (token_hash, user_id, expires_at)
         values ($1, $2, now() + make_interval(days => $3))",
        &hash[..],
        user_id,
        TTL_DAYS,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Counts an attempt to log in to `email` from the device `hash`, before
/// the password is checked: however many arrive at once, at most
/// `limit.max` per window are let through (the row lock orders them and
/// each sees the count the previous one left).
pub async fn begin_attempt(
    db: &sqlx::PgPool,
    hash: &TokenHash,
    email: &str,
    limit: LoginFailureLimit,
) -> Result<DeviceAttempt, sqlx::Error> {
    let max = i32::try_from(limit.max).unwrap_or(i32::MAX);
    let window = limit.window.as_secs_f64();
    let counted = sqlx::query!(
        r#"update trusted_devices d set
               login_failures = case when d.login_failures_since > now() - make_interval(secs => $4)
                                     then d.login_failures + 1 else 1 end,
               login_failures_since = case when d.login_failures_since > now() - make_interval(secs => $4)
                                           then d.login_failures_since else now() end
           from users u
           where d.token_hash = $1 and d.user_id = u.user_id and lower(u.email) = lower($2)
             and d.expires_at > now()
             and not ($3 > 0 and d.login_failures >= $3
                      and d.login_failures_since > now() - make_interval(secs => $4))
           returning u.user_id, u.password_hash,
                     u.credentials_epoch + u.sessions_epoch as "session_epoch!""#,
        &hash[..],
        email,
        max,
        window,
    )
    .fetch_optional(db)
    .await?;
    if let Some(row) = counted {
        return Ok(DeviceAttempt::Counted {
            user_id: row.user_id,
            password_hash: row.password_hash,
            session_epoch: row.session_epoch,
        });
    }
    let locked = sqlx::query_scalar!(
        r#"select extract(epoch from d.login_failures_since
                                     + make_interval(secs => $3) - now())::float8 as "for_secs!"
           from trusted_devices d join users u using (user_id)
           where d.token_hash = $1 and lower(u.email) = lower($2) and d.expires_at > now()
             and d.login_failures_since > now() - make_interval(secs => $3)"#,
        &hash[..],
        email,
        window,
    )
    .fetch_optional(db)
    .await?;
    Ok(locked.map_or(DeviceAttempt::NotTrusted, |for_secs| {
        DeviceAttempt::Locked {
            for_secs: for_secs.max(0.0),
        }
    }))
}

/// The owner proved themselves from this device: its count starts over.
pub async fn clear_failures(db: impl PgExecutor<'_>, hash: &TokenHash) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update trusted_devices set login_failures = 0, login_failures_since = null
         where token_hash = $1 and login_failures > 0",
        &hash[..],
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Stops trusting every device of `user_id` (a password reset, the
/// account's deletion).
pub async fn revoke_all_of_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("delete from trusted_devices where user_id = $1", user_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Removes expired devices; returns how many.
pub async fn purge_expired(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("delete from trusted_devices where expires_at <= now()")
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
