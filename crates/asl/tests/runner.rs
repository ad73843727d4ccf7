//! The runner on virtual time: retries, catches, timeouts and aborts run in milliseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use docpipe_asl::clock::VirtualClock;
use docpipe_asl::{
    Action, Definition, Event, EventType, Execution, ExecutionContext, ExecutionOptions,
    ExecutionStatus, Runner, StopHandle, TaskFailure, TaskInvoker,
};
use serde_json::{Value, json};

/// Fails the first `failures` calls with `DocPipe.Transient`, then echoes its input;
/// the resource `slow` sleeps an hour first.
struct Flaky {
    failures: u32,
    calls: AtomicU32,
}

impl Flaky {
    fn new(failures: u32) -> Arc<Self> {
        Arc::new(Self {
            failures,
            calls: AtomicU32::new(0),
        })
    }
}

#[async_trait]
impl TaskInvoker for Flaky {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        if resource == "slow" {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return Err(TaskFailure::new(
                "DocPipe.Transient",
                format!("attempt {n}"),
            ));
        }
        if resource == "invalid" {
            return Err(TaskFailure::new("DocPipe.InvalidDocument", "not a PDF"));
        }
        Ok(json!({"resource": resource, "echo": input}))
    }
}

fn clock() -> Arc<VirtualClock> {
    let start = Utc
        .with_ymd_and_hms(2024, 5, 1, 8, 0, 0)
        .single()
        .expect("valid date");
    Arc::new(VirtualClock::new(start))
}

fn def(text: &str) -> Definition {
    match Definition::parse(text) {
        Ok(d) => d,
        Err(e) => panic!("definition: {e}"),
    }
}

#[tokio::test(start_paused = true)]
async fn retry_backoff_runs_on_virtual_time() {
    let d = def(
        r#"{"StartAt":"Ingest","States":{"Ingest":{"Type":"Task","Resource":"${IngestFunctionArn}",
        "Retry":[{"ErrorEquals":["DocPipe.Transient"],"IntervalSeconds":1,"MaxAttempts":4,"BackoffRate":2.0}],
        "ResultSelector":{"retries.$":"$$.State.RetryCount","echo.$":"$.echo"},
        "End":true}}}"#,
    );
    let clock = clock();
    let invoker = Flaky::new(4);
    let runner = Runner::new(invoker.clone(), clock.clone());
    let wall = std::time::Instant::now();
    let out = runner
        .run(&d, json!({"doc": 1}), ExecutionOptions::default())
        .await;
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    assert_eq!(out.output, Some(json!({"retries": 4, "echo": {"doc": 1}})));
    assert_eq!(invoker.calls.load(Ordering::SeqCst), 5);
    // 1 + 2 + 4 + 8 seconds of backoff.
    assert_eq!(clock.elapsed().as_secs(), 15);
    assert!(wall.elapsed() < Duration::from_secs(2));
    let failed = out
        .history
        .iter()
        .filter(|e| e.event_type == EventType::LambdaFunctionFailed)
        .count();
    assert_eq!(failed, 4);
}

#[tokio::test(start_paused = true)]
async fn retries_exhausted_then_caught() {
    let d = def(r#"{"StartAt":"Extract","States":{
        "Extract":{"Type":"Task","Resource":"invalid",
          "Retry":[{"ErrorEquals":["DocPipe.Transient"],"MaxAttempts":1},
                   {"ErrorEquals":["States.ALL"],"MaxAttempts":0}],
          "Catch":[{"ErrorEquals":["DocPipe.InvalidDocument"],"ResultPath":"$.error","Next":"Failed"}],
          "End":true},
        "Failed":{"Type":"Pass","End":true}}}"#);
    let runner = Runner::new(Flaky::new(1), clock());
    let out = runner
        .run(&d, json!({"job": "j1"}), ExecutionOptions::default())
        .await;
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(
        out.output,
        Some(
            json!({"job": "j1", "error": {"Error": "DocPipe.InvalidDocument", "Cause": "not a PDF"}})
        )
    );
}

#[tokio::test(start_paused = true)]
async fn uncaught_task_error_fails_the_execution() {
    let d =
        def(r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"invalid","End":true}}}"#);
    let out = Runner::new(Flaky::new(0), clock())
        .run(&d, json!({}), ExecutionOptions::default())
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("DocPipe.InvalidDocument"));
    assert_eq!(out.cause.as_deref(), Some("not a PDF"));
    let last = out.history.last().map(|e| e.event_type);
    assert_eq!(last, Some(EventType::ExecutionFailed));
}

#[tokio::test(start_paused = true)]
async fn task_timeout_is_states_timeout() {
    let d = def(
        r#"{"StartAt":"Ocr","States":{"Ocr":{"Type":"Task","Resource":"slow","TimeoutSeconds":5,
        "Catch":[{"ErrorEquals":["States.TaskFailed"],"Next":"Wrong"}],"End":true},
        "Wrong":{"Type":"Succeed"}}}"#,
    );
    let clock = clock();
    let out = Runner::new(Flaky::new(0), clock.clone())
        .run(&d, json!({}), ExecutionOptions::default())
        .await;
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("States.Timeout"));
    assert_eq!(clock.elapsed().as_secs(), 5);
    assert!(
        out.history
            .iter()
            .any(|e| e.event_type == EventType::LambdaFunctionTimedOut)
    );
}

#[tokio::test(start_paused = true)]
async fn execution_timeout_times_out() {
    let d = def(
        r#"{"TimeoutSeconds":10,"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":100,"End":true}}}"#,
    );
    let clock = clock();
    let out = Runner::new(Flaky::new(0), clock.clone())
        .run(&d, json!({}), ExecutionOptions::default())
        .await;
    assert_eq!(out.status, ExecutionStatus::TimedOut);
    assert_eq!(clock.elapsed().as_secs(), 10);
    assert_eq!(
        out.history.last().map(|e| e.event_type),
        Some(EventType::ExecutionTimedOut)
    );
}

#[tokio::test(start_paused = true)]
async fn stop_aborts_promptly() {
    let d =
        def(r#"{"StartAt":"Ocr","States":{"Ocr":{"Type":"Task","Resource":"slow","End":true}}}"#);
    let clock = clock();
    let runner = Runner::new(Flaky::new(0), clock.clone());
    let stop = StopHandle::new();
    let options = ExecutionOptions {
        stop: Some(stop.clone()),
        ..ExecutionOptions::default()
    };
    let handle = tokio::spawn(async move { runner.run(&d, json!({}), options).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.stop(
        Some("User.Cancelled".into()),
        Some("cancelled by the user".into()),
    );
    let out = handle.await.expect("runner task");
    assert_eq!(out.status, ExecutionStatus::Aborted);
    assert_eq!(out.error.as_deref(), Some("User.Cancelled"));
    assert!(clock.elapsed() < Duration::from_secs(3));
    assert_eq!(
        out.history.last().map(|e| e.event_type),
        Some(EventType::ExecutionAborted)
    );
}

#[tokio::test(start_paused = true)]
async fn map_and_parallel() {
    let d = def(r#"{"StartAt":"P","States":{
        "P":{"Type":"Parallel","Branches":[
            {"StartAt":"A","States":{"A":{"Type":"Pass","Result":1,"End":true}}},
            {"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.items",
               "ItemSelector":{"i.$":"$$.Map.Item.Index","v.$":"$$.Map.Item.Value"},
               "ItemProcessor":{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"f","OutputPath":"$.echo","End":true}}},
               "End":true}}}],
          "End":true}}}"#);
    let out = Runner::new(Flaky::new(0), clock())
        .run(
            &d,
            json!({"items": ["a", "b"]}),
            ExecutionOptions::default(),
        )
        .await;
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    assert_eq!(
        out.output,
        Some(json!([1, [{"i": 0, "v": "a"}, {"i": 1, "v": "b"}]]))
    );
}

#[test]
fn the_core_returns_actions_and_does_no_io() {
    let d = def(
        r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
        "Parameters":{"FunctionName":"f","Payload.$":"$"},"ResultSelector":{"p.$":"$.Payload"},"End":true}}}"#,
    );
    let now = Utc::now();
    let ctx = ExecutionContext::new("us-east-1", "111111111111", "sm", "run-1");
    let (mut exec, actions) = Execution::start(&d, json!({"x": 1}), ctx, now);
    let invoke = actions.iter().find_map(|a| match a {
        Action::InvokeTask {
            id,
            resource,
            input,
            ..
        } => Some((*id, resource.clone(), input.clone())),
        _ => None,
    });
    let Some((id, resource, input)) = invoke else {
        panic!("no InvokeTask in {actions:?}");
    };
    assert_eq!(resource, "arn:aws:states:::lambda:invoke");
    assert_eq!(input, json!({"FunctionName": "f", "Payload": {"x": 1}}));
    let types: Vec<EventType> = actions
        .iter()
        .filter_map(|a| match a {
            Action::RecordHistory(e) => Some(e.event_type),
            _ => None,
        })
        .collect();
    assert_eq!(
        types,
        vec![
            EventType::ExecutionStarted,
            EventType::TaskStateEntered,
            EventType::TaskScheduled,
            EventType::TaskStarted
        ]
    );
    let actions = exec.on_event(
        Event::TaskSucceeded {
            id,
            output: json!({"Payload": {"ok": true}}),
        },
        now,
    );
    assert!(exec.is_finished());
    let finish = actions.iter().find_map(|a| match a {
        Action::Finish(c) => Some(c.clone()),
        _ => None,
    });
    let Some(done) = finish else {
        panic!("no Finish in {actions:?}");
    };
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"p": {"ok": true}})));
    // History serialises like GetExecutionHistory.
    let events: Vec<Value> = actions
        .iter()
        .filter_map(|a| match a {
            Action::RecordHistory(e) => serde_json::to_value(e).ok(),
            _ => None,
        })
        .collect();
    assert_eq!(events[0]["type"], "TaskSucceeded");
    assert_eq!(
        events[0]["taskSucceededEventDetails"]["resourceType"],
        "lambda"
    );
    assert_eq!(events[0]["taskSucceededEventDetails"]["resource"], "invoke");
    assert_eq!(events[0]["previousEventId"], 4);
}
