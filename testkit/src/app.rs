//! The system under test, started like production but on random ports.

use std::collections::HashMap;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use shared::config::Settings;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::postgres::fresh_database;
use crate::redis::RedisServer;
use crate::scratch::ScratchDir;
use crate::smtp::SmtpSink;
use crate::wait;

/// The `ADMIN_TOKEN` test apps run with (a test may set it to "" to turn
/// the operator endpoints off).
pub const ADMIN_TOKEN: &str = "test-operator-token";

/// A typed change to the settings a test app starts with, e.g.
/// `|s| s.queues.welcome_email.attempts = 3`: a misspelt setting does not
/// compile.
pub type Configure = Box<dyn FnOnce(&mut Settings) + Send>;

/// How the app is started.
#[derive(Default)]
pub struct Options {
    /// Start a worker in this process too (off by default: api tests do
    /// without, and a worker test says it wants one).
    pub worker: bool,
    /// Changes to the test settings.
    pub configure: Option<Configure>,
    /// Variables read by libraries rather than by our settings (e.g.
    /// `OTEL_BSP_SCHEDULE_DELAY`), given to the processes a test starts.
    pub process_env: Vec<(&'static str, String)>,
    /// SQL of a migration from a *next* release, applied (after ours) before
    /// the api starts: the api under test plays the previous release.
    pub next_release_migration: Option<&'static str>,
}

impl Options {
    /// Default options with a worker in this process.
    pub fn with_worker() -> Self {
        Self {
            worker: true,
            ..Self::default()
        }
    }

    /// These options, with `configure` changing the settings.
    pub fn configure(mut self, configure: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.configure = Some(Box::new(configure));
        self
    }
}

/// A running API (and usually a worker) with its own database, Redis and
/// SMTP sink. Everything stops when it is dropped.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// A client for the API.
    pub client: reqwest::Client,
    /// The app's database, for asserting on rows.
    pub pool: PgPool,
    /// Where the app's emails go.
    pub smtp: SmtpSink,
    /// The app's private Redis.
    pub redis: RedisServer,
    storage: ScratchDir,
    settings: Settings,
    process_env: Vec<(&'static str, String)>,
    api: Stoppable,
    worker: Option<Stoppable>,
}

struct Stoppable {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Stoppable {
    async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result.expect("stopped cleanly"),
            Err(join) => panic!("task panicked: {join}"),
        }
    }
}

impl TestApp {
    /// API and an in-process worker, default settings.
    pub async fn spawn_with_worker() -> Self {
        Self::spawn_with(Options {
            worker: true,
            ..Options::default()
        })
        .await
    }

    /// API only: jobs wait in Redis until a test starts a worker.
    pub async fn spawn_without_worker() -> Self {
        Self::spawn_with(Options::default()).await
    }

    /// API only, with changed settings.
    pub async fn spawn_without_worker_with(
        configure: impl FnOnce(&mut Settings) + Send + 'static,
    ) -> Self {
        Self::spawn_with(Options::default().configure(configure)).await
    }

    /// API and worker on a free port that is also `PUBLIC_URL`, so the links
    /// the api hands out (avatars, status URLs) work in a real browser.
    pub async fn spawn_for_browser(configure: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        let port = crate::free_port();
        Self::spawn_with(Options::with_worker().configure(move |s| {
            s.server.port = port;
            s.server.public_url = format!("http://127.0.0.1:{port}");
            configure(s);
        }))
        .await
    }

    /// API and, if asked, an in-process worker.
    pub async fn spawn_with(options: Options) -> Self {
        init_logs();
        let redis = RedisServer::start();
        let smtp = SmtpSink::start().await;
        let database_url = fresh_database().await;
        let storage = ScratchDir::new("storage");
        let env: HashMap<String, String> = [
            ("DATABASE_URL", database_url.clone()),
            ("REDIS_URL", redis.url()),
            ("SMTP_URL", smtp.url()),
            ("STORAGE_URL", storage.path().display().to_string()),
            ("HOST", "127.0.0.1".into()),
            ("PORT", "0".into()),
            ("PUBLIC_URL", "http://app.test".into()),
            ("LOG_FORMAT", "pretty".into()),
            ("SHUTDOWN_TIMEOUT_SECS", "10".into()),
            // Every test client is 127.0.0.1; tests of the limit turn it on.
            ("AUTH_RATE_LIMIT", "0".into()),
            // Operators' views are how tests read what end users must not see.
            ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
            // Tests run many workers at once: no fixed port (a test that
            // scrapes a worker gives it one).
            ("WORKER_HTTP_PORT", "0".into()),
            // No schedules unless a test asks: a scheduler always has a job
            // waiting for its next period.
            ("MAINTENANCE_INTERVAL_SECS", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut settings =
            Settings::from_lookup(|key| env.get(key).cloned()).expect("test settings are valid");
        if let Some(configure) = options.configure {
            configure(&mut settings);
        }

        if let Some(sql) = options.next_release_migration {
            apply_next_release_migration(&database_url, sql).await;
        }
        let app = api::Application::build(&settings)
            .await
            .expect("the api starts");
        let address = format!("http://{}", app.local_addr().expect("bound"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let pool = PgPool::connect(&database_url)
            .await
            .expect("the test database accepts connections");

        let mut app = Self {
            address,
            client: shared::http::builder()
                .and_then(|builder| {
                    Ok(builder
                        .connect_timeout(Duration::from_secs(5))
                        .timeout(Duration::from_secs(20))
                        .build()?)
                })
                .expect("the HTTP client builds"),
            pool,
            smtp,
            redis,
            storage,
            settings,
            process_env: options.process_env,
            api: Stoppable { stop, task },
            worker: None,
        };
        if options.worker {
            app.start_worker();
        }
        app
    }

    /// The settings the app runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What a process of this app is started with: its settings as
    /// variables, and the test's extra ones.
    fn process_env(&self) -> Vec<(String, String)> {
        let mut vars = self.settings.to_env();
        vars.extend(
            self.process_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone())),
        );
        vars
    }

    /// The app's storage folder (`STORAGE_URL`).
    pub fn storage_dir(&self) -> &Path {
        self.storage.path()
    }

    /// Starts a worker in this process, consuming every queue.
    pub fn start_worker(&mut self) {
        assert!(self.worker.is_none(), "a worker is already running");
        let settings = self.settings.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let queues = shared::jobs::QueueName::ALL;
            worker::runtime::run(&settings, queues, async {
                let _ = stopped.await;
            })
            .await
        });
        self.worker = Some(Stoppable { stop, task });
    }

    /// Stops the in-process worker gracefully.
    pub async fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop().await;
        }
    }

    /// Starts the real `worker` binary at `bin` against this app's services.
    pub fn spawn_worker_process(&self, bin: impl AsRef<Path>) -> WorkerProcess {
        let logs = || {
            if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let child = tokio::process::Command::new(bin.as_ref())
            .envs(self.process_env())
            .stdin(Stdio::null())
            .stdout(logs())
            .stderr(logs())
            .kill_on_drop(true)
            .spawn()
            .expect("the worker binary runs");
        WorkerProcess { child, log: None }
    }

    /// [`TestApp::spawn_worker_process`], with its JSON log lines kept for
    /// the test to read ([`WorkerProcess::log_lines`]).
    pub fn spawn_worker_process_logging(&self, bin: impl AsRef<Path>) -> WorkerProcess {
        let (mut command, log) = self.logged_command(bin.as_ref());
        let child = command.spawn().expect("the worker binary runs");
        WorkerProcess {
            child,
            log: Some(log),
        }
    }

    /// `bin` with this app's environment, writing JSON log lines to a file
    /// of its own (in the returned folder, read by [`json_lines`]).
    fn logged_command(&self, bin: &Path) -> (tokio::process::Command, ScratchDir) {
        let log = ScratchDir::new("process-log");
        let file =
            std::fs::File::create(log.path().join(LOG_FILE)).expect("the log file can be created");
        let mut command = tokio::process::Command::new(bin);
        command
            .envs(self.process_env())
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file can be shared"))
            .stderr(file)
            .kill_on_drop(true);
        (command, log)
    }

    /// Starts the real `api` binary at `bin` against this app's services, on
    /// a port of its own, and waits until it answers.
    pub async fn spawn_api_process(&self, bin: impl AsRef<Path>) -> ApiProcess {
        let port = crate::free_port();
        // Its JSON log is kept for the test to read (see `ApiProcess::log_lines`).
        let (mut command, log) = self.logged_command(bin.as_ref());
        let child = command
            .env("PORT", port.to_string())
            .spawn()
            .expect("the api binary runs");
        let address = format!("http://127.0.0.1:{port}");
        wait::until(
            "the api process to answer",
            Duration::from_secs(30),
            || async {
                let health = self.client.get(format!("{address}/healthz")).send().await;
                health.is_ok().then_some(())
            },
        )
        .await;
        ApiProcess {
            child,
            address,
            log,
        }
    }

    /// Runs a one-off `worker` command (e.g. `failed list welcome-email`)
    /// against this app's services and returns its output.
    pub async fn worker_command(&self, bin: impl AsRef<Path>, args: &[&str]) -> Output {
        tokio::process::Command::new(bin.as_ref())
            .args(args)
            .envs(self.process_env())
            .stdin(Stdio::null())
            .output()
            .await
            .expect("the worker binary runs")
    }

    /// `POST <path>` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("the api answers")
    }

    /// `GET <path>`, with a bearer token if given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the api answers")
    }

    /// `GET <path>` revalidating what the client holds: `If-None-Match: etag`.
    pub async fn get_if_none_match(
        &self,
        path: &str,
        token: Option<&str>,
        etag: &str,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .get(format!("{}{path}", self.address))
            .header("if-none-match", etag);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the api answers")
    }

    /// `POST /api/photos` with `bytes` as the multipart field `field`.
    pub async fn upload(&self, token: &str, field: &str, bytes: &[u8]) -> reqwest::Response {
        let (content_type, body) = crate::multipart(field, bytes);
        self.client
            .post(format!("{}/api/photos", self.address))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the api answers")
    }

    /// `GET /api/me` as `token`'s owner, expecting a 200.
    pub async fn me(&self, token: &str) -> Value {
        let response = self.get("/api/me", Some(token)).await;
        assert_eq!(response.status(), 200, "the token is valid");
        response.json().await.expect("the profile is JSON")
    }

    /// Signs up and returns the 201 body, panicking on any other answer.
    pub async fn sign_up(&self, email: &str, name: &str) -> Value {
        let response = self
            .post_json(
                "/api/signup",
                &json!({ "email": email, "password": "correct horse battery", "name": name }),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("signup answers JSON");
        assert_eq!(status, 201, "signup failed: {body}");
        body
    }

    /// `GET /api/jobs/{id}` as `token`'s owner, expecting a 200.
    pub async fn job_status(&self, job_id: &str, token: Option<&str>) -> Value {
        let response = self.get(&format!("/api/jobs/{job_id}"), token).await;
        assert_eq!(
            response.status(),
            200,
            "job {job_id} is visible to its owner"
        );
        response.json().await.expect("job status is JSON")
    }

    /// The state of a job record, read from the database.
    pub async fn job_state(&self, job_id: &str) -> String {
        let id = uuid::Uuid::parse_str(job_id).expect("job ids are uuids");
        sqlx::query_scalar::<_, String>("select state from jobs where job_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("the job record exists")
    }

    /// The job as operators see it (`GET /api/admin/jobs/{id}`), with the
    /// internal `error_detail` end users never get.
    pub async fn operator_view(&self, job_id: &str) -> Value {
        let response = self
            .get(&format!("/api/admin/jobs/{job_id}"), Some(ADMIN_TOKEN))
            .await;
        assert_eq!(
            response.status(),
            200,
            "job {job_id} is visible to operators"
        );
        response
            .json()
            .await
            .expect("the operator's job view is JSON")
    }

    /// Runs the jobs there are until none is left to do, starting the
    /// in-process worker if none runs: every job record is `completed` or
    /// `failed` (a retry waiting out its backoff is not done). Panics after
    /// [`DEADLINE`](crate::DEADLINE). For tests that need the work done, not
    /// a particular moment in it.
    pub async fn run_jobs_until_idle(&mut self) {
        if self.worker.is_none() {
            self.start_worker();
        }
        wait::until("every job to finish", crate::DEADLINE, || async {
            let unfinished: i64 = sqlx::query_scalar(
                "select count(*) from jobs where state not in ('completed', 'failed')",
            )
            .fetch_one(&self.pool)
            .await
            .expect("the jobs table is readable");
            (unfinished == 0).then_some(())
        })
        .await;
    }

    /// Waits until every job a signup answer lists has completed.
    pub async fn wait_for_signup_jobs(&self, signup: &Value) {
        for job in signup["jobs"]
            .as_array()
            .expect("a signup answer lists its jobs")
        {
            let id = job["id"].as_str().expect("a job id");
            self.wait_for_job_state(id, "completed", crate::DEADLINE)
                .await;
        }
    }

    /// Waits until the job record reaches `state`.
    pub async fn wait_for_job_state(&self, job_id: &str, state: &str, deadline: Duration) {
        wait::until(&format!("job {job_id} to be {state}"), deadline, || async {
            (self.job_state(job_id).await == state).then_some(())
        })
        .await;
    }

    /// Starts a second api instance on this app's database and Redis, as a
    /// deployment with several instances has; returns its address. It stops
    /// when the test ends.
    pub async fn start_another_api(&self) -> String {
        let app = api::Application::build(&self.settings)
            .await
            .expect("a second api starts");
        let address = format!("http://{}", app.local_addr().expect("bound"));
        tokio::spawn(app.run_until(std::future::pending()));
        address
    }

    /// Stops the API and the in-process worker gracefully.
    pub async fn stop(mut self) {
        self.stop_worker().await;
        self.api.stop().await;
    }
}

/// An `api` OS process, for tests that measure it from outside.
pub struct ApiProcess {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    log: ScratchDir,
}

impl ApiProcess {
    /// The log lines written so far, each parsed from JSON.
    pub fn log_lines(&self) -> Vec<Value> {
        json_lines(&self.log.path().join(LOG_FILE))
    }

    /// The process's peak resident set so far (`VmHWM`), in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        let pid = self.child.id().expect("the api is running");
        crate::process_status_kb(&pid.to_string(), "VmHWM:") / 1024.0
    }
}

/// A `worker` OS process, for tests that send it real signals.
pub struct WorkerProcess {
    child: tokio::process::Child,
    log: Option<ScratchDir>,
}

impl WorkerProcess {
    /// The log lines written so far, each parsed from JSON (a process
    /// started with [`TestApp::spawn_worker_process_logging`] only).
    pub fn log_lines(&self) -> Vec<Value> {
        let dir = self.log.as_ref().expect("started with its log kept");
        json_lines(&dir.path().join(LOG_FILE))
    }

    /// Sends SIGTERM, as an orchestrator does on deploy.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("the worker is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill is available");
        assert!(status.success(), "could not signal the worker");
    }

    /// Sends SIGKILL, as a crash or an OOM kill would: no chance to clean up.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("the worker can be killed");
    }

    /// Waits for the process to exit, or panics after `deadline`.
    pub async fn wait(&mut self, deadline: Duration) -> ExitStatus {
        tokio::time::timeout(deadline, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the worker did not exit within {deadline:?}"))
            .expect("the worker can be waited on")
    }
}

/// Migrates `database_url` as the next release would: our migrations plus `sql`.
async fn apply_next_release_migration(database_url: &str, sql: &'static str) {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let pool = PgPool::connect(database_url)
        .await
        .expect("the test database accepts connections");
    let mut migrations: Vec<Migration> = shared::db::migrator().iter().cloned().collect();
    let next_version = migrations.iter().map(|m| m.version).max().unwrap_or(0) + 1;
    migrations.push(Migration::new(
        next_version,
        "from the next release".into(),
        MigrationType::Simple,
        sqlx::SqlSafeStr::into_sql_str(sql),
        false,
    ));
    Migrator::with_migrations(migrations)
        .run(&pool)
        .await
        .expect("the next release's migrations apply");
    pool.close().await;
}

/// Logs go nowhere unless `TEST_LOG` is set: they would drown test output.
fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _no_traces = shared::telemetry::init(shared::config::LogFormat::Pretty, "tests", None);
    }
}

/// The log file of a process started by [`TestApp::logged_command`].
const LOG_FILE: &str = "process.log";

/// The JSON lines of a process's log file (other lines skipped).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the log file is readable")
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// `configure` as [`Options::configure`] takes it: lets a closure's
/// argument type be inferred where a boxed one is expected.
pub fn configure(configure: impl FnOnce(&mut Settings) + Send + 'static) -> Configure {
    Box::new(configure)
}
