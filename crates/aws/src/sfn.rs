//! Step Functions: one execution per job, named by the job id, so starting twice is
//! harmless (an idempotent retry of the submitting request) and every execution can be
//! found from its job.

use aws_sdk_sfn::Client;
use chrono::{DateTime, Utc};
use docpipe_core::ports::Result;
use docpipe_core::stages::PipelineInput;
use docpipe_core::{ErrorCode, ErrorName, JobId, StageError};
use serde_json::Value;

use crate::error::sdk_error;

/// What `start` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub execution_arn: String,
    /// False when an execution of that name existed already (nothing new was started).
    pub created: bool,
}

/// An execution as `DescribeExecution` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionInfo {
    pub execution_arn: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED or PENDING_REDRIVE.
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// Starts, stops and describes pipeline executions of one state machine.
#[derive(Clone, Debug)]
pub struct SfnOrchestrator {
    client: Client,
    state_machine_arn: String,
}

impl SfnOrchestrator {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// The ARN of a job's execution: the state machine's ARN with `stateMachine`
    /// replaced by `execution` and the name appended.
    pub fn execution_arn(&self, job: &JobId) -> String {
        format!(
            "{}:{job}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }

    /// Starts the job's execution. An execution of that name that exists already (a
    /// retried request) is not an error: its ARN is returned with `created: false`.
    pub async fn start(&self, input: &PipelineInput) -> Result<Started> {
        let body = serde_json::to_string(input)
            .map_err(|e| StageError::internal(format!("execution input: {e}")))?;
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(input.job_id.as_str())
            .input(body)
            .send()
            .await;
        match result {
            // Step Functions itself answers a same-name, same-input start of a running
            // execution with the existing ARN: not necessarily a new one.
            Ok(out) => Ok(Started {
                execution_arn: out.execution_arn,
                created: true,
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_execution_already_exists()) =>
            {
                Ok(Started {
                    execution_arn: self.execution_arn(&input.job_id),
                    created: false,
                })
            }
            Err(e) => Err(sdk_error("Step Functions StartExecution", e)),
        }
    }

    /// Stops the job's execution (cancellation). Stopping one that has ended is a no-op.
    pub async fn stop(&self, job: &JobId, cause: &str) -> Result<()> {
        let arn = self.execution_arn(job);
        let result = self
            .client
            .stop_execution()
            .execution_arn(&arn)
            .error(ErrorName::Cancelled.as_str())
            .cause(cause)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_execution_does_not_exist()) =>
            {
                Err(StageError::new(
                    ErrorCode::JobNotFound,
                    format!("no execution for job {job}"),
                ))
            }
            Err(e) => Err(sdk_error("Step Functions StopExecution", e)),
        }
    }

    /// The job's execution; `JOB_NOT_FOUND` if it was never started.
    pub async fn describe(&self, job: &JobId) -> Result<ExecutionInfo> {
        let arn = self.execution_arn(job);
        let out = self
            .client
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|se| se.is_execution_does_not_exist())
                {
                    StageError::new(
                        ErrorCode::JobNotFound,
                        format!("no execution for job {job}"),
                    )
                } else {
                    sdk_error("Step Functions DescribeExecution", e)
                }
            })?;
        let time =
            |t: &aws_smithy_types::DateTime| DateTime::from_timestamp(t.secs(), t.subsec_nanos());
        Ok(ExecutionInfo {
            execution_arn: out.execution_arn().to_owned(),
            status: out.status().as_str().to_owned(),
            started_at: time(out.start_date()),
            stopped_at: out.stop_date().and_then(time),
            output: out.output().and_then(|o| serde_json::from_str(o).ok()),
            error: out.error().map(str::to_owned),
            cause: out.cause().map(str::to_owned),
        })
    }
}

#[async_trait::async_trait]
impl docpipe_core::Orchestrator for SfnOrchestrator {
    async fn start(&self, job: &docpipe_core::Job) -> Result<()> {
        SfnOrchestrator::start(self, &PipelineInput::for_job(job))
            .await
            .map(|_| ())
    }

    async fn stop(&self, job_id: &JobId, cause: &str) -> Result<()> {
        match SfnOrchestrator::stop(self, job_id, cause).await {
            // Never started (or already gone): nothing to stop.
            Err(e) if e.code == ErrorCode::JobNotFound => Ok(()),
            other => other,
        }
    }

    async fn health(&self) -> Result<()> {
        self.client
            .describe_state_machine()
            .state_machine_arn(&self.state_machine_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("Step Functions DescribeStateMachine", e))
    }
}
