use serde_json::Value;
use testkit::TestApp;
use testkit::app::Options;

#[tokio::test]
async fn admin_endpoints_do_not_exist_without_an_admin_token() {
    let app = TestApp::spawn_without_worker_with(move |s| s.auth.admin_token = None).await;

    for path in [
        "/api/admin/queues",
        "/api/admin/jobs/0190c0de-0000-7000-8000-000000000000",
        "/admin",
        "/admin.js",
        "/js/admin/call.js",
        "/js/admin/elements.js",
        "/js/admin/queues.js",
        "/js/admin/failed.js",
    ] {
        let response = app.get(path, Some("anything")).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let sign_in = app
        .post_json("/api/admin/session", &serde_json::json!({ "token": "" }))
        .await;
    assert_eq!(sign_in.status(), 404);
}

fn cookie_of(response: &reqwest::Response) -> String {
    let set = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    set.split(';').next().expect("name=value").to_owned()
}

#[tokio::test]
async fn an_operator_signs_in_for_a_strict_http_only_cookie_and_actions_need_our_header() {
    let app = TestApp::spawn_without_worker().await;
    let sign_in = async |token: &str| {
        app.post_json("/api/admin/session", &serde_json::json!({ "token": token }))
            .await
    };

    assert_eq!(sign_in("not the token").await.status(), 401);
    let signed_in = sign_in(testkit::app::ADMIN_TOKEN).await;
    assert_eq!(signed_in.status(), 204);
    let set = signed_in.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http in tests: {set}");
    let cookie = cookie_of(&signed_in);

    let with_cookie = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.address))
            .header("cookie", cookie.clone())
    };
    let queues = with_cookie(reqwest::Method::GET, "/api/admin/queues")
        .send()
        .await
        .expect("answer");
    assert_eq!(queues.status(), 200);
    let page = with_cookie(reqwest::Method::GET, "/admin")
        .send()
        .await
        .expect("answer");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("Acme operators"));

    let forged = with_cookie(
        reqwest::Method::POST,
        "/api/admin/queues/welcome-email/pause",
    )
    .send()
    .await
    .expect("answer");
    assert_eq!(forged.status(), 403, "a cookie alone cannot act");
    let paused = with_cookie(
        reqwest::Method::POST,
        "/api/admin/queues/welcome-email/pause",
    )
    .header("x-acme-admin", "1")
    .send()
    .await
    .expect("answer");
    assert_eq!(paused.status(), 204);
    let view: Value = with_cookie(reqwest::Method::GET, "/api/admin/queues")
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let welcome = &view["queues"][0];
    assert_eq!(welcome["queue"], "welcome-email");
    assert_eq!(welcome["is_paused"], true);
    assert_eq!(welcome["last_hour"].as_array().map(Vec::len), Some(60));

    let tampered = format!("{cookie}x");
    let refused = app
        .client
        .get(format!("{}/api/admin/queues", app.address))
        .header("cookie", tampered)
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 401);
    let signed_out = with_cookie(reqwest::Method::DELETE, "/api/admin/session")
        .header("x-acme-admin", "1")
        .send()
        .await
        .expect("answer");
    assert_eq!(signed_out.status(), 204);
    assert!(
        signed_out.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_counts_need_the_admin_token_and_show_real_numbers() {
    let mut app = TestApp::spawn_with(Options {
        worker: true,
        configure: Some(testkit::app::configure(move |s| {
            s.auth.admin_token = Some("s3cret-operator-token".into())
        })),
        ..Options::default()
    })
    .await;
    let body = app.sign_up("counted@example.com", "Counted").await;
    let job = &testkit::job_id(&body, "welcome-email");
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(job).await, "completed");

    let anonymous = app.get("/api/admin/queues", None).await;
    let user_token = app.get("/api/admin/queues", body["token"].as_str()).await;
    let admin = app
        .get("/api/admin/queues", Some("s3cret-operator-token"))
        .await;

    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        user_token.status(),
        401,
        "a user token is not an admin token"
    );
    assert_eq!(admin.status(), 200);
    let counts: Value = admin.json().await.expect("json");
    let queue = &counts["queues"][0];
    assert_eq!(queue["queue"], "welcome-email");
    assert_eq!(queue["completed"], 1);
    for state in ["waiting", "active", "delayed", "failed", "paused"] {
        assert_eq!(queue[state], 0, "{state}: {counts}");
    }
}
