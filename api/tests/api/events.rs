//! `GET /api/me/events`: a user's job changes and profile changes pushed
//! as they commit, in order, to their streams only, on every instance;
//! resumable with `Last-Event-ID`; ended by a sign-out and by SIGTERM.

use std::time::Duration;

use serde_json::Value;
use testkit::images::{jpeg, photo};
use testkit::sse::{EventStream, Frame};
use testkit::{DEADLINE, TestApp};

/// How long a test waits to be sure an event does not come: far longer
/// than a delivery takes on this machine (milliseconds), since the other
/// user's events in the same round were already received.
const QUIET: Duration = Duration::from_millis(500);

/// A client that does not read bodies to check them (a stream never ends).
fn plain_client() -> reqwest::Client {
    platform::http::builder()
        .expect("TLS roots")
        .build()
        .expect("a client")
}

/// Opens `address`'s stream as `token`, waiting out the moments after
/// start when the instance does not hear the feed yet (503).
async fn stream_at(address: &str, token: &str, last: Option<&str>) -> EventStream {
    let client = plain_client();
    testkit::wait::until("a stream to open", DEADLINE, || async {
        match EventStream::open(&client, address, token, last).await {
            Ok(stream) => Some(stream),
            Err(response) if response.status() == 503 => None,
            Err(response) => panic!("the stream answered {}", response.status()),
        }
    })
    .await
}

/// Opens a first stream and reads its `ready`: returns it and its id.
async fn ready_stream(address: &str, token: &str) -> (EventStream, String) {
    let mut stream = stream_at(address, token, None).await;
    let (id, name, _) = stream.next_event().await;
    assert_eq!(name, "ready", "a first connection starts with ready");
    (stream, id)
}

fn token(signup: &Value) -> String {
    signup["token"].as_str().expect("a token").to_owned()
}

/// Reads events until `done` says so; returns them all (name, data).
async fn events_until(
    stream: &mut EventStream,
    mut done: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        loop {
            let (_, name, data) = stream.next_event().await;
            let finished = done(&name, &data);
            seen.push((name, data));
            if finished {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the awaited event did not come; seen: {seen:#?}"));
    seen
}

#[tokio::test]
async fn a_photo_upload_is_seen_as_progress_then_completed_and_then_the_new_avatar() {
    let app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up("streamer@example.com", "Streamer").await;
    let token = token(&signup);
    let (mut stream, _) = ready_stream(&app.address, &token).await;

    let upload = app
        .upload(&token, "photo", &jpeg(640, 480, &photo(640, 480)))
        .await;
    assert_eq!(upload.status(), 202);
    let upload: Value = upload.json().await.expect("JSON");
    let job = upload["job"]["id"].as_str().expect("a job id").to_owned();

    let seen = events_until(&mut stream, |name, data| {
        name == "account" && !data["avatar"].is_null()
    })
    .await;
    let resize: Vec<&Value> = seen
        .iter()
        .filter(|(name, data)| name == "job" && data["id"] == job.as_str())
        .map(|(_, data)| data)
        .collect();
    let states: Vec<&str> = resize
        .iter()
        .filter_map(|job| job["state"].as_str())
        .collect();
    assert_eq!(states.last(), Some(&"completed"), "seen: {seen:#?}");
    assert!(
        states.contains(&"active"),
        "the job was seen running: {states:?}"
    );
    let progress: Vec<i64> = resize
        .iter()
        .filter_map(|job| job["progress"].as_i64())
        .collect();
    assert!(
        progress.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress never goes back: {progress:?}"
    );
    assert!(
        progress.iter().any(|p| *p > 0 && *p < 100),
        "progress between the ends was pushed: {progress:?}"
    );
    let completed_at = seen
        .iter()
        .position(|(name, data)| {
            name == "job" && data["id"] == job.as_str() && data["state"] == "completed"
        })
        .expect("completed was seen");
    // Reading stopped at the first profile with an avatar: had it come
    // before the completion, the completion would not be among `seen`.
    let avatar_at = seen.len() - 1;
    assert!(
        avatar_at > completed_at,
        "the avatar came after the job's completion: {seen:#?}"
    );
    let status = app.job_status(&job, Some(&token)).await;
    assert_eq!(
        &status,
        resize.last().copied().expect("events"),
        "an event is the status body"
    );
    assert_eq!(
        seen.last().map(|(_, me)| me.clone()),
        Some(app.me(&token).await),
        "an account event is the profile body"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_stream_on_a_second_instance_sees_what_was_done_through_the_first() {
    let app = TestApp::spawn_without_worker().await;
    let second = app.start_another_api().await;
    let signup = app.sign_up("two@example.com", "Two Instances").await;
    let token = token(&signup);
    let (mut stream, _) = ready_stream(&second, &token).await;

    let upload = app
        .upload(&token, "photo", &jpeg(64, 64, &photo(64, 64)))
        .await;
    let upload: Value = upload.json().await.expect("JSON");
    let job = upload["job"]["id"].as_str().expect("a job id").to_owned();

    let seen = events_until(&mut stream, |name, data| {
        name == "job" && data["id"] == job.as_str()
    })
    .await;
    let (_, data) = seen.last().expect("the new job's event");
    assert_eq!(data["name"], "image-resize");
    app.stop().await;
}

#[tokio::test]
async fn a_reconnect_gets_what_it_missed_and_an_ancient_or_foreign_id_gets_reset() {
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("resumer@example.com", "Resumer").await;
    let token = token(&signup);
    let (stream, last) = ready_stream(&app.address, &token).await;
    drop(stream);

    // Done while no stream was open.
    let upload = app
        .upload(&token, "photo", &jpeg(64, 64, &photo(64, 64)))
        .await;
    let upload: Value = upload.json().await.expect("JSON");
    let job = upload["job"]["id"].as_str().expect("a job id").to_owned();

    let mut resumed = stream_at(&app.address, &token, Some(&last)).await;
    let seen = events_until(&mut resumed, |name, _| name == "ready").await;
    assert!(
        seen.iter()
            .any(|(name, data)| name == "job" && data["id"] == job.as_str()),
        "the missed job was replayed: {seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|(name, data)| name == "account" && data["email"] == "resumer@example.com"),
        "the profile came with the replay: {seen:#?}"
    );

    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2)).timestamp_micros();
    for ancient in [
        two_hours_ago.to_string(),
        "not-an-id".to_owned(),
        i64::MAX.to_string(),
    ] {
        let mut stream = stream_at(&app.address, &token, Some(&ancient)).await;
        let (_, name, data) = stream.next_event().await;
        assert_eq!(name, "reset", "{ancient} cannot be replayed: {data}");
    }
    app.stop().await;
}

#[tokio::test]
async fn another_users_stream_sees_nothing_of_mine() {
    let app = TestApp::spawn_without_worker().await;
    let mine = token(&app.sign_up("mine@example.com", "Mine").await);
    let theirs = token(&app.sign_up("theirs@example.com", "Theirs").await);
    let (mut my_stream, _) = ready_stream(&app.address, &mine).await;
    let (mut their_stream, _) = ready_stream(&app.address, &theirs).await;

    let upload = app
        .upload(&mine, "photo", &jpeg(64, 64, &photo(64, 64)))
        .await;
    assert_eq!(upload.status(), 202);
    events_until(&mut my_stream, |name, _| name == "job").await;

    loop {
        match their_stream.next_within(QUIET).await {
            Err(()) => break,
            // Their own jobs (their signup's) may still be moving.
            Ok(Some(Frame::Event { name, data, .. })) => {
                let id = data["id"].as_str().unwrap_or_default();
                let theirs_to_read = app.get(&format!("/api/jobs/{id}"), Some(&theirs)).await;
                assert!(
                    name == "job" && theirs_to_read.status() == 200,
                    "a stranger was sent {name}: {data}"
                );
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the other stream ended"),
        }
    }
    app.stop().await;
}

/// Reads until the server ends the stream; returns the frames on the way.
async fn until_ended(stream: &mut EventStream, patience: Duration) -> Vec<Frame> {
    let mut frames = Vec::new();
    tokio::time::timeout(patience, async {
        while let Some(frame) = stream.next().await {
            frames.push(frame);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the stream was not ended within {patience:?}: {frames:?}"));
    frames
}

#[tokio::test]
async fn signing_out_ends_the_stream_on_this_instance_and_on_another() {
    let app = TestApp::spawn_without_worker().await;
    let second = app.start_another_api().await;
    let signup = app.sign_up("leaver@example.com", "Leaver").await;
    let first_token = token(&signup);
    let (mut here, _) = ready_stream(&app.address, &first_token).await;
    let (mut elsewhere, _) = ready_stream(&second, &first_token).await;

    let logout = app
        .client
        .delete(format!("{}/api/session", app.address))
        .bearer_auth(&first_token)
        .send()
        .await
        .expect("answered");
    assert_eq!(logout.status(), 204);
    until_ended(&mut here, Duration::from_secs(1)).await;
    // The other instance learns of it from its sweep of tokens (every 4 s)
    // and one query; more room than that for a loaded machine, far less
    // than the heartbeat or idle timeouts that would also end it.
    until_ended(&mut elsewhere, Duration::from_secs(8)).await;
    // And no new one opens once the instance's token cache lets go (5 s).
    testkit::wait::until("the revoked token to be refused", DEADLINE, || async {
        match EventStream::open(&plain_client(), &second, &first_token, None).await {
            Err(refused) if refused.status() == 401 => Some(()),
            _ => None,
        }
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_user_past_their_stream_limit_gets_429_and_a_full_instance_503() {
    let app = TestApp::spawn_without_worker_with(|settings| {
        settings.events.per_user = 2;
        settings.events.max_streams = 3;
    })
    .await;
    let one = token(&app.sign_up("tabs@example.com", "Many Tabs").await);
    let other = token(&app.sign_up("other@example.com", "Other").await);
    let _first = stream_at(&app.address, &one, None).await;
    let second = stream_at(&app.address, &one, None).await;
    let client = plain_client();
    let third = EventStream::open(&client, &app.address, &one, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(third.status(), 429);
    let body: Value = third.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "too_many_streams");

    drop(second);
    // The closed tab's slot comes back once the server sees it gone.
    let _again = testkit::wait::until("a closed stream's slot to free", DEADLINE, || async {
        EventStream::open(&client, &app.address, &one, None)
            .await
            .ok()
    })
    .await;
    let _theirs = stream_at(&app.address, &other, None).await;
    let full = EventStream::open(&client, &app.address, &other, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(full.status(), 503);
    assert!(full.headers().contains_key("retry-after"));
    let body: Value = full.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "streams_unavailable");
    app.stop().await;
}

#[tokio::test]
async fn sigterm_ends_every_stream_at_once_with_a_reconnect_hint() {
    let app = TestApp::spawn_without_worker().await;
    let mut api = app.spawn_api_process(env!("CARGO_BIN_EXE_api")).await;
    let token = token(&app.sign_up("sigterm@example.com", "Sig Term").await);
    let (mut stream, _) = ready_stream(&api.address, &token).await;

    api.terminate();
    let frames = until_ended(&mut stream, Duration::from_secs(3)).await;
    assert!(
        frames
            .iter()
            .any(|frame| matches!(frame, Frame::Retry(ms) if *ms <= 1_000)),
        "told to reconnect soon: {frames:?}"
    );
    let status = api.wait(Duration::from_secs(5)).await;
    assert!(
        status.success(),
        "the api exited cleanly without waiting on streams"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_streams_at_once() {
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("changer@example.com", "Changer").await;
    let first = token(&signup);
    let login =
        serde_json::json!({"email": "changer@example.com", "password": "correct horse battery"});
    let second: Value = app
        .post_json("/api/login", &login)
        .await
        .json()
        .await
        .expect("JSON");
    let second = token(&second);
    let (mut other_tab, _) = ready_stream(&app.address, &second).await;
    let (mut this_tab, _) = ready_stream(&app.address, &first).await;

    let change = serde_json::json!({
        "current_password": "correct horse battery",
        "new_password": "a brand new passphrase",
    });
    let changed = app
        .send_json(reqwest::Method::POST, "/api/me/password", &first, &change)
        .await;
    assert_eq!(changed.status(), 204);
    // Told at once on this instance, not at the next sweep (4 s).
    until_ended(&mut other_tab, Duration::from_secs(2)).await;
    loop {
        match this_tab.next_within(QUIET).await {
            Err(()) => break,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the session that changed it lost its stream"),
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_change_never_announced_still_reaches_the_stream_within_seconds() {
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("unheard@example.com", "Unheard").await;
    let token = token(&signup);
    let (mut stream, _) = ready_stream(&app.address, &token).await;
    let upload = app
        .upload(&token, "photo", &jpeg(64, 64, &photo(64, 64)))
        .await;
    let upload: Value = upload.json().await.expect("JSON");
    let job = upload["job"]["id"].as_str().expect("a job id").to_owned();
    events_until(&mut stream, |name, data| {
        name == "job" && data["id"] == job.as_str()
    })
    .await;

    // As a writer killed between its commit and its publish leaves it.
    sqlx::query(
        "update jobs set state = 'active', progress = 42, updated_at = now() where job_id = $1::uuid",
    )
    .bind(&job)
    .execute(&app.pool)
    .await
    .expect("updated");
    let seen = events_until(&mut stream, |name, data| {
        name == "job" && data["id"] == job.as_str() && data["progress"] == 42
    })
    .await;
    let last = seen.last().map(|(_, data)| data["state"].clone());
    assert_eq!(last, Some(Value::from("active")));
    app.stop().await;
}

#[tokio::test]
async fn a_replay_longer_than_it_may_be_is_a_reset() {
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("busy@example.com", "Busy").await;
    let token = token(&signup);
    let (stream, last) = ready_stream(&app.address, &token).await;
    drop(stream);
    let user = signup["user"]["id"].as_str().expect("a user id");
    sqlx::query(
        "insert into jobs (job_id, user_id, queue, payload, state, max_attempts)
         select gen_random_uuid(), $1::uuid, 'welcome-email', '{}', 'completed', 1
         from generate_series(1, 201)",
    )
    .bind(user)
    .execute(&app.pool)
    .await
    .expect("inserted");

    let mut resumed = stream_at(&app.address, &token, Some(&last)).await;
    let (_, name, data) = resumed.next_event().await;
    assert_eq!(
        name, "reset",
        "201 changes are not replayed one by one: {data}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_lost_feed_ends_every_stream_with_a_hint_and_refuses_new_ones_until_it_is_back() {
    let mut app = TestApp::spawn_without_worker().await;
    let token = token(&app.sign_up("feedless@example.com", "Feedless").await);
    let (mut stream, _) = ready_stream(&app.address, &token).await;

    app.redis.stop();
    let frames = until_ended(&mut stream, DEADLINE).await;
    assert!(
        frames.iter().any(|frame| matches!(frame, Frame::Retry(_))),
        "told to come back: {frames:?}"
    );
    let refused = EventStream::open(&plain_client(), &app.address, &token, None).await;
    assert_eq!(
        refused.err().map(|response| response.status().as_u16()),
        Some(503)
    );
    app.redis.restart();
    ready_stream(&app.address, &token).await;
    app.stop().await;
}

/// Drops every packet from `source` while it lives: the client behind it
/// vanishes as a phone that lost its network does, without a word.
struct Vanished(&'static str);

impl Vanished {
    fn start(source: &'static str) -> Self {
        let added = std::process::Command::new("iptables")
            .args(["-I", "INPUT", "-s", source, "-j", "DROP"])
            .status()
            .expect("iptables runs (scripts/test installs it; the tests run as root)");
        assert!(added.success(), "the rule is added");
        Self(source)
    }
}

impl Drop for Vanished {
    fn drop(&mut self) {
        let _ = std::process::Command::new("iptables")
            .args(["-D", "INPUT", "-s", self.0, "-j", "DROP"])
            .status();
    }
}

#[tokio::test]
async fn a_client_that_vanished_loses_its_stream_and_its_slot_within_the_idle_timeout() {
    let app = TestApp::spawn_without_worker_with(|settings| {
        settings.events.per_user = 1;
        // Heartbeats every second, and a peer silent for 2 s is gone.
        settings.server.http.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let token = token(&app.sign_up("vanishing@example.com", "Vanishing").await);
    let phone = platform::http::builder()
        .expect("a client")
        .local_address(std::net::IpAddr::from([127, 0, 0, 9]))
        .build()
        .expect("a client");
    let mut stream = testkit::wait::until("a stream to open", DEADLINE, || async {
        EventStream::open(&phone, &app.address, &token, None)
            .await
            .ok()
    })
    .await;
    let (_, name, _) = stream.next_event().await;
    assert_eq!(name, "ready");

    let vanished = Vanished::start("127.0.0.9");
    // The heartbeats it no longer acknowledges close the connection on
    // the server's side; until then its one slot is taken (429).
    let again = testkit::wait::until("the vanished stream's slot to free", DEADLINE, || async {
        EventStream::open(&plain_client(), &app.address, &token, None)
            .await
            .ok()
    })
    .await;
    drop((again, vanished, stream));
    app.stop().await;
}
