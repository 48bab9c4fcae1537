//! The `ETag`s of job statuses this instance answered, forgotten the moment
//! their job changes, so a poll for an unchanged job is a 304 without a
//! database round trip.
//!
//! Why it is safe: a trigger on `jobs` (migration `…17_jobs_changed`) sends
//! `NOTIFY jobs_changed, '<job id>'` for every update and delete, whoever
//! writes (the worker, the relay, an account deletion, an operator's SQL),
//! and one per statement (`…21`) sends `'all'` for a `TRUNCATE`, which
//! fires no row trigger. Both are enabled `ALWAYS`, so a session in replica
//! mode (`session_replication_role = replica`) notifies too. Every api
//! instance listens ([`follow`]) and drops the job's entry (all of them
//! for `all`) when the notification arrives, which Postgres delivers right
//! after the change commits. What could make an entry outlive its job's
//! change is handled, not hoped away:
//!
//! - **A lost notification.** Postgres keeps nothing for a listener whose
//!   connection dropped, so while the listener is not connected nothing is
//!   answered from here, and each (re)connection starts from an empty map.
//! - **A connection that hears nothing.** One to a Postgres host that died
//!   (a failover) may wait for ever without an error, and a proxy pooling
//!   transactions accepts `LISTEN` and delivers nothing. The listener sends
//!   itself a probe every 5 s and trusts nothing until the first comes back;
//!   one that is 5 s late drops the connection. A change stays unseen for at
//!   most about 10 s in the worst of these cases, at once otherwise.
//! - **A trigger turned off.** Operators may disable `jobs_changed` (every
//!   commit that notifies is serialized by Postgres: `docs/benchmarks.md`).
//!   The probe is sent only while both triggers are enabled `ALWAYS`, so
//!   within 5 s of either being turned off (or back on with a plain
//!   `enable`, which leaves out replica mode) every instance forgets what
//!   it knew and polls ask the database again.
//! - **A change during the query.** A poll reads the job, then remembers
//!   its tag; if the job changed in between, its notification may have been
//!   handled before the tag was remembered. Each remembered tag carries the
//!   notification count seen before its query ([`Seen`]); the job ids of
//!   the latest [`RECENT`] notifications are kept, and a tag is refused if
//!   its job is among those that came after, or if that window no longer
//!   reaches back far enough to tell.
//!
//! An entry also records the job's owner, so it answers only them: anyone
//! else still gets the database's answer (404).

use axum::http::{HeaderMap, HeaderValue};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use uuid::Uuid;

use crate::conditional;

mod listener;

pub use listener::follow;

/// The channel the `jobs` trigger notifies, with the job id as payload.
const CHANNEL: &str = "jobs_changed";
/// Job ids of the latest notifications kept to check tags against: far
/// more than change while one status query runs at any realistic rate.
const RECENT: usize = 4096;
/// The most tags remembered (about 100 bytes each): past it the map starts
/// over, costing each poller one query.
const CAPACITY: usize = 50_000;

/// What a strong `ETag` of [`conditional`] looks like: 32 hex digits in quotes.
type Tag = [u8; 34];

/// The tags, their owners, and what the listener has seen.
pub struct JobVersions {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The listener is connected and listening: entries may be trusted.
    live: bool,
    /// Notifications handled since start (and bumped at every reset).
    seq: u64,
    /// A tag read before this count cannot be checked: refused.
    floor: u64,
    /// Job ids of the latest notifications, oldest first, with their count.
    recent: VecDeque<(u64, Uuid)>,
    entries: HashMap<Uuid, Entry>,
}

struct Entry {
    owner: Uuid,
    tag: Tag,
}

/// The notification count before a status query, or `None` while the
/// listener is not connected (nothing read then is remembered).
#[derive(Clone, Copy, Debug)]
pub struct Seen(Option<u64>);

impl Default for JobVersions {
    fn default() -> Self {
        Self::new()
    }
}

impl JobVersions {
    /// An empty map that trusts nothing until [`follow`] is listening.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                live: false,
                seq: 0,
                floor: 0,
                recent: VecDeque::with_capacity(RECENT),
                entries: HashMap::new(),
            }),
        }
    }

    /// The tag to answer 304 with, if `owner`'s request names the tag this
    /// instance last answered for `job` and the job has not changed since.
    pub fn unchanged(&self, job: Uuid, owner: Uuid, request: &HeaderMap) -> Option<HeaderValue> {
        let tag = {
            let inner = self.lock();
            let entry = inner.entries.get(&job).filter(|_| inner.live)?;
            (entry.owner == owner).then_some(entry.tag)?
        };
        conditional::names(request, &tag)
            .then(|| HeaderValue::from_bytes(&tag).expect("a tag we made is a valid header value"))
    }

    /// Taken before reading a job, to [`remember`](Self::remember) its tag after.
    pub fn seen(&self) -> Seen {
        let inner = self.lock();
        Seen(inner.live.then_some(inner.seq))
    }

    /// Remembers `tag` as `owner`'s answer for `job`, read after `seen`,
    /// unless the job may have changed since.
    pub fn remember(&self, job: Uuid, owner: Uuid, tag: &HeaderValue, seen: Seen) {
        let (Some(seen), Ok(tag)) = (seen.0, Tag::try_from(tag.as_bytes())) else {
            return;
        };
        let mut inner = self.lock();
        let changed_since = inner
            .recent
            .iter()
            .rev()
            .take_while(|(seq, _)| *seq > seen)
            .any(|(_, id)| *id == job);
        if !inner.live || seen < inner.floor || changed_since {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            inner.entries.clear();
        }
        inner.entries.insert(job, Entry { owner, tag });
    }

    /// Whether the listener is known to hear changes.
    pub fn is_live(&self) -> bool {
        self.lock().live
    }

    /// Each of `jobs` changed: their tags are stale on every instance.
    pub fn changed_all(&self, jobs: &[Uuid]) {
        if jobs.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for job in jobs {
            inner.seq += 1;
            let seq = inner.seq;
            inner.entries.remove(job);
            if inner.recent.len() == RECENT
                && let Some((oldest, _)) = inner.recent.pop_front()
            {
                // Tags read before it can no longer be checked against it.
                inner.floor = oldest;
            }
            inner.recent.push_back((seq, *job));
        }
    }

    /// The listener (re)connected (`live`) or lost its connection: whatever
    /// changed meanwhile was not told, so everything is forgotten.
    pub fn reset(&self, live: bool) {
        let mut inner = self.lock();
        inner.live = live;
        inner.seq += 1;
        inner.floor = inner.seq;
        inner.recent.clear();
        inner.entries.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every operation leaves the map consistent: poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::IF_NONE_MATCH;

    const TAG: &str = "\"0123456789abcdef0123456789abcdef\"";

    fn polled_with(tag: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, tag.parse().expect("header"));
        headers
    }

    fn live() -> JobVersions {
        let versions = JobVersions::new();
        versions.reset(true);
        versions
    }

    #[test]
    fn a_remembered_tag_answers_its_owner_until_the_job_changes() {
        let versions = live();
        let (job, owner) = (Uuid::now_v7(), Uuid::now_v7());
        let seen = versions.seen();
        versions.remember(job, owner, &HeaderValue::from_static(TAG), seen);

        assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_some());
        assert!(
            versions
                .unchanged(job, Uuid::now_v7(), &polled_with(TAG))
                .is_none(),
            "nobody else"
        );
        assert!(
            versions
                .unchanged(job, owner, &polled_with("\"other\""))
                .is_none()
        );
        versions.changed_all(&[job]);
        assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
    }

    #[test]
    fn a_tag_read_before_a_change_of_its_job_is_not_remembered() {
        let versions = live();
        let (job, owner) = (Uuid::now_v7(), Uuid::now_v7());
        let seen = versions.seen();
        versions.changed_all(&[Uuid::now_v7()]);
        versions.changed_all(&[job]);
        versions.changed_all(&[Uuid::now_v7()]);
        versions.remember(job, owner, &HeaderValue::from_static(TAG), seen);
        assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
    }

    #[test]
    fn a_tag_older_than_the_recent_changes_reach_is_not_remembered() {
        let versions = live();
        let (job, owner) = (Uuid::now_v7(), Uuid::now_v7());
        let seen = versions.seen();
        for _ in 0..=RECENT {
            versions.changed_all(&[Uuid::now_v7()]);
        }
        versions.remember(job, owner, &HeaderValue::from_static(TAG), seen);
        assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
    }

    #[test]
    fn nothing_is_trusted_or_kept_across_a_lost_connection() {
        let versions = live();
        let (job, owner) = (Uuid::now_v7(), Uuid::now_v7());
        versions.remember(job, owner, &HeaderValue::from_static(TAG), versions.seen());
        let before_the_loss = versions.seen();

        versions.reset(false);
        assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
        versions.remember(job, owner, &HeaderValue::from_static(TAG), versions.seen());
        versions.reset(true);
        assert!(versions.unchanged(job, owner, &polled_with(TAG)).is_none());
        versions.remember(job, owner, &HeaderValue::from_static(TAG), before_the_loss);
        assert!(
            versions.unchanged(job, owner, &polled_with(TAG)).is_none(),
            "read before the loss, when a change may have gone untold"
        );
    }
}
