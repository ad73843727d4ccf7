//! Step Functions: one execution per job attempt, named by the job id (`{job_id}-r{n}`
//! for the n-th retry), so starting twice is harmless (an idempotent retry of the
//! submitting request) and every execution can be found from its job.

use aws_sdk_sfn::Client;
use chrono::{DateTime, Utc};
use docpipe_core::execution::{ExecutionLog, ExecutionRecord, ExecutionState};
use docpipe_core::ports::Result;
use docpipe_core::stages::PipelineInput;
use docpipe_core::{ErrorCode, ErrorName, StageError};
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

    /// The ARN of an execution (a job's: [`docpipe_core::Job::execution_name`]): the state
    /// machine's ARN with `stateMachine` replaced by `execution` and the name appended.
    pub fn execution_arn(&self, name: &str) -> String {
        format!(
            "{}:{name}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }

    /// Starts the execution `name` (the job's current one, see
    /// [`docpipe_core::Job::execution_name`]). An execution of that name that exists
    /// already (a retried request) is not an error: its ARN is returned with
    /// `created: false`.
    pub async fn start(&self, input: &PipelineInput, name: &str) -> Result<Started> {
        let body = serde_json::to_string(input)
            .map_err(|e| StageError::internal(format!("execution input: {e}")))?;
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
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
                    execution_arn: self.execution_arn(name),
                    created: false,
                })
            }
            Err(e) => Err(sdk_error("Step Functions StartExecution", e)),
        }
    }

    /// Stops the execution `name` (cancellation). Stopping one that has ended is a no-op.
    pub async fn stop(&self, name: &str, cause: &str) -> Result<()> {
        let arn = self.execution_arn(name);
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
                    format!("no execution {name}"),
                ))
            }
            Err(e) => Err(sdk_error("Step Functions StopExecution", e)),
        }
    }

    /// The execution `name`; `JOB_NOT_FOUND` if it was never started.
    pub async fn describe(&self, name: &str) -> Result<ExecutionInfo> {
        let arn = self.execution_arn(name);
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
                    StageError::new(ErrorCode::JobNotFound, format!("no execution {name}"))
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
        SfnOrchestrator::start(self, &PipelineInput::for_job(job), &job.execution_name())
            .await
            .map(|_| ())
    }

    async fn stop(&self, job: &docpipe_core::Job, cause: &str) -> Result<()> {
        match SfnOrchestrator::stop(self, &job.execution_name(), cause).await {
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

/// The most events read of one execution (a pipeline run has a few dozen).
const MAX_HISTORY_EVENTS: usize = 5_000;

impl SfnOrchestrator {
    /// The execution `name` with its event history (`GetExecutionHistory`, every page),
    /// in the shape the embedded host records; `None` if it was never started.
    pub async fn execution_record(
        &self,
        job: &docpipe_core::Job,
        name: &str,
    ) -> Result<Option<ExecutionRecord>> {
        let info = match self.describe(name).await {
            Ok(info) => info,
            Err(e) if e.code == ErrorCode::JobNotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let arn = self.execution_arn(name);
        let mut events = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .get_execution_history()
                .execution_arn(&arn)
                .set_next_token(token)
                .max_results(1000)
                .send()
                .await
                .map_err(|e| sdk_error("Step Functions GetExecutionHistory", e))?;
            events.extend(page.events().iter().map(event_json));
            token = page.next_token().map(str::to_owned);
            if token.is_none() || events.len() >= MAX_HISTORY_EVENTS {
                break;
            }
        }
        let input = events
            .first()
            .and_then(|e| e.pointer("/executionStartedEventDetails/input"))
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        Ok(Some(ExecutionRecord {
            name: name.to_owned(),
            job_id: Some(job.id.clone()),
            // PENDING_REDRIVE: not ended for good.
            status: ExecutionState::parse(&info.status).unwrap_or(ExecutionState::Running),
            started_at: info.started_at.unwrap_or(job.created_at),
            stopped_at: info.stopped_at,
            input,
            output: info.output,
            error: info.error,
            cause: info.cause,
            history: Value::Array(events),
        }))
    }
}

#[async_trait::async_trait]
impl ExecutionLog for SfnOrchestrator {
    async fn executions(&self, job: &docpipe_core::Job) -> Result<Vec<ExecutionRecord>> {
        let mut out = Vec::new();
        for name in job.execution_names() {
            if let Some(record) = self.execution_record(job, &name).await? {
                out.push(record);
            }
        }
        Ok(out)
    }
}

/// One history event as `GetExecutionHistory` answers it in JSON: the common fields and
/// the details the console reads (states entered and exited, failures, task resources).
fn event_json(e: &aws_sdk_sfn::types::HistoryEvent) -> Value {
    let mut v = serde_json::json!({
        "id": e.id(),
        "previousEventId": e.previous_event_id(),
        "timestamp": DateTime::from_timestamp(e.timestamp().secs(), e.timestamp().subsec_nanos())
            .map(|t| t.to_rfc3339()),
        "type": e.r#type().as_str(),
    });
    let mut detail = |key: &str, value: Value| {
        if let Value::Object(map) = &mut v {
            map.insert(key.to_owned(), value);
        }
    };
    if let Some(d) = e.state_entered_event_details() {
        detail(
            "stateEnteredEventDetails",
            serde_json::json!({ "name": d.name(), "input": d.input() }),
        );
    }
    if let Some(d) = e.state_exited_event_details() {
        detail(
            "stateExitedEventDetails",
            serde_json::json!({ "name": d.name(), "output": d.output() }),
        );
    }
    if let Some(d) = e.execution_started_event_details() {
        detail(
            "executionStartedEventDetails",
            serde_json::json!({ "input": d.input() }),
        );
    }
    if let Some(d) = e.execution_succeeded_event_details() {
        detail(
            "executionSucceededEventDetails",
            serde_json::json!({ "output": d.output() }),
        );
    }
    let failure = |error: Option<&str>, cause: Option<&str>| serde_json::json!({ "error": error, "cause": cause });
    if let Some(d) = e.execution_failed_event_details() {
        detail("executionFailedEventDetails", failure(d.error(), d.cause()));
    }
    if let Some(d) = e.execution_aborted_event_details() {
        detail(
            "executionAbortedEventDetails",
            failure(d.error(), d.cause()),
        );
    }
    if let Some(d) = e.execution_timed_out_event_details() {
        detail(
            "executionTimedOutEventDetails",
            failure(d.error(), d.cause()),
        );
    }
    if let Some(d) = e.task_scheduled_event_details() {
        detail(
            "taskScheduledEventDetails",
            serde_json::json!({ "resourceType": d.resource_type(), "resource": d.resource() }),
        );
    }
    if let Some(d) = e.task_failed_event_details() {
        detail("taskFailedEventDetails", failure(d.error(), d.cause()));
    }
    if let Some(d) = e.task_timed_out_event_details() {
        detail("taskTimedOutEventDetails", failure(d.error(), d.cause()));
    }
    if let Some(d) = e.lambda_function_failed_event_details() {
        detail(
            "lambdaFunctionFailedEventDetails",
            failure(d.error(), d.cause()),
        );
    }
    v
}
