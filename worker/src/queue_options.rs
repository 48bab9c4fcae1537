//! How this worker consumes a queue: BullMQ worker options from the
//! queue's settings, and the jittered backoff our jobs ask for.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use bullmq::{BackoffStrategyFn, RateLimiterOptions, WorkerOptions};
use catalogue::{QueueSettings, RateLimit};
use platform::config::RedisSettings;
use platform::millis;
use queue::{JITTERED_BACKOFF, connection_options};

/// Worker options for `queue`: our Redis and prefix, and the queue's settings.
pub fn worker_options(redis: &RedisSettings, queue: &QueueSettings) -> WorkerOptions {
    let options = WorkerOptions::new()
        .connection(connection_options(redis))
        .prefix(redis.queue_prefix.clone())
        // A batched queue's worker holds a batch's worth of jobs at once.
        .concurrency(queue.batch.map_or(queue.concurrency, |batch| batch.max))
        .lock_duration(queue.lock_duration)
        .stalled_interval(queue.stalled_interval)
        // An idle worker re-checks for shutdown this often, so SIGTERM on an
        // idle worker is answered within a second.
        .drain_delay(Duration::from_secs(1))
        .backoff_strategy(jittered_backoff(queue.backoff));
    // BullMQ honours a pause (`Queue::rate_limit`, which a provider's 429 or
    // a refused key triggers) only on a queue that has a limiter: without
    // one the job is handed straight back out, in a tight loop. A queue with
    // no limit of its own gets one that never binds.
    let limit = queue.rate_limit.unwrap_or(RateLimit {
        max: NEVER_BINDS,
        per: Duration::from_secs(1),
    });
    options.limiter(RateLimiterOptions::new(limit.max, limit.per))
}

/// The value BullMQ's `rateLimit` writes to pause a queue
/// (`Number.MAX_SAFE_INTEGER`): a limiter of this many jobs per window is
/// reached only by a pause.
const NEVER_BINDS: u64 = 9_007_199_254_740_991;

/// "Equal jitter": attempt n waits between half and all of `base * 2^(n-1)`,
/// capped at an hour, so retries never bunch up yet never come too soon.
fn jittered_backoff(base: Duration) -> BackoffStrategyFn {
    Arc::new(move |attempt, kind, _error, _data| {
        let delay = if kind == JITTERED_BACKOFF {
            let ceiling = base
                .saturating_mul(2_u32.saturating_pow(attempt.saturating_sub(1)))
                .min(Duration::from_secs(3600));
            let ceiling = millis(ceiling);
            let half = ceiling / 2;
            let random = RandomState::new().hash_one(attempt);
            i64::try_from(half + random % (ceiling - half + 1)).unwrap_or(i64::MAX)
        } else {
            // A backoff type we do not know (from another producer): retry now
            // rather than guess, as BullMQ does for unknown custom types.
            0
        };
        Box::pin(async move { delay })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue::JITTERED_BACKOFF;

    #[tokio::test]
    async fn jittered_backoff_doubles_and_stays_within_its_window() {
        let backoff = jittered_backoff(Duration::from_secs(2));
        let data = serde_json::Value::Null;
        for (attempt, ceiling) in [(1, 2_000), (2, 4_000), (3, 8_000)] {
            let delays: Vec<i64> = futures::future::join_all(
                (0..50).map(|_| backoff(attempt, JITTERED_BACKOFF, "", &data)),
            )
            .await;
            assert!(
                delays.iter().all(|&d| d >= ceiling / 2 && d <= ceiling),
                "{delays:?}"
            );
            let distinct: std::collections::HashSet<_> = delays.iter().collect();
            assert!(distinct.len() > 1, "no jitter: {delays:?}");
        }
    }
}
