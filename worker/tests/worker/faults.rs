//! Faults that are not the job's: a provider refusing our credentials, an
//! attempt that hangs, and a worker that lost its lock while still working.

use std::time::Duration;

use platform::config::Settings;
use serde_json::json;
use testkit::app::Options;
use testkit::{TestApp, job_id};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
use testkit::DEADLINE;
const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

async fn app_with_stripe(
    stripe: &MockServer,
    configure: impl FnOnce(&mut Settings) + Send + 'static,
) -> TestApp {
    let api_base = stripe.uri();
    TestApp::spawn_with(Options::with_worker().configure(move |s| {
        s.providers.stripe_secret_key = Some(KEY.into());
        s.providers.stripe_api_base = api_base;
        s.providers.config_fault_pause = Duration::from_secs(1);
        configure(s);
    }))
    .await
}

/// A POST to Stripe's customers endpoint.
fn customers() -> MockBuilder {
    Mock::given(method("POST")).and(path("/v1/customers"))
}

fn customer_created() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "id": "cus_OK", "object": "customer" }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_stripe_key_makes_jobs_wait_not_fail_until_it_is_fixed() {
    let stripe = MockServer::start().await;
    customers()
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": { "message": "Invalid API Key provided: sk_test_****7dc" }
        })))
        .mount(&stripe)
        .await;
    // One attempt only: had the refusal been held against the job, it
    // would be dead now.
    let app = app_with_stripe(&stripe, move |s| {
        s.queues.stripe_customer.attempts = 1;
        s.providers.config_fault_pause = Duration::from_secs(3);
    })
    .await;
    let body = app.sign_up("rotated@example.com", "Rotated Key").await;
    let job = job_id(&body, "stripe-customer");
    let token = body["token"].as_str();
    let refusals = || async { stripe.received_requests().await.unwrap_or_default().len() };

    testkit::wait::until("Stripe to refuse the key", DEADLINE, || async {
        (refusals().await >= 1).then_some(())
    })
    .await;
    // The queue pauses: well inside the 3 s pause, nobody asks again (a
    // queue that did not pause would ask hundreds of times a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        refusals().await,
        1,
        "the queue kept asking during its pause"
    );
    testkit::wait::until(
        "Stripe to refuse the key again after the pause",
        DEADLINE,
        || async { (refusals().await >= 2).then_some(()) },
    )
    .await;
    // Between tries the job waits out the pause, saying why.
    let status = testkit::wait::until("the job to wait out the pause", DEADLINE, || async {
        let status = app.job_status(&job, token).await;
        (status["state"] == "waiting").then_some(status)
    })
    .await;
    assert_eq!(status["attempts_made"], 0, "no attempt was spent: {status}");
    assert_eq!(
        status["error"]["code"], "temporarily_unavailable",
        "{status}"
    );
    assert_eq!(
        status["error"]["message"],
        "Billing is temporarily unavailable; we will retry."
    );
    assert!(!status.to_string().contains("7dc"), "{status}");

    // The operator fixes the key.
    stripe.reset().await;
    customers()
        .respond_with(customer_created())
        .mount(&stripe)
        .await;

    app.wait_for_job_state(&job, "completed", DEADLINE).await;
    let status = app.job_status(&job, token).await;
    assert_eq!(status["attempts_made"], 1, "{status}");
    assert!(status["error"].is_null(), "{status}");
    assert_eq!(
        app.me(token.expect("token")).await["stripe_customer_id"],
        "cus_OK"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_login_refusal_holds_the_email_until_the_server_takes_it() {
    let app = TestApp::spawn_with(Options {
        worker: true,
        configure: Some(testkit::app::configure(move |s| {
            s.providers.config_fault_pause = Duration::from_secs(1);
            s.queues.welcome_email.attempts = 1;
        })),
        ..Options::default()
    })
    .await;
    let body = app
        .sign_up_and_meanwhile("held@example.com", "Held", |app| {
            for _ in 0..2 {
                app.smtp
                    .refuse_next("535 5.7.8 Authentication credentials invalid");
            }
        })
        .await;

    let job = job_id(&body, "welcome-email");
    app.wait_for_job_state(&job, "completed", DEADLINE).await;
    assert_eq!(app.smtp.refused(), 2);
    assert_eq!(
        app.smtp.received_titled("Welcome").len(),
        1,
        "sent once, after the refusals"
    );
    let status = app.job_status(&job, body["token"].as_str()).await;
    assert_eq!(status["attempts_made"], 1, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_past_its_timeout_fails_and_frees_its_slot() {
    let stripe = MockServer::start().await;
    customers()
        .respond_with(customer_created().set_delay(Duration::from_secs(120)))
        .up_to_n_times(1)
        .mount(&stripe)
        .await;
    customers()
        .respond_with(customer_created())
        .mount(&stripe)
        .await;
    let app = app_with_stripe(&stripe, |s| {
        s.queues.stripe_customer.timeout = Duration::from_secs(1);
        s.queues.stripe_customer.attempts = 1;
        s.queues.stripe_customer.concurrency = 1;
    })
    .await;

    let hung = app.sign_up("hung@example.com", "Hung").await;
    let hung_job = job_id(&hung, "stripe-customer");
    app.wait_for_job_state(&hung_job, "failed", DEADLINE).await;
    let next = app.sign_up("next@example.com", "Next").await;

    // The only slot is free again long before the hung request would end.
    app.wait_for_job_state(&job_id(&next, "stripe-customer"), "completed", DEADLINE)
        .await;
    let status = app.job_status(&hung_job, hung["token"].as_str()).await;
    assert_eq!(status["error"]["code"], "timed_out", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lock_cannot_overwrite_the_attempt_after_it() {
    let stripe = MockServer::start().await;
    // The first attempt hangs and is refused at t+6 s, while the attempt
    // after it is still running; that one succeeds at about t+10 s.
    customers()
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({ "error": { "message": "late refusal" } }))
                .set_delay(Duration::from_secs(6)),
        )
        .up_to_n_times(1)
        .mount(&stripe)
        .await;
    customers()
        .respond_with(customer_created().set_delay(Duration::from_secs(8)))
        .mount(&stripe)
        .await;
    let app = app_with_stripe(&stripe, |s| {
        s.queues.stripe_customer.lock_duration = Duration::from_secs(1);
        s.queues.stripe_customer.stalled_interval = Duration::from_millis(500);
        // One slot per worker: the one running the first attempt is
        // full, so the second attempt runs on the other worker.
        s.queues.stripe_customer.concurrency = 1;
    })
    .await;
    let mut second = app.spawn_worker_process(WORKER);
    let body = app.sign_up("race@example.com", "Race").await;
    let job = job_id(&body, "stripe-customer");
    app.wait_for_job_state(&job, "active", DEADLINE).await;

    // A Redis blip longer than the lock, as far as BullMQ can tell: the
    // lock is gone, the job is handed out again, and the first attempt
    // does not know.
    app.redis
        .cli(&["DEL", &format!("bull:stripe-customer:{job}:lock")]);
    testkit::wait::until("a second attempt to start", DEADLINE, || async {
        let requests = stripe.received_requests().await.unwrap_or_default().len();
        (requests >= 2).then_some(())
    })
    .await;

    app.wait_for_job_state(&job, "completed", DEADLINE).await;
    let status = app.job_status(&job, body["token"].as_str()).await;
    assert!(status["error"].is_null(), "{status}");
    assert_eq!(status["result"]["customer_id"], "cus_OK", "{status}");
    let detail = app.operator_view(&job).await["error_detail"].clone();
    assert!(
        detail.is_null(),
        "the late refusal was not recorded: {detail}"
    );
    second.terminate();
    assert!(second.wait(DEADLINE).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_logged_once_per_incident_not_once_per_job() {
    let stripe = MockServer::start().await;
    customers()
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({ "error": { "message": "Invalid API Key" } })),
        )
        .mount(&stripe)
        .await;
    let app = TestApp::spawn_with(Options {
        configure: Some(testkit::app::configure({
            let v0 = KEY.to_owned();
            let v1 = stripe.uri();
            move |s| {
                s.providers.stripe_secret_key = Some(v0.into());
                s.providers.stripe_api_base = v1;
                s.providers.config_fault_pause = Duration::from_secs(1);
            }
        })),
        ..Options::default()
    })
    .await;
    let mut worker = app.spawn_worker_process_logging(WORKER);
    let mut jobs = Vec::new();
    for n in 0..3 {
        let body = app.sign_up(&format!("key{n}@example.com"), "Key").await;
        jobs.push(job_id(&body, "stripe-customer"));
    }
    testkit::wait::until("every job to be refused twice", DEADLINE, || async {
        let refusals = stripe.received_requests().await.unwrap_or_default().len();
        (refusals >= 6).then_some(())
    })
    .await;
    stripe.reset().await;
    customers()
        .respond_with(|request: &wiremock::Request| {
            // One customer per user: the id comes from the request.
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&request.body, &mut hasher);
            let id = format!("cus_{:x}", std::hash::Hasher::finish(&hasher));
            ResponseTemplate::new(200).set_body_json(json!({ "id": id, "object": "customer" }))
        })
        .mount(&stripe)
        .await;
    for job in &jobs {
        app.wait_for_job_state(job, "completed", DEADLINE).await;
    }

    let lines = worker.log_lines();
    let saying = |text: &str| {
        lines
            .iter()
            .filter(|line| line["message"].as_str().is_some_and(|m| m.contains(text)))
            .count()
    };
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["message"].as_str())
        .collect();
    assert_eq!(
        saying("the provider refused our credentials"),
        1,
        "{messages:?}"
    );
    assert_eq!(saying("the provider accepts our credentials again"), 1);
    worker.terminate();
    assert!(worker.wait(DEADLINE).await.success());
}
