//! Opening an S3 (or S3-compatible) bucket on our own HTTP client.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{ClientOptions, HttpClient, HttpConnector};
use secrecy::ExposeSecret as _;

use super::facade::{Backend, Storage};
use super::multipart::BucketApi;
use super::spool::spool_folder;
use platform::config::S3Settings;

/// Spooled uploads copied to S3 at once per process.
const S3_TRANSFERS: usize = 4;

impl Storage {
    /// An S3 bucket, `bucket[/prefix]`. Endpoint, region and keys come from
    /// `settings` where set, else from the AWS SDK's usual sources.
    /// Uploads are spooled in `spool_dir` until they are complete.
    pub fn s3(location: &str, settings: &S3Settings, spool_dir: &Path) -> anyhow::Result<Self> {
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            bail!("STORAGE_URL: s3:// needs a bucket name, e.g. s3://my-bucket/uploads");
        }
        let client = platform::http::builder()?
            .connect_timeout(Duration::from_secs(5))
            // Parts are at most a few MB; a slower transfer is a failure.
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot build the storage HTTP client")?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_allow_http(settings.allow_http)
            .with_http_connector(OurTls(client));
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose_secret());
        }
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".to_owned());
        let bucket_url = match builder.get_config_value(&AmazonS3ConfigKey::Endpoint) {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        };
        let api_client = platform::http::builder()?
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the storage HTTP client")?;
        let s3 = builder
            .build()
            .with_context(|| format!("STORAGE_URL: cannot use S3 bucket {bucket}"))?;
        let s3 = Arc::new(s3);
        let prefix = prefix.trim_matches('/');
        Ok(Self {
            store: s3.clone() as Arc<dyn ObjectStore>,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            backend: Backend::S3 {
                bucket: Arc::new(BucketApi {
                    url: bucket_url,
                    region,
                    client: api_client,
                    credentials: s3.credentials().clone(),
                }),
                s3,
                transfers: Arc::new(tokio::sync::Semaphore::new(S3_TRANSFERS)),
            },
            spool_dir: spool_folder(spool_dir.to_owned())?,
        })
    }
}

/// Hands object_store our reqwest client, so S3 traffic uses the same TLS
/// stack (ring, webpki roots) as everything else.
#[derive(Debug)]
struct OurTls(reqwest::Client);

impl HttpConnector for OurTls {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}
