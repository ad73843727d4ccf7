//! The real `statemachine/pipeline.asl.json` run twice on the same scripted stage results:
//! by moto's Step Functions interpreter (deployed the way SAM deploys it, with the
//! `${...FunctionArn}` placeholders substituted by Lambda ARNs) and by our embedded engine
//! (docpipe-asl's Runner with a scripted TaskInvoker). The path taken, the task failures
//! seen and the outcome must be the same, including a transient error that must be
//! retried and permanent ones that must be caught.

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use docpipe_asl::clock::SystemClock;
use docpipe_asl::{Definition, ExecutionOptions, Runner, TaskFailure, TaskInvoker};
use docpipe_core::stages::Stage;
use docpipe_core::{ErrorCode, StageError};
use serde_json::{Value, json};
use support::Moto;

const DEFINITION: &str = include_str!("../../../statemachine/pipeline.asl.json");
const ACCOUNT: &str = "123456789012";

/// One scripted stage result: the stage it belongs to and what it returns.
#[derive(Clone, Debug)]
struct Step {
    stage: Stage,
    result: Result<Value, StageError>,
}

fn ok(stage: Stage, value: Value) -> Step {
    Step {
        stage,
        result: Ok(value),
    }
}

fn fail(stage: Stage, code: ErrorCode, message: &str) -> Step {
    Step {
        stage,
        result: Err(StageError::new(code, message)),
    }
}

fn function_arn(stage: Stage) -> String {
    format!(
        "arn:aws:lambda:us-east-1:{ACCOUNT}:function:docpipe-test-{}",
        stage.as_str().replace('_', "-")
    )
}

/// The definition as SAM deploys it: every placeholder replaced by its function's ARN.
fn substituted() -> String {
    Stage::ALL.into_iter().fold(DEFINITION.to_owned(), |d, s| {
        d.replace(s.resource_placeholder(), &function_arn(s))
    })
}

/// What both engines must agree on.
#[derive(Debug, PartialEq)]
struct Run {
    status: String,
    /// Names of the states entered, in order.
    path: Vec<String>,
    /// The error names of failed task attempts, in order.
    task_failures: Vec<String>,
    error: Option<String>,
}

/// The scripted stages for our engine; also checks each call goes to the stage the
/// script expects.
struct Scripted(Mutex<VecDeque<Step>>);

#[async_trait]
impl TaskInvoker for Scripted {
    async fn invoke(&self, resource: &str, _input: Value) -> Result<Value, TaskFailure> {
        let step = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
            .ok_or_else(|| TaskFailure::new("Test.ScriptExhausted", resource))?;
        assert_eq!(
            Stage::from_resource(resource),
            Some(step.stage),
            "{resource}"
        );
        step.result
            .map_err(|e| TaskFailure::new(e.name().as_str(), e.to_cause()))
    }
}

async fn run_embedded(script: &[Step], input: &Value) -> Run {
    let definition = Definition::parse(DEFINITION).expect("definition parses");
    let invoker = Arc::new(Scripted(Mutex::new(script.iter().cloned().collect())));
    let runner = Runner::new(invoker.clone(), Arc::new(SystemClock));
    let outcome = runner
        .run(
            &definition,
            input.clone(),
            ExecutionOptions {
                name: "embedded".into(),
                ..ExecutionOptions::default()
            },
        )
        .await;
    assert!(
        invoker.0.lock().map(|q| q.is_empty()).unwrap_or(false),
        "script not used up"
    );
    let events = serde_json::to_value(&outcome.history).expect("history serialises");
    let mut path = Vec::new();
    let mut task_failures = Vec::new();
    for e in events.as_array().into_iter().flatten() {
        if let Some(name) = e
            .pointer("/stateEnteredEventDetails/name")
            .and_then(Value::as_str)
        {
            path.push(name.to_owned());
        }
        for key in ["lambdaFunctionFailedEventDetails", "taskFailedEventDetails"] {
            if let Some(err) = e.pointer(&format!("/{key}/error")).and_then(Value::as_str) {
                task_failures.push(err.to_owned());
            }
        }
    }
    Run {
        status: outcome.status.as_str().to_owned(),
        path,
        task_failures,
        error: outcome.error,
    }
}

async fn run_on_moto(
    moto: &Moto,
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    name: &str,
    script: &[Step],
    input: &Value,
) -> Run {
    let queued: Vec<String> = script
        .iter()
        .map(|s| match &s.result {
            Ok(v) => v.to_string(),
            // What the Lambda service answers for a handler error: errorType is the
            // Diagnostic's error_type, i.e. StageError::name().
            Err(e) => json!({"__docpipe_error__": {
                "errorType": e.name().as_str(),
                "errorMessage": e.to_string(),
            }})
            .to_string(),
        })
        .collect();
    moto.queue_lambda_results(&queued).await;
    let exec = sfn
        .start_execution()
        .state_machine_arn(arn)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .expect("start")
        .execution_arn;
    let deadline = Instant::now() + Duration::from_secs(90);
    let described = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(&exec)
            .send()
            .await
            .expect("describe");
        if d.status() != &ExecutionStatus::Running {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "moto execution {name} still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut path = Vec::new();
    let mut task_failures = Vec::new();
    let mut pages = sfn
        .get_execution_history()
        .execution_arn(&exec)
        .into_paginator()
        .items()
        .send();
    while let Some(event) = pages.next().await {
        let event = event.expect("history");
        if let Some(d) = event.state_entered_event_details() {
            path.push(d.name().to_owned());
        }
        match event.r#type() {
            HistoryEventType::LambdaFunctionFailed => task_failures.push(
                event
                    .lambda_function_failed_event_details()
                    .and_then(|d| d.error())
                    .unwrap_or_default()
                    .to_owned(),
            ),
            HistoryEventType::TaskFailed => task_failures.push(
                event
                    .task_failed_event_details()
                    .and_then(|d| d.error())
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => {}
        }
    }
    Run {
        status: described.status().as_str().to_owned(),
        path,
        task_failures,
        error: described.error().map(str::to_owned),
    }
}

fn input(job: &str, kind: &str) -> Value {
    json!({"job_id": job, "kind": kind, "correlation_id": "req-1"})
}

fn ingest_out() -> Value {
    json!({"key": "documents/j/inv.pdf", "media_type": "application/pdf", "size_bytes": 10, "sha256": "00"})
}

fn verified(needs_review: bool) -> Value {
    json!({"key": "results/j/verified.json", "needs_review": needs_review, "review_reasons": []})
}

fn failed_job() -> Value {
    json!({"job_id": "j", "status": "failed", "result_key": null})
}

/// (name, kind, script, expected path, expected status)
type Scenario = (
    &'static str,
    &'static str,
    Vec<Step>,
    Vec<&'static str>,
    &'static str,
);

fn scenarios() -> Vec<Scenario> {
    use Stage::*;
    let done = json!({"job_id": "j", "status": "completed", "result_key": "results/j/result.json"});
    vec![
        (
            "completed",
            "invoice",
            vec![
                ok(Ingest, ingest_out()),
                ok(
                    Ocr,
                    json!({"key": "ocr/j/document.json", "pages": 1, "words": 120}),
                ),
                ok(
                    Extract,
                    json!({"key": "results/j/extraction.json", "fields": 9, "lines": 2}),
                ),
                ok(Verify, verified(false)),
                ok(Finalize, done.clone()),
            ],
            vec![
                "Ingest",
                "RouteByKind",
                "Ocr",
                "Extract",
                "Verify",
                "RouteVerdict",
                "MarkCompleted",
                "Finalize",
                "Done",
            ],
            "SUCCEEDED",
        ),
        (
            "transient-retried",
            "invoice",
            vec![
                ok(Ingest, ingest_out()),
                fail(
                    Ocr,
                    ErrorCode::ServiceUnavailable,
                    "Textract ThrottlingException",
                ),
                ok(
                    Ocr,
                    json!({"key": "ocr/j/document.json", "pages": 1, "words": 120}),
                ),
                ok(
                    Extract,
                    json!({"key": "results/j/extraction.json", "fields": 9, "lines": 2}),
                ),
                ok(Verify, verified(true)),
                ok(Finalize, done),
            ],
            vec![
                "Ingest",
                "RouteByKind",
                "Ocr",
                "Extract",
                "Verify",
                "RouteVerdict",
                "MarkNeedsReview",
                "Finalize",
                "Done",
            ],
            "SUCCEEDED",
        ),
        (
            "permanent-caught",
            "invoice",
            vec![
                fail(
                    Ingest,
                    ErrorCode::InvalidFileFormat,
                    "the content is not a PDF, PNG or JPEG",
                ),
                ok(RecordFailure, failed_job()),
            ],
            vec!["Ingest", "RecordFailure", "Failed"],
            "FAILED",
        ),
        (
            "cancelled",
            "invoice",
            vec![
                ok(Ingest, ingest_out()),
                ok(
                    Ocr,
                    json!({"key": "ocr/j/document.json", "pages": 1, "words": 3}),
                ),
                fail(
                    Extract,
                    ErrorCode::JobCancelled,
                    "job cannot move from cancelled to extracting",
                ),
            ],
            vec!["Ingest", "RouteByKind", "Ocr", "Extract", "Cancelled"],
            "FAILED",
        ),
        (
            "blueprint-unsupported",
            "blueprint",
            vec![
                ok(Ingest, ingest_out()),
                fail(
                    Extract,
                    ErrorCode::UnsupportedDocument,
                    "room detection is not available",
                ),
                ok(RecordFailure, failed_job()),
            ],
            vec![
                "Ingest",
                "RouteByKind",
                "ExtractBlueprint",
                "RecordFailure",
                "Failed",
            ],
            "FAILED",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_definition_takes_the_same_paths_on_moto_and_embedded() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    moto.enable_executions().await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk_config());
    let arn = sfn
        .create_state_machine()
        .name("docpipe-test-pipeline")
        .definition(substituted())
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/docpipe-test-sfn"))
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn;
    for (i, (name, kind, script, path, status)) in scenarios().into_iter().enumerate() {
        let job = format!("job_20260301120000_{i:012}");
        let input = input(&job, kind);
        // Sequentially: the Lambda result queue is shared by every execution.
        let aws = run_on_moto(&moto, &sfn, &arn, &job, &script, &input).await;
        let ours = run_embedded(&script, &input).await;
        assert_eq!(aws.path, path, "{name}: moto's path");
        assert_eq!(aws.status, status, "{name}: moto's status");
        assert_eq!(ours, aws, "{name}: embedded vs moto");
        let expected_failures: Vec<String> = script
            .iter()
            .filter_map(|s| {
                s.result
                    .as_ref()
                    .err()
                    .map(|e| e.name().as_str().to_owned())
            })
            .collect();
        assert_eq!(aws.task_failures, expected_failures, "{name}");
        eprintln!("{name}: {} via {:?}", aws.status, aws.path);
    }
}
