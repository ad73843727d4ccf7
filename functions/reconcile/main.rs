//! The reconciler on AWS Lambda: an EventBridge rule hands it the pipeline's executions
//! that TIMED_OUT, were ABORTED or FAILED; a job they left unfinished is failed with
//! EXECUTION_TIMED_OUT, EXECUTION_ABORTED or EXECUTION_FAILED (`docpipe_aws::reconcile`),
//! counted as the `JobsReconciled` metric (an alarm watches it).

use docpipe_aws::SystemClock;
use docpipe_aws::reconcile::{ExecutionStatusChange, Reconciled, reconcile};
use docpipe_functions::{Host, Metric, emf_line};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let host = Host::load().await?;
    let host = &host;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let wired = host.wired().await;
        let detail = event.payload.get("detail").cloned().unwrap_or_default();
        let change: ExecutionStatusChange = serde_json::from_value(detail)
            .map_err(|e| format!("not an execution status change: {e}"))?;
        let outcome = reconcile(&wired.adapters.jobs, &SystemClock, &change)
            .await
            .map_err(|e| e.to_string())?;
        let answer = match &outcome {
            Reconciled::Failed(job) => {
                let code = job.error.as_ref().map(|e| e.code.as_str()).unwrap_or_default();
                println!(
                    "{}",
                    emf_line(
                        &[("env", wired.adapters.settings.env.as_str())],
                        job.id.as_str(),
                        &[Metric::new("JobsReconciled", 1.0, "Count")],
                    )
                );
                tracing::warn!(job_id = %job.id, code, execution = %change.execution_arn, "job failed by the reconciler");
                json!({"job_id": job.id, "failed": code})
            }
            Reconciled::AlreadyFinal => json!({"already_final": true}),
            Reconciled::Ignored(why) => json!({"ignored": why}),
        };
        Ok::<Value, lambda_runtime::Error>(answer)
    }))
    .await
}
