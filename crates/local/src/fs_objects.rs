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

/// Runs file-system work on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StageError::internal(format!("object store task: {e}")))?
}

#[async_trait]
impl ObjectStore for FsObjectStore {
    async fn put(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<()> {
        let path = self.path_of(key);
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let key = key.clone();
        // One hop to the blocking pool for the folder, the write and the rename.
        blocking(move || {
            let mut tries = 0;
            loop {
                tries += 1;
                if let Some(dir) = path.parent() {
                    crate::private_files::create_dir_all(dir)
                        .map_err(|e| io_error("creating folder for", &key, e))?;
                }
                let written = match crate::private_files::write(&tmp, &bytes) {
                    Ok(()) => std::fs::rename(&tmp, &path).map_err(|e| ("renaming", e)),
                    Err(e) => Err(("writing", e)),
                };
                match written {
                    Ok(()) => return Ok(()),
                    // A concurrent delete removed the folder between the two steps.
                    Err((_, e)) if e.kind() == ErrorKind::NotFound && tries < 3 => {}
                    Err((what, e)) => {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(io_error(what, &key, e));
                    }
                }
            }
        })
        .await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>> {
        let path = self.path_of(key);
        let key = key.clone();
        blocking(move || match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading", &key, e)),
        })
        .await
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
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("deleting", key, e)),
        }
        // The folder of a job's objects goes with its last object (it fails, and stays,
        // while anything is left in it).
        if let Some(dir) = path.parent()
            && dir != self.root
        {
            let _ = tokio::fs::remove_dir(dir).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::parse(s).expect("valid key")
    }

    #[tokio::test]
    async fn a_folder_goes_with_its_last_object() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = FsObjectStore::new(root.path());
        let (a, b) = (key("uploads/job_1/a.pdf"), key("uploads/job_1/b.pdf"));
        store.put(&a, b"a".to_vec()).await.expect("put a");
        store.put(&b, b"b".to_vec()).await.expect("put b");
        store.delete(&a).await.expect("delete a");
        assert_eq!(store.get(&b).await.expect("get b"), Some(b"b".to_vec()));
        store.delete(&b).await.expect("delete b");
        assert!(!root.path().join("uploads/job_1").exists());
        // Deleting what is gone is no error, and the folder comes back for a new object.
        store.delete(&b).await.expect("delete again");
        store.put(&a, b"again".to_vec()).await.expect("put again");
        assert_eq!(store.get(&a).await.expect("get a"), Some(b"again".to_vec()));
    }
}
