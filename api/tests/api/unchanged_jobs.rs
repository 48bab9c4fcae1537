//! A poll for an unchanged job, or an unchanged page of one's jobs, is a 304
//! without a query (`api::job_versions`), and still never hides a change for
//! long: every writer publishes its changes on the feed in Redis after its
//! commit, every api instance hears them, an instance that cannot hear asks
//! the database, and a change whose publish never came is seen within
//! `POLL_MEMORY_MAX_AGE_SECS`.

use std::time::Duration;

use serde_json::Value;
use testkit::{DEADLINE, TestApp};

/// Longer than any test: a change seen in one of these was heard, not
/// found because the memory gave up on it.
const FOR_EVER: Duration = Duration::from_secs(3600);

/// An api (no worker) whose memory only a heard change or a lost feed clears.
async fn trusting_app() -> TestApp {
    TestApp::spawn_without_worker_with(|settings| settings.server.poll_memory_max_age = FOR_EVER)
        .await
}

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

/// The first page of the user's jobs, polled once: its ETag.
async fn polled_list(app: &TestApp, address: &str, token: &str) -> String {
    let first = app
        .client
        .get(format!("{address}/api/me/jobs"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the api answers");
    assert_eq!(first.status(), 200);
    first.headers()["etag"].to_str().expect("ascii").to_owned()
}

/// Redis pauses every write (a `PUBLISH` included) until dropped, even by a
/// failing test.
struct WritesPaused<'a>(&'a TestApp);

impl<'a> WritesPaused<'a> {
    fn new(app: &'a TestApp) -> Self {
        assert_eq!(
            app.redis.cli(&["CLIENT", "PAUSE", "60000", "WRITE"]).trim(),
            "OK"
        );
        Self(app)
    }
}

impl Drop for WritesPaused<'_> {
    fn drop(&mut self) {
        self.0.redis.cli(&["CLIENT", "UNPAUSE"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_for_an_unchanged_job_is_answered_without_the_database() {
    let app = trusting_app().await;
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
async fn a_poll_for_an_unchanged_page_of_ones_jobs_is_answered_without_the_database() {
    let app = trusting_app().await;
    let (_, _, token, _) = polled_job(&app).await;
    let etag = polled_list(&app, &app.address, &token).await;

    let unchanged = poll_while_jobs_are_locked(&app, "/api/me/jobs", &token, &etag).await;

    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"], etag.as_str());
    let other_page = poll_with_jobs_locked(
        &app,
        "/api/me/jobs?limit=1",
        &token,
        &etag,
        Duration::from_secs(1),
    )
    .await;
    assert!(
        other_page.is_none(),
        "another page is not answered from this one's memory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_instance_hears_each_change_a_writer_publishes() {
    let mut app = trusting_app().await;
    let (_, path, token, etag) = polled_job(&app).await;
    let other = app.spawn_api_process(API).await;
    let instances = [app.address.clone(), other.address.clone()];
    let mut list_etags = Vec::new();
    for address in &instances {
        assert_eq!(poll_status(&app, address, &path, &token, &etag).await, 304);
        list_etags.push(polled_list(&app, address, &token).await);
    }

    // The worker takes the jobs on and completes them, publishing each step.
    app.start_worker();
    app.run_jobs_until_idle().await;
    for (address, list_etag) in instances.iter().zip(&list_etags) {
        let job = until_changed(&app, address, &path, &token, &etag).await;
        assert_eq!(job["state"], "completed");
        let list = until_changed(&app, address, "/api/me/jobs", &token, list_etag).await;
        assert!(
            list["jobs"]
                .as_array()
                .expect("jobs")
                .iter()
                .all(|job| job["state"] == "completed"),
            "{list}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_new_job_changes_their_job_list_on_every_instance() {
    let app = trusting_app().await;
    let (_, _, token, _) = polled_job(&app).await;
    let other = app.spawn_api_process(API).await;
    let instances = [app.address.clone(), other.address.clone()];
    let mut etags = Vec::new();
    for address in &instances {
        let etag = polled_list(&app, address, &token).await;
        assert_eq!(
            poll_status(&app, address, "/api/me/jobs", &token, &etag).await,
            304
        );
        etags.push(etag);
    }

    let photo = testkit::images::jpeg(64, 48, &testkit::images::photo(64, 48));
    let upload = app.upload(&token, "photo", &photo).await;
    assert_eq!(upload.status(), 202);

    for (address, etag) in instances.iter().zip(&etags) {
        let list = until_changed(&app, address, "/api/me/jobs", &token, etag).await;
        assert_eq!(list["jobs"][0]["name"], "image-resize", "{list}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_publish_never_came_is_answered_once_the_memory_gives_up_on_it() {
    let app = TestApp::spawn_without_worker_with(|settings| {
        settings.server.poll_memory_max_age = Duration::from_secs(1);
    })
    .await;
    let (job, path, token, etag) = polled_job(&app).await;
    let list_etag = polled_list(&app, &app.address, &token).await;

    // Committed, and never published: what a writer killed between its
    // commit and its publish leaves, or an operator's SQL.
    set_progress(&app, &job, 40).await;

    let changed = until_changed(&app, &app.address, &path, &token, &etag).await;
    assert_eq!(changed["progress"], 40);
    let list = until_changed(&app, &app.address, "/api/me/jobs", &token, &list_etag).await;
    let listed = list["jobs"].as_array().expect("jobs");
    let listed = listed.iter().find(|listed| listed["id"] == job.as_str());
    assert_eq!(listed.expect("the job is listed")["progress"], 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_an_instance_could_not_hear_it_is_not_missed() {
    let app = trusting_app().await;
    let (job, path, token, etag) = polled_job(&app).await;
    let address = app.address.clone();
    assert_eq!(poll_status(&app, &address, &path, &token, &etag).await, 304);

    // The job changes unheard, and the api's subscription is cut: Redis
    // keeps nothing for a subscriber that was away, so the api cannot know
    // what changed meanwhile.
    set_progress(&app, &job, 70).await;
    let killed = app.redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed.trim(), "1", "one subscription per api instance");

    let changed = until_changed(&app, &address, &path, &token, &etag).await;
    assert_eq!(changed["progress"], 70);
    // And unchanged jobs are 304s without a query once more, as soon as
    // the new subscription's first probe has come back (until then the
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
    let killed = app.redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed.trim(), "1");
    let changed = until_changed(&app, &address, &path, &token, &etag).await;
    assert_eq!(changed["progress"], 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_stops_delivering_without_an_error_is_not_trusted() {
    let app = trusting_app().await;
    let (job, path, token, etag) = polled_job(&app).await;
    let address = app.address.clone();
    assert_eq!(poll_status(&app, &address, &path, &token, &etag).await, 304);

    // The job changes unheard, and Redis stops passing messages on while
    // every connection stays open: the subscription sees no error, as one
    // to a Redis host that died does not.
    set_progress(&app, &job, 60).await;
    let paused = WritesPaused::new(&app);

    let changed = until_changed(&app, &address, &path, &token, &etag).await;
    drop(paused);
    assert_eq!(changed["progress"], 60);
}
