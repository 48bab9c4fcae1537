//! The listener that tells [`JobVersions`] of every changed job the feed
//! carries, and proves every few seconds that it still hears.

use std::time::Duration;

use platform::config::RedisSettings;
use queue::JobQueues;
use queue::feed::{Change, Heard, Subscription, channels};
use uuid::Uuid;

use super::JobVersions;
use crate::events::Hub;

/// Listens to the change feed for as long as the api runs, subscribing
/// again with a growing pause (at most 10 s) when Redis goes away;
/// meanwhile every poll asks the database. Holds one Redis connection (one
/// per node on a cluster) besides the queues'.
pub async fn follow(queues: &JobQueues, redis: &RedisSettings, versions: &JobVersions, hub: &Hub) {
    let mut pause = FIRST_PAUSE;
    loop {
        let why = match Subscription::subscribe(redis).await {
            Ok(subscription) => {
                let why = hear(queues, redis, subscription, versions, hub, &mut pause).await;
                versions.reset(false);
                hub.feed_lost();
                why
            }
            Err(error) => format!("cannot subscribe: {error}"),
        };
        tracing::warn!(
            reason = %why,
            retry_in = ?pause,
            "not told of changed jobs; polls ask the database until that is back"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// The pause before the first new subscription, and again once a probe
/// came back.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// How often the listener proves it still hears: a connection to a Redis
/// host that died (a failover) can wait for ever without an error.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long a probe may take to come back on every channel before the
/// subscription is given up.
const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// Handles the feed until the subscription fails or stops delivering, and
/// says why. Entries are trusted only from the first probe that came back
/// on every channel: then changes are known to arrive.
async fn hear(
    queues: &JobQueues,
    redis: &RedisSettings,
    mut subscription: Subscription,
    versions: &JobVersions,
    hub: &Hub,
    pause: &mut Duration,
) -> String {
    // Other instances' probes arrive too: each knows its own by this.
    let me = Uuid::new_v4().as_u64_pair().0;
    let shards = channels(redis).len();
    let mut sent = 0_u64;
    // The shards the current probe came back on.
    let mut returned = vec![false; shards];
    let mut awaiting = false;
    // One timer for the listener's life, moved rather than made anew.
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut changed = Vec::new();
    loop {
        tokio::select! {
            heard = subscription.next() => {
                let changes = match heard {
                    Heard::Lost => return "the connection was lost".to_owned(),
                    Heard::Changes(Some(changes)) => changes,
                    Heard::Changes(None) => {
                        // Not ours, or from a newer version: cannot tell
                        // what changed.
                        versions.reset(versions.is_live());
                        // Streams cannot know either: they resume by replay.
                        hub.feed_lost();
                        continue;
                    }
                };
                for change in changes {
                    match change {
                        Change::Probe(from, n, shard) if from == me && n == sent && awaiting => {
                            if let Some(back) = returned.get_mut(shard) {
                                *back = true;
                            }
                            if returned.iter().all(|back| *back) {
                                if !versions.is_live() {
                                    versions.reset(true);
                                    *pause = FIRST_PAUSE;
                                }
                                awaiting = false;
                                timer.as_mut().reset(tokio::time::Instant::now() + PROBE_EVERY);
                            }
                        }
                        Change::Probe(..) => {}
                        Change::Job(_) | Change::NewJobsOf(_) | Change::Account(_) => {
                            changed.push(change);
                        }
                    }
                }
                versions.changed_all(&changed);
                hub.changed_all(&changed);
                changed.clear();
            }
            () = &mut timer => {
                if awaiting {
                    return format!("a probe did not come back within {PROBE_DEADLINE:?}");
                }
                sent += 1;
                returned.fill(false);
                if let Err(error) = queues.publish_probe(me, sent).await {
                    return format!("cannot send a probe: {error}");
                }
                awaiting = true;
                timer.as_mut().reset(tokio::time::Instant::now() + PROBE_DEADLINE);
            }
        }
    }
}
