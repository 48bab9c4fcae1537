//! Waiting for something to become true, with a deadline.

use std::time::Duration;

/// Polls `probe` every 20 ms until it yields `Some`, or panics with `what`
/// after `deadline`. Tests await conditions; they never sleep and hope.
pub async fn until<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out after {deadline:?} waiting for {what}"
        );
        // Polling: the probe is the only sign of the condition; ask again shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
