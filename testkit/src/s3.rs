//! An S3-compatible server for tests of the S3 storage path: s3rver, from
//! npm, installed on first use into `target/testkit-s3rver` and started per
//! test on a free port with its own folder. S3 lives outside our walls, so
//! a stand-in is what the tests may use.

use platform::config::S3Settings;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::scratch::ScratchDir;
use crate::{free_port, wait};

/// A running s3rver with one bucket.
pub struct S3Server {
    child: Child,
    port: u16,
    /// Its data; removed after the server stops (fields drop after `drop`).
    _folder: ScratchDir,
    /// The bucket it was started with.
    pub bucket: String,
}

impl S3Server {
    /// Starts s3rver with `bucket` (installing it with npm the first time).
    pub async fn start(bucket: &str) -> Self {
        let script = installed();
        let port = free_port();
        let folder = ScratchDir::new("s3");
        let child = Command::new("node")
            .arg(script)
            .args([
                "--address",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .arg("--directory")
            .arg(folder.path())
            .args(["--configure-bucket", bucket])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs s3rver");
        wait::until("s3rver to listen", Duration::from_secs(20), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(drop)
        })
        .await;
        Self {
            child,
            port,
            _folder: folder,
            bucket: bucket.to_owned(),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Points the app's storage at this server.
    pub fn configure(&self) -> crate::app::Configure {
        let (url, endpoint) = (format!("s3://{}/app", self.bucket), self.endpoint());
        crate::app::configure(move |s| {
            s.storage.url = url;
            s.storage.s3 = S3Settings {
                endpoint: Some(endpoint),
                region: Some("us-east-1".into()),
                // s3rver's fixed credentials.
                access_key_id: Some("S3RVER".into()),
                secret_access_key: Some("S3RVER".into()),
                allow_http: true,
            };
        })
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// s3rver's entry script, installed once per checkout.
fn installed() -> &'static PathBuf {
    static SCRIPT: OnceLock<PathBuf> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        let prefix = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/testkit-s3rver");
        let script = prefix.join("node_modules/s3rver/bin/s3rver.js");
        if !script.exists() {
            let status = Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--prefix",
                ])
                .arg(&prefix)
                .arg("s3rver@3.7.1")
                .status()
                .expect("npm runs (Node.js is needed for the S3 tests)");
            assert!(status.success(), "npm could not install s3rver");
        }
        script
    })
}
