//! One file per job, each implementing [`Perform`] for its payload (the
//! payload and its queue are declared in the catalogue, `catalogue`).
//! [`Dispatcher`] routes a BullMQ job to it by queue; the list in
//! [`registered!`] is the one place jobs are registered, and a queue left
//! out of it is a compile error.

mod account_deletion;
mod account_email;
mod follow_up_email;
mod image_resize;
pub mod maintenance;
mod onboarding_pdf;
mod slack_notify;
mod stripe_customer;
mod stripe_event;
mod welcome_email;

use catalogue::{Job, QueueName};
use serde_json::Value;
use store::records;
use store::records::Run;

use crate::context::JobContext;
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
    /// The BullMQ job, so progress reaches Redis too: Bull Board and Node
    /// BullMQ clients see what our status endpoint shows.
    pub queued: bullmq::Job,
}

impl JobMeta {
    /// Reports that the job is `percent` done, for clients polling a long
    /// job. Best effort: a lost update only makes the bar lag.
    pub async fn progress(&self, ctx: &JobContext, percent: i16) {
        // Our record for our clients, BullMQ's job hash for its tools.
        let recorded = async {
            if let Some(run) = self.run {
                match records::progress(&ctx.pool, run, percent).await {
                    Ok(()) => ctx.changed(run.job_id),
                    Err(error) => tracing::debug!(%error, "could not record progress"),
                }
            }
        };
        let mut queued = self.queued.clone();
        let published =
            queued.update_progress(bullmq::types::JobProgress::Number(f64::from(percent)));
        let ((), published) = tokio::join!(recorded, published);
        if let Err(error) = published {
            tracing::debug!(%error, "could not publish progress to BullMQ");
        }
    }

    /// Adds `line` to the job's log in BullMQ (`job.log`), which the
    /// dashboard's job page and Bull Board show: the key steps of long jobs
    /// and why an attempt failed. One Redis round trip, so short jobs log
    /// only failures; best effort, like progress.
    pub async fn log(&self, line: &str) {
        if let Err(error) = self.queued.log(line).await {
            tracing::debug!(%error, "could not add to the job's BullMQ log");
        }
    }
}

/// What the runtime calls to do a job's work. Production uses
/// [`Dispatcher`]; benchmarks plug in a no-op to measure the runtime itself.
pub trait Handler: Send + Sync + 'static {
    /// Does the work of one attempt at a job of `queue`.
    fn handle(
        &self,
        ctx: &JobContext,
        queue: QueueName,
        job: &JobMeta,
        data: &Value,
    ) -> impl Future<Output = Result<Value, JobError>> + Send;

    /// Does the work of one run over several jobs of a batched `queue`
    /// (`catalogue::Batch`): an outcome per job, in `jobs`' order, or one
    /// error for them all. By default each job is handled on its own, in turn.
    fn handle_batch(
        &self,
        ctx: &JobContext,
        queue: QueueName,
        jobs: &[JobMeta],
    ) -> impl Future<Output = Result<Vec<Result<Value, JobError>>, JobError>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in jobs {
                outcomes.push(self.handle(ctx, queue, job, job.queued.data()).await);
            }
            Ok(outcomes)
        }
    }
}

/// A kind of job the worker runs: its payload type, declared with its queue
/// in the catalogue, and the work of one attempt. The runtime parses the
/// payload, opens the span and keeps the job record; `perform` only works.
pub trait Perform: Job {
    /// What the job does, as the subject of a sentence its user reads:
    /// "Billing is temporarily unavailable; we will retry."
    const SERVICE: &'static str;

    /// One attempt at the job.
    fn perform(
        self,
        ctx: &JobContext,
        job: &JobMeta,
    ) -> impl Future<Output = Result<Value, JobError>> + Send;

    /// One run over several jobs of a batched queue, where one call can
    /// serve them all (Slack: one message for every signup): an outcome per
    /// job, in order, or one error for them all. By default each job is
    /// performed on its own, in turn.
    fn perform_batch(
        batch: Vec<(Self, &JobMeta)>,
        ctx: &JobContext,
    ) -> impl Future<Output = Result<Vec<Result<Value, JobError>>, JobError>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(batch.len());
            for (payload, job) in batch {
                outcomes.push(payload.perform(ctx, job).await);
            }
            Ok(outcomes)
        }
    }
}

/// The real jobs: routes each queue to its [`Perform`] impl.
pub struct Dispatcher;

/// Registers the jobs: one line per payload type. A queue of the catalogue
/// missing here does not compile (the matches are exhaustive).
macro_rules! registered {
    ($($payload:ty),* $(,)?) => {
        impl Handler for Dispatcher {
            async fn handle(
                &self,
                ctx: &JobContext,
                queue: QueueName,
                job: &JobMeta,
                data: &Value,
            ) -> Result<Value, JobError> {
                match queue {
                    $(<$payload as Job>::QUEUE => run::<$payload>(ctx, job, data).await,)*
                }
            }

            async fn handle_batch(
                &self,
                ctx: &JobContext,
                queue: QueueName,
                jobs: &[JobMeta],
            ) -> Result<Vec<Result<Value, JobError>>, JobError> {
                match queue {
                    $(<$payload as Job>::QUEUE => run_batch::<$payload>(ctx, jobs).await,)*
                }
            }
        }

        /// What a queue's jobs do, for sentences end users read.
        pub fn service(queue: QueueName) -> &'static str {
            match queue {
                $(<$payload as Job>::QUEUE => <$payload as Perform>::SERVICE,)*
            }
        }
    };
}

registered!(
    catalogue::WelcomeEmail,
    catalogue::AccountEmail,
    catalogue::StripeCustomer,
    catalogue::SlackNotify,
    catalogue::OnboardingPdf,
    catalogue::ImageResize,
    catalogue::AccountDeletion,
    catalogue::StripeEvent,
    catalogue::FollowUpEmail,
    catalogue::Maintenance,
);

/// Parses the payload, names its user in the job's span, and performs it.
async fn run<J: Perform>(ctx: &JobContext, job: &JobMeta, data: &Value) -> Result<Value, JobError> {
    let payload = payload::<J>(data)?;
    if let Some(user_id) = payload.owner() {
        tracing::Span::current().record("user_id", tracing::field::display(user_id));
    }
    payload.perform(ctx, job).await
}

/// Parses each payload and performs them as one run; a job whose payload
/// does not parse fails alone.
async fn run_batch<J: Perform>(
    ctx: &JobContext,
    jobs: &[JobMeta],
) -> Result<Vec<Result<Value, JobError>>, JobError> {
    let mut outcomes: Vec<Option<Result<Value, JobError>>> = Vec::with_capacity(jobs.len());
    let mut batch = Vec::with_capacity(jobs.len());
    let mut places = Vec::with_capacity(jobs.len());
    for (place, job) in jobs.iter().enumerate() {
        match payload::<J>(job.queued.data()) {
            Ok(payload) => {
                outcomes.push(None);
                places.push(place);
                batch.push((payload, job));
            }
            Err(error) => outcomes.push(Some(Err(error))),
        }
    }
    if !batch.is_empty() {
        let performed = J::perform_batch(batch, ctx).await?;
        for (place, outcome) in places.into_iter().zip(performed) {
            outcomes[place] = Some(outcome);
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| {
                Err(JobError::Transient(anyhow::anyhow!(
                    "the batch gave no outcome for this job"
                )))
            })
        })
        .collect())
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
fn payload<J: Job>(data: &Value) -> Result<J, JobError> {
    J::deserialize(data).map_err(|error| {
        JobError::Permanent(
            anyhow::Error::new(error)
                .context(format!("the job data is not a valid {} payload", J::QUEUE)),
        )
    })
}
