//! The OpenAPI document, fuzzed by a tool no one here wrote: schemathesis
//! generates requests from `/api/openapi.json` (examples, boundary values,
//! then random ones) and fails on any answer whose status, content type or
//! body the document does not describe, and on any 5xx.
//!
//! `scripts/test` installs it (`SCHEMATHESIS` names the command); plain
//! `cargo test` needs `pip install schemathesis` first.

use std::process::Stdio;

use testkit::TestApp;
use testkit::app::ADMIN_TOKEN;

/// The command, from `SCHEMATHESIS` or the `PATH`.
fn schemathesis() -> String {
    std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned())
}

/// Runs schemathesis against `app` with `token`, on the operations whose
/// path matches `paths`; returns its report when it found a problem.
async fn fuzz(app: &TestApp, token: &str, paths: &str) -> Option<String> {
    let output = tokio::process::Command::new(schemathesis())
        .args(["run", &format!("{}/api/openapi.json", app.address)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--include-path-regex", paths])
        // A live stream never ends, so each example would wait out the
        // request timeout; its answers, its malformed `Last-Event-ID`s
        // included, are checked by the events tests instead.
        .args(["--exclude-path", "/api/me/events"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "30", "--seed", "1"])
        // One worker: schemathesis 4.32 with several threads trips over its own
        // lambda cache now and then ("AST constructor recursion depth mismatch").
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .env("NO_COLOR", "1")
        // It keeps a cache in its working folder: not in the checkout.
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .stdin(Stdio::null())
        // A hung run is killed with its future, not waited on for ever.
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), output)
        .await
        .expect("schemathesis finishes within 5 minutes")
        .unwrap_or_else(|error| {
            panic!(
                "cannot run `{}` ({error}): scripts/test installs it, or `pip install schemathesis`",
                schemathesis()
            )
        });
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    (!output.status.success()).then_some(report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_a_fuzzer_provokes_is_one_the_document_describes() {
    let app = TestApp::spawn_without_worker().await;
    let user = app.sign_up("fuzzed@example.com", "Fuzzed").await;
    let token = user["token"].as_str().expect("a token");

    // As a signed-in user everywhere, then as an operator on the operator
    // endpoints (whose answers to a user are only 401s).
    let as_user = fuzz(&app, token, ".*").await;
    let as_operator = fuzz(&app, ADMIN_TOKEN, "^/api/admin").await;

    assert!(
        as_user.is_none(),
        "as a user:\n{}",
        as_user.unwrap_or_default()
    );
    assert!(
        as_operator.is_none(),
        "as an operator:\n{}",
        as_operator.unwrap_or_default()
    );
}
