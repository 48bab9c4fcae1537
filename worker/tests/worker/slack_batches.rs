//! slack-notify as a batched queue: one message carries every signup the
//! worker holds, one message a second at most.

use std::time::Duration;

use catalogue::Batch;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::app::Options;
use testkit::{DEADLINE, TestApp, job_id};
use wiremock::{MockServer, ResponseTemplate};

use super::slack::{HOOK, plain, slack};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

/// An app without a worker, posting to `server`; signups wait in the queue
/// until a test starts one, as a burst would.
async fn app_posting_to(
    server: &MockServer,
    configure: impl FnOnce(&mut platform::config::Settings) + Send + 'static,
) -> TestApp {
    let webhook = format!("{}{HOOK}", server.uri());
    TestApp::spawn_with(Options::default().configure(move |s| {
        s.providers.slack_webhook_url = Some(webhook.into());
        s.auth.rate_limit = 0;
        configure(s);
    }))
    .await
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string("ok")
}

fn texts(arrivals: &[(std::time::Instant, Value)]) -> Vec<String> {
    arrivals
        .iter()
        .map(|(_, body)| body["text"].as_str().expect("a text").to_owned())
        .collect()
}

/// How many times the messages name `who` (as `Name (masked address)`).
fn times_named(texts: &[String], who: &str) -> usize {
    texts
        .iter()
        .map(|text| text.matches(&format!("{who} (")).count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_signups_is_announced_in_few_messages_naming_everyone_once() {
    let (server, scripted) = slack(vec![ok()]).await;
    let mut app = app_posting_to(&server, |s| {
        s.queues.slack_notify.batch = Some(Batch {
            max: 25,
            every: Duration::from_secs(1),
        });
    })
    .await;
    // One after another (the api sheds concurrent password hashing beyond
    // its slots); with no worker running they all wait, as a burst does.
    let mut signups = Vec::new();
    for n in 0..60 {
        signups.push(
            app.sign_up(&format!("burst{n}@example.com"), &format!("Burst {n}"))
                .await,
        );
    }

    app.run_jobs_until_idle().await;

    let arrivals = scripted.arrivals();
    let texts = texts(&arrivals);
    // 60 signups in runs of at most 25: three messages, or a few more when
    // the first run starts before everything is fetched; one each would be 60.
    assert!(
        (3..=6).contains(&texts.len()),
        "{} messages: {texts:#?}",
        texts.len()
    );
    for n in 0..60 {
        assert_eq!(times_named(&texts, &format!("Burst {n}")), 1, "{texts:#?}");
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(900), "messages {gap:?} apart");
    }
    for (n, signup) in signups.iter().enumerate() {
        let job = app
            .job_status(&job_id(signup, "slack-notify"), signup["token"].as_str())
            .await;
        assert_eq!(job["state"], "completed", "{job}");
        // Its owner reads it: it names them, and none of the others.
        let posted = job["result"]["posted"].as_str().expect("the line");
        assert!(posted.contains(&format!("Burst {n} (")), "{job}");
        assert!(
            !posted.contains(&format!("Burst {} (", (n + 1) % 60)),
            "{job}"
        );
        assert!(
            texts.iter().any(|text| text.contains(posted)),
            "posted in a message: {job}"
        );
        // Nor how many others signed up with them.
        assert_eq!(job["result"].as_object().map(|r| r.len()), Some(1), "{job}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_keeps_hostile_names_inert_and_leaves_out_a_deleted_user() {
    let (server, scripted) = slack(vec![ok()]).await;
    let mut app = app_posting_to(&server, |_| {}).await;
    let mallory = app
        .sign_up(
            "mallory@evil.example",
            "*bold* & <https://evil.example|click here> <!channel>",
        )
        .await;
    let grace = app.sign_up("grace@example.com", "Grace Hopper").await;
    let gone = app.sign_up("gone@example.com", "Gone Soon").await;
    let deleted = app
        .send_json(
            Method::DELETE,
            "/api/me",
            gone["token"].as_str().expect("a session"),
            &json!({ "password": "correct horse battery" }),
        )
        .await;
    assert!(deleted.status().is_success(), "{}", deleted.status());

    app.run_jobs_until_idle().await;

    let arrivals = scripted.arrivals();
    assert_eq!(
        arrivals.len(),
        1,
        "one message for the batch: {arrivals:#?}"
    );
    assert_eq!(
        arrivals[0].1,
        plain(
            ":tada: 2 new signups:\n\
             • \u{2217}bold\u{2217} &amp; &lt;https\u{2236}//evil\u{2024}example|click here&gt; \
             &lt;!channel&gt; (m\u{2217}\u{2217}\u{2217}@evil\u{2024}example)\n\
             • Grace Hopper (g\u{2217}\u{2217}\u{2217}@example\u{2024}com)"
        )
    );
    for signup in [&mallory, &grace] {
        let job = app
            .job_status(&job_id(signup, "slack-notify"), signup["token"].as_str())
            .await;
        assert_eq!(job["state"], "completed", "{job}");
        assert_eq!(job["result"].as_object().map(|r| r.len()), Some(1), "{job}");
    }
    // The deleted user's own job record goes with the account.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_worker_was_killed_is_announced_after_recovery() {
    // The first message never gets its answer: the worker dies waiting.
    let (server, scripted) = slack(vec![ok().set_delay(Duration::from_secs(30)), ok()]).await;
    let app = app_posting_to(&server, |s| {
        // A dead worker's jobs come back within a few seconds.
        s.queues.slack_notify.lock_duration = Duration::from_secs(2);
        s.queues.slack_notify.stalled_interval = Duration::from_secs(1);
    })
    .await;
    let mut signups = Vec::new();
    for n in 0..5 {
        signups.push(
            app.sign_up(&format!("crash{n}@example.com"), &format!("Crash {n}"))
                .await,
        );
    }
    let mut doomed = app.spawn_worker_process(WORKER);
    testkit::wait::until("the first message to be sent", DEADLINE, || async {
        (!scripted.arrivals().is_empty()).then_some(())
    })
    .await;

    doomed.kill().await;
    let mut recovering = app.spawn_worker_process(WORKER);

    for signup in &signups {
        app.wait_for_job_state(&job_id(signup, "slack-notify"), "completed", DEADLINE)
            .await;
    }
    let texts = texts(&scripted.arrivals());
    let (lost, recovered) = texts.split_first().expect("messages");
    for n in 0..5 {
        let who = format!("Crash {n}");
        assert_eq!(
            times_named(std::slice::from_ref(lost), &who),
            1,
            "{texts:#?}"
        );
        // At least once: the lost message named them, and so does the
        // recovery's, exactly once.
        assert_eq!(times_named(recovered, &who), 1, "{texts:#?}");
    }
    recovering.terminate();
    assert!(recovering.wait(DEADLINE).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_batch_in_hand_finish_and_exits_zero() {
    // Slack takes its time with the first message: SIGTERM comes meanwhile.
    let (server, scripted) = slack(vec![ok().set_delay(Duration::from_secs(2)), ok()]).await;
    let app = app_posting_to(&server, |s| {
        s.worker.shutdown_timeout = Duration::from_secs(20);
    })
    .await;
    let mut signups = Vec::new();
    for n in 0..5 {
        signups.push(
            app.sign_up(&format!("term{n}@example.com"), &format!("Term {n}"))
                .await,
        );
    }
    let mut worker = app.spawn_worker_process(WORKER);
    testkit::wait::until("the batch's message to be sent", DEADLINE, || async {
        (!scripted.arrivals().is_empty()).then_some(())
    })
    .await;

    worker.terminate();
    let status = worker.wait(DEADLINE).await;

    assert!(status.success(), "worker exited with {status}");
    let texts = texts(&scripted.arrivals());
    assert_eq!(texts.len(), 1, "{texts:#?}");
    for (n, signup) in signups.iter().enumerate() {
        let job = app
            .job_status(&job_id(signup, "slack-notify"), signup["token"].as_str())
            .await;
        if times_named(&texts, &format!("Term {n}")) == 1 {
            assert_eq!(job["state"], "completed", "in the batch in hand: {job}");
        } else {
            assert_ne!(job["state"], "completed", "after SIGTERM: {job}");
        }
    }
}
