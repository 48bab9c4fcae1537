//! File storage for what the jobs produce (onboarding PDFs, resized photos),
//! through `object_store`, so a local folder in development and an object
//! store in production are the same code.
//!
//! Keys are deterministic ([`keys`]): a retried job overwrites its own
//! output instead of leaving a second copy, and the api can find a file from
//! the row that names it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{GetResult, ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart};

use crate::config::Settings;

/// Where files are kept; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
}

/// The keys files are stored under, in one place.
pub mod keys {
    use uuid::Uuid;

    /// The onboarding guide of `user_id`.
    pub fn onboarding_pdf(user_id: Uuid) -> String {
        format!("users/{user_id}/onboarding.pdf")
    }

    /// An uploaded photo as the user sent it.
    pub fn photo_original(photo_id: Uuid) -> String {
        format!("photos/{photo_id}/original")
    }

    /// One resized variant (`thumbnail`, `medium`, `large`) of a photo.
    pub fn photo_variant(photo_id: Uuid, variant: &str) -> String {
        format!("photos/{photo_id}/{variant}.jpg")
    }
}

/// A file being written piece by piece, so an upload never has to be held
/// in memory whole. Nothing is visible at the key until [`Upload::finish`].
pub struct Upload(WriteMultipart);

impl Upload {
    /// Appends `bytes`, waiting while earlier parts are still in flight.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), object_store::Error> {
        self.0.wait_for_capacity(4).await?;
        self.0.put(bytes);
        Ok(())
    }

    /// Makes the file visible at its key.
    pub async fn finish(self) -> Result<(), object_store::Error> {
        self.0.finish().await.map(drop)
    }

    /// Throws the partial file away.
    pub async fn abort(self) -> Result<(), object_store::Error> {
        self.0.abort().await
    }
}

impl Storage {
    /// Opens the store `STORAGE_URL` names: a folder path (or `file://`
    /// URL), created if missing.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let url = settings.storage_url.as_str();
        if url.starts_with("s3://") {
            bail!("STORAGE_URL: S3 storage is not available in this build yet; use a folder");
        }
        let folder = Path::new(url.strip_prefix("file://").unwrap_or(url));
        Self::local(folder)
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
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// Stores `bytes` at `key`, replacing what was there. Readers see the
    /// old file or the new one, never half of one (the local store writes a
    /// temporary file and renames it).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), object_store::Error> {
        self.store
            .put(&Key::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Starts writing the file at `key` piece by piece.
    pub async fn upload(&self, key: &str) -> Result<Upload, object_store::Error> {
        let upload = self.store.put_multipart(&Key::from(key)).await?;
        Ok(Upload(WriteMultipart::new(upload)))
    }

    /// Reads the whole file at `key`; `None` when there is none.
    pub async fn read(&self, key: &str) -> Result<Option<Bytes>, object_store::Error> {
        match self.get(key).await? {
            Some(file) => Ok(Some(file.bytes().await?)),
            None => Ok(None),
        }
    }

    /// Removes the file at `key`; a missing file is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        match self.store.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Opens the file at `key` for streaming; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<GetResult>, object_store::Error> {
        match self.store.get(&Key::from(key)).await {
            Ok(result) => Ok(Some(result)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}
