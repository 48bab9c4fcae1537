//! The hub's two tasks: one turns the feed's changes into events for the
//! streams open here, the other keeps streams alive and ends those whose
//! credentials are gone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

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
/// then each to its owner's streams here. Every [`CATCH_UP_EVERY`] it also
/// reads again the jobs it last sent unfinished and every listening user's
/// newest jobs, so a change whose announcement never came (a writer killed
/// between its commit and its publish) reaches the streams that late at
/// most, as a poll would see it.
pub async fn run(state: AppState) {
    let hub = &state.events;
    let Some(mut changes) = hub.pending.lock().ok().and_then(|mut taken| taken.take()) else {
        return;
    };
    let mut known = Known::default();
    let mut catch_up = tokio::time::interval(CATCH_UP_EVERY);
    catch_up.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = changes.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    return;
                }
            }
            _ = catch_up.tick() => known.catch_up(hub, &mut batch),
        }
        if batch.is_empty() {
            continue;
        }
        if let Err(error) = round(&state, &batch, &mut known).await {
            // What this round carried is not delivered: every stream
            // resumes from its cursor, when the database answers again.
            tracing::warn!(error = %error, "cannot read changed jobs for the live streams; ending them");
            hub.end_all(Some(2_000));
        }
        batch.clear();
    }
}

/// How often the delivery task reads again what the feed may have missed.
const CATCH_UP_EVERY: Duration = Duration::from_secs(5);
/// Jobs remembered as sent unfinished, or as having announced their
/// profile change, at most (about 50 bytes each).
const KNOWN_MAX: usize = 50_000;

/// What the delivery task remembers between rounds.
#[derive(Default)]
struct Known {
    /// Jobs last sent unfinished, with their owners: read again at each
    /// catch-up until they are sent finished.
    unfinished: HashMap<Uuid, Uuid>,
    /// Completed jobs whose profile change was announced: a job read again
    /// (a catch-up, a duplicate announcement) does not announce it twice.
    announced: HashSet<Uuid>,
}

impl Known {
    /// Queues a catch-up round: the unfinished jobs of users still
    /// listening, and every listening user's newest jobs.
    fn catch_up(&mut self, hub: &Hub, batch: &mut Vec<Change>) {
        let users: HashSet<Uuid> = hub.users().into_iter().collect();
        self.unfinished.retain(|_, owner| users.contains(owner));
        batch.extend(self.unfinished.keys().copied().map(Change::Job));
        batch.extend(users.into_iter().map(Change::NewJobsOf));
    }

    /// Whether the profile change of `job`, just read completed, is news.
    fn newly_completed(&mut self, job: Uuid) -> bool {
        if self.announced.len() >= KNOWN_MAX {
            self.announced.clear();
        }
        self.announced.insert(job)
    }

    fn saw(&mut self, job: Uuid, owner: Uuid, finished: bool) {
        if finished {
            self.unfinished.remove(&job);
        } else if self.unfinished.len() < KNOWN_MAX {
            self.unfinished.insert(job, owner);
        }
    }
}

/// Delivers one round of changes.
async fn round(
    state: &AppState,
    changes: &[Change],
    known: &mut Known,
) -> Result<(), crate::error::ApiError> {
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
            let id = job.status.id();
            known.saw(id, job.owner, job.status.is_finished());
            let account_too = job.status.is_completed()
                && CHANGE_THE_ACCOUNT.contains(&job.status.name())
                && known.newly_completed(id);
            let event = Event::Job(Arc::new(JobEvent {
                id,
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

/// Sends every stream a heartbeat every `heartbeat`, and in a task of its
/// own (a slow query must not hold heartbeats back) ends, every
/// [`SWEEP_EVERY`] or when told, the streams whose token no longer exists
/// (signed out on another instance, a password changed, an account
/// deleted).
pub async fn keep(state: AppState, heartbeat: Duration) {
    let sweeper = tokio::spawn(sweep(state.clone()));
    let mut beat = tokio::time::interval(heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Ends the sweeper with this task (aborted at shutdown).
    let _sweeper = AbortOnDrop(sweeper);
    loop {
        beat.tick().await;
        state.events.heartbeat();
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn sweep(state: AppState) {
    let hub: &Hub = &state.events;
    loop {
        // Whichever comes first: the period, or sessions ended here.
        let _ = tokio::time::timeout(SWEEP_EVERY, hub.check_tokens.notified()).await;
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
            // Postgres is away: the streams go on (nothing new can be read
            // for them either), and are checked next round.
            Err(error) => tracing::warn!(error = %error, "cannot check the live streams' tokens"),
        }
    }
}
