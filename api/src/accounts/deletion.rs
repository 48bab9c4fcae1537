//! The way out. Deleting is quick on the request: the account is marked
//! (from then on it logs nobody in, takes no upload, and its queued jobs
//! find it gone), every other session and device ends, and the
//! `account-deletion` job that removes the rest, files and Stripe customer
//! included, is recorded. The session that asked can poll the job until
//! the account, and the session with it, is gone.

use catalogue::AccountDeletion;
use store::{devices, tokens, users};

use super::credentials::confirm_password;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::outbox::{JobRef, UnitOfWork};
use crate::request_id::RequestId;
use crate::state::AppState;

/// Marks the signed-in user's account for deletion, once they gave
/// `password` again; returns the job that deletes it.
pub async fn delete_account(
    state: &AppState,
    request: &RequestId,
    auth: &AuthUser,
    password: String,
) -> Result<JobRef, ApiError> {
    let confirmed = confirm_password(state, auth, password).await?;
    let mut work = UnitOfWork::begin(state, request).await?;
    // A reset committed since the password was checked voids the request.
    if !users::hold_credentials(work.conn(), auth.user_id, confirmed.epoch).await?
        || !users::begin_deletion(work.conn(), auth.user_id).await?
    {
        // A concurrent request marked it first, and recorded the job.
        return Err(ApiError::Unauthorized);
    }
    tokens::revoke_others(work.conn(), auth.user_id, &auth.token).await?;
    devices::revoke_all_of_user(work.conn(), auth.user_id).await?;
    let job = AccountDeletion {
        user_id: auth.user_id,
    };
    work.record(&job).await?;
    work.forget_sessions(auth.user_id);
    let job = work.commit().await?.jobs.into_iter().next();
    tracing::info!("account deletion requested");
    job.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("an account deletion with no job")))
}
