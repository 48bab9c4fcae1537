//! A reader of `GET /api/me/events`: the Server-Sent Events frames as a
//! browser's `EventSource` would parse them, comments and `retry:` kept
//! too, so tests can see heartbeats and the reconnect hint.

use std::time::Duration;

use serde_json::Value;

/// One frame of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// An event: its `id:`, its name and its data parsed as JSON.
    Event {
        /// The `id:` line.
        id: String,
        /// The `event:` line.
        name: String,
        /// The `data:` line, as JSON.
        data: Value,
    },
    /// A `retry:` hint, in milliseconds.
    Retry(u64),
    /// A `:` comment (the heartbeat).
    Comment(String),
}

/// An open stream.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
    ended: bool,
}

impl EventStream {
    /// Opens `address`'s stream as `token`, resuming after `last_event_id`;
    /// `Err` with the answer when it is not a 200.
    pub async fn open(
        client: &reqwest::Client,
        address: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Result<Self, reqwest::Response> {
        let mut request = client
            .get(format!("{address}/api/me/events"))
            .bearer_auth(token)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the api answers");
        if response.status() != 200 {
            return Err(response);
        }
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "a stream is text/event-stream"
        );
        Ok(Self {
            response,
            buffer: String::new(),
            ended: false,
        })
    }

    /// The next frame within `patience`: `Ok(None)` once the server ended
    /// the stream, `Err(())` when nothing came in time.
    pub async fn next_within(&mut self, patience: Duration) -> Result<Option<Frame>, ()> {
        tokio::time::timeout(patience, self.next())
            .await
            .map_err(|_| ())
    }

    /// The next frame; `None` once the server ended the stream.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(frame) = parse(block.trim_end()) {
                    return Some(frame);
                }
                continue;
            }
            if self.ended {
                return None;
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self
                    .buffer
                    .push_str(std::str::from_utf8(&chunk).expect("the stream is UTF-8")),
                // A cut connection is an end too, as a browser sees it.
                Ok(None) | Err(_) => self.ended = true,
            }
        }
    }

    /// The next event (skipping comments and hints) as id, name and data;
    /// panics when the stream ends first.
    pub async fn next_event(&mut self) -> (String, String, Value) {
        loop {
            match self.next().await {
                Some(Frame::Event { id, name, data }) => return (id, name, data),
                Some(_) => {}
                None => panic!("the stream ended while an event was awaited"),
            }
        }
    }
}

/// One frame's lines; `None` for a block with nothing we know.
fn parse(block: &str) -> Option<Frame> {
    if let Some(comment) = block.strip_prefix(':') {
        return Some(Frame::Comment(comment.trim().to_owned()));
    }
    let (mut id, mut name, mut data) = (None, None, None);
    let mut retry = None;
    for line in block.lines() {
        let (field, value) = line.split_once(": ").unwrap_or((line, ""));
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => name = Some(value.to_owned()),
            "data" => data = Some(value.to_owned()),
            "retry" => retry = value.parse().ok(),
            _ => panic!("an unknown line in a frame: {line:?}"),
        }
    }
    match (id, name, data) {
        (Some(id), Some(name), Some(data)) => Some(Frame::Event {
            id,
            name,
            data: serde_json::from_str(&data).expect("an event's data is JSON"),
        }),
        (None, None, None) => retry.map(Frame::Retry),
        other => panic!("an incomplete event: {other:?}"),
    }
}
