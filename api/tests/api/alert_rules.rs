//! `deploy/prometheus/alerts.yml`: valid, firing on its conditions in
//! `promtool`'s own unit tests, and written over metrics that exist.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use testkit::TestApp;
use testkit::prometheus::Scrape;

const API: &str = env!("CARGO_BIN_EXE_api");
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus");

/// The workers' counters the rules use (asserted by the worker's own
/// metrics test, `worker/tests/worker/metrics.rs`).
const WORKER_METRICS: [&str; 2] = ["jobs_completed_total", "jobs_failed_total"];

fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(RULES)
        .output()
        .expect("promtool is installed (Debian's prometheus package; scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// The metric names in the rules' expressions: the identifiers with an
/// underscore (labels and functions here have none).
fn metrics_in_rules() -> BTreeSet<String> {
    let rules = std::fs::read_to_string(Path::new(RULES).join("alerts.yml")).expect("the rules");
    let mut names = BTreeSet::new();
    let mut in_expr = false;
    for line in rules.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("expr:") {
            in_expr = true;
        } else if trimmed.starts_with("labels:") || trimmed.starts_with("- alert:") {
            in_expr = false;
        }
        if in_expr && !trimmed.starts_with('#') {
            names.extend(
                trimmed
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|word| word.contains('_'))
                    .map(str::to_owned),
            );
        }
    }
    names
}

#[test]
fn the_rules_are_valid_and_fire_on_each_condition_in_promtools_tests() {
    assert!(promtool(&["check", "rules", "alerts.yml"]).contains("SUCCESS: 6 rules found"));
    assert!(promtool(&["test", "rules", "alerts.test.yml"]).contains("SUCCESS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_use_is_exported() {
    let used = metrics_in_rules();
    assert!(used.len() >= 6, "the rules were read: {used:?}");
    let app = TestApp::spawn_without_worker().await;
    let api = app.spawn_api_process(API).await;
    let url = format!("{}/metrics", api.address);
    // The alert monitor's first measurement runs at start; the outbox is
    // the last figure it publishes.
    let (scrape, text) =
        testkit::wait::until("the first measurement", testkit::DEADLINE, || async {
            let (scrape, text) = Scrape::fetch(&app.client, &url).await;
            scrape
                .get("outbox_oldest_pending_seconds")
                .map(|_| (scrape, text))
        })
        .await;
    for name in &used {
        if WORKER_METRICS.contains(&name.as_str()) {
            continue;
        }
        assert!(
            scrape.kind(name).is_some(),
            "{name} is not exported:\n{text}"
        );
    }
    for name in WORKER_METRICS {
        assert!(
            used.contains(name),
            "{name} is no longer used: update WORKER_METRICS"
        );
    }
}
