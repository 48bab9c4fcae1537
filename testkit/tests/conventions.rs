//! The conventions `docs/conventions.md` states, checked against the code,
//! so a convention that stops being true fails the build instead of
//! misleading the next reader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each table and the one module that writes it: a file, or a folder
/// (ending in `/`) whose files each hold one concept of the table.
const OWNERS: &[(&str, &str)] = &[
    ("jobs", "store/src/records/"),
    ("users", "store/src/users/"),
    ("api_tokens", "store/src/tokens.rs"),
    ("trusted_devices", "store/src/devices.rs"),
    ("password_resets", "store/src/resets.rs"),
    ("email_verifications", "store/src/verifications.rs"),
    ("mail_budgets", "store/src/mail_budgets.rs"),
    ("photos", "store/src/photos/"),
    ("stripe_events", "store/src/stripe_events.rs"),
    ("subscriptions", "store/src/subscriptions.rs"),
    ("incidents", "api/src/owners/incidents.rs"),
    ("admin_sessions", "api/src/owners/admin.rs"),
    ("admin_audit", "api/src/owners/admin.rs"),
    // One writer, one table: its SQL stays next to its only caller.
    ("maintenance_runs", "worker/src/jobs/maintenance.rs"),
];

/// Owners whose state tests are not where [`state_tests_of`] looks: the
/// owner file and its test file.
const STATE_TESTS_ELSEWHERE: &[(&str, &str)] = &[
    // Its only writer is the maintenance job, run for real by the worker's
    // tests rather than called on its own.
    (
        "worker/src/jobs/maintenance.rs",
        "worker/tests/worker/maintenance.rs",
    ),
];

/// Tables the tools make, which no module of ours writes.
const UNOWNED_TABLES: &[&str] = &["_sqlx_migrations"];

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

/// The words of `sql`, lower case, its punctuation dropped: a statement
/// reads the same whatever its layout.
fn sql_words(sql: &str) -> Vec<String> {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The tables `sql` writes (`insert into t`, `update t set`, `delete from t`).
fn written_tables(sql: &str) -> Vec<String> {
    let words = sql_words(sql);
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

/// The tables `sql` creates (`create table [if not exists] t`).
fn created_tables(sql: &str) -> Vec<String> {
    let words = sql_words(sql);
    let mut tables = Vec::new();
    for (at, pair) in words.windows(2).enumerate() {
        if pair != ["create", "table"] {
            continue;
        }
        let rest = &words[at + 2..];
        let name = match rest {
            [first, second, third, name, ..]
                if [first, second, third].map(String::as_str) == ["if", "not", "exists"] =>
            {
                name
            }
            [name, ..] => name,
            [] => continue,
        };
        tables.push(name.clone());
    }
    tables
}

/// Every table the migrations create, with the migration that does.
fn migrated_tables() -> Vec<(String, String)> {
    let mut tables = Vec::new();
    for entry in std::fs::read_dir(root().join("migrations")).expect("the migrations") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|ext| ext == "sql") {
            let sql = std::fs::read_to_string(&path).expect("readable");
            let file = path.file_name().expect("a name").to_string_lossy();
            for table in created_tables(&sql) {
                tables.push((table, file.clone().into_owned()));
            }
        }
    }
    assert!(tables.len() > 10, "found the tables: {tables:?}");
    tables
}

/// Where the state tests of the owner file `owner` live: a store owner's
/// beside the others in `store/tests/owners/`, an api-only owner's in the
/// api's test binary under `owners/` (they need the api's crate, not an app).
fn state_tests_of(owner: &str) -> Option<String> {
    if let Some((_, tests)) = STATE_TESTS_ELSEWHERE
        .iter()
        .find(|(file, _)| *file == owner)
    {
        return Some((*tests).to_owned());
    }
    // An owner folder (`store/src/users/`) is tested in one file of its name.
    let owner = owner
        .strip_suffix('/')
        .map_or_else(|| owner.to_owned(), |folder| format!("{folder}.rs"));
    if let Some(name) = owner.strip_prefix("store/src/") {
        return Some(format!("store/tests/owners/{name}"));
    }
    owner
        .strip_prefix("api/src/owners/")
        .map(|name| format!("api/tests/api/owners/{name}"))
}

/// Whether the test file `file` (a workspace path) is compiled: a test
/// binary's root, or declared by `mod` in a file that is.
fn is_compiled(file: &Path) -> bool {
    let folder = file.parent().expect("a folder");
    let stem = file.file_stem().expect("a name").to_string_lossy();
    if folder.ends_with("tests") || stem == "main" {
        return true;
    }
    // `a/b.rs` is declared in `a/main.rs`, `a/mod.rs` or `a.rs`; `a/mod.rs`
    // as `a`, one folder up.
    let (name, declaring) = if stem == "mod" {
        let name = folder.file_name().expect("a name").to_string_lossy();
        (name, folder.parent().expect("a folder"))
    } else {
        (stem, folder)
    };
    let declaration = format!("mod {name};");
    [
        declaring.join("main.rs"),
        declaring.join("mod.rs"),
        declaring.with_extension("rs"),
    ]
    .iter()
    .any(|parent| {
        std::fs::read_to_string(root().join(parent))
            .is_ok_and(|text| text.lines().any(|line| line.trim() == declaration))
            && is_compiled(parent)
    })
}

#[test]
fn every_table_the_migrations_create_has_an_owner() {
    let unowned: Vec<String> = migrated_tables()
        .into_iter()
        .filter(|(table, _)| {
            !UNOWNED_TABLES.contains(&table.as_str())
                && !OWNERS.iter().any(|(owned, _)| owned == table)
        })
        .map(|(table, migration)| {
            format!("`{table}` (created by {migration}) has no owner in OWNERS")
        })
        .collect();
    assert!(unowned.is_empty(), "{unowned:#?}");
}

#[test]
fn every_owner_has_its_own_state_tests() {
    let mut missing = Vec::new();
    for (table, owner) in OWNERS {
        assert!(
            root().join(owner).exists(),
            "the owner of `{table}`, {owner}, exists"
        );
        let Some(tests) = state_tests_of(owner) else {
            missing.push(format!(
                "{owner}: no place for its state tests (STATE_TESTS_ELSEWHERE)"
            ));
            continue;
        };
        let text = std::fs::read_to_string(root().join(&tests)).unwrap_or_default();
        if !text.contains("#[tokio::test") && !text.contains("#[test]") {
            missing.push(format!("{owner} (`{table}`): no tests in {tests}"));
        } else if !is_compiled(Path::new(&tests)) {
            missing.push(format!(
                "{owner} (`{table}`): {tests} is not declared by `mod`"
            ));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

/// Every `.rs` file of the tests (each crate's `tests/`) and of `testkit`.
fn test_sources() -> BTreeMap<String, String> {
    let root = root();
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&root).expect("the workspace") {
        let tests = entry.expect("an entry").path().join("tests");
        if tests.is_dir() {
            collect(&root, &tests, &mut files);
        }
    }
    collect(&root, &root.join("testkit").join("src"), &mut files);
    assert!(files.len() > 50, "found the tests: {}", files.len());
    files
}

/// A call to sleep, spelled so that this file does not contain it.
const SLEEP: &str = concat!("sleep", "(");

/// The lines (1-based) of `text` that sleep without a comment on the same
/// line or just above saying why.
fn sleeps_without_a_reason(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let is_comment = |line: &str| line.trim_start().starts_with("//");
    let says_why = |at: usize| {
        lines[at].contains("// ")
            || at
                .checked_sub(1)
                .is_some_and(|above| is_comment(lines[above]))
    };
    (0..lines.len())
        .filter(|&at| lines[at].contains(SLEEP) && !is_comment(lines[at]) && !says_why(at))
        .map(|at| at + 1)
        .collect()
}

#[test]
fn every_sleep_in_the_tests_says_why() {
    let silent: Vec<String> = test_sources()
        .into_iter()
        .flat_map(|(file, text)| {
            sleeps_without_a_reason(&text)
                .into_iter()
                .map(move |line| format!("{file}:{line}"))
        })
        .collect();
    assert!(
        silent.is_empty(),
        "say why on the line or just above (asserting an absence, a window \
         must pass, polling), or wait for the event instead: {silent:#?}"
    );
}

#[test]
fn the_tables_of_a_migration_are_found_whatever_its_layout() {
    assert_eq!(
        created_tables("CREATE TABLE users (\n id uuid);\ncreate table if not exists\n  photos ("),
        ["users", "photos"]
    );
    assert!(created_tables("-- no table here\ncreate index on users (email);").is_empty());
}

#[test]
fn a_sleep_says_why_on_its_line_or_just_above() {
    let text = "sleep(a).await; // a window must pass\n\
                // asserting an absence\nsleep(b).await;\n\
                let x = 1;\nsleep(c).await;\n// sleep(d) in a comment";
    assert_eq!(sleeps_without_a_reason(text), [5]);
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
