//! Folders of one test's own.

use std::path::{Path, PathBuf};

/// A folder of one test's own, removed when the test ends.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new(purpose: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("acme-test-{purpose}-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&path).expect("the temp folder is writable");
        Self(path)
    }
}

impl ScratchDir {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
