//! The embedded pipeline: the real `statemachine/pipeline.asl.json`, executed by
//! docpipe-asl in-process, with stage tasks resolved to the core stage functions over the
//! local adapters. Only the adapters differ from AWS; the definition and stages are the
//! same.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use docpipe_asl::{
    Definition, DurableRunner, ExecutionOptions, ExecutionOutcome, Journal, JournalError,
    JournalRecord, StopHandle, TaskFailure, TaskInvoker,
};
use docpipe_core::lifecycle::{self, JobSubmission, NewDocument, Start, SubmitError, Submitted};
use docpipe_core::ports::{Result, StageSettings};
use docpipe_core::stages::{self, PipelineInput, Stage};
use docpipe_core::{
    Clock, DocumentKind, ErrorCode, Extractor, Fetcher, InvoiceResult, Job, JobId, JobStatus,
    ObjectStore, Ocr, Ports, StageError,
};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tracing::info;

use crate::faults::{FaultInjectingInvoker, FaultInjection};
use crate::fs_objects::FsObjectStore;
use crate::journal::SqliteJournal;
use crate::objects::LocalObjectStore;
use crate::sqlite::{ExecutionRecord, ExecutionState, SqliteJobStore};

pub use docpipe_core::PIPELINE_DEFINITION;

/// The state machine's name in local executions' ARNs and context object.
pub const STATE_MACHINE_NAME: &str = "docpipe-pipeline";

/// What the embedded pipeline is built from.
pub struct EmbeddedOptions {
    /// Data folder: `docpipe.db` and `objects/` live here.
    pub home: PathBuf,
    pub settings: StageSettings,
    pub ocr: Arc<dyn Ocr>,
    pub extractor: Arc<dyn Extractor>,
    pub fetcher: Arc<dyn Fetcher>,
    pub clock: Arc<dyn Clock>,
}

/// What a client submits.
pub enum Content {
    /// The document's bytes.
    Bytes(Vec<u8>),
    /// A document the submitter measured as over the limit; nothing is stored and ingest
    /// fails the job with `FILE_TOO_LARGE`.
    Oversize(u64),
}

pub struct Submission {
    pub filename: String,
    pub kind: DocumentKind,
    pub content: Content,
    pub owner: Option<String>,
    pub correlation_id: Option<String>,
}

/// The embedded pipeline: job store, object store, stages and interpreter.
#[derive(Clone)]
pub struct Embedded {
    ports: Ports,
    store: SqliteJobStore,
    objects: LocalObjectStore,
    definition: Arc<Definition>,
    runner: DurableRunner,
    journal: Arc<SqliteJournal>,
    live: Live,
    /// Jobs submitted here drop their document once final (`retention`'s
    /// `delete_document_when_final`).
    delete_document_when_final: bool,
}

/// Executions running in this process, by name (= job id): at most one per job. A start
/// claims the name before it looks at the journal or the job, and gives it back when the
/// execution ends, so two starts of one job can never interleave.
#[derive(Clone, Default)]
struct Live(Arc<std::sync::Mutex<HashSet<String>>>);

/// A claimed execution name; dropping it releases the name.
struct Claim {
    live: Live,
    name: String,
}

impl Live {
    fn claim(&self, name: &str) -> Option<Claim> {
        let mut names = self.0.lock().unwrap_or_else(|p| p.into_inner());
        names.insert(name.to_owned()).then(|| Claim {
            live: self.clone(),
            name: name.to_owned(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut names = self.live.0.lock().unwrap_or_else(|p| p.into_inner());
        names.remove(&self.name);
    }
}

impl Embedded {
    /// Opens (creating) the data folder and parses the definition.
    pub fn open(opts: EmbeddedOptions) -> Result<Self> {
        crate::private_files::create_dir_all(&opts.home).map_err(|e| {
            StageError::unavailable(format!("creating {}: {e}", opts.home.display()))
        })?;
        let store = SqliteJobStore::open(&opts.home.join("docpipe.db"))?;
        let objects = LocalObjectStore::new(
            FsObjectStore::new(opts.home.join("objects")),
            store.clone(),
            Arc::clone(&opts.clock),
        );
        let definition = Definition::parse(PIPELINE_DEFINITION)
            .map_err(|e| StageError::internal(format!("pipeline definition: {e}")))?;
        let ports = Ports {
            jobs: Arc::new(store.clone()),
            objects: Arc::new(objects.clone()),
            ocr: opts.ocr,
            extractor: opts.extractor,
            fetcher: opts.fetcher,
            clock: Arc::clone(&opts.clock),
            settings: opts.settings,
            results: Some(Arc::new(store.clone())),
        };
        let invoker = Arc::new(StageInvoker {
            ports: ports.clone(),
        });
        let journal = Arc::new(
            SqliteJournal::over(store.clone(), &opts.home.join("docpipe.db"))
                .map_err(|e| StageError::unavailable(format!("execution journal: {e}")))?,
        );
        let runner = DurableRunner::new(invoker, opts.clock, journal.clone());
        Ok(Self {
            ports,
            store,
            objects,
            definition: Arc::new(definition),
            runner,
            journal,
            live: Live::default(),
            delete_document_when_final: false,
        })
    }

    /// The same pipeline, whose submissions ask (`true`) that each job's uploaded
    /// document and its text be deleted as soon as the job is final (the result stays).
    pub fn with_document_deletion(mut self, delete_document_when_final: bool) -> Self {
        self.delete_document_when_final = delete_document_when_final;
        self
    }

    /// The same pipeline with faults injected into its stage tasks (see
    /// [`crate::faults`]); inactive settings leave it unchanged.
    pub fn with_fault_injection(mut self, faults: FaultInjection) -> Self {
        if faults.is_active() {
            let invoker = Arc::new(FaultInjectingInvoker::new(
                Arc::new(StageInvoker {
                    ports: self.ports.clone(),
                }),
                faults,
            ));
            self.runner =
                DurableRunner::new(invoker, Arc::clone(&self.ports.clock), self.journal.clone());
        }
        self
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    pub fn store(&self) -> &SqliteJobStore {
        &self.store
    }

    pub fn objects(&self) -> &LocalObjectStore {
        &self.objects
    }

    /// Creates a `queued` job and stores the submitted bytes under `uploads/{job}/{file}`
    /// (see [`lifecycle::submit`]); the caller runs its execution ([`Embedded::execute`]).
    pub async fn submit(&self, sub: Submission) -> Result<Job> {
        let id = JobId::generate(self.ports.clock.now());
        self.submit_as(id, sub, false).await
    }

    /// As [`Embedded::submit`] under a given id; `idempotent`: the id came from an
    /// idempotency record, so a job already stored under it is the answer.
    pub async fn submit_as(&self, id: JobId, sub: Submission, idempotent: bool) -> Result<Job> {
        let now = self.ports.clock.now();
        let mut job = Job::new(id, sub.kind, &sub.filename, now);
        job.owner = sub.owner;
        job.delete_document_when_final = self.delete_document_when_final;
        job.correlation_id = Some(sub.correlation_id.unwrap_or_else(|| job.id.to_string()));
        let document = match sub.content {
            Content::Bytes(bytes) => NewDocument::Inline(bytes),
            Content::Oversize(size) => NewDocument::Oversize(size),
        };
        let submitted = lifecycle::submit(
            &*self.ports.jobs,
            &*self.ports.objects,
            &*self.ports.clock,
            JobSubmission {
                job,
                document,
                idempotent,
                start: Start::ByCaller,
            },
        )
        .await
        .map_err(SubmitError::into_inner)?;
        Ok(match submitted {
            Submitted::Created(job) | Submitted::Existing(job) => job,
        })
    }

    /// Submits a file from disk, reading at most the size limit: a larger file is
    /// recorded by its size and fails in ingest without being read.
    pub async fn submit_file(&self, path: &Path, kind: DocumentKind) -> Result<Job> {
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "document".to_owned());
        let max = self.ports.settings.max_document_bytes;
        let cannot_read = |e: std::io::Error| {
            StageError::new(
                ErrorCode::ValidationError,
                format!("{}: {e}", path.display()),
            )
        };
        let file = tokio::fs::File::open(path).await.map_err(cannot_read)?;
        let size = file.metadata().await.map_err(cannot_read)?.len();
        let content = if size > max {
            Content::Oversize(size)
        } else {
            let mut bytes = Vec::with_capacity(size as usize);
            file.take(max + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(cannot_read)?;
            if bytes.len() as u64 > max {
                Content::Oversize(bytes.len() as u64)
            } else {
                Content::Bytes(bytes)
            }
        };
        self.submit(Submission {
            filename,
            kind,
            content,
            owner: None,
            correlation_id: None,
        })
        .await
    }

    /// Runs the job's execution (name = job id) to its end and stores its record.
    pub async fn execute(&self, job_id: &JobId) -> Result<ExecutionRecord> {
        self.execute_with_stop(job_id, None).await
    }

    /// As [`Embedded::execute`], abortable through `stop` (StopExecution).
    ///
    /// The job's one execution: it resumes from the journal when a previous process left
    /// it unfinished, starts when the job is queued, and is refused when the job already
    /// ended or another execution of it is running in this process. A job that is running
    /// by the store's account with no journal to resume (an edited database) is failed
    /// with that reason.
    pub async fn execute_with_stop(
        &self,
        job_id: &JobId,
        stop: Option<StopHandle>,
    ) -> Result<ExecutionRecord> {
        let Some(_claim) = self.live.claim(job_id.as_str()) else {
            return Err(StageError::new(
                ErrorCode::ValidationError,
                format!("an execution of job {job_id} is already running"),
            ));
        };
        let job = self.ports.jobs.get(job_id).await?;
        let name = job.execution_name();
        if let Some(log) = self
            .journal
            .unfinished_execution(&name)
            .await
            .map_err(journal_error)?
        {
            return self.resume(&job, &name, &log, stop).await;
        }
        if job.status == JobStatus::Queued {
            return self.start(&job, stop).await;
        }
        if job.status.is_final() {
            return Err(StageError::new(
                ErrorCode::JobAlreadyCompleted,
                format!(
                    "job {job_id} is already {}; it does not run again",
                    job.status
                ),
            ));
        }
        let err = StageError::new(
            ErrorCode::InternalError,
            "the job was running with no execution journal; submit it again",
        );
        lifecycle::fail(&*self.ports.jobs, &*self.ports.clock, job_id, &err).await?;
        Err(err)
    }

    /// Starts a new execution for a queued job.
    async fn start(&self, job: &Job, stop: Option<StopHandle>) -> Result<ExecutionRecord> {
        let input = serde_json::to_value(PipelineInput::for_job(job))
            .map_err(|e| StageError::internal(format!("execution input: {e}")))?;
        let started_at = self.ports.clock.now();
        let record = ExecutionRecord {
            name: job.execution_name(),
            job_id: Some(job.id.clone()),
            status: ExecutionState::Running,
            started_at,
            stopped_at: None,
            input: input.clone(),
            output: None,
            error: None,
            cause: None,
            history: Value::Array(Vec::new()),
        };
        // Committed with the journal's `Started` record, which follows at once.
        self.store.queue_execution(&record);
        let options = ExecutionOptions {
            name: job.execution_name(),
            state_machine_name: STATE_MACHINE_NAME.to_owned(),
            stop,
            ..ExecutionOptions::default()
        };
        let outcome = self
            .runner
            .run(&self.definition, input, options)
            .await
            .map_err(journal_error)?;
        self.complete(record, outcome).await
    }

    /// Resumes an execution a previous process left unfinished, from its journal: a Task
    /// whose result was journaled does not run again.
    async fn resume(
        &self,
        job: &Job,
        name: &str,
        log: &[JournalRecord],
        stop: Option<StopHandle>,
    ) -> Result<ExecutionRecord> {
        let job_id = &job.id;
        let record = match self.store.execution(name).await? {
            Some(r) => r,
            None => {
                let (input, started_at) = match log.first() {
                    Some(JournalRecord::Started { input, at, .. }) => (input.clone(), *at),
                    _ => (Value::Null, self.ports.clock.now()),
                };
                ExecutionRecord {
                    name: name.to_owned(),
                    job_id: Some(job_id.clone()),
                    status: ExecutionState::Running,
                    started_at,
                    stopped_at: None,
                    input,
                    output: None,
                    error: None,
                    cause: None,
                    history: Value::Array(Vec::new()),
                }
            }
        };
        info!(job_id = %job_id, "execution resumed from the journal");
        let outcome = self.runner.resume(log, stop).await.map_err(journal_error)?;
        self.complete(record, outcome).await
    }

    /// Names of executions that a previous process left unfinished (each resumes when
    /// its job is executed again).
    pub async fn unfinished(&self) -> Result<Vec<String>> {
        let logs = self.journal.unfinished().await.map_err(journal_error)?;
        Ok(logs
            .iter()
            .filter_map(|l| l.first().map(|r| r.execution().to_owned()))
            .collect())
    }

    /// Stores the outcome of executions that a previous process journaled as finished but
    /// died before recording (their record still says RUNNING): replaying the journal
    /// gives the outcome without running anything. Runs before the journal is pruned.
    /// Returns how many records it completed.
    pub async fn reconcile_executions(&self) -> Result<usize> {
        let mut done = 0;
        for record in self.store.running_executions().await? {
            let Some(log) = self
                .journal
                .execution_log(&record.name)
                .await
                .map_err(journal_error)?
            else {
                continue;
            };
            let finished = log
                .last()
                .is_some_and(|r| matches!(r, JournalRecord::Finished { .. }));
            if !finished {
                // Unfinished: the job's next execution resumes it from the journal.
                continue;
            }
            let outcome = self
                .runner
                .resume(&log, None)
                .await
                .map_err(journal_error)?;
            self.complete(record, outcome).await?;
            done += 1;
        }
        Ok(done)
    }

    /// Deletes the journal records of finished executions (their outcome is stored in
    /// the execution records).
    pub fn prune_journal(&self) {
        if let Err(e) = self.journal.prune_finished() {
            tracing::warn!(error = %e, "pruning the execution journal");
        }
    }

    /// Stores an execution's outcome and makes sure its job ended in a final status.
    async fn complete(
        &self,
        mut record: ExecutionRecord,
        outcome: ExecutionOutcome,
    ) -> Result<ExecutionRecord> {
        record.status = crate::sqlite::execution_state(outcome.status);
        record.stopped_at = Some(self.ports.clock.now());
        record.output = outcome.output.clone();
        record.error = outcome.error.clone();
        record.cause = outcome.cause.clone();
        record.history = serde_json::to_value(&outcome.history)
            .map_err(|e| StageError::internal(format!("execution history: {e}")))?;
        self.store.put_execution(&record).await?;
        // An execution that ended without reaching a recording state (a runtime error in
        // the definition, a stage that could not record, an abort) must still not leave
        // the job hanging in a non-final status.
        if let Some(job_id) = &record.job_id {
            let job = self.ports.jobs.get(job_id).await?;
            if !job.status.is_final() {
                let error = unrecorded_end(&record);
                lifecycle::fail(&*self.ports.jobs, &*self.ports.clock, job_id, &error).await?;
            }
            info!(job_id = %job_id, status = %record.status, "execution finished");
        }
        Ok(record)
    }

    pub async fn job(&self, id: &JobId) -> Result<Job> {
        self.ports.jobs.get(id).await
    }

    /// The job's final result as JSON (an invoice or a blueprint's rooms), once it has one.
    pub async fn result_json(&self, job: &Job) -> Result<Option<Value>> {
        let Some(key) = &job.keys.result else {
            return Ok(None);
        };
        let Some(bytes) = self.objects.get(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StageError::internal(format!("result {key}: {e}")))
    }

    /// The job's final result, once it has one.
    pub async fn result(&self, job: &Job) -> Result<Option<InvoiceResult>> {
        let Some(key) = &job.keys.result else {
            return Ok(None);
        };
        let Some(bytes) = self.objects.get(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StageError::internal(format!("result {key}: {e}")))
    }
}

fn journal_error(e: JournalError) -> StageError {
    match e {
        JournalError::AlreadyExists(name) => StageError::new(
            ErrorCode::ValidationError,
            format!("an execution named {name} already exists"),
        ),
        other => StageError::unavailable(format!("execution journal: {other}")),
    }
}

/// Resolves Task resources to stage functions and maps stage errors to the error names
/// the definition's Retry and Catch match.
struct StageInvoker {
    ports: Ports,
}

#[async_trait]
impl TaskInvoker for StageInvoker {
    async fn invoke(
        &self,
        resource: &str,
        input: Value,
    ) -> std::result::Result<Value, TaskFailure> {
        let Some(stage) = Stage::from_resource(resource) else {
            return Err(TaskFailure {
                error: "States.TaskFailed".into(),
                cause: format!("no local stage for resource {resource:?}"),
            });
        };
        stages::invoke(&self.ports, stage, input)
            .await
            .map_err(|e| TaskFailure {
                error: e.name().as_str().to_owned(),
                cause: e.to_cause(),
            })
    }
}

/// Why a job failed whose execution ended while the job was not final (nothing recorded
/// it): `EXECUTION_TIMED_OUT`, `EXECUTION_ABORTED` or `EXECUTION_FAILED`, as on AWS, with
/// the execution's error and cause as the message. A shutdown's abort keeps the error it
/// carries.
fn unrecorded_end(record: &ExecutionRecord) -> StageError {
    let error = record.error.as_deref().unwrap_or("States.Runtime");
    let cause = record
        .cause
        .as_deref()
        .unwrap_or("the execution ended early");
    let code = match record.status {
        ExecutionState::TimedOut => ErrorCode::ExecutionTimedOut,
        ExecutionState::Aborted if error == docpipe_core::ErrorName::Shutdown.as_str() => {
            return StageError::from_cause(error, cause);
        }
        ExecutionState::Aborted => ErrorCode::ExecutionAborted,
        _ => ErrorCode::ExecutionFailed,
    };
    StageError::new(
        code,
        format!(
            "the execution ended {}: {error}: {cause}",
            record.status.as_str()
        ),
    )
}
