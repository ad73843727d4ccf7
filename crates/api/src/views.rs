//! What the API shows of a job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use docpipe_core::job::StatusChange;
use docpipe_core::pricing::{CostBreakdown, PriceTable, PricingProfile, price_job};
use docpipe_core::{Cost, Job, JobStatus};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobErrorView {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusChangeView {
    pub status: String,
    pub at: DateTime<Utc>,
    /// The API key name of the person who made the change (review, retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// approve, correct, reject or retry, when a person made the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The fields a correction changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    pub job_id: String,
    /// queued, ingesting, ocr, extracting, verifying, completed, needs_review, failed, cancelled
    pub status: String,
    /// invoice or blueprint
    pub kind: String,
    pub filename: String,
    pub media_type: Option<String>,
    pub size_bytes: Option<u64>,
    pub content_sha256: Option<String>,
    pub source_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub error: Option<JobErrorView>,
    /// Milliseconds per stage.
    pub stage_timings: BTreeMap<String, u64>,
    pub pages: u32,
    /// What the job consumed: pages, OCR pages, milliseconds per stage, model tokens.
    #[schema(value_type = Object)]
    pub cost: Cost,
    /// The counters priced in dollars for the host that runs the job (infra/pricing.toml).
    #[schema(value_type = Object)]
    pub cost_usd: CostBreakdown,
    /// 0 for the first run, n after n retries (the execution is `{job_id}-r{n}`).
    pub attempt: u32,
    /// The uploaded document and the text read from it are deleted as soon as the job
    /// is final (its key or the host asked for it when the job was submitted); the
    /// result stays.
    pub delete_document_when_final: bool,
    /// Present when the job has history loaded (single-job reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_history: Option<Vec<StatusChangeView>>,
    /// Where the result is, once the job has one.
    pub result_url: Option<String>,
    /// The earlier job with identical content whose result this one reuses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplicated_from: Option<String>,
}

impl JobView {
    pub fn new(job: &Job, history: Option<&[StatusChange]>, pricing: &PricingProfile) -> Self {
        let has_result = matches!(job.status, JobStatus::Completed | JobStatus::NeedsReview)
            && job.keys.result.is_some();
        Self {
            job_id: job.id.to_string(),
            status: job.status.as_str().to_owned(),
            kind: job.kind.as_str().to_owned(),
            filename: job.filename.clone(),
            media_type: job.media_type.map(|m| m.as_str().to_owned()),
            size_bytes: job.size_bytes,
            content_sha256: job.content_sha256.clone(),
            source_url: job.source_url.clone(),
            created_at: job.created_at,
            updated_at: job.updated_at,
            error: job.error.as_ref().map(|e| JobErrorView {
                code: e.code.as_str().to_owned(),
                message: e.message.clone(),
            }),
            stage_timings: job
                .cost
                .stage_ms
                .iter()
                .map(|(stage, ms)| (stage.as_str().to_owned(), *ms))
                .collect(),
            pages: job.cost.pages,
            cost: job.cost.clone(),
            cost_usd: price_job(PriceTable::builtin(), pricing, job),
            attempt: job.attempt,
            delete_document_when_final: job.delete_document_when_final,
            status_history: history.map(|h| {
                h.iter()
                    .map(|c| StatusChangeView {
                        status: c.status.as_str().to_owned(),
                        at: c.at,
                        by: c.operator.as_ref().map(|o| o.by.clone()),
                        action: c.operator.as_ref().map(|o| o.action.as_str().to_owned()),
                        fields: c
                            .operator
                            .as_ref()
                            .map(|o| o.fields.clone())
                            .unwrap_or_default(),
                        comment: c.operator.as_ref().and_then(|o| o.comment.clone()),
                    })
                    .collect()
            }),
            result_url: has_result.then(|| format!("/api/v1/jobs/{}/result", job.id)),
            deduplicated_from: job.deduplicated_from.as_ref().map(ToString::to_string),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct JobListView {
    pub jobs: Vec<JobView>,
    pub next_cursor: Option<String>,
}
