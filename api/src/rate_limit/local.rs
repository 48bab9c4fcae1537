//! The counts of one limit in this instance's memory: what every instance
//! falls back to while Redis does not answer (see the parent module).
//!
//! Fixed windows per client, in 16 shards so requests rarely wait on each
//! other's lock (chosen by a hash of the whole key: IPv4 addresses and IPv6
//! prefixes alike spread over all of them). Memory is bounded whatever the
//! number of clients: each shard holds at most `capacity / 16` clients and
//! forgets all of them when its window ends (a clear, not a scan). A client
//! arriving at a full shard is let through uncounted and logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ClientKey;

const SHARDS: usize = 16;

/// Allows `limit` requests per client per `window`.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    shard_capacity: usize,
    epoch: Instant,
    shards: [Mutex<Shard>; SHARDS],
}

#[derive(Default)]
struct Shard {
    /// Index of the window `counts` belongs to, counted from `epoch`.
    window: u64,
    counts: HashMap<ClientKey, u32>,
    /// A full shard was reported in this window.
    reported_full: bool,
}

impl RateLimiter {
    /// A limiter allowing `limit` requests per `window` per client, tracking
    /// at most `capacity` clients.
    pub fn new(limit: u32, window: Duration, capacity: usize) -> Self {
        Self {
            limit,
            window,
            shard_capacity: (capacity / SHARDS).max(1),
            epoch: Instant::now(),
            shards: std::array::from_fn(|_| Mutex::default()),
        }
    }

    /// Counts a request from `client`; `Err` holds how long until it may retry.
    pub fn check(&self, client: ClientKey, now: Instant) -> Result<(), Duration> {
        self.count(client, now, 1).map(drop)
    }

    /// Counts `add` (0 or 1) for `client`; `Err` holds how long until it
    /// may retry.
    pub(super) fn count(&self, client: ClientKey, now: Instant, add: u32) -> Result<u32, Duration> {
        let elapsed = now.saturating_duration_since(self.epoch);
        let window =
            u64::try_from(elapsed.as_nanos() / self.window.as_nanos().max(1)).unwrap_or(u64::MAX);
        let shard_index = usize::try_from(client.spread() % SHARDS as u64).unwrap_or(0);
        let mut shard = self.shards[shard_index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shard.window != window {
            shard.window = window;
            shard.counts.clear();
            shard.reported_full = false;
        }
        let full = shard.counts.len() >= self.shard_capacity;
        let count = match shard.counts.get_mut(&client) {
            Some(count) => count,
            None if add == 0 => return Ok(0),
            None if full => {
                if !shard.reported_full {
                    shard.reported_full = true;
                    tracing::warn!(
                        capacity = self.shard_capacity * SHARDS,
                        "rate limiter full: new clients pass uncounted until the window ends"
                    );
                }
                return Ok(0);
            }
            None => shard.counts.entry(client).or_insert(0),
        };
        if *count >= self.limit {
            let window_end = self
                .window
                .saturating_mul(u32::try_from(window + 1).unwrap_or(u32::MAX));
            return Err(window_end.saturating_sub(elapsed));
        }
        *count += add;
        Ok(*count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::IpAddr;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn v4(n: u32) -> ClientKey {
        IpAddr::V4(std::net::Ipv4Addr::from(n)).into()
    }

    fn v6(address: &str) -> ClientKey {
        address.parse::<IpAddr>().unwrap().into()
    }

    #[test]
    fn a_client_over_the_limit_waits_for_its_window_to_end() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60), 1000);
        let start = limiter.epoch;
        assert!(limiter.check(A.into(), start).is_ok());
        assert!(limiter.check(A.into(), start).is_ok());
        let wait = limiter
            .check(A.into(), start + Duration::from_secs(20))
            .expect_err("third request in the window");
        assert_eq!(wait, Duration::from_secs(40));
        assert!(
            limiter.check(B.into(), start).is_ok(),
            "other clients are unaffected"
        );
        assert!(
            limiter
                .check(A.into(), start + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn addresses_of_one_ipv6_64_share_a_limit() {
        assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(
            v6("::ffff:10.0.0.1"),
            ClientKey::from(A),
            "mapped IPv4 is IPv4"
        );
        assert_ne!(
            v6("::a00:1"),
            ClientKey::from(A),
            "v6 never collides with v4"
        );
    }

    #[test]
    fn memory_stays_bounded_whatever_the_number_of_clients() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60), 160);
        let now = limiter.epoch;
        for n in 0..100_000_u32 {
            let _ = limiter.check(v4(n), now);
        }
        let tracked: usize = limiter
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap().counts.len())
            .sum();
        assert_eq!(tracked, 160);
        assert!(
            limiter.check(v4(0), now).is_err(),
            "clients already tracked are still limited"
        );
    }

    #[test]
    fn ipv6_prefixes_fill_every_shard_not_one() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60), 160);
        let now = limiter.epoch;
        for n in 0..10_000_u32 {
            let _ = limiter.check(v6(&format!("2001:db8:0:{n:x}::1")), now);
        }
        let per_shard: Vec<usize> = limiter
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap().counts.len())
            .collect();
        assert_eq!(
            per_shard,
            vec![10; SHARDS],
            "every shard full: {per_shard:?}"
        );
    }
}
