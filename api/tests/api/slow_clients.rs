//! Clients that are slow on purpose: trickled headers, parked keep-alive
//! connections, stalled bodies, and more connections than we take.

use std::time::Duration;

use testkit::TestApp;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::raw;

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.server.http.header_timeout = Duration::from_secs(1)
    })
    .await;
    let mut stream = raw::connect(&app).await;
    let head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

    // One byte every 100 ms: the head would take 8 s to arrive whole.
    let mut cut_after = None;
    for (sent, byte) in head.iter().enumerate() {
        if stream.write_all(&[*byte]).await.is_err() || raw::closed_within(&mut stream, 100).await {
            cut_after = Some(sent);
            break;
        }
    }

    let sent = cut_after.expect("the server closed the connection before the head was complete");
    assert!(sent < head.len() - 1, "cut off after {sent} bytes");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.server.http.idle_timeout = Duration::from_secs(1)
    })
    .await;
    let mut stream = raw::connect(&app).await;

    let response = raw::request(&mut stream, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    assert!(
        raw::closed_within(&mut stream, 10_000).await,
        "the idle connection was closed"
    );
}

#[tokio::test]
async fn a_new_connection_that_sends_nothing_is_closed_after_the_first_byte_timeout() {
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.server.http.header_timeout = Duration::from_secs(1);
        s.server.http.first_byte_timeout = Duration::from_secs(4);
        s.server.http.idle_timeout = Duration::from_secs(300);
    })
    .await;
    let mut stream = raw::connect(&app).await;

    // Longer than the header timeout: a preconnect is not a slow request.
    assert!(
        !raw::closed_within(&mut stream, 2_500).await,
        "a connection with no request yet is not cut at the header timeout"
    );
    // Far shorter than the idle timeout: silence does not hold a slot.
    assert!(
        raw::closed_within(&mut stream, 10_000).await,
        "the silent connection was closed at the first-byte timeout"
    );
}

/// `count` open connections, each with a request answered, so the server
/// has counted every one.
async fn hold_connections(app: &TestApp, count: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..count {
        let mut stream = raw::connect(app).await;
        let response = raw::request(&mut stream, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        held.push(stream);
    }
    held
}

#[tokio::test]
async fn a_client_past_its_connection_cap_gets_a_quick_503_and_others_are_served() {
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.server.http.max_connections_per_client = 4;
    })
    .await;
    let _held = hold_connections(&app, 4).await;

    let mut extra = raw::connect(&app).await;
    let refused = raw::read_to_close(&mut extra).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");

    // Another address (all of 127/8 is this machine) is not held up.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().expect("address"))
        .expect("bind 127.0.0.2");
    let address = app.address.trim_start_matches("http://");
    let mut other = socket
        .connect(address.parse().expect("address"))
        .await
        .expect("connects");
    let served = raw::request(&mut other, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
}

#[tokio::test]
async fn connections_past_the_cap_get_a_quick_503_with_retry_after() {
    let app = TestApp::spawn_without_worker_with(move |s| s.server.http.max_connections = 4).await;
    let mut held = hold_connections(&app, 4).await;

    let mut extra = raw::connect(&app).await;
    let refused = raw::read_to_close(&mut extra).await;

    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    assert!(refused.contains(r#""code":"overloaded""#), "{refused}");

    drop(held.pop());
    testkit::wait::until(
        "a freed slot to take a new connection",
        Duration::from_secs(10),
        || async {
            let mut stream = raw::connect(&app).await;
            let answer =
                raw::request(&mut stream, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
            answer.starts_with("HTTP/1.1 200").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn hundreds_of_slow_clients_do_not_stop_a_normal_request() {
    let app = TestApp::spawn_without_worker().await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = raw::connect(&app).await;
        stream
            .write_all(b"POST /api/signup HTTP/1.1\r\nhost: x\r\n")
            .await
            .expect("the server takes the first bytes");
        slow.push(stream);
    }

    let health = app.get("/healthz", None).await;
    let signup = app.sign_up("busy@example.com", "Busy").await;

    assert_eq!(health.status(), 200);
    assert_eq!(signup["user"]["email"], "busy@example.com");
    drop(slow);
}

#[tokio::test]
async fn a_json_body_that_stalls_is_answered_408() {
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.server.http.body_window = Duration::from_secs(1)
    })
    .await;
    let mut stream: TcpStream = raw::connect(&app).await;
    stream
        .write_all(
            b"POST /api/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 60\r\n\r\n{\"email\": \"a@example.com\",",
        )
        .await
        .expect("sent");

    let answer = raw::read_to_close(&mut stream).await;

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
}
