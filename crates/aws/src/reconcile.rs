//! Executions that ended without ending their job: an EventBridge rule hands the
//! reconciler Step Functions' "Execution Status Change" events for TIMED_OUT, ABORTED and
//! FAILED executions of the pipeline. A job still not final after its current execution
//! ended that way (a timeout, a stop, a `RecordFailure` that itself failed) is failed with
//! `EXECUTION_TIMED_OUT`, `EXECUTION_ABORTED` or `EXECUTION_FAILED`, as the embedded host
//! does when its interpreter ends such an execution. A job already final keeps its status.

use docpipe_core::job::job_of_execution;
use docpipe_core::lifecycle;
use docpipe_core::ports::Result;
use docpipe_core::{Clock, ErrorCode, Job, JobStore, StageError};
use serde::Deserialize;

/// The `detail` of a Step Functions "Execution Status Change" event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusChange {
    pub execution_arn: String,
    /// The execution's name: the job id, `{job_id}-r{n}` for a retry.
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// What the reconciler did with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciled {
    /// The job was not final: now failed with this code.
    Failed(Box<Job>),
    /// The job had ended already (completed, failed, cancelled, in review).
    AlreadyFinal,
    /// Not this deployment's job, a job that expired, an earlier attempt's execution,
    /// or a status that ends nothing.
    Ignored(&'static str),
}

/// The error code of an execution that ended with `status`.
pub fn code_of(status: &str) -> Option<ErrorCode> {
    match status {
        "TIMED_OUT" => Some(ErrorCode::ExecutionTimedOut),
        "ABORTED" => Some(ErrorCode::ExecutionAborted),
        "FAILED" => Some(ErrorCode::ExecutionFailed),
        _ => None,
    }
}

/// Fails the execution's job unless it is final already.
pub async fn reconcile(
    jobs: &dyn JobStore,
    clock: &dyn Clock,
    change: &ExecutionStatusChange,
) -> Result<Reconciled> {
    let Some(code) = code_of(&change.status) else {
        return Ok(Reconciled::Ignored("the execution did not end early"));
    };
    let Some(id) = job_of_execution(&change.name) else {
        return Ok(Reconciled::Ignored("not a job's execution"));
    };
    let job = match jobs.get(&id).await {
        Ok(job) => job,
        Err(e) if e.code == ErrorCode::JobNotFound => {
            return Ok(Reconciled::Ignored("no such job"));
        }
        Err(e) => return Err(e),
    };
    if job.status.is_final() {
        return Ok(Reconciled::AlreadyFinal);
    }
    if job.execution_name() != change.name {
        return Ok(Reconciled::Ignored("an earlier attempt's execution"));
    }
    let error = StageError::new(
        code,
        format!(
            "the execution ended {}: {}: {}",
            change.status,
            change.error.as_deref().unwrap_or("States.Runtime"),
            change
                .cause
                .as_deref()
                .unwrap_or("the execution ended early"),
        ),
    );
    let job = lifecycle::fail(jobs, clock, &id, &error).await?;
    if job.status.is_final() && job.error.as_ref().is_some_and(|e| e.code == code) {
        Ok(Reconciled::Failed(Box::new(job)))
    } else {
        // It reached another final status meanwhile: that one stands.
        Ok(Reconciled::AlreadyFinal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_embedded_codes() {
        assert_eq!(code_of("TIMED_OUT"), Some(ErrorCode::ExecutionTimedOut));
        assert_eq!(code_of("ABORTED"), Some(ErrorCode::ExecutionAborted));
        assert_eq!(code_of("FAILED"), Some(ErrorCode::ExecutionFailed));
        assert_eq!(code_of("SUCCEEDED"), None);
        let change: ExecutionStatusChange = serde_json::from_str(
            r#"{"executionArn": "arn:aws:states:eu-west-1:1:execution:docpipe-dev-pipeline:x",
                "stateMachineArn": "arn", "name": "x", "status": "TIMED_OUT",
                "startDate": 1, "stopDate": 2, "input": "{}", "error": null, "cause": null}"#,
        )
        .expect("detail");
        assert_eq!(change.status, "TIMED_OUT");
    }
}
