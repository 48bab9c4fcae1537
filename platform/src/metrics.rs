//! Prometheus metrics: one recorder per process, rendered by whoever serves
//! `/metrics` (the api on its own port, the worker on `WORKER_HTTP_PORT`).
//! Names follow Prometheus conventions: `_total` counters, `_seconds`
//! histograms, base units.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request latencies: 1 ms to 10 s.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Job durations: 10 ms to 5 min (the longest queue timeout is 60 s by default).
const JOB_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The process's recorder, installed on first use. Later calls (a test
/// starting a second app in the same process) share it.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Prefix("http_".into()), HTTP_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(Matcher::Prefix("job_".into()), JOB_BUCKETS)
                })
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if something installed a recorder before us; ours
            // then records nothing, and /metrics says so by being empty.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            let upkeep = handle.clone();
            // Histogram samples wait in buckets until drained: drain them
            // even if nobody scrapes, so memory stays flat.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .expect("a thread for metrics upkeep");
            handle
        })
        .clone()
}
