//! The claims `README.md`, `.env.example` and `docs/` make that a program
//! can check, checked against the code: the variables they name exist, the
//! defaults they state are the code's, the routes they write are served,
//! the files they point at are there, and every line of `.env.example` can
//! be uncommented as it is. Each failure names the file, the line and the
//! claim, so whoever changed the code or the doc can fix the other.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use platform::config::Settings;
use serde_json::Value;
use testkit::TestApp;

/// Variables the docs may name that no file of ours reads: other programs'
/// own. Everything else must be read by the settings, or by one of our
/// scripts, CI, the compose file, the image or a test harness, or be a
/// constant of our code (`DRAIN_TIMEOUT`).
const OTHER_PROGRAMS: &[(&str, &str)] = &[
    (
        "RUST_LOG",
        "tracing-subscriber's filter, which platform::telemetry uses",
    ),
    ("OTEL_BSP_*", "the OpenTelemetry SDK's batching"),
    ("MALLOC_*", "glibc's allocator"),
    ("POSTGRES_*", "the postgres image's first-time setup"),
    (
        "COMPOSE_*",
        "Docker Compose's own (the project name, profiles)",
    ),
];

/// Paths a doc may name that are made when the system runs, not stored in
/// the repository.
const MADE_AT_RUN_TIME: &[&str] = &[".dev/", ".env", "target/", "web/dist"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The files whose claims are checked, by workspace path, with their text.
fn documents() -> Vec<(String, String)> {
    let root = root();
    let mut files = vec!["README.md".to_owned(), ".env.example".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|file| {
            let text = read(&root.join(&file));
            (file, text)
        })
        .collect()
}

/// A piece of code a document shows: an inline span, a line of a fenced
/// block, or (in `.env.example`) any line. `line` is 1-based.
struct Code {
    file: String,
    line: usize,
    text: String,
}

/// Every piece of code in every document.
fn code() -> Vec<Code> {
    let mut pieces = Vec::new();
    for (file, text) in documents() {
        let whole_lines = file == ".env.example";
        let mut fenced = false;
        for (index, line) in text.lines().enumerate() {
            let at = |text: &str| Code {
                file: file.clone(),
                line: index + 1,
                text: text.to_owned(),
            };
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if whole_lines || fenced {
                pieces.push(at(line));
                continue;
            }
            for span in line.split('`').skip(1).step_by(2) {
                pieces.push(at(span));
            }
        }
    }
    pieces
}

/// Every variable the settings read, from an environment with only what is
/// required, and each one's default as the settings write it back.
fn defaults() -> BTreeMap<String, String> {
    let asked = RefCell::new(BTreeSet::new());
    let settings = Settings::from_lookup(|key| {
        asked.borrow_mut().insert(key.to_owned());
        (key == "DATABASE_URL").then(|| "postgres://localhost/app".to_owned())
    })
    .expect("the defaults are valid");
    let mut written: BTreeMap<String, String> = settings.to_env().into_iter().collect();
    written.insert("DATABASE_URL".into(), String::new());
    assert_eq!(
        asked.into_inner(),
        written.keys().cloned().collect(),
        "every variable read is written back"
    );
    written
}

/// The values `script` gives variables that are unset or empty
/// (`${DEV_REDIS_PORT:-63790}`), as written (they may name others).
fn script_defaults(script: &str) -> BTreeMap<String, String> {
    let text = read(&root().join(script));
    let mut defaults = BTreeMap::new();
    for default in text.split("${").skip(1) {
        let Some((name, rest)) = default.split_once(":-") else {
            continue;
        };
        let value = rest.split('}').next().unwrap_or_default();
        if is_name(name) {
            defaults
                .entry(name.to_owned())
                .or_insert_with(|| value.to_owned());
        }
    }
    defaults
}

/// The settings' defaults, and those our scripts and compose file give the
/// variables only they read (`DEV_REDIS_PORT`, `API_REPLICAS`).
fn all_defaults() -> BTreeMap<String, String> {
    let mut defaults = defaults();
    let scripts = std::fs::read_dir(root().join("scripts")).expect("scripts/");
    let scripts = scripts
        .flatten()
        .map(|script| format!("scripts/{}", script.file_name().to_string_lossy()));
    for file in scripts.chain(["docker-compose.yml".to_owned()]) {
        for (key, value) in script_defaults(&file) {
            if !value.contains('$') {
                defaults.entry(key).or_insert(value);
            }
        }
    }
    defaults
}

/// The variables a required setting names: reading nothing reports them.
fn required() -> BTreeSet<String> {
    let error = Settings::from_lookup(|_| None).expect_err("something is required");
    defaults()
        .into_keys()
        .filter(|key| error.to_string().contains(&format!("{key} is required")))
        .collect()
}

/// Whether `c` may be part of a variable's name as the docs write it,
/// patterns included (`QUEUE_<NAME>_…`, `OTEL_BSP_*`).
fn in_name(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '_' | '<' | '>' | '…' | '*')
}

/// Whether `word` is written as a variable's name (`PORT`, `QUEUE_<NAME>_…`).
fn is_name(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_uppercase()) && word.chars().all(in_name)
}

/// The variable names in `code`: upper-case words with an underscore.
fn names_in(code: &str) -> Vec<String> {
    code.split(|c: char| !in_name(c) && !c.is_ascii_lowercase())
        .filter(|word| word.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter(|word| word.chars().all(in_name) && word.contains('_') && word.len() > 2)
        .map(str::to_owned)
        .collect()
}

/// Whether the documented `pattern` (`<…>`, `…` and `*` stand for any part
/// of a name) names `name`.
fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '<' => {
                chars.by_ref().find(|&c| c == '>');
                parts.push(std::mem::take(&mut literal));
            }
            '…' | '*' => parts.push(std::mem::take(&mut literal)),
            c => literal.push(c),
        }
    }
    parts.push(literal);
    let (first, rest) = parts.split_first().expect("one part at least");
    let Some(mut left) = name.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty();
    };
    for part in middle {
        match left.find(part.as_str()) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    left.ends_with(last.as_str())
}

/// The variables our scripts, CI, compose file, image and test harness
/// read or set: `$NAME`, `${NAME…}`, `NAME=` and `NAME:` (compose), and
/// `"NAME"` in the harness's Rust.
fn read_outside_the_settings() -> BTreeSet<String> {
    let root = root();
    let mut files: Vec<PathBuf> = ["docker-compose.yml", "Dockerfile", "Procfile", ".ci/run"]
        .iter()
        .map(|file| root.join(file))
        .collect();
    for dir in ["scripts", "testkit/src", "deploy/nginx"] {
        let mut stack = vec![root.join(dir)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push(path);
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    for file in files.iter().filter(|file| file.is_file()) {
        let text = read(file);
        let rust = file.extension().is_some_and(|ext| ext == "rs");
        for (at, _) in text.match_indices(|c: char| c.is_ascii_uppercase()) {
            let before = text[..at].chars().next_back().unwrap_or(' ');
            let name: String = text[at..]
                .chars()
                .take_while(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                .collect();
            let after = text[at + name.len()..].chars().next().unwrap_or(' ');
            let read = if rust {
                before == '"' && after == '"'
            } else {
                matches!(before, '$' | '{') || matches!(after, '=' | ':')
            };
            if read && name.contains('_') && !before.is_ascii_alphanumeric() && before != '_' {
                names.insert(name);
            }
        }
    }
    names
}

/// The constants our code declares (`const DRAIN_TIMEOUT: …`), which the
/// docs name too.
fn constants() -> BTreeSet<String> {
    let root = root();
    let mut stack: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("the workspace")
        .flatten()
        .map(|entry| entry.path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    let mut names = BTreeSet::new();
    while let Some(dir) = stack.pop() {
        for path in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = path.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                for line in read(&path).lines() {
                    let declared = ["const ", "static "]
                        .iter()
                        .find_map(|lead| line.trim_start().split(lead).nth(1));
                    if let Some((name, _)) = declared.and_then(|rest| rest.split_once(':')) {
                        names.insert(name.trim().to_owned());
                    }
                }
            }
        }
    }
    names
}

/// Fails with every problem found, one per line.
fn assert_none(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_variable_the_docs_name_is_one_we_read() {
    let settings = defaults();
    let elsewhere = read_outside_the_settings();
    let constants = constants();
    // A queue's field on its own (`TIMEOUT_SECS`) stands for every queue's.
    let field = |name: &str, known: &String| {
        known.starts_with("QUEUE_") && known.ends_with(&format!("_{name}"))
    };
    let known = |name: &str| {
        settings
            .keys()
            .chain(&elsewhere)
            .any(|known| matches(name, known))
            || settings.keys().any(|known| field(name, known))
            || OTHER_PROGRAMS.iter().any(|(other, _)| matches(other, name))
            || constants.contains(name)
    };
    let mut problems = Vec::new();
    for piece in code() {
        for name in names_in(&piece.text) {
            if !known(&name) {
                problems.push(format!(
                    "{}:{}: `{name}` is not a variable the settings, the scripts, CI, compose or the image read, nor a constant of the code",
                    piece.file, piece.line
                ));
            }
        }
    }
    assert_none("variables nothing reads", &problems);
}

/// `value`, as a doc writes a default, in the form the settings write it
/// back; `None` when it is prose no program can compare ("one per core").
fn as_written(name: &str, value: &str) -> Option<String> {
    let value = value.trim();
    if value == "unset" {
        return Some(String::new());
    }
    if let Some(text) = value.strip_prefix('`').and_then(|v| v.strip_suffix('`')) {
        return Some(text.to_owned());
    }
    if value == "true" || value == "false" || value.parse::<f64>().is_ok() {
        return Some(value.to_owned());
    }
    let (number, unit) = value.split_once(' ')?;
    let (number, unit) = match number {
        "a" | "an" => (1, unit),
        number => (number.parse::<u64>().ok()?, unit),
    };
    let scale = match unit {
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "million" => 1_000_000,
        "s" if name.ends_with("_SECS") => 1,
        "min" if name.ends_with("_SECS") => 60,
        "h" | "hour" if name.ends_with("_SECS") => 3600,
        "day" | "days" if name.ends_with("_SECS") => 86_400,
        _ => return None,
    };
    Some((number * scale).to_string())
}

/// The defaults a doc states: the rows of `docs/configuration.md`'s
/// tables (`| \`A\`, \`B\` | 1, 2 | … |`) and prose such as
/// "`X` (default 10)", "`X`, default an hour" or "`X` (20, then 429)".
/// Each with its line.
fn stated_defaults(text: &str) -> Vec<(usize, String, String)> {
    let mut stated = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if line.starts_with('|') && cells.len() > 3 {
            let names: Vec<&str> = cells[1].split('`').skip(1).step_by(2).collect();
            let values: Vec<&str> = if names.len() > 1 {
                cells[2].split(", ").collect()
            } else {
                vec![cells[2]]
            };
            if names.len() == values.len() && names.iter().all(|name| is_name(name)) {
                for (name, value) in names.into_iter().zip(values) {
                    stated.push((index + 1, name.to_owned(), value.to_owned()));
                }
            }
        }
        for (at, _) in line.match_indices('`') {
            let rest = &line[at + 1..];
            let Some((name, after)) = rest.split_once('`') else {
                continue;
            };
            // `X` (20, then 429): a number in brackets right after a
            // variable is its default, as the docs write it.
            let bracketed = after
                .strip_prefix(" (")
                .filter(|value| value.starts_with(|c: char| c.is_ascii_digit()));
            let Some(value) = [" (default ", ", default "]
                .iter()
                .find_map(|lead| after.strip_prefix(lead))
                .or(bracketed)
            else {
                continue;
            };
            let end = value
                .find([')', ',', ';', ':'])
                .or_else(|| value.find(". "))
                .unwrap_or(value.len());
            if is_name(name) {
                stated.push((index + 1, name.to_owned(), value[..end].to_owned()));
            }
        }
    }
    stated
}

#[test]
fn every_default_the_docs_state_is_the_codes() {
    let defaults = all_defaults();
    let required = required();
    let mut problems = Vec::new();
    for (file, text) in documents() {
        for (line, name, value) in stated_defaults(&text) {
            let Some(default) = defaults.get(&name) else {
                continue;
            };
            match (value == "required", required.contains(&name)) {
                (true, true) => continue,
                (true, false) => {
                    problems.push(format!(
                        "{file}:{line}: `{name}` is said to be required; the code defaults it to {default:?}"
                    ));
                    continue;
                }
                (false, true) => {
                    problems.push(format!(
                        "{file}:{line}: `{name}` is said to default to {value}; the code requires it"
                    ));
                    continue;
                }
                (false, false) => {}
            }
            match as_written(&name, &value) {
                Some(stated) if stated != *default => problems.push(format!(
                    "{file}:{line}: `{name}` is said to default to {value}, the code's default is {default:?}"
                )),
                _ => {}
            }
        }
    }
    assert_none("defaults that are not the code's", &problems);
}

/// The settings lines of `.env.example` (`# NAME=value`), each with its
/// line and its value as the binaries' `.env` reader (dotenvy) reads it.
fn env_example_settings() -> Vec<(usize, String, String)> {
    let text = read(&root().join(".env.example"));
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let line = line.strip_prefix("# ").unwrap_or(line);
            let (name, _) = line.split_once('=')?;
            is_name(name).then_some((index, line))
        })
        .map(|(index, line)| {
            let mut read = dotenvy::from_read_iter(line.as_bytes());
            let (name, value) = read
                .next()
                .expect("one variable")
                .unwrap_or_else(|error| panic!(".env.example:{}: {line}: {error}", index + 1));
            (index + 1, name, value)
        })
        .collect()
}

/// Uncommenting a line as it is changes nothing: each shows its variable's
/// default, or nothing (an empty value is unset) where the default is none,
/// depends on the machine or on another setting, or where `scripts/dev`
/// (which sources `.env`) chooses its own. Examples that would change
/// something (a Redis that is not there, a proxy header that is not set)
/// are in the comments.
#[test]
fn every_line_of_env_example_uncommented_as_it_is_keeps_the_default() {
    let defaults = all_defaults();
    let dev = script_defaults("scripts/dev");
    let lines = env_example_settings();
    assert!(lines.len() > 40, "found the settings lines");
    let mut problems = Vec::new();
    for (line, name, value) in lines.iter().filter(|(_, _, value)| !value.is_empty()) {
        if let Some(default) = defaults.get(name)
            && value != default
        {
            problems.push(format!(
                ".env.example:{line}: `{name}={value}` is not the default ({default:?}): uncommented as it is, it changes the setting"
            ));
        }
        if let Some(chosen) = dev.get(name)
            && value != chosen
        {
            problems.push(format!(
                ".env.example:{line}: `{name}={value}` overrides what scripts/dev chooses when it is empty ({chosen:?})"
            ));
        }
    }
    // That every line at once loads, for the binaries (dotenvy) and for
    // bash, is `platform`'s `every_setting_in_env_example_can_be_uncommented_as_it_is`.
    assert_none("lines that change a setting when uncommented", &problems);
}

/// The repository paths in `code`: words that start with one of the
/// repository's folders, or are one of its files.
fn paths_in(code: &str, top: &BTreeSet<String>) -> Vec<String> {
    code.split_whitespace()
        .map(|word| word.trim_matches(|c| matches!(c, '(' | ')' | ',' | '"' | '\'' | ';')))
        .map(|word| word.split(['#', ':']).next().unwrap_or_default())
        .map(|word| {
            word.strip_suffix("'s")
                .unwrap_or(word)
                .trim_end_matches('.')
        })
        .filter(|word| !word.contains(['<', '…', '*', '{', '$', '=']))
        .filter(|word| {
            let first = word.split('/').next().unwrap_or_default();
            (word.contains('/') && top.contains(first)) || top.contains(*word)
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_repository_path_the_docs_name_exists() {
    let root = root();
    let top: BTreeSet<String> = std::fs::read_dir(&root)
        .expect("the workspace")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !matches!(name.as_str(), "target" | ".git" | ".dev"))
        .chain([".dev".to_owned()])
        .collect();
    let mut problems = Vec::new();
    for piece in code() {
        for path in paths_in(&piece.text, &top) {
            let made = MADE_AT_RUN_TIME.iter().any(|made| path.starts_with(made));
            if !made && !root.join(&path).exists() {
                problems.push(format!(
                    "{}:{}: `{path}` does not exist",
                    piece.file, piece.line
                ));
            }
        }
    }
    // Links between the documents, relative to the linking file.
    for (file, text) in documents() {
        let dir = root.join(&file).parent().expect("a folder").to_owned();
        for (index, line) in text.lines().enumerate() {
            for link in line.split("](").skip(1) {
                let target = link.split([')', '#', ' ']).next().unwrap_or_default();
                let external = target.contains("://") || target.starts_with("mailto:");
                if !target.is_empty() && !external && !dir.join(target).exists() {
                    problems.push(format!(
                        "{file}:{}: the link ({target}) leads nowhere",
                        index + 1
                    ));
                }
            }
        }
    }
    assert_none("paths that are not in the repository", &problems);
}

/// The routes the docs write as `METHOD /path`, with the line of each.
fn stated_routes() -> Vec<(String, usize, String, String)> {
    let mut routes = Vec::new();
    for (file, text) in documents() {
        for (index, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            for pair in words.windows(2) {
                let method = pair[0].trim_start_matches(['`', '(', '"']);
                if !matches!(method, "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD") {
                    continue;
                }
                let path = pair[1]
                    .split(['`', '?', ')', ',', ';', '"'])
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(['.', ':']);
                // Stripe's own API, which the docs quote, is not ours.
                if path.starts_with('/') && !path.starts_with("/v1/") {
                    routes.push((file.clone(), index + 1, method.to_owned(), path.to_owned()));
                }
            }
        }
    }
    routes
}

/// A route template with its parameters' names dropped (`{}`), so
/// `/api/jobs/{id}`, `/api/jobs/{job_id}` and `/api/jobs/<id>` compare equal.
fn shape(path: &str) -> String {
    let mut shape = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' | '<' => {
                inside = true;
                shape.push_str("{}");
            }
            '}' | '>' => inside = false,
            c if !inside => shape.push(c),
            _ => {}
        }
    }
    shape
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_the_docs_name_is_served() {
    let app = TestApp::spawn_without_worker().await;
    // Undocumented routes are probed too, so not through the checked client.
    let client = platform::http::builder()
        .and_then(|builder| Ok(builder.build()?))
        .expect("the HTTP client builds");
    let document: Value = client
        .get(format!("{}/api/openapi.json", app.address))
        .send()
        .await
        .expect("the api answers")
        .json()
        .await
        .expect("the document is JSON");
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("operations").keys() {
            documented.insert((method.to_ascii_uppercase(), shape(path)));
        }
    }
    documented.insert(("GET".into(), "/api/openapi.json".into()));
    let mut problems = Vec::new();
    for (file, line, method, path) in stated_routes() {
        if documented.contains(&(method.clone(), shape(&path))) {
            continue;
        }
        // Not in the contract (the web app's pages, health, metrics): the
        // router must still know it, which a route without parameters shows
        // by answering something other than 404 or 405.
        let served = !path.contains(['{', '<']) && {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let status = client
                .request(method, format!("{}{path}", app.address))
                .send()
                .await
                .expect("the api answers")
                .status();
            status != 404 && status != 405
        };
        if !served {
            problems.push(format!(
                "{file}:{line}: `{method} {path}` is neither in the OpenAPI document nor served"
            ));
        }
    }
    app.stop().await;
    assert_none("routes the api does not serve", &problems);
}

#[test]
fn the_checks_understand_the_docs_notations() {
    assert!(matches(
        "QUEUE_<NAME>_ATTEMPTS",
        "QUEUE_WELCOME_EMAIL_ATTEMPTS"
    ));
    assert!(matches(
        "QUEUE_WELCOME_EMAIL_…",
        "QUEUE_WELCOME_EMAIL_ATTEMPTS"
    ));
    assert!(!matches(
        "QUEUE_<NAME>_ATTEMPTS",
        "QUEUE_WELCOME_EMAIL_CONCURRENCY"
    ));
    assert!(matches("PORT_X", "PORT_X") && !matches("PORT_X", "PORT_XY"));
    assert_eq!(
        names_in("${DATABASE_URL:-postgres://x} QUEUE_<NAME>_ATTEMPTS=5 GET"),
        ["DATABASE_URL", "QUEUE_<NAME>_ATTEMPTS"]
    );
    assert_eq!(as_written("X_SECS", "an hour").as_deref(), Some("3600"));
    assert_eq!(as_written("X_BYTES", "20 MiB").as_deref(), Some("20971520"));
    assert_eq!(as_written("X", "one per core"), None);
    assert_eq!(shape("/api/jobs/{job_id}/x"), shape("/api/jobs/<id>/x"));
}
