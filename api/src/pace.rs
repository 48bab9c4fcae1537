//! A minimum pace for request bodies: a client that stops sending halfway
//! (or sends a byte now and then) is cut off instead of holding a
//! connection, an upload slot and a spool file for the whole upload timeout.
//!
//! Time is cut into windows; a window in which the handler waited for the
//! body and fewer than `min_rate × window` bytes (at least one) arrived
//! fails the body with [`BodyTooSlow`], which the api answers with 408.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use http_body::{Body as HttpBody, Frame, SizeHint};
use platform::config::HttpLimits;
use tokio::time::{Instant, Sleep};

/// The body came in slower than the minimum pace.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub struct BodyTooSlow;

/// Whether `error`, or anything in its source chain, is [`BodyTooSlow`].
pub fn is_too_slow(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyTooSlow>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// `request` with its body wrapped in a [`Paced`] body (a request without
/// one, such as a poll, passes as it is).
pub fn enforce(limits: &HttpLimits, request: Request) -> Request {
    if request.body().is_end_stream() {
        return request;
    }
    request.map(|body| Body::new(Paced::new(body, limits)))
}

/// A body that fails when it falls below the minimum pace.
pub struct Paced {
    inner: Body,
    window: Duration,
    min_bytes: u64,
    received: u64,
    window_end: Option<Pin<Box<Sleep>>>,
}

impl Paced {
    fn new(inner: Body, limits: &HttpLimits) -> Self {
        Self {
            inner,
            window: limits.body_window,
            min_bytes: (limits.body_min_rate * limits.body_window.as_secs()).max(1),
            received: 0,
            window_end: None,
        }
    }
}

impl HttpBody for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => loop {
                let window = this.window;
                let window_end = this
                    .window_end
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(window)));
                if window_end.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if this.received < this.min_bytes {
                    return Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))));
                }
                this.received = 0;
                window_end.as_mut().reset(Instant::now() + window);
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
