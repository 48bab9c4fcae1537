//! Uploads spooled to disk as they arrive, then moved into the store whole.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use object_store::{PutMultipartOptions, WriteMultipart};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::facade::{Backend, Storage, StorageError};

/// Bytes an upload gathers before writing them to its spool file: each
/// write is a hop to tokio's blocking pool, so fewer, larger ones are faster.
const SPOOL_BUFFER_BYTES: usize = 256 * 1024;

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
pub(super) fn spool_folder(folder: PathBuf) -> anyhow::Result<PathBuf> {
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
}
