//! The counts of one limit in Redis, shared by every api instance: 16 hashes
//! (shards, each its own hash slot, so a Redis Cluster spreads them), each
//! holding at most `capacity / 16` clients of the current window and
//! expiring with it. At about 40 bytes a client, 100,000 clients are a few
//! megabytes of Redis, whatever the number of clients sending.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use platform::server::LogOnce;
use queue::JobQueues;

use super::ClientKey;

const SHARDS: usize = 16;
/// The longest a request waits for its count before this instance counts
/// by itself: Redis answers in well under a millisecond when it is well.
const BOUND: Duration = Duration::from_millis(250);
/// How long Redis is left alone after it failed to answer, so that while it
/// is down requests are not each delayed by the [`BOUND`].
const PAUSE: Duration = Duration::from_secs(5);

/// Counts and checks atomically, in one round trip (see the script).
static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("count.lua")));

/// One limit's counts in Redis.
pub(super) struct SharedCounts {
    name: &'static str,
    queues: Arc<JobQueues>,
    /// `<prefix>:limits:{<name>:<shard>}`: the braces make each shard its
    /// own hash slot on a cluster.
    keys: [String; SHARDS],
    shard_capacity: usize,
    /// Until when Redis is left alone after a failure.
    paused_until: Mutex<Option<Instant>>,
    /// Counting here since Redis failed (logged once each way).
    away: AtomicBool,
}

impl SharedCounts {
    pub(super) fn new(name: &'static str, capacity: usize, queues: Arc<JobQueues>) -> Self {
        let prefix = queues.prefix();
        Self {
            name,
            keys: std::array::from_fn(|shard| format!("{prefix}:limits:{{{name}:{shard}}}")),
            queues,
            shard_capacity: (capacity / SHARDS).max(1),
            paused_until: Mutex::new(None),
            away: AtomicBool::new(false),
        }
    }

    /// Counts `add` (0 or 1) for `client` in Redis: `None` when Redis did
    /// not answer, for the caller to count by itself.
    pub(super) async fn count(
        &self,
        client: ClientKey,
        add: u32,
        limit: u32,
        window: Duration,
    ) -> Option<Result<u32, Duration>> {
        if self.paused() {
            metrics::counter!("rate_limit_local_total", "limit" => self.name).increment(1);
            return None;
        }
        let shard = usize::try_from(client.spread() % SHARDS as u64).unwrap_or(0);
        let mut invocation = SCRIPT.key(&self.keys[shard]);
        invocation
            .arg(&client.to_bytes()[..])
            .arg(add)
            .arg(limit)
            .arg(self.shard_capacity)
            .arg(platform::millis(window).max(1));
        let answer = tokio::time::timeout(BOUND, async {
            let mut connection = self.queues.redis().await?.connection();
            Ok::<_, anyhow::Error>(invocation.invoke_async(&mut connection).await?)
        })
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {BOUND:?}")));
        match answer {
            Ok((verdict, count, left)) => {
                self.back();
                Some(self.verdict(verdict, count, left))
            }
            Err(error) => {
                self.pause(&error);
                metrics::counter!("rate_limit_local_total", "limit" => self.name).increment(1);
                None
            }
        }
    }

    fn verdict(&self, verdict: u8, count: u32, left_ms: u64) -> Result<u32, Duration> {
        match verdict {
            0 => Ok(count),
            1 => Err(Duration::from_millis(left_ms)),
            _ => {
                static FULL: LogOnce = LogOnce::new();
                if FULL.due() {
                    tracing::warn!(
                        limit = self.name,
                        capacity = self.shard_capacity * SHARDS,
                        "shared rate limit full: new clients pass uncounted until the window ends"
                    );
                }
                Ok(0)
            }
        }
    }

    fn paused(&self) -> bool {
        let mut until = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *until {
            Some(instant) if Instant::now() < instant => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn pause(&self, error: &anyhow::Error) {
        *self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + PAUSE);
        if !self.away.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit = self.name,
                error = format!("{error:#}"),
                "redis does not answer: this instance counts the limit by itself until it does"
            );
        }
    }

    fn back(&self) {
        if self.away.swap(false, Ordering::Relaxed) {
            tracing::info!(
                limit = self.name,
                "redis answers again: the limit is shared again"
            );
        }
    }
}
