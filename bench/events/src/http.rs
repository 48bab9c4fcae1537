//! Just enough HTTP/1.1 over a raw `TcpStream` for the bench: one `GET`,
//! its head, then either a sized body (a keep-alive answer) or a chunked
//! one read as Server-Sent Events. A full client would add its own buffers
//! and tasks to what is measured on the bench's side, and hide when a
//! frame's bytes actually arrived.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How long a connection may take to answer a request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to the api, with what was read of it and not yet used.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// When the last read returned: the arrival time of what it completed.
    last_read: Instant,
}

/// A response's status line and the headers the bench needs.
pub struct Head {
    /// The status code.
    pub status: u16,
    /// `Content-Length`, when given.
    pub length: Option<usize>,
    /// Whether the body is `Transfer-Encoding: chunked`.
    pub chunked: bool,
}

impl Conn {
    /// Connects to `addr`, sends `GET path` (with `token` as a bearer, if
    /// any) and reads the response's head.
    pub async fn get(
        addr: SocketAddr,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(Self, Head)> {
        let stream = TcpStream::connect(addr)
            .await
            .context("cannot connect to the api")?;
        // The api sets nodelay on its side; ours sends one small request.
        stream.set_nodelay(true)?;
        let mut conn = Self {
            stream,
            buf: Vec::with_capacity(1024),
            last_read: Instant::now(),
        };
        let head = tokio::time::timeout(HEAD_TIMEOUT, conn.request(path, token))
            .await
            .context("no answer within 30 s")??;
        Ok((conn, head))
    }

    /// Sends another `GET` on this (keep-alive) connection and reads its head.
    pub async fn request(&mut self, path: &str, token: Option<&str>) -> anyhow::Result<Head> {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
        if let Some(token) = token {
            let _ = write!(request, "Authorization: Bearer {token}\r\n");
        }
        request.push_str("\r\n");
        self.stream.write_all(request.as_bytes()).await?;
        self.head().await
    }

    /// Reads more bytes; the connection ending is an error here.
    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0_u8; 16 * 1024];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("the api closed the connection");
        }
        self.last_read = Instant::now();
        self.buf.extend_from_slice(&chunk[..read]);
        Ok(())
    }

    async fn head(&mut self) -> anyhow::Result<Head> {
        let end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at;
            }
            self.fill().await?;
        };
        let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("not an HTTP answer: {text:?}"))?;
        let mut head = Head {
            status,
            length: None,
            chunked: false,
        };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        Ok(head)
    }

    /// Reads a body of `length` bytes.
    pub async fn body(&mut self, length: usize) -> anyhow::Result<Vec<u8>> {
        while self.buf.len() < length {
            self.fill().await?;
        }
        Ok(self.buf.drain(..length).collect())
    }

    /// The next chunk of a chunked body and when its last byte arrived;
    /// the last (empty) chunk is an error: the stream is never meant to end.
    pub async fn chunk(&mut self) -> anyhow::Result<(Vec<u8>, Instant)> {
        loop {
            if let Some(line) = find(&self.buf, b"\r\n") {
                let size_text = String::from_utf8_lossy(&self.buf[..line]).into_owned();
                let size_hex = size_text.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size_hex, 16)
                    .with_context(|| format!("not a chunk size: {size_text:?}"))?;
                if size == 0 {
                    bail!("the api ended the stream");
                }
                let start = line + 2;
                if self.buf.len() >= start + size + 2 {
                    let data = self.buf[start..start + size].to_vec();
                    self.buf.drain(..start + size + 2);
                    return Ok((data, self.last_read));
                }
            }
            self.fill().await?;
        }
    }
}

/// One Server-Sent Event.
pub struct Frame {
    /// Its `event:` name (`message` when it has none).
    pub event: String,
    /// Its `data:`, lines joined.
    pub data: String,
}

/// An open `GET /api/me/events`, read frame by frame.
pub struct Events {
    conn: Conn,
    text: String,
}

impl Events {
    /// Opens a stream for `token` and reads until its `ready` event.
    /// `Err` carries the status when the api refused it.
    pub async fn open(addr: SocketAddr, token: &str) -> anyhow::Result<Self> {
        let (mut conn, head) = Conn::get(addr, "/api/me/events", Some(token)).await?;
        if head.status != 200 {
            let body = match head.length {
                Some(length) => conn.body(length).await.unwrap_or_default(),
                None => Vec::new(),
            };
            bail!(
                "the api answered {}: {}",
                head.status,
                String::from_utf8_lossy(&body)
            );
        }
        if !head.chunked {
            bail!("the stream is not chunked");
        }
        let mut events = Self {
            conn,
            text: String::new(),
        };
        let ready = tokio::time::timeout(HEAD_TIMEOUT, async {
            loop {
                let (frames, _) = events.next().await?;
                if frames.iter().any(|frame| frame.event == "ready") {
                    return anyhow::Ok(());
                }
            }
        });
        ready.await.context("no ready event within 30 s")??;
        Ok(events)
    }

    /// The frames of the next chunk(s), and when they arrived; comments
    /// (the heartbeat) and `retry:` lines make no frame.
    pub async fn next(&mut self) -> anyhow::Result<(Vec<Frame>, Instant)> {
        loop {
            let (data, at) = self.conn.chunk().await?;
            self.text
                .push_str(std::str::from_utf8(&data).context("not UTF-8")?);
            let mut frames = Vec::new();
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut frame = Frame {
                    event: "message".to_owned(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        name.trim().clone_into(&mut frame.event);
                    } else if let Some(data) = line.strip_prefix("data:") {
                        if has_data {
                            frame.data.push('\n');
                        }
                        frame.data.push_str(data.strip_prefix(' ').unwrap_or(data));
                        has_data = true;
                    }
                }
                if has_data {
                    frames.push(frame);
                }
            }
            if !frames.is_empty() {
                return Ok((frames, at));
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
