//! The conventions `docs/conventions.md` states, checked against the code,
//! so a convention that stops being true fails the build instead of
//! misleading the next reader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each table and the one module that writes it: a file, or a folder
/// (ending in `/`) whose files each hold one concept of the table.
const OWNERS: &[(&str, &str)] = &[
    ("jobs", "store/src/records.rs"),
    ("users", "store/src/users/"),
    ("api_tokens", "store/src/tokens.rs"),
    ("trusted_devices", "store/src/devices.rs"),
    ("password_resets", "store/src/resets.rs"),
    ("email_verifications", "store/src/verifications.rs"),
    ("mail_budgets", "store/src/mail_budgets.rs"),
    ("photos", "store/src/photos.rs"),
    ("stripe_events", "store/src/stripe_events.rs"),
    ("subscriptions", "store/src/subscriptions.rs"),
    ("incidents", "api/src/owners/incidents.rs"),
    ("admin_sessions", "api/src/owners/admin.rs"),
    ("admin_audit", "api/src/owners/admin.rs"),
    // One writer, one table: its SQL stays next to its only caller.
    ("maintenance_runs", "worker/src/jobs/maintenance.rs"),
];

/// Where the queue engine's crate may be named: the producer and operator
/// side in the `queue` crate, the consumer side in the worker's runtime.
const BULLMQ_ALLOWED: &[&str] = &[
    "queue/src/",
    "queue/src/dead_letters.rs",
    "worker/src/queue_options.rs",
    "worker/src/runtime/",
    // A job's handle, so handlers report progress to BullMQ's own tools.
    "worker/src/jobs/mod.rs",
];

/// A source file longer than this is usually several things.
const MAX_LINES: usize = 400;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

/// Every `.rs` file under the crates' `src/` folders, by workspace path.
fn sources() -> BTreeMap<String, String> {
    let root = root();
    let mut files = BTreeMap::new();
    for krate in [
        "api",
        "worker",
        "catalogue",
        "platform",
        "store",
        "queue",
        "storage",
        "media",
        "imaging",
        "testkit",
    ] {
        collect(&root, &root.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 50, "found the sources: {}", files.len());
    files
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let name = path.strip_prefix(root).expect("under the root");
            let text = std::fs::read_to_string(&path).expect("readable");
            files.insert(name.display().to_string(), text);
        }
    }
}

/// The tables `sql` writes (`insert into t`, `update t set`, `delete from t`).
fn written_tables(sql: &str) -> Vec<String> {
    let words: Vec<String> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut tables = Vec::new();
    for window in words.windows(3) {
        match [window[0].as_str(), window[1].as_str(), window[2].as_str()] {
            ["insert", "into", table] | ["delete", "from", table] => tables.push(table.to_owned()),
            ["update", table, "set"] => tables.push(table.to_owned()),
            _ => {}
        }
    }
    tables
}

#[test]
fn every_table_is_written_only_by_its_owner_module() {
    let mut strays = Vec::new();
    for (file, text) in sources() {
        for table in written_tables(&text) {
            let Some((_, owner)) = OWNERS.iter().find(|(name, _)| *name == table) else {
                continue;
            };
            if file != *owner && !(owner.ends_with('/') && file.starts_with(owner)) {
                strays.push(format!("{file} writes `{table}`, owned by {owner}"));
            }
        }
    }
    assert!(strays.is_empty(), "{strays:#?}");
}

#[test]
fn the_queue_engine_is_named_only_behind_the_queue_layer() {
    let strays: Vec<String> = sources()
        .into_iter()
        .filter(|(file, text)| {
            (text.contains("bullmq::") || text.contains("use bullmq"))
                && !BULLMQ_ALLOWED
                    .iter()
                    .any(|allowed| file.starts_with(allowed))
        })
        .map(|(file, _)| file)
        .collect();
    assert!(strays.is_empty(), "{strays:#?}");
}

#[test]
fn no_source_file_is_over_four_hundred_lines() {
    let long: Vec<String> = sources()
        .into_iter()
        .map(|(file, text)| (file, text.lines().count()))
        .filter(|(_, lines)| *lines > MAX_LINES)
        .map(|(file, lines)| format!("{file}: {lines} lines"))
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

#[test]
fn the_writes_of_a_query_are_found_whatever_its_layout() {
    assert_eq!(
        written_tables("UPDATE users\n   SET name = $1; delete from  photos p where"),
        ["users", "photos"]
    );
    assert!(written_tables("select * from users; update the user").is_empty());
}

/// The crates from the bottom up: a crate may depend only on crates of a
/// lower layer, so dependencies point one way (tests and benches aside).
const LAYERS: &[&[&str]] = &[
    &["catalogue", "media"],
    &["platform", "imaging"],
    &["store", "storage"],
    &["queue"],
    &["api", "worker"],
    &["testkit"],
];

/// Each workspace crate and the workspace crates it depends on (normal
/// dependencies only), as `cargo metadata` reports them.
fn crate_graph() -> BTreeMap<String, Vec<String>> {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{output:?}");
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let ours: Vec<&str> = packages
        .iter()
        .filter_map(|package| package["name"].as_str())
        .collect();
    packages
        .iter()
        .filter(|package| {
            LAYERS
                .iter()
                .flat_map(|layer| layer.iter())
                .any(|name| package["name"] == *name)
        })
        .map(|package| {
            let mut deps: Vec<String> = package["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|dep| dep["kind"].is_null())
                .filter_map(|dep| dep["name"].as_str())
                .filter(|name| ours.contains(name))
                .map(str::to_owned)
                .collect();
            deps.sort();
            deps.dedup();
            (package["name"].as_str().expect("a name").to_owned(), deps)
        })
        .collect()
}

/// The picture `docs/crates.md` shows, drawn from the graph.
fn mermaid(graph: &BTreeMap<String, Vec<String>>) -> String {
    let mut text = String::from("```mermaid\nflowchart TD\n");
    for (krate, deps) in graph {
        for dep in deps {
            text.push_str(&format!("    {krate} --> {dep}\n"));
        }
    }
    text.push_str("```\n");
    text
}

#[test]
fn dependencies_between_crates_point_down_the_layers_as_drawn_in_the_docs() {
    let graph = crate_graph();
    let layer_of = |name: &str| LAYERS.iter().position(|layer| layer.contains(&name));
    let unplaced: Vec<&String> = graph
        .keys()
        .filter(|name| layer_of(name).is_none())
        .collect();
    assert!(unplaced.is_empty(), "crates in no layer: {unplaced:?}");
    let upward: Vec<String> = graph
        .iter()
        .flat_map(|(krate, deps)| deps.iter().map(move |dep| (krate, dep)))
        .filter(|(krate, dep)| layer_of(dep) >= layer_of(krate))
        .map(|(krate, dep)| format!("{krate} -> {dep}"))
        .collect();
    assert!(
        upward.is_empty(),
        "dependencies that do not point down: {upward:?}"
    );

    let picture = mermaid(&graph);
    let docs = std::fs::read_to_string(root().join("docs/crates.md")).expect("docs/crates.md");
    assert!(
        docs.contains(&picture),
        "docs/crates.md no longer shows the crates as they are; its picture should read:\n{picture}"
    );
}
