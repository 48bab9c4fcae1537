use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use catalogue::QueueName;
use platform::config::Settings;
use queue::JobQueues;
use serde_json::json;
use testkit::TestApp;
use testkit::app::Options;
use uuid::Uuid;

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
use testkit::DEADLINE;

async fn app_without_worker(configure: impl FnOnce(&mut Settings) + Send + 'static) -> TestApp {
    TestApp::spawn_with(Options::default().configure(configure)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_job_finish_and_exits_zero() {
    let app =
        app_without_worker(move |s| s.worker.shutdown_timeout = Duration::from_secs(20)).await;
    app.smtp.set_delay(Duration::from_secs(2));
    let mut worker = app.spawn_worker_process(WORKER);
    let body = app.sign_up("inflight@example.com", "In Flight").await;
    let job_id = &testkit::job_id(&body, "welcome-email");
    app.wait_for_job_state(job_id, "active", DEADLINE).await;

    worker.terminate();
    let status = worker.wait(DEADLINE).await;

    assert!(status.success(), "worker exited with {status}");
    assert_eq!(app.job_state(job_id).await, "completed");
    let emails = app.smtp.received_titled("Welcome");
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, ["inflight@example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_exits_zero_on_sigterm_without_waiting_out_its_blocking_reads() {
    let app = app_without_worker(|_| {}).await;
    // A job due in an hour on every queue: each queue's blocking read then
    // waits 5 s at a time, which a closing worker used to wait out.
    let queues = JobQueues::new(&app.settings().redis, app.settings().queues);
    for queue in QueueName::ALL {
        queues
            .enqueue(
                *queue,
                Uuid::now_v7(),
                &json!({}),
                Duration::from_secs(3600),
            )
            .await
            .expect("a delayed job");
    }
    let mut worker = app.spawn_worker_process(WORKER);
    // A completed job proves the worker is up and now idle.
    let body = app.sign_up("idle@example.com", "Idle").await;
    let job_id = &testkit::job_id(&body, "welcome-email");
    app.wait_for_job_state(job_id, "completed", DEADLINE).await;
    // Every queue in its blocking read (Redis lists each as a client
    // waiting in BZPOPMIN).
    testkit::wait::until("every queue's blocking read", DEADLINE, || async {
        let clients = app.redis.cli(&["client", "list"]);
        let blocked = clients
            .lines()
            .filter(|line| line.contains("cmd=bzpopmin"))
            .count();
        (blocked >= QueueName::ALL.len()).then_some(())
    })
    .await;

    let asked = Instant::now();
    worker.terminate();
    let status = worker.wait(DEADLINE).await;
    let took = asked.elapsed();

    assert!(status.success(), "worker exited with {status}");
    // Woken, the reads return at once (the exit takes about 0.02 s here);
    // waited out, the slowest of ten 5 s reads is nearly 5 s (4.5 s without
    // the wake-up). The bound leaves room for a loaded machine, not for a
    // read waited out.
    assert!(
        took < Duration::from_secs(2),
        "exit took {took:?}: a blocking read was waited out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_and_restarted_mid_queue_loses_no_job() {
    const SIGNUPS: usize = 12;
    let app = app_without_worker(move |s| s.queues.welcome_email.concurrency = 2).await;
    app.smtp.set_delay(Duration::from_millis(300));
    let mut first = app.spawn_worker_process(WORKER);
    let mut job_ids = Vec::new();
    for n in 0..SIGNUPS {
        let body = app
            .sign_up(&format!("user{n}@example.com"), &format!("User {n}"))
            .await;
        job_ids.push(testkit::job_id(&body, "welcome-email"));
    }
    app.smtp.wait_for(2, DEADLINE).await;

    first.terminate();
    assert!(first.wait(DEADLINE).await.success());
    let done_by_first = app.smtp.received_titled("Welcome").len();
    assert!(
        done_by_first < SIGNUPS,
        "the first worker finished everything; the test proves nothing"
    );
    let mut second = app.spawn_worker_process(WORKER);
    for job_id in &job_ids {
        app.wait_for_job_state(job_id, "completed", DEADLINE).await;
    }

    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for email in app.smtp.received_titled("Welcome") {
        for to in email.to {
            *per_recipient.entry(to).or_default() += 1;
        }
    }
    assert_eq!(per_recipient.len(), SIGNUPS, "{per_recipient:?}");
    assert!(
        per_recipient.values().all(|&count| count == 1),
        "{per_recipient:?}"
    );
    second.terminate();
    assert!(second.wait(DEADLINE).await.success());
}
