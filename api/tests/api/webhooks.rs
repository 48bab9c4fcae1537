//! `POST /api/webhooks/stripe` at the door: what is recorded, and what is
//! refused before anything is. (What the events do is the worker's, in its
//! tests.)

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use testkit::TestApp;
use testkit::stripe::{WEBHOOK_SECRET, event, now, signature, subscription};

async fn app_with_webhook() -> TestApp {
    TestApp::spawn_without_worker_with(|s| {
        s.providers.stripe_webhook_secret = Some(WEBHOOK_SECRET.into());
        s.providers.stripe_webhook_max_bytes = 64 * 1024;
    })
    .await
}

async fn recorded(app: &TestApp) -> (i64, i64) {
    let events: i64 = sqlx::query_scalar("select count(*) from stripe_events")
        .fetch_one(&app.pool)
        .await
        .expect("countable");
    let jobs: i64 = sqlx::query_scalar("select count(*) from jobs where queue = 'stripe-event'")
        .fetch_one(&app.pool)
        .await
        .expect("countable");
    (events, jobs)
}

fn subscription_event(id: &str) -> Value {
    event(
        id,
        "customer.subscription.updated",
        now(),
        subscription("sub_1", "cus_1", "active", "price_pro", now() + 86_400),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stripe_webhook_is_not_found_without_a_secret() {
    let app = TestApp::spawn_without_worker().await;
    let (status, body) = app
        .deliver_stripe_event(&subscription_event("evt_off"))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(recorded(&app).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_event_is_recorded_with_its_job_once_however_often_it_is_delivered() {
    let app = app_with_webhook().await;
    let event = subscription_event("evt_once");

    let (status, first) = app.deliver_stripe_event(&event).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["received"], true);
    assert_eq!(first["duplicate"], false);
    let job_id = first["job_id"].as_str().expect("the job that applies it");
    // Handed to Redis by the answer or, if Redis was slow, by the relay.
    app.wait_for_job_state(job_id, "waiting", testkit::DEADLINE)
        .await;

    let (status, again) = app.deliver_stripe_event(&event).await;
    assert_eq!(status, 200, "a repeat is acknowledged: {again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["job_id"], Value::Null);
    assert_eq!(recorded(&app).await, (1, 1), "one event row, one job");

    let stored: Value = sqlx::query_scalar("select payload from stripe_events where event_id = $1")
        .bind("evt_once")
        .fetch_one(&app.pool)
        .await
        .expect("stored");
    assert_eq!(stored, event, "stored as Stripe sent it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_signature_or_a_stale_timestamp_is_400_and_records_nothing() {
    let app = app_with_webhook().await;
    let body = serde_json::to_vec(&subscription_event("evt_bad")).expect("JSON");
    let cases = [
        ("no signature", None),
        (
            "another secret",
            Some(signature("whsec_other", now(), &body)),
        ),
        ("stale", Some(signature(WEBHOOK_SECRET, now() - 301, &body))),
        (
            "from the future",
            Some(signature(WEBHOOK_SECRET, now() + 301, &body)),
        ),
        ("no v1", Some(format!("t={}", now()))),
        ("garbage", Some("v1=zz,t=yesterday".to_owned())),
    ];
    for (case, signature) in cases {
        let response = app.post_stripe_webhook(&body, signature.as_deref()).await;
        assert_eq!(response.status(), 400, "{case}");
        let error: Value = response.json().await.expect("JSON");
        assert_eq!(error["error"]["code"], "invalid_webhook", "{case}: {error}");
    }
    // Signed for one body, sent with another.
    let signed = signature(WEBHOOK_SECRET, now(), &body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let response = app.post_stripe_webhook(&tampered, Some(&signed)).await;
    assert_eq!(response.status(), 400, "a changed body");
    assert_eq!(recorded(&app).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_signed_bodies_that_are_not_stripe_events_are_400_and_record_nothing() {
    let app = app_with_webhook().await;
    let mut runner = TestRunner::default();
    let not_events = prop_oneof![
        // Any bytes at all.
        proptest::collection::vec(any::<u8>(), 0..512),
        // JSON, of the wrong shape.
        any::<(Option<String>, Option<i64>, bool)>().prop_map(|(id, created, event_object)| {
            let mut value = json!({ "type": "customer.deleted", "data": { "object": {} } });
            if let Some(id) = id {
                value["id"] = json!(id);
            }
            if let Some(created) = created {
                value["created"] = json!(created);
            }
            if event_object {
                value["object"] = json!("event");
            }
            serde_json::to_vec(&value).expect("JSON")
        }),
    ];
    for _ in 0..64 {
        let body = not_events.new_tree(&mut runner).expect("a value").current();
        let signed = signature(WEBHOOK_SECRET, now(), &body);
        let response = app.post_stripe_webhook(&body, Some(&signed)).await;
        assert_eq!(
            response.status(),
            400,
            "{:?}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(recorded(&app).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_body_limit_is_413_and_records_nothing() {
    let app = app_with_webhook().await;
    let mut event = subscription_event("evt_big");
    event["data"]["object"]["metadata"] = json!({ "padding": "x".repeat(70 * 1024) });
    let (status, body) = app.deliver_stripe_event(&event).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(recorded(&app).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_arriving_together_are_each_durable_when_answered_and_repeats_record_nothing() {
    let app = app_with_webhook().await;
    // 30 events, each delivered three times, all at once: they are taken in
    // groups sharing a transaction, repeats in the same group included.
    let events: Vec<Value> = (0..30)
        .map(|n| subscription_event(&format!("evt_burst_{n}")))
        .collect();
    let deliveries = events.iter().cycle().take(events.len() * 3).map(|event| {
        let app = &app;
        async move {
            let event_id = event["id"].as_str().expect("an id").to_owned();
            let (status, answer) = app.deliver_stripe_event(event).await;
            assert_eq!(status, 200, "{event_id}: {answer}");
            // Answered: the event and its job are committed, whatever else
            // the group it was taken with still does.
            if let Some(job_id) = answer["job_id"].as_str() {
                let stored: Option<String> = sqlx::query_scalar(
                    "select e.event_id from stripe_events e
                     join jobs j on j.job_id = e.job_id
                     where e.event_id = $1 and j.job_id = $2::uuid and j.queue = 'stripe-event'",
                )
                .bind(&event_id)
                .bind(job_id)
                .fetch_optional(&app.pool)
                .await
                .expect("readable");
                assert_eq!(stored.as_deref(), Some(event_id.as_str()), "{answer}");
            }
            (event_id, answer)
        }
    });
    let answers = futures::future::join_all(deliveries).await;

    for event in &events {
        let id = event["id"].as_str().expect("an id");
        let firsts: Vec<&Value> = answers
            .iter()
            .filter(|(event_id, answer)| event_id == id && answer["duplicate"] == false)
            .map(|(_, answer)| answer)
            .collect();
        assert_eq!(firsts.len(), 1, "{id}: one delivery records it: {firsts:?}");
        assert!(firsts[0]["job_id"].is_string(), "{:?}", firsts[0]);
        let repeats = answers
            .iter()
            .filter(|(event_id, answer)| {
                event_id == id && answer["duplicate"] == true && answer["job_id"].is_null()
            })
            .count();
        assert_eq!(repeats, 2, "{id}: the others are repeats with no job");
    }
    assert_eq!(
        recorded(&app).await,
        (30, 30),
        "one row and one job per event"
    );
    // Every job is handed to Redis right after its commit: BullMQ holds it
    // while its record is still unconfirmed, so the relay (whose grace is
    // seconds) did not do it.
    for (_, answer) in answers
        .iter()
        .filter(|(_, answer)| answer["duplicate"] == false)
    {
        let job_id = answer["job_id"].as_str().expect("a job");
        let key = format!("bull:stripe-event:{job_id}");
        testkit::wait::until("the job to be in Redis", testkit::DEADLINE, || async {
            (app.redis.cli(&["exists", &key]).trim() == "1").then_some(())
        })
        .await;
        let by_the_relay: bool =
            sqlx::query_scalar("select enqueued_at is not null from jobs where job_id = $1::uuid")
                .bind(job_id)
                .fetch_one(&app.pool)
                .await
                .expect("readable");
        assert!(!by_the_relay, "{job_id} was left to the relay");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_postgres_refuses_fails_alone_and_the_deliveries_taken_with_it_are_recorded() {
    let app = app_with_webhook().await;
    // Valid JSON that jsonb cannot store: a NUL in a string.
    let mut poisoned = subscription_event("evt_nul");
    poisoned["data"]["object"]["metadata"] = json!({ "note": "a\u{0}b" });
    let mut together: Vec<Value> = (0..15)
        .map(|n| subscription_event(&format!("evt_with_nul_{n}")))
        .collect();
    together.insert(7, poisoned);
    let first = subscription_event("evt_before");
    // The intake's first group waits on this lock, so the deliveries that
    // come meanwhile are taken together, the poisoned one among them.
    let mut lock = app.pool.begin().await.expect("a transaction");
    sqlx::query("lock table stripe_events in share row exclusive mode")
        .execute(&mut *lock)
        .await
        .expect("locked");

    let held = Duration::from_millis(300);
    let (before, answers, ()) = tokio::join!(
        app.deliver_stripe_event(&first),
        async {
            // A window must pass: the first delivery reaches the lock first.
            tokio::time::sleep(held / 3).await;
            futures::future::join_all(together.iter().map(|event| app.deliver_stripe_event(event)))
                .await
        },
        async {
            // A window must pass: every other delivery is queued meanwhile.
            tokio::time::sleep(held).await;
            lock.commit().await.expect("released");
        },
    );

    assert_eq!(before.0, 200, "{}", before.1);
    for (event, (status, answer)) in together.iter().zip(&answers) {
        if event["id"] == "evt_nul" {
            assert!(*status >= 500, "the poisoned event: {status} {answer}");
        } else {
            assert_eq!(*status, 200, "{}: {answer}", event["id"]);
            assert!(answer["job_id"].is_string(), "{answer}");
        }
    }
    assert_eq!(recorded(&app).await, (16, 16), "every other event, once");
}
