//! Raw TCP clients, for behaviour an HTTP library hides: trickled bytes,
//! stalled bodies, connections held open or dropped halfway.

use std::time::Duration;

use testkit::TestApp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A new connection to the app's api.
pub async fn connect(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    TcpStream::connect(address)
        .await
        .expect("the api accepts connections")
}

/// Sends `request` (a whole HTTP/1.1 request) and reads one response: its
/// head and as much body as its `content-length` says.
pub async fn request(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut received = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text;
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the api answers within 10 s")
            .unwrap_or(0);
        if read == 0 {
            return String::from_utf8_lossy(&received).into_owned();
        }
        received.extend_from_slice(&chunk[..read]);
    }
}

/// Whether the server closes the connection within `millis` (whatever it
/// sends before closing is read and dropped).
pub async fn closed_within(stream: &mut TcpStream, millis: u64) -> bool {
    let mut chunk = [0_u8; 4096];
    tokio::time::timeout(Duration::from_millis(millis), async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Everything the server sends until it closes the connection (10 s at most).
pub async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0_u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&received).into_owned()
}
