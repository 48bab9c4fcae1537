//! How a job failure is classified: retrying helps, or it does not.

use std::fmt;
use std::time::Duration;

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
}

impl JobError {
    /// The job's user was deleted after it was enqueued: nothing left to do,
    /// and retrying will not bring the user back.
    pub fn user_gone(user_id: uuid::Uuid) -> Self {
        Self::Permanent(anyhow::anyhow!("user {user_id} no longer exists"))
    }

    /// Whether BullMQ should give up on the job now.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }

    /// The underlying error with its context chain.
    pub fn cause(&self) -> &anyhow::Error {
        match self {
            Self::Permanent(cause) | Self::Transient(cause) | Self::RateLimited(_, cause) => cause,
        }
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
