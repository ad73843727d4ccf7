//! The five stages (ingest, ocr, extract, verify, finalize) and the failure recorder, as
//! plain async functions over [`Ports`]. Each takes and returns a small serde payload:
//! pointers to objects, never document bytes. No stage knows whether it runs in the
//! embedded interpreter or in a Lambda.
//!
//! Every stage first moves the job's status with a table-checked transition, so a job
//! cancelled between stages stops at its next stage with `DocPipe.Cancelled`.

mod extract;
mod finalize;
mod ingest;
mod ocr;
pub mod verify;

use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use sha2::Digest;

use crate::error::{ErrorCode, StageError};
use crate::ids::{JobId, ObjectKey};
use crate::job::{DocumentKind, Job, JobStatus, MediaType};
use crate::ports::{JobPatch, Ports};

pub use extract::extract;
pub use finalize::{drop_document, finalize, record_failure};
pub use ingest::ingest;
pub use ocr::ocr;
pub use verify::verify;

/// The state machine's execution input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineInput {
    pub job_id: JobId,
    pub kind: DocumentKind,
    /// Carried into every stage's log lines; the request id that created the job.
    pub correlation_id: String,
}

impl PipelineInput {
    /// The execution input for a job: the one place it is built, on every host.
    pub fn for_job(job: &Job) -> Self {
        PipelineInput {
            job_id: job.id.clone(),
            kind: job.kind,
            correlation_id: job
                .correlation_id
                .clone()
                .unwrap_or_else(|| job.id.to_string()),
        }
    }
}

/// Input of every stage that needs only the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRef {
    pub job_id: JobId,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// What ingest accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestOutput {
    pub key: ObjectKey,
    pub media_type: MediaType,
    pub size_bytes: u64,
    pub sha256: String,
    /// Set when a finished job had the same content (and kind, and dedupe profile): the
    /// state machine then skips OCR, extract and verify and finalizes with its
    /// verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicated: Option<crate::ports::CachedResult>,
}

/// The dedupe cache key of a document: its sha256, its kind and the pipeline's dedupe
/// profile. The hash decides; kind and profile keep an invoice from reusing a blueprint's
/// result, or one extractor configuration another's.
pub fn dedupe_key(sha256: &str, kind: DocumentKind, profile: &str) -> String {
    let profile_hash = hex::encode(&sha2::Sha256::digest(profile.as_bytes())[..8]);
    format!("{sha256}:{kind}:{profile_hash}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrInput {
    pub job_id: JobId,
    #[serde(default)]
    pub correlation_id: Option<String>,
    pub document: IngestOutput,
}

/// Where the document model was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrOutput {
    pub key: ObjectKey,
    pub pages: u32,
    pub words: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractInput {
    pub job_id: JobId,
    #[serde(default)]
    pub correlation_id: Option<String>,
    pub kind: DocumentKind,
    pub document: IngestOutput,
    /// Absent on the blueprint branch, which skips text OCR.
    #[serde(default)]
    pub ocr: Option<OcrOutput>,
}

/// Where the unverified extraction was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractOutput {
    pub key: ObjectKey,
    pub fields: u32,
    pub lines: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyInput {
    pub job_id: JobId,
    #[serde(default)]
    pub correlation_id: Option<String>,
    pub extraction: ExtractOutput,
}

/// The verdict, which the state machine's Choice routes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyOutput {
    pub key: ObjectKey,
    pub needs_review: bool,
    pub review_reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizeInput {
    pub job_id: JobId,
    #[serde(default)]
    pub correlation_id: Option<String>,
    pub verification: VerifyOutput,
    /// `completed` or `needs_review`, set by the state machine's routing.
    pub outcome: JobStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizeOutput {
    pub job_id: JobId,
    pub status: JobStatus,
    pub result_key: Option<ObjectKey>,
}

/// A caught state-machine error: `{"Error", "Cause"}` as Catch writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordFailureInput {
    pub job_id: JobId,
    #[serde(default)]
    pub correlation_id: Option<String>,
    pub error: CaughtError,
}

/// The stages by name; `Resource` placeholders in the state machine name them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Ingest,
    Ocr,
    Extract,
    Verify,
    Finalize,
    RecordFailure,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Self::Ingest,
        Self::Ocr,
        Self::Extract,
        Self::Verify,
        Self::Finalize,
        Self::RecordFailure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Ocr => "ocr",
            Self::Extract => "extract",
            Self::Verify => "verify",
            Self::Finalize => "finalize",
            Self::RecordFailure => "record_failure",
        }
    }

    /// The placeholder the definition uses for this stage's function, e.g.
    /// `${IngestFunctionArn}`; SAM substitutes the deployed ARN.
    pub fn resource_placeholder(self) -> &'static str {
        match self {
            Self::Ingest => "${IngestFunctionArn}",
            Self::Ocr => "${OcrFunctionArn}",
            Self::Extract => "${ExtractFunctionArn}",
            Self::Verify => "${VerifyFunctionArn}",
            Self::Finalize => "${FinalizeFunctionArn}",
            Self::RecordFailure => "${RecordFailureFunctionArn}",
        }
    }

    /// The stage a Task `Resource` names, by placeholder or by stage name.
    pub fn from_resource(resource: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.resource_placeholder() == resource || s.as_str() == resource)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runs one stage on a JSON payload: the single entry point for interpreters and Lambda
/// handlers that receive untyped input.
pub async fn invoke(ports: &Ports, stage: Stage, input: Value) -> Result<Value, StageError> {
    match stage {
        Stage::Ingest => to_value(ingest(ports, from_value(input)?).await?),
        Stage::Ocr => to_value(ocr(ports, from_value(input)?).await?),
        Stage::Extract => to_value(extract(ports, from_value(input)?).await?),
        Stage::Verify => to_value(verify(ports, from_value(input)?).await?),
        Stage::Finalize => to_value(finalize(ports, from_value(input)?).await?),
        Stage::RecordFailure => to_value(record_failure(ports, from_value(input)?).await?),
    }
}

fn from_value<T: DeserializeOwned>(input: Value) -> Result<T, StageError> {
    serde_json::from_value(input)
        .map_err(|e| StageError::new(ErrorCode::ValidationError, format!("stage input: {e}")))
}

fn to_value<T: Serialize>(output: T) -> Result<Value, StageError> {
    serde_json::to_value(output).map_err(|e| StageError::internal(format!("stage output: {e}")))
}

/// Reads a JSON object from the store.
async fn read_json<T: DeserializeOwned>(ports: &Ports, key: &ObjectKey) -> Result<T, StageError> {
    read_object_json(&*ports.objects, key).await
}

/// Reads the JSON object at `key`: an error names a missing or invalid object.
pub(crate) async fn read_object_json<T: DeserializeOwned>(
    objects: &dyn crate::ports::ObjectStore,
    key: &ObjectKey,
) -> Result<T, StageError> {
    let bytes = objects
        .get(key)
        .await?
        .ok_or_else(|| StageError::internal(format!("object {key} is missing")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StageError::internal(format!("object {key} is not valid: {e}")))
}

async fn write_json<T: Serialize>(
    ports: &Ports,
    key: &ObjectKey,
    value: &T,
) -> Result<(), StageError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| StageError::internal(format!("serialising {key}: {e}")))?;
    // Every stage names what it wrote in its job's next update.
    ports.objects.put_before_next_write(key, bytes).await
}

/// Moves the job into a stage's status; the start of every stage. Returns the job as the
/// transition left it, so a stage that needs the job does not read it again.
async fn enter(ports: &Ports, job_id: &JobId, status: JobStatus) -> Result<Job, StageError> {
    ports
        .jobs
        .transition(job_id, status, JobPatch::default(), ports.clock.now())
        .await
}

/// Milliseconds since `start` on the ports' clock.
fn elapsed_ms(ports: &Ports, start: chrono::DateTime<chrono::Utc>) -> u64 {
    (ports.clock.now() - start).num_milliseconds().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dedupe_key_separates_content_kind_and_profile() {
        let a = "ab".repeat(32);
        let b = "cd".repeat(32);
        let key = dedupe_key(&a, DocumentKind::Invoice, "p1");
        assert!(key.starts_with(&a), "{key}");
        assert_eq!(key, dedupe_key(&a, DocumentKind::Invoice, "p1"), "stable");
        for other in [
            dedupe_key(&b, DocumentKind::Invoice, "p1"),
            dedupe_key(&a, DocumentKind::Blueprint, "p1"),
            dedupe_key(&a, DocumentKind::Invoice, "p2"),
        ] {
            assert_ne!(key, other);
        }
    }
}
