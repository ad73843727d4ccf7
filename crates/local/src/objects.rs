//! The embedded host's object store: objects up to [`INLINE_MAX_BYTES`] are rows of the
//! job database (`objects` table), larger ones files under the data folder
//! ([`FsObjectStore`]).
//!
//! A document of ordinary size and everything derived from it (its text, the extraction,
//! the verified result) is a few kilobytes to a few hundred: as files, each costs a
//! folder, a temporary file and a rename, and creating inodes was most of the embedded
//! pipeline's CPU time. As rows, each is one short transaction on the writer connection
//! (WAL, so readers are not blocked), durable exactly as the job rows are.
//!
//! A key lives in one place at a time: a put removes the other copy, a read looks in the
//! database first, a delete removes both.

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use docpipe_core::ports::Result;
use docpipe_core::{Clock, ObjectKey, ObjectStore, StageError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::fs_objects::FsObjectStore;
use crate::sqlite::{SqliteJobStore, db_error};

/// Objects up to this size are stored in the database.
pub const INLINE_MAX_BYTES: usize = 1024 * 1024;

/// Small objects in the job database, large ones as files.
#[derive(Clone)]
pub struct LocalObjectStore {
    files: FsObjectStore,
    db: SqliteJobStore,
    clock: Arc<dyn Clock>,
    inline_max: usize,
    /// Objects queued by [`ObjectStore::put_before_next_write`] and not yet committed,
    /// by key: reads see them at once.
    queued: Arc<std::sync::Mutex<HashMap<String, Arc<Vec<u8>>>>>,
}

/// A folder of objects (a key's first two segments, `results/job_...`) and the newest
/// change to anything in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFolder {
    pub prefix: String,
    pub name: String,
    pub modified_at: Option<DateTime<Utc>>,
}

impl LocalObjectStore {
    pub fn new(files: FsObjectStore, db: SqliteJobStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            files,
            db,
            clock,
            inline_max: INLINE_MAX_BYTES,
            queued: Arc::default(),
        }
    }

    /// The same store with another inline limit (0: every object is a file).
    pub fn with_inline_max(mut self, bytes: usize) -> Self {
        self.inline_max = bytes;
        self
    }

    /// The file tier.
    pub fn files(&self) -> &FsObjectStore {
        &self.files
    }

    /// Every folder holding objects in either tier, with its newest change.
    pub async fn folders(&self) -> Result<Vec<ObjectFolder>> {
        let rows: Vec<(String, i64)> = self
            .db
            .with_read(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT folder, MAX(modified_at) FROM objects
                          WHERE folder <> '' GROUP BY folder",
                    )
                    .map_err(db_error)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(db_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
            })
            .await?;
        let mut folders: BTreeMap<(String, String), Option<DateTime<Utc>>> = BTreeMap::new();
        for (folder, modified) in rows {
            if let Some((prefix, name)) = folder.split_once('/') {
                folders.insert(
                    (prefix.to_owned(), name.to_owned()),
                    DateTime::from_timestamp(modified, 0),
                );
            }
        }
        let io = |e: std::io::Error| StageError::unavailable(format!("listing objects: {e}"));
        if let Ok(prefixes) = std::fs::read_dir(self.files.root()) {
            for prefix in prefixes {
                let prefix = prefix.map_err(io)?;
                if !prefix.file_type().map_err(io)?.is_dir() {
                    continue;
                }
                for folder in std::fs::read_dir(prefix.path()).map_err(io)? {
                    let folder = folder.map_err(io)?;
                    let key = (
                        prefix.file_name().to_string_lossy().into_owned(),
                        folder.file_name().to_string_lossy().into_owned(),
                    );
                    let on_disk = newest_change(&folder.path());
                    let entry = folders.entry(key).or_insert(on_disk);
                    *entry = (*entry).max(on_disk);
                }
            }
        }
        Ok(folders
            .into_iter()
            .map(|((prefix, name), modified_at)| ObjectFolder {
                prefix,
                name,
                modified_at,
            })
            .collect())
    }

    /// Deletes a folder and every object in it, in both tiers.
    pub async fn delete_folder(&self, prefix: &str, name: &str) -> Result<()> {
        let folder = format!("{prefix}/{name}");
        self.db
            .with(move |conn| {
                let data: Vec<i64> = conn
                    .prepare_cached("DELETE FROM objects WHERE folder = ?1 RETURNING data")
                    .map_err(db_error)?
                    .query_map(params![folder], |r| r.get(0))
                    .map_err(db_error)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(db_error)?;
                for id in data {
                    drop_data(conn, id)?;
                }
                Ok(())
            })
            .await?;
        match std::fs::remove_dir_all(self.files.root().join(prefix).join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StageError::unavailable(format!(
                "deleting objects {prefix}/{name}: {e}"
            ))),
        }
    }

    async fn delete_row(&self, key: &ObjectKey) -> Result<bool> {
        let key = key.as_str().to_owned();
        self.db.with(move |conn| delete_row(conn, &key)).await
    }
}

/// Deletes the row of `key` and its bytes; whether there was one.
fn delete_row(conn: &Connection, key: &str) -> Result<bool> {
    let data: Option<i64> = conn
        .prepare_cached("DELETE FROM objects WHERE key = ?1 RETURNING data")
        .map_err(db_error)?
        .query_row(params![key], |r| r.get(0))
        .optional()
        .map_err(db_error)?;
    match data {
        Some(id) => drop_data(conn, id).map(|()| true),
        None => Ok(false),
    }
}

fn drop_data(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM object_data WHERE id = ?1")
        .map_err(db_error)?
        .execute(params![id])
        .map_err(db_error)?;
    Ok(())
}

/// Removes the file of a key if there is one (removing a file that is not there costs
/// one failed unlink, no inode).
fn remove_file(path: &std::path::Path, key: &str) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StageError::unavailable(format!(
            "object store: replacing {key}: {e}"
        ))),
    }
}

/// What a row of `key` is written with: its key, its folder, the time and the file a
/// larger object under the key would be.
struct Row {
    key: String,
    folder: String,
    at: i64,
    file: std::path::PathBuf,
}

impl LocalObjectStore {
    fn row(&self, key: &ObjectKey) -> Row {
        Row {
            key: key.as_str().to_owned(),
            folder: folder_of(key),
            at: self.clock.now().timestamp(),
            file: self.files.path_of(key),
        }
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<u8>>>> {
        self.queued.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes the row of a small object (replacing any earlier one) and removes a larger
/// object's file under the same key.
fn write_row(
    conn: &Connection,
    key: &str,
    folder: &str,
    bytes: &[u8],
    at: i64,
    file: &std::path::Path,
) -> Result<()> {
    delete_row(conn, key)?;
    conn.prepare_cached("INSERT INTO object_data (bytes) VALUES (?1)")
        .map_err(db_error)?
        .execute(params![bytes])
        .map_err(db_error)?;
    let data = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO objects (key, folder, size, data, modified_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(db_error)?
    .execute(params![key, folder, bytes.len() as i64, data, at])
    .map_err(db_error)?;
    // A larger object stored earlier under the key is replaced.
    remove_file(file, key)
}

/// A key's folder: its first two segments, or "" for a key with fewer.
fn folder_of(key: &ObjectKey) -> String {
    let s = key.as_str();
    match s.match_indices('/').nth(1) {
        Some((i, _)) => s[..i].to_owned(),
        None => String::new(),
    }
}

fn newest_change(dir: &std::path::Path) -> Option<DateTime<Utc>> {
    let mut newest: Option<DateTime<Utc>> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let modified = entry.metadata().ok()?.modified().ok()?;
        let t: DateTime<Utc> = modified.into();
        newest = Some(newest.map_or(t, |n| n.max(t)));
    }
    newest
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn put(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<()> {
        if bytes.len() > self.inline_max {
            self.files.put(key, bytes).await?;
            self.delete_row(key).await?;
            return Ok(());
        }
        let Row {
            key: k,
            folder,
            at,
            file,
        } = self.row(key);
        self.queued().remove(&k);
        self.db
            .with(move |conn| write_row(conn, &k, &folder, &bytes, at, &file))
            .await
    }

    /// Queued to commit with the next write anyone waits for (the caller's own job
    /// update at the latest); until then reads here see it from memory. A queued write
    /// that fails fails its whole group, the job update with it.
    async fn put_before_next_write(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<()> {
        if bytes.len() > self.inline_max {
            return self.put(key, bytes).await;
        }
        let Row {
            key: k,
            folder,
            at,
            file,
        } = self.row(key);
        let bytes = Arc::new(bytes);
        self.queued().insert(k.clone(), Arc::clone(&bytes));
        let (queued, written) = (Arc::clone(&self.queued), Arc::clone(&bytes));
        let key_done = k.clone();
        self.db.write_deferred(
            "an object",
            move |conn| write_row(conn, &k, &folder, &written, at, &file),
            move |_| {
                let mut queued = queued.lock().unwrap_or_else(|p| p.into_inner());
                if queued
                    .get(&key_done)
                    .is_some_and(|b| Arc::ptr_eq(b, &bytes))
                {
                    queued.remove(&key_done);
                }
            },
        );
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>> {
        if let Some(bytes) = self.queued().get(key.as_str()) {
            return Ok(Some(bytes.as_ref().clone()));
        }
        let k = key.as_str().to_owned();
        let row: Option<Vec<u8>> = self
            .db
            .with_read(move |conn| {
                conn.prepare_cached(
                    "SELECT d.bytes FROM objects o JOIN object_data d ON d.id = o.data
                      WHERE o.key = ?1",
                )
                .map_err(db_error)?
                .query_row(params![k], |r| r.get(0))
                .optional()
                .map_err(db_error)
            })
            .await?;
        match row {
            Some(bytes) => Ok(Some(bytes)),
            None => self.files.get(key).await,
        }
    }

    async fn size(&self, key: &ObjectKey) -> Result<Option<u64>> {
        if let Some(bytes) = self.queued().get(key.as_str()) {
            return Ok(Some(bytes.len() as u64));
        }
        let k = key.as_str().to_owned();
        let row: Option<i64> = self
            .db
            .with_read(move |conn| {
                conn.prepare_cached("SELECT size FROM objects WHERE key = ?1")
                    .map_err(db_error)?
                    .query_row(params![k], |r| r.get(0))
                    .optional()
                    .map_err(db_error)
            })
            .await?;
        match row {
            Some(n) => Ok(Some(n.max(0) as u64)),
            None => self.files.size(key).await,
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        // A queued write of the key commits before this delete (writes keep their order).
        self.queued().remove(key.as_str());
        self.delete_row(key).await?;
        self.files.delete(key).await
    }

    /// A row moves to its new key without its bytes being written again; a file is
    /// written under the new key.
    async fn relocate(&self, from: &ObjectKey, to: &ObjectKey, bytes: Vec<u8>) -> Result<()> {
        let f = from.as_str().to_owned();
        let Row {
            key: t,
            folder,
            at,
            file,
        } = self.row(to);
        // Queued writes of either key commit before the move (writes keep their order).
        {
            let mut queued = self.queued();
            queued.remove(from.as_str());
            queued.remove(to.as_str());
        }
        let moved = self
            .db
            .with(move |conn| {
                if f != t {
                    delete_row(conn, &t)?;
                }
                let n = conn
                    .prepare_cached(
                        "UPDATE objects SET key = ?2, folder = ?3, modified_at = ?4 WHERE key = ?1",
                    )
                    .map_err(db_error)?
                    .execute(params![f, t, folder, at])
                    .map_err(db_error)?;
                if n > 0 {
                    remove_file(&file, &t)?;
                }
                Ok(n > 0)
            })
            .await?;
        if moved {
            return Ok(());
        }
        self.put(to, bytes).await?;
        self.delete(from).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_asl::clock::SystemClock;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::parse(s).expect("valid key")
    }

    fn store(dir: &std::path::Path) -> LocalObjectStore {
        let db = SqliteJobStore::open(&dir.join("docpipe.db")).expect("db");
        LocalObjectStore::new(
            FsObjectStore::new(dir.join("objects")),
            db,
            Arc::new(SystemClock),
        )
        .with_inline_max(8)
    }

    #[tokio::test]
    async fn small_objects_are_rows_large_ones_files_and_a_key_lives_in_one_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let k = key("results/job_1/result.json");
        let file = store.files().path_of(&k);

        store.put(&k, b"small".to_vec()).await.expect("put small");
        assert!(!file.exists(), "a small object makes no file");
        assert_eq!(store.get(&k).await.expect("get"), Some(b"small".to_vec()));
        assert_eq!(store.size(&k).await.expect("size"), Some(5));

        store
            .put(&k, b"much larger".to_vec())
            .await
            .expect("put large");
        assert!(file.exists(), "a large object is a file");
        assert_eq!(
            store.get(&k).await.expect("get"),
            Some(b"much larger".to_vec())
        );
        assert_eq!(store.size(&k).await.expect("size"), Some(11));

        store
            .put(&k, b"tiny".to_vec())
            .await
            .expect("put small again");
        assert!(!file.exists(), "the larger copy is gone");
        assert_eq!(store.get(&k).await.expect("get"), Some(b"tiny".to_vec()));

        store.delete(&k).await.expect("delete");
        assert_eq!(store.get(&k).await.expect("get"), None);
        assert_eq!(store.size(&k).await.expect("size"), None);
        store
            .delete(&k)
            .await
            .expect("deleting what is gone is no error");
    }

    #[tokio::test]
    async fn an_object_moves_to_another_key_whole_and_only_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let (upload, document) = (key("uploads/job_1/a.pdf"), key("documents/job_1/a.pdf"));
        store.put(&upload, b"%PDF-1".to_vec()).await.expect("put");
        store
            .relocate(&upload, &document, b"%PDF-1".to_vec())
            .await
            .expect("moved");
        assert_eq!(store.get(&upload).await.expect("get"), None);
        assert_eq!(
            store.get(&document).await.expect("get"),
            Some(b"%PDF-1".to_vec())
        );
        let names: Vec<String> = store
            .folders()
            .await
            .expect("folders")
            .into_iter()
            .map(|f| format!("{}/{}", f.prefix, f.name))
            .collect();
        assert_eq!(
            names,
            ["documents/job_1"],
            "the upload's folder went with it"
        );

        // A large object (a file) is written under its new key.
        let (big, moved) = (key("uploads/job_2/b.pdf"), key("documents/job_2/b.pdf"));
        store.put(&big, b"a large one".to_vec()).await.expect("put");
        store
            .relocate(&big, &moved, b"a large one".to_vec())
            .await
            .expect("moved");
        assert!(store.files().path_of(&moved).exists());
        assert_eq!(store.get(&big).await.expect("get"), None);
        assert_eq!(
            store.get(&moved).await.expect("get"),
            Some(b"a large one".to_vec())
        );
    }

    #[tokio::test]
    async fn an_object_queued_for_the_next_write_is_read_at_once_and_stored_with_that_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let (queued, other) = (key("ocr/job_1/document.json"), key("ocr/job_2/d.json"));
        store
            .put_before_next_write(&queued, b"text".to_vec())
            .await
            .expect("queued");
        assert_eq!(
            store.get(&queued).await.expect("get"),
            Some(b"text".to_vec())
        );
        assert_eq!(store.size(&queued).await.expect("size"), Some(4));
        // Another process sees it only once a write someone waits for has committed.
        let elsewhere = SqliteJobStore::open(&dir.path().join("docpipe.db")).expect("db");
        let committed = |db: SqliteJobStore| async move {
            db.with_read(|conn| {
                conn.query_row("SELECT COUNT(*) FROM objects", [], |r| r.get::<_, i64>(0))
                    .map_err(db_error)
            })
            .await
            .expect("count")
        };
        assert_eq!(committed(elsewhere.clone()).await, 0);
        store.put(&other, b"x".to_vec()).await.expect("put");
        assert_eq!(committed(elsewhere).await, 2);
        assert_eq!(
            store.get(&queued).await.expect("get"),
            Some(b"text".to_vec())
        );
    }

    #[tokio::test]
    async fn a_queued_write_that_fails_fails_the_writes_committed_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let heard = Arc::new(std::sync::Mutex::new(None));
        let h = Arc::clone(&heard);
        store.db.write_deferred(
            "a write that fails",
            |_| Err::<(), _>("no room left"),
            move |committed| *h.lock().expect("lock") = Some(committed),
        );
        let k = key("results/job_1/result.json");
        let err = store
            .put(&k, b"{}".to_vec())
            .await
            .expect_err("fails with the queued write");
        assert!(err.message.contains("no room left"), "{err:?}");
        assert_eq!(*heard.lock().expect("lock"), Some(false));
        assert_eq!(store.get(&k).await.expect("get"), None);
        // The next write stands on its own.
        store.put(&k, b"{}".to_vec()).await.expect("put");
        assert_eq!(store.get(&k).await.expect("get"), Some(b"{}".to_vec()));
    }

    #[tokio::test]
    async fn folders_are_listed_and_deleted_across_both_tiers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        store
            .put(&key("results/job_1/a.json"), b"a".to_vec())
            .await
            .expect("put");
        store
            .put(&key("results/job_1/big.json"), b"a large one".to_vec())
            .await
            .expect("put");
        store
            .put(&key("ocr/job_2/document.json"), b"b".to_vec())
            .await
            .expect("put");
        let names: Vec<String> = store
            .folders()
            .await
            .expect("folders")
            .into_iter()
            .map(|f| format!("{}/{}", f.prefix, f.name))
            .collect();
        assert_eq!(names, ["ocr/job_2", "results/job_1"]);
        store
            .delete_folder("results", "job_1")
            .await
            .expect("delete folder");
        assert_eq!(
            store.get(&key("results/job_1/a.json")).await.expect("get"),
            None
        );
        assert_eq!(
            store
                .get(&key("results/job_1/big.json"))
                .await
                .expect("get"),
            None
        );
        assert_eq!(
            store
                .get(&key("ocr/job_2/document.json"))
                .await
                .expect("get"),
            Some(b"b".to_vec())
        );
        assert_eq!(store.folders().await.expect("folders").len(), 1);
    }
}
