//! One stream: what it starts with (a `ready`, a replay or a `reset`),
//! then the hub's events as Server-Sent Events frames, each job's never
//! older than the last sent of it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use axum::body::{Body, Bytes};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Event, JobEvent, REPLAY_MAX, REPLAY_WINDOW, Registration};
use crate::error::ApiError;
use crate::routes::jobs::JobStatus;
use crate::routes::me::MeResponse;
use crate::state::AppState;

/// How far before a reconnect's cursor the replay starts: a record whose
/// transaction began earlier (its `updated_at`) may commit after one the
/// client has already seen. Replayed twice is harmless (each event is the
/// job's whole current status); missed is not.
const REPLAY_OVERLAP: Duration = Duration::from_secs(10);

/// Versions remembered per stream to keep each job's events in order; past
/// it the memory starts over (only a replay racing live events needs it).
const REMEMBERED_JOBS: usize = 512;

/// How a client's reconnect begins, from its `Last-Event-ID`.
pub enum Start {
    /// A first connection: nothing to replay.
    Fresh,
    /// Resume after the client's cursor.
    After(DateTime<Utc>),
    /// The cursor is too old, from the future or not ours: the client
    /// must refetch what it shows.
    Reset(&'static str),
}

impl Start {
    /// Reads `Last-Event-ID` as this api writes it (microseconds since 1970).
    pub fn from_last_event_id(header: Option<&str>, now: DateTime<Utc>) -> Self {
        let Some(raw) = header.map(str::trim) else {
            return Self::Fresh;
        };
        let Some(cursor) = raw
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
        else {
            return Self::Reset("the last event id is not one this api gave");
        };
        let window = chrono::Duration::from_std(REPLAY_WINDOW).unwrap_or(chrono::Duration::MAX);
        if cursor > now + chrono::Duration::seconds(60) {
            Self::Reset("the last event id is from the future")
        } else if cursor < now - window {
            Self::Reset("the last event id is too old to replay")
        } else {
            Self::After(cursor)
        }
    }
}

/// The body of a stream registered as `registration`: its opening frames
/// (read now, after registering, so nothing committed meanwhile is missed),
/// then the hub's events until the hub or the client ends it. `now` is
/// the database's time, read after registering: the fresh cursor.
pub async fn open(
    state: &AppState,
    user: Uuid,
    start: Start,
    now: DateTime<Utc>,
    registration: Registration,
) -> Result<Body, ApiError> {
    let mut stream = Stream {
        registration,
        cursor: now.timestamp_micros(),
        sent: HashMap::new(),
        out: String::new(),
        ended: false,
    };
    // The client's reconnection delay, unless a closing stream says otherwise.
    stream.out.push_str("retry: 2000\n\n");
    match start {
        Start::Fresh => stream.frame("ready", "{}"),
        Start::Reset(reason) => stream.reset(reason),
        Start::After(cursor) => {
            let since = cursor - chrono::Duration::from_std(REPLAY_OVERLAP).unwrap_or_default();
            let changed = JobStatus::load_since(&state.pool, user, since, REPLAY_MAX + 1).await?;
            if changed.len() as i64 > REPLAY_MAX {
                stream.reset("more changed than a replay sends");
            } else {
                stream.cursor = stream.cursor.max(cursor.timestamp_micros());
                for job in changed {
                    let data = serde_json::to_string(&job.status)
                        .map_err(|error| anyhow::anyhow!("cannot serialise a job: {error}"))?;
                    stream.job(&JobEvent {
                        id: job.status.id(),
                        version: job.version,
                        data,
                    });
                }
                // The profile is sent whole each time: what changed in it
                // meanwhile is not recorded, and it is one small read.
                if let Some(me) = MeResponse::load(state, user).await? {
                    let data = serde_json::to_string(&me)
                        .map_err(|error| anyhow::anyhow!("cannot serialise a profile: {error}"))?;
                    stream.frame("account", &data);
                }
                stream.frame("ready", "{}");
            }
        }
    }
    let first = Bytes::from(std::mem::take(&mut stream.out));
    let rest = futures::stream::unfold(stream, |mut stream| async move {
        let frame = stream.next().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), stream))
    });
    let opening = futures::stream::iter([Ok(first)]);
    Ok(Body::from_stream(futures::StreamExt::chain(opening, rest)))
}

/// A stream's state between frames.
struct Stream {
    registration: Registration,
    /// The latest record version sent: every frame's `id:`.
    cursor: i64,
    /// The version last sent of each job.
    sent: HashMap<Uuid, i64>,
    /// Frames written, not yet handed to the connection.
    out: String,
    ended: bool,
}

impl Stream {
    /// The next frames to write; `None` once the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        while self.out.is_empty() {
            if self.ended {
                return None;
            }
            let Some(event) = self.registration.events.recv().await else {
                // Dropped by the hub (too far behind, or revoked).
                self.ended = true;
                continue;
            };
            self.take(event);
            // What else is already queued goes out in the same write.
            while !self.ended
                && let Ok(event) = self.registration.events.try_recv()
            {
                self.take(event);
            }
        }
        Some(Bytes::from(std::mem::take(&mut self.out)))
    }

    fn take(&mut self, event: Event) {
        match event {
            Event::Job(job) => self.job(&job),
            Event::Account(data) => self.frame("account", &data),
            Event::Heartbeat => self.out.push_str(": keep-alive\n\n"),
            Event::End(retry) => {
                if let Some(ms) = retry {
                    let _ = write!(self.out, "retry: {ms}\n\n");
                }
                self.ended = true;
            }
        }
    }

    /// Writes a job's event, unless this stream already sent it or a newer
    /// version of it.
    fn job(&mut self, job: &JobEvent) {
        if self
            .sent
            .get(&job.id)
            .is_some_and(|sent| *sent >= job.version)
        {
            return;
        }
        if self.sent.len() >= REMEMBERED_JOBS {
            self.sent.clear();
        }
        self.sent.insert(job.id, job.version);
        self.cursor = self.cursor.max(job.version);
        self.frame("job", &job.data);
    }

    fn reset(&mut self, reason: &str) {
        let data = serde_json::json!({ "reason": reason }).to_string();
        self.frame("reset", &data);
    }

    /// One event: its cursor, its name and its one-line JSON.
    fn frame(&mut self, event: &str, data: &str) {
        let _ = write!(
            self.out,
            "id: {}\nevent: {event}\ndata: {data}\n\n",
            self.cursor
        );
    }
}
