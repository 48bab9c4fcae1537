//! Lingering close: read what is left of a refused request's body before
//! answering, so the client gets to see the answer.
//!
//! A client that sends a 5 MB upload writes the whole body before it reads
//! anything. When we refuse early (429, 503, 403) without reading the body,
//! hyper closes the connection with unread bytes in the socket, the kernel
//! answers them with a reset, and the client sees a broken connection
//! instead of our `Retry-After`. So an error answer first drains the rest
//! of the body, discarding it one chunk at a time: at most `max_bytes`, at
//! the minimum body pace, for at most [`DRAIN_TIMEOUT`]; past any of those
//! the connection is closed as before.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};

/// Longest we read a refused body before giving up and closing.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Middleware: on an error answer, drains up to `max_bytes` of the unread
/// rest of the body first.
pub async fn drain_refused(max_bytes: u64, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        // Nothing to drain (a GET, a poll): no wrapping on the hot path.
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let request = Request::from_parts(parts, Body::new(Shared(shared.clone())));
    let response = next.run(request).await;
    if response.status().is_client_error() || response.status().is_server_error() {
        let mut rest = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            let mut read = 0_u64;
            while read <= max_bytes {
                let frame = std::future::poll_fn(|cx| Pin::new(&mut rest).poll_frame(cx)).await;
                match frame {
                    Some(Ok(frame)) => {
                        read += frame.data_ref().map_or(0, |data| data.len() as u64);
                    }
                    Some(Err(_)) | None => break,
                }
            }
        });
        let _ = drained.await;
    }
    response
}

/// The request body, shared with the middleware so it can take what the
/// handler left.
struct Shared(Arc<Mutex<Body>>);

impl HttpBody for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut body = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .size_hint()
    }
}
