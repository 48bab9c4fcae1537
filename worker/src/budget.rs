//! The providers' rate budgets as jobs take them: one call of the budget
//! right before each request to a provider (a job making two calls takes
//! two), and a provider's 429 held against every queue that calls it. The
//! counts live in Redis (`queue`'s `take_budget`), so every queue and every
//! worker share one budget per provider.
//!
//! A job calling a provider does:
//!
//! ```text
//! ctx.budgets.take(Provider::Slack).await?;          // before the request
//! let response = ctx.http.post(…).send().await…;
//! if !response.status().is_success() {
//!     let wait = budget::retry_after(response.headers());
//!     // A 429 holds every caller of Slack back for `wait`; the rest as
//!     // `JobError::from_status` classifies them.
//!     return Err(ctx.budgets.refused(Provider::Slack, status, wait, error).await);
//! }
//! ```
//!
//! Neither ever fails the job: a spent budget waits here (a little) or
//! gives the job back without spending an attempt, as a 429 does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::config::{Provider, ProviderSettings};
use platform::server::LogOnce;
use queue::{JobQueues, Taken};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::error::JobError;

/// The longest a job waits here for its provider's budget: past it, the job
/// goes back to wait (its queue pauses) rather than hold its slot.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// How long a provider that answered 429 without saying how long to wait
/// holds every caller back.
const DEFAULT_HOLD: Duration = Duration::from_secs(1);

/// The longest `Retry-After` believed: an hour, whatever a provider says.
const LONGEST_HOLD: Duration = Duration::from_secs(3600);

/// Every provider's budget, shared by all the handlers of this process
/// and, through Redis, with every other worker.
#[derive(Clone)]
pub struct Budgets {
    queues: Arc<JobQueues>,
    providers: ProviderSettings,
}

impl Budgets {
    /// The budgets `providers` sets, counted in the Redis of `queues`.
    pub fn new(queues: Arc<JobQueues>, providers: ProviderSettings) -> Self {
        Self { queues, providers }
    }

    /// Takes one call of `provider`'s budget, right before the call: waits
    /// (at most [`MAX_WAIT`] in all) while the budget is spent or the
    /// provider holds us back, and past that gives the job back with
    /// [`JobError::RateLimited`], which spends no attempt. If Redis does
    /// not answer, the call goes uncounted: the provider's own 429 still
    /// protects it, and a job is not failed for our bookkeeping.
    pub async fn take(&self, provider: Provider) -> Result<(), JobError> {
        let budget = self.providers.budget(provider);
        let started = Instant::now();
        loop {
            let (wait, why) = match self.queues.take_budget(provider, budget).await {
                Ok(Taken::Granted) => return Ok(()),
                Ok(Taken::Spent(wait)) => (wait, "its rate budget is spent"),
                Ok(Taken::Held(wait)) => (wait, "it asked us to wait (429)"),
                Err(error) => {
                    static UNCOUNTED: LogOnce = LogOnce::new();
                    if UNCOUNTED.due() {
                        tracing::warn!(%provider, %error, "cannot count the provider's rate budget; calling it uncounted");
                    }
                    return Ok(());
                }
            };
            if started.elapsed() + wait > MAX_WAIT {
                metrics::counter!("provider_budget_deferred_total", "provider" => provider.as_str())
                    .increment(1);
                return Err(JobError::RateLimited(
                    wait,
                    anyhow::anyhow!("{provider} takes no call for {wait:?}: {why}"),
                ));
            }
            metrics::counter!("provider_budget_waits_total", "provider" => provider.as_str())
                .increment(1);
            // The budget frees a call (or the hold ends) after `wait`.
            tokio::time::sleep(wait).await;
        }
    }

    /// `provider` answered 429 (`error`): every caller, on every queue and
    /// worker, is held back for `retry_after` (or a second when it did not
    /// say), and this job goes back to wait without spending an attempt.
    pub async fn too_many(
        &self,
        provider: Provider,
        retry_after: Option<Duration>,
        error: anyhow::Error,
    ) -> JobError {
        let wait = retry_after
            .unwrap_or(DEFAULT_HOLD)
            .clamp(Duration::from_millis(1), LONGEST_HOLD);
        let budget = self.providers.budget(provider);
        if let Err(redis) = self.queues.hold_provider(provider, budget, wait).await {
            // This queue still pauses; the others learn from their own 429.
            tracing::warn!(%provider, error = %redis, "could not hold the provider's other callers back");
        }
        JobError::RateLimited(wait, error)
    }
}

impl Budgets {
    /// `provider`'s error answer `status` as a job error, as
    /// [`JobError::from_status`] classifies it, except that a 429 holds
    /// every caller of `provider` back ([`too_many`](Self::too_many)) for
    /// `retry_after`.
    pub async fn refused(
        &self,
        provider: Provider,
        status: reqwest::StatusCode,
        retry_after: Option<Duration>,
        error: anyhow::Error,
    ) -> JobError {
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return self.too_many(provider, retry_after, error).await;
        }
        JobError::from_status(status, error, JobError::Transient)
    }
}

/// A response's `Retry-After` in seconds, as Stripe and Slack send it.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
