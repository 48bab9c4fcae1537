//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the api and the worker export
//! traces, and a job's span is a child of the request that recorded it.

use testkit::app::Options;
use testkit::otlp::Collector;
use testkit::{DEADLINE, TestApp};

use crate::worker_binary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signups_jobs_continue_the_trace_of_its_request_across_processes() {
    let collector = Collector::start().await;
    let endpoint = collector.endpoint.clone();
    let app = TestApp::spawn_with(Options {
        // Export at once rather than every 5 s (read by the exporter).
        process_env: vec![("OTEL_BSP_SCHEDULE_DELAY", "100".into())],
        ..Options::default().configure(move |s| s.telemetry.otlp_endpoint = Some(endpoint))
    })
    .await;
    let api = app.spawn_api_process(env!("CARGO_BIN_EXE_api")).await;
    let _worker = app.spawn_worker_process(worker_binary());

    let signup = app
        .client
        .post(format!("{}/api/signup", api.address))
        .json(&serde_json::json!({"email": "t@example.com", "password": "correct horse battery", "name": "T"}))
        .send()
        .await
        .expect("signup")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    app.wait_for_signup_jobs(&signup).await;

    let (signup_span, jobs) =
        testkit::wait::until("the spans of the signup and its jobs", DEADLINE, || async {
            let spans = collector.spans();
            let signup = spans
                .iter()
                .find(|span| span.service == "api" && span.name == "signup")?;
            let jobs: Vec<_> = spans
                .iter()
                .filter(|span| span.service == "worker" && span.name == "job")
                .cloned()
                .collect();
            (jobs.len() >= 3).then(|| (signup.clone(), jobs))
        })
        .await;
    let request = collector
        .spans()
        .into_iter()
        .find(|span| span.span_id == signup_span.parent_span_id)
        .expect("the signup span's parent was exported");
    assert_eq!(
        request.name, "request",
        "the handler runs in the request's span"
    );
    for job in &jobs {
        assert_eq!(
            job.trace_id, signup_span.trace_id,
            "one trace from click to job"
        );
        assert_eq!(
            job.parent_span_id, signup_span.span_id,
            "the job is a child of the signup"
        );
    }
}
