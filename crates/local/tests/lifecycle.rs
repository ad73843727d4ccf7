//! The job lifecycle (`docpipe_core::lifecycle`) over the real local adapters: SQLite jobs
//! and filesystem objects in a temp dir.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use docpipe_asl::clock::SystemClock;
use docpipe_core::lifecycle::{self, JobSubmission, NewDocument, Start, SubmitError, Submitted};
use docpipe_core::ports::Result;
use docpipe_core::{
    Admission, Clock, DocumentKind, ErrorCode, Job, JobId, JobPatch, JobStatus, JobStore,
    ObjectKey, ObjectStore, Orchestrator, StageError,
};
use docpipe_local::{FsObjectStore, SqliteJobStore};

/// Records what it was asked to start; refuses everything when `full`.
#[derive(Default)]
struct Recording {
    full: bool,
    started: Mutex<Vec<JobId>>,
}

#[async_trait]
impl Orchestrator for Recording {
    async fn start(&self, job: &Job) -> Result<()> {
        if self.full {
            return Err(StageError::unavailable("the execution queue is full"));
        }
        self.started
            .lock()
            .expect("not poisoned")
            .push(job.id.clone());
        Ok(())
    }

    async fn stop(&self, _: &Job, _: &str) -> Result<()> {
        Ok(())
    }

    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// An object store that cannot write.
struct Broken;

#[async_trait]
impl ObjectStore for Broken {
    async fn put(&self, _: &ObjectKey, _: Vec<u8>) -> Result<()> {
        Err(StageError::unavailable("disk full"))
    }
    async fn get(&self, _: &ObjectKey) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    async fn size(&self, _: &ObjectKey) -> Result<Option<u64>> {
        Ok(None)
    }
    async fn delete(&self, _: &ObjectKey) -> Result<()> {
        Ok(())
    }
}

struct Host {
    _dir: tempfile::TempDir,
    jobs: SqliteJobStore,
    objects: FsObjectStore,
    clock: Arc<dyn Clock>,
}

fn host() -> Host {
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs = SqliteJobStore::open(&dir.path().join("docpipe.db")).expect("opens");
    let objects = FsObjectStore::new(dir.path().join("objects"));
    Host {
        _dir: dir,
        jobs,
        objects,
        clock: Arc::new(SystemClock),
    }
}

fn new_job(clock: &dyn Clock) -> Job {
    let now = clock.now();
    Job::new(JobId::generate(now), DocumentKind::Invoice, "a b.pdf", now)
}

#[tokio::test]
async fn a_submitted_job_has_its_document_and_is_started() {
    let h = host();
    let orchestrator = Recording::default();
    let submitted = lifecycle::submit(
        &h.jobs,
        &h.objects,
        &*h.clock,
        JobSubmission {
            job: new_job(&*h.clock),
            document: NewDocument::Inline(b"%PDF-1.7 bytes".to_vec()),
            idempotent: false,
            start: Start::Orchestrator(&orchestrator, Admission::unlimited()),
        },
    )
    .await
    .expect("submitted");
    let Submitted::Created(job) = submitted else {
        panic!("a new id is created: {submitted:?}");
    };
    let stored = h.jobs.get(&job.id).await.expect("stored");
    assert_eq!(stored.status, JobStatus::Queued);
    assert_eq!(stored.size_bytes, Some(14));
    let key = stored.keys.upload.expect("upload key");
    assert_eq!(key.as_str(), format!("uploads/{}/a_b.pdf", job.id));
    assert_eq!(
        h.objects.get(&key).await.expect("read"),
        Some(b"%PDF-1.7 bytes".to_vec())
    );
    assert_eq!(*orchestrator.started.lock().expect("lock"), [job.id]);
}

#[tokio::test]
async fn a_job_that_cannot_start_is_failed_with_the_reason() {
    let h = host();
    let orchestrator = Recording {
        full: true,
        ..Recording::default()
    };
    let job = new_job(&*h.clock);
    let id = job.id.clone();
    let err = lifecycle::submit(
        &h.jobs,
        &h.objects,
        &*h.clock,
        JobSubmission {
            job,
            document: NewDocument::Url("https://example.com/a.pdf".into()),
            idempotent: false,
            start: Start::Orchestrator(&orchestrator, Admission::unlimited()),
        },
    )
    .await
    .expect_err("not started");
    assert!(matches!(err, SubmitError::NotStarted(_)), "{err:?}");
    let stored = h.jobs.get(&id).await.expect("the job exists");
    assert_eq!(stored.status, JobStatus::Failed);
    assert_eq!(
        stored.error.map(|e| e.code),
        Some(ErrorCode::ServiceUnavailable)
    );
    assert_eq!(
        stored.source_url.as_deref(),
        Some("https://example.com/a.pdf")
    );
}

#[tokio::test]
async fn no_job_exists_without_its_document() {
    let h = host();
    let job = new_job(&*h.clock);
    let id = job.id.clone();
    let err = lifecycle::submit(
        &h.jobs,
        &Broken,
        &*h.clock,
        JobSubmission {
            job,
            document: NewDocument::Inline(b"%PDF-1.7".to_vec()),
            idempotent: false,
            start: Start::ByCaller,
        },
    )
    .await
    .expect_err("not stored");
    assert!(matches!(err, SubmitError::NotStored(_)), "{err:?}");
    let missing = h.jobs.get(&id).await.expect_err("no job");
    assert_eq!(missing.code, ErrorCode::JobNotFound);
}

#[tokio::test]
async fn a_second_submission_under_an_idempotent_id_answers_with_the_first_job() {
    let h = host();
    let first = new_job(&*h.clock);
    let second = first.clone();
    let submit = |job: Job| {
        lifecycle::submit(
            &h.jobs,
            &h.objects,
            &*h.clock,
            JobSubmission {
                job,
                document: NewDocument::Inline(b"%PDF-1.7".to_vec()),
                idempotent: true,
                start: Start::ByCaller,
            },
        )
    };
    let created = submit(first).await.expect("first");
    assert!(matches!(created, Submitted::Created(_)), "{created:?}");
    let again = submit(second).await.expect("second");
    let Submitted::Existing(existing) = again else {
        panic!("the first job answers: {again:?}");
    };
    assert_eq!(&existing, created.job());
}

#[tokio::test]
async fn failing_is_idempotent_and_spares_a_job_that_ended() {
    let h = host();
    let job = new_job(&*h.clock);
    h.jobs.create(&job).await.expect("created");
    let why = StageError::new(ErrorCode::DocumentUnreadable, "no pages");
    let failed = lifecycle::fail(&h.jobs, &*h.clock, &job.id, &why)
        .await
        .expect("failed");
    assert_eq!(failed.status, JobStatus::Failed);
    let again = lifecycle::fail(&h.jobs, &*h.clock, &job.id, &StageError::internal("later"))
        .await
        .expect("failing again is no error");
    assert_eq!(
        again.error.map(|e| e.code),
        Some(ErrorCode::DocumentUnreadable),
        "the first reason stays"
    );

    let cancelled = new_job(&*h.clock);
    h.jobs.create(&cancelled).await.expect("created");
    h.jobs
        .transition(
            &cancelled.id,
            JobStatus::Cancelled,
            JobPatch::default(),
            h.clock.now(),
        )
        .await
        .expect("cancelled");
    let kept = lifecycle::fail(&h.jobs, &*h.clock, &cancelled.id, &why)
        .await
        .expect("no error");
    assert_eq!(kept.status, JobStatus::Cancelled);
    assert_eq!(kept.error, None);
}
