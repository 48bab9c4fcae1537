//! Alerts, black-box: each condition is made real (no worker, a slow or
//! refusing provider, failing jobs, Redis down), and the team's Slack
//! channel (a mock) must hear exactly one message when the incident starts
//! and exactly one when it ends.

use std::collections::BTreeMap;
use std::time::Duration;

use platform::config::Settings;
use serde_json::{Value, json};
use testkit::app::{ADMIN_TOKEN, Options};
use testkit::browser::{Browser, Screen, evidence_dir};
use testkit::{DEADLINE, TestApp};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The team's channel: records what the api posts to it.
struct Channel(MockServer);

impl Channel {
    async fn start() -> Self {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&server)
            .await;
        Self(server)
    }

    fn url(&self) -> String {
        format!("{}/services/T0/B0/alerts", self.0.uri())
    }

    /// The texts posted so far, in order; each was posted as plain text
    /// (markup and link previews off), and nothing else.
    async fn messages(&self) -> Vec<String> {
        self.0
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|request| {
                let body: Value = serde_json::from_slice(&request.body).expect("JSON");
                let text = body["text"].as_str().expect("a text").to_owned();
                let plain = json!({ "text": text, "mrkdwn": false,
                                    "unfurl_links": false, "unfurl_media": false });
                assert_eq!(body, plain, "alerts are plain text");
                text
            })
            .collect()
    }

    /// How many start and end messages name `needle`.
    async fn count(&self, needle: &str) -> (usize, usize) {
        let messages = self.messages().await;
        let with = |mark: &str| {
            messages
                .iter()
                .filter(|text| text.starts_with(mark) && text.contains(needle))
                .count()
        };
        (with(":rotating_light:"), with(":white_check_mark:"))
    }

    /// Waits until `needle`'s incident has been announced `(started, ended)`
    /// times, then a few more checks, and asserts nothing was repeated.
    async fn expect(&self, needle: &str, wanted: (usize, usize)) {
        testkit::wait::until(
            &format!("{wanted:?} messages about {needle:?}"),
            DEADLINE,
            || async { (self.count(needle).await >= wanted).then_some(()) },
        )
        .await;
        // Three more evaluations: an incident that lasts is not told twice.
        tokio::time::sleep(CHECK * 3).await;
        assert_eq!(
            self.count(needle).await,
            wanted,
            "about {needle:?}: {:#?}",
            self.messages().await
        );
    }
}

const CHECK: Duration = Duration::from_secs(1);

/// An app whose alerts go to `channel` and are checked every second, with
/// `configure`'s thresholds.
async fn app(
    channel: &Channel,
    worker: bool,
    configure: impl FnOnce(&mut Settings) + Send + 'static,
) -> TestApp {
    let url = channel.url();
    TestApp::spawn_with(
        Options {
            worker,
            ..Options::default()
        }
        .configure(move |s| {
            s.alerts.slack_webhook_url = Some(url.into());
            s.alerts.check_interval = CHECK;
            configure(s);
        }),
    )
    .await
}

async fn open_incidents(app: &TestApp) -> Vec<Value> {
    let response = app
        .client
        .get(format!("{}/api/admin/incidents", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("the api answers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["incidents"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|incident| incident["closed_at"].is_null())
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_no_worker_consumes_open_one_incident_per_queue_and_a_worker_ends_each() {
    let channel = Channel::start().await;
    let mut app = app(&channel, false, |s| {
        s.alerts.no_consumer = Duration::from_secs(1);
        s.alerts.email_to = vec!["oncall@example.com".into()];
    })
    .await;
    // Two api instances watch; the team still hears each thing once.
    app.start_another_api().await;
    app.sign_up_unverified("nobody-home@example.com", "Nobody Home")
        .await;

    // The signup's three queues wait with nobody consuming them.
    let queues = ["account-email", "slack-notify", "onboarding-pdf"];
    for queue in queues {
        channel
            .expect(&format!("no worker is consuming {queue}:"), (1, 0))
            .await;
    }
    let opened = channel.messages().await;
    assert!(
        opened[0].contains("jobs waiting") || opened[0].contains("job waiting"),
        "{opened:#?}"
    );
    assert!(
        opened[0].ends_with("Dashboard: http://app.test/admin"),
        "{opened:#?}"
    );
    let open: BTreeMap<String, String> = open_incidents(&app)
        .await
        .into_iter()
        .map(|incident| {
            assert!(!incident["opened_notified_at"].is_null(), "{incident}");
            (
                incident["queue"].as_str().unwrap().to_owned(),
                incident["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        open,
        queues
            .iter()
            .map(|queue| ((*queue).to_owned(), "no_consumer".to_owned()))
            .collect(),
        "the dashboard lists the same incidents"
    );

    app.start_worker();
    for queue in queues {
        channel
            .expect(&format!("no worker is consuming {queue}:"), (1, 1))
            .await;
    }
    assert_eq!(open_incidents(&app).await, Vec::<Value>::new());
    assert_eq!(channel.messages().await.len(), 6);

    // The same six, by email (the confirmation email aside).
    let mut subjects: Vec<String> = app
        .smtp
        .received()
        .iter()
        .filter_map(|email| email.parsed().subject().map(str::to_owned))
        .filter(|subject| subject.starts_with("[alert] "))
        .collect();
    subjects.sort();
    assert_eq!(subjects.len(), 6, "{subjects:#?}");
    for queue in queues {
        let about: Vec<&String> = subjects
            .iter()
            .filter(|subject| subject.contains(&format!("no worker is consuming {queue}:")))
            .collect();
        assert_eq!(about.len(), 2, "{about:#?}");
        assert!(about[0].starts_with("[alert] Incident: "), "{about:#?}");
        assert!(
            about[1].starts_with("[alert] Resolved after "),
            "{about:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_whose_oldest_job_waits_too_long_while_workers_run_is_one_incident() {
    let channel = Channel::start().await;
    // Slack (the product's, not the team's) answers slowly, and one job
    // at a time is sent to it: the next ones wait.
    let slow_slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&slow_slack)
        .await;
    let product_slack = format!("{}/services/T/B/product", slow_slack.uri());
    let app = app(&channel, true, move |s| {
        s.providers.slack_webhook_url = Some(product_slack.into());
        // One job at a time, not a batch of all that wait.
        s.queues.slack_notify.batch = None;
        s.queues.slack_notify.concurrency = 1;
        s.alerts.oldest_waiting = Duration::from_secs(1);
    })
    .await;
    for n in 0..3 {
        app.sign_up_unverified(&format!("queued-{n}@example.com"), "Queued")
            .await;
    }

    channel
        .expect("slack-notify is not keeping up", (1, 0))
        .await;
    let messages = channel.messages().await;
    assert!(
        messages[0].contains("1 worker consuming"),
        "names the consumers: {messages:#?}"
    );
    // Once the last of them is sent, nothing waits.
    channel
        .expect("slack-notify is not keeping up", (1, 1))
        .await;
    assert_eq!(channel.messages().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_failing_for_good_past_the_threshold_open_an_incident_that_ends_with_the_window() {
    let channel = Channel::start().await;
    let broken_slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&broken_slack)
        .await;
    let product_slack = format!("{}/services/T/B/product", broken_slack.uri());
    let app = app(&channel, true, move |s| {
        s.providers.slack_webhook_url = Some(product_slack.into());
        s.queues.slack_notify.attempts = 1;
        s.alerts.failed_jobs = 1;
        s.alerts.failure_window = Duration::from_secs(6);
    })
    .await;
    for n in 0..2 {
        app.sign_up_unverified(&format!("failing-{n}@example.com"), "Failing")
            .await;
    }

    channel
        .expect(
            "slack-notify: 2 jobs failed for good in the last 6 s (threshold 1)",
            (1, 0),
        )
        .await;
    // No more failures: the window slides past them.
    channel.expect("slack-notify: 2 jobs failed", (1, 1)).await;
    assert_eq!(channel.messages().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_held_by_a_refused_credential_alerts_until_the_credential_works() {
    let channel = Channel::start().await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_string("invalid_token <!channel>"))
        .mount(&slack)
        .await;
    let product_slack = format!("{}/services/T/B/product", slack.uri());
    let app = app(&channel, true, move |s| {
        s.providers.slack_webhook_url = Some(product_slack.into());
        s.providers.config_fault_pause = Duration::from_secs(2);
    })
    .await;
    app.sign_up_unverified("held@example.com", "Held").await;

    channel
        .expect(
            "slack-notify is paused: a provider refused our credentials",
            (1, 0),
        )
        .await;
    // The provider's answer is quoted, escaped: it pings nobody.
    let opened = channel.messages().await.remove(0);
    assert!(
        opened.contains("invalid_token &lt;!channel&gt;") && !opened.contains('<'),
        "{opened}"
    );
    // The operator fixes the webhook; the next try after the pause works.
    slack.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    channel
        .expect(
            "slack-notify is paused: a provider refused our credentials",
            (1, 1),
        )
        .await;
    assert_eq!(channel.messages().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_cannot_reach_redis_alert_until_the_relay_delivers_them() {
    let channel = Channel::start().await;
    let mut app = app(&channel, true, |s| s.alerts.outbox = Duration::from_secs(1)).await;
    app.redis.stop();
    app.sign_up_unverified("outage@example.com", "Outage").await;

    channel
        .expect(
            "the outbox holds 3 job records that did not reach Redis",
            (1, 0),
        )
        .await;
    app.redis.restart();
    channel
        .expect(
            "the outbox holds 3 job records that did not reach Redis",
            (1, 1),
        )
        .await;
    assert_eq!(
        channel.messages().await.len(),
        2,
        "{:#?}",
        channel.messages().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_open_incident_and_the_queue_nobody_consumes() {
    let channel = Channel::start().await;
    let url = channel.url();
    let port = testkit::free_port();
    let app = TestApp::spawn_with(Options::default().configure(move |s| {
        s.server.port = port;
        s.links.public_url = format!("http://127.0.0.1:{port}");
        s.alerts.slack_webhook_url = Some(url.into());
        s.alerts.check_interval = CHECK;
        s.alerts.no_consumer = Duration::from_secs(1);
    }))
    .await;
    app.sign_up_unverified("unseen@example.com", "Unseen").await;
    channel
        .expect("no worker is consuming slack-notify:", (1, 0))
        .await;

    let browser = Browser::start(Screen::Desktop).await;
    browser
        .run("dashboard-incident", async |browser| {
            browser.open(&format!("{}/admin", app.address)).await;
            browser.fill("#admin-token", ADMIN_TOKEN).await;
            browser.click("#sign-in-form button[type=submit]").await;
            let open = browser
                .wait_for_text("#incidents-open", "no worker is consuming slack-notify")
                .await;
            assert!(open.contains("team told"), "{open}");
            let row = browser
                .wait_for_text("tr[data-queue=slack-notify]", "no worker")
                .await;
            assert!(row.contains("slack-notify"), "{row}");
            let flagged = browser
                .eval(
                    "return [...document.querySelectorAll('#queues tr.unconsumed')]
                        .map((row) => row.dataset.queue).sort()",
                )
                .await;
            assert_eq!(
                flagged,
                serde_json::json!(["account-email", "onboarding-pdf", "slack-notify"]),
                "only the queues with waiting jobs and no worker stand out"
            );
            browser
                .screenshot(
                    &evidence_dir()
                        .join("screens")
                        .join("dashboard-incident.png"),
                )
                .await;
        })
        .await;
}
