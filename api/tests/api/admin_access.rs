//! Operator access that cannot be guessed or kept: sessions end on the
//! server, failures are throttled and logged once, every action is audited,
//! and thousands of failed jobs are paged.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::app::{ADMIN_TOKEN, Options};
use testkit::{DEADLINE, TestApp};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const API: &str = env!("CARGO_BIN_EXE_api");

/// Signs in on `base`; the `name=value` of the session cookie.
async fn sign_in(app: &TestApp, base: &str) -> String {
    let response = app
        .client
        .post(format!("{base}/api/admin/session"))
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 204);
    let set = response.headers()["set-cookie"].to_str().expect("ascii");
    let cookie = set.split(';').next().expect("name=value").to_owned();
    assert!(
        !cookie.contains(&ADMIN_TOKEN[..8]),
        "the cookie says nothing of the token"
    );
    cookie
}

/// `method path` on `base` with `cookie` (and our action header).
async fn with_cookie(
    app: &TestApp,
    base: &str,
    method: Method,
    path: &str,
    cookie: &str,
) -> StatusCode {
    app.client
        .request(method, format!("{base}{path}"))
        .header("cookie", cookie)
        .header("x-acme-admin", "1")
        .send()
        .await
        .expect("answered")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_on_every_instance_and_everyone_can_be_signed_out() {
    let app = TestApp::spawn_without_worker().await;
    let other = app.start_another_api().await;
    let kept = sign_in(&app, &app.address).await;
    let copied = sign_in(&app, &app.address).await;
    let queues = "/api/admin/queues";

    assert_eq!(
        with_cookie(&app, &other, Method::GET, queues, &copied).await,
        200
    );
    assert_eq!(
        with_cookie(
            &app,
            &app.address,
            Method::DELETE,
            "/api/admin/session",
            &copied
        )
        .await,
        204
    );
    for base in [&app.address, &other] {
        assert_eq!(
            with_cookie(&app, base, Method::GET, queues, &copied).await,
            401,
            "a signed-out cookie, replayed on {base}"
        );
    }
    assert_eq!(
        with_cookie(&app, &other, Method::GET, queues, &kept).await,
        200
    );

    let everyone = app
        .client
        .delete(format!("{other}/api/admin/sessions"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(everyone.status(), 200);
    assert_eq!(everyone.json::<Value>().await.expect("JSON")["ended"], 1);
    assert_eq!(
        with_cookie(&app, &app.address, Method::GET, queues, &kept).await,
        401
    );
    assert_eq!(
        app.get(queues, Some(ADMIN_TOKEN)).await.status(),
        200,
        "the token itself still works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_the_admin_token_is_throttled_per_client_and_logged_once() {
    let app = TestApp::spawn_without_worker_with(|s| {
        s.server.client_ip_header = Some("x-forwarded-for".into());
    })
    .await;
    let api = app.spawn_api_process(API).await;
    let call = |token: &str, client: &str| {
        app.client
            .get(format!("{}/api/admin/queues", api.address))
            .bearer_auth(token)
            .header("x-forwarded-for", client)
            .send()
    };

    for n in 0..10 {
        let guess = call(&format!("guess-{n:032}"), "203.0.113.7")
            .await
            .expect("answered");
        assert_eq!(guess.status(), 401, "guess {n}");
    }
    let blocked = call(ADMIN_TOKEN, "203.0.113.7").await.expect("answered");
    assert_eq!(
        blocked.status(),
        429,
        "past 10 failures even the token is refused"
    );
    let wait: u64 = blocked.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=300).contains(&wait), "{wait}");
    let sign_in = app
        .client
        .post(format!("{}/api/admin/session", api.address))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .expect("answered");
    assert_eq!(sign_in.status(), 429, "signing in is the same door");
    let elsewhere = call(ADMIN_TOKEN, "198.51.100.1").await.expect("answered");
    assert_eq!(elsewhere.status(), 200, "another client is not held back");

    let logged = testkit::wait::until("the failure to be logged", DEADLINE, || async {
        let lines: Vec<Value> = api
            .log_lines()
            .into_iter()
            .filter(|line| {
                line["message"]
                    .as_str()
                    .is_some_and(|message| message.contains("operator access refused"))
            })
            .collect();
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert_eq!(logged.len(), 1, "once per client per window: {logged:#?}");
    assert!(
        logged[0].to_string().contains("203.0.113.7"),
        "{}",
        logged[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_action_is_audited_with_who_and_when() {
    let app = TestApp::spawn_without_worker().await;
    let cookie = sign_in(&app, &app.address).await;
    let pause = app
        .client
        .post(format!(
            "{}/api/admin/queues/image-resize/pause",
            app.address
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(pause.status(), 204);
    let resume = with_cookie(
        &app,
        &app.address,
        Method::POST,
        "/api/admin/queues/image-resize/resume",
        &cookie,
    )
    .await;
    assert_eq!(resume, 204);

    let audit: Value = app
        .get("/api/admin/audit", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .expect("JSON");
    let entries = audit["entries"].as_array().expect("a list");
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|entry| {
            let actor = entry["actor"].as_str().unwrap();
            let kind = actor.split(' ').next().unwrap().to_owned();
            (
                kind,
                entry["action"].as_str().unwrap().to_owned(),
                entry["queue"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("session".into(), "resume".into(), "image-resize".into()),
            ("token".into(), "pause".into(), "image-resize".into()),
            ("session".into(), "sign_in".into(), String::new()),
        ],
        "newest first: {entries:#?}"
    );
    assert_eq!(
        entries[0]["actor"], entries[2]["actor"],
        "one session, one actor"
    );
    assert_eq!(entries[0]["client"], "127.0.0.1");
    assert!(
        entries[0]["at"]
            .as_str()
            .is_some_and(|at| at.starts_with("20"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_jobs_are_listed_a_page_at_a_time_with_the_total() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&slack)
        .await;
    let url = format!("{}/services/T/B/product", slack.uri());
    let app = TestApp::spawn_with(Options::with_worker().configure(move |s| {
        s.providers.slack_webhook_url = Some(url.into());
        s.queues.slack_notify.attempts = 1;
    }))
    .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let signup = app
            .sign_up_unverified(&format!("paged-{n}@example.com"), "Paged")
            .await;
        let id = testkit::job_id(&signup, "slack-notify");
        app.wait_for_job_state(&id, "failed", DEADLINE).await;
        ids.push(id);
        // Distinct failure times, so "newest first" has one answer.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let app = &app;
    let page = |query: &str| {
        let path = format!("/api/admin/queues/slack-notify/failed{query}");
        async move {
            let body: Value = app
                .get(&path, Some(ADMIN_TOKEN))
                .await
                .json()
                .await
                .expect("JSON");
            let shown: Vec<String> = body["jobs"]
                .as_array()
                .expect("jobs")
                .iter()
                .map(|job| job["id"].as_str().unwrap().to_owned())
                .collect();
            (shown, body["offset"].clone(), body["total"].clone())
        }
    };

    let newest: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(
        page("?limit=2").await,
        (newest[..2].to_vec(), json!(0), json!(3))
    );
    assert_eq!(
        page("?offset=2&limit=2").await,
        (newest[2..].to_vec(), json!(2), json!(3))
    );
    assert_eq!(page("?offset=3").await, (Vec::new(), json!(3), json!(3)));
    assert_eq!(page("").await.0, newest, "50 by default");
    assert_eq!(page("?limit=100000").await.0, newest, "at most 100 a page");
}
