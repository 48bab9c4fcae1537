//! Recently verified bearer tokens, so an authenticated request (above all
//! the job-status poll) costs one database query instead of two.
//!
//! An entry is trusted for at most [`TokenCache::TTL`], and never past the
//! token's own expiry. A token revoked on this instance is removed from its
//! cache at once; every other instance stops trusting its copy within the
//! TTL, because it asks the database again then. Five seconds keeps the
//! poll path at one query per token per five seconds while a logout takes
//! effect everywhere almost at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

pub use store::tokens::TokenHash;

/// A bounded map from token hash to user, with per-entry freshness.
pub struct TokenCache {
    entries: Mutex<HashMap<TokenHash, Entry>>,
    capacity: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    user_id: Uuid,
    fresh_until: Instant,
}

impl TokenCache {
    /// How long a verified token is trusted without asking the database.
    pub const TTL: Duration = Duration::from_secs(5);

    /// A cache holding at most `capacity` tokens (about 100 bytes each).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The user of a token verified less than [`Self::TTL`] ago.
    pub fn get(&self, hash: &TokenHash) -> Option<Uuid> {
        let now = Instant::now();
        self.lock()
            .get(hash)
            .filter(|entry| entry.fresh_until > now)
            .map(|entry| entry.user_id)
    }

    /// Remembers a token the database just vouched for; `expires_in` is the
    /// time left before the token itself expires.
    pub fn insert(&self, hash: TokenHash, user_id: Uuid, expires_in: Duration) {
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.fresh_until > now);
            if entries.len() >= self.capacity {
                // Still full of fresh entries: start over rather than grow.
                // The cost is one extra query per active token.
                entries.clear();
            }
        }
        let fresh_until = now + Self::TTL.min(expires_in);
        entries.insert(
            hash,
            Entry {
                user_id,
                fresh_until,
            },
        );
    }

    /// Forgets one token (it was revoked).
    pub fn remove(&self, hash: &TokenHash) {
        self.lock().remove(hash);
    }

    /// Forgets every token of `user_id` (all were revoked).
    pub fn remove_user(&self, user_id: Uuid) {
        self.lock().retain(|_, entry| entry.user_id != user_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every operation is a single map call), so poisoning is ignored.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_token_is_found_and_an_unknown_one_is_not() {
        let cache = TokenCache::new(10);
        let user = Uuid::now_v7();
        cache.insert([1; 32], user, Duration::from_secs(3600));
        assert_eq!(cache.get(&[1; 32]), Some(user));
        assert_eq!(cache.get(&[2; 32]), None);
    }

    #[test]
    fn removed_tokens_are_forgotten_one_by_one_or_per_user() {
        let cache = TokenCache::new(10);
        let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
        cache.insert([1; 32], ada, Duration::from_secs(60));
        cache.insert([2; 32], ada, Duration::from_secs(60));
        cache.insert([3; 32], bob, Duration::from_secs(60));
        cache.remove(&[1; 32]);
        assert_eq!(cache.get(&[1; 32]), None);
        assert_eq!(cache.get(&[2; 32]), Some(ada));
        cache.remove_user(ada);
        assert_eq!(cache.get(&[2; 32]), None);
        assert_eq!(cache.get(&[3; 32]), Some(bob));
    }

    #[test]
    fn a_token_is_never_trusted_past_its_own_expiry() {
        let cache = TokenCache::new(10);
        cache.insert([1; 32], Uuid::now_v7(), Duration::ZERO);
        assert_eq!(cache.get(&[1; 32]), None);
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = TokenCache::new(3);
        for n in 0..10_u8 {
            cache.insert([n; 32], Uuid::now_v7(), Duration::from_secs(60));
            assert!(cache.lock().len() <= 3);
        }
        assert!(cache.get(&[9; 32]).is_some(), "the newest token is kept");
    }
}
