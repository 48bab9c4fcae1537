//! Emails with a link in them (a confirmation, a new address's proof),
//! sent only within their budgets: per address, whoever asks (three an
//! hour to an address that has not proven itself), and per account (three
//! of each kind an hour), both counted atomically in Postgres
//! ([`mail_budgets`]).

use catalogue::AccountEmail;
use store::mail_budgets::{Allowance, Budget, Taken};
use store::{mail_budgets, users};
use uuid::Uuid;

use crate::error::ApiError;
use crate::outbox::{JobRef, UnitOfWork};
use crate::request_id::RequestId;
use crate::state::AppState;

/// Records `jobs` if every one of `budgets` has room and the account's
/// credentials are still at `epoch`, all in one unit of work (a spent
/// budget gives back what the others took); hands them to Redis; returns
/// the first, the one the answer points to.
pub(super) async fn send(
    state: &AppState,
    request: &RequestId,
    user_id: Uuid,
    epoch: i64,
    budgets: &[Budget<'_>],
    jobs: &[AccountEmail],
) -> Result<JobRef, ApiError> {
    let mut work = UnitOfWork::begin(state, request).await?;
    if !users::hold_credentials(work.conn(), user_id, epoch).await? {
        return Err(ApiError::Unauthorized);
    }
    for &budget in budgets {
        if let Taken::Spent { retry_after_secs } =
            mail_budgets::take(work.conn(), budget, Allowance::THREE_AN_HOUR).await?
        {
            return Err(ApiError::RateLimited(retry_after_secs));
        }
    }
    for job in jobs {
        work.record(job).await?;
    }
    work.commit()
        .await?
        .jobs
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("an account email was sent with no job")))
}
