//! The marker a queue carries while a provider refuses our credentials:
//! set by the worker that met the refusal, read by alerts and health,
//! cleared when the credentials work again.

use std::time::Duration;

use catalogue::QueueName;

use crate::{JobQueues, QueueError};

impl JobQueues {
    /// Marks `queue` as held by a provider refusing our credentials, with the
    /// reason, for `ttl`: a worker that pauses the queue renews it, one that
    /// sees the credentials work again clears it, and a worker that died
    /// leaves a mark that lapses by itself.
    pub async fn mark_misconfigured(
        &self,
        queue: QueueName,
        reason: &str,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        let key = self.misconfigured_key(queue);
        self.bounded(async {
            let mut set = redis::cmd("SET");
            set.arg(&key)
                .arg(reason)
                .arg("PX")
                .arg(platform::millis(ttl).max(1));
            Ok(self.connection().await?.cmd::<()>(&mut set).await?)
        })
        .await
    }

    /// Wakes whoever waits on `queue`'s blocking read, as a new job would
    /// (BullMQ's marker with score 0). A worker closing waits out that read,
    /// up to 5 s when a delayed job is due later: woken, it exits at once.
    pub async fn wake_consumers(&self, queue: QueueName) -> Result<(), QueueError> {
        let key = format!("{}:{}:marker", self.prefix(), self.redis.bullmq_name(queue));
        self.bounded(async {
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&key).arg(0).arg("0");
            Ok(self.connection().await?.cmd::<()>(&mut zadd).await?)
        })
        .await
    }

    /// Clears [`mark_misconfigured`](Self::mark_misconfigured)'s mark.
    pub async fn clear_misconfigured(&self, queue: QueueName) -> Result<(), QueueError> {
        let key = self.misconfigured_key(queue);
        self.bounded(async {
            let mut del = redis::cmd("DEL");
            del.arg(&key);
            Ok(self.connection().await?.cmd::<()>(&mut del).await?)
        })
        .await
    }

    /// Why `queue` is held by a refused credential, if it is.
    pub async fn misconfigured(&self, queue: QueueName) -> Result<Option<String>, QueueError> {
        let key = self.misconfigured_key(queue);
        self.bounded(async {
            let mut get = redis::cmd("GET");
            get.arg(&key);
            Ok(self.connection().await?.cmd(&mut get).await?)
        })
        .await
    }
}
