//! A poll for an unchanged job is a 304 without a query (`api::job_versions`),
//! and still never hides a change: Postgres tells every api instance of each
//! change, and an instance that cannot hear it asks the database.

use std::time::Duration;

use serde_json::Value;
use testkit::{DEADLINE, TestApp};

const API: &str = env!("CARGO_BIN_EXE_api");

/// A poll that would wait for a locked table is given this long.
const PATIENCE: Duration = Duration::from_secs(10);

/// A user with one job, polled once: the path, the token and the ETag.
async fn polled_job(app: &TestApp) -> (String, String, String, String) {
    let signup = app.sign_up("poller@example.com", "Poller").await;
    let token = signup["token"].as_str().expect("token").to_owned();
    let job = testkit::job_id(&signup, "welcome-email");
    app.wait_for_job_state(&job, "waiting", DEADLINE).await;
    let path = format!("/api/jobs/{job}");
    let first = app.get(&path, Some(&token)).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    (job, path, token, etag)
}

/// Polls `address` + `path` with `etag` until the answer is a 200, and
/// returns its body.
async fn until_changed(app: &TestApp, address: &str, path: &str, token: &str, etag: &str) -> Value {
    let url = format!("{address}{path}");
    testkit::wait::until("the change to be answered", DEADLINE, || async {
        let response = app
            .client
            .get(&url)
            .bearer_auth(token)
            .header("if-none-match", etag)
            .send()
            .await
            .expect("the api answers");
        match response.status().as_u16() {
            304 => None,
            200 => Some(response.json::<Value>().await.expect("JSON")),
            other => panic!("a poll answered {other}"),
        }
    })
    .await
}

async fn poll_status(app: &TestApp, address: &str, path: &str, token: &str, etag: &str) -> u16 {
    app.client
        .get(format!("{address}{path}"))
        .bearer_auth(token)
        .header("if-none-match", etag)
        .send()
        .await
        .expect("the api answers")
        .status()
        .as_u16()
}

/// Server processes of this test's database that listen for notifications.
async fn listener_pids(app: &TestApp) -> Vec<i32> {
    sqlx::query_scalar(
        "select pid from pg_stat_activity
         where datname = current_database() and query ilike 'listen%'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("listeners")
}

async fn listeners(app: &TestApp) -> usize {
    listener_pids(app).await.len()
}

async fn set_progress(app: &TestApp, job: &str, progress: i16) {
    sqlx::query("update jobs set progress = $2 where job_id = $1::uuid")
        .bind(job)
        .bind(progress)
        .execute(&app.pool)
        .await
        .expect("an operator's update");
}

/// Polls with `etag` while the test holds a lock nothing can read the jobs
/// table past: only an answer that needs no query comes back.
async fn poll_while_jobs_are_locked(
    app: &TestApp,
    path: &str,
    token: &str,
    etag: &str,
) -> reqwest::Response {
    poll_with_jobs_locked(app, path, token, etag, PATIENCE)
        .await
        .expect("answered while the jobs table is locked")
}

/// The answer to a poll made while the jobs table is locked, if it comes
/// within `patience`.
async fn poll_with_jobs_locked(
    app: &TestApp,
    path: &str,
    token: &str,
    etag: &str,
    patience: Duration,
) -> Option<reqwest::Response> {
    let mut lock = app.pool.begin().await.expect("transaction");
    sqlx::query("lock table jobs in access exclusive mode")
        .execute(&mut *lock)
        .await
        .expect("lock");
    let answer = tokio::time::timeout(patience, app.get_if_none_match(path, Some(token), etag))
        .await
        .ok();
    lock.rollback().await.expect("unlock");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_for_an_unchanged_job_is_answered_without_the_database() {
    let app = TestApp::spawn_without_worker().await;
    let (_, path, token, etag) = polled_job(&app).await;

    let unchanged = poll_while_jobs_are_locked(&app, &path, &token, &etag).await;

    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"], etag.as_str());
    assert_eq!(unchanged.headers()["cache-control"], "private, no-cache");
    assert_eq!(unchanged.headers()["vary"], "authorization");
    assert!(unchanged.bytes().await.expect("body").is_empty());
    let without_tag = app.get(&path, Some(&token)).await;
    assert_eq!(
        without_tag.status(),
        200,
        "a poll without a tag reads the job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_instance_answers_each_change_of_a_job_it_answered_before() {
    let mut app = TestApp::spawn_without_worker().await;
    let (job, path, token, etag) = polled_job(&app).await;
    let other = app.spawn_api_process(API).await;
    let instances = [app.address.clone(), other.address.clone()];
    for address in &instances {
        assert_eq!(poll_status(&app, address, &path, &token, &etag).await, 304);
    }

    // A change by SQL, as an operator would make it.
    set_progress(&app, &job, 50).await;
    let mut etags = Vec::new();
    for address in &instances {
        let job = until_changed(&app, address, &path, &token, &etag).await;
        assert_eq!(job["progress"], 50);
        let response = app.get(&path, Some(&token)).await;
        etags.push(
            response.headers()["etag"]
                .to_str()
                .expect("ascii")
                .to_owned(),
        );
    }
    assert_eq!(etags[0], etags[1], "the same tag on every instance");
    for address in &instances {
        assert_eq!(
            poll_status(&app, address, &path, &token, &etags[0]).await,
            304
        );
    }

    // And by the worker, which completes it.
    app.start_worker();
    app.run_jobs_until_idle().await;
    for address in &instances {
        let job = until_changed(&app, address, &path, &token, &etags[0]).await;
        assert_eq!(job["state"], "completed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_an_instance_could_not_hear_it_is_not_missed() {
    let app = TestApp::spawn_without_worker().await;
    let (job, path, token, etag) = polled_job(&app).await;
    let address = app.address.clone();
    assert_eq!(poll_status(&app, &address, &path, &token, &etag).await, 304);

    // The api's listening connection dies, and the job changes before the
    // api is listening again: Postgres keeps no notification for it.
    let pids = listener_pids(&app).await;
    assert_eq!(pids.len(), 1, "one listening connection per api instance");
    let killed: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pids[0])
        .fetch_one(&app.pool)
        .await
        .expect("terminate the listener");
    assert!(killed);
    testkit::wait::until("the listener to be gone", DEADLINE, || async {
        (listeners(&app).await == 0).then_some(())
    })
    .await;
    set_progress(&app, &job, 70).await;

    // Listening again, the api must not trust what it knew before.
    testkit::wait::until("the listener to be back", DEADLINE, || async {
        (listeners(&app).await == 1).then_some(())
    })
    .await;
    let changed = until_changed(&app, &address, &path, &token, &etag).await;
    assert_eq!(changed["progress"], 70);
    // And unchanged jobs are 304s without a query once more, as soon as
    // the new connection's first probe has come back (until then the
    // instance remembers nothing it answers).
    let etag = testkit::wait::until(
        "a poll answered without the database again",
        DEADLINE,
        || async {
            let etag = app.get(&path, Some(&token)).await.headers()["etag"]
                .to_str()
                .expect("ascii")
                .to_owned();
            let answer =
                poll_with_jobs_locked(&app, &path, &token, &etag, Duration::from_secs(1)).await?;
            assert_eq!(answer.status(), 304);
            Some(etag)
        },
    )
    .await;
    set_progress(&app, &job, 80).await;
    let changed = until_changed(&app, &address, &path, &token, &etag).await;
    assert_eq!(changed["progress"], 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_stops_hearing_without_an_error_is_replaced_and_misses_nothing() {
    let app = TestApp::spawn_without_worker().await;
    let (job, path, token, etag) = polled_job(&app).await;
    let address = app.address.clone();
    assert_eq!(poll_status(&app, &address, &path, &token, &etag).await, 304);

    // The listening connection's server process freezes: its socket stays
    // open and silent, as one to a Postgres host that died does.
    let pids = listener_pids(&app).await;
    assert_eq!(pids.len(), 1, "one listening connection per api instance");
    let frozen = Frozen::new(pids[0]);
    set_progress(&app, &job, 60).await;

    let changed = until_changed(&app, &address, &path, &token, &etag).await;
    drop(frozen);
    assert_eq!(changed["progress"], 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_trigger_turned_off_polls_ask_the_database_and_miss_nothing() {
    let app = TestApp::spawn_without_worker().await;
    let (job, path, token, etag) = polled_job(&app).await;
    let address = app.address.clone();
    assert_eq!(poll_status(&app, &address, &path, &token, &etag).await, 304);
    let trigger = |on: bool| {
        let sql = if on {
            "alter table jobs enable always trigger jobs_changed"
        } else {
            "alter table jobs disable trigger jobs_changed"
        };
        sqlx::query(sql).execute(&app.pool)
    };

    trigger(false).await.expect("an operator turns it off");
    set_progress(&app, &job, 30).await;
    let changed = until_changed(&app, &address, &path, &token, &etag).await;
    assert_eq!(changed["progress"], 30);

    // Back on: within a probe, unchanged jobs are 304s without a query again.
    trigger(true).await.expect("and on again");
    let etag = app.get(&path, Some(&token)).await.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned();
    testkit::wait::until("304s without a query again", DEADLINE, || async {
        // Remembered only once the instance trusts its listener again.
        let _ = app.get(&path, Some(&token)).await;
        poll_with_jobs_locked(&app, &path, &token, &etag, Duration::from_millis(500))
            .await
            .filter(|answer| answer.status() == 304)
    })
    .await;
}

/// Polls `path` with `etag` until the answer is not a 304, and returns its
/// status.
async fn until_not_304(app: &TestApp, path: &str, token: &str, etag: &str) -> u16 {
    testkit::wait::until("an answer other than 304", DEADLINE, || async {
        let status = poll_status(app, &app.address, path, token, etag).await;
        (status != 304).then_some(status)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncation_of_the_jobs_is_not_hidden_by_a_304() {
    let app = TestApp::spawn_without_worker().await;
    let (_, path, token, etag) = polled_job(&app).await;
    assert_eq!(
        poll_status(&app, &app.address, &path, &token, &etag).await,
        304
    );

    // No row trigger fires for a TRUNCATE.
    sqlx::query("truncate jobs")
        .execute(&app.pool)
        .await
        .expect("an operator empties the table");

    assert_eq!(
        until_not_304(&app, &path, &token, &etag).await,
        404,
        "the job is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_in_replica_mode_is_not_hidden_by_a_304() {
    let app = TestApp::spawn_without_worker().await;
    let (job, path, token, etag) = polled_job(&app).await;
    assert_eq!(
        poll_status(&app, &app.address, &path, &token, &etag).await,
        304
    );

    // As a logical replication subscriber, or an operator skipping
    // triggers, changes rows: only triggers enabled ALWAYS fire.
    let mut tx = app.pool.begin().await.expect("transaction");
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .expect("replica mode");
    sqlx::query("update jobs set progress = 40 where job_id = $1::uuid")
        .bind(&job)
        .execute(&mut *tx)
        .await
        .expect("an update in replica mode");
    tx.commit().await.expect("committed");

    let changed = until_changed(&app, &app.address, &path, &token, &etag).await;
    assert_eq!(changed["progress"], 40);
}

/// A stopped process, continued when dropped (even by a failing test, so
/// the shared Postgres gets its process back).
struct Frozen(String);

impl Frozen {
    fn new(pid: i32) -> Self {
        let frozen = Self(pid.to_string());
        frozen.signal("-STOP");
        frozen
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([name, &self.0])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {name} {}", self.0);
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        self.signal("-CONT");
    }
}
