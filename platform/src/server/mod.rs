//! The HTTP/1 server loop, with the limits `axum::serve` lacks: the api's
//! port and the worker's both run on it.
//!
//! `axum::serve` runs hyper without a timer: a client that trickles its
//! headers or parks an idle keep-alive connection holds it for ever. Here
//! every connection is watched by [`Watched`], which knows which phase the
//! connection is in and enforces that phase's deadline on reads:
//!
//! - **fresh** (connected, nothing received): the first byte must come
//!   within `first_byte_timeout`;
//! - **idle** (the previous response sent): the next request must start
//!   within `idle_timeout`; writes count as activity, so a slow download
//!   is not cut while it moves;
//! - **head** (the first byte of a request arrived): the whole head must be
//!   in within `header_timeout`;
//! - **busy** (a handler runs): no read deadline here; the handler's own
//!   timeout and the body pace (the api's `pace`) bound it.
//!
//! And whatever the phase, a peer that leaves what we send it
//! unacknowledged (it vanished) or unread for `idle_timeout` is dropped by
//! the kernel (`TCP_USER_TIMEOUT`): a live stream's small heartbeats would
//! otherwise keep such a connection, and its slot, for many minutes.
//!
//! Connections past `max_connections`, or past `max_connections_per_client`
//! from one address, get a canned 503 with `Retry-After` and are closed at
//! once instead of queueing in the kernel's backlog.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use crate::config::HttpLimits;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::atomic::AtomicU64;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

mod clients;

pub use clients::ClientKey;
use clients::PerClient;

/// How long in-flight requests may finish after shutdown was asked for.
/// An orchestrator's stop grace (compose's `stop_grace_period`) must be
/// longer, or the drain is cut short by a SIGKILL.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Most a connection buffers of what the client sent (headers included).
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// What a connection over the cap is told before it is closed, built once:
/// it is sent most often when the server is busiest.
static OVER_CAPACITY: LazyLock<String> = LazyLock::new(|| {
    let body = r#"{"error":{"code":"overloaded","message":"the server is at capacity; retry in a second"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
});

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish for up to [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = Arc::new(PerClient::default());
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Our own head deadline starts at the first byte, not at idle.
        .header_read_timeout(None)
        // Hyper's read buffer grows to ~400 KB per connection by default;
        // with every connection uploading, that alone would be 400 MB.
        .max_buf_size(READ_BUFFER_BYTES)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, do not spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            static FULL: LogOnce = LogOnce::new();
            if FULL.due() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached; answering 503"
                );
            }
            tokio::spawn(refuse(stream));
            continue;
        };
        let client_slot = match limits.max_connections_per_client {
            0 => None,
            cap => match per_client.enter(peer.ip().into(), cap) {
                Some(client_slot) => Some(client_slot),
                None => {
                    static CLIENT_FULL: LogOnce = LogOnce::new();
                    if CLIENT_FULL.due() {
                        tracing::warn!(
                            %peer,
                            max_connections_per_client = cap,
                            "a client reached its connection limit; answering 503"
                        );
                    }
                    tokio::spawn(refuse(stream));
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // A peer that vanished (a phone that lost its network) never says
        // so: what we send it stays unacknowledged, and a quiet live stream
        // would hold its slot until TCP gives up, some 15 minutes later.
        // So does one that stops reading. Either is dropped once our data
        // has waited as long as an idle connection may.
        let _ = socket2::SockRef::from(&stream).set_tcp_user_timeout(Some(limits.idle_timeout));
        let phase = Arc::new(Phase(AtomicU8::new(Phase::FRESH)));
        let io = TokioIo::new(Watched::new(stream, phase.clone(), limits, peer));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            phase.set(Phase::BUSY);
            let phase = phase.clone();
            let response = router.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = response.await;
                phase.set(Phase::IDLE);
                response
            }
        });
        let connection = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            // Errors here are clients going away or being cut off on purpose.
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop((slot, client_slot));
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish in time; closing them");
    }
    Ok(())
}

/// Answers a connection over the cap with 503 and closes it, never waiting
/// long on a client that does not read.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(OVER_CAPACITY.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Where a connection is in its request cycle, shared by its IO and its
/// service.
#[derive(Default)]
struct Phase(AtomicU8);

impl Phase {
    const IDLE: u8 = 0;
    const HEAD: u8 = 1;
    const BUSY: u8 = 2;
    /// Connected, nothing received yet.
    const FRESH: u8 = 3;

    fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, phase: u8) {
        self.0.store(phase, Ordering::Relaxed);
    }
}

/// A TCP stream whose reads fail with `TimedOut` once the deadline of the
/// connection's phase has passed; hyper then closes the connection.
struct Watched {
    stream: TcpStream,
    phase: Arc<Phase>,
    limits: HttpLimits,
    peer: SocketAddr,
    /// Last read or write of at least one byte.
    last_activity: Instant,
    /// When the current request's head began (before the first byte: when
    /// the connection was made).
    head_started: Instant,
    /// The instant `deadline` is armed for, so it is reset only when the
    /// phase's deadline moves.
    timer_at: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(stream: TcpStream, phase: Arc<Phase>, limits: HttpLimits, peer: SocketAddr) -> Self {
        let now = Instant::now();
        Self {
            stream,
            phase,
            limits,
            peer,
            last_activity: now,
            head_started: now,
            deadline: Box::pin(tokio::time::sleep_until(now + limits.first_byte_timeout)),
            timer_at: now + limits.first_byte_timeout,
        }
    }

    /// The instant reads must have made progress by, in the current phase.
    fn read_deadline(&self) -> Option<(Instant, &'static str)> {
        match self.phase.get() {
            Phase::IDLE => Some((
                self.last_activity + self.limits.idle_timeout,
                "idle keep-alive connection closed",
            )),
            Phase::FRESH => Some((
                self.head_started + self.limits.first_byte_timeout,
                "no request within the first-byte timeout of connecting; connection closed",
            )),
            Phase::HEAD => Some((
                self.head_started + self.limits.header_timeout,
                "request headers not received in time; connection closed",
            )),
            _ => None,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    let now = Instant::now();
                    this.last_activity = now;
                    if matches!(this.phase.get(), Phase::IDLE | Phase::FRESH) {
                        this.phase.set(Phase::HEAD);
                        this.head_started = now;
                    }
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let reason = ready!(this.poll_deadline(cx));
                // A flood of slow clients is one line a second, not one per connection.
                static CUT: LogOnce = LogOnce::new();
                if CUT.due() {
                    tracing::info!(peer = %this.peer, "{reason}");
                }
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, reason)))
            }
        }
    }
}

impl Watched {
    /// Arms the timer for the current phase's deadline and registers the
    /// task's waker with it; `Ready` once the deadline has passed. Called
    /// after writes too: once a response is written hyper waits for the
    /// socket only, so the idle timer must already be armed to wake it.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<&'static str> {
        let Some((deadline, reason)) = self.read_deadline() else {
            return Poll::Pending;
        };
        if deadline != self.timer_at {
            self.deadline.as_mut().reset(deadline);
            self.timer_at = deadline;
        }
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(reason)
    }

    fn wrote(&mut self, cx: &mut Context<'_>, written: &io::Result<usize>) {
        if matches!(written, Ok(n) if *n > 0) {
            self.last_activity = Instant::now();
            // Only to register the waker; an expiry is reported by the next read.
            let _ = self.poll_deadline(cx);
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.stream).poll_write(cx, buf));
        self.wrote(cx, &written);
        Poll::Ready(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, bufs));
        self.wrote(cx, &written);
        Poll::Ready(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// True at most once a second: limits that refuse a flood log one line a
/// second, not one per request.
#[derive(Debug, Default)]
pub struct LogOnce(AtomicU64);

impl LogOnce {
    /// A limiter that has not logged yet.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Whether to log now.
    pub fn due(&self) -> bool {
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        self.0.swap(second, Ordering::Relaxed) != second
    }
}
