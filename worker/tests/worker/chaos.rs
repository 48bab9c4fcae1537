//! The failures background jobs meet in production, with real processes:
//! a worker killed mid-job, and Redis going away while everything runs.

use std::time::Duration;

use testkit::TestApp;
use testkit::app::Options;

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
use testkit::DEADLINE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_nothing_and_the_email_goes_out_once() {
    // Default lock and stall-check settings: the job must run again within
    // the 30 s the defaults promise (BullMQ's own would take up to 90 s).
    let app = TestApp::spawn_without_worker().await;
    app.smtp.set_delay(Duration::from_secs(3));
    let mut doomed = app.spawn_worker_process(WORKER);
    let body = app.sign_up("crash@example.com", "Crash").await;
    let job_id = welcome_job(&body);
    app.wait_for_job_state(&job_id, "active", DEADLINE).await;

    doomed.kill().await;
    let killed = std::time::Instant::now();
    app.smtp.set_delay(Duration::ZERO);
    let mut rescuer = app.spawn_worker_process(WORKER);

    app.wait_for_job_state(&job_id, "completed", DEADLINE).await;
    eprintln!(
        "the killed worker's job completed again after {:?}",
        killed.elapsed()
    );
    let emails = app.smtp.received_titled("Welcome");
    assert_eq!(emails.len(), 1, "the killed attempt delivered nothing");
    assert_eq!(emails[0].to, ["crash@example.com"]);
    rescuer.terminate();
    assert!(rescuer.wait(DEADLINE).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_rides_out_a_redis_outage_without_a_restart() {
    let mut app = TestApp::spawn_without_worker().await;
    let mut worker = app.spawn_worker_process(WORKER);
    let before = app.sign_up("before@example.com", "Before").await;
    app.wait_for_job_state(&welcome_job(&before), "completed", DEADLINE)
        .await;

    app.redis.stop();
    testkit::wait::until("readyz to report redis down", DEADLINE, || async {
        let ready: serde_json::Value = app.get("/readyz", None).await.json().await.ok()?;
        (ready["checks"]["redis"] == "down").then_some(())
    })
    .await;
    let during = app.sign_up("during@example.com", "During").await;
    assert_eq!(during["jobs"][0]["state"], "pending");
    // The outage itself: ten seconds in which every reconnect attempt fails.
    tokio::time::sleep(Duration::from_secs(10)).await;
    app.redis.restart();

    app.wait_for_job_state(&welcome_job(&during), "completed", DEADLINE)
        .await;
    let after = app.sign_up("after@example.com", "After").await;
    app.wait_for_job_state(&welcome_job(&after), "completed", DEADLINE)
        .await;
    let mut recipients: Vec<String> = app
        .smtp
        .received_titled("Welcome")
        .into_iter()
        .flat_map(|email| email.to)
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "after@example.com",
            "before@example.com",
            "during@example.com"
        ]
    );
    worker.terminate();
    assert!(worker.wait(DEADLINE).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_still_running_at_the_shutdown_deadline_is_finished_by_another_worker() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        configure: Some(testkit::app::configure(move |s| {
            s.worker.shutdown_timeout = Duration::from_secs(1);
            s.queues.welcome_email.lock_duration = Duration::from_millis(2000);
            s.queues.welcome_email.stalled_interval = Duration::from_millis(1000);
        })),
        ..Options::default()
    })
    .await;
    app.smtp.set_delay(Duration::from_secs(30));
    let mut impatient = app.spawn_worker_process(WORKER);
    let body = app.sign_up("slow@example.com", "Slow").await;
    let job_id = welcome_job(&body);
    app.wait_for_job_state(&job_id, "active", DEADLINE).await;

    impatient.terminate();
    let status = impatient.wait(DEADLINE).await;
    app.smtp.set_delay(Duration::ZERO);
    let mut successor = app.spawn_worker_process(WORKER);

    assert!(status.success(), "a deadline is not a crash: {status}");
    app.wait_for_job_state(&job_id, "completed", DEADLINE).await;
    let emails = app.smtp.received_titled("Welcome");
    assert_eq!(emails.len(), 1, "the abandoned attempt delivered nothing");
    successor.terminate();
    assert!(successor.wait(DEADLINE).await.success());
}

fn welcome_job(signup: &serde_json::Value) -> String {
    testkit::job_id(signup, "welcome-email")
}

/// No in-process worker, and short locks so an orphaned job is recovered in
/// seconds rather than BullMQ's default 30.
async fn app_with_short_locks() -> TestApp {
    TestApp::spawn_with(Options {
        worker: false,
        configure: Some(testkit::app::configure(move |s| {
            s.queues.welcome_email.lock_duration = Duration::from_millis(2000);
            s.queues.welcome_email.stalled_interval = Duration::from_millis(1000);
        })),
        ..Options::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_workers_keep_dying_ends_failed_not_active_forever() {
    let app = app_with_short_locks().await;
    app.smtp.set_delay(Duration::from_secs(60));
    let body = app.sign_up("cursed@example.com", "Cursed").await;
    let job_id = welcome_job(&body);

    // Two workers die mid-job; BullMQ allows one stall, not two.
    for _ in 0..2 {
        let previous_start = last_update(&app, &job_id).await;
        let mut doomed = app.spawn_worker_process(WORKER);
        testkit::wait::until("a worker to start the job", DEADLINE, || async {
            let state = app.job_state(&job_id).await;
            (state == "active" && last_update(&app, &job_id).await > previous_start).then_some(())
        })
        .await;
        doomed.kill().await;
    }
    let mut survivor = app.spawn_worker_process(WORKER);

    app.wait_for_job_state(&job_id, "failed", DEADLINE).await;
    let error: Option<String> =
        sqlx::query_scalar("select error_detail from jobs where job_id = $1::uuid")
            .bind(&job_id)
            .fetch_one(&app.pool)
            .await
            .expect("the record exists");
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("stalled more than allowable limit")),
        "{error:?}"
    );
    let job = app.job_status(&job_id, body["token"].as_str()).await;
    assert_eq!(job["error"]["code"], "interrupted", "{job}");
    assert!(app.smtp.received_titled("Welcome").is_empty());
    survivor.terminate();
    assert!(survivor.wait(DEADLINE).await.success());
}

async fn last_update(app: &TestApp, job_id: &str) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("select updated_at from jobs where job_id = $1::uuid")
        .bind(job_id)
        .fetch_one(&app.pool)
        .await
        .expect("the record exists")
}
