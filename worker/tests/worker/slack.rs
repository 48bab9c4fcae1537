//! The slack-notify job against a wiremock webhook.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::app::Options;
use testkit::{TestApp, job_id};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use testkit::DEADLINE;
pub(crate) const HOOK: &str = "/services/T000/B000/XXXX";

/// Answers with the scripted responses in order (the last one repeats) and
/// records when each request arrived.
#[derive(Clone)]
pub(crate) struct Scripted {
    replies: Arc<Mutex<Vec<ResponseTemplate>>>,
    arrivals: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Scripted {
    fn new(replies: Vec<ResponseTemplate>) -> Self {
        Self {
            replies: Arc::new(Mutex::new(replies)),
            arrivals: Arc::default(),
        }
    }

    pub(crate) fn arrivals(&self) -> Vec<(Instant, Value)> {
        self.arrivals.lock().expect("not poisoned").clone()
    }
}

impl Respond for Scripted {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        self.arrivals
            .lock()
            .expect("not poisoned")
            .push((Instant::now(), body));
        let mut replies = self.replies.lock().expect("not poisoned");
        if replies.len() > 1 {
            replies.remove(0)
        } else {
            replies[0].clone()
        }
    }
}

pub(crate) async fn slack(replies: Vec<ResponseTemplate>) -> (MockServer, Scripted) {
    let server = MockServer::start().await;
    let scripted = Scripted::new(replies);
    Mock::given(method("POST"))
        .and(path(HOOK))
        .and(header("content-type", "application/json"))
        .respond_with(scripted.clone())
        .mount(&server)
        .await;
    (server, scripted)
}

async fn app_with_slack(server: &MockServer) -> TestApp {
    TestApp::spawn_with(Options {
        worker: true,
        configure: Some(testkit::app::configure({
            let value = format!("{}{HOOK}", server.uri());
            move |s| s.providers.slack_webhook_url = Some(value.into())
        })),
        ..Options::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signup_is_announced_with_the_name_and_a_masked_email() {
    let (server, scripted) = slack(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    let app = app_with_slack(&server).await;

    let body = app
        .sign_up("grace.hopper@example.com", "Grace Hopper")
        .await;

    app.wait_for_job_state(&job_id(&body, "slack-notify"), "completed", DEADLINE)
        .await;
    let arrivals = scripted.arrivals();
    assert_eq!(arrivals.len(), 1);
    // The address's first letter and domain only, its `*` and `.` inert.
    assert_eq!(
        arrivals[0].1,
        plain(":tada: New signup: Grace Hopper (g\u{2217}\u{2217}\u{2217}@example\u{2024}com)")
    );
}

/// The body Slack gets for `text`: plain text, no link previews.
pub(crate) fn plain(text: &str) -> Value {
    json!({ "text": text, "mrkdwn": false, "unfurl_links": false, "unfurl_media": false })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_the_queue_for_retry_after_without_spending_an_attempt() {
    let (server, scripted) = slack(vec![
        ResponseTemplate::new(429).insert_header("retry-after", "2"),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    let app = app_with_slack(&server).await;

    let body = app.sign_up("patient@example.com", "Patient").await;

    let job_id = job_id(&body, "slack-notify");
    app.wait_for_job_state(&job_id, "completed", DEADLINE).await;
    let arrivals = scripted.arrivals();
    assert_eq!(arrivals.len(), 2);
    let waited = arrivals[1].0 - arrivals[0].0;
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}"
    );
    let job = app.job_status(&job_id, body["token"].as_str()).await;
    assert_eq!(
        job["attempts_made"], 1,
        "the 429 was not a failed attempt: {job}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_webhook_fails_at_once_and_no_url_means_a_recorded_skip() {
    let (server, _) = slack(vec![
        ResponseTemplate::new(404).set_body_string("no_service"),
    ])
    .await;
    let revoked = app_with_slack(&server).await;
    let unset = TestApp::spawn_with_worker().await;

    let failed = revoked.sign_up("revoked@example.com", "Revoked").await;
    let skipped = unset.sign_up("unset@example.com", "Unset").await;

    revoked
        .wait_for_job_state(&job_id(&failed, "slack-notify"), "failed", DEADLINE)
        .await;
    let job_id = job_id(&skipped, "slack-notify");
    unset
        .wait_for_job_state(&job_id, "completed", DEADLINE)
        .await;
    let job = unset.job_status(&job_id, skipped["token"].as_str()).await;
    assert_eq!(
        job["result"],
        json!({ "skipped": "SLACK_WEBHOOK_URL is not set" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_never_leaks_its_secret_url() {
    let closed_port = testkit::free_port();
    let app = TestApp::spawn_with(Options {
        worker: true,
        configure: Some(testkit::app::configure({
            let value = format!("http://127.0.0.1:{closed_port}/services/T0/B0/s3cr3tT0k3n");
            move |s| {
                s.providers.slack_webhook_url = Some(value.into());
                s.queues.slack_notify.attempts = 1;
            }
        })),
        ..Options::default()
    })
    .await;

    let body = app.sign_up("leak@example.com", "Leak").await;

    let job_id = job_id(&body, "slack-notify");
    app.wait_for_job_state(&job_id, "failed", DEADLINE).await;
    let job = app.job_status(&job_id, body["token"].as_str()).await;
    assert_eq!(job["error"]["code"], "unavailable", "{job}");
    let operator = app.operator_view(&job_id).await;
    let detail = operator["error_detail"].as_str().expect("a reason");
    assert!(detail.contains("could not reach Slack"), "{detail}");
    for shown in [job.to_string(), operator.to_string()] {
        assert!(
            !shown.contains("s3cr3tT0k3n"),
            "the webhook leaked: {shown}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_slack_markup_reaches_the_channel_as_plain_text() {
    let (server, scripted) = slack(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    let app = app_with_slack(&server).await;

    let body = app
        .sign_up(
            "mallory@evil.example",
            "*bold* & <https://evil.example|click here> <!channel> https://evil.example `x`_y_~z~",
        )
        .await;

    app.wait_for_job_state(&job_id(&body, "slack-notify"), "completed", DEADLINE)
        .await;
    // `<`, `>` and `&` escaped as Slack asks; markup off; and what Slack
    // has no escape for (formatting, the `:` and `.` of a link) replaced by
    // look-alikes: ∗ ∶ ․ ˋ ˍ ∼.
    assert_eq!(
        scripted.arrivals()[0].1,
        plain(
            ":tada: New signup: \u{2217}bold\u{2217} &amp; \
             &lt;https\u{2236}//evil\u{2024}example|click here&gt; &lt;!channel&gt; \
             https\u{2236}//evil\u{2024}example \u{02CB}x\u{02CB}\u{02CD}y\u{02CD}\u{223C}z\u{223C} \
             (m\u{2217}\u{2217}\u{2217}@evil\u{2024}example)"
        )
    );
}
