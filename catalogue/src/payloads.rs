//! The payloads of the catalogue's queues: ids, not records (a job reads
//! the current row when it runs).

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Send the welcome email to a user who just signed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelcomeEmail {
    /// The new user.
    pub user_id: Uuid,
}

/// Send an account email to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEmail {
    /// The account.
    pub user_id: Uuid,
    /// Which email.
    pub kind: AccountEmailKind,
    /// Where it goes when that is not the account's address now: the new
    /// address of an email change, or the old one its notice goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The account's credentials' epoch when the email was asked for: a
    /// link is made only while the account is still at it (a password
    /// reset meanwhile voids an email change asked for before). Absent in
    /// jobs recorded before links were bound: the epoch at sending time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    /// For [`AccountEmailKind::EmailChangeRequested`]: the new address,
    /// masked (`n•••@example.com`), so the notice names it without
    /// handing it to whoever reads the old mailbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl AccountEmail {
    /// An email to the account's own address.
    pub fn new(user_id: Uuid, kind: AccountEmailKind) -> Self {
        Self {
            user_id,
            kind,
            address: None,
            epoch: None,
            hint: None,
        }
    }

    /// An email to `address`, which is not (or no longer) the account's.
    pub fn to(user_id: Uuid, kind: AccountEmailKind, address: &str) -> Self {
        Self {
            address: Some(address.to_owned()),
            ..Self::new(user_id, kind)
        }
    }

    /// The same email, its link bound to the credentials' `epoch` it was
    /// asked under.
    pub fn at_epoch(self, epoch: i64) -> Self {
        Self {
            epoch: Some(epoch),
            ..self
        }
    }
}

/// The account emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountEmailKind {
    /// A single-use link that proves the account's address
    /// (`EMAIL_VERIFICATION_TTL_SECS`); sent at signup and on request.
    VerifyEmail,
    /// A single-use link to choose a new password (`PASSWORD_RESET_TTL_SECS`).
    PasswordReset,
    /// "Your password was changed; if it was not you…"
    PasswordChanged,
    /// A single-use link to the new address of an email change: the change
    /// takes effect when it is followed.
    ConfirmNewEmail,
    /// To the old address, once the change took effect: "if it was not
    /// you…"
    EmailChanged,
    /// To the account's address the moment a move to another is asked
    /// for: "someone asked to move your account to n•••@example.com; if
    /// it was not you, reset your password".
    EmailChangeRequested,
}

/// Apply a Stripe event the webhook recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeEvent {
    /// Stripe's event id (`evt_…`), the key of its `stripe_events` row.
    pub event_id: String,
}

/// Remind a verified user who has not finished setting up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpEmail {
    /// The user.
    pub user_id: Uuid,
}

/// Remove an account whose owner asked for it, everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDeletion {
    /// The account, already marked as being deleted.
    pub user_id: Uuid,
}

/// Create the Stripe customer of a user who just signed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeCustomer {
    /// The new user.
    pub user_id: Uuid,
}

/// Announce a new user in the team's Slack channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackNotify {
    /// The new user.
    pub user_id: Uuid,
}

/// Render and store the onboarding guide of a user who just signed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardingPdf {
    /// The new user.
    pub user_id: Uuid,
}

/// Make the three sizes of an uploaded photo and make it the user's avatar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageResize {
    /// Who uploaded it.
    pub user_id: Uuid,
    /// The `photos` row.
    pub photo_id: Uuid,
}

/// One maintenance task; the scheduler runs each every
/// `MAINTENANCE_INTERVAL_SECS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    /// What to clean up.
    pub task: MaintenanceTask,
}

/// The housekeeping the system does by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaintenanceTask {
    /// Deletes session tokens past their expiry.
    PurgeExpiredTokens,
    /// Deletes finished job records older than `JOB_RECORD_RETENTION_DAYS`.
    PruneJobRecords,
    /// Deletes the files and rows of replaced and failed photos, and photo
    /// files no row names, once older than `PHOTO_CLEANUP_GRACE_SECS`.
    CleanPhotos,
    /// Aborts S3 multipart uploads started over a day ago and never
    /// completed (a crash mid-copy leaves them, and their parts are billed).
    AbortMultipartUploads,
}

impl MaintenanceTask {
    /// Every task, in the order a manual run does them.
    pub const ALL: [MaintenanceTask; 4] = [
        MaintenanceTask::PurgeExpiredTokens,
        MaintenanceTask::PruneJobRecords,
        MaintenanceTask::CleanPhotos,
        MaintenanceTask::AbortMultipartUploads,
    ];

    /// The task's name on the wire and in its scheduler's id.
    pub const fn as_str(self) -> &'static str {
        match self {
            MaintenanceTask::PurgeExpiredTokens => "purge-expired-tokens",
            MaintenanceTask::PruneJobRecords => "prune-job-records",
            MaintenanceTask::CleanPhotos => "clean-photos",
            MaintenanceTask::AbortMultipartUploads => "abort-multipart-uploads",
        }
    }
}

impl FromStr for MaintenanceTask {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|task| task.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|task| task.as_str()).collect();
                format!("unknown task `{name}`; the tasks are {}", names.join(", "))
            })
    }
}
