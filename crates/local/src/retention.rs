//! The sweeper: removes what has outlived [`Retention`] from the data folder, and nothing
//! else. `docpipe gc [--dry-run]` runs it once; `docpipe serve` runs it periodically.
//! Expiry is judged at a `now` the caller gives (a virtual clock in tests).

use chrono::{DateTime, NaiveDateTime, Utc};
use docpipe_core::events::EventSink;
use docpipe_core::ports::Result;
use docpipe_core::retention::Retention;
use docpipe_core::{JobId, JobStatus, JobStore, ObjectKey, ObjectStore};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::objects::LocalObjectStore;
use crate::sqlite::{SqliteJobStore, db_error, ts};

/// The outbox reader that drops documents of final jobs.
const DOCUMENT_CURSOR: &str = "documents";

/// What a sweep removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Final jobs past their retention (with history, executions, journal, events).
    pub jobs: Vec<String>,
    /// Object folders (`{prefix}/{job or upload}`) past theirs.
    pub object_folders: Vec<String>,
    /// Jobs whose document was dropped because they are final.
    pub documents_dropped: Vec<String>,
    pub idempotency_records: u64,
    pub dedupe_entries: u64,
    pub events: u64,
    pub deliveries: u64,
}

fn cutoff(now: DateTime<Utc>, keep: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(keep)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// When a job was created, from its id (`job_<yyyymmddHHMMSS>_...`).
fn created_at(id: &JobId) -> Option<DateTime<Utc>> {
    let stamp = id.as_str().get(4..18)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

const FINAL: &str = "('completed', 'needs_review', 'failed', 'cancelled')";

/// One sweep at `now`. A dry run reads only.
pub async fn sweep(
    store: &SqliteJobStore,
    objects: &LocalObjectStore,
    policy: &Retention,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<SweepReport> {
    let mut report = SweepReport {
        documents_dropped: drop_documents(
            store,
            objects,
            policy.delete_document_when_final,
            dry_run,
        )
        .await?,
        ..SweepReport::default()
    };
    let jobs_cutoff = ts(cutoff(now, policy.final_jobs()));
    let idem_cutoff = ts(cutoff(now, policy.idempotency()));
    let objects_cutoff = ts(cutoff(now, policy.objects()));
    let now_ts = ts(now);
    let (jobs, counts) = store
        .with(move |conn| {
            let tx = conn.savepoint().map_err(db_error)?;
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT id FROM jobs WHERE status IN {FINAL} AND updated_at <= ?1 ORDER BY id"
                ))
                .map_err(db_error)?;
            let jobs: Vec<String> = stmt
                .query_map(params![jobs_cutoff], |r| r.get(0))
                .map_err(db_error)?
                .collect::<std::result::Result<_, _>>()
                .map_err(db_error)?;
            drop(stmt);
            // (what, WHERE clause, its argument)
            let sets: [(&str, &str, &String); 6] = [
                (
                    "idempotency",
                    "(key NOT LIKE 'upload' || char(10) || '%' AND created_at <= ?1)",
                    &idem_cutoff,
                ),
                (
                    "idempotency",
                    // An upload's claim lives as long as the upload could.
                    "(key LIKE 'upload' || char(10) || '%' AND created_at <= ?1)",
                    &objects_cutoff,
                ),
                ("result_cache", "expires_at <= ?1", &now_ts),
                ("outbox", "at <= ?1", &jobs_cutoff),
                (
                    "webhook_deliveries",
                    "state = 'delivered' AND next_attempt_at <= ?1",
                    &jobs_cutoff,
                ),
                (
                    "webhook_deliveries",
                    "state = 'dead' AND next_attempt_at <= ?1",
                    &jobs_cutoff,
                ),
            ];
            let mut counts = [0u64; 6];
            for (i, (table, clause, arg)) in sets.iter().enumerate() {
                counts[i] = if dry_run {
                    tx.query_row(
                        &format!("SELECT COUNT(*) FROM {table} WHERE {clause}"),
                        params![arg],
                        |r| r.get::<_, i64>(0),
                    )
                    .map_err(db_error)? as u64
                } else {
                    tx.execute(&format!("DELETE FROM {table} WHERE {clause}"), params![arg])
                        .map_err(db_error)? as u64
                };
            }
            if !dry_run {
                for id in &jobs {
                    let like = format!("{id}-r%");
                    for sql in [
                        "DELETE FROM asl_journal_records WHERE name = ?1 OR name LIKE ?2",
                        "DELETE FROM asl_journal_executions WHERE name = ?1 OR name LIKE ?2",
                    ] {
                        tx.execute(sql, params![id, like]).map_err(db_error)?;
                    }
                    for sql in [
                        "DELETE FROM executions WHERE job_id = ?1",
                        "DELETE FROM job_history WHERE job_id = ?1",
                        "DELETE FROM outbox WHERE job_id = ?1",
                        "DELETE FROM webhook_deliveries WHERE job_id = ?1 AND state != 'pending'",
                        "DELETE FROM jobs WHERE id = ?1",
                    ] {
                        tx.execute(sql, params![id]).map_err(db_error)?;
                    }
                }
                tx.commit().map_err(db_error)?;
            }
            Ok((jobs, counts))
        })
        .await?;
    report.jobs = jobs;
    report.idempotency_records = counts[0] + counts[1];
    report.dedupe_entries = counts[2];
    report.events = counts[3];
    report.deliveries = counts[4] + counts[5];
    report.object_folders = sweep_objects(
        store,
        objects,
        cutoff(now, policy.objects()),
        &report.jobs,
        dry_run,
    )
    .await?;
    Ok(report)
}

/// Object folders past the objects' retention whose job is gone or final (a job that is
/// still running keeps its document whatever its age).
async fn sweep_objects(
    store: &SqliteJobStore,
    objects: &LocalObjectStore,
    before: DateTime<Utc>,
    deleted_jobs: &[String],
    dry_run: bool,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for folder in objects.folders().await? {
        let expired = match JobId::parse(&folder.name) {
            Ok(id) => {
                let old = created_at(&id).is_some_and(|t| t <= before);
                old && (deleted_jobs.contains(&folder.name) || !running(store, &id).await?)
            }
            // Not a job's folder (a presigned upload): by the age of its newest object.
            Err(_) => folder.modified_at.is_some_and(|t| t <= before),
        };
        if !expired {
            continue;
        }
        out.push(format!("{}/{}", folder.prefix, folder.name));
        if !dry_run {
            objects.delete_folder(&folder.prefix, &folder.name).await?;
        }
    }
    out.sort();
    Ok(out)
}

/// Whether the job exists and is not final.
async fn running(store: &SqliteJobStore, id: &JobId) -> Result<bool> {
    match store.get(id).await {
        Ok(job) => Ok(!job.status.is_final()),
        Err(e) if e.code == docpipe_core::ErrorCode::JobNotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes the uploaded document (and its text) of every job that became final since the
/// last sweep and asked for it (or of every such job when `all`: the setting as it is
/// now, for jobs submitted before it), keeping its result; the outbox's order says which.
/// The finalize stage deletes them already: this catches what it could not.
async fn drop_documents(
    store: &SqliteJobStore,
    objects: &LocalObjectStore,
    all: bool,
    dry_run: bool,
) -> Result<Vec<String>> {
    let after: i64 = store
        .with_read(|conn| {
            conn.query_row(
                "SELECT seq FROM outbox_cursors WHERE name = ?1",
                params![DOCUMENT_CURSOR],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_error)
            .map(|s| s.unwrap_or(0))
        })
        .await?;
    let mut dropped = Vec::new();
    let mut last = after as u64;
    loop {
        let events = store.events_after(last, 500).await?;
        let Some(end) = events.last().map(|e| e.seq) else {
            break;
        };
        for event in &events {
            let status: serde_json::Value =
                serde_json::from_str(&event.json).unwrap_or(serde_json::Value::Null);
            let final_now = status["data"]["status"]
                .as_str()
                .and_then(JobStatus::parse)
                .is_some_and(JobStatus::is_final);
            if !final_now {
                continue;
            }
            let Ok(job) = store.get(&event.job_id).await else {
                continue;
            };
            if !(all || job.delete_document_when_final) {
                continue;
            }
            let keys: Vec<&ObjectKey> = [&job.keys.upload, &job.keys.document, &job.keys.ocr]
                .into_iter()
                .flatten()
                .collect();
            let mut any = false;
            for key in keys {
                if objects.size(key).await?.is_some() {
                    any = true;
                    if !dry_run {
                        objects.delete(key).await?;
                    }
                }
            }
            if any {
                dropped.push(job.id.to_string());
            }
        }
        last = end;
    }
    if !dry_run && last as i64 != after {
        store
            .with(move |conn| {
                conn.execute(
                    "INSERT INTO outbox_cursors (name, seq) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                    params![DOCUMENT_CURSOR, last as i64],
                )
                .map_err(db_error)?;
                Ok(())
            })
            .await?;
    }
    Ok(dropped)
}
