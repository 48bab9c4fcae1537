//! The middleware every request passes, declared once as a list: the
//! router applies all of it, and the layer benchmark
//! (`api/benches/layers.rs`) applies it one layer at a time to measure what
//! each costs.
//!
//! Each layer around the routes costs a boxed service clone and a boxed
//! future per request, so the protections are grouped into as few layers as
//! their order allows: what touches the request body, and what frames every
//! answer (`docs/benchmarks.md` has the costs before and after).

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use tracing::Instrument as _;

use crate::metrics::Tracked;
use crate::request_id::RequestId;
use crate::routes::endpoints::FRAMING_BYTES;
use crate::state::AppState;
use crate::{browser, drain, error, pace};

/// One layer of the stack around every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Request bodies must keep a minimum pace, and a refused body's rest
    /// is read (at that pace) so the client sees the answer. A bodiless
    /// request, such as a poll, passes untouched.
    Body,
    /// Around everything: the request's id and span, its count and time in
    /// the metrics, the security headers, and the JSON shape of every error
    /// answer.
    Frame,
}

impl Layer {
    /// Innermost first: the order they wrap the routes in.
    pub const ALL: [Layer; 2] = [Layer::Body, Layer::Frame];

    /// `router` wrapped in this layer.
    pub fn wrap(self, router: Router<AppState>, state: &AppState) -> Router<AppState> {
        match self {
            Layer::Body => {
                let largest_body = state.photos.max_bytes + FRAMING_BYTES;
                let http = state.http;
                router.layer(middleware::from_fn(move |request, next| {
                    // Paced outside the drain, so draining keeps the pace too.
                    drain::drain_refused(largest_body, pace::enforce(&http, request), next)
                }))
            }
            Layer::Frame => router.layer(middleware::from_fn(frame)),
        }
    }
}

/// The [`Layer::Frame`] middleware. Outermost first, as separate layers
/// would run: id and span, metrics, security headers, JSON errors.
async fn frame(mut request: Request, next: Next) -> Response {
    let (id, span) = RequestId::assign(&mut request);
    async move {
        let tracked = Tracked::start(&request);
        let mut response = error::json_shaped(next.run(request).await);
        browser::add_security_headers(response.headers_mut());
        tracked.finish(response.status());
        id.tag(&mut response);
        response
    }
    .instrument(span)
    .await
}
