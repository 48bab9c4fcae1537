use serde_json::Value;
use testkit::{DEADLINE, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sees_the_job_with_its_real_state() {
    let mut app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up("owner@example.com", "Owner").await;
    let token = signup["token"].as_str().expect("token");
    let job_id = &testkit::job_id(&signup, "welcome-email");
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(job_id).await, "completed");

    let response = app.get(&format!("/api/jobs/{job_id}"), Some(token)).await;

    assert_eq!(response.status(), 200);
    let job: Value = response.json().await.expect("json");
    assert_eq!(job["id"], job_id.as_str());
    assert_eq!(job["name"], "welcome-email");
    assert_eq!(job["state"], "completed");
    assert_eq!(job["attempts_made"], 1);
    assert_eq!(job["max_attempts"], 5);
    assert_eq!(job["progress"], 100);
    assert_eq!(job["result"]["delivered_to"], "owner@example.com");
    assert!(job["error"].is_null());
    for field in ["created_at", "started_at", "finished_at"] {
        assert!(job[field].is_string(), "{field} is set: {job}");
    }
}

#[tokio::test]
async fn a_stranger_gets_404_and_an_anonymous_caller_401() {
    let app = TestApp::spawn_without_worker().await;
    let owner = app.sign_up("mine@example.com", "Mine").await;
    let stranger = app.sign_up("yours@example.com", "Yours").await;
    let path = format!("/api/jobs/{}", testkit::job_id(&owner, "welcome-email"));

    let as_stranger = app.get(&path, stranger["token"].as_str()).await;
    let as_nobody = app.get(&path, None).await;

    assert_eq!(as_stranger.status(), 404);
    let error: Value = as_stranger.json().await.expect("json");
    assert_eq!(error["error"]["code"], "not_found");
    assert_eq!(as_nobody.status(), 401);
}

#[tokio::test]
async fn unknown_and_malformed_job_ids_are_404() {
    let app = TestApp::spawn_without_worker().await;
    let user = app.sign_up("asker@example.com", "Asker").await;
    let token = user["token"].as_str();

    let unknown = app
        .get("/api/jobs/01900000-0000-7000-8000-000000000000", token)
        .await;
    let malformed = app.get("/api/jobs/not-a-uuid", token).await;

    assert_eq!(unknown.status(), 404);
    assert_eq!(malformed.status(), 404);
}

#[tokio::test]
async fn an_unchanged_job_answers_304_and_a_changed_one_200_with_a_new_etag() {
    let mut app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("poller@example.com", "Poller").await;
    let token = signup["token"].as_str();
    let job = testkit::job_id(&signup, "welcome-email");
    let path = format!("/api/jobs/{job}");
    // Marked `waiting` just after the answer that enqueued it.
    app.wait_for_job_state(&job, "waiting", DEADLINE).await;

    let first = app.get(&path, token).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "private, no-cache");
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong tag: {etag}"
    );

    let unchanged = app.get_if_none_match(&path, token, &etag).await;
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"], etag.as_str());
    assert!(unchanged.bytes().await.expect("body").is_empty());

    app.run_jobs_until_idle().await;
    // Seen by the polls that follow the change (this instance is told of it
    // a moment after it commits).
    let changed = testkit::wait::until("a 200 for the changed job", DEADLINE, || async {
        let response = app.get_if_none_match(&path, token, &etag).await;
        (response.status() == 200).then_some(response)
    })
    .await;
    assert_ne!(changed.headers()["etag"], etag.as_str());
    let job: Value = changed.json().await.expect("json");
    assert_eq!(job["state"], "completed");
}

#[tokio::test]
async fn my_jobs_are_listed_newest_first_in_pages_that_neither_skip_nor_repeat() {
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("lister@example.com", "Lister").await;
    let token = signup["token"].as_str().expect("token");
    let stranger = app.sign_up("other@example.com", "Other").await;
    // Two photos make six jobs of this user's own, after the four of signup.
    for _ in 0..2 {
        let response = app
            .upload(
                token,
                "photo",
                &testkit::images::jpeg(64, 64, &testkit::images::noise(64, 64)),
            )
            .await;
        assert_eq!(response.status(), 202);
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/api/me/jobs?limit=4".to_owned(),
            Some(cursor) => format!("/api/me/jobs?limit=4&cursor={cursor}"),
        };
        let page: Value = app
            .get(&path, Some(token))
            .await
            .json()
            .await
            .expect("json");
        pages += 1;
        for job in page["jobs"].as_array().expect("jobs") {
            seen.push((
                job["name"].as_str().expect("name").to_owned(),
                job["id"].as_str().expect("id").to_owned(),
                job["created_at"].as_str().expect("time").to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    assert_eq!(pages, 2, "5 + 2 jobs in pages of 4");
    let names: Vec<&str> = seen.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(
        names[..2],
        ["image-resize", "image-resize"],
        "newest first: {names:?}"
    );
    let mut signup_jobs = names[2..].to_vec();
    signup_jobs.sort_unstable();
    assert_eq!(
        signup_jobs,
        [
            "account-email",
            "onboarding-pdf",
            "slack-notify",
            "stripe-customer",
            "welcome-email"
        ]
    );
    let times: Vec<&str> = seen.iter().map(|(_, _, at)| at.as_str()).collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");
    let mut ids: Vec<&str> = seen.iter().map(|(_, id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 7, "no job twice");
    let strangers = testkit::job_id(&stranger, "welcome-email");
    assert!(!ids.contains(&strangers.as_str()), "only the caller's jobs");
}

#[tokio::test]
async fn the_job_list_revalidates_and_refuses_bad_parameters_with_their_names() {
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("pager@example.com", "Pager").await;
    let token = signup["token"].as_str();
    // Some of the signup's jobs are handed to Redis just after its answer,
    // which moves their records on (pending → waiting): the list to
    // revalidate is the one after that, or it rightly changes under the tag.
    testkit::wait::until(
        "the signup's jobs to be handed over",
        std::time::Duration::from_secs(10),
        || async {
            let pending: i64 =
                sqlx::query_scalar("select count(*) from jobs where state = 'pending'")
                    .fetch_one(&app.pool)
                    .await
                    .expect("the jobs table answers");
            (pending == 0).then_some(())
        },
    )
    .await;

    let first = app.get("/api/me/jobs", token).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    let page: Value = first.json().await.expect("json");
    assert_eq!(page["jobs"].as_array().map(Vec::len), Some(5));
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(
        app.get_if_none_match("/api/me/jobs", token, &etag)
            .await
            .status(),
        304
    );

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=yesterday", "cursor"),
    ] {
        let response = app.get(&format!("/api/me/jobs?{query}"), token).await;
        assert_eq!(response.status(), 422, "{query}");
        let error: Value = response.json().await.expect("json");
        assert!(
            error["error"]["fields"][field].is_string(),
            "{query}: {error}"
        );
    }
    assert_eq!(app.get("/api/me/jobs", None).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_after_the_database_dropped_every_connection_still_answer() {
    // The pool skips the health check of connections in steady use; one
    // that sat idle must still be checked, or a Postgres restart or
    // failover turns the next polls into errors.
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("poller@example.com", "Poller").await;
    let token = signup["token"].as_str();
    let path = format!("/api/jobs/{}", testkit::job_id(&signup, "welcome-email"));
    let polls = || futures::future::join_all((0..8).map(|_| app.get(&path, token)));
    for poll in polls().await {
        assert_eq!(poll.status(), 200, "a warm pool of several connections");
    }

    let dropped: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(&app.pool)
    .await
    .expect("terminate the api's connections");
    assert!(dropped.iter().filter(|&&d| d).count() >= 2, "{dropped:?}");
    // A window must pass: the dead connections sit idle past the pool's
    // one-second threshold (`PING_WHEN_IDLE_FOR`), as after a real failover.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    for poll in polls().await {
        assert_eq!(
            poll.status(),
            200,
            "a dead idle connection is replaced, not used"
        );
    }
}
