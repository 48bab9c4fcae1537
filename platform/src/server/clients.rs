//! Telling clients apart, and counting each one's open connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// How a client is told apart: an IPv4 address, or an IPv6 /64 (one
/// subscriber's prefix: rotating through it buys no more connections or
/// attempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(u128);

impl From<IpAddr> for ClientKey {
    fn from(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V4(v4) => Self(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => Self(u128::from(v6) & !u128::from(u64::MAX) | 1 << 127),
        }
    }
}

impl ClientKey {
    /// The key as 16 bytes, for counting it elsewhere (Redis).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The key's bits mixed into 64 (both halves, Fibonacci hashing): for
    /// sharding, where the low bits alone would be zero for every IPv6
    /// prefix and put them all in one shard.
    pub fn spread(self) -> u64 {
        let folded = (self.0 >> 64) as u64 ^ self.0 as u64;
        folded.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32)
    }
}

/// Open connections per client, for `HTTP_MAX_CONNECTIONS_PER_CLIENT`: an
/// entry lives only while its client has a connection open, so the map is
/// never larger than the connection cap.
#[derive(Default)]
pub(super) struct PerClient(Mutex<HashMap<ClientKey, usize>>);

/// One connection counted against its client until dropped.
pub(super) struct ClientSlot {
    counts: Arc<PerClient>,
    client: ClientKey,
}

impl PerClient {
    /// Counts a connection from `client`, unless it already has `cap` open.
    pub(super) fn enter(self: &Arc<Self>, client: ClientKey, cap: usize) -> Option<ClientSlot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let open = counts.entry(client).or_default();
        if *open >= cap {
            return None;
        }
        *open += 1;
        Some(ClientSlot {
            counts: self.clone(),
            client,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = counts.get_mut(&self.client) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.client);
            }
        }
    }
}
