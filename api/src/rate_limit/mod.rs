//! Per-client rate limiting of the credential endpoints (signup, login), so
//! nobody can guess passwords or mass-create accounts at full speed from
//! one address, and of failed operator authentications (`routes::admin`,
//! where only failures count). (Guessing one account's password from many
//! addresses is stopped per account, in `routes::session`.)
//!
//! Counted in Redis ([`in_redis`]), so a limit holds across every api
//! instance however a load balancer spreads a client's requests. While
//! Redis does not answer, each instance counts by itself ([`local`]) until
//! it does again, for every limit alike: failing open would lift the
//! protection against guessing exactly when Redis is down (perhaps taken
//! down for that), and failing closed would refuse every signup and login,
//! which work without Redis (their jobs wait in the outbox). Counting
//! locally keeps a limit (the configured one per instance) and the service.
//!
//! Both counts are fixed windows per client with bounded memory whatever the
//! number of clients: a client arriving when its shard is full is let
//! through uncounted, since with that many addresses an attacker is not
//! slowed by a per-address limit anyway, and refusing newcomers would lock
//! real users out.

mod in_redis;
mod local;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::Response;
use queue::JobQueues;

use crate::error::ApiError;
use in_redis::SharedCounts;

pub use local::RateLimiter;
pub use platform::server::ClientKey;

/// Allows `limit` requests per client per `window`, counted in Redis when
/// it answers and on this instance when it does not.
pub struct Limiter {
    local: RateLimiter,
    shared: Option<SharedCounts>,
    limit: u32,
    window: Duration,
}

impl Limiter {
    /// A limit counted on this instance only, tracking at most `capacity`
    /// clients.
    pub fn local(limit: u32, window: Duration, capacity: usize) -> Self {
        Self {
            local: RateLimiter::new(limit, window, capacity),
            shared: None,
            limit,
            window,
        }
    }

    /// A limit counted in Redis under `name` (through `queues`' connection),
    /// shared by every instance with the same name, tracking at most
    /// `capacity` clients there (and here while Redis is away).
    pub fn shared(
        name: &'static str,
        limit: u32,
        window: Duration,
        capacity: usize,
        queues: Arc<JobQueues>,
    ) -> Self {
        Self {
            shared: Some(SharedCounts::new(name, capacity, queues)),
            ..Self::local(limit, window, capacity)
        }
    }

    /// Counts a request from `client`; `Err` holds how long until it may retry.
    pub async fn check(&self, client: ClientKey) -> Result<(), Duration> {
        self.count(client, 1).await.map(drop)
    }

    /// Counts one more for `client` (a failure, say) and returns its count
    /// in this window; `Err` once it is over the limit.
    pub async fn record(&self, client: ClientKey) -> Result<u32, Duration> {
        self.count(client, 1).await
    }

    /// Whether `client` is over the limit, counting nothing.
    pub async fn peek(&self, client: ClientKey) -> Result<(), Duration> {
        self.count(client, 0).await.map(drop)
    }

    async fn count(&self, client: ClientKey, add: u32) -> Result<u32, Duration> {
        if let Some(shared) = &self.shared
            && let Some(verdict) = shared.count(client, add, self.limit, self.window).await
        {
            return verdict;
        }
        self.local.count(client, Instant::now(), add)
    }
}

/// A per-client limit and where to find the client's address: all the
/// [`limit`] middleware needs, handed to it whole.
#[derive(Clone, Default)]
pub struct ClientLimit {
    /// The counts; `None` when the limit is off.
    pub limiter: Option<Arc<Limiter>>,
    /// Where a trusted proxy puts the client address (`CLIENT_IP_HEADER`).
    pub client_ip_header: Option<HeaderName>,
}

/// Middleware: answers 429 with `Retry-After` once a client is over the limit.
pub async fn limit(
    State(limit): State<ClientLimit>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(limiter) = &limit.limiter {
        let client = client_address(&request, limit.client_ip_header.as_ref(), peer.ip());
        limiter
            .check(client.into())
            .await
            .map_err(|retry_after| ApiError::RateLimited(retry_after.as_secs().max(1)))?;
    }
    Ok(next.run(request).await)
}

/// The client's address: the last hop of `header` when running behind a
/// trusted proxy that appends it (e.g. `X-Forwarded-For`), else the peer.
/// Only the last hop is trusted: earlier ones are whatever the client sent,
/// and so is every line of the header but the last (a proxy may add its own
/// line instead of appending to the client's).
fn client_address(request: &Request, header: Option<&HeaderName>, peer: IpAddr) -> IpAddr {
    client_of(request.headers(), header, peer)
}

/// [`client_address`] from the headers alone, for extractors.
pub fn client_of(headers: &HeaderMap, header: Option<&HeaderName>, peer: IpAddr) -> IpAddr {
    header
        .and_then(|name| headers.get_all(name).iter().next_back())
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn only_the_last_line_of_the_forwarded_header_is_trusted() {
        let header = HeaderName::from_static("x-forwarded-for");
        // The client forged a line; the proxy added its own after it.
        let request = Request::builder()
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-forwarded-for", "10.0.0.2")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(client_address(&request, Some(&header), A), B);
    }

    #[test]
    fn only_the_last_forwarded_hop_is_trusted() {
        let header = HeaderName::from_static("x-forwarded-for");
        let request = Request::builder()
            .header("x-forwarded-for", "1.2.3.4, 10.0.0.2")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(client_address(&request, Some(&header), A), B);
        assert_eq!(
            client_address(&request, None, A),
            A,
            "no header configured: the peer"
        );
    }
}
