//! docpipe-functions: the host every stage Lambda shares. A function's `main` loads the
//! settings and builds the SDK clients once ([`Host::load`]), then hands the runtime a
//! handler that runs one core stage ([`Host::run`]). A stage error leaves the function as
//! a Lambda error whose `errorType` is the error's state-machine name (`DocPipe.*`), so
//! the definition's Retry and Catch match on AWS exactly as they do in the embedded
//! interpreter.

use std::sync::Arc;

use docpipe_aws::{AwsAdapters, SettingsSource};
use docpipe_core::pricing::{PriceTable, PricingProfile, price_job};
use docpipe_core::stages::{self, Stage};
use docpipe_core::{JobId, JobPatch, Ports, StageError};
use docpipe_fetch::HttpFetcher;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{Value, json};
use tokio::sync::RwLock;

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

/// The adapters and ports built from one version of the settings.
pub struct Wired {
    pub adapters: AwsAdapters,
    pub ports: Ports,
}

impl Wired {
    fn new(adapters: AwsAdapters) -> Self {
        let ports = adapters.ports(Arc::new(HttpFetcher::default()));
        Self { adapters, ports }
    }
}

/// What a function keeps between invocations: the settings' source and what was built
/// from them, rebuilt when Parameter Store changed them (read again every 5 minutes).
pub struct Host {
    source: SettingsSource,
    current: RwLock<Arc<Wired>>,
}

impl Host {
    /// Settings (environment, Parameter Store), logging, and every client: once, at cold
    /// start. A settings error stops the function before it takes an event.
    pub async fn load() -> Result<Self, lambda_runtime::Error> {
        let (adapters, source) = AwsAdapters::load_with_source()
            .await
            .map_err(|e| e.to_string())?;
        init_tracing(&adapters.settings.log);
        Ok(Self::new(adapters, source))
    }

    /// A host over adapters already built (tests build them over an emulator).
    pub fn new(adapters: AwsAdapters, source: SettingsSource) -> Self {
        Self {
            source,
            current: RwLock::new(Arc::new(Wired::new(adapters))),
        }
    }

    /// The adapters for this invocation: the settings as of now (Parameter Store at most
    /// 5 minutes old); rebuilt if they changed. If Parameter Store cannot be read the
    /// last good settings stay in use.
    pub async fn wired(&self) -> Arc<Wired> {
        let current = self.current.read().await.clone();
        match self.source.current().await {
            Ok(settings) if settings != current.adapters.settings => {
                tracing::info!(model = %settings.bedrock_model_id, "settings changed; adapters rebuilt");
                let sdk = current.adapters.sdk.clone();
                let fresh = Arc::new(Wired::new(AwsAdapters::new(settings, sdk)));
                *self.current.write().await = fresh.clone();
                fresh
            }
            Ok(_) => current,
            Err(e) => {
                tracing::warn!(error = %e, "settings not refreshed; the last ones stay in use");
                current
            }
        }
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
        let wired = self.wired().await;
        let env = wired.adapters.settings.env.clone();
        let started = std::time::Instant::now();
        let result = stages::invoke(&wired.ports, stage, event.payload).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let by_stage = [("env", env.as_str()), ("stage", stage.as_str())];
        let mut metrics = vec![
            Metric::new("StageDuration", ms, "Milliseconds"),
            Metric::new(
                "StageErrors",
                if result.is_err() { 1.0 } else { 0.0 },
                "Count",
            ),
        ];
        match stage {
            Stage::Extract => {
                let usage = wired.adapters.extractor.take_usage();
                if usage.calls > 0 {
                    // On the job too, so its cost can be computed from its own counters.
                    if let Ok(id) = JobId::parse(&job_id)
                        && let Err(e) = wired
                            .ports
                            .jobs
                            .update(
                                &id,
                                JobPatch {
                                    model_tokens: Some((usage.input_tokens, usage.output_tokens)),
                                    ..JobPatch::default()
                                },
                                wired.ports.clock.now(),
                            )
                            .await
                    {
                        tracing::warn!(job_id, error = %e, "token counters not recorded on the job");
                    }
                    metrics.push(Metric::new(
                        "BedrockInputTokens",
                        usage.input_tokens as f64,
                        "Count",
                    ));
                    metrics.push(Metric::new(
                        "BedrockOutputTokens",
                        usage.output_tokens as f64,
                        "Count",
                    ));
                }
            }
            Stage::Ocr => {
                if let Ok(out) = &result {
                    let pages = out.get("pages").and_then(Value::as_u64).unwrap_or(0);
                    metrics.push(Metric::new("TextractPages", pages as f64, "Count"));
                }
            }
            _ => {}
        }
        println!("{}", emf_line(&by_stage, &job_id, &metrics));
        // A job that reached its final status: one document of that status, its pages and
        // what it cost in dollars (its counters priced with infra/pricing.toml).
        if matches!(stage, Stage::Finalize | Stage::RecordFailure)
            && result.is_ok()
            && let Ok(id) = JobId::parse(&job_id)
        {
            match wired.ports.jobs.get(&id).await {
                Ok(job) => {
                    let cost = price_job(
                        PriceTable::builtin(),
                        &PricingProfile::aws(&wired.adapters.settings.bedrock_model_id),
                        &job,
                    );
                    let usd = cost.total_usd.to_string().parse::<f64>().unwrap_or(0.0);
                    println!(
                        "{}",
                        emf_line(
                            &[("env", env.as_str()), ("status", job.status.as_str())],
                            &job_id,
                            &[
                                Metric::new("Documents", 1.0, "Count"),
                                Metric::new("DocumentPages", f64::from(job.cost.pages), "Count"),
                                Metric::new("JobCostUsd", usd, "None"),
                            ],
                        )
                    );
                }
                Err(e) => tracing::warn!(job_id, error = %e, "final metrics not recorded"),
            }
        }
        if let Err(e) = &result {
            tracing::warn!(stage = stage.as_str(), job_id, code = %e.code, error_name = e.name().as_str(), "stage failed");
        }
        result.map_err(StageFailure)
    }
}

/// One metric of an EMF record.
#[derive(Debug, Clone, Copy)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub value: f64,
    /// A CloudWatch unit: Count, Milliseconds, None.
    pub unit: &'a str,
}

impl<'a> Metric<'a> {
    pub fn new(name: &'a str, value: f64, unit: &'a str) -> Self {
        Self { name, value, unit }
    }
}

/// One CloudWatch Embedded Metric Format record (namespace `docpipe`): the metrics with
/// the given dimensions as one dimension set, the job id as a searchable property. Printed
/// as one log line, CloudWatch turns it into metrics with no API call.
pub fn emf_line(dimensions: &[(&str, &str)], job_id: &str, metrics: &[Metric<'_>]) -> String {
    let mut record = json!({
        "_aws": {
            "Timestamp": chrono_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "docpipe",
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }],
        },
        "job_id": job_id,
    });
    for (k, v) in dimensions {
        record[*k] = json!(v);
    }
    for m in metrics {
        record[m.name] = json!(m.value);
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
            &[("env", "dev"), ("stage", "extract")],
            "job_1",
            &[
                Metric::new("StageDuration", 812.5, "Milliseconds"),
                Metric::new("BedrockInputTokens", 1200.0, "Count"),
            ],
        );
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["BedrockInputTokens"], 1200.0);
        assert_eq!(v["stage"], "extract");
        assert_eq!(v["env"], "dev");
        let spec = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "docpipe");
        assert_eq!(spec["Dimensions"], json!([["env", "stage"]]));
        assert_eq!(
            spec["Metrics"][0],
            json!({"Name": "StageDuration", "Unit": "Milliseconds"})
        );
        assert!(v["_aws"]["Timestamp"].as_u64().is_some());
    }
}
