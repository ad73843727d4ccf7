//! Events out: every job status change becomes a `job.status.v1` event, a CloudEvents 1.0
//! JSON document whose schema is `schemas/job.status.v1.schema.json`. Hosts write the event
//! together with the status change (the embedded host in the same SQLite transaction, an
//! outbox; AWS from the table's stream to EventBridge) and hand it on to webhooks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::JobId;
use crate::job::{DocumentKind, Job, JobStatus};
use crate::ports::Result;

/// The type of a job status change event.
pub const JOB_STATUS_V1: &str = "job.status.v1";

/// Every event type a webhook can subscribe to.
pub const EVENT_TYPES: &[&str] = &[JOB_STATUS_V1];

/// The JSON Schema of [`JOB_STATUS_V1`] events, as shipped in `schemas/`.
pub const JOB_STATUS_V1_SCHEMA: &str = include_str!("../../../schemas/job.status.v1.schema.json");

/// Where the schema is published: the events' `dataschema`.
pub const JOB_STATUS_V1_SCHEMA_URI: &str = "https://docpipe.dev/schemas/job.status.v1.schema.json";

/// A CloudEvents 1.0 event in its JSON format, with a job status change as its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatusEvent {
    pub specversion: String,
    /// Unique per status change: `{job_id}.{n}` for the job's n-th status, so a receiver
    /// can drop a delivery it has seen.
    pub id: String,
    /// The host that produced it (`urn:docpipe:embedded`, `urn:docpipe:aws`).
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    /// The job id.
    pub subject: String,
    pub datacontenttype: String,
    pub dataschema: String,
    pub data: JobStatusData,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatusData {
    pub job_id: JobId,
    pub status: JobStatus,
    /// `None` for a job's first status.
    pub previous_status: Option<JobStatus>,
    pub kind: DocumentKind,
    /// The job's error code once it failed.
    pub error_code: Option<String>,
    /// Where the result is read, once the job has one (`/api/v1/jobs/{id}/result`).
    pub result_link: Option<String>,
}

impl JobStatusEvent {
    /// The event of `job` having just entered its status from `previous`; `seq` is the
    /// number of the job's statuses so far (1 for its first).
    pub fn for_change(
        job: &Job,
        previous: Option<JobStatus>,
        seq: u64,
        source: &str,
        at: DateTime<Utc>,
    ) -> Self {
        let has_result = matches!(job.status, JobStatus::Completed | JobStatus::NeedsReview)
            && job.keys.result.is_some();
        Self {
            specversion: "1.0".to_owned(),
            id: format!("{}.{seq}", job.id),
            source: source.to_owned(),
            event_type: JOB_STATUS_V1.to_owned(),
            time: at,
            subject: job.id.to_string(),
            datacontenttype: "application/json".to_owned(),
            dataschema: JOB_STATUS_V1_SCHEMA_URI.to_owned(),
            data: JobStatusData {
                job_id: job.id.clone(),
                status: job.status,
                previous_status: previous,
                kind: job.kind,
                error_code: job
                    .error
                    .as_ref()
                    .filter(|_| job.status == JobStatus::Failed)
                    .map(|e| e.code.as_str().to_owned()),
                result_link: has_result.then(|| format!("/api/v1/jobs/{}/result", job.id)),
            },
        }
    }

    /// The event as its JSON text.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| crate::StageError::internal(format!("event {}: {e}", self.id)))
    }
}

/// An event as an outbox holds it: its place in the outbox's order, its owner (the tenant
/// whose webhooks receive it) and its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Increases with every event written.
    pub seq: u64,
    pub id: String,
    pub event_type: String,
    pub job_id: JobId,
    pub owner: Option<String>,
    pub at: DateTime<Utc>,
    /// The CloudEvents JSON, as delivered.
    pub json: String,
}

/// The outbox: events written with the status changes they describe, read in order.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Events after `after` (a `seq`), oldest first, at most `limit`.
    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<StoredEvent>>;
    /// The last event's `seq` (0 when there is none).
    async fn last_seq(&self) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use crate::job::JobError;

    fn at() -> DateTime<Utc> {
        "2025-03-01T10:00:00Z".parse().expect("time")
    }

    #[test]
    fn an_event_names_the_change_and_its_job() {
        let mut job = Job::new(JobId::generate(at()), DocumentKind::Invoice, "a.pdf", at());
        job.status = JobStatus::Failed;
        job.error = Some(JobError {
            code: ErrorCode::InvalidFileFormat,
            message: "no".into(),
        });
        let e = JobStatusEvent::for_change(
            &job,
            Some(JobStatus::Ingesting),
            3,
            "urn:docpipe:test",
            at(),
        );
        let v: serde_json::Value =
            serde_json::from_str(&e.to_json().expect("json")).expect("parses");
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], JOB_STATUS_V1);
        assert_eq!(v["id"], format!("{}.3", job.id));
        assert_eq!(v["subject"], job.id.as_str());
        assert_eq!(v["data"]["status"], "failed");
        assert_eq!(v["data"]["previous_status"], "ingesting");
        assert_eq!(v["data"]["error_code"], "INVALID_FILE_FORMAT");
        assert_eq!(v["data"]["result_link"], serde_json::Value::Null);
    }
}
