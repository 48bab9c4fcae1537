//! `deploy/prometheus/alerts.yml`: valid, firing on its conditions (and
//! not before their `for:`) in `promtool`'s own unit tests, written over
//! metrics that exist, each alert linking its section of `docs/runbooks.md`;
//! the scrape configuration beside it (`prometheus.yml`: one target per
//! replica, the jobs the rules name), and the Grafana dashboard, over the
//! same metrics.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use testkit::TestApp;
use testkit::prometheus::Scrape;

const API: &str = env!("CARGO_BIN_EXE_api");
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus");

const RUNBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/runbooks.md");

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
    promtool_in(Path::new(RULES), args).expect("promtool succeeds")
}

/// Runs `promtool` in `dir`: what it printed, or why it failed.
fn promtool_in(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is installed (Debian's prometheus package; scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("promtool {args:?}:\n{text}"))
    }
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|error| panic!("{}: {error}", path.as_ref().display()))
}

/// One `- alert:` of the rules, as written: its name and its lines.
struct Rule {
    name: String,
    lines: Vec<String>,
}

/// Every alert in the rules, with the lines of its block.
fn rules() -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for line in read(Path::new(RULES).join("alerts.yml")).lines() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            rules.push(Rule {
                name: name.trim().to_owned(),
                lines: Vec::new(),
            });
        } else if trimmed.starts_with("- name:") {
            // A new group: no rule is open until its first `- alert:`.
            rules.push(Rule {
                name: String::new(),
                lines: Vec::new(),
            });
        } else if let Some(rule) = rules.last_mut() {
            rule.lines.push(trimmed.to_owned());
        }
    }
    rules.retain(|rule| !rule.name.is_empty());
    rules
}

/// The anchor GitHub gives a Markdown heading: lower case, punctuation
/// dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
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
        } else if ["labels:", "for:", "annotations:", "- alert:", "- name:"]
            .iter()
            .any(|key| trimmed.starts_with(key))
        {
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
    assert!(promtool(&["check", "rules", "alerts.yml"]).contains("SUCCESS: 10 rules found"));
    assert!(promtool(&["test", "rules", "alerts.test.yml"]).contains("SUCCESS"));
}

#[test]
fn every_alert_waits_out_a_blip_or_says_why_it_does_not() {
    let rules = rules();
    assert_eq!(rules.len(), 10, "the rules were read");
    for rule in &rules {
        let waits = rule.lines.iter().any(|line| line.starts_with("for:"));
        let says_why = rule
            .lines
            .iter()
            .any(|line| line.starts_with('#') && line.contains("No `for:`"));
        assert!(
            waits || says_why,
            "{} has no `for:` and no comment saying why",
            rule.name
        );
    }
}

#[test]
fn every_alert_links_its_runbook_section_and_every_section_has_its_alert() {
    let sections: BTreeSet<String> = read(RUNBOOKS)
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(anchor)
        .collect();
    let mut linked = BTreeSet::new();
    for rule in rules() {
        let links: Vec<&str> = rule
            .lines
            .iter()
            .filter_map(|line| line.strip_prefix("runbook_url:"))
            .map(str::trim)
            .collect();
        assert_eq!(links.len(), 1, "{} has one runbook_url", rule.name);
        let section = links[0]
            .strip_prefix("docs/runbooks.md#")
            .unwrap_or_else(|| panic!("{}: {} is not in docs/runbooks.md", rule.name, links[0]));
        assert!(
            sections.contains(section),
            "{}: no section #{section} in docs/runbooks.md (sections: {sections:?})",
            rule.name
        );
        assert_eq!(
            section,
            anchor(&rule.name),
            "{}: its own section",
            rule.name
        );
        linked.insert(section.to_owned());
    }
    assert_eq!(
        linked, sections,
        "every runbook section is some alert's, and every alert has one"
    );
}

/// The scrape configuration as an operator deploys it: `promtool check
/// config` reads the rules it names and the token file it sends, so both
/// sit beside it, as in compose.
#[test]
fn the_scrape_config_is_valid_and_scrapes_every_replica_of_the_jobs_the_rules_name() {
    let dir = std::env::temp_dir().join(format!("acme-prometheus-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("a temp folder");
    for file in ["prometheus.yml", "alerts.yml"] {
        std::fs::copy(Path::new(RULES).join(file), dir.join(file)).expect("copied");
    }
    // Without the token file Prometheus would scrape without the token:
    // the configuration must send it.
    let missing = promtool_in(&dir, &["check", "config", "prometheus.yml"]);
    std::fs::write(dir.join("metrics_token"), "a-metrics-token").expect("written");
    let checked = promtool_in(&dir, &["check", "config", "prometheus.yml"]);
    let _ = std::fs::remove_dir_all(&dir);
    let missing = missing.expect_err("the token file is required");
    assert!(missing.contains("metrics_token"), "{missing}");
    let checked = checked.expect("the configuration is valid");
    assert!(checked.contains("SUCCESS: 10 rules found"), "{checked}");

    let config = read(Path::new(RULES).join("prometheus.yml"));
    let config: Vec<&str> = config
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .collect();
    // One target per replica: discovered by DNS, never one static name
    // that reads a random replica each scrape.
    assert!(
        !config.iter().any(|line| line.contains("static_configs")),
        "no static targets"
    );
    let rules = read(Path::new(RULES).join("alerts.yml"));
    for (job, port) in [("api", "3000"), ("worker", "3001")] {
        assert!(
            rules.contains(&format!("up{{job=\"{job}\"}}")),
            "the rules watch job {job}"
        );
        let start = config
            .iter()
            .position(|line| *line == format!("- job_name: {job}"))
            .unwrap_or_else(|| panic!("a scrape job named {job}, as the rules name it"));
        let end = config[start + 1..]
            .iter()
            .position(|line| line.starts_with("- job_name:"))
            .map_or(config.len(), |next| start + 1 + next);
        let block = &config[start..end];
        for expected in [
            "credentials_file: metrics_token".to_owned(),
            "dns_sd_configs:".to_owned(),
            format!("- names: [{job}]"),
            "type: A".to_owned(),
            format!("port: {port}"),
        ] {
            assert!(
                block.contains(&expected.as_str()),
                "job {job} has {expected:?}: {block:?}"
            );
        }
    }
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

/// `used_memory` as Redis itself reports it now.
fn redis_used_memory(app: &TestApp) -> f64 {
    app.redis
        .cli(&["info", "memory"])
        .lines()
        .find_map(|line| line.trim().strip_prefix("used_memory:"))
        .and_then(|value| value.parse().ok())
        .expect("INFO memory has used_memory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_memory_gauges_follow_redis_and_its_maxmemory() {
    let app = TestApp::spawn_without_worker().await;
    // No limit, as Redis starts by default: published as 0, which the rule
    // leaves out rather than divide by.
    app.redis.cli(&["config", "set", "maxmemory", "0"]);
    let api = app
        .spawn_api_process_with(API, &[("ALERT_CHECK_INTERVAL_SECS", "1")])
        .await;
    let url = format!("{}/metrics", api.address);
    let scrape = |max: f64| {
        let (client, url) = (&app.client, &url);
        async move {
            let (scrape, _) = Scrape::fetch(client, url).await;
            let used = scrape.get("redis_memory_used_bytes")?;
            (scrape.get("redis_memory_max_bytes")? == max).then_some(used)
        }
    };
    let used = testkit::wait::until("the unlimited Redis measured", testkit::DEADLINE, || {
        scrape(0.0)
    })
    .await;
    let redis_says = redis_used_memory(&app);
    // Redis' own figure moves a little between the two readings.
    assert!(
        used > redis_says / 2.0 && used < redis_says * 2.0,
        "published {used}, Redis says {redis_says}"
    );

    // A limit set live shows within a few measurements (one a second here).
    app.redis.cli(&["config", "set", "maxmemory", "64mb"]);
    let used = testkit::wait::until("the new maxmemory measured", testkit::DEADLINE, || {
        scrape(64.0 * 1024.0 * 1024.0)
    })
    .await;
    assert!(used > 0.0 && used < 64.0 * 1024.0 * 1024.0, "{used}");
}
