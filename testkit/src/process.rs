//! The real `api` and `worker` binaries as OS processes, started against a
//! [`TestApp`]'s services, for tests that send signals, crash them or read
//! their logs.

use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::app::TestApp;
use crate::scratch::ScratchDir;
use crate::wait;

impl TestApp {
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
        self.spawn_api_process_with(bin, &[]).await
    }

    /// [`spawn_api_process`](Self::spawn_api_process) with `vars` added to
    /// its environment, e.g. one setting changed for this process only.
    pub async fn spawn_api_process_with(
        &self,
        bin: impl AsRef<Path>,
        vars: &[(&str, &str)],
    ) -> ApiProcess {
        self.spawn_api_process_at(bin, "127.0.0.1", crate::free_port(), vars)
            .await
    }

    /// [`spawn_api_process_with`](Self::spawn_api_process_with) listening
    /// on `host:port` (`HOST`, `PORT`): several instances on one port, each
    /// on its own loopback address (all of 127/8 is loopback on Linux), as
    /// replicas behind one name are.
    pub async fn spawn_api_process_at(
        &self,
        bin: impl AsRef<Path>,
        host: &str,
        port: u16,
        vars: &[(&str, &str)],
    ) -> ApiProcess {
        // Its JSON log is kept for the test to read (see `ApiProcess::log_lines`).
        let (mut command, log) = self.logged_command(bin.as_ref());
        let child = command
            .envs(vars.iter().copied())
            .env("HOST", host)
            .env("PORT", port.to_string())
            .spawn()
            .expect("the api binary runs");
        let address = format!("http://{host}:{port}");
        crate::contract::serves_api(&address);
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

    /// Everything the process wrote so far, stdout and stderr, as written
    /// (lines that are not JSON too, such as a panic's).
    pub fn output(&self) -> String {
        raw_output(&self.log.path().join(LOG_FILE))
    }

    /// Sends SIGTERM, as an orchestrator does on deploy.
    pub fn terminate(&self) {
        terminate(&self.child, "api");
    }

    /// Waits for the process to exit, or panics after `deadline`.
    pub async fn wait(&mut self, deadline: Duration) -> ExitStatus {
        wait_for(&mut self.child, "api", deadline).await
    }

    /// Sends SIGKILL, as a crash or an OOM kill would, and waits for it.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("the api can be killed");
    }

    /// The process's peak resident set so far (`VmHWM`), in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        let pid = self.child.id().expect("the api is running");
        crate::process_status_kb(&pid.to_string(), "VmHWM:") / 1024.0
    }

    /// The process's resident set now (`VmRSS`), in MB.
    pub fn rss_mb(&self) -> f64 {
        let pid = self.child.id().expect("the api is running");
        crate::process_status_kb(&pid.to_string(), "VmRSS:") / 1024.0
    }

    /// The CPU time the process has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.child.id().map_or(0.0, crate::cpu_seconds)
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

    /// Everything the process wrote so far, stdout and stderr, as written
    /// (started with [`TestApp::spawn_worker_process_logging`] only).
    pub fn output(&self) -> String {
        let dir = self.log.as_ref().expect("started with its log kept");
        raw_output(&dir.path().join(LOG_FILE))
    }

    /// The CPU time the process has used so far, in seconds (0 once it
    /// has exited).
    pub fn cpu_seconds(&self) -> f64 {
        self.child.id().map_or(0.0, crate::cpu_seconds)
    }

    /// Sends SIGTERM, as an orchestrator does on deploy.
    pub fn terminate(&self) {
        terminate(&self.child, "worker");
    }

    /// Sends SIGKILL, as a crash or an OOM kill would: no chance to clean up.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("the worker can be killed");
    }

    /// Waits for the process to exit, or panics after `deadline`.
    pub async fn wait(&mut self, deadline: Duration) -> ExitStatus {
        wait_for(&mut self.child, "worker", deadline).await
    }
}

/// Sends SIGTERM to `child` (the `name` binary).
fn terminate(child: &tokio::process::Child, name: &str) {
    let pid = child
        .id()
        .unwrap_or_else(|| panic!("the {name} is running"));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill is available");
    assert!(status.success(), "could not signal the {name}");
}

/// Waits for `child` (the `name` binary) to exit, or panics after `deadline`.
async fn wait_for(child: &mut tokio::process::Child, name: &str, deadline: Duration) -> ExitStatus {
    tokio::time::timeout(deadline, child.wait())
        .await
        .unwrap_or_else(|_| panic!("the {name} did not exit within {deadline:?}"))
        .unwrap_or_else(|error| panic!("the {name} can be waited on: {error}"))
}

/// The log file of a process started by [`TestApp::logged_command`].
const LOG_FILE: &str = "process.log";

/// A process's log file as written; bytes that are not UTF-8 replaced.
fn raw_output(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).expect("the log file is readable")).into_owned()
}

/// The JSON lines of a process's log file (other lines skipped).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the log file is readable")
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
