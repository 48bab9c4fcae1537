//! The hub's two tasks: one turns the feed's changes into events for the
//! streams open here, the other keeps streams alive and ends those whose
//! credentials are gone.

use std::collections::HashSet;
use std::sync::Arc;

use queue::feed::Change;
use uuid::Uuid;

use super::{Event, Hub, JobEvent, SWEEP_EVERY};
use crate::routes::jobs::JobStatus;
use crate::routes::me::MeResponse;
use crate::state::AppState;

/// Changes handled in one round at most (one query for all of them).
const BATCH: usize = 1_024;

/// Queues whose job, once completed, has changed what `GET /api/me` shows
/// (the avatar, the guide's link, the Stripe customer): its owner's
/// streams get an `account` event right after the job's `completed`.
const CHANGE_THE_ACCOUNT: [&str; 3] = ["image-resize", "onboarding-pdf", "stripe-customer"];

/// Delivers the changes the feed's listener hands the hub, for as long as
/// the api runs: one query per round for the records of every changed job,
/// then each to its owner's streams here.
pub async fn run(state: AppState) {
    let hub = &state.events;
    let Some(mut changes) = hub.pending.lock().ok().and_then(|mut taken| taken.take()) else {
        return;
    };
    let mut batch = Vec::with_capacity(BATCH);
    while changes.recv_many(&mut batch, BATCH).await > 0 {
        if let Err(error) = round(&state, &batch).await {
            // What this round carried is not delivered: every stream
            // resumes from its cursor, when the database answers again.
            tracing::warn!(error = %error, "cannot read changed jobs for the live streams; ending them");
            hub.end_all(Some(2_000));
        }
        batch.clear();
    }
}

/// Delivers one round of changes.
async fn round(state: &AppState, changes: &[Change]) -> Result<(), crate::error::ApiError> {
    let hub = &state.events;
    let mut jobs = Vec::new();
    let mut new_of = Vec::new();
    let mut accounts = Vec::new();
    for change in changes {
        match *change {
            Change::Job(job) => jobs.push(job),
            Change::NewJobsOf(user) => new_of.push(user),
            Change::Account(user) => accounts.push(user),
            Change::Probe(..) => {}
        }
    }
    jobs.sort_unstable();
    jobs.dedup();
    let new_of = hub.listening(dedup(new_of));
    if !jobs.is_empty() || !new_of.is_empty() {
        let changed = JobStatus::load_changed(&state.pool, &jobs, &new_of).await?;
        let owners = hub.listening(dedup(changed.iter().map(|job| job.owner).collect()));
        for job in changed {
            if !owners.contains(&job.owner) {
                continue;
            }
            let account_too =
                job.status.is_completed() && CHANGE_THE_ACCOUNT.contains(&job.status.name());
            let event = Event::Job(Arc::new(JobEvent {
                id: job.status.id(),
                version: job.version,
                data: serde_json::to_string(&job.status)
                    .map_err(|error| anyhow::anyhow!("cannot serialise a job status: {error}"))?,
            }));
            let sent = hub.send_to(job.owner, &event);
            metrics::counter!("events_sent_total", "event" => "job").increment(sent as u64);
            if account_too {
                accounts.push(job.owner);
            }
        }
    }
    for user in hub.listening(dedup(accounts)) {
        let Some(me) = MeResponse::load(state, user).await? else {
            // The account is gone: the sweep ends its streams.
            continue;
        };
        let data: Arc<str> = serde_json::to_string(&me)
            .map_err(|error| anyhow::anyhow!("cannot serialise a profile: {error}"))?
            .into();
        let sent = hub.send_to(user, &Event::Account(data));
        metrics::counter!("events_sent_total", "event" => "account").increment(sent as u64);
    }
    Ok(())
}

fn dedup(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Sends every stream a heartbeat every `heartbeat`, and every
/// [`SWEEP_EVERY`] ends the streams whose token no longer exists (signed
/// out on another instance, a password changed, an account deleted).
pub async fn keep(state: AppState, heartbeat: std::time::Duration) {
    let hub: &Hub = &state.events;
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut beat = tokio::time::interval(heartbeat);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = beat.tick() => hub.heartbeat(),
            _ = sweep.tick() => {
                let tokens = hub.tokens();
                if tokens.is_empty() {
                    continue;
                }
                match store::tokens::still_valid(&state.pool, &tokens).await {
                    Ok(valid) => {
                        let valid: HashSet<_> = valid.into_iter().collect();
                        let gone: HashSet<_> = tokens
                            .into_iter()
                            .filter(|token| !valid.contains(token))
                            .collect();
                        if !gone.is_empty() {
                            hub.end_where(|handle| gone.contains(&handle.token), None);
                        }
                    }
                    // Postgres is away: the streams go on (nothing new can
                    // be read for them either), and are checked next round.
                    Err(error) => tracing::warn!(error = %error, "cannot check the live streams' tokens"),
                }
            }
        }
    }
}
