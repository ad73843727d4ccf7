//! Jobs and their lifecycle. The status transition table is the single authority on which
//! changes are legal; stores apply it atomically, so a cancelled job is never resumed.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, StageError};
use crate::ids::{JobId, ObjectKey};
use crate::stages::Stage;

/// Where a job is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Ingesting,
    Ocr,
    Extracting,
    Verifying,
    Completed,
    NeedsReview,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 9] = [
        Self::Queued,
        Self::Ingesting,
        Self::Ocr,
        Self::Extracting,
        Self::Verifying,
        Self::Completed,
        Self::NeedsReview,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Ingesting => "ingesting",
            Self::Ocr => "ocr",
            Self::Extracting => "extracting",
            Self::Verifying => "verifying",
            Self::Completed => "completed",
            Self::NeedsReview => "needs_review",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Final statuses never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::NeedsReview | Self::Failed | Self::Cancelled
        )
    }

    /// The transition table. Forward through the stages (a blueprint skips `ocr`, a
    /// deduplicated job everything after ingest), to
    /// `failed` or `cancelled` from any non-final status, and nothing out of a final one.
    /// Re-entering the current stage status is allowed so a retried stage is idempotent.
    pub fn can_transition_to(self, to: JobStatus) -> bool {
        use JobStatus::*;
        if self.is_final() {
            return false;
        }
        if self == to {
            return true;
        }
        matches!(
            (self, to),
            (_, Failed | Cancelled)
                | (Queued, Ingesting)
                | (Ingesting, Ocr | Extracting)
                // A duplicate of a finished job takes its result straight from ingest.
                | (Ingesting, Completed | NeedsReview)
                | (Ocr, Extracting)
                | (Extracting, Verifying)
                | (Verifying, Completed | NeedsReview)
        )
    }

    /// The moves a person makes, outside the pipeline's table: a reviewer approves or
    /// corrects (`needs_review -> completed`) or rejects (`needs_review -> failed`) a job
    /// in review, and a failed job is retried (`failed -> queued`). Nothing else.
    pub fn can_be_moved_by_operator(self, to: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, to),
            (NeedsReview, Completed | Failed) | (Failed, Queued)
        )
    }

    /// `Ok` if the table allows `self -> to` for `actor`, else the error a user sees.
    pub fn check_move(self, to: JobStatus, actor: Actor) -> Result<(), StageError> {
        match actor {
            Actor::Pipeline => self.check_transition(to),
            Actor::Operator if self.can_be_moved_by_operator(to) => Ok(()),
            Actor::Operator => Err(StageError::new(
                if self == Self::Cancelled {
                    ErrorCode::JobCancelled
                } else {
                    ErrorCode::InvalidTransition
                },
                format!("job is {self}; it cannot be moved to {to}"),
            )),
        }
    }

    /// `Ok` if the table allows `self -> to`, else the error a user sees.
    pub fn check_transition(self, to: JobStatus) -> Result<(), StageError> {
        if self.can_transition_to(to) {
            return Ok(());
        }
        let code = match self {
            Self::Cancelled => ErrorCode::JobCancelled,
            s if s.is_final() => ErrorCode::JobAlreadyCompleted,
            _ => ErrorCode::InvalidTransition,
        };
        Err(StageError::new(
            code,
            format!("job cannot move from {self} to {to}"),
        ))
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the client says the document is; decides the extract branch of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    #[default]
    Invoice,
    Blueprint,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::Blueprint => "blueprint",
        }
    }

    /// The formats this kind is processed from. Every kind takes PDFs, PNGs and JPEGs: a
    /// scanned invoice goes through raster OCR (an OCR port without an engine fails such a
    /// job with `UNSUPPORTED_DOCUMENT`, naming what to install).
    pub fn accepts(self, media_type: MediaType) -> bool {
        match self {
            Self::Invoice | Self::Blueprint => matches!(
                media_type,
                MediaType::Pdf | MediaType::Png | MediaType::Jpeg
            ),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invoice" => Some(Self::Invoice),
            "blueprint" => Some(Self::Blueprint),
            _ => None,
        }
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The detected (never the claimed) format of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaType {
    #[serde(rename = "application/pdf")]
    Pdf,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/jpeg")]
    Jpeg,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
        }
    }
}

/// The error a failed job carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<StageError> for JobError {
    fn from(e: StageError) -> Self {
        Self {
            code: e.code,
            message: e.message,
        }
    }
}

/// Who moves a job: the pipeline (the transition table) or a person (review, retry; see
/// [`JobStatus::can_be_moved_by_operator`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Pipeline,
    Operator,
}

/// What a person did to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// Accepted a job in review as the machine read it.
    Approve,
    /// Accepted a job in review with corrected fields or lines.
    Correct,
    /// Refused a job in review: it failed with `REJECTED_IN_REVIEW`.
    Reject,
    /// Ran a failed job again from its stored document.
    Retry,
}

impl OperatorAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Correct => "correct",
            Self::Reject => "reject",
            Self::Retry => "retry",
        }
    }
}

/// A person's move, recorded with the status change it caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorChange {
    /// The API key name of the person.
    pub by: String,
    pub action: OperatorAction,
    /// The fields a correction changed (`lines` when the line items changed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// A digest of the request, so a repeated request is recognised and answered again
    /// instead of refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// One recorded status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: JobStatus,
    pub at: DateTime<Utc>,
    /// Set when a person made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorChange>,
}

impl StatusChange {
    pub fn new(status: JobStatus, at: DateTime<Utc>) -> Self {
        Self {
            status,
            at,
            operator: None,
        }
    }
}

/// Cost counters: what a job consumed, for `docpipe cost` and billing on AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    pub pages: u32,
    /// Milliseconds spent in each stage.
    pub stage_ms: BTreeMap<Stage, u64>,
    pub ocr_pages: u32,
    /// Tokens a model extractor (Bedrock) consumed for the job; 0 for local extractors.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub model_input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub model_output_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Object keys a job accumulates as it moves through the stages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectKeys {
    /// Where the submitted bytes were put before ingest checked them.
    pub upload: Option<ObjectKey>,
    /// The accepted document (`documents/...` or `blueprints/...`).
    pub document: Option<ObjectKey>,
    /// The OCR document model (JSON).
    pub ocr: Option<ObjectKey>,
    /// The extracted, unverified fields (JSON).
    pub extraction: Option<ObjectKey>,
    /// The final result (JSON); after a review, the reviewed version.
    pub result: Option<ObjectKey>,
    /// The result as the pipeline made it, kept beside a reviewed version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_result: Option<ObjectKey>,
}

/// One submitted document and everything known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub status: JobStatus,
    pub kind: DocumentKind,
    /// The client's filename, sanitised.
    pub filename: String,
    pub media_type: Option<MediaType>,
    pub size_bytes: Option<u64>,
    pub content_sha256: Option<String>,
    pub keys: ObjectKeys,
    /// Where ingest fetches the document from, for jobs created from a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// The API key name that owns the job; `None` for jobs made by the CLI.
    pub owner: Option<String>,
    /// Carried into the execution input and every stage's log line.
    pub correlation_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub error: Option<JobError>,
    pub cost: Cost,
    /// The earlier job with the same content whose result this job reuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicated_from: Option<JobId>,
    /// How many times the job was retried: its current execution is the attempt-th
    /// re-run (see [`Job::execution_name`]).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub attempt: u32,
    /// Decided at submission (the key's choice or the host's setting): the uploaded
    /// document and its text are deleted as soon as the job is final; the result stays.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_document_when_final: bool,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

impl Job {
    /// A new job in `queued`.
    pub fn new(id: JobId, kind: DocumentKind, filename: &str, at: DateTime<Utc>) -> Self {
        Self {
            id,
            status: JobStatus::Queued,
            kind,
            filename: crate::ids::sanitize_filename(filename),
            media_type: None,
            size_bytes: None,
            content_sha256: None,
            keys: ObjectKeys::default(),
            source_url: None,
            owner: None,
            correlation_id: None,
            created_at: at,
            updated_at: at,
            error: None,
            cost: Cost::default(),
            deduplicated_from: None,
            attempt: 0,
            delete_document_when_final: false,
        }
    }

    /// The name of the job's current execution: the job id for the first run,
    /// `{job_id}-r{n}` for the n-th retry, so every run keeps its own history.
    pub fn execution_name(&self) -> String {
        execution_name(&self.id, self.attempt)
    }

    /// The names of every execution the job has had, oldest first.
    pub fn execution_names(&self) -> Vec<String> {
        (0..=self.attempt)
            .map(|n| execution_name(&self.id, n))
            .collect()
    }
}

/// The job an execution (named by [`execution_name`]) belongs to.
pub fn job_of_execution(name: &str) -> Option<JobId> {
    if let Ok(id) = JobId::parse(name) {
        return Some(id);
    }
    let (id, attempt) = name.rsplit_once("-r")?;
    attempt.parse::<u32>().ok()?;
    JobId::parse(id).ok()
}

/// The name of attempt `attempt` of job `id` (0 is the first run).
pub fn execution_name(id: &JobId, attempt: u32) -> String {
    if attempt == 0 {
        id.to_string()
    } else {
        format!("{id}-r{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    /// Every pair of statuses, against the table as the guide states it.
    #[test]
    fn transition_table_every_pair() {
        let allowed: &[(JobStatus, JobStatus)] = &[
            (Queued, Ingesting),
            (Ingesting, Ocr),
            (Ingesting, Extracting),
            (Ocr, Extracting),
            (Extracting, Verifying),
            (Verifying, Completed),
            (Verifying, NeedsReview),
            // Content-hash dedupe: a duplicate takes a finished job's result at ingest.
            (Ingesting, Completed),
            (Ingesting, NeedsReview),
        ];
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                let expected = if from.is_final() {
                    false
                } else {
                    from == to || matches!(to, Failed | Cancelled) || allowed.contains(&(from, to))
                };
                assert_eq!(
                    from.can_transition_to(to),
                    expected,
                    "{from} -> {to} should be {expected}"
                );
                assert_eq!(from.check_transition(to).is_ok(), expected);
            }
        }
    }

    #[test]
    fn nothing_leaves_a_final_status() {
        for from in [Completed, NeedsReview, Failed, Cancelled] {
            for to in JobStatus::ALL {
                let err = from.check_transition(to).expect_err("final");
                let want = if from == Cancelled {
                    ErrorCode::JobCancelled
                } else {
                    ErrorCode::JobAlreadyCompleted
                };
                assert_eq!(err.code, want);
            }
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).expect("serialises"),
                serde_json::json!(s.as_str())
            );
        }
    }
}
