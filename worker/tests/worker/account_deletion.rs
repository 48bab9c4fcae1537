//! `DELETE /api/me` end to end: what the account leaves behind (nothing
//! with its address, no file, one deleted Stripe customer), its queued
//! jobs, and a worker killed in the middle of the clean-up.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use testkit::app::Options;
use testkit::images::{jpeg, photo};
use testkit::stripe::{WEBHOOK_SECRET, event, now, subscription};
use testkit::{DEADLINE, TestApp, job_id};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
const EMAIL: &str = "leaving@example.com";
const PASSWORD: &str = "correct horse battery";
const CUSTOMER: &str = "cus_Leaving1";
const NAME: &str = "Leaving User";

/// An app whose Stripe is `stripe`, with an in-process worker or none.
async fn app_with_stripe(stripe: &MockServer, worker: bool) -> TestApp {
    TestApp::spawn_with(Options {
        worker,
        configure: Some(testkit::app::configure({
            let api_base = stripe.uri();
            move |s| {
                s.providers.stripe_secret_key = Some("sk_test_deletion".into());
                s.providers.stripe_api_base = api_base;
                s.providers.stripe_webhook_secret = Some(WEBHOOK_SECRET.into());
                s.queues.account_deletion.backoff = Duration::from_millis(200);
            }
        })),
        ..Options::default()
    })
    .await
}

/// Stripe creates [`CUSTOMER`] for every signup.
async fn stripe_creates_the_customer(stripe: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": CUSTOMER, "object": "customer" })),
        )
        .mount(stripe)
        .await;
}

fn deleted_customer() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({ "id": CUSTOMER, "object": "customer", "deleted": true }))
}

fn no_such_customer() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({
        "error": { "type": "invalid_request_error", "code": "resource_missing",
                   "message": format!("No such customer: '{CUSTOMER}'") }
    }))
}

async fn delete_account(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.send_json(
        Method::DELETE,
        "/api/me",
        token,
        &json!({ "password": password }),
    )
    .await
}

async fn login(app: &TestApp) -> reqwest::Response {
    app.post_json(
        "/api/login",
        &json!({ "email": EMAIL, "password": PASSWORD }),
    )
    .await
}

/// Rows of any table whose text mentions `needle`, named by table.
async fn rows_mentioning(app: &TestApp, needle: &str) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables
         where table_schema = 'public' and table_type = 'BASE TABLE'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("tables");
    assert!(tables.len() >= 8, "every table is checked: {tables:?}");
    let mut found = Vec::new();
    for table in tables {
        // The names come from the catalog, not from input.
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            r#"select count(*) from "{table}" as row where row::text ilike '%' || $1 || '%'"#
        )))
        .bind(needle)
        .fetch_one(&app.pool)
        .await
        .expect("count");
        if count > 0 {
            found.push((table, count));
        }
    }
    found
}

async fn wait_until_the_account_is_gone(app: &TestApp, user_id: uuid::Uuid) {
    testkit::wait::until("the account's row to go", DEADLINE, || async {
        let left: i64 = sqlx::query_scalar("select count(*) from users where user_id = $1")
            .bind(user_id)
            .fetch_one(&app.pool)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
}

fn user_id(signup: &Value) -> uuid::Uuid {
    signup["user"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("the user's id")
}

/// A signed-up account with a Stripe customer, a guide and a ready photo.
async fn a_full_account(app: &TestApp) -> (Value, String) {
    let signup = app.sign_up(EMAIL, NAME).await;
    let token = signup["token"].as_str().expect("token").to_owned();
    app.wait_for_signup_jobs(&signup).await;
    let upload = app
        .upload(&token, "photo", &jpeg(800, 600, &photo(800, 600)))
        .await;
    assert_eq!(upload.status(), 202);
    let upload: Value = upload.json().await.expect("JSON");
    let resize = upload["job"]["id"].as_str().expect("job id");
    app.wait_for_job_state(resize, "completed", DEADLINE).await;
    let me = app.me(&token).await;
    assert_eq!(me["stripe_customer_id"], CUSTOMER);
    assert!(me["onboarding_pdf_url"].is_string() && me["avatar"].is_object());
    (signup, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_leaves_no_file_no_row_with_its_address_and_one_stripe_delete() {
    let stripe = MockServer::start().await;
    stripe_creates_the_customer(&stripe).await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/customers/{CUSTOMER}")))
        .respond_with(deleted_customer())
        .mount(&stripe)
        .await;
    let app = app_with_stripe(&stripe, true).await;
    let (signup, token) = a_full_account(&app).await;
    let other: Value = login(&app).await.json().await.expect("JSON");
    let other_session = other["token"].as_str().expect("token");
    assert!(!testkit::files_under(app.storage_dir()).is_empty());

    let wrong = delete_account(&app, &token, "not the password").await;
    assert_eq!(wrong.status(), 403);
    let wrong: Value = wrong.json().await.expect("JSON");
    assert_eq!(wrong["error"]["code"], "wrong_password");
    assert_eq!(app.get("/api/me", Some(other_session)).await.status(), 200);

    let accepted = delete_account(&app, &token, PASSWORD).await;
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.expect("JSON");
    assert_eq!(accepted["job"]["name"], "account-deletion");
    // At once: the other session is over and nobody can log in.
    assert_eq!(app.get("/api/me", Some(other_session)).await.status(), 401);
    assert_eq!(login(&app).await.status(), 401);

    wait_until_the_account_is_gone(&app, user_id(&signup)).await;
    let job = accepted["job"]["id"].as_str().expect("job id");
    assert_eq!(
        app.get(&format!("/api/jobs/{job}"), Some(&token))
            .await
            .status(),
        401,
        "the asking session went with the account"
    );
    assert_eq!(
        testkit::files_under(app.storage_dir()),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(rows_mentioning(&app, EMAIL).await, vec![]);
    assert_eq!(
        rows_mentioning(&app, &user_id(&signup).to_string()).await,
        vec![]
    );
    let deletes: Vec<_> = stripe
        .received_requests()
        .await
        .expect("recorded")
        .into_iter()
        .filter(|request| request.method == Method::DELETE)
        .collect();
    assert_eq!(deletes.len(), 1, "exactly one Stripe delete");
    assert_eq!(deletes[0].url.path(), format!("/v1/customers/{CUSTOMER}"));
    // The address is free again.
    app.sign_up(EMAIL, "Back Again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_still_queued_when_the_account_is_deleted_do_nothing() {
    let stripe = MockServer::start().await;
    stripe_creates_the_customer(&stripe).await;
    let app = app_with_stripe(&stripe, false).await;
    let signup = app.sign_up(EMAIL, "Leaving User").await;
    let token = signup["token"].as_str().expect("token");
    let welcome = job_id(&signup, "welcome-email");
    assert_eq!(
        delete_account(&app, token, PASSWORD).await.status(),
        202,
        "deleted before any job ran"
    );

    let mut worker = app.spawn_worker_process(WORKER);
    wait_until_the_account_is_gone(&app, user_id(&signup)).await;
    testkit::wait::until("every queue to be empty", DEADLINE, || async {
        let counts = app.worker_command(WORKER, &["counts"]).await;
        let counts = String::from_utf8_lossy(&counts.stdout).into_owned();
        // The maintenance schedule always has its next run delayed.
        counts
            .lines()
            .filter(|line| !line.starts_with("maintenance\t"))
            .all(|line| line.contains("\twaiting=0\tactive=0\tdelayed=0\t"))
            .then_some(())
    })
    .await;
    worker.terminate();
    assert!(worker.wait(DEADLINE).await.success());

    assert_eq!(
        app.smtp.received().len(),
        0,
        "no welcome email for {welcome}"
    );
    let created = stripe.received_requests().await.expect("recorded");
    assert_eq!(created.len(), 0, "no Stripe customer for a deleted account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_whose_worker_is_killed_midway_is_finished_by_the_next_worker() {
    let stripe = MockServer::start().await;
    stripe_creates_the_customer(&stripe).await;
    // The first delete hangs long enough for the worker to be killed with
    // it in flight; Stripe has deleted the customer all the same, so any
    // later delete is told there is no such customer.
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/customers/{CUSTOMER}")))
        .respond_with(deleted_customer().set_delay(Duration::from_secs(30)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&stripe)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/customers/{CUSTOMER}")))
        .respond_with(no_such_customer())
        .with_priority(2)
        .mount(&stripe)
        .await;
    let app = app_with_stripe(&stripe, false).await;
    let mut doomed = app.spawn_worker_process(WORKER);
    let (signup, token) = a_full_account(&app).await;

    assert_eq!(delete_account(&app, &token, PASSWORD).await.status(), 202);
    testkit::wait::until("the clean-up to reach Stripe", DEADLINE, || async {
        let requests = stripe.received_requests().await?;
        requests
            .iter()
            .any(|request| request.method == Method::DELETE)
            .then_some(())
    })
    .await;
    // Files are gone by now, the row and the customer id are not.
    doomed.kill().await;
    assert!(testkit::files_under(app.storage_dir()).is_empty());
    let row: Option<String> = sqlx::query_scalar("select email from users where user_id = $1")
        .bind(user_id(&signup))
        .fetch_optional(&app.pool)
        .await
        .expect("readable");
    assert_eq!(row.as_deref(), Some(EMAIL), "the row goes last");

    let mut rescuer = app.spawn_worker_process(WORKER);
    wait_until_the_account_is_gone(&app, user_id(&signup)).await;
    rescuer.terminate();
    assert!(rescuer.wait(DEADLINE).await.success());
    assert_eq!(rows_mentioning(&app, EMAIL).await, vec![]);
    let deletes = stripe
        .received_requests()
        .await
        .expect("recorded")
        .into_iter()
        .filter(|request| request.method == Method::DELETE)
        .count();
    assert_eq!(deletes, 2, "the killed attempt's delete, and the rerun's");
}

/// Delivers `event` and waits for its job; returns the webhook's answer.
async fn deliver(app: &TestApp, event: &Value) -> Value {
    let (status, answer) = app.deliver_stripe_event(event).await;
    assert_eq!(status, 200, "{answer}");
    if let Some(job) = answer["job_id"].as_str() {
        app.wait_for_job_state(job, "completed", DEADLINE).await;
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_accounts_stripe_events_keep_their_ids_but_not_its_address_or_name() {
    let stripe = MockServer::start().await;
    stripe_creates_the_customer(&stripe).await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/customers/{CUSTOMER}")))
        .respond_with(deleted_customer())
        .mount(&stripe)
        .await;
    let app = app_with_stripe(&stripe, true).await;
    let signup = app.sign_up(EMAIL, NAME).await;
    let token = signup["token"].as_str().expect("token");
    app.wait_for_signup_jobs(&signup).await;
    // What Stripe sends about the customer names the person.
    let person = json!({ "id": CUSTOMER, "object": "customer", "email": EMAIL, "name": NAME });
    let t = now();
    let events = [
        event(
            "evt_customer_updated",
            "customer.updated",
            t,
            person.clone(),
        ),
        event(
            "evt_invoice_paid",
            "invoice.paid",
            t,
            json!({
                "id": "in_1", "object": "invoice", "customer": CUSTOMER,
                "customer_email": EMAIL, "customer_name": NAME,
            }),
        ),
        event(
            "evt_subscribed",
            "customer.subscription.created",
            t,
            subscription("sub_leaving", CUSTOMER, "active", "price_pro", t + 86_400),
        ),
    ];
    for event in &events {
        deliver(&app, event).await;
    }
    assert_eq!(app.me(token).await["subscription"]["status"], "active");
    assert!(
        rows_mentioning(&app, EMAIL)
            .await
            .contains(&("stripe_events".into(), 2)),
        "kept while the account lives"
    );

    assert_eq!(delete_account(&app, token, PASSWORD).await.status(), 202);
    wait_until_the_account_is_gone(&app, user_id(&signup)).await;
    // Deleting the customer makes Stripe send `customer.deleted`, with the
    // address and name, once the account is gone.
    let mut gone = person.clone();
    gone["deleted"] = json!(true);
    let deleted = event("evt_customer_deleted", "customer.deleted", now(), gone);
    deliver(&app, &deleted).await;

    for needle in [EMAIL, NAME, &user_id(&signup).to_string()] {
        assert_eq!(rows_mentioning(&app, needle).await, vec![], "{needle}");
    }
    // The ids stay: a redelivery is recognised and applies nothing.
    for event in events.iter().chain([&deleted]) {
        assert_eq!(deliver(&app, event).await["duplicate"], true, "{event}");
    }
}
