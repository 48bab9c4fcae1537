use testkit::TestApp;

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
use testkit::DEADLINE;

async fn failed_signup(app: &TestApp, email: &str) -> String {
    app.smtp.refuse_next("550 5.7.1 relaying denied");
    let body = app.sign_up(email, "Dead Letter").await;
    let job_id = testkit::job_id(&body, "welcome-email");
    app.wait_for_job_state(&job_id, "failed", DEADLINE).await;
    job_id
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "worker command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_is_listed_with_its_reason_and_runs_again_when_retried() {
    let app = TestApp::spawn_with_worker().await;
    let job_id = failed_signup(&app, "bounced@example.com").await;

    let listed = stdout(
        &app.worker_command(WORKER, &["failed", "list", "welcome-email"])
            .await,
    );
    let retried = stdout(
        &app.worker_command(WORKER, &["failed", "retry", "welcome-email", &job_id])
            .await,
    );

    assert!(
        listed.starts_with("1 failed job(s) in welcome-email"),
        "{listed}"
    );
    let line = listed.lines().nth(1).expect("one job line");
    assert!(line.starts_with(&job_id), "{line}");
    assert!(line.contains("relaying denied"), "{line}");
    assert!(retried.contains(&job_id), "{retried}");
    app.wait_for_job_state(&job_id, "completed", DEADLINE).await;
    assert_eq!(app.smtp.received().len(), 1);
    let after = stdout(
        &app.worker_command(WORKER, &["failed", "list", "welcome-email"])
            .await,
    );
    assert!(after.starts_with("0 failed job(s)"), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_all_empties_the_dead_letter_set() {
    let app = TestApp::spawn_with_worker().await;
    let first = failed_signup(&app, "one@example.com").await;
    let second = failed_signup(&app, "two@example.com").await;

    let retried = stdout(
        &app.worker_command(WORKER, &["failed", "retry", "welcome-email", "--all"])
            .await,
    );

    assert_eq!(retried.trim(), "retried 2 job(s) in welcome-email");
    app.wait_for_job_state(&first, "completed", DEADLINE).await;
    app.wait_for_job_state(&second, "completed", DEADLINE).await;
    assert_eq!(app.smtp.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_job_that_is_not_failed_is_an_error() {
    let app = TestApp::spawn_with_worker().await;
    let body = app.sign_up("fine@example.com", "Fine").await;
    let job_id = &testkit::job_id(&body, "welcome-email");
    app.wait_for_job_state(job_id, "completed", DEADLINE).await;

    let output = app
        .worker_command(WORKER, &["failed", "retry", "welcome-email", job_id])
        .await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no failed job"), "{stderr}");
    assert_eq!(app.smtp.received().len(), 1, "nothing was sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_show_the_failed_and_completed_jobs_per_queue() {
    let app = TestApp::spawn_with_worker().await;
    failed_signup(&app, "failed@example.com").await;
    let body = app.sign_up("done@example.com", "Done").await;
    let done = &testkit::job_id(&body, "welcome-email");
    app.wait_for_job_state(done, "completed", DEADLINE).await;

    let counts = stdout(&app.worker_command(WORKER, &["counts"]).await);

    let welcome = counts.lines().next().expect("one line per queue");
    assert_eq!(
        welcome,
        "welcome-email\twaiting=0\tactive=0\tdelayed=0\tcompleted=1\tfailed=1\tpaused=0"
    );
    assert!(
        counts
            .lines()
            .nth(1)
            .is_some_and(|line| line.starts_with("stripe-customer\t")),
        "{counts}"
    );
}
