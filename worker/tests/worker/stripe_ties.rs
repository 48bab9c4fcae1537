//! Stripe events of the same second: `customer.subscription.created`
//! (`incomplete`) and `.updated` (`active`) routinely share Stripe's
//! `created` second, and whichever order they arrive in, the user keeps
//! the subscription Stripe holds: asked for it, retried while Stripe
//! cannot answer, and ruled by the status order without a Stripe key.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::app::Options;
use testkit::stripe::{WEBHOOK_SECRET, event, now, subscription};
use testkit::{DEADLINE, TestApp};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk_test_ties";
const CUSTOMER: &str = "cus_ties";

/// An app whose users get [`CUSTOMER`] from `stripe` when confirmed (with
/// `key`; without one, nobody gets a customer by themselves).
async fn app(stripe: &MockServer, key: Option<&str>) -> TestApp {
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": CUSTOMER, "object": "customer" })),
        )
        .mount(stripe)
        .await;
    let (api_base, key) = (stripe.uri(), key.map(str::to_owned));
    TestApp::spawn_with(Options::with_worker().configure(move |s| {
        s.providers.stripe_secret_key = key.map(Into::into);
        s.providers.stripe_api_base = api_base;
        s.providers.stripe_webhook_secret = Some(WEBHOOK_SECRET.into());
        s.queues.stripe_event.attempts = 3;
        s.queues.stripe_event.backoff = Duration::from_millis(50);
    }))
    .await
}

/// A confirmed user whose Stripe customer is [`CUSTOMER`]; returns their
/// token.
async fn customer(app: &TestApp) -> String {
    let signup = app.sign_up("tie@example.com", "Tie Payer").await;
    let job = testkit::job_id(&signup, "stripe-customer");
    app.wait_for_job_state(&job, "completed", DEADLINE).await;
    if app.settings().providers.stripe_secret_key.is_none() {
        let user = signup["user"]["id"].as_str().expect("an id");
        let user = user.parse().expect("a uuid");
        assert!(
            store::users::set_stripe_customer(&app.pool, user, CUSTOMER)
                .await
                .expect("writable")
        );
    }
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

/// The `created` (incomplete) and `updated` (active) events of `sub` in
/// the second `t`.
fn created_and_paid(sub: &str, t: i64) -> (Value, Value) {
    let created = event(
        &format!("evt_{sub}_created"),
        "customer.subscription.created",
        t,
        subscription(sub, CUSTOMER, "incomplete", "price_pro", t + 3600),
    );
    let paid = event(
        &format!("evt_{sub}_updated"),
        "customer.subscription.updated",
        t,
        subscription(sub, CUSTOMER, "active", "price_pro", t + 86_400),
    );
    (created, paid)
}

/// Stripe answers `GET /v1/subscriptions/{sub}`, given our key, with
/// `reply`.
async fn stripe_holds(stripe: &MockServer, sub: &str, reply: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{sub}")))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(reply)
        .mount(stripe)
        .await;
}

fn active(sub: &str, t: i64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(subscription(
        sub,
        CUSTOMER,
        "active",
        "price_pro",
        t + 86_400,
    ))
}

async fn lookups(stripe: &MockServer, sub: &str) -> usize {
    let wanted = format!("/v1/subscriptions/{sub}");
    let requests = stripe.received_requests().await.expect("recorded");
    requests
        .iter()
        .filter(|request| request.method == reqwest::Method::GET && request.url.path() == wanted)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_second_events_leave_the_subscription_stripe_holds_in_either_order() {
    let stripe = MockServer::start().await;
    let app = app(&stripe, Some(KEY)).await;
    let token = customer(&app).await;
    let t = now();

    // Paid first, created last: the last delivery is the older state.
    stripe_holds(&stripe, "sub_late", active("sub_late", t)).await;
    let (created, paid) = created_and_paid("sub_late", t);
    apply(&app, &paid).await;
    let tie = apply(&app, &created).await;
    assert_eq!(tie["state"], "completed", "{tie}");
    let plan = &app.me(&token).await["subscription"];
    assert_eq!(
        (&plan["id"], &plan["status"]),
        (&json!("sub_late"), &json!("active"))
    );
    assert_eq!(tie["result"]["same_second_settled_by"], "stripe", "{tie}");
    assert_eq!(lookups(&stripe, "sub_late").await, 1);

    // Created first, paid last (a later second: `GET /api/me` shows it).
    stripe_holds(&stripe, "sub_timely", active("sub_timely", t + 5)).await;
    let (created, paid) = created_and_paid("sub_timely", t + 5);
    apply(&app, &created).await;
    apply(&app, &paid).await;
    let plan = &app.me(&token).await["subscription"];
    assert_eq!(
        (&plan["id"], &plan["status"]),
        (&json!("sub_timely"), &json!("active"))
    );
    assert_eq!(plan["current_period_end"], json!(iso(t + 5 + 86_400)));
    assert_eq!(lookups(&stripe, "sub_timely").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_lookup_that_fails_is_retried_and_a_missing_subscription_ends() {
    let stripe = MockServer::start().await;
    let app = app(&stripe, Some(KEY)).await;
    let token = customer(&app).await;
    let t = now();

    // A 429 (held back, no attempt spent), then a 503 (a retried attempt),
    // then the answer.
    for status in [429, 503] {
        Mock::given(method("GET"))
            .and(path("/v1/subscriptions/sub_flaky"))
            .respond_with(ResponseTemplate::new(status))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&stripe)
            .await;
    }
    stripe_holds(&stripe, "sub_flaky", active("sub_flaky", t)).await;
    let (created, paid) = created_and_paid("sub_flaky", t);
    apply(&app, &paid).await;
    let tie = apply(&app, &created).await;
    assert_eq!(
        (&tie["state"], &tie["attempts_made"]),
        (&json!("completed"), &json!(2)),
        "{tie}"
    );
    assert_eq!(app.me(&token).await["subscription"]["status"], "active");

    // Stripe has no such subscription: it cannot be paid for.
    stripe_holds(
        &stripe,
        "sub_gone",
        ResponseTemplate::new(404).set_body_json(json!({ "error": {
            "type": "invalid_request_error", "code": "resource_missing",
            "message": "No such subscription: 'sub_gone'" }})),
    )
    .await;
    let (created, paid) = created_and_paid("sub_gone", t + 5);
    apply(&app, &created).await;
    let gone = apply(&app, &paid).await;
    assert_eq!(gone["state"], "completed", "{gone}");
    let plan = &app.me(&token).await["subscription"];
    assert_eq!(
        (&plan["id"], &plan["status"]),
        (&json!("sub_flaky"), &json!("active")),
        "the ended one is not shown over the live one"
    );
    let stored: String =
        sqlx::query_scalar("select status from subscriptions where subscription_id = 'sub_gone'")
            .fetch_one(&app.pool)
            .await
            .expect("stored");
    assert_eq!(stored, "canceled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stripe_key_the_status_further_along_wins_a_tie() {
    let stripe = MockServer::start().await;
    let app = app(&stripe, None).await;
    let token = customer(&app).await;
    let t = now();

    let (created, paid) = created_and_paid("sub_rule", t);
    apply(&app, &paid).await;
    let tie = apply(&app, &created).await;
    assert_eq!(app.me(&token).await["subscription"]["status"], "active");
    assert_eq!(
        tie["result"]["same_second_settled_by"], "status order",
        "{tie}"
    );

    // Canceled is final: an update of its second does not revive it.
    let canceled = subscription("sub_rule", CUSTOMER, "canceled", "price_pro", t + 86_400);
    let deleted = event(
        "evt_deleted",
        "customer.subscription.deleted",
        t + 9,
        canceled,
    );
    let active = subscription("sub_rule", CUSTOMER, "active", "price_pro", t + 86_400);
    let late = event("evt_late", "customer.subscription.updated", t + 9, active);
    apply(&app, &deleted).await;
    apply(&app, &late).await;
    assert_eq!(app.me(&token).await["subscription"]["status"], "canceled");
    assert_eq!(stripe.received_requests().await.expect("recorded").len(), 0);
}

/// Unix seconds as `GET /api/me` writes times.
fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
