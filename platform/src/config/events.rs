//! Live job status pushed to browsers (`GET /api/me/events`).

use super::variables::{Parsed, Variable as _, variables};

/// How many live streams an api instance holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSettings {
    /// Streams one user may hold open on one instance; the next is
    /// answered 429. Several tabs are normal; a script opening hundreds is
    /// not (`EVENTS_STREAMS_PER_USER`, 1 to 100, default 8).
    pub per_user: usize,
    /// Streams one instance holds at most; the next is answered 503 with
    /// `Retry-After`, and its client polls. Each holds a connection, so
    /// keep it under `HTTP_MAX_CONNECTIONS`, with room for the polls and
    /// uploads (`EVENTS_MAX_STREAMS`, default 512; `0` turns streams off).
    pub max_streams: usize,
}

variables! {
    EventSettings {
        per_user: Parsed("EVENTS_STREAMS_PER_USER", 8).at_least(1).at_most(100),
        max_streams: Parsed("EVENTS_MAX_STREAMS", 512),
    }
}
