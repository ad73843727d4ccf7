//! The SQLite implementation of docpipe-asl's [`Journal`]: the durable runner's records in
//! the job database (tables of `migrations/0003_journal.sql`).
//!
//! Appends are writes of the job store, committed in groups with its other writes: every
//! append that arrives while a commit is in progress goes into the next transaction (a
//! savepoint each, so a duplicate execution name fails only its own append). An append
//! returns once its transaction committed (WAL, `synchronous=NORMAL`: durable across a
//! process crash; a power loss may lose the last commits).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use docpipe_asl::journal::{Journal, JournalError, JournalRecord};
use rusqlite::{Connection, OptionalExtension, params};

use crate::sqlite::SqliteJobStore;

/// A journal in the SQLite database at a path.
pub struct SqliteJournal {
    path: PathBuf,
    /// Whose writer connection commits the appends, and reads them back.
    store: SqliteJobStore,
}

fn storage(e: impl std::fmt::Display) -> JournalError {
    JournalError::Storage(e.to_string())
}

fn connect(path: &Path) -> Result<Connection, JournalError> {
    let conn = Connection::open(path).map_err(storage)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(storage)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(storage)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(storage)?;
    Ok(conn)
}

impl SqliteJournal {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        // Opening the job store runs the migrations, the journal's included.
        let store = SqliteJobStore::open(path).map_err(|e| JournalError::Storage(e.to_string()))?;
        Self::over(store, path)
    }

    /// A journal in `store`'s database, written through the store's own writer
    /// connection: the job store and the journal never contend for SQLite's write lock
    /// (which a second connection waits out by sleeping and polling), and each group of
    /// appends is one transaction.
    pub fn over(store: SqliteJobStore, path: &Path) -> Result<Self, JournalError> {
        Ok(Self {
            path: path.to_path_buf(),
            store,
        })
    }

    /// The records of the execution `name` if it is unfinished (as one entry of
    /// [`Journal::unfinished`]); `None` if it never started or has finished.
    pub async fn unfinished_execution(
        &self,
        name: &str,
    ) -> Result<Option<Vec<JournalRecord>>, JournalError> {
        self.records(name, true).await
    }

    /// Every record of the execution `name`, finished or not; `None` if it has none
    /// (never started, or pruned).
    pub async fn execution_log(
        &self,
        name: &str,
    ) -> Result<Option<Vec<JournalRecord>>, JournalError> {
        self.records(name, false).await
    }

    async fn records(
        &self,
        name: &str,
        unfinished_only: bool,
    ) -> Result<Option<Vec<JournalRecord>>, JournalError> {
        let name = name.to_owned();
        let rows = self
            .store
            .with_read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT r.record FROM asl_journal_records r
                           JOIN asl_journal_executions e ON e.name = r.name
                          WHERE e.name = ?1 AND (e.finished = 0 OR ?2 = 0)
                          ORDER BY r.seq",
                    )
                    .map_err(crate::sqlite::db_error)?;
                let rows = stmt
                    .query_map(params![name, unfinished_only], |row| {
                        row.get::<_, String>(0)
                    })
                    .map_err(crate::sqlite::db_error)?;
                rows.collect::<Result<Vec<String>, _>>()
                    .map_err(crate::sqlite::db_error)
            })
            .await
            .map_err(|e| JournalError::Storage(e.to_string()))?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.iter()
            .map(|body| {
                serde_json::from_str(body).map_err(|e| JournalError::Corrupt(e.to_string()))
            })
            .collect::<Result<Vec<JournalRecord>, _>>()
            .map(Some)
    }

    /// Deletes the records of finished executions (their outcome lives elsewhere).
    pub fn prune_finished(&self) -> Result<usize, JournalError> {
        self.store.write_blocking(
            |conn| {
                let n = conn
                    .execute(
                        "DELETE FROM asl_journal_records WHERE name IN
                           (SELECT name FROM asl_journal_executions WHERE finished = 1)",
                        [],
                    )
                    .map_err(storage)?;
                conn.execute("DELETE FROM asl_journal_executions WHERE finished = 1", [])
                    .map_err(storage)?;
                Ok(n)
            },
            storage,
        )
    }
}

fn append_one(conn: &Connection, records: &[JournalRecord]) -> Result<(), JournalError> {
    for r in records {
        let name = r.execution();
        let body = serde_json::to_string(r).map_err(storage)?;
        let seq: i64 = match r {
            JournalRecord::Started { .. } => {
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO asl_journal_executions (name, records) VALUES (?1, 1)
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .and_then(|mut st| st.execute(params![name]))
                    .map_err(storage)?;
                if inserted == 0 {
                    return Err(JournalError::AlreadyExists(name.to_owned()));
                }
                0
            }
            _ => conn
                .prepare_cached(
                    "UPDATE asl_journal_executions
                        SET records = records + 1,
                            finished = finished OR ?2
                      WHERE name = ?1
                  RETURNING records - 1",
                )
                .and_then(|mut st| {
                    st.query_row(
                        params![name, matches!(r, JournalRecord::Finished { .. })],
                        |row| row.get(0),
                    )
                })
                .optional()
                .map_err(storage)?
                .ok_or_else(|| {
                    JournalError::Corrupt(format!("{name}: a record before its Started record"))
                })?,
        };
        conn.prepare_cached(
            "INSERT INTO asl_journal_records (name, seq, record) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut st| st.execute(params![name, seq, body]))
        .map_err(storage)?;
    }
    Ok(())
}

#[async_trait]
impl Journal for SqliteJournal {
    async fn append(&self, records: Vec<JournalRecord>) -> Result<(), JournalError> {
        // Wait for the writer on the blocking pool, not on a bare channel: tokio counts a
        // running blocking task as work, so a paused (virtual) clock does not jump ahead
        // while a journal write is in flight.
        // An event alone (a task's result, a timer) is queued, not waited for: it commits
        // with the next write anyone waits for, at the latest the next stage's first
        // status change or the execution's `Finished` record. A crash before that loses
        // only the event, and the resumed execution repeats the step (stages are
        // idempotent). A new execution and its end are committed before this returns.
        if records
            .iter()
            .all(|r| matches!(r, JournalRecord::Event { .. }))
        {
            self.store.write_deferred(
                "an execution journal event",
                move |conn| append_one(conn, &records),
                |_| {},
            );
            return Ok(());
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            store.write_blocking(move |conn| append_one(conn, &records), storage)
        })
        .await
        .map_err(|e| JournalError::Storage(format!("journal task: {e}")))?
    }

    async fn unfinished(&self) -> Result<Vec<Vec<JournalRecord>>, JournalError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = connect(&path)?;
            let mut stmt = conn
                .prepare(
                    "SELECT r.name, r.record FROM asl_journal_records r
                       JOIN asl_journal_executions e ON e.name = r.name
                      WHERE e.finished = 0
                      ORDER BY r.name, r.seq",
                )
                .map_err(storage)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(storage)?;
            let mut out: Vec<Vec<JournalRecord>> = Vec::new();
            let mut current: Option<String> = None;
            for row in rows {
                let (name, body) = row.map_err(storage)?;
                let record: JournalRecord = serde_json::from_str(&body)
                    .map_err(|e| JournalError::Corrupt(format!("{name}: {e}")))?;
                if current.as_deref() != Some(name.as_str()) {
                    out.push(Vec::new());
                    current = Some(name);
                }
                if let Some(last) = out.last_mut() {
                    last.push(record);
                }
            }
            Ok(out)
        })
        .await
        .map_err(storage)?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use docpipe_asl::clock::VirtualClock;
    use docpipe_asl::{
        Definition, DurableRunner, ExecutionOptions, ExecutionStatus, TaskFailure, TaskInvoker,
    };
    use serde_json::{Value, json};

    use super::*;

    struct Echo;

    #[async_trait]
    impl TaskInvoker for Echo {
        async fn invoke(&self, _resource: &str, input: Value) -> Result<Value, TaskFailure> {
            Ok(input)
        }
    }

    /// Never completes: the execution stays in flight, as if the process died there.
    struct Stuck;

    #[async_trait]
    impl TaskInvoker for Stuck {
        async fn invoke(&self, _resource: &str, _input: Value) -> Result<Value, TaskFailure> {
            std::future::pending().await
        }
    }

    const DEF: &str = r#"{"StartAt":"P","States":{
        "P":{"Type":"Pass","Result":1,"ResultPath":"$.p","Next":"W"},
        "W":{"Type":"Wait","Seconds":10,"Next":"T"},
        "T":{"Type":"Task","Resource":"echo","ResultPath":"$.t","End":true}}}"#;

    #[tokio::test(start_paused = true)]
    async fn unfinished_executions_resume_from_sqlite() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("docpipe.db");
        let def = Definition::parse(DEF).unwrap_or_else(|e| panic!("{e}"));
        let clock = Arc::new(VirtualClock::new(chrono::Utc::now()));
        {
            let journal = Arc::new(SqliteJournal::open(&db).unwrap_or_else(|e| panic!("{e}")));
            let runner = DurableRunner::new(Arc::new(Stuck), clock.clone(), journal.clone());
            let opts = ExecutionOptions {
                name: "job-1".into(),
                ..ExecutionOptions::default()
            };
            // Runs until the task, which never ends: abandon it there ("the crash").
            let run = runner.run(&def, json!({"x": 1}), opts);
            let r = tokio::time::timeout(std::time::Duration::from_secs(60), run).await;
            assert!(r.is_err(), "the execution should still be running");
            // A duplicate name is refused.
            let dup = journal
                .append(vec![JournalRecord::Started {
                    execution: "job-1".into(),
                    definition: json!({}),
                    input: json!({}),
                    context: docpipe_asl::ExecutionContext::new("r", "a", "m", "job-1"),
                    at: chrono::Utc::now(),
                }])
                .await;
            assert!(matches!(dup, Err(JournalError::AlreadyExists(_))));
        }
        let journal = Arc::new(SqliteJournal::open(&db).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(journal.unfinished().await.map(|u| u.len()).ok(), Some(1));
        let runner = DurableRunner::new(Arc::new(Echo), clock, journal.clone());
        let done = runner.recover().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1.status, ExecutionStatus::Succeeded);
        assert_eq!(
            done[0].1.output,
            Some(json!({"x": 1, "p": 1, "t": {"x": 1, "p": 1}}))
        );
        assert_eq!(journal.unfinished().await.map(|u| u.len()).ok(), Some(0));
        assert!(journal.prune_finished().unwrap_or(0) >= 3);
    }
}
