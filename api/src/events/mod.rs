//! Live job status pushed to the browser: `GET /api/me/events`, one
//! Server-Sent Events stream per open tab, in place of polling.
//!
//! Where the events come from: the change feed (`queue::feed`), the same
//! one that keeps the 304 memory honest ([`crate::job_versions`]), so
//! there is one source of "this job changed". Its listener hands every
//! change to this instance's [`Hub`]; the hub's one delivery task reads
//! the changed records (one query per batch of changes, whoever owns them)
//! and sends each to its owner's streams on this instance ([`deliver`]).
//!
//! What makes the stream trustworthy, not just fast:
//!
//! - **Subscribe before read.** A stream is registered with the hub before
//!   its replay is read ([`stream`]), so a change committed in between is
//!   delivered live rather than missed; the same change read twice is sent
//!   once, and a job's event is never followed by an older one of the same
//!   job (each event carries its record's version, `updated_at`).
//! - **Resumable.** Every event's `id:` is the stream's cursor: the latest
//!   record version it has sent. A reconnect's `Last-Event-ID` replays the
//!   records changed since (from Postgres, which holds the truth), or sends
//!   one `reset` when the gap is older than [`REPLAY_WINDOW`] or holds more
//!   than [`REPLAY_MAX`] changes: then the client refetches.
//! - **Nothing unheard is trusted.** Streams open only while the feed's
//!   listener is live, and all end (with a `retry:` hint) the moment it is
//!   not, so their clients resume from their cursor once it is back.
//! - **Bounded.** A per-user cap (429) and a per-instance cap (503); a
//!   stream that does not take its events (its queue full) is ended and
//!   resumes with a replay; an idle stream is a registration and a channel.
//! - **Credentials rule.** A sign-out on this instance ends its streams at
//!   once; every [`SWEEP_EVERY`] the hub asks Postgres, in one query, which
//!   of its streams' tokens still exist, and ends the rest (a sign-out
//!   elsewhere, a password change, a deleted account).
//! - **SIGTERM** ends every stream at once with a `retry:` hint: clients
//!   reconnect to another instance, and the drain does not wait on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use platform::config::EventSettings;
use queue::feed::Change;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use platform::server::LogOnce;

use crate::token_cache::TokenHash;

pub mod deliver;
pub mod stream;

/// How far back a `Last-Event-ID` may reach and still be replayed.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(3600);
/// The most changed records a replay sends; a longer gap is a `reset`.
pub const REPLAY_MAX: i64 = 200;
/// How often the hub checks that its streams' tokens still exist: a
/// revoked token's streams end within this (and one query) of revocation.
pub const SWEEP_EVERY: Duration = Duration::from_secs(4);
/// How often an idle stream gets a comment, so no proxy or load balancer
/// between us and the browser closes it for silence.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// Events queued for one stream at most: a client this far behind is
/// ended and resumes with a replay.
const STREAM_QUEUE: usize = 64;
/// Changes queued for the delivery task at most; past it every stream is
/// ended (and resumes with a replay) rather than silently missing one.
const CHANGE_QUEUE: usize = 65_536;

/// What a stream is sent.
#[derive(Clone, Debug)]
pub enum Event {
    /// A job of the stream's user changed: `data` is its status as
    /// `GET /api/jobs/{id}` answers it.
    Job(Arc<JobEvent>),
    /// The user's profile changed: `GET /api/me`'s body, serialised once
    /// for all the user's streams.
    Account(Arc<str>),
    /// A comment, to keep the connection from looking idle.
    Heartbeat,
    /// The stream is over: with `Some(ms)`, the client should reconnect
    /// after that long (to another instance, or once the feed is back).
    End(Option<u32>),
}

/// A job's change as its owner's streams are sent it (behind an `Arc`, so
/// an idle stream's queue of [`Event`]s stays small).
#[derive(Debug)]
pub struct JobEvent {
    /// The job.
    pub id: Uuid,
    /// Its record's version (`updated_at`, microseconds).
    pub version: i64,
    /// Its status as JSON, serialised once for all the user's streams.
    pub data: String,
}

/// This instance's open streams, by user.
pub struct Hub {
    settings: EventSettings,
    streams: Mutex<Streams>,
    changes: mpsc::Sender<Change>,
    /// The delivery task's end of [`Self::changes`], taken when it starts.
    pending: Mutex<Option<mpsc::Receiver<Change>>>,
    /// Wakes the token check at once (sessions were ended here).
    check_tokens: Notify,
}

#[derive(Default)]
struct Streams {
    /// The streams events are sent to, by user.
    by_user: HashMap<Uuid, Vec<Handle>>,
    /// Streams per user until their connection closes, whether or not the
    /// hub still sends them anything: what the per-user cap counts.
    per_user: HashMap<Uuid, usize>,
    open: usize,
    next_id: u64,
    /// Set on SIGTERM: no stream opens any more.
    closing: bool,
}

struct Handle {
    id: u64,
    token: TokenHash,
    events: mpsc::Sender<Event>,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user holds their limit of streams on this instance (429).
    PerUser(usize),
    /// This instance holds all the streams it may, or is stopping, or
    /// streams are off (503: poll, or retry elsewhere).
    Full,
}

/// A stream's place in the hub: its events arrive on `events`, and it
/// leaves the hub when this is dropped.
pub struct Registration {
    hub: Arc<Hub>,
    user: Uuid,
    id: u64,
    /// What the hub sends this stream.
    pub events: mpsc::Receiver<Event>,
}

impl Hub {
    /// An empty hub; [`deliver::run`] must run for events to flow.
    pub fn new(settings: EventSettings) -> Self {
        let (changes, pending) = mpsc::channel(CHANGE_QUEUE);
        metrics::gauge!("events_streams_open").set(0.0);
        Self {
            settings,
            streams: Mutex::new(Streams::default()),
            changes,
            pending: Mutex::new(Some(pending)),
            check_tokens: Notify::new(),
        }
    }

    /// Registers a stream of `user`, signed in with `token`.
    pub fn open(self: &Arc<Self>, user: Uuid, token: TokenHash) -> Result<Registration, Refused> {
        let mut streams = self.lock();
        if streams.closing || streams.open >= self.settings.max_streams {
            return Err(Refused::Full);
        }
        let held = streams.per_user.get(&user).copied().unwrap_or(0);
        if held >= self.settings.per_user {
            return Err(Refused::PerUser(self.settings.per_user));
        }
        let (events, receiver) = mpsc::channel(STREAM_QUEUE);
        streams.next_id += 1;
        let id = streams.next_id;
        streams
            .by_user
            .entry(user)
            .or_default()
            .push(Handle { id, token, events });
        streams.per_user.insert(user, held + 1);
        streams.open += 1;
        metrics::gauge!("events_streams_open").set(streams.open as f64);
        Ok(Registration {
            hub: self.clone(),
            user,
            id,
            events: receiver,
        })
    }

    /// Queues changes heard on the feed for delivery; never waits. With
    /// no stream open they are not even queued.
    pub fn changed_all(&self, changes: &[Change]) {
        if self.lock().open == 0 {
            return;
        }
        for change in changes {
            if self.changes.try_send(*change).is_err() {
                // The delivery task is this far behind: a change would be
                // lost, so every stream resumes from its cursor instead.
                static BEHIND: LogOnce = LogOnce::new();
                if BEHIND.due() {
                    tracing::warn!(
                        "live stream deliveries fell behind; ending every stream to resume"
                    );
                }
                self.end_all(Some(1_000));
                return;
            }
        }
    }

    /// The feed stopped being heard: every stream ends, and resumes from
    /// its cursor once it is back.
    pub fn feed_lost(&self) {
        self.end_all(Some(2_000));
    }

    /// The api is stopping: every stream ends now, told to come back soon
    /// (to another instance), and none opens any more.
    pub fn close(&self) {
        // Under the lock that `open` holds: no stream registers in between.
        self.lock().closing = true;
        self.end_all(Some(500));
    }

    /// Sessions of a user were ended here (a password changed, an account
    /// deleted): their streams are checked now, not at the next sweep.
    pub fn check_tokens_now(&self) {
        self.check_tokens.notify_one();
    }

    /// `token` was revoked here: its streams end now.
    pub fn revoke(&self, token: &TokenHash) {
        self.end_where(|handle| handle.token == *token, None);
    }

    /// Every session of `user` was ended here: their streams end now.
    pub fn end_user(&self, user: Uuid) {
        if let Some(mine) = self.lock().by_user.remove(&user) {
            for handle in mine {
                let _ = handle.events.try_send(Event::End(None));
            }
        }
    }

    /// Sends `event` to each stream of `user`; a stream whose queue is full
    /// is ended (it resumes with a replay).
    fn send_to(&self, user: Uuid, event: &Event) -> usize {
        let mut streams = self.lock();
        let Some(mine) = streams.by_user.get_mut(&user) else {
            return 0;
        };
        let before = mine.len();
        mine.retain(|handle| handle.events.try_send(event.clone()).is_ok());
        let sent = mine.len();
        if sent < before {
            // Dropping its sender ends a stream once it has read its queue.
            metrics::counter!("events_streams_lagged_total").increment((before - sent) as u64);
            streams.forget_empty(user);
        }
        sent
    }

    /// Every user with a stream here.
    fn users(&self) -> Vec<Uuid> {
        self.lock().by_user.keys().copied().collect()
    }

    /// Users with a stream here, among `users`.
    fn listening(&self, users: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
        let streams = self.lock();
        users
            .into_iter()
            .filter(|user| streams.by_user.contains_key(user))
            .collect()
    }

    /// Sends a heartbeat to every stream.
    fn heartbeat(&self) {
        let mut streams = self.lock();
        for mine in streams.by_user.values_mut() {
            // A full queue is busy, not idle: no heartbeat needed.
            for handle in mine.iter() {
                let _ = handle.events.try_send(Event::Heartbeat);
            }
        }
    }

    /// The distinct tokens of the open streams.
    fn tokens(&self) -> Vec<TokenHash> {
        let streams = self.lock();
        let mut tokens: Vec<TokenHash> = streams
            .by_user
            .values()
            .flatten()
            .map(|handle| handle.token)
            .collect();
        tokens.sort_unstable();
        tokens.dedup();
        tokens
    }

    fn end_all(&self, retry_ms: Option<u32>) {
        self.end_where(|_| true, retry_ms);
    }

    /// Ends every stream `which` picks: told `End`, then dropped (its
    /// sender with it, so it ends even when its queue was full).
    fn end_where(&self, which: impl Fn(&Handle) -> bool, retry_ms: Option<u32>) {
        let mut streams = self.lock();
        for mine in streams.by_user.values_mut() {
            mine.retain(|handle| {
                if which(handle) {
                    let _ = handle.events.try_send(Event::End(retry_ms));
                    false
                } else {
                    true
                }
            });
        }
        streams.by_user.retain(|_, mine| !mine.is_empty());
    }

    fn lock(&self) -> MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Streams {
    fn forget_empty(&mut self, user: Uuid) {
        if self.by_user.get(&user).is_some_and(Vec::is_empty) {
            self.by_user.remove(&user);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut streams = self.hub.lock();
        if let Some(mine) = streams.by_user.get_mut(&self.user) {
            mine.retain(|handle| handle.id != self.id);
        }
        streams.forget_empty(self.user);
        if let Some(held) = streams.per_user.get_mut(&self.user) {
            *held -= 1;
            if *held == 0 {
                streams.per_user.remove(&self.user);
            }
        }
        streams.open -= 1;
        metrics::gauge!("events_streams_open").set(streams.open as f64);
    }
}

#[cfg(test)]
mod tests;
