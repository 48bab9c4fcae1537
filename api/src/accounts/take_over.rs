//! Taking an address from an account that never proved it. A signup, a
//! password reset or an email change to the address does this, so a
//! stranger who signed up with someone else's address cannot keep it
//! from its owner.

use catalogue::AccountDeletion;
use store::{devices, tokens, users};
use uuid::Uuid;

use crate::outbox::UnitOfWork;

/// An account that held an address without proving it, taken over in the
/// caller's unit of work. Told once the work committed
/// ([`TakenOver::committed`]), so the log never tells of a take-over
/// that rolled back.
#[must_use = "tell it once the unit of work committed"]
pub(super) struct TakenOver {
    squatter: Uuid,
}

impl TakenOver {
    /// Takes `email` from the account that holds it unproven, if any: the
    /// account is marked for deletion, its sessions and devices end (this
    /// instance forgets them on commit), and its clean-up is recorded
    /// aside from the caller's jobs.
    pub(super) async fn from_address(
        work: &mut UnitOfWork<'_>,
        email: &str,
    ) -> Result<Option<Self>, sqlx::Error> {
        let Some(squatter) = users::reclaim_unverified(work.conn(), email).await? else {
            return Ok(None);
        };
        tokens::revoke_all_of_user(work.conn(), squatter).await?;
        devices::revoke_all_of_user(work.conn(), squatter).await?;
        work.record_aside(&AccountDeletion { user_id: squatter })
            .await?;
        work.forget_sessions(squatter);
        Ok(Some(Self { squatter }))
    }

    /// Once the unit of work committed: the take-over is a fact.
    pub(super) fn committed(self) {
        tracing::info!(squatter = %self.squatter, "an unproven account's address was taken over");
    }
}
