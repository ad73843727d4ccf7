//! A job's lifecycle outside the stages, written once for every host: [`submit`] (store
//! the document, create the job, start its execution), [`fail`] (end a job as failed,
//! with its reason) and [`retry`] (run a failed job again). The HTTP API (`docpipe serve`
//! and the API Lambda), the embedded host (`docpipe run`), crash recovery and
//! `record_failure` all go through here; the execution input of a job is
//! [`PipelineInput::for_job`](crate::stages::PipelineInput::for_job) on every orchestrator.

use crate::clock::Clock;
use crate::error::{ErrorCode, ErrorName, StageError};
use crate::execution::{ExecutionLog, ExecutionState};
use crate::ids::{JobId, ObjectKey};
use crate::job::{Job, JobStatus, OperatorAction, OperatorChange};
use crate::ports::{Admission, JobPatch, JobStore, ObjectStore, Orchestrator};

/// A new job's document, as the submitter has it.
#[derive(Debug)]
pub enum NewDocument {
    /// The bytes: stored under `uploads/{job}/{file}` before the job record exists.
    Inline(Vec<u8>),
    /// Already stored (a claimed presigned upload) under `key`, `size` bytes long.
    Stored { key: ObjectKey, size: u64 },
    /// An http(s) URL that ingest fetches.
    Url(String),
    /// A document the submitter measured as over the limit: nothing is stored, and
    /// ingest fails the job with `FILE_TOO_LARGE`.
    Oversize(u64),
}

/// How a submitted job's execution starts.
pub enum Start<'a> {
    /// Through the orchestrator, in the room taken with [`Orchestrator::admit`] before
    /// anything was stored.
    Orchestrator(&'a dyn Orchestrator, Admission),
    /// The submitter runs the execution itself, in process (`docpipe run`).
    ByCaller,
}

/// One submission.
pub struct JobSubmission<'a> {
    /// The queued job as the host made it (id, kind, filename, owner, correlation id);
    /// its size, upload key and source URL are filled in from `document`.
    pub job: Job,
    pub document: NewDocument,
    /// The id may be shared with a concurrent submission of the same request (it came
    /// from an idempotency record): when that one created the job first, its job is
    /// the answer.
    pub idempotent: bool,
    pub start: Start<'a>,
}

/// What [`submit`] did.
#[derive(Debug)]
pub enum Submitted {
    /// The job was created (and its execution started, unless the caller runs it).
    Created(Job),
    /// A concurrent submission of the same request created the job first; this one
    /// stored nothing that stays and started nothing.
    Existing(Job),
}

impl Submitted {
    pub fn job(&self) -> &Job {
        match self {
            Self::Created(job) | Self::Existing(job) => job,
        }
    }
}

/// Why [`submit`] did not submit.
#[derive(Debug, Clone, PartialEq)]
pub enum SubmitError {
    /// The document or the job could not be stored; nothing was left behind.
    NotStored(StageError),
    /// The job was stored but its execution could not start (a full queue, a server
    /// shutting down): the job is failed with this reason.
    NotStarted(StageError),
}

impl SubmitError {
    pub fn into_inner(self) -> StageError {
        match self {
            Self::NotStored(e) | Self::NotStarted(e) => e,
        }
    }
}

/// Submits a job: the one way a job comes to exist.
///
/// The document is stored before the job record: a job that a client was told about
/// always has its document, whenever the process dies. A job that cannot be started is
/// failed with the reason (nothing would ever run it).
pub async fn submit(
    jobs: &dyn JobStore,
    objects: &dyn ObjectStore,
    clock: &dyn Clock,
    submission: JobSubmission<'_>,
) -> Result<Submitted, SubmitError> {
    let JobSubmission {
        mut job,
        document,
        idempotent,
        start,
    } = submission;
    let mut inline = None;
    match document {
        NewDocument::Inline(bytes) => {
            job.size_bytes = Some(bytes.len() as u64);
            job.keys.upload = Some(ObjectKey::for_job("uploads", &job.id, &job.filename));
            inline = Some(bytes);
        }
        NewDocument::Stored { key, size } => {
            job.size_bytes = Some(size);
            job.keys.upload = Some(key);
        }
        NewDocument::Url(url) => job.source_url = Some(url),
        NewDocument::Oversize(size) => job.size_bytes = Some(size),
    }
    // Concurrent submissions under one idempotent id store the same bytes (their
    // requests hash the same) under the same key.
    let stored_inline = inline.is_some();
    if let (Some(bytes), Some(key)) = (inline, &job.keys.upload) {
        // Durable with the job created next, or neither is.
        objects
            .put_before_next_write(key, bytes)
            .await
            .map_err(SubmitError::NotStored)?;
    }
    if let Err(e) = jobs.create(&job).await {
        if idempotent && let Ok(existing) = jobs.get(&job.id).await {
            // Its ingest may have moved the upload already, before these bytes landed.
            if stored_inline
                && existing.keys.document.is_some()
                && let Some(key) = &job.keys.upload
            {
                let _ = objects.delete(key).await;
            }
            return Ok(Submitted::Existing(existing));
        }
        // Nothing will read the bytes stored for a job that was not created.
        if stored_inline && let Some(key) = &job.keys.upload {
            let _ = objects.delete(key).await;
        }
        return Err(SubmitError::NotStored(e));
    }
    if let Start::Orchestrator(orchestrator, admission) = start
        && let Err(e) = orchestrator.start_admitted(&job, admission).await
    {
        // Nothing runs this job: record why. The start's error is the answer even when
        // recording fails.
        let _ = fail(jobs, clock, &job.id, &e).await;
        return Err(SubmitError::NotStarted(e));
    }
    Ok(Submitted::Created(job))
}

/// Fails a job with `error` as its reason, the one way a job ends failed. A job that has
/// ended already (cancelled or finished meanwhile) keeps its status: failing is
/// idempotent. Returns the job as it now is.
pub async fn fail(
    jobs: &dyn JobStore,
    clock: &dyn Clock,
    id: &JobId,
    error: &StageError,
) -> Result<Job, StageError> {
    let patch = JobPatch {
        error: Some(error.clone().into()),
        ..JobPatch::default()
    };
    match jobs
        .transition(id, JobStatus::Failed, patch, clock.now())
        .await
    {
        Ok(job) => Ok(job),
        // Refused by the table (or lost a race): fine if the job has ended.
        Err(e) if e.name() == ErrorName::Cancelled => match jobs.get(id).await {
            Ok(job) if job.status.is_final() => Ok(job),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Runs a failed job again from its stored document, as its next attempt (execution
/// `{job_id}-r{n}`): the job moves `failed -> queued` with `by` recorded, its old error
/// dropped, and the orchestrator starts the new execution. The earlier executions keep
/// their history. A cancelled job is not retried (`JOB_CANCELLED`); a job that has not
/// failed, or that a concurrent retry took first, is a `JOB_STATE_CONFLICT`, and so is
/// one whose uploaded document was deleted when it failed
/// ([`Job::delete_document_when_final`]).
pub async fn retry(
    jobs: &dyn JobStore,
    orchestrator: &dyn Orchestrator,
    executions: &dyn ExecutionLog,
    clock: &dyn Clock,
    id: &JobId,
    by: &str,
) -> Result<Job, StageError> {
    let job = jobs.get(id).await?;
    // The job is failed a moment before its execution ends (the last task records the
    // failure); an execution still running (or interrupted, to be resumed) must end
    // first, or its last steps would act on the job's next attempt.
    if job.status == JobStatus::Failed
        && executions
            .executions(&job)
            .await?
            .iter()
            .any(|e| e.status == ExecutionState::Running)
    {
        return Err(StageError::new(
            ErrorCode::JobStateConflict,
            format!("job {id} failed but its execution is still ending; retry in a moment"),
        ));
    }
    let conflict = |job: &Job| {
        StageError::new(
            ErrorCode::JobStateConflict,
            format!(
                "job {} is {}; only a failed job is retried",
                job.id, job.status
            ),
        )
    };
    match job.status {
        // Its document went when it failed; a URL is fetched again.
        JobStatus::Failed if job.delete_document_when_final && job.source_url.is_none() => {
            return Err(StageError::new(
                ErrorCode::JobStateConflict,
                format!(
                    "job {id} kept no document (it is deleted once the job is final); \
                     submit the document again instead"
                ),
            ));
        }
        JobStatus::Failed => {}
        JobStatus::Cancelled => {
            return Err(StageError::new(
                ErrorCode::JobCancelled,
                format!("job {id} was cancelled; submit the document again instead"),
            ));
        }
        _ => return Err(conflict(&job)),
    }
    let patch = JobPatch {
        clear_error: true,
        attempt: Some(job.attempt + 1),
        operator: Some(OperatorChange {
            by: by.to_owned(),
            action: OperatorAction::Retry,
            fields: Vec::new(),
            comment: None,
            request: None,
        }),
        ..JobPatch::default()
    };
    let job = match jobs
        .transition(id, JobStatus::Queued, patch, clock.now())
        .await
    {
        Ok(job) => job,
        // Another retry (or nothing) moved it first.
        Err(_) => return Err(conflict(&jobs.get(id).await?)),
    };
    if let Err(e) = orchestrator.start(&job).await {
        let _ = fail(jobs, clock, id, &e).await;
        return Err(e);
    }
    Ok(job)
}
