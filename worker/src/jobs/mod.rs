//! One file per job. Each exposes `run(ctx, job, payload)`; [`Catalogue`]
//! routes a BullMQ job to it by queue, so adding a queue is a compile error
//! until it has a handler.

mod image_resize;
mod onboarding_pdf;
mod slack_notify;
mod stripe_customer;
mod welcome_email;

use serde_json::Value;
use shared::jobs::QueueName;
use shared::records::{self, Run};

use crate::context::Context;
use crate::error::JobError;

/// What a handler may know about the job it runs, besides its payload.
#[derive(Debug, Clone)]
pub struct JobMeta {
    /// BullMQ job id (the job record's id for jobs we enqueued).
    pub id: String,
    /// 1-based number of this attempt.
    pub attempt: u32,
    /// This attempt's hold on the job record, for jobs we enqueued; one
    /// added by another BullMQ producer has none and simply runs.
    pub run: Option<Run>,
    /// Shortly before the attempt times out: CPU-bound work, which the
    /// runtime cannot cancel, checks it and stops.
    pub deadline: std::time::Instant,
}

impl JobMeta {
    /// Reports that the job is `percent` done, for clients polling a long
    /// job. Best effort: a lost update only makes the bar lag.
    pub async fn progress(&self, ctx: &Context, percent: i16) {
        let Some(run) = self.run else {
            return;
        };
        if let Err(error) = records::progress(&ctx.pool, run, percent).await {
            tracing::debug!(%error, "could not record progress");
        }
    }
}

/// What the runtime calls to do a job's work. Production uses
/// [`Catalogue`]; benchmarks plug in a no-op to measure the runtime itself.
pub trait Handler: Send + Sync + 'static {
    /// Does the work of one attempt at a job of `queue`.
    fn handle(
        &self,
        ctx: &Context,
        queue: QueueName,
        job: &JobMeta,
        data: &Value,
    ) -> impl Future<Output = Result<Value, JobError>> + Send;
}

/// The real jobs: routes each queue to its handler in `jobs/`.
pub struct Catalogue;

impl Handler for Catalogue {
    async fn handle(
        &self,
        ctx: &Context,
        queue: QueueName,
        job: &JobMeta,
        data: &Value,
    ) -> Result<Value, JobError> {
        match queue {
            QueueName::WelcomeEmail => welcome_email::run(ctx, job, payload(data)?).await,
            QueueName::StripeCustomer => stripe_customer::run(ctx, job, payload(data)?).await,
            QueueName::SlackNotify => slack_notify::run(ctx, job, payload(data)?).await,
            QueueName::OnboardingPdf => onboarding_pdf::run(ctx, job, payload(data)?).await,
            QueueName::ImageResize => image_resize::run(ctx, job, payload(data)?).await,
        }
    }
}

/// Runs CPU-bound `work` (rendering, decoding) on the blocking pool, in the
/// job's span, so it never stalls the async runtime. `what` names the work
/// if its thread dies.
async fn on_blocking_pool<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JobError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|error| JobError::Transient(anyhow::anyhow!("{what} stopped: {error}")))
}

/// Bad job data will be just as bad on the next attempt: permanent.
fn payload<J: shared::jobs::Job>(data: &Value) -> Result<J, JobError> {
    J::deserialize(data).map_err(|error| {
        JobError::Permanent(
            anyhow::Error::new(error)
                .context(format!("the job data is not a valid {} payload", J::QUEUE)),
        )
    })
}
