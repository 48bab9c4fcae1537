//! Stripe events, from a signed delivery to what the user sees in
//! `GET /api/me`: subscriptions kept current whatever order events come
//! in, deleted customers forgotten, the rest recorded and ignored with a
//! reason, and bad events in the dead letters.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::app::{ADMIN_TOKEN, Options};
use testkit::stripe::{WEBHOOK_SECRET, event, now, subscription};
use testkit::{DEADLINE, TestApp};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An app whose users get the Stripe customer `customer` when confirmed.
async fn app_with_customer(stripe: &MockServer, customer: &str) -> TestApp {
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": customer, "object": "customer" })),
        )
        .mount(stripe)
        .await;
    TestApp::spawn_with(Options {
        worker: true,
        configure: Some(testkit::app::configure({
            let api_base = stripe.uri();
            move |s| {
                s.providers.stripe_secret_key = Some("sk_test_events".into());
                s.providers.stripe_api_base = api_base;
                s.providers.stripe_webhook_secret = Some(WEBHOOK_SECRET.into());
                s.queues.stripe_event.attempts = 2;
                s.queues.stripe_event.backoff = Duration::from_millis(50);
            }
        })),
        ..Options::default()
    })
    .await
}

/// A confirmed user whose Stripe customer exists; returns their token.
async fn customer(app: &TestApp, email: &str) -> String {
    let signup = app.sign_up(email, "Ada Payer").await;
    let job = testkit::job_id(&signup, "stripe-customer");
    app.wait_for_job_state(&job, "completed", DEADLINE).await;
    signup["token"].as_str().expect("a token").to_owned()
}

/// Delivers `event` and waits for its job to finish; returns the job as
/// operators see it.
async fn apply(app: &TestApp, event: &Value) -> Value {
    let (status, answer) = app.deliver_stripe_event(event).await;
    assert_eq!(status, 200, "{answer}");
    let job = answer["job_id"].as_str().expect("a new event has a job");
    testkit::wait::until("the event's job to finish", DEADLINE, || async {
        let state = app.job_state(job).await;
        (state == "completed" || state == "failed").then_some(())
    })
    .await;
    app.operator_view(job).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_subscription_event_becomes_the_plan_the_user_sees() {
    let stripe = MockServer::start().await;
    let app = app_with_customer(&stripe, "cus_plan").await;
    let token = customer(&app, "plan@example.com").await;
    assert_eq!(app.me(&token).await["subscription"], Value::Null);

    let period_end = 1_900_000_000;
    let job = apply(
        &app,
        &event(
            "evt_created",
            "customer.subscription.created",
            now(),
            subscription("sub_plan", "cus_plan", "active", "price_pro", period_end),
        ),
    )
    .await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(
        job["user_id"],
        Value::Null,
        "a Stripe event is the system's job"
    );

    let me = app.me(&token).await;
    assert_eq!(
        me["subscription"],
        json!({
            "id": "sub_plan",
            "status": "active",
            "price_id": "price_pro",
            "current_period_end": "2030-03-17T17:46:40Z",
            "cancel_at_period_end": false,
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_event_arriving_after_a_newer_one_changes_nothing() {
    let stripe = MockServer::start().await;
    let app = app_with_customer(&stripe, "cus_order").await;
    let token = customer(&app, "order@example.com").await;
    let t = now();

    let mut canceling = subscription("sub_o", "cus_order", "active", "price_pro", t + 86_400);
    canceling["cancel_at_period_end"] = json!(true);
    apply(
        &app,
        &event("evt_new", "customer.subscription.updated", t, canceling),
    )
    .await;
    let late = apply(
        &app,
        &event(
            "evt_old",
            "customer.subscription.created",
            t - 60,
            subscription(
                "sub_o",
                "cus_order",
                "incomplete",
                "price_basic",
                t + 86_400,
            ),
        ),
    )
    .await;
    assert_eq!(late["state"], "completed");
    assert!(
        late["result"]["ignored"]
            .as_str()
            .is_some_and(|reason| reason.contains("newer event")),
        "{late}"
    );
    let plan = &app.me(&token).await["subscription"];
    assert_eq!(plan["status"], "active");
    assert_eq!(plan["price_id"], "price_pro");
    assert_eq!(plan["cancel_at_period_end"], true);

    // Deleted, then a late update of the same second: the tie goes to
    // what Stripe holds, canceled.
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_o"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription(
            "sub_o",
            "cus_order",
            "canceled",
            "price_pro",
            t + 86_400,
        )))
        .mount(&stripe)
        .await;
    apply(
        &app,
        &event(
            "evt_deleted",
            "customer.subscription.deleted",
            t + 10,
            subscription("sub_o", "cus_order", "canceled", "price_pro", t + 86_400),
        ),
    )
    .await;
    apply(
        &app,
        &event(
            "evt_same_second",
            "customer.subscription.updated",
            t + 10,
            subscription("sub_o", "cus_order", "active", "price_pro", t + 86_400),
        ),
    )
    .await;
    assert_eq!(app.me(&token).await["subscription"]["status"], "canceled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_delivered_twice_is_applied_once() {
    let stripe = MockServer::start().await;
    let app = app_with_customer(&stripe, "cus_twice").await;
    customer(&app, "twice@example.com").await;
    let event = event(
        "evt_twice",
        "customer.subscription.created",
        now(),
        subscription("sub_t", "cus_twice", "trialing", "price_pro", now() + 60),
    );
    apply(&app, &event).await;
    let (status, again) = app.deliver_stripe_event(&event).await;
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)));
    let runs: i64 = sqlx::query_scalar("select count(*) from jobs where queue = 'stripe-event'")
        .fetch_one(&app.pool)
        .await
        .expect("countable");
    assert_eq!(runs, 1, "one job for the event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_customer_is_forgotten_and_unknown_customers_and_types_are_ignored_with_a_reason()
{
    let stripe = MockServer::start().await;
    let app = app_with_customer(&stripe, "cus_gone").await;
    let token = customer(&app, "gone@example.com").await;

    let stranger = apply(
        &app,
        &event(
            "evt_stranger",
            "customer.subscription.created",
            now(),
            subscription("sub_s", "cus_nobody", "active", "price_pro", now() + 60),
        ),
    )
    .await;
    assert_eq!(stranger["state"], "completed");
    assert_eq!(
        stranger["result"]["ignored"],
        "no account has the Stripe customer cus_nobody"
    );
    let unhandled = apply(
        &app,
        &event(
            "evt_invoice",
            "invoice.paid",
            now(),
            json!({ "id": "in_1", "object": "invoice" }),
        ),
    )
    .await;
    assert_eq!(
        unhandled["result"]["ignored"],
        "events of type invoice.paid are not handled"
    );

    let deleted = apply(
        &app,
        &event(
            "evt_customer_deleted",
            "customer.deleted",
            now(),
            json!({ "id": "cus_gone", "object": "customer" }),
        ),
    )
    .await;
    assert_eq!(
        deleted["result"]["customer_cleared"], "cus_gone",
        "{deleted}"
    );
    assert_eq!(app.me(&token).await["stripe_customer_id"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_object_is_not_what_its_type_says_fails_into_the_dead_letters() {
    let stripe = MockServer::start().await;
    let app = app_with_customer(&stripe, "cus_bad").await;
    let job = apply(
        &app,
        &event(
            "evt_malformed",
            "customer.subscription.updated",
            now(),
            json!({ "object": "subscription", "status": 7 }),
        ),
    )
    .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error_detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("not a subscription")),
        "{job}"
    );
    let listed: Value = app
        .get("/api/admin/queues/stripe-event/failed", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .expect("JSON");
    let ids: Vec<&str> = listed["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|job| job["id"].as_str())
        .collect();
    assert_eq!(ids, [job["id"].as_str().expect("an id")], "{listed}");
}
