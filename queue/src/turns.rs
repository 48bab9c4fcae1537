//! Whose turn it is to run a batched queue's next batch: at most one start
//! per interval across all workers, counted in Redis; and how many of its
//! jobs still wait to be fetched.

use std::time::Duration;

use catalogue::QueueName;

use crate::{JobQueues, QueueError};

impl JobQueues {
    /// Takes `queue`'s next batch turn if no batch of it started within
    /// `every` (on any worker): `None` when taken, or how long until the
    /// last one's interval ends. One `SET NX PX`, so two workers asking at
    /// once never both get the turn.
    pub async fn take_batch_turn(
        &self,
        queue: QueueName,
        every: Duration,
    ) -> Result<Option<Duration>, QueueError> {
        let key = format!(
            "{}:{}:batch-turn",
            self.prefix(),
            self.redis.bullmq_name(queue)
        );
        self.bounded(async {
            let connection = self.connection().await?;
            let mut set = redis::cmd("SET");
            set.arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(platform::millis(every).max(1));
            let taken: Option<String> = connection.cmd(&mut set).await?;
            if taken.is_some() {
                return Ok(None);
            }
            let mut pttl = redis::cmd("PTTL");
            pttl.arg(&key);
            let left: i64 = connection.cmd(&mut pttl).await?;
            // Expired in between (-2) or without expiry (-1, never set so):
            // no wait; the caller asks again.
            Ok(Some(Duration::from_millis(
                u64::try_from(left).unwrap_or(0),
            )))
        })
        .await
    }

    /// How many of `queue`'s jobs wait to be fetched (BullMQ's wait list):
    /// a batch that is still gathering takes them too.
    pub async fn waiting(&self, queue: QueueName) -> Result<u64, QueueError> {
        let key = format!("{}:{}:wait", self.prefix(), self.redis.bullmq_name(queue));
        self.bounded(async {
            let mut llen = redis::cmd("LLEN");
            llen.arg(&key);
            Ok(self.connection().await?.cmd(&mut llen).await?)
        })
        .await
    }
}
