//! The per-client limits of signup, login and operator authentication:
//! what a client sees, on one instance and across several, with and
//! without Redis.

use std::sync::Arc;
use std::time::Duration;

use api::rate_limit::{ClientKey, Limiter};
use platform::config::Settings;
use queue::JobQueues;
use serde_json::{Value, json};
use testkit::TestApp;
use testkit::app::ADMIN_TOKEN;

async fn app_with_limit(configure: impl FnOnce(&mut Settings) + Send + 'static) -> TestApp {
    TestApp::spawn_without_worker_with(move |s| {
        s.auth.rate_limit = 3;
        configure(s);
    })
    .await
}

#[tokio::test]
async fn password_guessing_is_cut_off_with_a_429_and_retry_after() {
    let app = app_with_limit(|_| {}).await;
    let guess = json!({ "email": "victim@example.com", "password": "guess guess guess" });

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.post_json("/api/login", &guess).await);
    }

    let codes: Vec<u16> = statuses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(codes, [401, 401, 401, 429]);
    let limited = statuses.pop().expect("four answers");
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("a numeric Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let error: Value = limited.json().await.expect("json");
    assert_eq!(error["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn signup_and_login_share_the_limit_but_other_routes_do_not() {
    let app = app_with_limit(|_| {}).await;
    let body = app.sign_up("one@example.com", "One").await;
    let token = body["token"].as_str();
    for _ in 0..2 {
        app.post_json(
            "/api/login",
            &json!({ "email": "one@example.com", "password": "nope nope" }),
        )
        .await;
    }

    let signup = app
        .post_json(
            "/api/signup",
            &json!({ "email": "two@example.com", "password": "correct horse battery", "name": "Two" }),
        )
        .await;
    let me = app.get("/api/me", token).await;

    assert_eq!(signup.status(), 429);
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let app =
        app_with_limit(move |s| s.server.client_ip_header = Some("X-Forwarded-For".into())).await;
    let guess = json!({ "email": "x@example.com", "password": "guess guess guess" });
    let from = |client: &'static str| {
        let request = app
            .client
            .post(format!("{}/api/login", app.address))
            // The client may forge the first hops; the proxy appends the last.
            .header("x-forwarded-for", format!("6.6.6.6, {client}"))
            .json(&guess);
        async move { request.send().await.expect("answers").status().as_u16() }
    };

    for _ in 0..3 {
        assert_eq!(from("203.0.113.7").await, 401);
    }

    assert_eq!(from("203.0.113.7").await, 429);
    assert_eq!(
        from("198.51.100.9").await,
        401,
        "another client is not limited"
    );
}

async fn guess(app: &TestApp, address: &str) -> u16 {
    app.client
        .post(format!("{address}/api/login"))
        .json(&json!({ "email": "victim@example.com", "password": "guess guess guess" }))
        .send()
        .await
        .expect("answered")
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_limit_holds_across_api_instances() {
    let app = app_with_limit(|_| {}).await;
    let other = app.start_another_api().await;
    let (here, there) = (app.address.as_str(), other.as_str());

    let mut codes = Vec::new();
    for address in [here, there, here, there, here] {
        codes.push(guess(&app, address).await);
    }

    // Counted per instance, the fourth guess (the second on `there`) would pass.
    assert_eq!(codes, [401, 401, 401, 429, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_the_admin_token_on_one_instance_is_refused_on_another() {
    let app = TestApp::spawn_without_worker().await;
    let other = app.start_another_api().await;
    let call = |address: &str, token: &str| {
        app.client
            .get(format!("{address}/api/admin/queues"))
            .bearer_auth(token)
            .send()
    };

    for n in 0..10 {
        let answer = call(&other, &format!("guess-{n:032}"))
            .await
            .expect("answered");
        assert_eq!(answer.status(), 401, "guess {n}");
    }
    let refused = call(&app.address, ADMIN_TOKEN).await.expect("answered");

    assert_eq!(
        refused.status(),
        429,
        "the failures counted on one instance block the client on the other"
    );
}

#[tokio::test]
async fn with_redis_down_each_instance_still_limits_and_keeps_serving() {
    let mut app = app_with_limit(|_| {}).await;
    app.redis.stop();

    let signup = app
        .post_json(
            "/api/signup",
            &json!({ "email": "new@example.com", "password": "correct horse battery", "name": "New" }),
        )
        .await;
    let mut codes = vec![signup.status().as_u16()];
    for _ in 0..3 {
        codes.push(guess(&app, &app.address).await);
    }

    assert_eq!(
        codes,
        [201, 401, 401, 429],
        "signups are taken (their jobs wait in the outbox) and guessing is still cut off"
    );
}

/// The clients tracked in Redis by the limit `name`: the fields of its shards
/// but their window numbers.
fn tracked_in_redis(app: &TestApp, name: &str) -> usize {
    let pattern = format!("*:limits:{{{name}:*");
    app.redis
        .cli(&["--scan", "--pattern", &pattern])
        .lines()
        .map(|key| {
            let fields: usize = app
                .redis
                .cli(&["hlen", key])
                .trim()
                .parse()
                .expect("a count");
            fields - 1
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_limit_holds_at_most_its_capacity_in_redis_whatever_the_number_of_clients() {
    let app = TestApp::spawn_without_worker().await;
    let settings = app.settings();
    let queues = Arc::new(JobQueues::new(&settings.redis, settings.queues));
    let limiter = Limiter::shared("capacity-test", 1, Duration::from_secs(60), 160, queues);
    let client = |n: u32| ClientKey::from(std::net::IpAddr::from(n.to_be_bytes()));

    for n in 0..5_000 {
        let _ = limiter.check(client(n)).await;
    }
    for n in 0..5_000_u32 {
        // IPv6 /64s spread over the shards as well as IPv4 addresses do.
        let address: std::net::IpAddr = format!("2001:db8:0:{n:x}::1").parse().expect("IPv6");
        let _ = limiter.check(ClientKey::from(address)).await;
    }

    assert_eq!(tracked_in_redis(&app, "capacity-test"), 160);
    assert!(
        limiter.check(client(0)).await.is_err(),
        "clients already tracked are still limited"
    );
    assert!(
        limiter.peek(client(4_999)).await.is_ok(),
        "a client counted nowhere is not refused"
    );
    assert_eq!(
        tracked_in_redis(&app, "capacity-test"),
        160,
        "a peek adds nobody"
    );
}
