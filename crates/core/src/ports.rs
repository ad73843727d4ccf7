//! The narrow ports every stage talks through. Adapters: `docpipe-local` (SQLite,
//! filesystem, local engines) and `docpipe-aws` (DynamoDB, S3, Textract, Bedrock).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::document::Document;
use crate::error::StageError;
use crate::ids::{JobId, ObjectKey};
use crate::job::{
    Actor, Cost, DocumentKind, Job, JobError, JobStatus, MediaType, OperatorChange, StatusChange,
};
use crate::result::{InvoiceResult, RoomsResult};
use crate::stages::Stage;

pub type Result<T, E = StageError> = std::result::Result<T, E>;

/// Changes to a job's data that ride along with a status change or stand alone. `None`
/// leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPatch {
    pub media_type: Option<MediaType>,
    pub size_bytes: Option<u64>,
    pub content_sha256: Option<String>,
    pub upload_key: Option<ObjectKey>,
    pub document_key: Option<ObjectKey>,
    pub ocr_key: Option<ObjectKey>,
    pub extraction_key: Option<ObjectKey>,
    pub result_key: Option<ObjectKey>,
    pub error: Option<JobError>,
    /// Pages processed (replaces the counter).
    pub pages: Option<u32>,
    pub ocr_pages: Option<u32>,
    /// A stage's duration in milliseconds (added to the stage's counter).
    pub stage_ms: Option<(Stage, u64)>,
    /// The earlier job whose result this one reuses (content-hash dedupe).
    pub deduplicated_from: Option<JobId>,
    /// Model tokens (input, output) consumed; added to the counters.
    pub model_tokens: Option<(u64, u64)>,
    /// Where the pipeline's own result stays once a reviewed version replaces it.
    pub machine_result_key: Option<ObjectKey>,
    /// Drops the job's error (a retried job runs without its old reason).
    pub clear_error: bool,
    /// The attempt the job is now in (a retry).
    pub attempt: Option<u32>,
    /// A person makes this change: the store checks the move against
    /// [`JobStatus::can_be_moved_by_operator`] instead of the pipeline's table and records
    /// who did what with the status change.
    pub operator: Option<OperatorChange>,
}

impl JobPatch {
    /// Who makes the change this patch rides along with.
    pub fn actor(&self) -> Actor {
        if self.operator.is_some() {
            Actor::Operator
        } else {
            Actor::Pipeline
        }
    }

    /// The history entry of a status change to `to` at `at` made with this patch.
    pub fn status_change(&self, to: JobStatus, at: DateTime<Utc>) -> StatusChange {
        StatusChange {
            status: to,
            at,
            operator: self.operator.clone(),
        }
    }

    /// Applies the patch to a job in memory: the one definition of what a patch means,
    /// used by every store.
    pub fn apply(&self, job: &mut Job) {
        fn set<T: Clone>(slot: &mut Option<T>, v: &Option<T>) {
            if let Some(v) = v {
                *slot = Some(v.clone());
            }
        }
        set(&mut job.media_type, &self.media_type);
        set(&mut job.size_bytes, &self.size_bytes);
        set(&mut job.content_sha256, &self.content_sha256);
        set(&mut job.keys.upload, &self.upload_key);
        set(&mut job.keys.document, &self.document_key);
        set(&mut job.keys.ocr, &self.ocr_key);
        set(&mut job.keys.extraction, &self.extraction_key);
        set(&mut job.keys.result, &self.result_key);
        set(&mut job.keys.machine_result, &self.machine_result_key);
        if self.clear_error {
            job.error = None;
        }
        set(&mut job.error, &self.error);
        if let Some(attempt) = self.attempt {
            job.attempt = attempt;
        }
        set(&mut job.deduplicated_from, &self.deduplicated_from);
        let Cost {
            pages,
            stage_ms,
            ocr_pages,
            model_input_tokens,
            model_output_tokens,
        } = &mut job.cost;
        if let Some((input, output)) = self.model_tokens {
            *model_input_tokens = model_input_tokens.saturating_add(input);
            *model_output_tokens = model_output_tokens.saturating_add(output);
        }
        if let Some(p) = self.pages {
            *pages = p;
        }
        if let Some(p) = self.ocr_pages {
            *ocr_pages = p;
        }
        if let Some((stage, ms)) = &self.stage_ms {
            *stage_ms.entry(*stage).or_default() += ms;
        }
    }
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub kind: Option<DocumentKind>,
    /// Only jobs of this owner (an API key name); `None` lists all.
    pub owner: Option<String>,
    /// Page size; stores cap it at 100 and default to 20.
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub next_cursor: Option<String>,
}

/// A mark of a store's whole state, cheap to read: two equal tokens read at different
/// times mean nothing was committed in between, by this process or any other. Readers
/// use it to keep answers they derived from the store (the API's key lookups and job
/// views) for exactly as long as they are true. The bytes are opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeToken(pub [u8; 48]);

/// Durable job records with atomic, table-checked status transitions.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// The store's current [`ChangeToken`]; `None` when the store cannot tell cheaply
    /// (then nothing derived from it may be kept). Read it before reading the data.
    fn change_token(&self) -> Option<ChangeToken> {
        None
    }

    /// Stores a new job (and its first history entry). Fails if the id exists.
    async fn create(&self, job: &Job) -> Result<()>;
    /// `JOB_NOT_FOUND` if absent.
    async fn get(&self, id: &JobId) -> Result<Job>;
    /// Atomically: reads the current status, checks `current -> to` against the table
    /// for the patch's actor ([`JobStatus::check_move`]), applies `patch`, records the
    /// change at `at` (with the operator's part, [`JobPatch::status_change`]). Returns the
    /// updated job.
    async fn transition(
        &self,
        id: &JobId,
        to: JobStatus,
        patch: JobPatch,
        at: DateTime<Utc>,
    ) -> Result<Job>;
    /// Applies `patch` without changing the status.
    async fn update(&self, id: &JobId, patch: JobPatch, at: DateTime<Utc>) -> Result<Job>;
    /// Every status change, oldest first.
    async fn history(&self, id: &JobId) -> Result<Vec<StatusChange>>;
    /// The job and its history in one read (`JOB_NOT_FOUND` if absent). Stores that can
    /// read both at once (one transaction, one round trip) override it.
    async fn get_with_history(&self, id: &JobId) -> Result<(Job, Vec<StatusChange>)> {
        let job = self.get(id).await?;
        let history = self.history(id).await?;
        Ok((job, history))
    }
    async fn list(&self, filter: &JobFilter) -> Result<JobPage>;
}

/// Bytes by key.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<()>;
    /// `None` if absent.
    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>>;
    /// The size of an object without reading it; `None` if absent.
    async fn size(&self, key: &ObjectKey) -> Result<Option<u64>>;
    async fn delete(&self, key: &ObjectKey) -> Result<()>;
    /// Stores an object that the caller's next job store write refers to (a stage's
    /// output and the patch naming it, an upload and the job created with it): the object
    /// need only be durable when that write is. A host whose objects and jobs share one
    /// database commits both together; the default is [`ObjectStore::put`].
    async fn put_before_next_write(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<()> {
        self.put(key, bytes).await
    }
    /// Moves the object at `from` to `to`, replacing what `to` held; `bytes` is its
    /// content, which the caller has read. This writes `to`, then deletes `from`; a store
    /// that can move an object without writing it again does that instead.
    async fn relocate(&self, from: &ObjectKey, to: &ObjectKey, bytes: Vec<u8>) -> Result<()> {
        self.put(to, bytes).await?;
        self.delete(from).await
    }
}

/// Turns document bytes into the document model.
#[async_trait]
pub trait Ocr: Send + Sync {
    async fn recognize(&self, bytes: Vec<u8>, media_type: MediaType) -> Result<Document>;
}

/// Finds the fields of a document in its model.
#[async_trait]
pub trait Extractor: Send + Sync {
    /// Invoice fields, lines and tax breakdown; unverified. `original` is the document's
    /// bytes, for extractors that read embedded data (e-invoice XML).
    async fn extract_invoice(
        &self,
        document: &Document,
        original: Option<&[u8]>,
    ) -> Result<InvoiceResult>;

    /// Rooms on a floor plan (PNG, JPEG, or a PDF whose page is a scan); unverified.
    /// Extractors without room detection refuse with `UNSUPPORTED_DOCUMENT`.
    async fn extract_rooms(&self, bytes: &[u8], media_type: MediaType) -> Result<RoomsResult> {
        let _ = bytes;
        Err(StageError::new(
            crate::error::ErrorCode::UnsupportedDocument,
            format!(
                "this extractor does not detect rooms ({} blueprint)",
                media_type.as_str()
            ),
        ))
    }
}

/// A document fetched from a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// The last path segment of the final URL, if any.
    pub filename: Option<String>,
}

/// Fetches documents from client-given URLs. Implementations refuse private, loopback,
/// link-local, unique-local and multicast destinations on every hop (`URL_NOT_ALLOWED`)
/// and cap size and time (`URL_FETCH_FAILED`, `FILE_TOO_LARGE`).
#[async_trait]
pub trait Fetcher: Send + Sync {
    /// Checks a URL (scheme, every resolved address) without fetching it, so an API can
    /// refuse it before creating a job.
    async fn check(&self, url: &str) -> Result<()>;
    async fn fetch(&self, url: &str, max_bytes: u64) -> Result<Fetched>;
}

/// Room for one execution, taken by [`Orchestrator::admit`] before a job is stored (so a
/// full queue refuses a request before anything exists) and spent by
/// [`Orchestrator::start_admitted`]. Dropped unused, it gives the room back.
pub struct Admission(Option<Box<dyn std::any::Any + Send>>);

impl Admission {
    /// Holds nothing: for orchestrators that have no queue of their own to fill.
    pub fn unlimited() -> Self {
        Self(None)
    }

    /// Holds `room`, which the orchestrator that made it knows how to spend.
    pub fn holding(room: Box<dyn std::any::Any + Send>) -> Self {
        Self(Some(room))
    }

    /// What it holds, for the orchestrator that made it.
    pub fn into_room(self) -> Option<Box<dyn std::any::Any + Send>> {
        self.0
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Admission").field(&self.0.is_some()).finish()
    }
}

/// Starts and stops executions of the pipeline: the embedded worker pool locally, Step
/// Functions on AWS. Execution name = job id.
#[async_trait]
pub trait Orchestrator: Send + Sync {
    /// Starts (or queues) the job's execution. `SERVICE_UNAVAILABLE` when the queue is full.
    async fn start(&self, job: &Job) -> Result<()>;
    /// Takes room for one execution before its job exists; `SERVICE_UNAVAILABLE` when
    /// there is none. By default there is always room.
    async fn admit(&self) -> Result<Admission> {
        Ok(Admission::unlimited())
    }
    /// Starts the job's execution in the room `admission` holds.
    async fn start_admitted(&self, job: &Job, admission: Admission) -> Result<()> {
        drop(admission);
        self.start(job).await
    }
    /// Stops the job's current execution ([`Job::execution_name`]) if it is running
    /// (StopExecution); the job's status is the caller's business.
    async fn stop(&self, job: &Job, cause: &str) -> Result<()>;
    /// `Ok` when executions can be started.
    async fn health(&self) -> Result<()>;
}

/// Dependencies a host knows how to check beyond the ports (`GET /health`): on AWS each
/// table, bucket and model setting.
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// Each dependency by name: `Ok` with what was checked, or the error.
    async fn check(&self) -> Vec<(String, Result<String>)>;
}

/// Tunables of the stages, loaded once with the rest of the settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSettings {
    /// Largest accepted document, in bytes (50 MiB).
    pub max_document_bytes: u64,
    /// A field below this confidence puts the job in `needs_review`.
    pub review_confidence_threshold: f32,
    /// Content-hash dedupe: a finished job's result is reused for the same bytes, kind and
    /// [`dedupe_profile`](Self::dedupe_profile) for this many seconds. 0 (the default
    /// here; hosts turn it on) or no [`Ports::results`] turns it off.
    pub dedupe_ttl_secs: u64,
    /// What else a result depends on (extractor, its settings, the build): part of the
    /// dedupe key, so a differently configured pipeline never reuses another's result.
    pub dedupe_profile: String,
}

impl Default for StageSettings {
    fn default() -> Self {
        Self {
            max_document_bytes: 50 * 1024 * 1024,
            review_confidence_threshold: 0.8,
            dedupe_ttl_secs: 0,
            dedupe_profile: String::from("default"),
        }
    }
}

/// A finished job's verified result, reusable for the same content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedResult {
    /// The job that produced it.
    pub job_id: JobId,
    /// Its verification: where the verified result is and the review verdict.
    pub verification: crate::stages::VerifyOutput,
}

/// The dedupe cache: results by content key (see [`crate::stages::dedupe_key`]).
/// SQLite locally, the DynamoDB `preview_cache` table on AWS.
#[async_trait]
pub trait ResultCache: Send + Sync {
    /// The entry for `key` if there is one that has not expired at `now`.
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<CachedResult>>;
    /// Stores (or replaces) the entry for `key` until `expires_at`; `now` lets a store
    /// sweep what has expired.
    async fn put(
        &self,
        key: &str,
        entry: &CachedResult,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
}

/// Everything a stage may touch.
#[derive(Clone)]
pub struct Ports {
    pub jobs: Arc<dyn JobStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub ocr: Arc<dyn Ocr>,
    pub extractor: Arc<dyn Extractor>,
    pub fetcher: Arc<dyn Fetcher>,
    pub clock: Arc<dyn Clock>,
    pub settings: StageSettings,
    /// The dedupe cache; `None` turns dedupe off.
    pub results: Option<Arc<dyn ResultCache>>,
}

/// A document page as an image, for a reviewer to see what the machine read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageImage {
    pub media_type: MediaType,
    pub bytes: Vec<u8>,
}

/// Shows a job's document pages as images: PNG and JPEG documents as they are, PDF pages
/// rendered where the host has a renderer.
#[async_trait]
pub trait PageImages: Send + Sync {
    /// Page `page` (1-based) of the job's accepted document; `None` when the job has no
    /// such page or the host cannot draw it.
    async fn page_image(&self, job: &Job, page: u32) -> Result<Option<PageImage>>;
}

/// The page images every host can give without a renderer: an image document's one page
/// (what `docpipe serve` falls back to, and what the API Lambda serves).
pub struct StoredImagePages(pub Arc<dyn ObjectStore>);

#[async_trait]
impl PageImages for StoredImagePages {
    async fn page_image(&self, job: &Job, page: u32) -> Result<Option<PageImage>> {
        let (Some(key), Some(media_type)) = (&job.keys.document, job.media_type) else {
            return Ok(None);
        };
        if page != 1 || !matches!(media_type, MediaType::Png | MediaType::Jpeg) {
            return Ok(None);
        }
        Ok(self
            .0
            .get(key)
            .await?
            .map(|bytes| PageImage { media_type, bytes }))
    }
}
