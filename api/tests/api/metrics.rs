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

/// Sends `count` requests, 32 at a time, each with a new random method of
/// `method_bytes` letters to a new random path; returns the statuses seen.
async fn invented_requests(
    client: &testkit::Client,
    base: &str,
    count: usize,
    method_bytes: usize,
) -> std::collections::BTreeSet<u16> {
    let mut statuses = std::collections::BTreeSet::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(32) {
        let answers = futures::future::join_all(chunk.iter().map(|_| async {
            let letters = |n: usize| -> String {
                (0..n)
                    .map(|_| char::from(b'A' + rand_byte() % 26))
                    .collect()
            };
            let method =
                reqwest::Method::from_bytes(letters(method_bytes).as_bytes()).expect("a token");
            let path = format!("{base}/{}/{}", letters(12).to_lowercase(), letters(8));
            client
                .request(method, path)
                .send()
                .await
                .expect("answered")
                .status()
                .as_u16()
        }))
        .await;
        statuses.extend(answers);
    }
    statuses
}

fn rand_byte() -> u8 {
    let mut byte = [0u8];
    getrandom::fill(&mut byte).expect("random");
    byte[0]
}

/// The series a scrape holds (sample lines), each without its value.
fn series(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_and_paths_create_no_series_and_leave_memory_flat() {
    let app = TestApp::spawn_without_worker().await;
    let api = app.spawn_api_process(API).await;
    let url = format!("{}/metrics", api.address);
    // Every figure the api publishes by itself is there before we count.
    testkit::wait::until("the first measurement", testkit::DEADLINE, || async {
        let (scrape, _) = Scrape::fetch(&app.client, &url).await;
        scrape.get("outbox_oldest_pending_seconds")
    })
    .await;
    // Every answer such requests can get, seen once.
    let statuses = invented_requests(&app.client, &api.address, 64, 16).await;
    let (_, before_text) = Scrape::fetch(&app.client, &url).await;
    let before = series(&before_text);
    let rss_before = api.rss_mb();

    // 2,000 methods of 16 KB: unbounded, 32 MB of label values alone.
    let more = invented_requests(&app.client, &api.address, 2_000, 16 * 1024).await;
    let (_, after_text) = Scrape::fetch(&app.client, &url).await;
    let after = series(&after_text);
    let rss_after = api.rss_mb();

    assert_eq!(more, statuses, "the same answers");
    assert_eq!(
        after.difference(&before).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "no request made a series"
    );
    assert!(
        after_text.len() < before_text.len() + 4096,
        "/metrics did not grow: {} → {} bytes",
        before_text.len(),
        after_text.len()
    );
    eprintln!("api RSS: {rss_before:.1} MB before, {rss_after:.1} MB after 2,000 invented methods");
    assert!(
        rss_after - rss_before < 16.0,
        "the api's memory stays flat: {rss_before:.1} → {rss_after:.1} MB"
    );
    let other = after_text
        .lines()
        .filter(|line| {
            line.starts_with("http_requests_total{") && line.contains(r#"method="other""#)
        })
        .map(|line| {
            line.rsplit_once(' ')
                .expect("a value")
                .1
                .parse::<f64>()
                .expect("a number")
        })
        .sum::<f64>();
    assert_eq!(
        other, 2_064.0,
        "every invented method is counted as `other`"
    );
}
