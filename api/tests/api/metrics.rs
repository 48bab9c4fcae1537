//! The api's `/metrics`, read from a real api process (its own recorder, so
//! the numbers are exact), and its optional token.

use testkit::TestApp;
use testkit::prometheus::Scrape;

const API: &str = env!("CARGO_BIN_EXE_api");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_and_timed_by_route_template_and_status() {
    let app = TestApp::spawn_without_worker().await;
    let api = app.spawn_api_process(API).await;
    let signup = app
        .client
        .post(format!("{}/api/signup", api.address))
        .json(&serde_json::json!({"email": "m@example.com", "password": "correct horse battery", "name": "M"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(signup.status(), 201);
    let token = signup.json::<serde_json::Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    for id in [
        "01900000-0000-7000-8000-000000000001",
        "01900000-0000-7000-8000-000000000002",
    ] {
        let response = app
            .client
            .get(format!("{}/api/jobs/{id}", api.address))
            .bearer_auth(&token)
            .send()
            .await
            .expect("status");
        assert_eq!(response.status(), 404);
    }

    let (scrape, text) = Scrape::fetch(&app.client, &format!("{}/metrics", api.address)).await;
    let signups = r#"method="POST",route="/api/signup",status="201""#;
    assert_eq!(
        scrape.value(&format!("http_requests_total{{{signups}}}")),
        1.0,
        "{text}"
    );
    assert_eq!(
        scrape.value(&format!("http_request_duration_seconds_count{{{signups}}}")),
        1.0
    );
    let misses = r#"method="GET",route="/api/jobs/{id}",status="404""#;
    assert_eq!(
        scrape.value(&format!("http_requests_total{{{misses}}}")),
        2.0,
        "one series for every id"
    );
    assert_eq!(
        scrape.kind("http_request_duration_seconds"),
        Some("histogram")
    );
    assert_eq!(
        scrape.get("http_requests_in_flight"),
        Some(1.0),
        "the scrape itself"
    );
    assert_eq!(scrape.get("argon2_queue_depth"), Some(0.0));
}

#[tokio::test]
async fn with_a_metrics_token_only_the_scraper_holding_it_reads_metrics() {
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.server.metrics_token = Some("scrape-me".into())
    })
    .await;

    let anonymous = app.get("/metrics", None).await;
    let wrong = app.get("/metrics", Some("guess")).await;
    let scraper = app.get("/metrics", Some("scrape-me")).await;

    assert_eq!(anonymous.status(), 401);
    assert_eq!(wrong.status(), 401);
    assert_eq!(scraper.status(), 200);
    assert!(
        scraper.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    Scrape::parse(&scraper.text().await.expect("text"));
}
