//! The storage handle: one API over a local folder and S3.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use object_store::aws::AmazonS3;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::signer::Signer as _;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt as _, PutOptions, PutPayload,
};

use super::multipart::BucketApi;
use super::spool::spool_folder;
use platform::config::StorageSettings;

/// Where files are kept; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    pub(super) store: Arc<dyn ObjectStore>,
    /// Prepended to every key: the path part of `s3://bucket/prefix`.
    pub(super) prefix: String,
    pub(super) backend: Backend,
    /// Where uploads wait while they arrive.
    pub(super) spool_dir: PathBuf,
}

#[derive(Clone, Debug)]
pub(super) enum Backend {
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

impl Storage {
    /// Opens the store `STORAGE_URL` names: `s3://bucket[/prefix]`, or a
    /// folder path (or `file://` URL), created if missing.
    pub fn from_settings(settings: &StorageSettings) -> anyhow::Result<Self> {
        let url = settings.url.as_str();
        match url.strip_prefix("s3://") {
            Some(location) => Self::s3(location, &settings.s3, &settings.spool_dir),
            None => Self::local(Path::new(url.strip_prefix("file://").unwrap_or(url))),
        }
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

    pub(super) fn key(&self, key: &str) -> Key {
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
    pub(super) fn attributes(&self, content_type: &str) -> Attributes {
        let mut attributes = Attributes::new();
        if matches!(self.backend, Backend::S3 { .. }) {
            attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        }
        attributes
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
pub struct StorageError(#[from] pub(super) object_store::Error);

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
