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
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{GetResult, ObjectStore, ObjectStoreExt as _, PutPayload};

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
        let store = LocalFileSystem::new_with_prefix(folder)
            .with_context(|| format!("cannot use {} as storage", folder.display()))?;
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

    /// Opens the file at `key` for streaming; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<GetResult>, object_store::Error> {
        match self.store.get(&Key::from(key)).await {
            Ok(result) => Ok(Some(result)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}
