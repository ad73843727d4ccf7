//! The SQLite job store, on a real database file in a temp dir.

use chrono::{DateTime, Duration, TimeZone, Utc};
use docpipe_core::stages::Stage;
use docpipe_core::{
    DocumentKind, ErrorCode, Job, JobFilter, JobId, JobPatch, JobStatus, JobStore, ObjectKey,
};
use docpipe_local::SqliteJobStore;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0)
        .single()
        .expect("valid")
        + Duration::seconds(secs)
}

fn job(at: DateTime<Utc>, kind: DocumentKind, owner: Option<&str>) -> Job {
    let mut j = Job::new(JobId::generate(at), kind, "a.pdf", at);
    j.owner = owner.map(str::to_owned);
    j
}

fn store() -> (tempfile::TempDir, SqliteJobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SqliteJobStore::open(&dir.path().join("docpipe.db")).expect("opens");
    (dir, s)
}

#[tokio::test]
async fn jobs_survive_reopening_and_keep_their_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("docpipe.db");
    let j = job(t(0), DocumentKind::Invoice, None);
    {
        let s = SqliteJobStore::open(&path).expect("opens");
        s.create(&j).await.expect("created");
        let patch = JobPatch {
            document_key: Some(ObjectKey::parse("documents/x/a.pdf").expect("key")),
            stage_ms: Some((Stage::Ingest, 12)),
            ..JobPatch::default()
        };
        s.transition(&j.id, JobStatus::Ingesting, patch, t(1))
            .await
            .expect("moves");
    }
    let s = SqliteJobStore::open(&path).expect("reopens and skips applied migrations");
    let got = s.get(&j.id).await.expect("found");
    assert_eq!(got.status, JobStatus::Ingesting);
    assert_eq!(got.cost.stage_ms.get(&Stage::Ingest), Some(&12));
    assert_eq!(got.updated_at, t(1));
    let h = s.history(&j.id).await.expect("history");
    let statuses: Vec<_> = h.iter().map(|c| (c.status, c.at)).collect();
    assert_eq!(
        statuses,
        [(JobStatus::Queued, t(0)), (JobStatus::Ingesting, t(1))]
    );
}

#[tokio::test]
async fn transitions_follow_the_table_and_record_nothing_when_refused() {
    let (_d, s) = store();
    let j = job(t(0), DocumentKind::Invoice, None);
    s.create(&j).await.expect("created");
    let err = s
        .transition(&j.id, JobStatus::Verifying, JobPatch::default(), t(1))
        .await
        .expect_err("queued -> verifying is not in the table");
    assert_eq!(err.code, ErrorCode::InvalidTransition);
    s.transition(&j.id, JobStatus::Cancelled, JobPatch::default(), t(2))
        .await
        .expect("cancel");
    let err = s
        .transition(&j.id, JobStatus::Ingesting, JobPatch::default(), t(3))
        .await
        .expect_err("a cancelled job is never resumed");
    assert_eq!(err.code, ErrorCode::JobCancelled);
    let h = s.history(&j.id).await.expect("history");
    assert_eq!(h.len(), 2);
    assert_eq!(
        s.get(&j.id).await.expect("job").status,
        JobStatus::Cancelled
    );
}

#[tokio::test]
async fn racing_writers_cannot_both_leave_a_status() {
    let (_d, s) = store();
    let j = job(t(0), DocumentKind::Invoice, None);
    s.create(&j).await.expect("created");
    s.transition(&j.id, JobStatus::Ingesting, JobPatch::default(), t(1))
        .await
        .expect("ingesting");
    // A cancel and a stage race; exactly one of failed/cancelled wins, the other is refused.
    let (a, b) = tokio::join!(
        s.transition(&j.id, JobStatus::Cancelled, JobPatch::default(), t(2)),
        s.transition(&j.id, JobStatus::Failed, JobPatch::default(), t(2)),
    );
    assert!(a.is_ok() != b.is_ok(), "one wins: {a:?} {b:?}");
    assert_eq!(s.history(&j.id).await.expect("history").len(), 3);
}

#[tokio::test]
async fn unknown_jobs_are_not_found() {
    let (_d, s) = store();
    let id = JobId::generate(t(0));
    assert_eq!(
        s.get(&id).await.expect_err("absent").code,
        ErrorCode::JobNotFound
    );
    assert_eq!(
        s.transition(&id, JobStatus::Ingesting, JobPatch::default(), t(0))
            .await
            .expect_err("absent")
            .code,
        ErrorCode::JobNotFound
    );
    let j = job(t(0), DocumentKind::Invoice, None);
    s.create(&j).await.expect("created");
    assert!(s.create(&j).await.is_err(), "ids are unique");
}

#[tokio::test]
async fn listing_is_newest_first_filtered_and_paginated() {
    let (_d, s) = store();
    let mut made = Vec::new();
    for i in 0..7 {
        let kind = if i % 2 == 0 {
            DocumentKind::Invoice
        } else {
            DocumentKind::Blueprint
        };
        let owner = if i < 5 { "alice" } else { "bob" };
        let j = job(t(i), kind, Some(owner));
        s.create(&j).await.expect("created");
        made.push(j);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list(&JobFilter {
                owner: Some("alice".into()),
                limit: Some(2),
                cursor: cursor.clone(),
                ..JobFilter::default()
            })
            .await
            .expect("page");
        assert!(page.jobs.len() <= 2);
        seen.extend(page.jobs.into_iter().map(|j| j.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let want: Vec<JobId> = made[..5].iter().rev().map(|j| j.id.clone()).collect();
    assert_eq!(seen, want);

    let blueprints = s
        .list(&JobFilter {
            kind: Some(DocumentKind::Blueprint),
            ..JobFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(blueprints.jobs.len(), 3);
    s.transition(&made[0].id, JobStatus::Failed, JobPatch::default(), t(9))
        .await
        .expect("fail");
    let failed = s
        .list(&JobFilter {
            status: Some(JobStatus::Failed),
            ..JobFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(failed.jobs.len(), 1);
    assert!(
        s.list(&JobFilter {
            cursor: Some("garbage".into()),
            ..JobFilter::default()
        })
        .await
        .is_err()
    );
}

#[tokio::test]
async fn the_change_token_moves_with_every_commit_from_any_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("docpipe.db");
    let s = SqliteJobStore::open(&path).expect("opens");
    let t0 = s.change_token().expect("a database file has a token");
    assert_eq!(
        s.change_token(),
        Some(t0),
        "nothing written, nothing changed"
    );

    let j = job(t(0), DocumentKind::Invoice, Some("k"));
    s.create(&j).await.expect("created");
    let t1 = s.change_token().expect("token");
    assert_ne!(t1, t0, "a commit through the store");
    s.get_with_history(&j.id).await.expect("read");
    assert_eq!(s.change_token(), Some(t1), "reads change nothing");

    // Another connection, as another process (`docpipe keys revoke`) would write.
    // (A write that changes no byte commits nothing, and rightly leaves the token.)
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute(
            "UPDATE jobs SET data = json_set(data, '$.filename', 'b.pdf') WHERE id = ?1",
            [j.id.as_str()],
        )
        .expect("update");
    let t2 = s.change_token().expect("token");
    assert_ne!(t2, t1, "a commit through another connection");

    // The log restarted by a checkpoint, then written from the start again: the token
    // still never repeats.
    other
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    other
        .execute(
            "UPDATE jobs SET data = json_set(data, '$.filename', 'c.pdf') WHERE id = ?1",
            [j.id.as_str()],
        )
        .expect("update");
    let t3 = s.change_token().expect("token");
    assert!(
        ![t0, t1, t2].contains(&t3),
        "a commit after the log restarted"
    );

    let memory = SqliteJobStore::in_memory().expect("in memory");
    assert_eq!(
        memory.change_token(),
        None,
        "no shared index, so nothing may be kept"
    );
}
