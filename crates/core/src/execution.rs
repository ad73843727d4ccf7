//! Executions of the state machine as a host recorded them: the embedded interpreter's
//! store locally, Step Functions on AWS. Read by the API's execution pages.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::JobId;
use crate::job::Job;
use crate::ports::Result;

/// A recorded execution's status: running, or how it ended (`ExecutionStatus`). Stored
/// and shown as Step Functions names them (`RUNNING`, `SUCCEEDED`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionState {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ExecutionState {
    const ALL: [Self; 5] = [
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Aborted => "ABORTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl std::fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state-machine execution as stored: its status, input, outcome and event history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub name: String,
    pub job_id: Option<JobId>,
    pub status: ExecutionState,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// `GetExecutionHistory`-shaped events.
    pub history: Value,
}

/// The executions a job has had (its first run and each retry), oldest first.
#[async_trait]
pub trait ExecutionLog: Send + Sync {
    async fn executions(&self, job: &Job) -> Result<Vec<ExecutionRecord>>;
}
