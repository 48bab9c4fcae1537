//! Mail budgets: the `mail_budgets` row. This module is the only writer of
//! that table.
//!
//! ```text
//! take (room in the window: one more send recorded) | spent (nothing written)
//!      → purge once the newest send is a day old
//! ```
//!
//! A budget bounds how many emails of one kind go to one address, whoever
//! asks, or to one account, in any sliding window: at most `max` sends in
//! any `window`, not `max` per clock hour (two bursts either side of an
//! hour's edge would be twice the budget). The check and the record are
//! one statement under the row's lock, so however many requests arrive at
//! once, on however many instances, at most `max` are let through. Taken
//! inside the transaction that records the email, a budget is given back
//! if that transaction rolls back.
//!
//! Keys are SHA-256 digests of the kind and the lowercased address: the
//! table names no address in clear, and a deleted account leaves none
//! behind (a digest can still be matched against a list of guesses by
//! whoever reads the table).

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget<'a> {
    /// Links to an address that has not proven itself (a confirmation at
    /// signup or on request, an email change's link): whoever asks, one
    /// budget per address.
    UnprovenAddress(&'a str),
    /// Password reset links to an address.
    Resets(&'a str),
    /// Emails of one kind (`verify-email`, `confirm-new-email`) one account
    /// asked for, whatever address they went to.
    Account(&'a str, Uuid),
}

impl Budget<'_> {
    /// The budget's kind and what it counts for: Postgres makes the row's
    /// key of them (`sha256(kind:lower(btrim(subject)))`), with the same
    /// `lower` the unique index on addresses uses, so two spellings the
    /// accounts treat as one address are one budget too.
    fn parts(&self) -> (String, String) {
        match self {
            Self::UnprovenAddress(address) => ("unproven".into(), (*address).to_owned()),
            Self::Resets(address) => ("reset".into(), (*address).to_owned()),
            Self::Account(kind, user_id) => (format!("account:{kind}"), user_id.to_string()),
        }
    }
}

/// How many sends a budget allows, in what sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Sends in any window.
    pub max: i32,
    /// The window.
    pub window: Duration,
}

impl Allowance {
    /// Three an hour: enough for a lost email and a second try, too few to
    /// flood anyone.
    pub const THREE_AN_HOUR: Self = Self {
        max: 3,
        window: Duration::from_secs(3600),
    };
}

/// What [`take`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Taken {
    /// One more send is recorded against the budget: send it.
    Sent,
    /// The budget is spent: send nothing. The oldest send in the window
    /// leaves it after this many seconds.
    Spent {
        /// Seconds until there is room again (at least 1).
        retry_after_secs: u64,
    },
}

/// Records one send against `budget` if it has room, atomically: the
/// insert or update and the check are one statement under the row's lock.
pub async fn take(
    conn: &mut sqlx::PgConnection,
    budget: Budget<'_>,
    allowance: Allowance,
) -> Result<Taken, sqlx::Error> {
    let (kind, subject) = budget.parts();
    let window = allowance.window.as_secs_f64();
    // The key is made in the statement that takes the budget: one round
    // trip on the way that sends (signup's).
    let taken = sqlx::query_scalar!(
        r#"insert into mail_budgets (budget_key, sent_at)
           values (sha256(convert_to($1 || ':' || lower(btrim($2)), 'UTF8')), array[now()])
           on conflict (budget_key) do update set
               sent_at = array(select t from unnest(mail_budgets.sent_at) t
                               where t > now() - make_interval(secs => $4)) || now(),
               last_sent_at = now()
           where (select count(*) from unnest(mail_budgets.sent_at) t
                  where t > now() - make_interval(secs => $4)) < $3
           returning 1 as "taken!""#,
        kind,
        subject,
        i64::from(allowance.max),
        window,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if taken.is_some() {
        return Ok(Taken::Sent);
    }
    let wait = sqlx::query_scalar!(
        r#"select extract(epoch from min(t) + make_interval(secs => $3) - now())::float8
           from mail_budgets, unnest(sent_at) t
           where budget_key = sha256(convert_to($1 || ':' || lower(btrim($2)), 'UTF8'))
             and t > now() - make_interval(secs => $3)"#,
        kind,
        subject,
        window,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Taken::Spent {
        retry_after_secs: wait.unwrap_or(1.0).ceil().max(1.0) as u64,
    })
}

/// Removes budgets whose newest send is older than a day (scheduled
/// maintenance): no budget's window is that long. Returns how many.
pub async fn purge_idle(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query!("delete from mail_budgets where last_sent_at < now() - interval '1 day'")
            .execute(db)
            .await?;
    Ok(done.rows_affected())
}
