//! Per-client rate limiting of the credential endpoints (signup, login), so
//! nobody can guess passwords or mass-create accounts at full speed.
//!
//! A fixed window per client address: simple, memory-bounded, and enough to
//! turn a brute-force attack from thousands of guesses a second into a few
//! a minute. Limits are per api instance.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;

/// Allows `limit` requests per client per `window`.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    clients: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl RateLimiter {
    /// Clients tracked before expired windows are swept.
    const SWEEP_AT: usize = 100_000;

    /// A limiter allowing `limit` requests per `window` per client.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request from `client`; `Err` holds how long until it may retry.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if clients.len() >= Self::SWEEP_AT {
            clients.retain(|_, window| now.duration_since(window.started) < self.window);
        }
        let window = clients.entry(client).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(window.started) >= self.window {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        if window.count >= self.limit {
            return Err(self
                .window
                .saturating_sub(now.duration_since(window.started)));
        }
        window.count += 1;
        Ok(())
    }
}

/// Middleware: answers 429 with `Retry-After` once a client is over the limit.
pub async fn limit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(limiter) = &state.auth_limiter {
        let client = client_address(&request, state.client_ip_header.as_ref(), peer.ip());
        limiter
            .check(client, Instant::now())
            .map_err(|retry_after| ApiError::RateLimited(retry_after.as_secs().max(1)))?;
    }
    Ok(next.run(request).await)
}

/// The client's address: the last hop of `header` when running behind a
/// trusted proxy that appends it (e.g. `X-Forwarded-For`), else the peer.
/// Only the last hop is trusted: earlier ones are whatever the client sent.
fn client_address(request: &Request, header: Option<&HeaderName>, peer: IpAddr) -> IpAddr {
    header
        .and_then(|name| request.headers().get(name))
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
    fn a_client_over_the_limit_waits_for_its_window_to_end() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let start = Instant::now();
        assert!(limiter.check(A, start).is_ok());
        assert!(limiter.check(A, start).is_ok());
        let wait = limiter
            .check(A, start + Duration::from_secs(20))
            .expect_err("third request in the window");
        assert_eq!(wait, Duration::from_secs(40));
        assert!(
            limiter.check(B, start).is_ok(),
            "other clients are unaffected"
        );
        assert!(limiter.check(A, start + Duration::from_secs(60)).is_ok());
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
