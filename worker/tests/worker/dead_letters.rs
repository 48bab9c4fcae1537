use testkit::TestApp;

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
use testkit::DEADLINE;

async fn failed_signup(app: &TestApp, email: &str) -> String {
    let body = app
        .sign_up_and_meanwhile(email, "Dead Letter", |app| {
            app.smtp.refuse_next("550 5.7.1 relaying denied")
        })
        .await;
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
    assert_eq!(app.smtp.received_titled("Welcome").len(), 1);
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
    assert_eq!(app.smtp.received_titled("Welcome").len(), 2);
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

    assert_eq!(output.status.code(), Some(3), "nothing matched");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no failed job"), "{stderr}");
    assert_eq!(
        app.smtp.received_titled("Welcome").len(),
        1,
        "nothing was sent twice"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_failed_job_leaves_redis_and_its_record_stays_failed() {
    let app = TestApp::spawn_with_worker().await;
    let job_id = failed_signup(&app, "removed@example.com").await;

    let removed = stdout(
        &app.worker_command(WORKER, &["failed", "remove", "welcome-email", &job_id])
            .await,
    );
    let again = app
        .worker_command(WORKER, &["failed", "remove", "welcome-email", &job_id])
        .await;

    assert_eq!(removed.trim(), format!("removed {job_id}"));
    assert_eq!(again.status.code(), Some(3), "already gone");
    let listed = stdout(
        &app.worker_command(WORKER, &["failed", "list", "welcome-email"])
            .await,
    );
    assert!(listed.starts_with("0 failed job(s)"), "{listed}");
    assert_eq!(app.job_state(&job_id).await, "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_queue_holds_its_jobs_until_it_is_resumed() {
    let app = TestApp::spawn_with_worker().await;

    let paused = stdout(
        &app.worker_command(WORKER, &["queue", "pause", "welcome-email"])
            .await,
    );
    let body = app.sign_up("held@example.com", "Held").await;
    let job_id = testkit::job_id(&body, "welcome-email");
    let counts = stdout(&app.worker_command(WORKER, &["counts"]).await);

    assert_eq!(paused.trim(), "welcome-email paused");
    // BullMQ marks the queue paused for every worker; its jobs wait.
    let flag = app
        .redis
        .cli(&["HGET", "bull:welcome-email:meta", "paused"]);
    assert_eq!(flag.trim(), "1");
    let welcome = counts.lines().next().expect("a line per queue");
    assert!(
        welcome.contains("\twaiting=1\t"),
        "the job waits: {welcome}"
    );
    assert_eq!(app.job_state(&job_id).await, "waiting");

    stdout(
        &app.worker_command(WORKER, &["queue", "resume", "welcome-email"])
            .await,
    );
    app.wait_for_job_state(&job_id, "completed", DEADLINE).await;
    assert_eq!(app.smtp.received_titled("Welcome").len(), 1);
    let flag = app
        .redis
        .cli(&["HGET", "bull:welcome-email:meta", "paused"]);
    assert_eq!(flag.trim(), "", "resumed");
}

#[test]
fn the_command_line_explains_itself_and_refuses_mistakes_with_exit_code_2() {
    let run = |args: &[&str]| {
        std::process::Command::new(WORKER)
            .args(args)
            .output()
            .expect("the binary runs")
    };
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for command in ["counts", "failed", "queue", "--queues"] {
        assert!(text.contains(command), "--help lists {command}: {text}");
    }
    let version = run(&["--version"]);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(run(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(
        run(&["failed", "retry", "welcome-email"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["queue", "pause", "no-such-queue"]).status.code(),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_api_agrees_with_the_cli_and_retries_and_removes_like_it() {
    let app = TestApp::spawn_with_worker().await;
    let first = failed_signup(&app, "first@example.com").await;
    let second = failed_signup(&app, "second@example.com").await;
    let admin = Some(testkit::app::ADMIN_TOKEN);

    let counts = stdout(&app.worker_command(WORKER, &["counts"]).await);
    let view: serde_json::Value = app
        .get("/api/admin/queues", admin)
        .await
        .json()
        .await
        .expect("json");
    for (line, queue) in counts
        .lines()
        .zip(view["queues"].as_array().expect("queues"))
    {
        let from_api = format!(
            "{}\twaiting={}\tactive={}\tdelayed={}\tcompleted={}\tfailed={}\tpaused={}",
            queue["queue"].as_str().expect("name"),
            queue["waiting"],
            queue["active"],
            queue["delayed"],
            queue["completed"],
            queue["failed"],
            queue["paused"]
        );
        assert_eq!(from_api, line, "the dashboard and `worker counts` agree");
    }
    let welcome = &view["queues"][0];
    let finished: i64 = welcome["last_hour"]
        .as_array()
        .expect("minutes")
        .iter()
        .map(|minute| minute["failed"].as_i64().expect("a count"))
        .sum();
    assert_eq!(finished, 2, "both failures are in the last hour");

    let listed: serde_json::Value = app
        .get("/api/admin/queues/welcome-email/failed", admin)
        .await
        .json()
        .await
        .expect("json");
    let jobs = listed["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|job| {
        job["reason"]
            .as_str()
            .is_some_and(|r| r.contains("relaying denied"))
    }));

    let act = |method: reqwest::Method, path: String| {
        app.client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(testkit::app::ADMIN_TOKEN)
            .send()
    };
    let retried = act(
        reqwest::Method::POST,
        format!("/api/admin/queues/welcome-email/failed/{first}/retry"),
    )
    .await
    .expect("answer");
    assert_eq!(retried.status(), 204);
    app.wait_for_job_state(&first, "completed", DEADLINE).await;
    let removed = act(
        reqwest::Method::DELETE,
        format!("/api/admin/queues/welcome-email/failed/{second}"),
    )
    .await
    .expect("answer");
    assert_eq!(removed.status(), 204);
    let again = act(
        reqwest::Method::DELETE,
        format!("/api/admin/queues/welcome-email/failed/{second}"),
    )
    .await
    .expect("answer");
    assert_eq!(again.status(), 404);
    let listed = stdout(
        &app.worker_command(WORKER, &["failed", "list", "welcome-email"])
            .await,
    );
    assert!(listed.starts_with("0 failed job(s)"), "{listed}");
    let record: serde_json::Value = app.operator_view(&first).await;
    assert_eq!(record["bullmq"]["state"], "completed", "{record}");
    assert_eq!(record["state"], "completed");
}
