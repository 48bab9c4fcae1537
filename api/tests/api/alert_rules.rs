//! `deploy/prometheus/alerts.yml`: valid, firing on its conditions in
//! `promtool`'s own unit tests, and written over metrics that exist; and
//! the Grafana dashboard beside it, over the same metrics.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use testkit::TestApp;
use testkit::prometheus::Scrape;

const API: &str = env!("CARGO_BIN_EXE_api");
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus");

const GRAFANA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/grafana/acme-backend.json"
);

/// The workers' metrics the rules and the dashboard use (asserted by the
/// worker's own metrics test, `worker/tests/worker/metrics.rs`).
const WORKER_METRICS: [&str; 3] = [
    "jobs_completed_total",
    "jobs_failed_total",
    "job_duration_seconds",
];

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

/// The metric names in `expr`: the identifiers with an underscore that are
/// not functions (labels here have none), histogram series by their family.
fn metrics_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        let word_and_after = &rest[start..];
        let end = word_and_after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(word_and_after.len());
        let (word, after) = word_and_after.split_at(end);
        let function = after.trim_start().starts_with('(');
        if word.contains('_') && !word.starts_with('_') && !function {
            names.push(word.strip_suffix("_bucket").unwrap_or(word).to_owned());
        }
        rest = after;
    }
    names
}

/// The metrics every Grafana panel queries.
fn metrics_in_grafana() -> BTreeSet<String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(GRAFANA).expect("the dashboard"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6, "the main figures are there");
    panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets").iter())
        .flat_map(|target| metrics_in(target["expr"].as_str().expect("an expr")))
        .collect()
}

/// The metric names in the rules' expressions.
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
            names.extend(metrics_in(trimmed));
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
async fn every_metric_the_rules_and_the_dashboard_use_is_exported() {
    let rules = metrics_in_rules();
    assert!(rules.len() >= 6, "the rules were read: {rules:?}");
    let used: BTreeSet<String> = rules.union(&metrics_in_grafana()).cloned().collect();
    let app = TestApp::spawn_without_worker().await;
    let api = app.spawn_api_process(API).await;
    let url = format!("{}/metrics", api.address);
    // A request, so the request metrics exist.
    let health = app
        .client
        .get(format!("{}/healthz", api.address))
        .send()
        .await;
    assert_eq!(health.expect("answered").status(), 200);
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
