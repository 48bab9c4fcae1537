//! The `healthcheck` command of both binaries: a container's probe of its
//! own process (`api healthcheck`, `worker healthcheck`), so the image needs
//! no curl and each role probes the port it serves.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest a probe waits, connecting and answering together: below the
/// orchestrators' usual 3 s health-check timeout, so ours reports first.
const TIMEOUT: Duration = Duration::from_millis(2500);

/// The address to probe a server bound to `host` at: the loopback when it
/// listens on every interface (or the host is unset), else `host` itself.
pub fn local_address(host: &str) -> &str {
    match host.trim() {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        host => host,
    }
}

/// Asks `http://<host>:<port><path>` and succeeds on a 200 answer only
/// (so a draining worker's 503 is unhealthy); the error says what it saw.
pub async fn probe(host: &str, port: u16, path: &str) -> anyhow::Result<()> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let url = if host.contains(':') {
        format!("http://[{host}]:{port}{path}")
    } else {
        format!("http://{host}:{port}{path}")
    };
    let status_line = tokio::time::timeout(TIMEOUT, async {
        let mut stream = TcpStream::connect((host, port))
            .await
            .with_context(|| format!("nothing answers at {url}"))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        // The status line is all we need; it fits in the first read or two.
        let mut head = Vec::with_capacity(256);
        let mut buffer = [0_u8; 256];
        while !head.contains(&b'\n') && head.len() < 4096 {
            let read = stream.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        let head = String::from_utf8_lossy(&head);
        anyhow::Ok(head.lines().next().unwrap_or_default().trim().to_owned())
    })
    .await
    .with_context(|| format!("{url} did not answer within {TIMEOUT:?}"))??;
    let mut parts = status_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some("200")) if version.starts_with("HTTP/1.") => Ok(()),
        _ if status_line.is_empty() => bail!("{url} closed the connection without answering"),
        _ => bail!("{url} answered `{status_line}`"),
    }
}

/// Runs [`probe`] for a binary's `healthcheck` command: prints what it
/// found (Docker keeps it in the container's health log) and returns the
/// exit code, 0 healthy and 1 not.
pub async fn command(host: &str, port: u16, path: &str) -> std::process::ExitCode {
    match probe(local_address(host), port, path).await {
        Ok(()) => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stdout().lock(),
                "healthy: port {port} answered {path} with 200"
            );
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("unhealthy: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A one-shot server on a free loopback port answering `answer` to the
    /// first request.
    async fn answering(answer: &'static str) -> u16 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = [0_u8; 1024];
            let _ = stream.read(&mut request).await;
            let _ = stream.write_all(answer.as_bytes()).await;
        });
        port
    }

    #[tokio::test]
    async fn only_a_200_answer_is_healthy() {
        let ok = answering("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        probe("127.0.0.1", ok, "/healthz").await.expect("healthy");
        let draining = answering("HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        let error = probe("127.0.0.1", draining, "/healthz")
            .await
            .expect_err("a 503 is unhealthy");
        assert!(error.to_string().contains("503"), "{error}");
        let silent = answering("").await;
        assert!(probe("127.0.0.1", silent, "/healthz").await.is_err());
    }

    #[tokio::test]
    async fn a_port_nobody_serves_is_unhealthy() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        let error = probe("127.0.0.1", port, "/healthz")
            .await
            .expect_err("unhealthy");
        assert!(error.to_string().contains("nothing answers"), "{error:#}");
    }

    #[test]
    fn a_server_on_every_interface_is_probed_on_the_loopback() {
        assert_eq!(local_address("0.0.0.0"), "127.0.0.1");
        assert_eq!(local_address(""), "127.0.0.1");
        assert_eq!(local_address("::"), "::1");
        assert_eq!(local_address("10.0.0.5"), "10.0.0.5");
    }
}
