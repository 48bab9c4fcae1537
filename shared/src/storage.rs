//! File storage for uploads and what the jobs produce (photos, onboarding
//! PDFs), through `object_store`, so a local folder in development and S3
//! (or any S3-compatible store) in production are the same code.
//!
//! Keys are deterministic ([`keys`]): a retried job overwrites its own
//! output instead of leaving a second copy, and the api can find a file from
//! the row that names it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use object_store::aws::AmazonS3ConfigKey;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{ClientOptions, HttpClient, HttpConnector};
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::signer::Signer as _;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt as _, PutMultipartOptions, PutOptions,
    PutPayload, WriteMultipart,
};
use secrecy::ExposeSecret as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::config::{S3Settings, Settings};

/// Where files are kept; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Prepended to every key: the path part of `s3://bucket/prefix`.
    prefix: String,
    backend: Backend,
    /// Where uploads wait while they arrive.
    spool_dir: PathBuf,
}

#[derive(Clone, Debug)]
enum Backend {
    /// A folder: uploads are spooled inside it and renamed into place.
    Local { root: PathBuf },
    /// S3 can hand out signed URLs, so clients fetch files from it directly.
    S3 {
        s3: Arc<AmazonS3>,
        /// Spooled uploads being copied to S3 at once.
        transfers: Arc<tokio::sync::Semaphore>,
        /// For the requests object_store does not make (listing open
        /// multipart uploads): the bucket's URL, its region, our client.
        bucket: Arc<BucketApi>,
    },
}

/// Bytes an upload gathers before writing them to its spool file: each
/// write is a hop to tokio's blocking pool, so fewer, larger ones are faster.
const SPOOL_BUFFER_BYTES: usize = 256 * 1024;

/// Spooled uploads copied to S3 at once per process.
const S3_TRANSFERS: usize = 4;

/// The keys files are stored under, in one place.
pub mod keys {
    use uuid::Uuid;

    use media::Variant;

    /// The onboarding guide of `user_id`.
    pub fn onboarding_pdf(user_id: Uuid) -> String {
        format!("users/{user_id}/onboarding.pdf")
    }

    /// An uploaded photo as the user sent it.
    pub fn photo_original(photo_id: Uuid) -> String {
        format!("photos/{photo_id}/original")
    }

    /// One resized size of a photo.
    pub fn photo_variant(photo_id: Uuid, variant: Variant) -> String {
        format!("photos/{photo_id}/{}.jpg", variant.name())
    }
}

/// A file being received piece by piece, spooled to disk as it arrives so
/// a slow client never makes us hold megabytes in memory. Nothing reaches
/// the store until [`Upload::finish`]; an upload dropped before that (the
/// client went away, the request timed out, it was refused) removes its
/// spool file and leaves nothing behind: no file, and on S3 no open
/// multipart upload, since none is started before the whole file is here.
pub struct Upload {
    file: tokio::io::BufWriter<tokio::fs::File>,
    spool: SpoolFile,
    key: String,
    content_type: String,
    storage: Storage,
}

/// A spool file's path, removed when dropped unless it was moved away.
struct SpoolFile(Option<PathBuf>);

impl Drop for SpoolFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Synchronous, but a single unlink: fine in a destructor.
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Upload {
    /// Appends `bytes` to the spool file.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.file.write_all(bytes).await.map_err(spool_error)
    }

    /// Moves the complete file into the store, at its key.
    pub async fn finish(mut self) -> Result<(), StorageError> {
        self.file.flush().await.map_err(spool_error)?;
        // On disk before the row that names it commits (power cuts).
        self.file.get_ref().sync_all().await.map_err(spool_error)?;
        let path = self.spool.0.clone().unwrap_or_default();
        match &self.storage.backend {
            Backend::Local { root } => {
                // Same filesystem: an atomic rename, readers never see half a file.
                let target = root.join(&self.key);
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(spool_error)?;
                }
                tokio::fs::rename(&path, &target)
                    .await
                    .map_err(spool_error)?;
                self.spool.0 = None;
                Ok(())
            }
            Backend::S3 { transfers, .. } => {
                // A transfer holds up to two 5 MiB parts; few at once keep that bounded.
                let _turn = transfers
                    .acquire()
                    .await
                    .map_err(|e| spool_error(std::io::Error::other(e)))?;
                let options = PutMultipartOptions {
                    attributes: self.storage.attributes(&self.content_type),
                    ..PutMultipartOptions::default()
                };
                let upload = self
                    .storage
                    .store
                    .put_multipart_opts(&self.storage.key(&self.key), options)
                    .await?;
                let mut upload = WriteMultipart::new(upload);
                let mut file = tokio::fs::File::open(&path).await.map_err(spool_error)?;
                let mut chunk = vec![0_u8; 256 * 1024];
                loop {
                    let read = match file.read(&mut chunk).await {
                        Ok(0) => break,
                        Ok(read) => read,
                        Err(error) => {
                            let _ = upload.abort().await;
                            return Err(spool_error(error));
                        }
                    };
                    if let Err(error) = upload.wait_for_capacity(1).await {
                        let _ = upload.abort().await;
                        return Err(error.into());
                    }
                    upload.write(&chunk[..read]);
                }
                Ok(upload.finish().await.map(drop)?)
            }
        }
    }
}

/// `folder`, created if missing, for uploads in progress.
fn spool_folder(folder: PathBuf) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create the upload spool {}", folder.display()))?;
    Ok(folder)
}

fn spool_error(error: std::io::Error) -> StorageError {
    StorageError(object_store::Error::Generic {
        store: "upload spool",
        source: Box::new(error),
    })
}

impl Storage {
    /// Opens the store `STORAGE_URL` names: `s3://bucket[/prefix]`, or a
    /// folder path (or `file://` URL), created if missing.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let url = settings.storage_url.as_str();
        match url.strip_prefix("s3://") {
            Some(location) => Self::s3(location, &settings.s3, &settings.uploads.spool_dir),
            None => Self::local(Path::new(url.strip_prefix("file://").unwrap_or(url))),
        }
    }

    /// An S3 bucket, `bucket[/prefix]`. Endpoint, region and keys come from
    /// `settings` where set, else from the AWS SDK's usual sources.
    /// Uploads are spooled in `spool_dir` until they are complete.
    pub fn s3(location: &str, settings: &S3Settings, spool_dir: &Path) -> anyhow::Result<Self> {
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            bail!("STORAGE_URL: s3:// needs a bucket name, e.g. s3://my-bucket/uploads");
        }
        let client = crate::http::builder()?
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
        let api_client = crate::http::builder()?
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

    /// A store in `folder`, created if missing.
    pub fn local(folder: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create the storage folder {}", folder.display()))?;
        // fsync: a file must be on disk before the row that names it
        // commits, or a power cut leaves a photo whose original is gone.
        let store = LocalFileSystem::new_with_prefix(folder)
            .with_context(|| format!("cannot use {} as storage", folder.display()))?
            .with_fsync(true);
        let root = std::fs::canonicalize(folder)
            .with_context(|| format!("cannot resolve the storage folder {}", folder.display()))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: String::new(),
            // Inside the folder, so a finished upload is renamed, not copied.
            spool_dir: spool_folder(root.join(".spool"))?,
            backend: Backend::Local { root },
        })
    }

    fn key(&self, key: &str) -> Key {
        Key::from(format!("{}{key}", self.prefix))
    }

    /// A URL anyone holding it can fetch the file at `key` from for `ttl`,
    /// signed with our credentials: S3 only (`None` for a local folder,
    /// whose files the api serves itself).
    pub async fn signed_url(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StorageError> {
        let Backend::S3 { s3, .. } = &self.backend else {
            return Ok(None);
        };
        let url = s3
            .signed_url(reqwest::Method::GET, &self.key(key), ttl)
            .await?;
        Ok(Some(url.to_string()))
    }

    /// Stores `bytes` at `key`, replacing what was there. Readers see the
    /// old file or the new one, never half of one (the local store writes a
    /// temporary file and renames it).
    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let options = PutOptions {
            attributes: self.attributes(content_type),
            ..PutOptions::default()
        };
        self.store
            .put_opts(&self.key(key), PutPayload::from(bytes), options)
            .await?;
        Ok(())
    }

    /// S3 serves a file with the type it was stored with; the local store
    /// keeps no attributes (the api knows what it serves).
    fn attributes(&self, content_type: &str) -> Attributes {
        let mut attributes = Attributes::new();
        if matches!(self.backend, Backend::S3 { .. }) {
            attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        }
        attributes
    }

    /// Starts receiving the file for `key`, spooled to disk until it is
    /// complete (see [`Upload`]).
    pub async fn upload(&self, key: &str, content_type: &str) -> Result<Upload, StorageError> {
        let path = self
            .spool_dir
            .join(format!("{}.part", uuid::Uuid::now_v7()));
        let file = match tokio::fs::File::create_new(&path).await {
            Ok(file) => file,
            // The folder is made at start; someone removed it since.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tokio::fs::create_dir_all(&self.spool_dir)
                    .await
                    .map_err(spool_error)?;
                tokio::fs::File::create_new(&path)
                    .await
                    .map_err(spool_error)?
            }
            Err(error) => return Err(spool_error(error)),
        };
        Ok(Upload {
            file: tokio::io::BufWriter::with_capacity(SPOOL_BUFFER_BYTES, file),
            spool: SpoolFile(Some(path)),
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            storage: self.clone(),
        })
    }

    /// Removes spool files older than `age`: uploads cut short by a crash
    /// (a finished or abandoned upload removes its own). Returns how many.
    pub async fn sweep_spool(&self, age: Duration) -> std::io::Result<usize> {
        let mut entries = match tokio::fs::read_dir(&self.spool_dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error),
        };
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            if path.extension().is_none_or(|ext| ext != "part") {
                continue;
            }
            let old = entry
                .metadata()
                .await?
                .modified()?
                .elapsed()
                .is_ok_and(|elapsed| elapsed > age);
            if old && tokio::fs::remove_file(&path).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Reads the whole file at `key`; `None` when there is none.
    pub async fn read(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        match self.store.get(&self.key(key)).await {
            Ok(file) => Ok(Some(file.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes the file at `key`; a missing file is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.key(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Aborts the multipart uploads under our prefix that were started
    /// before `age` ago and never completed (a crash mid-copy leaves them,
    /// and S3 bills their parts); returns how many. Nothing to do for a
    /// local folder. At most 1,000 per call: the next run takes the rest.
    pub async fn abort_stale_multipart_uploads(&self, age: Duration) -> anyhow::Result<usize> {
        let Backend::S3 { bucket, .. } = &self.backend else {
            return Ok(0);
        };
        let cutoff = std::time::SystemTime::now()
            .checked_sub(age)
            .unwrap_or(std::time::UNIX_EPOCH);
        let listing = bucket
            .send(
                http::Method::GET,
                &format!("{}/?uploads&prefix={}", bucket.url, encode(&self.prefix)),
            )
            .await
            .context("cannot list the open multipart uploads")?;
        let mut aborted = 0;
        for upload in open_uploads(&listing) {
            if upload.initiated >= cutoff {
                continue;
            }
            let path: Vec<String> = upload.key.split('/').map(encode).collect();
            bucket
                .send(
                    http::Method::DELETE,
                    &format!(
                        "{}/{}?uploadId={}",
                        bucket.url,
                        path.join("/"),
                        encode(&upload.id)
                    ),
                )
                .await
                .with_context(|| format!("cannot abort the upload of {}", upload.key))?;
            aborted += 1;
        }
        Ok(aborted)
    }

    /// Every file whose key starts with `prefix`, with when it was written.
    /// Holds the whole listing in memory: fine for thousands of files, a
    /// paginated walk for millions.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ListedFile>, StorageError> {
        let strip = self.prefix.len();
        self.store
            .list(Some(&self.key(prefix)))
            .map_ok(|meta| ListedFile {
                key: meta
                    .location
                    .as_ref()
                    .get(strip..)
                    .unwrap_or_default()
                    .to_owned(),
                written: meta.last_modified.into(),
            })
            .try_collect()
            .await
            .map_err(StorageError)
    }

    /// Opens the file at `key` for streaming; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<StoredFile>, StorageError> {
        match self.store.get(&self.key(key)).await {
            Ok(result) => Ok(Some(StoredFile {
                size: result.meta.size,
                chunks: result.into_stream().map_err(StorageError).boxed(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

/// A storage operation failed: the store is unreachable or refused, or the
/// spool disk is full. What the store said is kept for the logs.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StorageError(#[from] object_store::Error);

/// A file found by [`Storage::list`].
#[derive(Debug, Clone)]
pub struct ListedFile {
    /// Its key, as the other methods take it.
    pub key: String,
    /// When it was last written.
    pub written: std::time::SystemTime,
}

/// A stored file, opened for streaming: memory holds one chunk at a time.
pub struct StoredFile {
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes, chunk by chunk.
    pub chunks: BoxStream<'static, Result<Bytes, StorageError>>,
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

/// Signed S3 requests object_store does not make for us.
#[derive(Debug)]
struct BucketApi {
    url: String,
    region: String,
    client: reqwest::Client,
    credentials: object_store::aws::AwsCredentialProvider,
}

impl BucketApi {
    /// Sends a body-less request signed with SigV4 (object_store's signer)
    /// and returns the answer's body; a non-2xx answer is an error.
    async fn send(&self, method: http::Method, url: &str) -> anyhow::Result<String> {
        let credential = self.credentials.get_credential().await?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .body(object_store::client::HttpRequestBody::empty())?;
        object_store::aws::AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)?;
        let (parts, _) = request.into_parts();
        let response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        anyhow::ensure!(status.is_success(), "S3 answered {status}: {body}");
        Ok(body)
    }
}

/// An upload started and not completed, from `ListMultipartUploads`.
#[derive(Debug, PartialEq)]
struct OpenUpload {
    key: String,
    id: String,
    initiated: std::time::SystemTime,
}

/// The `<Upload>`s of a `ListMultipartUploadsResult`. The document is
/// S3's own and flat, so a scan for three elements reads it.
fn open_uploads(xml: &str) -> Vec<OpenUpload> {
    let element = |block: &str, name: &str| -> Option<String> {
        let start = block.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + block[start..].find(&format!("</{name}>"))?;
        Some(unescape(&block[start..end]))
    };
    xml.split("<Upload>")
        .skip(1)
        .filter_map(|block| {
            let block = block.split("</Upload>").next()?;
            let initiated =
                chrono::DateTime::parse_from_rfc3339(&element(block, "Initiated")?).ok()?;
            Some(OpenUpload {
                key: element(block, "Key")?,
                id: element(block, "UploadId")?,
                initiated: initiated.into(),
            })
        })
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Percent-encodes everything but S3's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_uploads_are_read_from_s3s_listing() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult><Bucket>b</Bucket>
<Upload><Key>app/photos/a&amp;b/original</Key><UploadId>id-1</UploadId>
<Initiated>2026-11-20T10:00:00.000Z</Initiated></Upload>
<Upload><Key>app/x</Key><UploadId>id-2</UploadId><Initiated>not a date</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let uploads = open_uploads(xml);
        assert_eq!(uploads.len(), 1, "one readable upload: {uploads:?}");
        assert_eq!(uploads[0].key, "app/photos/a&b/original");
        assert_eq!(uploads[0].id, "id-1");
        assert_eq!(encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
