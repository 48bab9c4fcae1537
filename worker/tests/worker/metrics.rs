//! The worker's `/healthz` and `/metrics` on `WORKER_HTTP_PORT`, read from
//! a real worker process (its own recorder, so the numbers are exact).

use testkit::prometheus::Scrape;
use testkit::{DEADLINE, TestApp};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reports_health_and_job_metrics_that_move_with_the_work() {
    let port = testkit::free_port();
    let app = TestApp::spawn_without_worker_with(move |s| s.worker.http_port = Some(port)).await;
    let _worker = app.spawn_worker_process(WORKER);
    let base = format!("http://127.0.0.1:{port}");
    testkit::wait::until("the worker's HTTP port", DEADLINE, || async {
        app.client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    let health = app
        .client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.expect("json");
    assert_eq!(health, serde_json::json!({ "status": "ok", "redis": "up" }));

    let failed = app
        .sign_up_and_meanwhile("bounce@example.com", "Bounce", |app| {
            app.smtp.refuse_next("550 5.1.1 no such user")
        })
        .await;
    let done = app.sign_up("done@example.com", "Done").await;
    for (signup, state) in [(&failed, "failed"), (&done, "completed")] {
        let job = testkit::job_id(signup, "welcome-email");
        app.wait_for_job_state(&job, state, DEADLINE).await;
    }

    let (scrape, text) = Scrape::fetch(&app.client, &format!("{base}/metrics")).await;
    let welcome = r#"queue="welcome-email""#;
    assert_eq!(
        scrape.value(&format!("jobs_started_total{{{welcome}}}")),
        2.0,
        "{text}"
    );
    assert_eq!(
        scrape.value(&format!("jobs_completed_total{{{welcome}}}")),
        1.0
    );
    assert_eq!(
        scrape.value(&format!("jobs_failed_total{{{welcome}}}")),
        1.0,
        "a refused recipient is permanent"
    );
    assert_eq!(
        scrape.value(&format!(
            r#"job_duration_seconds_count{{{welcome},outcome="completed"}}"#
        )),
        1.0
    );
    assert_eq!(scrape.kind("jobs_completed_total"), Some("counter"));
    assert_eq!(scrape.kind("job_duration_seconds"), Some("histogram"));
    assert_eq!(
        scrape.get(&format!(r#"queue_jobs{{{welcome},state="failed"}}"#)),
        Some(1.0)
    );
    assert_eq!(
        scrape.get(&format!(r#"queue_jobs{{{welcome},state="waiting"}}"#)),
        Some(0.0)
    );
    assert_eq!(
        scrape.get(&format!("queue_oldest_waiting_seconds{{{welcome}}}")),
        Some(0.0)
    );
}
