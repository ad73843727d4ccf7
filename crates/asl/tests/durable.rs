//! The durable runner survives crashes: a simulated crash at every journal append (before
//! and after the write), and a child process killed with SIGKILL mid-execution. After a
//! restart every execution completes, no task whose completion was journaled runs again,
//! and a task that was in flight at the crash runs again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use docpipe_asl::clock::VirtualClock;
use docpipe_asl::journal::{CrashMode, FileJournal, MemoryJournal, replay};
use docpipe_asl::{
    Definition, DurableRunner, ExecutionOptions, ExecutionStatus, Journal, JournalError,
    TaskFailure, TaskInvoker,
};
use serde_json::{Value, json};

/// Records every invocation as `resource input`; `FailFirst` fails attempt 0.
#[derive(Default, Clone)]
struct Recorder {
    calls: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

fn key(resource: &str, input: &Value) -> String {
    format!("{resource} {input}")
}

#[async_trait]
impl TaskInvoker for Recorder {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(key(resource, &input));
        }
        if resource == "FailFirst" && input.get("attempt") == Some(&json!(0)) {
            return Err(TaskFailure::new("DocPipe.Transient", "first attempt fails"));
        }
        Ok(json!({"from": resource, "got": input}))
    }
}

const DEFINITION: &str = r#"{
  "StartAt": "A",
  "States": {
    "A": {"Type": "Task", "Resource": "TaskA", "ResultPath": "$.a", "Next": "Pause"},
    "Pause": {"Type": "Wait", "Seconds": 5, "Next": "Both"},
    "Both": {"Type": "Parallel", "ResultPath": "$.both", "Next": "Each", "Branches": [
      {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "TaskB", "End": true,
        "Parameters": {"branch": "b"}}}},
      {"StartAt": "C", "States": {"C": {"Type": "Task", "Resource": "TaskC", "End": true,
        "Parameters": {"branch": "c"}}}}
    ]},
    "Each": {"Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.each", "Next": "Flaky",
      "ItemProcessor": {"StartAt": "D", "States": {
        "D": {"Type": "Task", "Resource": "TaskD", "End": true}}}},
    "Flaky": {"Type": "Task", "Resource": "FailFirst", "ResultPath": "$.flaky", "End": true,
      "Parameters": {"attempt.$": "$$.State.RetryCount"},
      "Retry": [{"ErrorEquals": ["DocPipe.Transient"], "IntervalSeconds": 3, "MaxAttempts": 2}]}
  }
}"#;

fn definition() -> Definition {
    match Definition::parse(DEFINITION) {
        Ok(d) => d,
        Err(e) => panic!("definition: {e}"),
    }
}

fn options(name: &str) -> ExecutionOptions {
    ExecutionOptions {
        name: name.into(),
        seed: Some(42),
        ..ExecutionOptions::default()
    }
}

fn clock() -> Arc<VirtualClock> {
    let start = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    Arc::new(VirtualClock::new(start))
}

/// The keys of the tasks in flight (asked for, no journaled result) in a journal.
async fn in_flight(journal: &dyn Journal) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let logs = journal.unfinished().await.unwrap_or_default();
    for log in logs {
        if let Ok(r) = replay(&log) {
            for t in r.tasks {
                out.insert(key(&t.resource, &t.input));
            }
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn crash_at_every_journal_append_then_recover() {
    let def = definition();
    let input = json!({"items": [1, 2]});
    // Reference run: no crash.
    let recorder = Recorder::default();
    let journal = MemoryJournal::new();
    let runner = DurableRunner::new(
        Arc::new(recorder.clone()),
        clock(),
        Arc::new(journal.clone()),
    );
    let reference = match runner.run(&def, input.clone(), options("ref")).await {
        Ok(o) => o,
        Err(e) => panic!("reference run: {e}"),
    };
    assert_eq!(reference.status, ExecutionStatus::Succeeded);
    let appends = journal.appends();
    assert!(appends >= 8, "only {appends} appends");
    let reference_types: Vec<_> = reference.history.iter().map(|e| e.event_type).collect();
    recorder.take();

    for k in 0..appends {
        for mode in [CrashMode::BeforeWrite(k), CrashMode::AfterWrite(k)] {
            let recorder = Recorder::default();
            let journal = MemoryJournal::crashing(mode);
            let clock = clock();
            let runner = DurableRunner::new(
                Arc::new(recorder.clone()),
                clock.clone(),
                Arc::new(journal.clone()),
            );
            let first = runner.run(&def, input.clone(), options("e1")).await;
            assert!(
                matches!(first, Err(JournalError::Crashed)),
                "{mode:?}: expected a crash"
            );
            let before: Vec<String> = recorder.take();
            journal.restart();
            let flight = in_flight(&journal).await;
            // Everything invoked before the crash either has a journaled result or is
            // in flight.
            let journaled: BTreeSet<String> = before
                .iter()
                .filter(|k| !flight.contains(*k))
                .cloned()
                .collect();
            // "Restart the process": a new runner over the same journal.
            let runner = DurableRunner::new(
                Arc::new(recorder.clone()),
                clock.clone(),
                Arc::new(journal.clone()),
            );
            let recovered = match runner.recover().await {
                Ok(r) => r,
                Err(e) => panic!("{mode:?}: recovery: {e}"),
            };
            let after = recorder.take();
            if k == 0 && mode == CrashMode::BeforeWrite(0) {
                // The Started record never reached the journal: the execution was never
                // accepted (run() returned the error to its caller).
                assert!(recovered.is_empty());
                continue;
            }
            if recovered.is_empty() {
                // The crash came after the Finished record was stored: nothing to resume.
                assert!(matches!(
                    journal.records("e1").last(),
                    Some(docpipe_asl::JournalRecord::Finished { .. })
                ));
                assert!(after.is_empty());
                continue;
            }
            assert_eq!(recovered.len(), 1, "{mode:?}");
            let (_, outcome) = &recovered[0];
            assert_eq!(outcome.status, reference.status, "{mode:?}");
            assert_eq!(outcome.output, reference.output, "{mode:?}");
            let types: Vec<_> = outcome.history.iter().map(|e| e.event_type).collect();
            assert_eq!(types, reference_types, "{mode:?}: history differs");
            let mut seen = BTreeSet::new();
            for call in &after {
                assert!(
                    !journaled.contains(call),
                    "{mode:?}: {call} ran again although its result was journaled"
                );
                assert!(seen.insert(call.clone()), "{mode:?}: {call} ran twice");
            }
            assert!(
                journal
                    .unfinished()
                    .await
                    .map(|u| u.is_empty())
                    .unwrap_or(false)
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_in_flight_at_the_crash_runs_again() {
    let def = definition();
    let recorder = Recorder::default();
    // Append 0 is Started; append 1 would journal TaskA's result: crash before it.
    let journal = MemoryJournal::crashing(CrashMode::BeforeWrite(1));
    let clock = clock();
    let runner = DurableRunner::new(
        Arc::new(recorder.clone()),
        clock.clone(),
        Arc::new(journal.clone()),
    );
    let first = runner.run(&def, json!({"items": []}), options("e2")).await;
    assert!(matches!(first, Err(JournalError::Crashed)));
    journal.restart();
    let runner = DurableRunner::new(Arc::new(recorder.clone()), clock, Arc::new(journal));
    let recovered = runner.recover().await.unwrap_or_default();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].1.status, ExecutionStatus::Succeeded);
    let calls = recorder.take();
    let a_calls = calls.iter().filter(|c| c.starts_with("TaskA ")).count();
    assert_eq!(a_calls, 2, "TaskA was in flight: it runs again ({calls:?})");
}

#[tokio::test(start_paused = true)]
async fn retry_backoff_and_wait_follow_virtual_time() {
    let def = definition();
    let recorder = Recorder::default();
    let clock = clock();
    let runner = DurableRunner::new(
        Arc::new(recorder.clone()),
        clock.clone(),
        Arc::new(MemoryJournal::new()),
    );
    let out = runner.run(&def, json!({"items": [1]}), options("e3")).await;
    assert!(matches!(out, Ok(ref o) if o.status == ExecutionStatus::Succeeded));
    // Wait 5 s + one retry after IntervalSeconds 3.
    assert_eq!(clock.elapsed().as_secs(), 8);
}

// ---------------------------------------------------------------------------------------
// A real process killed with SIGKILL.

const CHILD_ENV: &str = "DOCPIPE_ASL_DURABLE_CHILD_JOURNAL";
const CHILD_DEFINITION: &str = r#"{
  "StartAt": "T1",
  "States": {
    "T1": {"Type": "Task", "Resource": "T1", "ResultPath": "$.t1", "Next": "P"},
    "P": {"Type": "Pass", "Result": "between", "ResultPath": "$.p", "Next": "T2"},
    "T2": {"Type": "Task", "Resource": "T2", "ResultPath": "$.t2", "Next": "W"},
    "W": {"Type": "Wait", "Seconds": 0, "Next": "T3"},
    "T3": {"Type": "Task", "Resource": "T3", "ResultPath": "$.t3", "End": true}
  }
}"#;
const CHILD_EXECUTIONS: usize = 3;

/// In the child: T1 and T2 complete, T3 never does; prints `INVOKED <key>` for each
/// invocation and `READY` once every execution waits in T3.
struct ChildInvoker {
    t3: Arc<Mutex<usize>>,
}

#[async_trait]
impl TaskInvoker for ChildInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        println!("INVOKED {}", key(resource, &input));
        if resource == "T3" {
            let ready = self
                .t3
                .lock()
                .map(|mut n| {
                    *n += 1;
                    *n == CHILD_EXECUTIONS
                })
                .unwrap_or(false);
            if ready {
                println!("READY");
            }
            std::future::pending::<()>().await;
        }
        Ok(json!(resource))
    }
}

/// Not a test on its own: the child process of `sigkill_mid_execution_then_recover`.
#[tokio::test]
#[ignore = "runs only as the child process of sigkill_mid_execution_then_recover"]
async fn durable_child_process() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let journal = match FileJournal::open(std::path::Path::new(&path), false) {
        Ok(j) => Arc::new(j),
        Err(e) => panic!("journal: {e}"),
    };
    let def = match Definition::parse(CHILD_DEFINITION) {
        Ok(d) => d,
        Err(e) => panic!("definition: {e}"),
    };
    let runner = DurableRunner::new(
        Arc::new(ChildInvoker {
            t3: Arc::new(Mutex::new(0)),
        }),
        Arc::new(docpipe_asl::clock::SystemClock),
        journal,
    );
    let mut set = tokio::task::JoinSet::new();
    for i in 0..CHILD_EXECUTIONS {
        let runner = runner.clone();
        let def = def.clone();
        set.spawn(async move {
            runner
                .run(&def, json!({"n": i}), options(&format!("child-{i}")))
                .await
        });
    }
    // Never returns: the parent kills this process.
    while set.join_next().await.is_some() {}
}

#[tokio::test(start_paused = true)]
async fn sigkill_mid_execution_then_recover() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let path = dir.path().join("journal.jsonl");
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => panic!("current_exe: {e}"),
    };
    let mut child = match std::process::Command::new(exe)
        .args([
            "durable_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("spawn: {e}"),
    };
    let mut before = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            // The test harness may print on the same line before our output.
            if let Some(i) = line.find("INVOKED ") {
                before.push(line[i + "INVOKED ".len()..].to_owned());
            }
            if line.ends_with("READY") {
                break;
            }
        }
    }
    // SIGKILL (std's kill on Unix), mid-execution: every execution is inside T3.
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        before.len(),
        3 * CHILD_EXECUTIONS,
        "child invoked {before:?}"
    );

    let journal: Arc<dyn Journal> = match FileJournal::open(&path, false) {
        Ok(j) => Arc::new(j),
        Err(e) => panic!("journal: {e}"),
    };
    let flight = in_flight(journal.as_ref()).await;
    assert_eq!(
        flight.len(),
        CHILD_EXECUTIONS,
        "T3 of each execution is in flight"
    );
    let recorder = Recorder::default();
    let runner = DurableRunner::new(Arc::new(recorder.clone()), clock(), journal.clone());
    let recovered = match runner.recover().await {
        Ok(r) => r,
        Err(e) => panic!("recover: {e}"),
    };
    assert_eq!(recovered.len(), CHILD_EXECUTIONS);
    let mut by_name = BTreeMap::new();
    for (name, o) in &recovered {
        assert_eq!(o.status, ExecutionStatus::Succeeded, "{name}");
        by_name.insert(name.clone(), o.output.clone());
    }
    assert_eq!(
        by_name.get("child-0").cloned().flatten(),
        Some(json!({"n": 0, "t1": "T1", "p": "between", "t2": "T2",
            "t3": {"from": "T3", "got": {"n": 0, "t1": "T1", "p": "between", "t2": "T2"}}}))
    );
    let after = recorder.take();
    for call in &after {
        assert!(
            call.starts_with("T3 "),
            "{call} ran again after the restart"
        );
    }
    assert_eq!(after.len(), CHILD_EXECUTIONS);
    assert!(
        journal
            .unfinished()
            .await
            .map(|u| u.is_empty())
            .unwrap_or(false)
    );
}
