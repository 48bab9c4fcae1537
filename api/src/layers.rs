//! The middleware every request passes, declared once as a list: the
//! router applies all of it, and the layer benchmark
//! (`api/benches/layers.rs`) applies it one layer at a time to measure what
//! each costs.

use axum::{Router, middleware};

use crate::routes::endpoints::FRAMING_BYTES;
use crate::state::AppState;
use crate::{browser, drain, error, metrics, pace, request_id};

/// One layer of the stack around every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Error answers without a body get the JSON error shape.
    JsonErrors,
    /// A refused body's rest is read, so the client sees the answer.
    Drain,
    /// Request bodies must keep a minimum pace (outside the drain, so
    /// draining keeps the pace too).
    Pace,
    /// `nosniff`, `no-referrer`, `DENY` and a CSP on every answer.
    SecurityHeaders,
    /// Prometheus counts and durations per route and status.
    Metrics,
    /// One `x-request-id` per request, and the request's span (method,
    /// URI, request id) around everything inside.
    RequestId,
}

impl Layer {
    /// Innermost first: the order they wrap the routes in.
    pub const ALL: [Layer; 6] = [
        Layer::JsonErrors,
        Layer::Drain,
        Layer::Pace,
        Layer::SecurityHeaders,
        Layer::Metrics,
        Layer::RequestId,
    ];

    /// `router` wrapped in this layer.
    pub fn wrap(self, router: Router<AppState>, state: &AppState) -> Router<AppState> {
        match self {
            Layer::JsonErrors => router.layer(middleware::from_fn(error::json_errors)),
            Layer::Drain => {
                let largest_body = state.photos.max_bytes + FRAMING_BYTES;
                router.layer(middleware::from_fn(move |request, next| {
                    drain::drain_refused(largest_body, request, next)
                }))
            }
            Layer::Pace => {
                let http = state.http;
                router.layer(middleware::from_fn(move |request, next| {
                    pace::enforce(http, request, next)
                }))
            }
            Layer::SecurityHeaders => router.layer(middleware::from_fn(browser::security_headers)),
            Layer::Metrics => router.layer(middleware::from_fn(metrics::track)),
            Layer::RequestId => router.layer(middleware::from_fn(request_id::assign)),
        }
    }
}
