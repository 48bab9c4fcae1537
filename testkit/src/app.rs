//! The system under test, started like production but on random ports.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use platform::config::Settings;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::postgres::fresh_database;
use crate::redis::RedisServer;
use crate::scratch::ScratchDir;
use crate::smtp::SmtpSink;

/// The `ADMIN_TOKEN` test apps run with (a test may set it to "" to turn
/// the operator endpoints off).
pub const ADMIN_TOKEN: &str = "test-operator-token-0123456789abcdef";

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
    /// Redis asks for this password (`requirepass`), and `REDIS_URL`
    /// carries it: for tests of what a password in a URL may reach.
    pub redis_password: Option<String>,
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
    /// A client for the API, checking every answer against the OpenAPI
    /// document the api publishes.
    pub client: crate::Client,
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
    pub(crate) worker: Option<Stoppable>,
}

pub(crate) struct Stoppable {
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

    /// API and an in-process worker, with changed settings.
    pub async fn spawn_with_worker_with(
        configure: impl FnOnce(&mut Settings) + Send + 'static,
    ) -> Self {
        Self::spawn_with(Options::with_worker().configure(configure)).await
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
            s.links.public_url = format!("http://127.0.0.1:{port}");
            configure(s);
        }))
        .await
    }

    /// API and, if asked, an in-process worker.
    pub async fn spawn_with(options: Options) -> Self {
        init_logs();
        let redis = match &options.redis_password {
            Some(password) => RedisServer::start_with_password(password),
            None => RedisServer::start(),
        };
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
            ("HTTP_MAX_CONNECTIONS_PER_CLIENT", "0".into()),
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

        let client = platform::http::builder()
            .and_then(|builder| {
                Ok(builder
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(20))
                    .build()?)
            })
            .expect("the HTTP client builds");
        let contract = crate::contract::load(&client, &address).await;
        let mut app = Self {
            address,
            client: crate::Client::new(client, contract),
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
    /// variables, and the test's extra ones (later ones win, so a test may
    /// add its own to start a process with one setting changed).
    pub fn process_env(&self) -> Vec<(String, String)> {
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
            let queues = catalogue::QueueName::ALL;
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

    /// Starts a second api instance on this app's database and Redis, as a
    /// deployment with several instances has; returns its address. It stops
    /// when the test ends.
    pub async fn start_another_api(&self) -> String {
        let app = api::Application::build(&self.settings)
            .await
            .expect("a second api starts");
        let address = format!("http://{}", app.local_addr().expect("bound"));
        crate::contract::serves_api(&address);
        tokio::spawn(app.run_until(std::future::pending()));
        address
    }

    /// Stops the API and the in-process worker gracefully.
    pub async fn stop(mut self) {
        self.stop_worker().await;
        self.api.stop().await;
    }
}

/// Migrates `database_url` as the next release would: our migrations plus `sql`.
async fn apply_next_release_migration(database_url: &str, sql: &'static str) {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let pool = PgPool::connect(database_url)
        .await
        .expect("the test database accepts connections");
    let mut migrations: Vec<Migration> = store::db::migrator().iter().cloned().collect();
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
        let _no_traces =
            platform::telemetry::init(platform::config::LogFormat::Pretty, "tests", None);
    }
}

/// `configure` as [`Options::configure`] takes it: lets a closure's
/// argument type be inferred where a boxed one is expected.
pub fn configure(configure: impl FnOnce(&mut Settings) + Send + 'static) -> Configure {
    Box::new(configure)
}
