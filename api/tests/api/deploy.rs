//! The deployment files as shipped: `docker-compose.yml` checked by the
//! Compose validator (`docker-compose config`, which needs no engine, from
//! `scripts/services.sh`) and read back resolved; the image's and each
//! service's health check run against real `api` and `worker` processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use platform::config::Settings;
use serde_json::Value;
use testkit::TestApp;

const API: &str = env!("CARGO_BIN_EXE_api");

/// The repository's root, where the deployment files are.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("api/ is in the repository")
        .to_owned()
}

/// A folder of the test's own, removed when it ends.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `docker-compose config` on the shipped file with `dotenv` as its `.env`
/// (`None`: no `.env`), from a clean environment: the validator's output
/// on success, its error text on failure.
fn compose_config(dotenv: Option<&str>) -> Result<String, String> {
    let folder =
        Folder(std::env::temp_dir().join(format!("acme-compose-{}", uuid::Uuid::now_v7())));
    std::fs::create_dir_all(&folder.0).expect("the temp folder is writable");
    std::fs::copy(
        root().join("docker-compose.yml"),
        folder.0.join("docker-compose.yml"),
    )
    .expect("docker-compose.yml is readable");
    if let Some(dotenv) = dotenv {
        std::fs::write(folder.0.join(".env"), dotenv).expect("the temp folder is writable");
    }
    let output = Command::new("docker-compose")
        .arg("config")
        .current_dir(&folder.0)
        // Only the file and `.env` decide: not a developer's shell.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect(
            "docker-compose (the Compose validator) runs: scripts/test installs it \
             (scripts/services.sh, ensure_test_packages)",
        );
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if output.status.success() {
        Ok(text(&output.stdout))
    } else {
        Err(text(&output.stderr) + &text(&output.stdout))
    }
}

/// The resolved YAML as JSON, converted by the validator's own Python
/// (docker-compose is a Python program that depends on PyYAML).
fn as_json(yaml: &str) -> Value {
    let validator = which("docker-compose");
    let shebang = std::fs::read_to_string(&validator).expect("docker-compose is a script");
    let python = shebang
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("#!"))
        .map(str::trim)
        .expect("docker-compose starts with its interpreter");
    let mut child = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the validator's Python runs");
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin is piped"),
        yaml.as_bytes(),
    )
    .expect("the YAML is handed over");
    let output = child.wait_with_output().expect("the conversion ends");
    assert!(output.status.success(), "the resolved YAML converts");
    serde_json::from_slice(&output.stdout).expect("JSON")
}

fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{program} is on PATH (scripts/test installs it)"))
}

/// A `.env` an operator would write: the two required values, a setting
/// only `.env` carries, and lines meant for `scripts/dev` that compose
/// must override.
const OPERATOR_DOTENV: &str = "\
PUBLIC_URL=https://acme.example.com
POSTGRES_PASSWORD=Opaque42secret
SMTP_URL=smtp://mail.example.com:587
DATABASE_URL=postgres://postgres@127.0.0.1:54320/app
HOST=127.0.0.1
PORT=8080
WORKER_HTTP_PORT=0
SHUTDOWN_TIMEOUT_SECS=600
";

/// Each service of the resolved file, by name.
fn services(config: &Value) -> &serde_json::Map<String, Value> {
    config["services"].as_object().expect("services")
}

/// A service's environment as strings.
fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_object()
        .expect("an environment")
        .iter()
        .map(|(k, v)| {
            let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            (k.clone(), value)
        })
        .collect()
}

/// Compose's durations as the resolved file writes them (`45s`, `1m30s`).
fn duration(text: &str) -> Duration {
    let mut total = 0_u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number
            .parse()
            .unwrap_or_else(|_| panic!("a duration: {text}"));
        number.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => panic!("a duration in h, m and s: {text}"),
        };
    }
    assert!(number.is_empty(), "a duration ends with its unit: {text}");
    Duration::from_secs(total)
}

#[test]
fn every_setting_in_dotenv_reaches_both_the_api_and_the_worker() {
    // Every variable the binaries read, each with a value of its own.
    let everything = Settings::from_lookup(|key| {
        (key == "DATABASE_URL").then(|| "postgres://localhost/app".to_owned())
    })
    .expect("valid")
    .to_env();
    let dotenv: String = everything
        .iter()
        .map(|(key, _)| format!("{key}=from-dotenv-{key}\n"))
        .chain(["POSTGRES_PASSWORD=Opaque42secret\n".to_owned()])
        .collect();
    let config = as_json(&compose_config(Some(&dotenv)).expect("validates"));
    // What the stack itself decides: where its services are, the ports
    // `lb` and Prometheus use, its folders, the worker's drain.
    let set_by_compose = [
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_CLUSTER_NODES",
        "HOST",
        "PORT",
        "WORKER_HTTP_PORT",
        "CLIENT_IP_HEADER",
        "MAILBOX_DIR",
        "LOG_FORMAT",
    ];
    for role in ["api", "worker"] {
        let env = environment(&services(&config)[role]);
        for (key, _) in &everything {
            let got = env.get(key).map(String::as_str);
            // The worker's drain, set beside its grace period (the api has
            // none to set: its drain is a constant).
            let drain = role == "worker" && key == "SHUTDOWN_TIMEOUT_SECS";
            if drain || set_by_compose.contains(&key.as_str()) {
                assert!(
                    got.is_some_and(|value| !value.starts_with("from-dotenv")),
                    "{role}: compose sets {key}, got {got:?}"
                );
            } else {
                assert_eq!(
                    got,
                    Some(format!("from-dotenv-{key}").as_str()),
                    "{role}: {key} from .env"
                );
            }
        }
    }
}

#[test]
fn compose_refuses_to_start_without_a_public_url_a_database_password_or_a_dotenv() {
    let refused = |dotenv, why| {
        compose_config(dotenv)
            .err()
            .unwrap_or_else(|| panic!("compose started {why}"))
    };
    let no_public_url = refused(
        Some("POSTGRES_PASSWORD=Opaque42secret\n"),
        "with a default PUBLIC_URL",
    );
    assert!(
        no_public_url.contains("set PUBLIC_URL in .env"),
        "{no_public_url}"
    );
    let no_password = refused(
        Some("PUBLIC_URL=https://acme.example.com\n"),
        "with a default database password",
    );
    assert!(
        no_password.contains("set POSTGRES_PASSWORD in .env"),
        "{no_password}"
    );
    refused(None, "without .env");
    // Both there: it validates, and the operator's values are the ones used.
    let config = as_json(&compose_config(Some(OPERATOR_DOTENV)).expect("validates"));
    let services = services(&config);
    for role in ["api", "worker"] {
        let env = environment(&services[role]);
        assert_eq!(env["PUBLIC_URL"], "https://acme.example.com", "{role}");
        assert_eq!(
            env["DATABASE_URL"], "postgres://app:Opaque42secret@postgres:5432/app",
            "{role}: compose's address with the operator's password, not .env's dev URL"
        );
        assert_eq!(env["SMTP_URL"], "smtp://mail.example.com:587", "{role}");
        assert_eq!(
            env["HOST"], "0.0.0.0",
            "{role}: reachable from lb and Prometheus"
        );
    }
    assert_eq!(
        environment(&services["postgres"])["POSTGRES_PASSWORD"],
        "Opaque42secret"
    );
}

#[test]
fn the_stack_waits_for_ready_dependencies_restarts_and_outlasts_each_drain() {
    let config = as_json(&compose_config(Some(OPERATOR_DOTENV)).expect("validates"));
    let services = services(&config);
    for (name, service) in services {
        assert!(
            matches!(
                service["restart"].as_str(),
                Some("unless-stopped" | "always")
            ),
            "{name} restarts after a failure: {}",
            service["restart"]
        );
    }
    // Postgres: ready over TCP, which its first-time set-up does not open.
    let postgres = &services["postgres"]["healthcheck"];
    let test = postgres["test"].to_string();
    assert!(
        test.contains("pg_isready") && test.contains("-h 127.0.0.1"),
        "{test}"
    );
    assert!(postgres["start_period"].is_string(), "{postgres}");
    // Each role is probed by its own binary, on its own port.
    for role in ["api", "worker"] {
        let check = &services[role]["healthcheck"]["test"];
        assert_eq!(
            check,
            &serde_json::json!(["CMD", role, "healthcheck"]),
            "{role}"
        );
    }
    for (dependency, of) in [
        ("postgres", "api"),
        ("redis", "api"),
        ("api", "worker"),
        ("postgres", "worker"),
    ] {
        assert_eq!(
            services[of]["depends_on"][dependency]["condition"], "service_healthy",
            "{of} waits for {dependency}"
        );
    }
    // The worker's port: this host's loopback at most.
    // (docker-compose 1.29 prints `127.0.0.1:3001-3009:3001/tcp`; Compose
    // v2 the long form with `host_ip`.)
    for port in services["worker"]["ports"].as_array().into_iter().flatten() {
        let loopback = match port.as_str() {
            Some(short) => short.starts_with("127.0.0.1:"),
            None => port["host_ip"] == "127.0.0.1",
        };
        assert!(
            loopback,
            "the worker's port is published beyond loopback: {port}"
        );
    }
    // The grace periods outlast the drains as configured in the stack.
    let api_grace = duration(services["api"]["stop_grace_period"].as_str().expect("set"));
    assert!(
        api_grace > platform::server::DRAIN_TIMEOUT,
        "api: {api_grace:?} against a drain of {:?}",
        platform::server::DRAIN_TIMEOUT
    );
    let worker_env = environment(&services["worker"]);
    let worker = Settings::from_lookup(|key| worker_env.get(key).cloned())
        .expect("the worker's resolved environment is valid");
    let worker_grace = duration(
        services["worker"]["stop_grace_period"]
            .as_str()
            .expect("set"),
    );
    assert!(
        worker_grace > worker.worker.shutdown_timeout,
        "worker: {worker_grace:?} against SHUTDOWN_TIMEOUT_SECS {:?}",
        worker.worker.shutdown_timeout
    );
    assert!(
        worker.worker.http_port.is_some(),
        "the worker serves /healthz"
    );
}

/// The command of the image's `HEALTHCHECK` (after `CMD`), lines joined.
fn dockerfile_healthcheck() -> String {
    let dockerfile =
        std::fs::read_to_string(root().join("Dockerfile")).expect("the Dockerfile is readable");
    let joined = dockerfile.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|line| line.starts_with("HEALTHCHECK"))
        .expect("the image has a HEALTHCHECK");
    let (_, command) = line.split_once(" CMD ").expect("HEALTHCHECK … CMD command");
    command.trim().to_owned()
}

/// Runs `command` in a shell as the image does, with the binaries on PATH
/// and `env` (the container's environment).
fn run_in_container(command: &str, env: &[(String, String)]) -> Output {
    let binaries = Path::new(API).parent().expect("the binaries' folder");
    let path = std::env::join_paths(std::iter::once(binaries.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("a PATH");
    Command::new("sh")
        .args(["-c", command])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PATH", path)
        .output()
        .expect("sh runs")
}

/// `base` with `changes` applied (later ones win, as in a process).
fn with(base: &[(String, String)], changes: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = base.iter().cloned().collect();
    for (key, value) in changes {
        env.insert((*key).to_owned(), value.clone());
    }
    env.into_iter().collect()
}

#[tokio::test]
async fn each_role_s_health_check_asks_its_own_port_and_the_image_s_is_right_for_both() {
    let app = TestApp::spawn_without_worker().await;
    let api = app.spawn_api_process(API).await;
    let api_port = api.address.rsplit(':').next().expect("a port").to_owned();
    let worker_port = testkit::free_port().to_string();
    let base = app.process_env();
    let worker_env = with(&base, &[("WORKER_HTTP_PORT", worker_port.clone())]);
    let mut worker = tokio::process::Command::new(crate::worker_binary())
        .envs(worker_env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the worker runs");
    let nobody = testkit::free_port().to_string();
    let healthy = |out: &Output| out.status.success();

    // The api's container: PORT is the api's; the worker's port is empty.
    let api_container = with(
        &base,
        &[
            ("PORT", api_port.clone()),
            ("WORKER_HTTP_PORT", nobody.clone()),
        ],
    );
    assert!(healthy(&run_in_container(
        "api healthcheck",
        &api_container
    )));
    // The worker's container: WORKER_HTTP_PORT is the worker's; PORT empty.
    let worker_container = with(
        &base,
        &[
            ("PORT", nobody.clone()),
            ("WORKER_HTTP_PORT", worker_port.clone()),
        ],
    );
    testkit::wait::until(
        "the worker to serve /healthz",
        Duration::from_secs(30),
        || async {
            healthy(&run_in_container("worker healthcheck", &worker_container)).then_some(())
        },
    )
    .await;
    // Each asks its own port only: not the other role's.
    assert!(!healthy(&run_in_container(
        "api healthcheck",
        &worker_container
    )));
    assert!(!healthy(&run_in_container(
        "worker healthcheck",
        &api_container
    )));
    let off = with(&worker_container, &[("WORKER_HTTP_PORT", "0".into())]);
    let told = run_in_container("worker healthcheck", &off);
    assert!(!healthy(&told));
    assert!(String::from_utf8_lossy(&told.stderr).contains("WORKER_HTTP_PORT is 0"));

    // The image's one check: healthy in either container, not in one
    // whose process is not serving.
    let image = dockerfile_healthcheck();
    assert!(
        healthy(&run_in_container(&image, &api_container)),
        "{image}"
    );
    assert!(
        healthy(&run_in_container(&image, &worker_container)),
        "{image}"
    );
    let neither = with(
        &base,
        &[
            ("PORT", nobody.clone()),
            ("WORKER_HTTP_PORT", nobody.clone()),
        ],
    );
    assert!(!healthy(&run_in_container(&image, &neither)), "{image}");

    worker.kill().await.expect("the worker stops");
    assert!(
        !healthy(&run_in_container(&image, &worker_container)),
        "a stopped worker"
    );
}

#[tokio::test]
async fn alert_emails_that_would_only_reach_the_mailbox_are_announced_at_start() {
    let app = TestApp::spawn_without_worker().await;
    let warning = "ALERT_EMAIL_TO is set but SMTP_URL is not";
    let warned = |api: &testkit::ApiProcess| {
        api.log_lines().iter().any(|line| {
            line["level"] == "WARN"
                && line["message"]
                    .as_str()
                    .is_some_and(|message| message.contains(warning))
        })
    };
    let unseen = app
        .spawn_api_process_with(
            API,
            &[("ALERT_EMAIL_TO", "oncall@example.com"), ("SMTP_URL", "")],
        )
        .await;
    assert!(warned(&unseen), "{}", unseen.output());
    // With SMTP the emails are sent: nothing to say.
    let sent = app
        .spawn_api_process_with(API, &[("ALERT_EMAIL_TO", "oncall@example.com")])
        .await;
    assert!(!warned(&sent), "{}", sent.output());
}
