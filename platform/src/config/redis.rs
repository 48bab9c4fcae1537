//! Redis, where the BullMQ queues live.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use super::variables::{Env, SECOND, Secret, Secs, Text, Variable, Vars, variables};
use catalogue::QueueName;

/// Redis, where the BullMQ queues live.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// Connection URL (`REDIS_URL`).
    pub url: SecretString,
    /// Seed nodes of a Redis Cluster (`REDIS_CLUSTER_NODES`, comma-separated
    /// `redis://` or `rediss://` URLs, which may hold passwords); when set,
    /// `url` is not used.
    pub cluster_nodes: Option<SecretString>,
    /// What our Redis keys start with: BullMQ's prefix (`QUEUE_PREFIX`).
    /// On a cluster, see [`RedisSettings::bullmq_name`].
    pub queue_prefix: String,
    /// A job Redis should hold that has not run this long after it was
    /// handed over (or fell due) is handed over again, in case Redis lost it
    /// (`OUTBOX_REDELIVER_AFTER_SECS`).
    pub redeliver_after: Duration,
}

variables! {
    RedisSettings {
        url: DefaultSecret("REDIS_URL", "redis://127.0.0.1:6379"),
        cluster_nodes: ClusterNodes("REDIS_CLUSTER_NODES"),
        queue_prefix: Text("QUEUE_PREFIX", "bull"),
        redeliver_after: Secs("OUTBOX_REDELIVER_AFTER_SECS", 300).at_least(SECOND),
    }
}

impl RedisSettings {
    /// Whether the queues live on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster_nodes.is_some()
    }

    /// The seed nodes of the cluster, if there is one.
    pub fn cluster_node_urls(&self) -> Vec<String> {
        self.cluster_nodes
            .as_ref()
            .map(|nodes| nodes_of(nodes.expose_secret()))
            .unwrap_or_default()
    }

    /// The name BullMQ knows `queue` by. On a single Redis it is the
    /// queue's own (keys `bull:welcome-email:wait`, as Node BullMQ writes
    /// them). On a cluster every key of a queue must share a hash slot,
    /// since BullMQ's scripts touch several at once, and each queue should
    /// have its own slot so the queues spread over the shards: the name is
    /// wrapped in braces, a hash tag (`{welcome-email}`, keys
    /// `bull:{welcome-email}:wait`), as BullMQ documents for clusters.
    /// Node tools open the queue by this name.
    pub fn bullmq_name(&self, queue: QueueName) -> String {
        if self.is_cluster() {
            format!("{{{queue}}}")
        } else {
            queue.as_str().to_owned()
        }
    }
}

fn nodes_of(list: &str) -> Vec<String> {
    super::variables::items(list).map(str::to_owned).collect()
}

/// A secret with a default: the local Redis holds none.
struct DefaultSecret(&'static str, &'static str);

impl Variable<SecretString> for DefaultSecret {
    fn read(&self, env: &mut Env<'_>) -> SecretString {
        SecretString::from(Text(self.0, self.1).read(env))
    }

    fn write(&self, value: &SecretString, vars: &mut Vars) {
        Text(self.0, self.1).write(&value.expose_secret().to_owned(), vars);
    }
}

/// Comma-separated Redis URLs, each checked for its scheme.
struct ClusterNodes(&'static str);

impl Variable<Option<SecretString>> for ClusterNodes {
    fn read(&self, env: &mut Env<'_>) -> Option<SecretString> {
        let key = self.0;
        let value = env.get(key)?;
        let nodes = nodes_of(&value);
        if nodes.is_empty() {
            env.problem(format!(
                "{key} names no node: give seed URLs separated by commas"
            ));
        }
        for node in &nodes {
            if !(node.starts_with("redis://") || node.starts_with("rediss://")) {
                // The node itself may hold a password: say where, not what.
                let host = node.rsplit('@').next().unwrap_or_default();
                env.problem(format!(
                    "{key}: every node must be a redis:// or rediss:// URL, not {host:?}"
                ));
            }
        }
        Some(SecretString::from(value))
    }

    fn write(&self, value: &Option<SecretString>, vars: &mut Vars) {
        Secret(self.0).write(value, vars);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::settings;

    #[test]
    fn on_a_cluster_each_queue_name_is_its_own_hash_tag() {
        let database = ("DATABASE_URL", "postgres://localhost/app");
        let single = settings(&[database]).expect("valid");
        assert!(!single.redis.is_cluster());
        assert_eq!(
            single.redis.bullmq_name(QueueName::WelcomeEmail),
            "welcome-email"
        );

        let nodes = (
            "REDIS_CLUSTER_NODES",
            "redis://10.0.0.1:6379, redis://:secret@10.0.0.2:6379,",
        );
        let cluster = settings(&[database, nodes]).expect("valid");
        assert!(cluster.redis.is_cluster());
        assert_eq!(
            cluster.redis.cluster_node_urls(),
            ["redis://10.0.0.1:6379", "redis://:secret@10.0.0.2:6379"]
        );
        assert_eq!(
            cluster.redis.bullmq_name(QueueName::WelcomeEmail),
            "{welcome-email}"
        );
        assert_eq!(
            cluster.redis.bullmq_name(QueueName::ImageResize),
            "{image-resize}"
        );
    }

    #[test]
    fn a_cluster_node_that_is_not_a_redis_url_is_refused_without_showing_its_password() {
        let error = settings(&[
            ("DATABASE_URL", "postgres://localhost/app"),
            ("REDIS_CLUSTER_NODES", "redis://a:6379,user:hunter2@b:6379"),
        ])
        .expect_err("a node without a scheme");
        let message = error.to_string();
        assert!(message.contains("REDIS_CLUSTER_NODES"), "{message}");
        assert!(message.contains("\"b:6379\""), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
