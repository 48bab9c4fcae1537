//! The change feed: "this job's record changed", "this user has new jobs",
//! published in Redis by whoever wrote the record, right after its commit,
//! and heard by every api instance (its 304 memory, `api::job_versions`).
//!
//! Why Redis and not Postgres: a `NOTIFY` in a transaction makes Postgres
//! serialise that commit with every other notifying one (a lock held
//! through the commit's flush), which halved the job writes a second it
//! could take (`scripts/bench-job-updates`). A publish after the commit
//! costs the writer one Redis command, batched with the others of the
//! moment by the [`Publisher`], and Postgres nothing.
//!
//! What it gives up, and how the listener makes up for it: a change whose
//! publish never came (a writer killed between its commit and its
//! publish, a Redis that refused it, an operator's SQL) is not heard. So
//! nothing heard is trusted for long: the listener forgets every tag after
//! a bounded age, the worst-case staleness of such a change (see
//! `api::job_versions`). Pub/Sub keeps nothing for a subscriber that was
//! away, so a lost connection means forgetting everything, as before.
//!
//! On a Redis Cluster the feed is sharded: `SPUBLISH` to one of
//! [`CLUSTER_SHARDS`] channels chosen by the id, each its own hash slot,
//! so the shards share the messages and none is broadcast over the whole
//! cluster bus (a plain `PUBLISH` is). On one Redis, one channel.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use futures::StreamExt as _;
use platform::config::RedisSettings;
use redis::{ProtocolVersion, PushKind, Value};
use secrecy::ExposeSecret as _;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{JobQueues, QueueError};

/// Channels of the feed on a Redis Cluster: enough to spread over the
/// shards of any cluster we would run, few enough to probe each.
pub const CLUSTER_SHARDS: usize = 8;

/// One change, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// A job's record changed (or was deleted): its status is not what
    /// an instance may remember.
    Job(Uuid),
    /// A user has new jobs: their job list is not what an instance may
    /// remember (a new record changes no remembered status).
    NewJobsOf(Uuid),
    /// What a user's profile shows changed (avatar, address, plan) other
    /// than by a job of theirs completing: their live streams are told.
    Account(Uuid),
    /// A listener's probe, proving the feed reaches it: the listener's
    /// own id, the probe's number, and the shard it was published on.
    Probe(u64, u64, usize),
}

impl Change {
    /// The id that picks the change's shard.
    fn key(self) -> u64 {
        match self {
            Self::Job(id) | Self::NewJobsOf(id) | Self::Account(id) => id.as_u64_pair().1,
            Self::Probe(from, ..) => from,
        }
    }

    fn write(self, out: &mut String) {
        // `write!` to a String cannot fail.
        let _ = match self {
            Self::Job(id) => write!(out, "j:{} ", id.simple()),
            Self::NewJobsOf(id) => write!(out, "u:{} ", id.simple()),
            Self::Account(id) => write!(out, "a:{} ", id.simple()),
            Self::Probe(from, n, shard) => write!(out, "p:{from}:{n}:{shard} "),
        };
    }

    /// The changes in one message; `None` for a message that is not ours
    /// (then the listener cannot tell what changed).
    pub fn parse_all(message: &str) -> Option<Vec<Self>> {
        message
            .split_ascii_whitespace()
            .map(|item| {
                let (kind, rest) = item.split_once(':')?;
                match kind {
                    "j" => Uuid::try_parse(rest).ok().map(Self::Job),
                    "u" => Uuid::try_parse(rest).ok().map(Self::NewJobsOf),
                    "a" => Uuid::try_parse(rest).ok().map(Self::Account),
                    "p" => {
                        let mut parts = rest.splitn(3, ':');
                        let mut next = || parts.next();
                        Some(Self::Probe(
                            next()?.parse().ok()?,
                            next()?.parse().ok()?,
                            next()?.parse().ok()?,
                        ))
                    }
                    _ => None,
                }
            })
            .collect()
    }
}

/// The feed's channel names for these settings, in shard order.
pub fn channels(redis: &RedisSettings) -> Vec<String> {
    if redis.is_cluster() {
        (0..CLUSTER_SHARDS)
            .map(|shard| format!("{{{}:jobs-changed:{shard}}}", redis.queue_prefix))
            .collect()
    } else {
        vec![format!("{}:jobs-changed", redis.queue_prefix)]
    }
}

impl JobQueues {
    /// Publishes `changes` now: one message per shard they fall in. Fails
    /// when Redis does not take them within [`JobQueues::TIMEOUT`].
    pub async fn publish_changes(&self, changes: &[Change]) -> Result<(), QueueError> {
        let channels = channels(&self.redis);
        let command = if self.redis.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let mut messages: BTreeMap<usize, String> = BTreeMap::new();
        for change in changes {
            let shard = (change.key() % channels.len() as u64) as usize;
            change.write(messages.entry(shard).or_default());
        }
        self.bounded(async {
            let connection = self.connection().await?;
            for (shard, message) in messages {
                let mut publish = redis::cmd(command);
                publish.arg(&channels[shard]).arg(message.trim_end());
                connection.cmd::<Value>(&mut publish).await?;
            }
            Ok(())
        })
        .await
    }

    /// Publishes a probe on every channel of the feed.
    pub async fn publish_probe(&self, from: u64, n: u64) -> Result<(), QueueError> {
        let command = if self.redis.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        self.bounded(async {
            let connection = self.connection().await?;
            for (shard, channel) in channels(&self.redis).into_iter().enumerate() {
                let mut message = String::new();
                Change::Probe(from, n, shard).write(&mut message);
                let mut publish = redis::cmd(command);
                publish.arg(channel).arg(message.trim_end());
                connection.cmd::<Value>(&mut publish).await?;
            }
            Ok(())
        })
        .await
    }
}

/// Changes queued by a process's writers, published in the background:
/// a writer never waits for Redis, and the changes of one moment go out
/// as one message per shard. Cloned freely; all clones feed one task.
#[derive(Clone)]
pub struct Publisher {
    queue: mpsc::Sender<Change>,
}

/// Changes held for publishing at most: a Redis that does not answer
/// makes the rest be dropped (they are then only as late as the
/// listeners' bound on what they remember).
const PUBLISHER_QUEUE: usize = 65_536;
/// Changes published in one round at most.
const PUBLISHER_BATCH: usize = 1_024;
/// How long a round waits for more changes before publishing.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

impl Publisher {
    /// Starts the publishing task on the current runtime; it ends when
    /// every clone is dropped, after publishing what was queued.
    pub fn spawn(queues: Arc<JobQueues>) -> Self {
        // Exported at zero from the start: an alert's `increase` cannot see
        // a counter's first drops if its series begins with them.
        metrics::counter!("jobs_feed_dropped_total").increment(0);
        let (queue, mut changes) = mpsc::channel(PUBLISHER_QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(PUBLISHER_BATCH);
            while changes.recv_many(&mut batch, PUBLISHER_BATCH).await > 0 {
                // The changes of the next moments join this message: one
                // publish for many changes costs Redis and every listener
                // far less than one each, for 2 ms more of delay.
                tokio::time::sleep(LINGER).await;
                while batch.len() < PUBLISHER_BATCH
                    && let Ok(change) = changes.try_recv()
                {
                    batch.push(change);
                }
                if let Err(error) = queues.publish_changes(&batch).await {
                    metrics::counter!("jobs_feed_dropped_total").increment(batch.len() as u64);
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        changes = batch.len(),
                        "could not publish job changes; api instances see them late"
                    );
                }
                batch.clear();
            }
        });
        Self { queue }
    }

    /// Queues `change` for publishing; never waits.
    pub fn publish(&self, change: Change) {
        if self.queue.try_send(change).is_err() {
            metrics::counter!("jobs_feed_dropped_total").increment(1);
        }
    }

    /// Queues each of `changes`.
    pub fn publish_all(&self, changes: impl IntoIterator<Item = Change>) {
        for change in changes {
            self.publish(change);
        }
    }
}

/// A subscription to every channel of the feed, on a connection of its
/// own (a subscribed connection can do nothing else).
pub struct Subscription {
    inner: Inner,
}

enum Inner {
    Single(redis::aio::PubSubStream),
    Cluster {
        // Held for the subscription's life: dropping it ends the pushes.
        _connection: redis::cluster_async::ClusterConnection,
        pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
    },
}

/// What a subscription received.
pub enum Heard {
    /// A message of the feed (`None`: not one of ours).
    Changes(Option<Vec<Change>>),
    /// The connection was lost: what was published meanwhile is lost too.
    Lost,
}

impl Subscription {
    /// Subscribes to every channel of the feed; returns once Redis has
    /// confirmed, so nothing published after this returns is missed.
    pub async fn subscribe(redis: &RedisSettings) -> Result<Self, redis::RedisError> {
        let channels = channels(redis);
        let inner = if redis.is_cluster() {
            let (sender, pushes) = mpsc::unbounded_channel();
            let client = redis::cluster::ClusterClientBuilder::new(redis.cluster_node_urls())
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(sender)
                .build()?;
            let mut connection = client.get_async_connection().await?;
            connection.ssubscribe(&channels).await?;
            Inner::Cluster {
                _connection: connection,
                pushes,
            }
        } else {
            let client = redis::Client::open(redis.url.expose_secret())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channels).await?;
            Inner::Single(pubsub.into_on_message())
        };
        Ok(Self { inner })
    }

    /// The next message, or [`Heard::Lost`] once the connection is gone
    /// (then the subscription is spent: subscribe again).
    pub async fn next(&mut self) -> Heard {
        match &mut self.inner {
            Inner::Single(messages) => match messages.next().await {
                Some(message) => Heard::Changes(
                    message
                        .get_payload::<String>()
                        .ok()
                        .and_then(|text| Change::parse_all(&text)),
                ),
                None => Heard::Lost,
            },
            Inner::Cluster { pushes, .. } => loop {
                let Some(push) = pushes.recv().await else {
                    return Heard::Lost;
                };
                match push.kind {
                    PushKind::SMessage => {
                        let text = match push.data.get(1) {
                            Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes).ok(),
                            _ => None,
                        };
                        return Heard::Changes(text.and_then(Change::parse_all));
                    }
                    // A node's connection dropped: the client resubscribes
                    // by itself, but what was published meanwhile is gone.
                    PushKind::Disconnection => return Heard::Lost,
                    // Confirmations of (re)subscriptions.
                    _ => {}
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_every_change_and_anything_else_is_refused_whole() {
        let (job, user) = (Uuid::now_v7(), Uuid::now_v7());
        let mut message = String::new();
        for change in [
            Change::Job(job),
            Change::NewJobsOf(user),
            Change::Account(user),
            Change::Probe(7, 9, 3),
        ] {
            change.write(&mut message);
        }
        assert_eq!(
            Change::parse_all(message.trim_end()),
            Some(vec![
                Change::Job(job),
                Change::NewJobsOf(user),
                Change::Account(user),
                Change::Probe(7, 9, 3)
            ])
        );
        assert_eq!(Change::parse_all(&format!("j:{job} all")), None);
        assert_eq!(Change::parse_all("j:not-a-uuid"), None);
    }
}
