//! What a new password hash costs is a setting the load test lowers
//! (`ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`): an api at a lowered cost says
//! so once at start, hashes at that cost, and a password hashed at either
//! cost logs in at the other.

use serde_json::{Value, json};
use testkit::{ApiProcess, TestApp};

const API: &str = env!("CARGO_BIN_EXE_api");
const PASSWORD: &str = "correct horse battery";

/// The start-up warnings about the hashing cost `api` logged.
fn cost_warnings(api: &ApiProcess) -> Vec<Value> {
    api.log_lines()
        .into_iter()
        .filter(|line| {
            line["level"] == "WARN"
                && line["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("below production's cost"))
        })
        .collect()
}

async fn stored_hash(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("select password_hash from users where email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .expect("the account")
}

async fn login_at(app: &TestApp, api: &ApiProcess, email: &str) -> u16 {
    app.post_json_at(
        &api.address,
        "/api/login",
        &json!({ "email": email, "password": PASSWORD }),
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_at_a_lowered_cost_warns_once_at_start_and_hashes_at_either_cost_log_in_at_the_other()
 {
    let app = TestApp::spawn_without_worker().await;
    let lowered = app
        .spawn_api_process_with(
            API,
            &[("ARGON2_MEMORY_KIB", "1024"), ("ARGON2_ITERATIONS", "1")],
        )
        .await;
    let production = app.spawn_api_process(API).await;

    // Started (it answers), so its start-up warnings are written.
    let warned = cost_warnings(&lowered);
    assert_eq!(warned.len(), 1, "once, at start: {warned:?}");
    let warning = warned[0].to_string();
    assert!(
        warning.contains(r#""memory_kib":1024"#) && warning.contains(r#""iterations":1"#),
        "naming both values: {warning}"
    );
    assert!(
        cost_warnings(&production).is_empty(),
        "production's cost is not worth a warning"
    );

    app.sign_up_unverified_at(&lowered.address, "cheap@example.com", "Cheap")
        .await;
    app.sign_up_unverified_at(&production.address, "strong@example.com", "Strong")
        .await;
    let cheap = stored_hash(&app, "cheap@example.com").await;
    let strong = stored_hash(&app, "strong@example.com").await;
    assert!(
        cheap.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
        "{cheap}"
    );
    assert!(
        strong.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{strong}"
    );

    assert_eq!(login_at(&app, &production, "cheap@example.com").await, 200);
    assert_eq!(login_at(&app, &lowered, "strong@example.com").await, 200);
}
