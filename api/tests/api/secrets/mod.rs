//! No secret or token in any log line, trace or answer: the real `api` and
//! `worker` binaries run every flow with recognisable secrets configured,
//! the providers failing (so failures are logged, with whatever they
//! carry), at the most verbose log level and exporting traces; then
//! everything they wrote, exported and answered is searched for the
//! secrets and for every token the flows were handed or used.

use std::time::Duration;

use secrecy::ExposeSecret as _;
use serde_json::json;
use testkit::app::Options;
use testkit::otlp::Collector;
use testkit::{DEADLINE, TestApp, wait};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::worker_binary;
use flows::Flows;

mod evidence;
mod flows;

const API: &str = env!("CARGO_BIN_EXE_api");

const STRIPE_SECRET_KEY: &str = "sk_test_SECRETSTRIPEKEY4f9c2a71";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_SECRETSTRIPEWEBHOOK8d3e6b50";
/// The secret part of the product Slack webhook's URL (`/services/…/<it>`).
const SLACK_HOOK: &str = "SECRETSLACKHOOK5b7e1d9a";
/// The secret part of the alerts' Slack webhook URL.
const ALERT_HOOK: &str = "SECRETALERTHOOK2c8f4a6e";
const SMTP_USER: &str = "mailer";
const SMTP_PASSWORD: &str = "SECRETSMTPPASSWORD7a1c9e";
const REDIS_PASSWORD: &str = "SECRETREDISPASSWORD3e5d7b";
/// A password Redis refuses: an operator's typo, to be logged nowhere either.
const WRONG_REDIS_PASSWORD: &str = "SECRETWRONGREDISPASSWORD9f2b";
/// Test Postgres trusts local clients: the password is carried in
/// `DATABASE_URL` everywhere the URL goes, but never asked for.
const POSTGRES_PASSWORD: &str = "SECRETPOSTGRESPASSWORD6d8a";
const ADMIN_TOKEN: &str = "SECRETADMINTOKEN-0123456789abcdef";
const METRICS_TOKEN: &str = "SECRETMETRICSTOKEN-0123456789abcdef";
const UNSUBSCRIBE_SECRET: &str = "SECRETUNSUBSCRIBEKEY-0123456789abcdef";
/// Set, though storage is a local folder: s3rver, our S3 stand-in, only
/// takes its own fixed key. Startup and settings must not show it either.
const AWS_SECRET_ACCESS_KEY: &str = "SECRETAWSACCESSKEY1b3d5f7h";
/// The password in an OTLP collector's URL (`https://user:password@…`),
/// given to an api instance whose collector is out of reach, and to one
/// whose collector URL does not parse.
const OTLP_PASSWORD: &str = "SECRETOTLPPASSWORD4a6c8e";
/// The user's password, and the one a reset sets.
const PASSWORD: &str = "SECRETUSERPASSWORD-first";
const NEW_PASSWORD: &str = "SECRETUSERPASSWORD-second";
/// The customer Stripe (a mock) makes for the user.
const CUSTOMER: &str = "cus_secrets1";

/// Every secret of the deployment, named.
const SECRETS: [(&str, &str); 15] = [
    ("STRIPE_SECRET_KEY", STRIPE_SECRET_KEY),
    ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET),
    ("SLACK_WEBHOOK_URL's secret", SLACK_HOOK),
    ("ALERT_SLACK_WEBHOOK_URL's secret", ALERT_HOOK),
    ("SMTP_URL's password", SMTP_PASSWORD),
    ("REDIS_URL's password", REDIS_PASSWORD),
    ("a wrong REDIS_URL password", WRONG_REDIS_PASSWORD),
    ("DATABASE_URL's password", POSTGRES_PASSWORD),
    ("ADMIN_TOKEN", ADMIN_TOKEN),
    ("METRICS_TOKEN", METRICS_TOKEN),
    ("UNSUBSCRIBE_SECRET", UNSUBSCRIBE_SECRET),
    ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY),
    ("OTEL_EXPORTER_OTLP_ENDPOINT's password", OTLP_PASSWORD),
    ("the user's password", PASSWORD),
    ("the user's new password", NEW_PASSWORD),
];

/// Stripe and Slack as mocks: Stripe fails its first customer creation,
/// Slack refuses every post (both webhooks), so each failure is logged.
struct Providers {
    stripe: MockServer,
    slack: MockServer,
}

impl Providers {
    async fn start() -> Self {
        let stripe = MockServer::start().await;
        let failure = json!({ "error": { "message": "an error on Stripe's side" } });
        Mock::given(method("POST"))
            .and(path("/v1/customers"))
            .respond_with(ResponseTemplate::new(500).set_body_json(failure))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&stripe)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/customers"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "id": CUSTOMER, "object": "customer" })),
            )
            .mount(&stripe)
            .await;
        Mock::given(method("DELETE"))
            .and(path(format!("/v1/customers/{CUSTOMER}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "id": CUSTOMER, "deleted": true })),
            )
            .mount(&stripe)
            .await;
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("internal_error"))
            .mount(&slack)
            .await;
        Self { stripe, slack }
    }

    fn hook(&self, secret: &str) -> String {
        format!("{}/services/T0/B0/{secret}", self.slack.uri())
    }

    /// The requests `method` made to a path containing `part`.
    async fn received(&self, server: &MockServer, method: &str, part: &str) -> usize {
        let requests = server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|request| {
                request.method.as_str() == method && request.url.path().contains(part)
            })
            .count()
    }
}

/// The deployment: every secret set, the processes at the most verbose
/// level and exporting traces to `collector`.
fn options(providers: &Providers, collector: &Collector, worker_port: u16) -> Options {
    let (stripe, slack) = (providers.stripe.uri(), providers.hook(SLACK_HOOK));
    let (alerts, otlp) = (providers.hook(ALERT_HOOK), collector.endpoint.clone());
    Options {
        redis_password: Some(REDIS_PASSWORD.to_owned()),
        process_env: vec![
            ("RUST_LOG", "trace".to_owned()),
            // Export at once rather than every 5 s (read by the exporter).
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            // The processes' alert monitors check every second; the test's
            // own api instance hourly (below), so the failed alert
            // deliveries are the api process's, in its log.
            ("ALERT_CHECK_INTERVAL_SECS", "1".to_owned()),
        ],
        ..Options::default().configure(move |s| {
            let database = s.database.url.expose_secret().replacen(
                "://postgres@",
                &format!("://postgres:{POSTGRES_PASSWORD}@"),
                1,
            );
            assert!(database.contains(POSTGRES_PASSWORD), "{database}");
            s.database.url = database.into();
            let smtp = s.mail.smtp_url.as_ref().expect("the sink's URL");
            let smtp = smtp.expose_secret().replacen(
                "smtp://",
                &format!("smtp://{SMTP_USER}:{SMTP_PASSWORD}@"),
                1,
            );
            s.mail.smtp_url = Some(smtp.into());
            s.mail.unsubscribe_secret = Some(UNSUBSCRIBE_SECRET.into());
            s.mail.follow_up_delay = Duration::from_secs(1);
            s.providers.stripe_secret_key = Some(STRIPE_SECRET_KEY.into());
            s.providers.stripe_api_base = stripe;
            s.providers.stripe_webhook_secret = Some(STRIPE_WEBHOOK_SECRET.into());
            s.providers.slack_webhook_url = Some(slack.into());
            s.alerts.slack_webhook_url = Some(alerts.into());
            s.alerts.check_interval = Duration::from_secs(3600);
            s.alerts.no_consumer = Duration::from_secs(1);
            s.auth.admin_token = Some(ADMIN_TOKEN.into());
            s.server.metrics_token = Some(METRICS_TOKEN.into());
            s.storage.s3.secret_access_key = Some(AWS_SECRET_ACCESS_KEY.into());
            s.worker.http_port = Some(worker_port);
            s.telemetry.otlp_endpoint = Some(otlp);
            s.queues.slack_notify.attempts = 2;
            s.queues.slack_notify.backoff = Duration::from_millis(100);
            s.queues.slack_notify.rate_limit = None;
            s.queues.stripe_customer.backoff = Duration::from_millis(100);
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_of_any_flow_reaches_a_log_line_a_trace_or_an_answer() {
    let providers = Providers::start().await;
    let collector = Collector::start().await;
    let worker_port = testkit::free_port();
    let app = TestApp::spawn_with(options(&providers, &collector, worker_port)).await;
    app.smtp.require_login(SMTP_USER, SMTP_PASSWORD);
    let mut api = app.spawn_api_process(API).await;
    let mut flows = Flows::new(&app, &api.address);

    // No worker yet: the signup's jobs wait, an incident opens, and Slack
    // refuses the alert.
    flows.sign_up().await;
    wait::until("a refused alert in the api's log", DEADLINE, || async {
        api.output().contains("alert not sent").then_some(())
    })
    .await;
    let mut worker = app.spawn_worker_process_logging(worker_binary());
    let worker_address = format!("http://127.0.0.1:{worker_port}");
    wait::until("the worker to serve", DEADLINE, || async {
        let health = app
            .client
            .get(format!("{worker_address}/healthz"))
            .send()
            .await;
        health.is_ok().then_some(())
    })
    .await;
    flows.confirm_address().await;
    flows.unsubscribe().await;
    flows.log_in().await;
    flows.reset_password().await;
    flows.change_email().await;
    flows.upload_photo().await;
    flows.stripe_webhook().await;
    flows.read_the_slack_failure().await;
    flows.operate(&worker_address).await;
    flows.delete_account().await;
    let mut seen = flows.seen;

    // Redis refusing the password: an api instance (whose trace collector
    // is out of reach too), and an operator's command.
    let wrong = app
        .settings()
        .redis
        .url
        .expose_secret()
        .replace(REDIS_PASSWORD, WRONG_REDIS_PASSWORD);
    let collector_gone = format!(
        "http://otel:{OTLP_PASSWORD}@127.0.0.1:{}",
        testkit::free_port()
    );
    let mut refused = app
        .spawn_api_process_with(
            API,
            &[
                ("REDIS_URL", &wrong),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector_gone),
            ],
        )
        .await;
    let request = app.client.get(format!("{}/readyz", refused.address));
    let ready = seen.send("/readyz with Redis refusing", request).await;
    assert_eq!(ready.json["checks"]["redis"], "down", "{}", ready.json);
    wait::until("Redis's refusal in the api's log", DEADLINE, || async {
        refused
            .output()
            .contains("Redis did not answer")
            .then_some(())
    })
    .await;
    let counts = command(&app, &["counts"], &[("REDIS_URL", &wrong)], worker_binary()).await;
    seen.keep("`worker counts` with a wrong Redis password", counts);
    // A setting that does not parse, and Postgres out of reach: both stop
    // the api at start, saying why; a collector URL that does not parse
    // turns traces off, saying why.
    let invalid = command(&app, &["migrate"], &[("PORT", "eighty")], API.into()).await;
    assert!(invalid.contains("invalid configuration"), "{invalid}");
    seen.keep("the api refusing its settings", invalid);
    let unreachable = format!(
        "postgres://postgres:{POSTGRES_PASSWORD}@127.0.0.1:{}/acme",
        testkit::free_port()
    );
    let malformed = format!("http://otel:{OTLP_PASSWORD}@[::1/");
    let stopped = command(
        &app,
        &["migrate"],
        &[
            ("DATABASE_URL", &unreachable),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &malformed),
        ],
        API.into(),
    )
    .await;
    assert!(stopped.contains("api stopped"), "{stopped}");
    assert!(stopped.contains("traces are off"), "{stopped}");
    seen.keep("the api without Postgres", stopped);

    // Stopped, they have written and exported everything.
    for process in [&mut api, &mut refused] {
        process.terminate();
        process.wait(DEADLINE).await;
    }
    worker.terminate();
    worker.wait(DEADLINE).await;
    let (api_log, worker_log) = (api.output(), worker.output());

    // What makes the search mean something: each failure happened and was
    // logged, each secret was used.
    for (logged, by) in [
        ("alert not sent", &api_log),
        ("unsubscribed from product email", &api_log),
        ("Slack answered 500", &worker_log),
        ("Stripe answered 500", &worker_log),
    ] {
        assert!(by.contains(logged), "nothing logged {logged:?}");
    }
    assert!(
        app.smtp.logins() > 0,
        "the worker sent mail with SMTP_URL's login"
    );
    for (server, method, part) in [
        (&providers.slack, "POST", SLACK_HOOK),
        (&providers.slack, "POST", ALERT_HOOK),
        (&providers.stripe, "POST", "/v1/customers"),
        (&providers.stripe, "DELETE", CUSTOMER),
    ] {
        let count = providers.received(server, method, part).await;
        assert!(count > 0, "no {method} to {part}");
    }

    seen.keep("the api's output", api_log);
    seen.keep("the worker's output", worker_log);
    seen.keep("the api's output with Redis refusing", refused.output());
    let exports = collector.exports();
    assert!(!exports.is_empty(), "traces were exported");
    for export in exports {
        seen.keep("an OTLP trace export", export);
    }
    let findings = seen.findings(&SECRETS);
    assert!(
        findings.is_empty(),
        "{} secrets or tokens leaked (searched {} texts):\n\n{}",
        findings.len(),
        seen.texts(),
        findings.join("\n\n")
    );
}

/// Runs `bin` with `args`, this app's settings and `vars`, and returns
/// what it printed, stdout and stderr.
async fn command(
    app: &TestApp,
    args: &[&str],
    vars: &[(&str, &str)],
    bin: std::path::PathBuf,
) -> String {
    let run = tokio::process::Command::new(bin)
        .args(args)
        .envs(app.process_env())
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("the command ends")
        .expect("the command runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
