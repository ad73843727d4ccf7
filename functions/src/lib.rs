//! docpipe-functions: the host every stage Lambda shares. A function's `main` loads the
//! settings and builds the SDK clients once ([`Host::load`]), then hands the runtime a
//! handler that runs one core stage ([`Host::run`]). A stage error leaves the function as
//! a Lambda error whose `errorType` is the error's state-machine name (`DocPipe.*`), so
//! the definition's Retry and Catch match on AWS exactly as they do in the embedded
//! interpreter.

use std::sync::Arc;

use docpipe_aws::AwsAdapters;
use docpipe_core::stages::{self, Stage};
use docpipe_core::{JobId, JobPatch, Ports, StageError};
use docpipe_fetch::HttpFetcher;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{Value, json};

/// A stage error on its way out of the function: `errorType` is the ASL error name,
/// `errorMessage` is `CODE: message` (what `StageError::from_cause` reads back).
#[derive(Debug)]
pub struct StageFailure(pub StageError);

impl From<StageFailure> for Diagnostic {
    fn from(StageFailure(e): StageFailure) -> Self {
        Diagnostic {
            error_type: e.name().as_str().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// What a function keeps between invocations.
pub struct Host {
    pub adapters: AwsAdapters,
    pub ports: Ports,
}

impl Host {
    /// Settings (environment, Parameter Store), logging, and every client: once, at cold
    /// start. A settings error stops the function before it takes an event.
    pub async fn load() -> Result<Self, lambda_runtime::Error> {
        let adapters = AwsAdapters::load().await.map_err(|e| e.to_string())?;
        init_tracing(&adapters.settings.log);
        let ports = adapters.ports(Arc::new(HttpFetcher::default()));
        Ok(Self { adapters, ports })
    }

    /// Runs `stage` on the event's payload; records what it cost as CloudWatch metrics.
    pub async fn run(
        &self,
        stage: Stage,
        event: LambdaEvent<Value>,
    ) -> Result<Value, StageFailure> {
        let job_id = event
            .payload
            .get("job_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let result = stages::invoke(&self.ports, stage, event.payload).await;
        match stage {
            Stage::Extract => {
                let usage = self.adapters.extractor.take_usage();
                if usage.calls > 0 {
                    // On the job too, so its cost can be computed from its own counters.
                    if let Ok(id) = JobId::parse(&job_id)
                        && let Err(e) = self
                            .ports
                            .jobs
                            .update(
                                &id,
                                JobPatch {
                                    model_tokens: Some((usage.input_tokens, usage.output_tokens)),
                                    ..JobPatch::default()
                                },
                                self.ports.clock.now(),
                            )
                            .await
                    {
                        tracing::warn!(job_id, error = %e, "token counters not recorded on the job");
                    }
                    self.metrics(
                        &job_id,
                        &[
                            ("BedrockInputTokens", usage.input_tokens),
                            ("BedrockOutputTokens", usage.output_tokens),
                        ],
                    );
                }
            }
            Stage::Ocr => {
                if let Ok(out) = &result {
                    let pages = out.get("pages").and_then(Value::as_u64).unwrap_or(0);
                    self.metrics(&job_id, &[("TextractPages", pages)]);
                }
            }
            _ => {}
        }
        if let Err(e) = &result {
            tracing::warn!(stage = stage.as_str(), job_id, code = %e.code, error_name = e.name().as_str(), "stage failed");
        }
        result.map_err(StageFailure)
    }

    /// One CloudWatch Embedded Metric Format line: metrics from a log line, no API call.
    fn metrics(&self, job_id: &str, values: &[(&str, u64)]) {
        println!(
            "{}",
            emf_line(
                &self.adapters.settings.env,
                &self.adapters.settings.bedrock_model_id,
                job_id,
                values
            )
        );
    }
}

/// The EMF record for `values` (namespace `docpipe`, dimensions env and model).
pub fn emf_line(env: &str, model_id: &str, job_id: &str, values: &[(&str, u64)]) -> String {
    let mut record = json!({
        "_aws": {
            "Timestamp": chrono_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "docpipe",
                "Dimensions": [["env"], ["env", "model_id"]],
                "Metrics": values.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
        "env": env,
        "model_id": model_id,
        "job_id": job_id,
    });
    for (name, value) in values {
        record[*name] = json!(value);
    }
    record.to_string()
}

fn chrono_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// JSON logs on stdout (CloudWatch Logs adds the timestamp and request id).
pub fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::ErrorCode;

    #[test]
    fn the_error_type_is_the_state_machine_name() {
        for code in ErrorCode::ALL {
            let e = StageError::new(code, "because");
            let d = Diagnostic::from(StageFailure(e.clone()));
            assert_eq!(d.error_type, e.name().as_str());
            assert_eq!(d.error_message, format!("{}: because", code.as_str()));
            // What Step Functions hands the Catch as Cause reads back into the same error.
            let cause =
                json!({"errorType": d.error_type, "errorMessage": d.error_message}).to_string();
            assert_eq!(StageError::from_cause(&d.error_type, &cause), e);
        }
    }

    #[test]
    fn metrics_are_embedded_metric_format() {
        let line = emf_line(
            "dev",
            "m",
            "job_1",
            &[("BedrockInputTokens", 1200), ("BedrockOutputTokens", 300)],
        );
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["BedrockInputTokens"], 1200);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Name"],
            "BedrockOutputTokens"
        );
    }
}
