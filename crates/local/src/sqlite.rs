//! The SQLite job store: WAL, embedded migrations, and status transitions checked against
//! the table inside one write transaction, so two writers can never both move a job out of
//! the same status.
//!
//! Writes are committed in groups: each write runs in a savepoint of its own, and every
//! write that arrives while a commit is in progress goes into the next transaction
//! (`BEGIN IMMEDIATE` ... `COMMIT`), whose caller answers all of them once it committed.
//! A write that fails rolls back its savepoint alone; a commit that fails fails every
//! write of its group. Nobody hears of a write before its transaction committed.

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use docpipe_asl::ExecutionStatus;
use docpipe_core::execution::ExecutionLog;
use docpipe_core::job::StatusChange;
use docpipe_core::ports::Result;
use docpipe_core::{
    ErrorCode, Job, JobFilter, JobId, JobPage, JobPatch, JobStatus, JobStore, StageError,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_jobs.sql"),
    include_str!("../migrations/0002_executions.sql"),
    include_str!("../migrations/0004_api.sql"),
    include_str!("../migrations/0003_journal.sql"),
    include_str!("../migrations/0005_result_cache.sql"),
    include_str!("../migrations/0006_operator_changes.sql"),
    include_str!("../migrations/0007_events.sql"),
    include_str!("../migrations/0008_key_document_policy.sql"),
    include_str!("../migrations/0009_objects.sql"),
];

/// Read-only connections per file database.
const READERS: usize = 4;

/// Page size bounds for [`JobStore::list`].
const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

/// A write waiting for the next group: runs in its savepoint and returns what tells its
/// caller the outcome once the group's commit did (or did not) happen, and, for a queued
/// write nobody waits for, its failure (which fails the whole group: see
/// [`SqliteJobStore::write_deferred`]).
type Write = Box<dyn FnOnce(&mut Connection) -> (Answer, Option<String>) + Send>;
/// Tells a write's caller its outcome; the argument is the group commit's failure.
type Answer = Box<dyn FnOnce(Option<&StageError>) + Send>;

/// Most writes committed in one transaction.
const MAX_GROUP: usize = 256;

/// A job store in one SQLite file.
#[derive(Clone)]
pub struct SqliteJobStore {
    conn: Arc<Mutex<Connection>>,
    /// Writes waiting for the writer connection (see the module's notes).
    pending: Arc<Mutex<Vec<Write>>>,
    /// Read-only connections, so reads run in parallel with each other and with the
    /// writer (WAL). Empty for an in-memory database, which reads through `conn`.
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
    /// The change watcher, for [`JobStore::change_token`]; `None` in memory.
    watch: Option<Arc<Watch>>,
}

/// A connection that only ever asks `PRAGMA data_version`, for [`JobStore::change_token`].
///
/// SQLite changes a connection's `data_version` whenever another connection, of this
/// process or any other, commits; a connection's own commits leave it alone, which is
/// why this one never writes (and is read-only). Asking is one cached statement: a read
/// transaction on the WAL index that SQLite itself manages, so nothing here touches the
/// database's files behind its back (closing a descriptor of `<db>-shm` that SQLite does
/// not know about drops every POSIX lock this process holds on it, and the next process
/// to open the database then resets the shared memory under SQLite's mapping).
pub(crate) struct Watch {
    conn: Mutex<Connection>,
}

impl Watch {
    fn open(db: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_error)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(db_error)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The current `data_version`, or `None` when it cannot be read (then nothing may be
    /// taken as unchanged).
    fn token(&self) -> Option<docpipe_core::ChangeToken> {
        let conn = lock(&self.conn);
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .ok()?
            .query_row([], |r| r.get(0))
            .ok()?;
        let mut token = [0u8; 48];
        token[..8].copy_from_slice(&version.to_le_bytes());
        Some(docpipe_core::ChangeToken(token))
    }
}

impl SqliteJobStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self> {
        // Private from the start: SQLite gives the log and the shared memory the
        // database file's mode.
        let private = |e: std::io::Error| {
            StageError::unavailable(format!("making {} private: {e}", path.display()))
        };
        crate::private_files::create_new(path).map_err(private)?;
        crate::private_files::make_private(path).map_err(private)?;
        let conn = Connection::open(path).map_err(db_error)?;
        let mut store = Self::init(conn)?;
        let mut readers = Vec::new();
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(db_error)?;
            r.busy_timeout(Duration::from_secs(5)).map_err(db_error)?;
            // Plans must not depend on bound values: otherwise binding a new job id expires
            // a cached statement and every read pays for parsing and planning it again.
            r.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
                true,
            )
            .map_err(db_error)?;
            readers.push(Mutex::new(r));
        }
        store.readers = Arc::new(readers);
        store.watch = Some(Arc::new(Watch::open(path)?));
        Ok(store)
    }

    /// A private in-memory database, for tests and one-shot runs.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(db_error)?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(db_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_error)?;
        // Checkpoint the log every 32 MiB rather than SQLite's 4 MiB: a job's row and the
        // index pages it touches are rewritten at every status change, and a page changed
        // many times between checkpoints is copied into the database (and synced) once.
        conn.pragma_update(None, "wal_autocheckpoint", 8192)
            .map_err(db_error)?;
        // As on the readers: a cached statement's plan must not depend on bound values.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(db_error)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            pending: Arc::new(Mutex::new(Vec::new())),
            readers: Arc::new(Vec::new()),
            next_reader: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            watch: None,
        })
    }

    /// Runs a read-only `f` on a reader connection (or the writer for in-memory stores).
    pub(crate) async fn with_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.readers.is_empty() {
            return self.with(f).await;
        }
        let readers = Arc::clone(&self.readers);
        let start = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // An indexed point read takes microseconds: with a reader free, run it right here
        // rather than paying for a hop to the blocking pool and back.
        let n = readers.len();
        for i in 0..n {
            if let Ok(mut guard) = readers[(start + i) % n].try_lock() {
                return f(&mut guard);
            }
        }
        tokio::task::spawn_blocking(move || {
            let n = readers.len();
            // Take the first free reader, starting at a rotating index; wait on one if all
            // are busy.
            for i in 0..n {
                if let Ok(mut guard) = readers[(start + i) % n].try_lock() {
                    return f(&mut guard);
                }
            }
            let mut guard = lock(&readers[start % n]);
            f(&mut guard)
        })
        .await
        .map_err(|e| StageError::internal(format!("job store task: {e}")))?
    }

    /// Runs the write `f` on the writer connection, from a thread that may block (see
    /// the module's notes on groups). `f`'s error rolls back what it wrote; `failed`
    /// turns the store's own errors into `f`'s.
    pub(crate) fn write_blocking<T: Send + 'static, E: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> std::result::Result<T, E> + Send + 'static,
        failed: fn(StageError) -> E,
    ) -> std::result::Result<T, E> {
        let answer = self.queue(f, failed);
        self.wait(&answer, failed)
    }

    /// Queues the write `f`; its outcome arrives on the receiver once its group committed.
    fn queue<T: Send + 'static, E: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> std::result::Result<T, E> + Send + 'static,
        failed: fn(StageError) -> E,
    ) -> Receiver<std::result::Result<T, E>> {
        let (reply, answer) = std::sync::mpsc::sync_channel::<std::result::Result<T, E>>(1);
        let write: Write = Box::new(move |conn| {
            let outcome = in_savepoint(conn, f, failed);
            let answer: Answer = Box::new(move |commit_failed| {
                let outcome = match (outcome, commit_failed) {
                    (Ok(_), Some(e)) => Err(failed(e.clone())),
                    (outcome, _) => outcome,
                };
                let _ = reply.send(outcome);
            });
            (answer, None)
        });
        lock(&self.pending).push(write);
        answer
    }

    /// Waits for a queued write's outcome, committing pending groups when this thread
    /// gets the connection first.
    fn wait<T, E>(
        &self,
        answer: &Receiver<std::result::Result<T, E>>,
        failed: fn(StageError) -> E,
    ) -> std::result::Result<T, E> {
        // Whoever holds the connection commits what is pending before letting go of it, so
        // with the lock in hand either an earlier group answered this write or it is still
        // pending and this thread commits it, with whatever else is waiting.
        let conn = lock(&self.conn);
        if let Some(outcome) = self.lead(conn, answer) {
            return outcome;
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(failed(StageError::internal("job store write was lost"))))
    }

    /// With the connection in hand: commits pending groups until `answer` has its outcome
    /// (or nothing is pending).
    fn lead<T, E>(
        &self,
        mut conn: MutexGuard<'_, Connection>,
        answer: &Receiver<std::result::Result<T, E>>,
    ) -> Option<std::result::Result<T, E>> {
        loop {
            if let Ok(outcome) = answer.try_recv() {
                return Some(outcome);
            }
            let group: Vec<Write> = {
                let mut pending = lock(&self.pending);
                let n = pending.len().min(MAX_GROUP);
                pending.drain(..n).collect()
            };
            if group.is_empty() {
                return None;
            }
            commit_group(&mut conn, group);
        }
    }

    /// Queues the write `f` for the next group without waiting for it: it commits with
    /// (or before) the next write anyone waits for, in the order writes were queued, and
    /// `done` hears whether it did. If it fails, its whole group is rolled back and every
    /// write in it fails, so a write queued before another can never be lost while the
    /// later one stands (an object and the job row that names it, an event and the
    /// status change after it).
    pub(crate) fn write_deferred<E: std::fmt::Display + Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Connection) -> std::result::Result<(), E> + Send + 'static,
        done: impl FnOnce(bool) + Send + 'static,
    ) {
        let write: Write = Box::new(move |conn| {
            let failure = in_savepoint(
                conn,
                move |conn| f(conn).map_err(|e| e.to_string()),
                |e| e.to_string(),
            )
            .err()
            .map(|e| format!("{what}: {e}"));
            let answer: Answer = Box::new(move |commit_failed| {
                if let Some(e) = commit_failed {
                    tracing::error!(error = %e, "{what} was not stored");
                }
                done(commit_failed.is_none());
            });
            (answer, failure)
        });
        lock(&self.pending).push(write);
    }

    /// Runs the write `f` on the writer connection on the blocking pool (committed with
    /// whatever other writes wait at the time; see the module's notes).
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let answer = self.queue(f, |e| e);
        // The connection free: commit right here (a write takes tens of microseconds),
        // rather than paying for a hop to the blocking pool and back.
        if let Ok(conn) = self.conn.try_lock()
            && let Some(outcome) = self.lead(conn, &answer)
        {
            return outcome;
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.wait(&answer, |e| e))
            .await
            .map_err(|e| StageError::internal(format!("job store task: {e}")))?
    }
}

/// Runs `f` in a savepoint: released when `f` succeeds, rolled back when it fails or
/// panics.
fn in_savepoint<T, E>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> std::result::Result<T, E>,
    failed: fn(StageError) -> E,
) -> std::result::Result<T, E> {
    conn.execute_batch("SAVEPOINT store_write")
        .map_err(|e| failed(db_error(e)))?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(failed(StageError::internal("a job store write panicked"))));
    let end = match outcome {
        Ok(_) => "RELEASE store_write",
        Err(_) => "ROLLBACK TO store_write; RELEASE store_write",
    };
    conn.execute_batch(end).map_err(|e| failed(db_error(e)))?;
    outcome
}

/// Commits a group of writes in one transaction and answers each. If the transaction
/// cannot begin (another process holds the write lock past the busy timeout), each write
/// runs in a transaction of its own.
fn commit_group(conn: &mut Connection, group: Vec<Write>) {
    let began = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
    let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
    let mut queued_failure = None;
    for write in group {
        let (answer, failure) = write(conn);
        answers.push(answer);
        if queued_failure.is_none() {
            queued_failure = failure;
        }
    }
    let committed = match (began, queued_failure) {
        (true, None) => {
            let committed = conn.execute_batch("COMMIT").map_err(db_error);
            if committed.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            committed
        }
        (true, Some(e)) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(StageError::unavailable(format!(
                "a queued write failed, and with it the writes committed with it: {e}"
            )))
        }
        // Each write was a transaction of its own.
        (false, Some(e)) => {
            tracing::error!(error = %e, "a queued write was not stored");
            Ok(())
        }
        (false, None) => Ok(()),
    };
    for answer in answers {
        answer(committed.as_ref().err());
    }
}

fn lock<T>(conn: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite itself consistent (the transaction
    // rolls back on drop), so the poisoned guard is safe to reuse.
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        // The version is read inside the write transaction, so two processes opening a
        // new database at once never both apply the same migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let done: usize = tx
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(db_error)? as usize;
        if done > i {
            continue;
        }
        tx.execute_batch(sql).map_err(db_error)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
    }
    Ok(())
}

pub(crate) fn db_error(e: rusqlite::Error) -> StageError {
    match e {
        rusqlite::Error::SqliteFailure(ref f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StageError::unavailable(format!("job store busy: {e}"))
        }
        _ => StageError::internal(format!("job store: {e}")),
    }
}

pub(crate) fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn not_found(id: &JobId) -> StageError {
    StageError::new(ErrorCode::JobNotFound, format!("no job {id}"))
}

fn load(conn: &Connection, id: &JobId) -> Result<Job> {
    // Cached statements: the hot read paths (every API request) skip SQL parsing.
    let data: Option<String> = conn
        .prepare_cached("SELECT data FROM jobs WHERE id = ?1")
        .map_err(db_error)?
        .query_row(params![id.as_str()], |r| r.get(0))
        .optional()
        .map_err(db_error)?;
    let data = data.ok_or_else(|| not_found(id))?;
    decode(&data)
}

fn load_history(conn: &Connection, id: &JobId) -> Result<Vec<StatusChange>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT status, at, operator FROM job_history WHERE job_id = ?1 ORDER BY seq",
        )
        .map_err(db_error)?;
    let mut rows = stmt.query(params![id.as_str()]).map_err(db_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        out.extend(history_row(row, 0)?);
    }
    Ok(out)
}

fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str> {
    row.get_ref(i)
        .map_err(db_error)?
        .as_str()
        .map_err(|e| StageError::internal(format!("stored column {i}: {e}")))
}

/// A status change from columns `i` (status), `i + 1` (time) and `i + 2` (the operator's
/// part); `None` when they are NULL (a job without history rows in a LEFT JOIN).
fn history_row(row: &rusqlite::Row<'_>, i: usize) -> Result<Option<StatusChange>> {
    if row.get_ref(i).map_err(db_error)? == rusqlite::types::ValueRef::Null {
        return Ok(None);
    }
    let status = text(row, i)?;
    let status = JobStatus::parse(status)
        .ok_or_else(|| StageError::internal(format!("stored status {status:?}")))?;
    let at = text(row, i + 1)?;
    let at = DateTime::parse_from_rfc3339(at)
        .map_err(|e| StageError::internal(format!("stored time {at:?}: {e}")))?
        .with_timezone(&Utc);
    let operator = match row.get_ref(i + 2).map_err(db_error)? {
        rusqlite::types::ValueRef::Null => None,
        _ => Some(
            serde_json::from_str(text(row, i + 2)?)
                .map_err(|e| StageError::internal(format!("stored operator change: {e}")))?,
        ),
    };
    Ok(Some(StatusChange {
        status,
        at,
        operator,
    }))
}

fn decode(data: &str) -> Result<Job> {
    serde_json::from_str(data).map_err(|e| StageError::internal(format!("stored job: {e}")))
}

fn save(conn: &Connection, job: &Job) -> Result<()> {
    let data = serde_json::to_string(job).map_err(|e| StageError::internal(format!("job: {e}")))?;
    conn.prepare_cached("UPDATE jobs SET status = ?2, updated_at = ?3, data = ?4 WHERE id = ?1")
        .and_then(|mut st| {
            st.execute(params![
                job.id.as_str(),
                job.status.as_str(),
                ts(job.updated_at),
                data
            ])
        })
        .map_err(db_error)?;
    Ok(())
}

fn record(conn: &Connection, id: &JobId, change: &StatusChange) -> Result<()> {
    let operator = change
        .operator
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StageError::internal(format!("operator change: {e}")))?;
    conn.prepare_cached("INSERT INTO job_history (job_id, seq, status, at, operator)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_history WHERE job_id = ?1), ?2, ?3, ?4)")
        .and_then(|mut st| st.execute(params![id.as_str(), change.status.as_str(), ts(change.at), operator]))
    .map_err(db_error)?;
    Ok(())
}

impl SqliteJobStore {
    /// See [`Watch`].
    pub(crate) fn watch_token(&self) -> Option<docpipe_core::ChangeToken> {
        self.watch.as_ref()?.token()
    }
}

#[async_trait]
impl JobStore for SqliteJobStore {
    fn change_token(&self) -> Option<docpipe_core::ChangeToken> {
        self.watch_token()
    }

    async fn create(&self, job: &Job) -> Result<()> {
        let job = job.clone();
        self.with(move |conn| {
            let tx = conn
                .savepoint()
                .map_err(db_error)?;
            let data = serde_json::to_string(&job)
                .map_err(|e| StageError::internal(format!("job: {e}")))?;
            let inserted = tx
                .prepare_cached("INSERT OR IGNORE INTO jobs (id, status, kind, owner, created_at, updated_at, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                    .and_then(|mut st| st.execute(params![
                        job.id.as_str(),
                        job.status.as_str(),
                        job.kind.as_str(),
                        job.owner,
                        ts(job.created_at),
                        ts(job.updated_at),
                        data
                    ]))
                .map_err(db_error)?;
            if inserted == 0 {
                return Err(StageError::new(
                    ErrorCode::ValidationError,
                    format!("job {} already exists", job.id),
                ));
            }
            record(&tx, &job.id, &StatusChange::new(job.status, job.created_at))?;
            crate::outbox::append(&tx, &job, None, job.created_at)?;
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn get(&self, id: &JobId) -> Result<Job> {
        let id = id.clone();
        self.with_read(move |conn| load(conn, &id)).await
    }

    async fn transition(
        &self,
        id: &JobId,
        to: JobStatus,
        patch: JobPatch,
        at: DateTime<Utc>,
    ) -> Result<Job> {
        let id = id.clone();
        self.with(move |conn| {
            let tx = conn.savepoint().map_err(db_error)?;
            let mut job = load(&tx, &id)?;
            job.status.check_move(to, patch.actor())?;
            let previous = job.status;
            let changed = previous != to;
            patch.apply(&mut job);
            job.status = to;
            job.updated_at = at;
            save(&tx, &job)?;
            if changed {
                record(&tx, &id, &patch.status_change(to, at))?;
                // The change's event, in the same transaction: both or neither.
                crate::outbox::append(&tx, &job, Some(previous), at)?;
            }
            tx.commit().map_err(db_error)?;
            Ok(job)
        })
        .await
    }

    async fn update(&self, id: &JobId, patch: JobPatch, at: DateTime<Utc>) -> Result<Job> {
        let id = id.clone();
        self.with(move |conn| {
            let tx = conn.savepoint().map_err(db_error)?;
            let mut job = load(&tx, &id)?;
            patch.apply(&mut job);
            job.updated_at = at;
            save(&tx, &job)?;
            tx.commit().map_err(db_error)?;
            Ok(job)
        })
        .await
    }

    async fn history(&self, id: &JobId) -> Result<Vec<StatusChange>> {
        let id = id.clone();
        self.with_read(move |conn| {
            let exists: Option<i64> = conn
                .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")
                .map_err(db_error)?
                .query_row(params![id.as_str()], |r| r.get(0))
                .optional()
                .map_err(db_error)?;
            if exists.is_none() {
                return Err(not_found(&id));
            }
            load_history(conn, &id)
        })
        .await
    }

    async fn get_with_history(&self, id: &JobId) -> Result<(Job, Vec<StatusChange>)> {
        let id = id.clone();
        self.with_read(move |conn| {
            // One statement, so the job and its history come from one snapshot.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT j.data, h.status, h.at, h.operator FROM jobs j \
                     LEFT JOIN job_history h ON h.job_id = j.id \
                     WHERE j.id = ?1 ORDER BY h.seq",
                )
                .map_err(db_error)?;
            let mut rows = stmt.query(params![id.as_str()]).map_err(db_error)?;
            let mut job = None;
            let mut history = Vec::new();
            while let Some(row) = rows.next().map_err(db_error)? {
                if job.is_none() {
                    job = Some(decode(text(row, 0)?)?);
                }
                if let Some(change) = history_row(row, 1)? {
                    history.push(change);
                }
            }
            let job = job.ok_or_else(|| not_found(&id))?;
            Ok((job, history))
        })
        .await
    }

    async fn list(&self, filter: &JobFilter) -> Result<JobPage> {
        let filter = filter.clone();
        self.with_read(move |conn| {
            let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
            let cursor = filter.cursor.as_deref().map(parse_cursor).transpose()?;
            let mut sql = String::from("SELECT data FROM jobs WHERE 1 = 1");
            let mut args: Vec<String> = Vec::new();
            if let Some(s) = filter.status {
                args.push(s.as_str().to_owned());
                sql.push_str(&format!(" AND status = ?{}", args.len()));
            }
            if let Some(k) = filter.kind {
                args.push(k.as_str().to_owned());
                sql.push_str(&format!(" AND kind = ?{}", args.len()));
            }
            if let Some(o) = &filter.owner {
                args.push(o.clone());
                sql.push_str(&format!(" AND owner = ?{}", args.len()));
            }
            if let Some((created, id)) = cursor {
                args.push(created);
                args.push(id);
                sql.push_str(&format!(
                    " AND (created_at, id) < (?{}, ?{})",
                    args.len() - 1,
                    args.len()
                ));
            }
            sql.push_str(&format!(
                " ORDER BY created_at DESC, id DESC LIMIT {}",
                limit + 1
            ));
            let mut stmt = conn.prepare(&sql).map_err(db_error)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    r.get::<_, String>(0)
                })
                .map_err(db_error)?;
            let mut jobs = Vec::new();
            for row in rows {
                jobs.push(decode(&row.map_err(db_error)?)?);
            }
            let next_cursor = if jobs.len() > limit as usize {
                jobs.truncate(limit as usize);
                jobs.last()
                    .map(|j| format!("{}|{}", ts(j.created_at), j.id))
            } else {
                None
            };
            Ok(JobPage { jobs, next_cursor })
        })
        .await
    }
}

pub use docpipe_core::execution::{ExecutionRecord, ExecutionState};

/// How the interpreter's ending of an execution is recorded.
pub fn execution_state(status: ExecutionStatus) -> ExecutionState {
    match status {
        ExecutionStatus::Succeeded => ExecutionState::Succeeded,
        ExecutionStatus::Failed => ExecutionState::Failed,
        ExecutionStatus::TimedOut => ExecutionState::TimedOut,
        ExecutionStatus::Aborted => ExecutionState::Aborted,
    }
}

impl SqliteJobStore {
    /// Inserts or replaces an execution record.
    pub async fn put_execution(&self, rec: &ExecutionRecord) -> Result<()> {
        let rec = rec.clone();
        self.with(move |conn| put_execution_row(conn, &rec)).await
    }

    /// Queues the execution record to commit with the next write anyone waits for (see
    /// [`SqliteJobStore::write_deferred`]): a new execution's record, which its journal's
    /// `Started` record follows at once.
    pub fn queue_execution(&self, rec: &ExecutionRecord) {
        let rec = rec.clone();
        self.write_deferred(
            "an execution record",
            move |conn| put_execution_row(conn, &rec),
            |_| {},
        );
    }

    /// The execution of that name, if any.
    pub async fn execution(&self, name: &str) -> Result<Option<ExecutionRecord>> {
        let name = name.to_owned();
        self.with_read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!("{EXECUTION_COLUMNS} WHERE name = ?1"))
                .map_err(db_error)?;
            let mut rows = stmt.query(params![name]).map_err(db_error)?;
            rows.next()
                .map_err(db_error)?
                .map(execution_row)
                .transpose()
        })
        .await
    }
}

impl SqliteJobStore {
    /// Executions recorded as running: after a crash, some of them may have ended.
    pub async fn running_executions(&self) -> Result<Vec<ExecutionRecord>> {
        self.with_read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "{EXECUTION_COLUMNS} WHERE status = 'RUNNING' ORDER BY started_at, name"
                ))
                .map_err(db_error)?;
            let mut rows = stmt.query([]).map_err(db_error)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(db_error)? {
                out.push(execution_row(row)?);
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl ExecutionLog for SqliteJobStore {
    async fn executions(&self, job: &Job) -> Result<Vec<ExecutionRecord>> {
        let id = job.id.clone();
        self.with_read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "{EXECUTION_COLUMNS} WHERE job_id = ?1 ORDER BY started_at, name"
                ))
                .map_err(db_error)?;
            let mut rows = stmt.query(params![id.as_str()]).map_err(db_error)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(db_error)? {
                out.push(execution_row(row)?);
            }
            Ok(out)
        })
        .await
    }
}

const EXECUTION_COLUMNS: &str = "SELECT name, job_id, status, started_at, stopped_at, input, \
     output, error, cause, history FROM executions";

/// An execution from a row of [`EXECUTION_COLUMNS`].
fn execution_row(r: &rusqlite::Row<'_>) -> Result<ExecutionRecord> {
    let opt = |i: usize| -> Result<Option<&str>> {
        match r.get_ref(i).map_err(db_error)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            _ => text(r, i).map(Some),
        }
    };
    let time = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StageError::internal(format!("stored time {t:?}: {e}")))
    };
    let json = |t: &str| {
        serde_json::from_str::<Value>(t)
            .map_err(|e| StageError::internal(format!("stored execution: {e}")))
    };
    let status = text(r, 2)?;
    Ok(ExecutionRecord {
        name: text(r, 0)?.to_owned(),
        job_id: opt(1)?.map(JobId::parse).transpose()?,
        status: ExecutionState::parse(status)
            .ok_or_else(|| StageError::internal(format!("stored execution status {status:?}")))?,
        started_at: time(text(r, 3)?)?,
        stopped_at: opt(4)?.map(time).transpose()?,
        input: json(text(r, 5)?)?,
        output: opt(6)?.map(json).transpose()?,
        error: opt(7)?.map(str::to_owned),
        cause: opt(8)?.map(str::to_owned),
        history: json(text(r, 9)?)?,
    })
}

fn parse_cursor(c: &str) -> Result<(String, String)> {
    let bad = || StageError::new(ErrorCode::ValidationError, format!("invalid cursor {c:?}"));
    let (created, id) = c.split_once('|').ok_or_else(bad)?;
    DateTime::parse_from_rfc3339(created).map_err(|_| bad())?;
    JobId::parse(id).map_err(|_| bad())?;
    Ok((created.to_owned(), id.to_owned()))
}

fn put_execution_row(conn: &Connection, rec: &ExecutionRecord) -> Result<()> {
    let json = |v: &Value| v.to_string();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO executions
         (name, job_id, status, started_at, stopped_at, input, output, error, cause, history)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut st| {
        st.execute(params![
            rec.name,
            rec.job_id.as_ref().map(JobId::as_str),
            rec.status.as_str(),
            ts(rec.started_at),
            rec.stopped_at.map(ts),
            json(&rec.input),
            rec.output.as_ref().map(json),
            rec.error,
            rec.cause,
            json(&rec.history),
        ])
    })
    .map_err(db_error)?;
    Ok(())
}
