//! The settings as the environment gives them.

use secrecy::ExposeSecret;

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use catalogue::{QueueName, RateLimit, cores};

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
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
        s.auth.login_failures,
        LoginFailureLimit {
            max: 10,
            window: Duration::from_secs(900)
        }
    );
    assert_eq!(s.auth.password_reset_ttl, Duration::from_secs(1800));
    assert_eq!(s.auth.email_verification_ttl, Duration::from_secs(86_400));
    assert_eq!(s.photos.uploads.per_hour, 20);
    assert_eq!(s.photos.uploads.quota_bytes, 200 * 1024 * 1024);
    assert_eq!(s.photos.uploads.max_concurrent, 32);
    assert_eq!(s.photos.uploads.max_concurrent_per_account, 2);
}

#[test]
fn behind_a_proxy_connections_are_not_capped_per_address_unless_asked() {
    let database = ("DATABASE_URL", "postgres://localhost/app");
    let proxy = ("CLIENT_IP_HEADER", "X-Forwarded-For");
    let behind = settings(&[database, proxy]).expect("valid");
    assert_eq!(behind.server.http.max_connections_per_client, 0);
    let asked =
        settings(&[database, proxy, ("HTTP_MAX_CONNECTIONS_PER_CLIENT", "500")]).expect("valid");
    assert_eq!(asked.server.http.max_connections_per_client, 500);
}

#[test]
fn on_a_cluster_each_queue_name_is_its_own_hash_tag() {
    let database = ("DATABASE_URL", "postgres://localhost/app");
    let single = settings(&[database]).expect("valid");
    assert!(!single.redis.is_cluster());
    assert_eq!(
        single.redis.bullmq_name(QueueName::WelcomeEmail),
        "welcome-email"
    );

    let nodes = (
        "REDIS_CLUSTER_NODES",
        "redis://10.0.0.1:6379, redis://:secret@10.0.0.2:6379,",
    );
    let cluster = settings(&[database, nodes]).expect("valid");
    assert!(cluster.redis.is_cluster());
    assert_eq!(
        cluster.redis.cluster_node_urls(),
        ["redis://10.0.0.1:6379", "redis://:secret@10.0.0.2:6379"]
    );
    assert_eq!(
        cluster.redis.bullmq_name(QueueName::WelcomeEmail),
        "{welcome-email}"
    );
    assert_eq!(
        cluster.redis.bullmq_name(QueueName::ImageResize),
        "{image-resize}"
    );
}

#[test]
fn a_cluster_node_that_is_not_a_redis_url_is_refused_without_showing_its_password() {
    let error = settings(&[
        ("DATABASE_URL", "postgres://localhost/app"),
        ("REDIS_CLUSTER_NODES", "redis://a:6379,user:hunter2@b:6379"),
    ])
    .expect_err("a node without a scheme");
    let message = error.to_string();
    assert!(message.contains("REDIS_CLUSTER_NODES"), "{message}");
    assert!(message.contains("\"b:6379\""), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
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
    assert_eq!(s.server.public_url, "https://app.example.com");
}

#[test]
fn cors_origins_are_a_list_of_exact_origins_or_a_star() {
    let origins = |raw: &str| raw.parse::<CorsOrigins>();
    assert_eq!(origins(""), Ok(CorsOrigins::SameOrigin));
    assert_eq!(origins(" * "), Ok(CorsOrigins::Any));
    assert_eq!(
        origins("https://App.example.com/, http://localhost:5173"),
        Ok(CorsOrigins::List(vec![
            "https://app.example.com".into(),
            "http://localhost:5173".into()
        ]))
    );
    for wrong in [
        "app.example.com",
        "https://app.example.com/path",
        "ftp://x",
        "*, https://a.io",
    ] {
        assert!(origins(wrong).is_err(), "{wrong} was accepted");
    }
}

#[test]
fn a_malformed_cors_origin_is_reported_at_start() {
    let error = settings(&[
        ("DATABASE_URL", "postgres://localhost/app"),
        ("CORS_ALLOWED_ORIGINS", "https://ok.io, not-an-origin"),
    ])
    .expect_err("refused");
    assert!(
        error.to_string().contains("CORS_ALLOWED_ORIGINS"),
        "{error}"
    );
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
    Settings::from_lookup(|key| vars.get(key).cloned()).expect("every example value is valid");
}

/// Child processes (a test's `worker` binary) are started with
/// `to_env()`: it must read back as the same settings, changed ones included.
#[test]
fn settings_written_as_variables_read_back_as_the_same_settings() {
    let mut original = settings(&[("DATABASE_URL", "postgres://localhost/app")]).expect("valid");
    original.queues.welcome_email.attempts = 3;
    original.queues.slack_notify.rate_limit = None;
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

/// A setting is read in `read.rs`, written back in `write.rs` and
/// documented in `.env.example`: forgetting one of the three fails here.
#[test]
fn every_variable_read_is_written_back_and_documented() {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let s = Settings::from_lookup(|key| {
        asked.borrow_mut().insert(key.to_owned());
        (key == "DATABASE_URL").then(|| "postgres://localhost/app".to_owned())
    })
    .expect("valid");
    let written: std::collections::BTreeSet<String> =
        s.to_env().into_iter().map(|(key, _)| key).collect();
    assert_eq!(
        asked.into_inner(),
        written,
        "read but not written, or the reverse"
    );

    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example"))
        .expect("the example file");
    // The example documents one queue's variables; the others follow its pattern.
    let one_queue = QueueName::WelcomeEmail.env_prefix();
    for key in written.iter().filter(|key| {
        !key.starts_with("QUEUE_") || key.starts_with(&one_queue) || *key == "QUEUE_PREFIX"
    }) {
        let documented = example.lines().any(|line| {
            line.trim_start_matches("# ")
                .strip_prefix(key.as_str())
                .is_some_and(|rest| rest.starts_with('='))
        });
        assert!(documented, "{key} is not documented in .env.example");
    }
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
