//! `maintenance`: the housekeeping nothing else does, on a schedule:
//! expired tokens and devices, old job records, replaced photos, abandoned S3 uploads.
//!
//! Each task is a BullMQ job scheduler (`maintenance:<task>`), upserted by
//! every worker that consumes the queue: BullMQ keeps one scheduler per id
//! and creates one job per period, however many workers run. Each run
//! writes what it removed to `maintenance_runs`. Every task is idempotent:
//! a retried or repeated run removes only what is still there.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use catalogue::{Maintenance, MaintenanceTask};
use media::Variant;
use queue::JobQueues;
use serde_json::{Value, json};
use storage::keys;
use store::{devices, mail_budgets, photos, records, resets, stripe_events, tokens, verifications};
use uuid::Uuid;

use super::{JobMeta, Perform};
use crate::context::JobContext;
use crate::error::{Classify, JobError};

/// Photos looked at per run: a backlog is worked off over several runs
/// rather than in one long transaction.
const PHOTO_BATCH: i64 = 1_000;

impl Perform for Maintenance {
    const SERVICE: &'static str = "Maintenance";

    async fn perform(self, ctx: &JobContext, job: &JobMeta) -> Result<Value, JobError> {
        run(ctx, self.task, Some(&job.id)).await
    }
}

/// Runs `task` now and records what it removed; `bullmq_job` names the job
/// that asked, `None` for a run by hand (`worker maintenance run`).
pub async fn run(
    ctx: &JobContext,
    task: MaintenanceTask,
    bullmq_job: Option<&str>,
) -> Result<Value, JobError> {
    let started = chrono::Utc::now();
    let removed = match task {
        MaintenanceTask::PurgeExpiredTokens => purge_expired_tokens(ctx).await?,
        MaintenanceTask::PruneJobRecords => prune_job_records(ctx).await?,
        MaintenanceTask::CleanPhotos => clean_photos(ctx).await?,
        MaintenanceTask::AbortMultipartUploads => abort_multipart_uploads(ctx).await?,
    };
    sqlx::query!(
        "insert into maintenance_runs (run_id, task, bullmq_job, removed, started_at)
         values ($1, $2, $3, $4, $5)",
        Uuid::now_v7(),
        task.as_str(),
        bullmq_job,
        removed,
        started,
    )
    .execute(&ctx.pool)
    .await?;
    tracing::info!(task = task.as_str(), %removed, "maintenance done");
    Ok(json!({ "task": task.as_str(), "removed": removed }))
}

/// Expired session tokens, devices no longer trusted, reset and
/// confirmation links that can no longer be used, and mail budgets idle
/// for a day.
async fn purge_expired_tokens(ctx: &JobContext) -> Result<Value, JobError> {
    let tokens = tokens::purge_expired(&ctx.pool).await?;
    let devices = devices::purge_expired(&ctx.pool).await?;
    let resets = resets::purge_spent(&ctx.pool).await?;
    let verifications = verifications::purge_spent(&ctx.pool).await?;
    let mail_budgets = mail_budgets::purge_idle(&ctx.pool).await?;
    Ok(json!({
        "mail_budgets": mail_budgets,
        "tokens": tokens,
        "devices": devices,
        "resets": resets,
        "verifications": verifications,
    }))
}

/// Finished records only: a job still waiting or running is never pruned,
/// however old.
async fn prune_job_records(ctx: &JobContext) -> Result<Value, JobError> {
    let retention = ctx.maintenance.job_record_retention;
    let records = records::prune_finished(&ctx.pool, retention).await?;
    // An event's row outlives Stripe's retries (three days) by the same
    // retention as its job's record.
    let events = stripe_events::prune(&ctx.pool, retention).await?;
    Ok(json!({ "job_records": records, "stripe_events": events }))
}

/// Replaced photos (ready, but no longer anyone's avatar), failed ones, and
/// files no photo row names (left by a crash between storing and
/// recording, or by a row deleted before its files), once past the grace
/// period. A row goes before its files: if deleting a file fails, the file
/// is an orphan the next run removes, never a row pointing at nothing.
async fn clean_photos(ctx: &JobContext) -> Result<Value, JobError> {
    let grace = ctx.maintenance.photo_grace;
    let stale = photos::clean_stale(&ctx.pool, grace, PHOTO_BATCH).await?;
    for &photo_id in &stale {
        delete_photo_files(ctx, photo_id).await?;
    }
    let orphans = delete_orphan_files(ctx, grace).await?;
    Ok(json!({ "photos": stale.len(), "orphan_files": orphans }))
}

/// Multipart uploads older than this are abandoned: ours finish in minutes.
const STALE_UPLOAD: Duration = Duration::from_secs(24 * 60 * 60);

async fn abort_multipart_uploads(ctx: &JobContext) -> Result<Value, JobError> {
    let aborted = ctx
        .storage
        .abort_stale_multipart_uploads(STALE_UPLOAD)
        .await
        .map_err(JobError::Transient)?;
    Ok(json!({ "multipart_uploads": aborted }))
}

async fn delete_photo_files(ctx: &JobContext, photo_id: Uuid) -> Result<(), JobError> {
    let mut keys = vec![keys::photo_original(photo_id)];
    keys.extend(Variant::ALL.map(|variant| keys::photo_variant(photo_id, variant)));
    for key in keys {
        ctx.storage
            .delete(&key)
            .await
            .transient("could not delete a photo file")?;
    }
    Ok(())
}

/// Files under `photos/<id>/` whose id has no row, all older than `grace`.
async fn delete_orphan_files(ctx: &JobContext, grace: Duration) -> Result<usize, JobError> {
    let files = ctx
        .storage
        .list("photos/")
        .await
        .transient("could not list the photo files")?;
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut by_photo: BTreeMap<Uuid, Vec<(String, SystemTime)>> = BTreeMap::new();
    for file in files {
        let id = file
            .key
            .strip_prefix("photos/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|id| Uuid::parse_str(id).ok());
        // Not ours to judge: only `photos/<uuid>/…` is the photo layout.
        if let Some(id) = id {
            by_photo
                .entry(id)
                .or_default()
                .push((file.key, file.written));
        }
    }
    let ids: Vec<Uuid> = by_photo.keys().copied().collect();
    let known = photos::existing(&ctx.pool, &ids).await?;
    let mut removed = 0;
    for (id, files) in by_photo {
        // A file younger than the grace may belong to an upload being recorded.
        if known.contains(&id) || files.iter().any(|(_, written)| *written > cutoff) {
            continue;
        }
        for (key, _) in files {
            ctx.storage
                .delete(&key)
                .await
                .transient("could not delete an orphan photo file")?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Creates or updates one scheduler per task (`maintenance:<task>`) to run
/// every `interval`. Safe to call from every worker at every start.
pub async fn schedule(queues: &JobQueues, interval: Duration) -> anyhow::Result<()> {
    for task in MaintenanceTask::ALL {
        let id = format!("maintenance:{}", task.as_str());
        queues
            .schedule(&id, task.as_str(), interval, &Maintenance { task })
            .await?;
    }
    Ok(())
}
