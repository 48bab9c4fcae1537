//! The `ETag`s of job statuses and job lists this instance answered,
//! forgotten the moment one of their jobs changes, so a poll for an
//! unchanged job (`GET /api/jobs/{id}`) or an unchanged page of one's jobs
//! (`GET /api/me/jobs`) is a 304 without a database round trip.
//!
//! Why it is safe: whoever writes a job record publishes the change on the
//! feed right after its commit (`queue::feed`: the worker for every
//! attempt's transition, the api's unit of work for new records and its
//! relay, an operator's retry), and every api instance listens
//! ([`follow`]) and drops what it remembered of that job (of that user's
//! lists, for new jobs). What could make an entry outlive its job's change
//! is handled, not hoped away:
//!
//! - **A change whose publish never came**: a writer killed between its
//!   commit and its publish, a Redis that refused the publish, an
//!   operator's SQL, an account's jobs deleted with it. No entry is
//!   trusted longer than `POLL_MEMORY_MAX_AGE_SECS` (5 s): an older one is
//!   asked of the database again. This is the worst-case staleness of such
//!   a change.
//! - **A lost connection.** Redis keeps nothing for a subscriber that was
//!   away, so while the listener is not subscribed nothing is answered from
//!   here, and each new subscription starts from an empty map.
//! - **A connection that hears nothing.** One to a Redis host that died
//!   (a failover) may wait for ever without an error. The listener
//!   publishes a probe on every channel of the feed every 2 s and trusts
//!   nothing until all came back; one 2 s late drops the subscription. A
//!   change stays unseen for at most about 4 s in this case.
//! - **A change during the query.** A poll reads the job, then remembers
//!   its tag; if the job changed in between, its change may have been
//!   handled before the tag was remembered. Each remembered tag carries the
//!   change count seen before its query ([`Seen`]); the latest [`RECENT`]
//!   changes are kept, and a tag is refused if one of its jobs (or, for a
//!   list, its user's new jobs) is among those that came after, or if that
//!   window no longer reaches back far enough to tell.
//!
//! An entry also records the job's owner, so it answers only them: anyone
//! else still gets the database's answer (404).

use axum::http::{HeaderMap, HeaderValue};
use queue::feed::Change;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::conditional;

mod listener;

pub use listener::follow;

/// Changes of the latest feed messages kept to check tags against: far
/// more than change while one status query runs at any realistic rate.
const RECENT: usize = 4096;
/// The most tags remembered (about 100 bytes each, a list's more): past
/// it the map starts over, costing each poller one query.
const CAPACITY: usize = 50_000;

/// Pages of one user's job list remembered at most: a web app polls one
/// or two, and no client can make a user's pages costly to search.
const PAGES_PER_USER: usize = 8;

/// What a strong `ETag` of [`conditional`] looks like: 32 hex digits in quotes.
type Tag = [u8; 34];

/// The tags, their owners, and what the listener has seen.
pub struct JobVersions {
    inner: Mutex<Inner>,
    /// How long a remembered tag is trusted without a change heard: the
    /// bound on how late a change whose publish never came is seen.
    max_age: Duration,
}

struct Inner {
    /// The listener is subscribed and its probes come back: entries may be
    /// trusted.
    live: bool,
    /// Changes handled since start (and bumped at every reset).
    seq: u64,
    /// A tag read before this count cannot be checked: refused.
    floor: u64,
    /// The latest changes, oldest first, with their count.
    recent: VecDeque<(u64, Change)>,
    entries: HashMap<Uuid, Entry>,
    /// Pages of each user's job list, by user.
    lists: HashMap<Uuid, Vec<Page>>,
    /// The owner of each job some remembered page holds.
    listed: HashMap<Uuid, Uuid>,
}

struct Entry {
    owner: Uuid,
    tag: Tag,
    at: Instant,
}

/// A remembered page of `GET /api/me/jobs`.
struct Page {
    /// `?cursor=` and `?limit=` as the request gave them.
    query: (Option<Uuid>, u32),
    tag: Tag,
    at: Instant,
}

/// The change count before a status query, or `None` while the
/// listener is not connected (nothing read then is remembered).
#[derive(Clone, Copy, Debug)]
pub struct Seen(Option<u64>);

impl JobVersions {
    /// An empty map that trusts nothing until [`follow`] is listening,
    /// nor any tag longer than `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            inner: Mutex::new(Inner {
                live: false,
                seq: 0,
                floor: 0,
                recent: VecDeque::with_capacity(RECENT),
                entries: HashMap::new(),
                lists: HashMap::new(),
                listed: HashMap::new(),
            }),
        }
    }

    /// The tag to answer 304 with, if `owner`'s request names the tag this
    /// instance last answered for `job` and the job has not changed since.
    pub fn unchanged(&self, job: Uuid, owner: Uuid, request: &HeaderMap) -> Option<HeaderValue> {
        let tag = {
            let inner = self.lock();
            let entry = inner.entries.get(&job).filter(|_| inner.live)?;
            (entry.owner == owner && entry.at.elapsed() < self.max_age).then_some(entry.tag)?
        };
        conditional::names(request, &tag)
            .then(|| HeaderValue::from_bytes(&tag).expect("a tag we made is a valid header value"))
    }

    /// The tag to answer 304 with, if `owner`'s request for the page of
    /// their jobs at `query` names the tag this instance last answered for
    /// it and none of its jobs changed nor new ones came since.
    pub fn unchanged_list(
        &self,
        owner: Uuid,
        query: (Option<Uuid>, u32),
        request: &HeaderMap,
    ) -> Option<HeaderValue> {
        let tag = {
            let inner = self.lock();
            let pages = inner.lists.get(&owner).filter(|_| inner.live)?;
            let page = pages.iter().find(|page| page.query == query)?;
            (page.at.elapsed() < self.max_age).then_some(page.tag)?
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
        if !inner.trusts(seen, |change| change == Change::Job(job)) {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            inner.entries.clear();
        }
        let at = Instant::now();
        inner.entries.insert(job, Entry { owner, tag, at });
    }

    /// Remembers `tag` as `owner`'s answer for the page of their jobs at
    /// `query`, which holds `jobs` (those it shows, and the one past its
    /// end that tells whether there is a next page), read
    /// after `seen`, unless one of them changed or `owner` got new jobs
    /// since.
    pub fn remember_list(
        &self,
        owner: Uuid,
        query: (Option<Uuid>, u32),
        jobs: &[Uuid],
        tag: &HeaderValue,
        seen: Seen,
    ) {
        let (Some(seen), Ok(tag)) = (seen.0, Tag::try_from(tag.as_bytes())) else {
            return;
        };
        let mut inner = self.lock();
        let touched = |change: Change| match change {
            Change::NewJobsOf(user) => user == owner,
            Change::Job(job) => jobs.contains(&job),
            Change::Account(_) | Change::Probe(..) => false,
        };
        if !inner.trusts(seen, touched) {
            return;
        }
        if inner.listed.len() >= CAPACITY || inner.lists.len() >= CAPACITY {
            inner.lists.clear();
            inner.listed.clear();
        }
        for job in jobs {
            inner.listed.insert(*job, owner);
        }
        let at = Instant::now();
        let pages = inner.lists.entry(owner).or_default();
        pages.retain(|page| page.query != query);
        if pages.len() == PAGES_PER_USER {
            // A client paging through made-up cursors keeps only a few.
            pages.remove(0);
        }
        pages.push(Page { query, tag, at });
    }

    /// Whether the listener is known to hear changes.
    pub fn is_live(&self) -> bool {
        self.lock().live
    }

    /// Each of `changes` happened: what is remembered of them is stale on
    /// every instance.
    pub fn changed_all(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for change in changes {
            inner.seq += 1;
            let seq = inner.seq;
            match *change {
                Change::Job(job) => {
                    inner.entries.remove(&job);
                    if let Some(owner) = inner.listed.remove(&job) {
                        inner.lists.remove(&owner);
                    }
                }
                Change::NewJobsOf(owner) => {
                    inner.lists.remove(&owner);
                }
                Change::Account(_) | Change::Probe(..) => continue,
            }
            if inner.recent.len() == RECENT
                && let Some((oldest, _)) = inner.recent.pop_front()
            {
                // Tags read before it can no longer be checked against it.
                inner.floor = oldest;
            }
            inner.recent.push_back((seq, *change));
        }
    }

    /// The listener subscribed (`live`) or lost its subscription: whatever
    /// changed meanwhile was not told, so everything is forgotten.
    pub fn reset(&self, live: bool) {
        metrics::gauge!("jobs_feed_live").set(if live { 1.0 } else { 0.0 });
        let mut inner = self.lock();
        inner.live = live;
        inner.seq += 1;
        inner.floor = inner.seq;
        inner.recent.clear();
        inner.entries.clear();
        inner.lists.clear();
        inner.listed.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every operation leaves the map consistent: poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// Whether an answer read when the count was `seen` may be remembered:
    /// the listener hears, the window reaches back that far, and no change
    /// since `touched` it.
    fn trusts(&self, seen: u64, touched: impl Fn(Change) -> bool) -> bool {
        let changed_since = self
            .recent
            .iter()
            .rev()
            .take_while(|(seq, _)| *seq > seen)
            .any(|(_, change)| touched(*change));
        self.live && seen >= self.floor && !changed_since
    }
}

#[cfg(test)]
mod tests;
