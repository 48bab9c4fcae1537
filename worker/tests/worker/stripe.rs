//! The stripe-customer job against a wiremock Stripe that checks what we send.

use std::time::Duration;

use serde_json::json;
use testkit::app::Options;
use testkit::{TestApp, job_id};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use testkit::DEADLINE;
const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

async fn app_with_stripe(stripe: &MockServer, worker: bool) -> TestApp {
    TestApp::spawn_with(Options {
        worker,
        configure: Some(testkit::app::configure({
            let api_base = stripe.uri();
            move |s| {
                s.providers.stripe_secret_key = Some(KEY.into());
                s.providers.stripe_api_base = api_base;
                s.queues.stripe_customer.backoff = Duration::from_millis(50);
            }
        })),
        ..Options::default()
    })
    .await
}

/// A POST /v1/customers with our key, form-encoded, as Stripe expects.
fn customers() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_address_gets_one_stripe_customer_and_its_id_is_stored() {
    let stripe = MockServer::start().await;
    let app = app_with_stripe(&stripe, true).await;
    let mut signup_body = app.sign_up_unverified("pay@example.com", "Ada Payer").await;
    let user_id = signup_body["user"]["id"]
        .as_str()
        .expect("user id")
        .to_owned();
    customers()
        .and(body_string_contains("email=pay%40example.com"))
        .and(body_string_contains("name=Ada+Payer"))
        .and(body_string_contains(
            format!("metadata%5Buser_id%5D={user_id}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "cus_Q1", "object": "customer" })),
        )
        .expect(1)
        .mount(&stripe)
        .await;
    app.wait_for_signup_jobs(&signup_body).await;
    assert!(
        stripe
            .received_requests()
            .await
            .expect("recorded")
            .is_empty(),
        "no customer for an unconfirmed address"
    );
    app.confirm(&mut signup_body).await;

    let job_id = job_id(&signup_body, "stripe-customer");
    app.wait_for_job_state(&job_id, "completed", DEADLINE).await;

    let me = app.me(signup_body["token"].as_str().expect("token")).await;
    assert_eq!(me["stripe_customer_id"], "cus_Q1");
    let job = app.job_status(&job_id, signup_body["token"].as_str()).await;
    assert_eq!(
        job["result"],
        json!({ "customer_id": "cus_Q1", "created": true })
    );
    let requests = stripe.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["idempotency-key"], job_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_outages_are_retried_with_the_same_idempotency_key() {
    let stripe = MockServer::start().await;
    customers()
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({ "error": { "message": "Too many requests" } })),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&stripe)
        .await;
    customers()
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({ "error": { "message": "Internal error" } })),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&stripe)
        .await;
    customers()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "cus_R3" })))
        .with_priority(3)
        .mount(&stripe)
        .await;
    let app = app_with_stripe(&stripe, true).await;

    let signup_body = app.sign_up("retry@example.com", "Retry").await;

    let job_id = job_id(&signup_body, "stripe-customer");
    app.wait_for_job_state(&job_id, "completed", DEADLINE).await;
    let job = app.job_status(&job_id, signup_body["token"].as_str()).await;
    assert_eq!(job["attempts_made"], 2, "the 429 spent no attempt: {job}");
    let requests = stripe.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.headers["idempotency-key"], job_id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_request_fails_at_once_and_only_operators_see_stripes_message() {
    let stripe = MockServer::start().await;
    customers()
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": { "type": "invalid_request_error", "message": "Invalid email address: pay@example" }
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    let app = app_with_stripe(&stripe, true).await;

    let signup_body = app.sign_up("bad@example.com", "Bad").await;

    let job_id = job_id(&signup_body, "stripe-customer");
    app.wait_for_job_state(&job_id, "failed", DEADLINE).await;
    let job = app.job_status(&job_id, signup_body["token"].as_str()).await;
    assert_eq!(job["attempts_made"], 1, "{job}");
    assert_eq!(job["error"]["code"], "failed", "{job}");
    let message = job["error"]["message"].as_str().expect("a sentence");
    assert!(message.starts_with("Billing "), "{message}");
    assert!(!message.contains("Invalid email"), "{message}");
    let detail = app.operator_view(&job_id).await["error_detail"]
        .as_str()
        .expect("the operator's reason")
        .to_owned();
    assert!(
        detail.contains("400") && detail.contains("Invalid email address"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_already_has_a_customer_gets_no_second_one() {
    let stripe = MockServer::start().await;
    customers()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "cus_NEW" })))
        .expect(0)
        .mount(&stripe)
        .await;
    let mut app = app_with_stripe(&stripe, false).await;
    let signup_body = app.sign_up("existing@example.com", "Existing").await;
    sqlx::query(
        "update users set stripe_customer_id = 'cus_OLD' where email = 'existing@example.com'",
    )
    .execute(&app.pool)
    .await
    .expect("update");

    app.start_worker();

    let job_id = job_id(&signup_body, "stripe-customer");
    app.wait_for_job_state(&job_id, "completed", DEADLINE).await;
    let job = app.job_status(&job_id, signup_body["token"].as_str()).await;
    assert_eq!(
        job["result"],
        json!({ "customer_id": "cus_OLD", "created": false })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stripe_key_the_job_completes_saying_what_is_missing() {
    let app = TestApp::spawn_with_worker().await;

    let signup_body = app.sign_up("nokey@example.com", "No Key").await;

    let job_id = job_id(&signup_body, "stripe-customer");
    app.wait_for_job_state(&job_id, "completed", DEADLINE).await;
    let job = app.job_status(&job_id, signup_body["token"].as_str()).await;
    assert_eq!(
        job["result"],
        json!({ "skipped": "STRIPE_SECRET_KEY is not set" })
    );
}
