//! How long things are kept: the same numbers on both hosts (SQLite and the object folder
//! swept by `docpipe gc` and `docpipe serve`; DynamoDB TTL attributes and S3 lifecycle
//! rules on AWS). The dedupe cache's hour is `StageSettings::dedupe_ttl_secs`: each entry
//! carries its own expiry.

use std::time::Duration;

use serde::{Deserialize, Serialize};

const DAY: u64 = 24 * 60 * 60;

/// Retention periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// A job in a final status, with its history, executions and events, this long after
    /// its last change (7 days).
    pub final_jobs_secs: u64,
    /// Documents and results, this long after their job was created (30 days); never
    /// while the job is unfinished.
    pub objects_secs: u64,
    /// Idempotency records, this long after they were written (24 hours).
    pub idempotency_secs: u64,
    /// Delete a job's uploaded document (and its text) as soon as the job is final,
    /// keeping the result. API keys can ask for it on their own.
    pub delete_document_when_final: bool,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            final_jobs_secs: 7 * DAY,
            objects_secs: 30 * DAY,
            idempotency_secs: DAY,
            delete_document_when_final: false,
        }
    }
}

impl Retention {
    pub fn final_jobs(&self) -> Duration {
        Duration::from_secs(self.final_jobs_secs)
    }

    pub fn objects(&self) -> Duration {
        Duration::from_secs(self.objects_secs)
    }

    pub fn idempotency(&self) -> Duration {
        Duration::from_secs(self.idempotency_secs)
    }
}
