//! One rate budget per provider, counted in Redis: every queue and every
//! worker calling Stripe shares it, and Stripe's 429 holds back every
//! queue that calls it, not only the one that met it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use testkit::app::ADMIN_TOKEN;
use testkit::app::Options;
use testkit::{DEADLINE, TestApp, job_id};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
const PASSWORD: &str = "correct horse battery";

/// Stripe as a mock that records when each request arrived (and its
/// method), answering with the scripted replies in order (the last repeats).
#[derive(Clone)]
struct Recorded {
    replies: Arc<Mutex<Vec<ResponseTemplate>>>,
    arrivals: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Recorded {
    fn new(replies: Vec<ResponseTemplate>, arrivals: &Arc<Mutex<Vec<(Instant, String)>>>) -> Self {
        Self {
            replies: Arc::new(Mutex::new(replies)),
            arrivals: arrivals.clone(),
        }
    }
}

impl Respond for Recorded {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.arrivals
            .lock()
            .expect("not poisoned")
            .push((Instant::now(), request.method.to_string()));
        let mut replies = self.replies.lock().expect("not poisoned");
        if replies.len() > 1 {
            replies.remove(0)
        } else {
            replies[0].clone()
        }
    }
}

/// A Stripe whose `POST /v1/customers` answers `creates` in order and whose
/// `DELETE /v1/customers/…` deletes; returns it and its arrivals.
async fn stripe(
    creates: Vec<ResponseTemplate>,
) -> (MockServer, Arc<Mutex<Vec<(Instant, String)>>>) {
    let server = MockServer::start().await;
    let arrivals = Arc::default();
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(Recorded::new(creates, &arrivals))
        .mount(&server)
        .await;
    let deleted = ResponseTemplate::new(200).set_body_json(json!({ "deleted": true }));
    Mock::given(method("DELETE"))
        .and(path_regex("^/v1/customers/cus_"))
        .respond_with(Recorded::new(vec![deleted], &arrivals))
        .mount(&server)
        .await;
    (server, arrivals)
}

/// Stripe's answers to `count` customers created, each its own id.
fn created(count: usize) -> Vec<ResponseTemplate> {
    (0..count)
        .map(|n| {
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": format!("cus_New{n}"), "object": "customer" }))
        })
        .collect()
}

async fn app_with_stripe(stripe: &MockServer, worker: bool, per_second: u64) -> TestApp {
    let api_base = stripe.uri();
    TestApp::spawn_with(Options {
        worker,
        ..Options::default().configure(move |s| {
            s.providers.stripe_secret_key = Some("sk_test_budget".into());
            s.providers.stripe_api_base = api_base;
            s.providers.stripe_rate_limit = per_second;
        })
    })
    .await
}

/// An account with a Stripe customer already and no stripe-customer job
/// (its address is unconfirmed), asking to be deleted: its
/// `account-deletion` job deletes the customer at Stripe (and its record
/// goes with the account). Returns the account's id.
async fn a_customer_leaving(app: &TestApp, n: usize) -> uuid::Uuid {
    let signup = app
        .sign_up_unverified(&format!("leaving{n}@example.com"), "Leaving")
        .await;
    let user_id = signup["user"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("user id");
    let customer = format!("cus_Leaving{n}");
    store::users::set_stripe_customer(&app.pool, user_id, &customer)
        .await
        .expect("the customer is stored");
    let token = signup["token"].as_str().expect("token");
    let accepted = app
        .send_json(
            Method::DELETE,
            "/api/me",
            token,
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.expect("JSON");
    assert_eq!(accepted["job"]["name"], "account-deletion");
    user_id
}

async fn wait_until_gone(app: &TestApp, user_id: uuid::Uuid) {
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

async fn wait_for_requests(
    arrivals: &Arc<Mutex<Vec<(Instant, String)>>>,
    count: usize,
) -> Vec<(Instant, String)> {
    testkit::wait::until("Stripe to get every request", DEADLINE, || async {
        let seen = arrivals.lock().expect("not poisoned").clone();
        (seen.len() >= count).then_some(seen)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stripe_queues_on_two_workers_never_exceed_stripes_budget_together() {
    let (stripe, arrivals) = stripe(created(6)).await;
    let mut app = app_with_stripe(&stripe, false, 3).await;
    // Both queues' jobs wait in Redis until both workers start together.
    let mut joining = Vec::new();
    let mut leaving = Vec::new();
    for n in 0..6 {
        let signup = app
            .sign_up(&format!("joining{n}@example.com"), "Joining")
            .await;
        joining.push(job_id(&signup, "stripe-customer"));
        leaving.push(a_customer_leaving(&app, n).await);
    }

    app.start_worker();
    let mut other = app.spawn_worker_process(WORKER);
    for job in &joining {
        app.wait_for_job_state(job, "completed", DEADLINE).await;
    }
    for user in leaving {
        wait_until_gone(&app, user).await;
    }
    other.terminate();
    assert!(other.wait(DEADLINE).await.success());

    let seen = wait_for_requests(&arrivals, 12).await;
    assert_eq!(seen.len(), 12, "one call per job: {seen:?}");
    for kind in ["POST", "DELETE"] {
        assert_eq!(
            seen.iter().filter(|(_, m)| m == kind).count(),
            6,
            "{seen:?}"
        );
    }
    // Each call is granted in Redis a moment before it reaches Stripe: a
    // window 50 ms short of the second allows for that hop.
    let window = Duration::from_millis(950);
    let mut times: Vec<Instant> = seen.iter().map(|(at, _)| *at).collect();
    times.sort();
    for (i, start) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|at| **at - *start < window)
            .count();
        assert!(
            within <= 3,
            "{within} calls within {window:?} of call {i}, over the budget of 3 a second: {times:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_holds_back_every_stripe_queue_without_spending_attempts() {
    let server = MockServer::start().await;
    let arrivals: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let busy = ResponseTemplate::new(429)
        .insert_header("retry-after", "3")
        .set_body_json(json!({ "error": { "message": "Too many requests" } }));
    let deleted = ResponseTemplate::new(200).set_body_json(json!({ "deleted": true }));
    Mock::given(method("DELETE"))
        .and(path_regex("^/v1/customers/cus_"))
        .respond_with(Recorded::new(vec![busy, deleted], &arrivals))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(Recorded::new(created(1), &arrivals))
        .mount(&server)
        .await;
    let app = app_with_stripe(&server, true, 25).await;

    // The account-deletion queue meets Stripe's 429…
    let leaving = a_customer_leaving(&app, 0).await;
    let refused = wait_for_requests(&arrivals, 1).await[0].0;
    // …and the dashboard shows Stripe held back, so the hold is on.
    testkit::wait::until("the dashboard to show Stripe's hold", DEADLINE, || async {
        let queues: Value = app
            .get("/api/admin/queues", Some(ADMIN_TOKEN))
            .await
            .json()
            .await
            .ok()?;
        let stripe = queues["providers"]
            .as_array()?
            .iter()
            .find(|p| p["provider"] == "stripe")?
            .clone();
        assert_eq!(stripe["limit"], 25, "{stripe}");
        (stripe["held_for_seconds"].as_f64()? > 0.0).then_some(())
    })
    .await;
    // The stripe-customer queue has met no 429 itself.
    let signup = app.sign_up("joining@example.com", "Joining").await;

    let joining = job_id(&signup, "stripe-customer");
    app.wait_for_job_state(&joining, "completed", DEADLINE)
        .await;
    wait_until_gone(&app, leaving).await;
    let seen = wait_for_requests(&arrivals, 3).await;
    let created = seen
        .iter()
        .find(|(_, m)| m == "POST")
        .expect("the customer was created")
        .0;
    let waited = created - refused;
    assert!(
        waited >= Duration::from_millis(2900),
        "the other queue called Stripe {waited:?} after the 429 that asked for 3 s"
    );
    let job = app.operator_view(&joining).await;
    assert_eq!(job["attempts_made"], 1, "the hold spent no attempt: {job}");
}
