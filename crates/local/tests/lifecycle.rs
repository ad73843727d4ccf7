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
use docpipe_local::{FsObjectStore, LocalObjectStore, SqliteJobStore};

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
    objects: LocalObjectStore,
    clock: Arc<dyn Clock>,
}

fn host() -> Host {
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs = SqliteJobStore::open(&dir.path().join("docpipe.db")).expect("opens");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let objects = LocalObjectStore::new(
        FsObjectStore::new(dir.path().join("objects")),
        jobs.clone(),
        Arc::clone(&clock),
    );
    Host {
        _dir: dir,
        jobs,
        objects,
        clock,
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

/// A final job's objects, each holding its own name.
async fn store_objects(objects: &dyn ObjectStore, job: &mut Job) -> [ObjectKey; 4] {
    let keys = [
        ObjectKey::for_job("uploads", &job.id, "a.pdf"),
        ObjectKey::for_job("documents", &job.id, "a.pdf"),
        ObjectKey::for_job("ocr", &job.id, "document.json"),
        ObjectKey::for_job("results", &job.id, "result.json"),
    ];
    for key in &keys {
        objects
            .put(key, key.as_str().as_bytes().to_vec())
            .await
            .expect("stored");
    }
    job.keys.upload = Some(keys[0].clone());
    job.keys.document = Some(keys[1].clone());
    job.keys.ocr = Some(keys[2].clone());
    job.keys.result = Some(keys[3].clone());
    keys
}

#[tokio::test]
async fn a_final_job_that_asks_loses_its_document_and_text_and_keeps_its_result() {
    use docpipe_core::stages::drop_document;
    let h = host();
    let present = |keys: &[ObjectKey; 4]| {
        let objects = h.objects.clone();
        let keys = keys.clone();
        async move {
            let mut out = Vec::new();
            for key in &keys {
                out.push(objects.get(key).await.expect("read").is_some());
            }
            out
        }
    };

    let mut asks = new_job(&*h.clock);
    asks.delete_document_when_final = true;
    asks.status = JobStatus::NeedsReview;
    let keys = store_objects(&h.objects, &mut asks).await;
    drop_document(&h.objects, &asks).await;
    assert_eq!(present(&keys).await, [false, false, false, true]);
    // Again (finalize invoked twice): nothing left to delete, nothing fails.
    drop_document(&h.objects, &asks).await;

    let mut keeps = new_job(&*h.clock);
    keeps.status = JobStatus::Failed;
    let keys = store_objects(&h.objects, &mut keeps).await;
    drop_document(&h.objects, &keeps).await;
    assert_eq!(present(&keys).await, [true; 4], "not asked for");

    let mut running = new_job(&*h.clock);
    running.delete_document_when_final = true;
    running.status = JobStatus::Verifying;
    let keys = store_objects(&h.objects, &mut running).await;
    drop_document(&h.objects, &running).await;
    assert_eq!(present(&keys).await, [true; 4], "not final yet");
}

/// An object store whose deletes fail, counting them.
#[derive(Default)]
struct Undeletable(Mutex<usize>);

#[async_trait]
impl ObjectStore for Undeletable {
    async fn put(&self, _: &ObjectKey, _: Vec<u8>) -> Result<()> {
        Ok(())
    }
    async fn get(&self, _: &ObjectKey) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    async fn size(&self, _: &ObjectKey) -> Result<Option<u64>> {
        Ok(None)
    }
    async fn delete(&self, _: &ObjectKey) -> Result<()> {
        *self.0.lock().expect("lock") += 1;
        Err(StageError::unavailable("access denied"))
    }
}

#[tokio::test]
async fn a_document_that_cannot_be_deleted_costs_the_job_nothing_and_the_sweeper_takes_it() {
    use docpipe_core::stages::drop_document;
    let h = host();
    let broken = Undeletable::default();
    let mut job = new_job(&*h.clock);
    job.delete_document_when_final = true;
    let submitted = lifecycle::submit(
        &h.jobs,
        &h.objects,
        &*h.clock,
        JobSubmission {
            job,
            document: NewDocument::Inline(b"%PDF-1.7 bytes".to_vec()),
            idempotent: false,
            start: Start::ByCaller,
        },
    )
    .await
    .expect("submitted");
    let id = submitted.job().id.clone();
    let failed = lifecycle::fail(
        &h.jobs,
        &*h.clock,
        &id,
        &StageError::new(ErrorCode::InvalidFileFormat, "not a PDF"),
    )
    .await
    .expect("failed");
    assert!(failed.delete_document_when_final, "stored with the job");
    // Every delete tried, each failure only logged.
    drop_document(&broken, &failed).await;
    assert_eq!(*broken.0.lock().expect("lock"), 1, "the upload");
    let upload = failed.keys.upload.clone().expect("upload");
    assert!(h.objects.get(&upload).await.expect("read").is_some());

    // A job that did not ask, failed beside it, keeps its document.
    let other = lifecycle::submit(
        &h.jobs,
        &h.objects,
        &*h.clock,
        JobSubmission {
            job: new_job(&*h.clock),
            document: NewDocument::Inline(b"%PDF-1.7 other".to_vec()),
            idempotent: false,
            start: Start::ByCaller,
        },
    )
    .await
    .expect("submitted")
    .job()
    .clone();
    lifecycle::fail(
        &h.jobs,
        &*h.clock,
        &other.id,
        &StageError::new(ErrorCode::InvalidFileFormat, "not a PDF"),
    )
    .await
    .expect("failed");

    // The sweeper, with the host's setting off, drops what the job asked for.
    let report = docpipe_local::retention::sweep(
        &h.jobs,
        &h.objects,
        &docpipe_core::retention::Retention::default(),
        h.clock.now(),
        false,
    )
    .await
    .expect("sweep");
    assert_eq!(report.documents_dropped, [id.to_string()]);
    assert_eq!(h.objects.get(&upload).await.expect("read"), None);
    let other_upload = other.keys.upload.expect("upload");
    assert!(h.objects.get(&other_upload).await.expect("read").is_some());
}
