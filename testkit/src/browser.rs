//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `scripts/test` installs like Postgres), to check
//! the web app as a person uses it.
//!
//! Each [`Browser`] has its own `chromedriver` and profile. [`Browser::run`]
//! runs a scenario; when it fails, the page's screenshot and console log are
//! saved under `target/browser/<scenario>/` before the failure is reported.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};

use crate::scratch::ScratchDir;

/// A window size people use: a small phone, or a laptop.
#[derive(Debug, Clone, Copy)]
pub enum Screen {
    /// 375 × 800 CSS pixels.
    Phone,
    /// 1280 × 900.
    Desktop,
}

/// A Chromium window under WebDriver control.
pub struct Browser {
    client: Client,
    driver: Child,
    downloads: ScratchDir,
    _profile: ScratchDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `screen`'s size.
    pub async fn start(screen: Screen) -> Self {
        let port = crate::free_port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (scripts/test installs chromium-driver)");
        let downloads = ScratchDir::new("downloads");
        let profile = ScratchDir::new("chromium-profile");
        let (width, height) = match screen {
            Screen::Phone => (375, 800),
            Screen::Desktop => (1280, 900),
        };
        let mut capabilities = serde_json::Map::new();
        // Chromium's windows are at least 500 px wide; a phone's viewport
        // is emulated instead (density 1, so image choices are predictable).
        let mut options = json!({
            "args": [
                "--headless=new",
                // Root in CI containers: Chromium's sandbox needs user namespaces.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": {
                "download.default_directory": downloads.path(),
                "download.prompt_for_download": false,
            },
        });
        if let Screen::Phone = screen {
            options["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0 } });
        }
        capabilities.insert("goog:chromeOptions".into(), options);
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) if started.elapsed() < crate::DEADLINE => {
                    tracing_hint(&error);
                    // Polling: chromedriver takes a moment to listen; try again shortly.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("no WebDriver session: {error}"),
            }
        };
        Self {
            client,
            driver,
            downloads,
            _profile: profile,
        }
    }

    /// The WebDriver client, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `scenario`; if it panics, saves a screenshot and the console log
    /// under `target/browser/<name>/` and fails with their paths.
    pub async fn run(self, name: &str, scenario: impl AsyncFnOnce(&Browser)) {
        let outcome = std::panic::AssertUnwindSafe(scenario(&self))
            .catch_unwind()
            .await;
        if let Err(panic) = outcome {
            let dir = save_evidence(&self.client, name).await;
            eprintln!(
                "browser scenario `{name}` failed; screenshot and console log in {}",
                dir.display()
            );
            self.close().await;
            std::panic::resume_unwind(panic);
        }
        self.close().await;
    }

    /// Opens `url` and waits for the document to load.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    /// Types `text` into the input `css` finds, after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.visible(css).await;
        input.clear().await.expect("cleared");
        input.send_keys(text).await.expect("typed");
    }

    /// Types `keys` on the keyboard, into whatever has focus, as a person
    /// would (`"\u{E004}"` is Tab, `"\u{E007}"` Enter).
    pub async fn press(&self, keys: &str) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let mut actions = KeyActions::new("keyboard".into());
        for key in keys.chars() {
            actions = actions
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        self.client
            .perform_actions(actions)
            .await
            .expect("the keys are typed");
    }

    /// Clicks what `css` finds once it is visible.
    pub async fn click(&self, css: &str) {
        self.visible(css).await.click().await.expect("clicked");
    }

    /// Waits until an element `css` finds is displayed, and returns it.
    pub async fn visible(&self, css: &str) -> fantoccini::elements::Element {
        let started = Instant::now();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && element.is_displayed().await.unwrap_or(false)
            {
                return element;
            }
            assert!(
                started.elapsed() < crate::DEADLINE,
                "`{css}` never became visible"
            );
            // Polling: the page renders on its own time; look again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the text of `css` contains `expected`; returns the text.
    pub async fn wait_for_text(&self, css: &str, expected: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(css).await.unwrap_or_default();
            if text.contains(expected) {
                return text;
            }
            assert!(
                started.elapsed() < crate::DEADLINE,
                "`{css}` never said {expected:?}; it says {text:?}"
            );
            // Polling: the page renders on its own time; look again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of what `css` finds, if it exists.
    pub async fn text(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    /// Waits until `script` (a function body returning a value) returns
    /// something truthy; returns that value.
    pub async fn wait_until(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.eval(script).await;
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return value;
            }
            assert!(started.elapsed() < crate::DEADLINE, "never true: {what}");
            // Polling: the page's script runs on its own time; ask again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` (a function body) in the page and returns its result.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("the script runs")
    }

    /// Uploads throttled to `bytes_per_sec`, so progress can be watched.
    pub async fn throttle_uploads(&self, bytes_per_sec: u64) {
        self.client
            .issue_cmd(NetworkConditions {
                upload_bytes_per_sec: bytes_per_sec,
            })
            .await
            .expect("chromedriver throttles the network");
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Waits for a finished download and returns its bytes.
    pub async fn downloaded(&self, file_name: &str) -> Vec<u8> {
        let path = self.downloads.path().join(file_name);
        let started = Instant::now();
        loop {
            // Chromium writes `<name>.crdownload` and renames it when done.
            if let Ok(bytes) = std::fs::read(&path) {
                return bytes;
            }
            assert!(
                started.elapsed() < crate::DEADLINE,
                "{file_name} was never downloaded"
            );
            // Polling: Chromium writes the download on its own time; look again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Messages the page wrote to the console (errors included).
    pub async fn console(&self) -> Vec<String> {
        console_of(&self.client).await
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop stops chromedriver.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where the screenshots a run keeps go: `target/browser/`.
pub fn evidence_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser")
}

async fn save_evidence(client: &Client, name: &str) -> PathBuf {
    let dir = evidence_dir().join(name);
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(dir.join("failure.png"), png);
    }
    let log = console_of(client).await.join("\n");
    let _ = std::fs::write(dir.join("console.log"), log);
    dir
}

async fn console_of(client: &Client) -> Vec<String> {
    match client.issue_cmd(BrowserLog).await {
        Ok(Value::Array(entries)) => entries
            .iter()
            .map(|entry| {
                format!(
                    "{} {}",
                    entry["level"].as_str().unwrap_or("?"),
                    entry["message"].as_str().unwrap_or("")
                )
            })
            .collect(),
        Ok(other) => vec![format!("unexpected log answer: {other}")],
        Err(error) => vec![format!("no console log: {error}")],
    }
}

fn chromedriver() -> PathBuf {
    for candidate in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    "chromedriver".into()
}

fn tracing_hint(error: &fantoccini::error::NewSessionError) {
    if std::env::var_os("TEST_LOG").is_some() {
        eprintln!("waiting for chromedriver: {error}");
    }
}

/// ChromeDriver's console log (not in the W3C standard).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

/// ChromeDriver's network emulation (not in the W3C standard).
#[derive(Debug)]
struct NetworkConditions {
    upload_bytes_per_sec: u64,
}

impl WebDriverCompatibleCommand for NetworkConditions {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/chromium/network_conditions",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({
            "network_conditions": {
                "offline": false,
                "latency": 0,
                "download_throughput": -1,
                "upload_throughput": self.upload_bytes_per_sec,
            }
        });
        (http::Method::POST, Some(body.to_string()))
    }
}
