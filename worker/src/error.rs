//! How a job failure is classified (retrying helps, or it does not, or the
//! fault is ours), and what the end user is told about it.

use std::fmt;
use std::time::Duration;

use store::records::PublicError;

/// A failed job attempt. The worker retries [`JobError::Transient`] with
/// exponential backoff and fails [`JobError::Permanent`] at once, so bad
/// input never burns through retries and a flaky network never loses a job.
#[derive(Debug)]
pub enum JobError {
    /// Retrying cannot help (bad input, a 4xx from a provider, a missing row).
    Permanent(anyhow::Error),
    /// Retrying may help (network, a 5xx, a database hiccup).
    Transient(anyhow::Error),
    /// The provider asked us to slow down for this long: the whole queue
    /// pauses and the job goes back to wait, without spending an attempt.
    RateLimited(Duration, anyhow::Error),
    /// The provider refused our credentials (a rotated key, a broken
    /// config): not the job's fault, and true of every job of the queue. The
    /// queue pauses for `CONFIG_FAULT_PAUSE_SECS` and the job goes back to
    /// wait without spending an attempt, until an operator fixes the setting.
    Misconfigured(anyhow::Error),
    /// The attempt ran past its queue's timeout: retried like a transient
    /// failure (a slow provider may be quicker next time).
    TimedOut(anyhow::Error),
}

impl JobError {
    /// The job's user was deleted (or is being deleted) after it was
    /// enqueued: nothing left to do, and retrying will not bring it back.
    pub fn user_gone(user_id: uuid::Uuid) -> Self {
        Self::Permanent(anyhow::anyhow!(
            "user {user_id} no longer exists or is being deleted"
        ))
    }

    /// A permanent failure whose reason the end user may read as it is
    /// (e.g. "the image could not be read"); `cause` stays internal.
    pub fn rejected(public: PublicError, cause: anyhow::Error) -> Self {
        Self::Permanent(cause.context(public))
    }

    /// Classifies a provider's error answer, the same for every provider:
    /// a 5xx passes (transient); a 401 or 403 means our credentials were
    /// refused (misconfigured); any other 4xx is our request and will not
    /// change (permanent). A 429 is `too_many`'s call: Slack says how long
    /// to wait, Stripe does not.
    pub fn from_status(
        status: reqwest::StatusCode,
        error: anyhow::Error,
        too_many: impl FnOnce(anyhow::Error) -> JobError,
    ) -> Self {
        use reqwest::StatusCode;
        match status {
            StatusCode::TOO_MANY_REQUESTS => too_many(error),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Self::Misconfigured(error),
            status if status.is_server_error() => Self::Transient(error),
            _ => Self::Permanent(error),
        }
    }

    /// Whether BullMQ should give up on the job now.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }

    /// The underlying error with its context chain.
    pub fn cause(&self) -> &anyhow::Error {
        match self {
            Self::Permanent(cause)
            | Self::Transient(cause)
            | Self::RateLimited(_, cause)
            | Self::Misconfigured(cause)
            | Self::TimedOut(cause) => cause,
        }
    }

    /// What the end user polling a job is told, naming the `service` that
    /// failed (the job's `Perform::SERVICE`). `retrying`: BullMQ
    /// will try again. Only sentences written here (or attached with
    /// [`JobError::rejected`]) are shown: never the cause's text.
    pub fn public(&self, service: &str, retrying: bool) -> PublicError {
        if let Some(public) = self.cause().downcast_ref::<PublicError>() {
            return public.clone();
        }
        let (code, message) = match self {
            Self::RateLimited(..) => (
                "busy",
                format!("{service} is busy right now; we will retry shortly."),
            ),
            Self::Misconfigured(_) => (
                "temporarily_unavailable",
                format!("{service} is temporarily unavailable; we will retry."),
            ),
            Self::TimedOut(_) if retrying => (
                "timed_out",
                format!("{service} took too long; we will retry."),
            ),
            Self::TimedOut(_) => (
                "timed_out",
                format!(
                    "{service} took too long and we have stopped retrying; our team has been told."
                ),
            ),
            Self::Transient(_) if retrying => (
                "temporarily_unavailable",
                format!("{service} is temporarily unavailable; we will retry."),
            ),
            Self::Transient(_) => (
                "unavailable",
                format!(
                    "{service} was unavailable and we have stopped retrying; our team has been told."
                ),
            ),
            Self::Permanent(_) => (
                "failed",
                format!("{service} could not complete this step; our team has been told."),
            ),
        };
        PublicError { code, message }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:#}` renders the whole chain: "failed to send: connection refused".
        write!(f, "{:#}", self.cause())
    }
}

/// Database failures are assumed passing: a retry after backoff usually succeeds.
impl From<sqlx::Error> for JobError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(anyhow::Error::new(error).context("database query failed"))
    }
}

/// Marks the error of a `Result` as permanent or transient, with context.
pub trait Classify<T> {
    /// Fail the job at once.
    fn permanent(self, context: &'static str) -> Result<T, JobError>;
    /// Retry the job with backoff.
    fn transient(self, context: &'static str) -> Result<T, JobError>;
}

impl<T, E> Classify<T> for Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn permanent(self, context: &'static str) -> Result<T, JobError> {
        self.map_err(|e| JobError::Permanent(anyhow::Error::new(e).context(context)))
    }

    fn transient(self, context: &'static str) -> Result<T, JobError> {
        self.map_err(|e| JobError::Transient(anyhow::Error::new(e).context(context)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_users_never_see_the_cause() {
        let secret =
            anyhow::anyhow!("Stripe answered 401: Invalid API Key provided: sk_test_****7dc");
        for error in [
            JobError::Permanent(secret.context("at /var/lib/acme")),
            JobError::Transient(anyhow::anyhow!("select * from users: connection reset")),
            JobError::Misconfigured(anyhow::anyhow!("535 5.7.8 bad credentials for ops@acme")),
        ] {
            for retrying in [true, false] {
                let public = error.public("Customer billing", retrying);
                for leak in ["sk_", "7dc", "/var", "select", "535", "ops@"] {
                    assert!(!public.message.contains(leak), "{public:?}");
                }
            }
        }
    }

    #[test]
    fn a_rejection_shows_its_own_sentence() {
        let public = PublicError {
            code: "image_unreadable",
            message: "The image could not be read.".into(),
        };
        let error = JobError::rejected(public.clone(), anyhow::anyhow!("libjpeg: bogus marker"));
        assert_eq!(error.public("Photo processing", false), public);
        assert!(error.to_string().contains("bogus marker"));
    }
}
