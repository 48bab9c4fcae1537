//! How full Redis is. We require `maxmemory-policy noeviction` (see
//! `eviction`), so a Redis at its `maxmemory` does not drop keys: it
//! refuses writes. Nothing is lost (new job records wait in the Postgres
//! outbox, the shared limits fall back to each instance), but no job
//! reaches the queues and running ones cannot finish until memory is freed,
//! so operators must hear of it before it is full: the alert monitor
//! publishes these figures as gauges, which an alert rule compares.

use redis::Value;

use super::{JobQueues, QueueError};

/// One Redis node's memory, from `INFO memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisMemory {
    /// `used_memory`: bytes Redis has allocated.
    pub used: u64,
    /// `maxmemory`: where it starts refusing writes; 0 means no limit.
    pub max: u64,
}

impl RedisMemory {
    /// `used / max`, or `None` when Redis has no limit (`maxmemory 0`):
    /// such a node never refuses a write for memory, it grows until the
    /// machine runs out.
    pub fn fill(&self) -> Option<f64> {
        (self.max > 0).then(|| self.used as f64 / self.max as f64)
    }

    /// The figures in one node's `INFO memory` text (`key:value` lines).
    pub fn parse(info: &str) -> Option<Self> {
        let field = |name: &str| {
            info.lines()
                .filter_map(|line| line.trim_end().split_once(':'))
                .find(|(key, _)| *key == name)
                .and_then(|(_, value)| value.parse::<u64>().ok())
        };
        Some(Self {
            used: field("used_memory")?,
            max: field("maxmemory")?,
        })
    }

    /// The node nearest to refusing writes: the highest [`fill`](Self::fill)
    /// among nodes with a limit; when none has one, the one using the most.
    pub fn fullest(nodes: impl IntoIterator<Item = Self>) -> Option<Self> {
        nodes.into_iter().max_by(|a, b| {
            let key = |node: &Self| (node.fill().is_some(), node.fill().unwrap_or(0.0), node.used);
            let (a, b) = (key(a), key(b));
            a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2))
        })
    }
}

/// The `INFO` texts in a reply: one server's, or (on a Redis Cluster, where
/// `INFO` goes to every primary) one per node, keyed by address. Nodes that
/// answered with an error are skipped.
fn info_texts(reply: Value) -> Vec<String> {
    match reply {
        Value::BulkString(bytes) => vec![String::from_utf8_lossy(&bytes).into_owned()],
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => vec![text],
        Value::Map(nodes) => nodes
            .into_iter()
            .flat_map(|(_, reply)| info_texts(reply))
            .collect(),
        _ => Vec::new(),
    }
}

impl JobQueues {
    /// Redis' memory: the server's, or on a Redis Cluster the primary
    /// nearest its `maxmemory` (the first to refuse writes, for the queues
    /// whose slots it holds). `None` when no node would say (a managed
    /// Redis that refuses `INFO`). One `INFO memory` per node: cheap, and
    /// asked at the alert monitor's pace, never per scrape.
    pub async fn memory(&self) -> Result<Option<RedisMemory>, QueueError> {
        self.bounded(async {
            let mut info = redis::cmd("INFO");
            info.arg("memory");
            let reply = match self.connection().await?.cmd::<Value>(&mut info).await {
                Ok(reply) => reply,
                // Refused (a renamed or forbidden `INFO`): nothing to say.
                Err(bullmq::Error::Redis(error))
                    if matches!(error.kind(), redis::ErrorKind::Server(_)) =>
                {
                    return Ok(None);
                }
                Err(error) => return Err(error.into()),
            };
            Ok(RedisMemory::fullest(
                info_texts(reply)
                    .iter()
                    .filter_map(|text| RedisMemory::parse(text)),
            ))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(used: u64, max: u64) -> String {
        format!(
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:1M\r\nused_memory_rss:9\r\nmaxmemory:{max}\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n"
        )
    }

    #[test]
    fn the_used_and_the_limit_are_read_from_info_memory_not_from_look_alike_fields() {
        assert_eq!(
            RedisMemory::parse(&info(1_000, 4_000)),
            Some(RedisMemory {
                used: 1_000,
                max: 4_000
            })
        );
        assert_eq!(
            RedisMemory::parse("# Memory\r\nused_memory_rss:9\r\n"),
            None
        );
    }

    #[test]
    fn an_unlimited_redis_has_no_fill_rather_than_an_infinite_one() {
        let unlimited = RedisMemory { used: 5, max: 0 };
        assert_eq!(unlimited.fill(), None);
        assert_eq!(RedisMemory { used: 1, max: 4 }.fill(), Some(0.25));
    }

    #[test]
    fn on_a_cluster_the_node_nearest_its_limit_is_reported_not_the_largest() {
        let reply = Value::Map(vec![
            (
                Value::BulkString(b"10.0.0.1:6379".to_vec()),
                Value::BulkString(info(900, 10_000).into_bytes()),
            ),
            (
                Value::BulkString(b"10.0.0.2:6379".to_vec()),
                Value::VerbatimString {
                    format: redis::VerbatimFormat::Text,
                    text: info(800, 1_000),
                },
            ),
            (
                Value::BulkString(b"10.0.0.3:6379".to_vec()),
                Value::BulkString(info(50_000, 0).into_bytes()),
            ),
        ]);
        let nodes: Vec<RedisMemory> = info_texts(reply)
            .iter()
            .filter_map(|text| RedisMemory::parse(text))
            .collect();
        assert_eq!(nodes.len(), 3);
        assert_eq!(
            RedisMemory::fullest(nodes),
            Some(RedisMemory {
                used: 800,
                max: 1_000
            })
        );
        let unlimited = [
            RedisMemory { used: 7, max: 0 },
            RedisMemory { used: 9, max: 0 },
        ];
        assert_eq!(
            RedisMemory::fullest(unlimited),
            Some(RedisMemory { used: 9, max: 0 })
        );
    }
}
