//! The filesystem object store: one file per key under a root folder. Writes go to a
//! temporary file and are renamed into place, so a reader never sees half an object.
//! Folders are 0700 and files 0600: documents are their owners' business.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use docpipe_core::ports::Result;
use docpipe_core::{ObjectKey, ObjectStore, StageError};

#[derive(Debug, Clone)]
pub struct FsObjectStore {
    root: PathBuf,
}

impl FsObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of a key. Keys are validated on construction (no `..`, no absolute
    /// paths), so the path stays under the root.
    pub fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

fn io_error(what: &str, key: &ObjectKey, e: std::io::Error) -> StageError {
    StageError::unavailable(format!("object store: {what} {key}: {e}"))
}

#[async_trait]
impl ObjectStore for FsObjectStore {
    async fn put(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<()> {
        let path = self.path_of(key);
        if let Some(dir) = path.parent() {
            crate::private_files::create_dir_all_async(dir)
                .await
                .map_err(|e| io_error("creating folder for", key, e))?;
        }
        // A temporary name of its own per write: two writes of one key at once (two
        // requests racing with one Idempotency-Key) must not share a half-written file.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        crate::private_files::write_async(&tmp, bytes)
            .await
            .map_err(|e| io_error("writing", key, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_error("renaming", key, e))
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path_of(key)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading", key, e)),
        }
    }

    async fn size(&self, key: &ObjectKey) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.path_of(key)).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading size of", key, e)),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("deleting", key, e)),
        }
    }
}
