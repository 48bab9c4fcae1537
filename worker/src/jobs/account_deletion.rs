//! `account-deletion`: removes an account everywhere, once its owner has
//! asked (the api marked it as being deleted, with the password checked).
//!
//! Each step is idempotent and the steps run in an order that a crash
//! between any two of them cannot spoil: what is outside Postgres goes
//! first (files, the Stripe customer), named by rows that are removed only
//! afterwards; the payloads of the customer's Stripe events are purged
//! (their ids stay, to recognise redeliveries); and the user's row goes
//! last, taking its sessions, devices, reset links, photo rows,
//! subscriptions and job records (this job's own included) with it. A
//! rerun after a SIGKILL finds what is left and removes that; one after the
//! end finds no account and has nothing to do.
//!
//! It starts only once none of the account's other jobs is running: from
//! the moment the account is marked, jobs treat it as gone and start no
//! new work, but one already past that check could still write a file or
//! create a Stripe customer, so this job waits (a transient failure, retried
//! with backoff) until those have ended.

use std::time::Duration;

use anyhow::anyhow;
use catalogue::{AccountDeletion, QueueName};
use futures::{StreamExt as _, TryStreamExt as _};
use media::Variant;
use platform::config::Provider;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use storage::keys;
use store::{photos, records, stripe_events, users};
use uuid::Uuid;

use super::{JobMeta, Perform};
use crate::budget;
use crate::context::JobContext;
use crate::error::{Classify, JobError};

/// A job record `active` for longer than this belongs to a worker that
/// died (the longest queue timeout is 5 minutes); BullMQ runs that job again
/// and it then finds the account gone, so it is not waited for.
const RUNNING_AT_MOST: Duration = Duration::from_secs(10 * 60);

/// Storage deletes in flight at once.
const DELETES_AT_ONCE: usize = 16;

impl Perform for AccountDeletion {
    const SERVICE: &'static str = "Account deletion";

    async fn perform(self, ctx: &JobContext, job: &JobMeta) -> Result<Value, JobError> {
        let user_id = self.user_id;
        let Some(leftovers) = users::leftovers(&ctx.pool, user_id).await? else {
            // Removed by an earlier attempt (or never marked): done.
            return Ok(json!({ "deleted": true, "already": true }));
        };
        let except = job.run.map_or_else(Uuid::nil, |run| run.job_id);
        let running = records::running_of_user(&ctx.pool, user_id, except, RUNNING_AT_MOST).await?;
        if running > 0 {
            return Err(JobError::Transient(anyhow!(
                "{running} job(s) of the account are still running; waiting for them"
            )));
        }
        // A delayed follow-up would find the account gone and skip; taking
        // it out of Redis keeps it from waiting there a day for nothing.
        for follow_up in records::open_of_user(&ctx.pool, user_id, QueueName::FollowUpEmail).await?
        {
            ctx.queues
                .remove(QueueName::FollowUpEmail, follow_up)
                .await
                .transient("could not cancel the follow-up email")?;
        }
        job.progress(ctx, 10).await;

        let photos = photos::ids_of_user(&ctx.pool, user_id).await?;
        let mut files = Vec::with_capacity(photos.len() * 4 + 1);
        for photo_id in &photos {
            files.push(keys::photo_original(*photo_id));
            files.extend(Variant::ALL.map(|variant| keys::photo_variant(*photo_id, variant)));
        }
        files.extend(leftovers.onboarding_pdf_key);
        // A few at a time: an account with hundreds of photos is done in
        // seconds on S3, and storage is not flooded.
        let storage = &ctx.storage;
        let file_count = files.len();
        futures::stream::iter(files)
            .map(|key| async move { storage.delete(&key).await })
            .buffer_unordered(DELETES_AT_ONCE)
            .try_collect::<()>()
            .await
            .transient("could not delete a file from storage")?;
        job.progress(ctx, 50).await;

        let mut events_purged = 0;
        let stripe = match leftovers.stripe_customer_id {
            Some(customer_id) => {
                delete_stripe_customer(ctx, &customer_id).await?;
                // Before the id is forgotten, so a rerun still knows whose
                // events to purge; events arriving from now on are purged
                // by their own job (the account is being deleted).
                events_purged = stripe_events::purge_customer(&ctx.pool, &customer_id).await?;
                users::forget_stripe_customer(&ctx.pool, user_id).await?;
                Some(customer_id)
            }
            None => None,
        };
        job.progress(ctx, 80).await;

        // Last: the row, and with it everything that names the account.
        users::delete(&ctx.pool, user_id).await?;
        tracing::info!(photos = photos.len(), "account deleted");
        Ok(json!({
            "deleted": true,
            "files": file_count,
            "stripe_customer_deleted": stripe,
            "stripe_events_purged": events_purged,
        }))
    }
}

/// Deletes the customer at Stripe. One that Stripe does not know (deleted
/// by an earlier attempt whose answer was lost, or by hand) is done too.
async fn delete_stripe_customer(ctx: &JobContext, customer_id: &str) -> Result<(), JobError> {
    let Some(secret_key) = &ctx.providers.stripe_secret_key else {
        // The account has a customer, so a key was set once: the setting
        // is broken, not the job. The queue waits for an operator.
        return Err(JobError::Misconfigured(anyhow!(
            "STRIPE_SECRET_KEY is not set, and the account has a Stripe customer to delete"
        )));
    };
    ctx.budgets.take(Provider::Stripe).await?;
    let response = ctx
        .http
        .delete(format!(
            "{}/v1/customers/{customer_id}",
            ctx.providers.stripe_api_base
        ))
        .bearer_auth(secret_key.expose_secret())
        .send()
        .await
        .transient("could not reach Stripe")?;
    let status = response.status();
    if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
        tracing::info!(customer_id, %status, "Stripe customer deleted");
        return Ok(());
    }
    let retry_after = budget::retry_after(response.headers());
    let error = anyhow!("Stripe answered {status} to deleting customer {customer_id}");
    // A 429 holds every Stripe caller back, without spending an attempt.
    Err(ctx
        .budgets
        .refused(Provider::Stripe, status, retry_after, error)
        .await)
}
