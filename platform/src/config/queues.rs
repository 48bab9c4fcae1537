//! How each queue is retried, kept and consumed: `QUEUE_<NAME>_<FIELD>`,
//! over the defaults of the job catalogue.

use std::time::Duration;

use super::variables::{Env, Group, Millis, Parsed, SECOND, Secs, Variable, Vars, variables};
use catalogue::{Batch, QueueName, QueueSettings, QueueTable, RateLimit};

/// The shortest of the `…_MS` durations: zero would mean "never" to BullMQ.
const MILLISECOND: Duration = Duration::from_millis(1);

impl Group for QueueTable {
    fn read(env: &mut Env<'_>) -> Self {
        let mut table = QueueTable::default();
        for &queue in QueueName::ALL {
            *table.get_mut(queue) = QueueVariables::of(queue).read(env);
        }
        table
    }

    fn write(&self, vars: &mut Vars) {
        for &queue in QueueName::ALL {
            QueueVariables::of(queue).write(&self.get(queue), vars);
        }
    }
}

/// One queue's variables: its name's prefix and its defaults.
struct QueueVariables {
    prefix: String,
    defaults: QueueSettings,
}

impl QueueVariables {
    fn of(queue: QueueName) -> Self {
        Self {
            prefix: queue.env_prefix(),
            defaults: queue.default_settings(),
        }
    }

    fn key(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }
}

variables! {
    |queue: QueueVariables| QueueSettings {
        concurrency: Parsed(&queue.key("CONCURRENCY"), queue.defaults.concurrency).at_least(1),
        attempts: Parsed(&queue.key("ATTEMPTS"), queue.defaults.attempts).at_least(1),
        backoff: Millis(&queue.key("BACKOFF_MS"), queue.defaults.backoff).at_least(MILLISECOND),
        rate_limit: Rate::of(queue),
        keep_completed: Secs(&queue.key("KEEP_COMPLETED_SECS"), queue.defaults.keep_completed.as_secs()),
        keep_completed_count: Parsed(&queue.key("KEEP_COMPLETED_COUNT"), queue.defaults.keep_completed_count),
        keep_failed: Secs(&queue.key("KEEP_FAILED_SECS"), queue.defaults.keep_failed.as_secs()),
        lock_duration: Millis(&queue.key("LOCK_DURATION_MS"), queue.defaults.lock_duration).at_least(MILLISECOND),
        stalled_interval: Millis(&queue.key("STALLED_INTERVAL_MS"), queue.defaults.stalled_interval).at_least(MILLISECOND),
        timeout: Secs(&queue.key("TIMEOUT_SECS"), queue.defaults.timeout.as_secs()).at_least(SECOND),
        batch: Batching::of(queue),
    }
}

/// A rate limit, from two variables: at most `RATE_MAX` jobs per
/// `RATE_PER_MS`; `RATE_MAX=0` turns a default limit off.
struct Rate {
    max: String,
    per: String,
    default: Option<RateLimit>,
}

impl Rate {
    fn of(queue: &QueueVariables) -> Self {
        Self {
            max: queue.key("RATE_MAX"),
            per: queue.key("RATE_PER_MS"),
            default: queue.defaults.rate_limit,
        }
    }
}

impl Variable<Option<RateLimit>> for Rate {
    fn read(&self, env: &mut Env<'_>) -> Option<RateLimit> {
        let max = Parsed(&self.max, self.default.map_or(0, |limit| limit.max)).read(env);
        let per = Millis(&self.per, self.default.map_or(SECOND, |limit| limit.per))
            .at_least(MILLISECOND)
            .read(env);
        (max > 0).then_some(RateLimit { max, per })
    }

    fn write(&self, value: &Option<RateLimit>, vars: &mut Vars) {
        Parsed(&self.max, 0).write(&value.map_or(0, |limit| limit.max), vars);
        Millis(&self.per, SECOND).write(&value.map_or(SECOND, |limit| limit.per), vars);
    }
}

/// A batched queue, from two variables: runs of at most `BATCH_MAX` jobs,
/// one per `BATCH_EVERY_MS` across all workers; `BATCH_MAX=0` runs each job
/// on its own.
struct Batching {
    max: String,
    every: String,
    default: Option<Batch>,
}

impl Batching {
    fn of(queue: &QueueVariables) -> Self {
        Self {
            max: queue.key("BATCH_MAX"),
            every: queue.key("BATCH_EVERY_MS"),
            default: queue.defaults.batch,
        }
    }
}

impl Variable<Option<Batch>> for Batching {
    fn read(&self, env: &mut Env<'_>) -> Option<Batch> {
        let max = Parsed(&self.max, self.default.map_or(0, |batch| batch.max)).read(env);
        let every = Millis(
            &self.every,
            self.default.map_or(SECOND, |batch| batch.every),
        )
        .at_least(MILLISECOND)
        .read(env);
        (max > 0).then_some(Batch { max, every })
    }

    fn write(&self, value: &Option<Batch>, vars: &mut Vars) {
        Parsed(&self.max, 0).write(&value.map_or(0, |batch| batch.max), vars);
        Millis(&self.every, SECOND).write(&value.map_or(SECOND, |batch| batch.every), vars);
    }
}
