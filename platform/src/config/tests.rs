//! The settings as the environment gives them.

use secrecy::ExposeSecret;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::*;
use catalogue::{QueueName, RateLimit, cores};

pub(super) fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::from_lookup(|key| vars.get(key).cloned())
}

#[test]
fn defaults_apply_when_only_the_database_is_given() {
    let s = settings(&[("DATABASE_URL", "postgres://localhost/app")]).expect("valid");
    assert_eq!(s.redis.url.expose_secret(), "redis://127.0.0.1:6379");
    assert_eq!((s.server.host.as_str(), s.server.port), ("0.0.0.0", 3000));
    assert_eq!(s.redis.queue_prefix, "bull");
    assert_eq!(s.worker.shutdown_timeout, Duration::from_secs(30));
    assert!(s.mail.smtp_url.is_none());
    assert_eq!(s.telemetry.log_format, LogFormat::Json);
}

#[test]
fn abuse_limits_have_their_documented_defaults() {
    let s = settings(&[("DATABASE_URL", "postgres://localhost/app")]).expect("valid");
    assert_eq!(s.server.http.header_timeout, Duration::from_secs(10));
    assert_eq!(s.server.http.idle_timeout, Duration::from_secs(75));
    assert_eq!(
        (s.server.http.body_min_rate, s.server.http.body_window),
        (1024, Duration::from_secs(10))
    );
    assert_eq!(s.server.http.max_connections, 1024);
    assert_eq!(s.server.http.first_byte_timeout, Duration::from_secs(10));
    assert_eq!(s.server.http.max_connections_per_client, 64);
    assert_eq!(s.auth.argon2.threads, cores());
    assert_eq!(s.auth.argon2.max_queue, 16 * cores());
    assert_eq!(
        (s.auth.argon2.memory_kib, s.auth.argon2.iterations),
        (19 * 1024, 2),
        "production's hashing cost"
    );
    assert!(!s.auth.argon2.is_lowered());
    assert_eq!(
        s.auth.login_failures,
        LoginFailureLimit {
            max: 10,
            window: Duration::from_secs(900)
        }
    );
    assert_eq!(s.links.password_reset_ttl, Duration::from_secs(1800));
    assert_eq!(s.links.email_verification_ttl, Duration::from_secs(86_400));
    assert_eq!(s.photos.uploads.per_hour, 20);
    assert_eq!(s.photos.uploads.quota_bytes, 200 * 1024 * 1024);
    assert_eq!(s.photos.uploads.max_concurrent, 32);
    assert_eq!(s.photos.uploads.max_concurrent_per_account, 2);
}

/// Settings are handed whole to code that may log them: their `Debug`
/// shows that a secret is set, never what it is.
#[test]
fn the_settings_debug_form_shows_no_secret() {
    let secrets = [
        ("DATABASE_URL", "postgres://app:pg-secret-1@db/app"),
        ("REDIS_URL", "redis://:redis-secret-2@redis:6379"),
        ("REDIS_CLUSTER_NODES", "redis://:cluster-secret-3@a:6379"),
        ("METRICS_TOKEN", "metrics-secret-4"),
        ("ADMIN_TOKEN", "admin-secret-5-0123456789abcdef0123"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret-6"),
        ("SMTP_URL", "smtp://mailer:smtp-secret-7@mail:587"),
        ("UNSUBSCRIBE_SECRET", "unsubscribe-secret-8-0123456789ab"),
        ("STRIPE_SECRET_KEY", "sk_live_stripe-secret-9"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_stripe-secret-10"),
        ("SLACK_WEBHOOK_URL", "https://h.test/slack-secret-11"),
        ("ALERT_SLACK_WEBHOOK_URL", "https://h.test/alert-secret-12"),
    ];
    let shown = format!("{:?}", settings(&secrets).expect("valid"));
    assert!(shown.contains("REDACTED"), "{shown}");
    for (key, value) in secrets {
        let secret = value.split(['@', '/']).find(|part| part.contains("secret"));
        let secret = secret.expect("each value names its secret");
        assert!(!shown.contains(secret), "{key} shows in {shown}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let error = settings(&[("PORT", "eighty"), ("SHUTDOWN_TIMEOUT_SECS", "-1")])
        .expect_err("three problems");
    let message = error.to_string();
    assert!(message.contains("DATABASE_URL is required"), "{message}");
    assert!(message.contains("PORT=\"eighty\" is invalid"), "{message}");
    assert!(message.contains("SHUTDOWN_TIMEOUT_SECS"), "{message}");
}

#[test]
fn per_queue_settings_are_read_from_the_queue_name() {
    let s = settings(&[
        ("DATABASE_URL", "postgres://localhost/app"),
        ("QUEUE_WELCOME_EMAIL_CONCURRENCY", "3"),
        ("QUEUE_WELCOME_EMAIL_LOCK_DURATION_MS", "2000"),
        ("QUEUE_WELCOME_EMAIL_ATTEMPTS", "2"),
        ("QUEUE_WELCOME_EMAIL_RATE_MAX", "1"),
    ])
    .expect("valid");
    let queue = s.queue(QueueName::WelcomeEmail);
    let defaults = QueueName::WelcomeEmail.default_settings();
    assert_eq!(queue.concurrency, 3);
    assert_eq!(queue.attempts, 2);
    assert_eq!(queue.lock_duration, Duration::from_secs(2));
    assert_eq!(
        queue.rate_limit,
        Some(RateLimit {
            max: 1,
            per: Duration::from_secs(1)
        })
    );
    assert_eq!(queue.stalled_interval, defaults.stalled_interval);
    assert_eq!(queue.keep_failed, defaults.keep_failed);
}

#[test]
fn public_url_loses_its_trailing_slash() {
    let s = settings(&[
        ("DATABASE_URL", "postgres://localhost/app"),
        ("PUBLIC_URL", "https://app.example.com/"),
    ])
    .expect("valid");
    assert_eq!(s.links.public_url, "https://app.example.com");
}

/// `.env.example` promises that any line can be uncommented as it is:
/// for `scripts/dev`, which sources it with bash, and for the binaries,
/// which read it with dotenvy.
#[test]
fn every_setting_in_env_example_can_be_uncommented_as_it_is() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example"))
        .expect("the example file");
    let uncommented: String = example
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter(|line| {
            line.split_once('=').is_some_and(|(key, _)| {
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(uncommented.lines().count() > 40, "found the settings");
    let dir = std::env::temp_dir().join(format!("env-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(".env");
    std::fs::write(&path, &uncommented).expect("written");

    let sourced = std::process::Command::new("bash")
        .arg("-c")
        .arg("set -euo pipefail; set -a; source \"$1\"; printf %s \"$MAIL_FROM\"")
        .arg("bash")
        .arg(&path)
        .output()
        .expect("bash runs");
    assert!(
        sourced.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&sourced.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&sourced.stdout),
        "Acme <hello@acme.test>"
    );

    let vars: HashMap<String, String> = dotenvy::from_path_iter(&path)
        .expect("dotenvy opens it")
        .collect::<Result<_, _>>()
        .expect("dotenvy parses every line");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(vars["MAIL_FROM"], "Acme <hello@acme.test>");
    // The one required setting has no default to show: the operator's own.
    let given = |key: &str| match vars.get(key) {
        Some(value) if value.is_empty() && key == "DATABASE_URL" => {
            Some("postgres://localhost/app".to_owned())
        }
        value => value.cloned(),
    };
    Settings::from_lookup(given).expect("every example value is valid");
}

/// Child processes (a test's `worker` binary) are started with
/// `to_env()`: it must read back as the same settings, changed ones included.
#[test]
fn settings_written_as_variables_read_back_as_the_same_settings() {
    let mut original = settings(&[("DATABASE_URL", "postgres://localhost/app")]).expect("valid");
    original.queues.welcome_email.attempts = 3;
    original.queues.slack_notify.batch = None;
    original.photos.uploads.per_hour = 2;
    original.redis.cluster_nodes = Some("redis://a:7000,redis://b:7001".into());
    original.photos.uploads.max_concurrent_per_account = 5;
    original.server.cors_allowed_origins = CorsOrigins::List(vec!["https://a.io".into()]);
    original.maintenance.interval = None;
    original.worker.http_port = Some(4001);
    original.auth.admin_token = Some("an operator's token of 32 characters or more".into());
    original.alerts.email_to = vec!["oncall@example.com".into(), "ops@example.com".into()];
    original.alerts.failed_ratio = 0.25;
    let vars: HashMap<String, String> = original.to_env().into_iter().collect();

    let read = Settings::from_lookup(|key| vars.get(key).cloned()).expect("valid");

    assert_eq!(read.to_env(), original.to_env());
    assert_eq!(read.queues, original.queues);
    assert_eq!(read.photos, original.photos);
    assert_eq!(
        read.server.cors_allowed_origins,
        original.server.cors_allowed_origins
    );
    assert_eq!(read.maintenance, original.maintenance);
    assert_eq!(read.worker, original.worker);
}

#[test]
fn an_unsubscribe_secret_shorter_than_32_characters_is_refused() {
    let error = settings(&[
        ("DATABASE_URL", "postgres://localhost/app"),
        ("UNSUBSCRIBE_SECRET", "too-short"),
    ])
    .expect_err("a short secret is a configuration error");
    assert!(
        error
            .to_string()
            .contains("UNSUBSCRIBE_SECRET must be at least 32")
    );
    let s = settings(&[
        ("DATABASE_URL", "postgres://localhost/app"),
        ("UNSUBSCRIBE_SECRET", &"x".repeat(32)),
    ])
    .expect("32 characters are enough");
    assert!(s.mail.unsubscribe_secret.is_some());
    assert_eq!(s.mail.follow_up_delay, Duration::from_secs(86_400));
    assert_eq!(
        s.providers.stripe_webhook_tolerance,
        Duration::from_secs(300)
    );
}

#[test]
fn an_admin_token_shorter_than_32_characters_refuses_to_start() {
    let error = settings(&[
        ("DATABASE_URL", "postgres://localhost/app"),
        ("ADMIN_TOKEN", "hunter2hunter2"),
    ])
    .expect_err("a guessable operator token is a configuration error");
    assert!(
        error
            .to_string()
            .contains("ADMIN_TOKEN must be at least 32"),
        "{error}"
    );
    let s = settings(&[
        ("DATABASE_URL", "postgres://localhost/app"),
        ("ADMIN_TOKEN", &"k".repeat(32)),
    ])
    .expect("32 characters are enough");
    assert!(s.auth.admin_token.is_some());
}

/// Every variable the settings read, as their declarations name them: the
/// write-back of settings read from an environment with only what is
/// required. A setting is declared once, so this is also what they ask for.
fn variables_read() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let s = Settings::from_lookup(|key| {
        asked.borrow_mut().insert(key.to_owned());
        (key == "DATABASE_URL").then(|| "postgres://localhost/app".to_owned())
    })
    .expect("valid");
    let written: BTreeSet<String> = s.to_env().into_iter().map(|(key, _)| key).collect();
    assert_eq!(
        asked.into_inner(),
        written,
        "read but not written back, or the reverse"
    );
    written
}

/// Variables the docs name that the settings do not read: the tracing
/// filter (`platform::telemetry`), those of `docker-compose.yml` and the
/// ports of `scripts/dev`.
const READ_ELSEWHERE: &[&str] = &[
    "RUST_LOG",
    "POSTGRES_PASSWORD",
    "API_REPLICAS",
    "WORKER_REPLICAS",
    "REDIS_MAXMEMORY",
    "DEV_POSTGRES_PORT",
    "DEV_REDIS_PORT",
];

/// How `key` is written in the docs, which show one pattern for every
/// queue's variables: `.env.example` a real queue's (welcome-email, with
/// its defaults), `docs/configuration.md` `QUEUE_<NAME>_FIELD`.
fn as_documented(key: &str, queue: &str) -> String {
    QueueName::ALL
        .iter()
        .find_map(|name| key.strip_prefix(&name.env_prefix()))
        .map_or_else(|| key.to_owned(), |field| format!("{queue}{field}"))
}

fn read_doc(path: &str) -> String {
    let path = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '_' | '<' | '>'))
}

/// The variables `.env.example` sets or shows commented out (`# NAME=`).
fn env_example_names() -> BTreeSet<String> {
    read_doc(".env.example")
        .lines()
        .filter_map(|line| line.strip_prefix("# ").unwrap_or(line).split_once('='))
        .map(|(name, _)| name.to_owned())
        .filter(|name| is_variable_name(name))
        .collect()
}

/// The variables `docs/configuration.md` names, in backquotes.
fn configuration_doc_names() -> BTreeSet<String> {
    read_doc("docs/configuration.md")
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| is_variable_name(name))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_variable_read_is_in_env_example_and_in_the_configuration_doc() {
    let example = env_example_names();
    let doc = configuration_doc_names();
    let one_queue = QueueName::WelcomeEmail.env_prefix();
    let missing: Vec<String> = variables_read()
        .iter()
        .flat_map(|key| {
            let in_example = as_documented(key, &one_queue);
            let in_doc = as_documented(key, "QUEUE_<NAME>_");
            let mut missing = Vec::new();
            if !example.contains(&in_example) {
                missing.push(format!("{in_example} in .env.example"));
            }
            if !doc.contains(&in_doc) {
                missing.push(format!("{in_doc} in docs/configuration.md"));
            }
            missing
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(missing.is_empty(), "not documented: {missing:#?}");
}

#[test]
fn every_variable_the_docs_name_is_one_the_settings_read() {
    let read = variables_read();
    let known = |name: &String, queue: &str| {
        READ_ELSEWHERE.contains(&name.as_str())
            || read.iter().any(|key| as_documented(key, queue) == *name)
    };
    let one_queue = QueueName::WelcomeEmail.env_prefix();
    let unknown: Vec<String> = (env_example_names().into_iter())
        .filter(|name| !known(name, &one_queue))
        .map(|name| format!("{name} in .env.example"))
        .chain(
            configuration_doc_names()
                .into_iter()
                .filter(|name| !known(name, "QUEUE_<NAME>_"))
                .map(|name| format!("{name} in docs/configuration.md")),
        )
        .collect();
    assert!(unknown.is_empty(), "no setting reads: {unknown:#?}");
}
