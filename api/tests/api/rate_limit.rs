use serde_json::{Value, json};
use shared::config::Settings;
use testkit::TestApp;

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
