//! Whether Redis may evict our keys. BullMQ keeps jobs and their locks in
//! Redis with no copy elsewhere while they run; under any `maxmemory-policy`
//! but `noeviction` a full Redis drops keys to make room (the `volatile-*`
//! policies the locks, which carry a TTL), and jobs vanish or run twice.
//! With `noeviction` a full Redis refuses writes instead, which our outbox
//! and retries are built to survive.

use std::time::{Duration, Instant};

use super::{JobQueues, QueueError};

/// What Redis says about eviction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// `noeviction`: a full Redis refuses writes, keys are never dropped.
    Safe,
    /// Any other policy, by name: keys may be dropped.
    Unsafe(String),
    /// Redis does not say (a managed Redis may refuse `CONFIG`).
    Unknown,
}

impl EvictionPolicy {
    /// The policy's name, as `/readyz` reports it (`None` when unknown).
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Safe => Some("noeviction"),
            Self::Unsafe(name) => Some(name),
            Self::Unknown => None,
        }
    }
}

impl JobQueues {
    /// Redis' `maxmemory-policy`.
    pub async fn eviction_policy(&self) -> Result<EvictionPolicy, QueueError> {
        self.bounded(async {
            let mut get = redis::cmd("CONFIG");
            get.arg("GET").arg("maxmemory-policy");
            match self.connection().await?.cmd::<Vec<String>>(&mut get).await {
                Ok(pair) => Ok(match pair.into_iter().nth(1) {
                    Some(name) if name == "noeviction" => EvictionPolicy::Safe,
                    Some(name) => EvictionPolicy::Unsafe(name),
                    None => EvictionPolicy::Unknown,
                }),
                // Refused (a renamed or forbidden `CONFIG`): unknown.
                Err(bullmq::Error::Redis(error))
                    if matches!(error.kind(), redis::ErrorKind::Server(_)) =>
                {
                    Ok(EvictionPolicy::Unknown)
                }
                Err(error) => Err(error.into()),
            }
        })
        .await
    }
}

/// Redis' policy for the health endpoints, which anyone may call as often
/// as they like: Redis is asked at most once per [`EvictionCheck::FRESH_FOR`]
/// (a `CONFIG GET` per unauthenticated request would let anyone load it),
/// and requests arriving while it is asked wait for that answer instead of
/// asking again. The answer's age is all a probe loses: a policy changed
/// live shows within a second.
#[derive(Debug, Default)]
pub struct EvictionCheck {
    /// The last answer (`None`: Redis did not give one) and when it came.
    last: tokio::sync::Mutex<Option<(Instant, Option<EvictionPolicy>)>>,
}

impl EvictionCheck {
    /// How long an answer is used before Redis is asked again.
    pub const FRESH_FOR: Duration = Duration::from_secs(1);

    /// Redis' `maxmemory-policy` through `queues`, as it was at most
    /// [`Self::FRESH_FOR`] ago; `None` when Redis did not answer then.
    pub async fn policy(&self, queues: &JobQueues) -> Option<EvictionPolicy> {
        // Held while asking: concurrent requests share the one lookup.
        let mut last = self.last.lock().await;
        if let Some((at, policy)) = &*last
            && at.elapsed() < Self::FRESH_FOR
        {
            return policy.clone();
        }
        let policy = queues.eviction_policy().await.ok();
        *last = Some((Instant::now(), policy.clone()));
        policy
    }
}

/// Checks the policy once Redis answers (at start, or when it comes up),
/// and says loudly if it is not `noeviction`: started by both binaries, so
/// whoever deploys sees it in either log. Not a refusal to start, since the
/// api serves without Redis and an operator may fix the setting live;
/// `/readyz` says it too (through an [`EvictionCheck`]).
pub async fn watch_eviction_policy(queues: &JobQueues) {
    const RETRY: Duration = Duration::from_secs(10);
    loop {
        match queues.eviction_policy().await {
            Ok(EvictionPolicy::Safe) => return,
            Ok(EvictionPolicy::Unsafe(policy)) => {
                tracing::error!(
                    policy,
                    "redis may evict jobs and their locks under memory pressure: set maxmemory-policy to noeviction"
                );
                return;
            }
            Ok(EvictionPolicy::Unknown) => {
                tracing::warn!(
                    "redis does not say its maxmemory-policy: make sure it is noeviction, or jobs may be evicted"
                );
                return;
            }
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}
