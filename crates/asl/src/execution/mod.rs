//! The functional core: an execution is a value that consumes events and returns actions.
//! It performs no I/O and reads no clock; the caller passes the current time in, so the
//! same code runs on system time, on virtual time and in replay.
//!
//! One file per concern: this one holds the execution, its frames and the loop that
//! drives them; `states` runs each state type once, over `query` (the part that differs
//! between JSONPath and JSONata); `task` schedules tasks and applies their events;
//! `children` runs Map iterations and Parallel branches; `recovery` is Retry and Catch.

mod children;
mod query;
mod recovery;
mod states;
mod task;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::error::{StatesError, names};
use crate::history::{
    ErrorDetails, EventDetails, EventType, HistoryEvent, Payload, PayloadDetails,
};
use crate::model::{Definition, Machine, State, StateKind};

/// Step Functions' history limit; also what stops a definition that loops forever.
pub const MAX_HISTORY_EVENTS: u64 = 25_000;
/// Step Functions' payload limit for a task result.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Who is running the execution: the values of the context object and of ARNs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExecutionContext {
    pub execution_arn: String,
    pub execution_name: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub role_arn: String,
    pub region: String,
    /// Seed for `States.UUID`, `States.MathRandom` and retry jitter.
    pub seed: u64,
}

impl ExecutionContext {
    /// ARNs for `account` and `region` built from the machine and execution names.
    pub fn new(
        region: &str,
        account: &str,
        state_machine_name: &str,
        execution_name: &str,
    ) -> Self {
        Self {
            execution_arn: format!(
                "arn:aws:states:{region}:{account}:execution:{state_machine_name}:{execution_name}"
            ),
            execution_name: execution_name.to_owned(),
            state_machine_arn: format!(
                "arn:aws:states:{region}:{account}:stateMachine:{state_machine_name}"
            ),
            state_machine_name: state_machine_name.to_owned(),
            role_arn: format!("arn:aws:iam::{account}:role/{state_machine_name}-role"),
            region: region.to_owned(),
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

/// Final status of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }
}

/// How an execution ended (the history travels separately, as `RecordHistory` actions).
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub status: ExecutionStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// Identifies an outstanding task invocation or timer.
pub type OpId = u64;

/// What the core asks its runner to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Invoke `resource` with `input`; report `TaskSucceeded`/`TaskFailed`, or `TaskTimedOut`
    /// if `timeout` passes first.
    InvokeTask {
        id: OpId,
        resource: String,
        input: Value,
        timeout: Option<Duration>,
    },
    /// Report `TimerFired` after `duration`.
    StartTimer { id: OpId, duration: Duration },
    /// Append to the history.
    RecordHistory(HistoryEvent),
    /// The execution is over; no further events are accepted.
    Finish(Completion),
}

/// What happened outside the core.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    TaskSucceeded {
        id: OpId,
        output: Value,
    },
    TaskFailed {
        id: OpId,
        error: String,
        cause: String,
    },
    TaskTimedOut {
        id: OpId,
    },
    TimerFired {
        id: OpId,
    },
    /// StopExecution.
    Abort {
        error: Option<String>,
        cause: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChildKind {
    Map,
    Parallel,
}

#[derive(Debug)]
struct Children {
    kind: ChildKind,
    /// (machine, input) of each child still to run or run.
    inputs: Vec<(Arc<Machine>, Value)>,
    results: Vec<Value>,
    /// Map: how many iterations may fail (count, percentage) before the state fails.
    tolerated_count: Option<u64>,
    tolerated_percentage: Option<f64>,
    failures: u64,
}

#[derive(Debug)]
enum Waiting {
    Nothing,
    Task {
        op: OpId,
        resource: String,
        lambda: bool,
    },
    Timer {
        op: OpId,
    },
    Retry {
        op: OpId,
    },
    Children(Children),
}

#[derive(Debug)]
struct Frame {
    machine: Arc<Machine>,
    state: String,
    raw_input: Value,
    entered_event_id: u64,
    entered_time: DateTime<Utc>,
    retry_counts: Vec<u32>,
    retry_total: u32,
    waiting: Waiting,
    /// Shared with the frames that inherited them; copied on the first assignment.
    variables: Arc<Map<String, Value>>,
    /// `raw_input` as JSON text when it is already known (the previous state's output).
    input_text: Option<Payload>,
}

/// What running (part of) a state produced.
enum Flow {
    Waiting,
    /// The state completed with this output.
    Done {
        output: Value,
        next: Option<String>,
    },
    Failed(StatesError),
}

/// One running execution.
#[derive(Debug)]
pub struct Execution {
    ctx: ExecutionContext,
    input: Value,
    start_time: DateTime<Utc>,
    stack: Vec<Frame>,
    last_event_id: u64,
    next_op: OpId,
    execution_timer: Option<OpId>,
    rng: u64,
    finished: bool,
    actions: Vec<Action>,
    /// The text of the output `end_frame` is about to receive, when already serialised.
    output_text: Option<Payload>,
}

/// What a state that cannot read the context object sees as `$$`.
static NO_CONTEXT: Value = Value::Null;

/// A payload as the history shows it: compact JSON text. (Serialising straight into bytes
/// is several times faster than `Display`, which goes through the formatting machinery.)
fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The size in bytes of `v` as compact JSON text, without building the text.
fn json_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

fn timestamp_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Execution {
    /// Starts an execution: records `ExecutionStarted` and runs until the first task,
    /// timer or the end.
    pub fn start(
        definition: &Definition,
        input: Value,
        ctx: ExecutionContext,
        now: DateTime<Utc>,
    ) -> (Execution, Vec<Action>) {
        let machine = definition.machine.clone();
        let mut exec = Execution {
            rng: ctx.seed | 1,
            ctx,
            input: input.clone(),
            start_time: now,
            stack: Vec::new(),
            last_event_id: 0,
            next_op: 1,
            execution_timer: None,
            finished: false,
            // Room for a short run's events without regrowing (each regrowth moves them all).
            actions: Vec::with_capacity(32),
            output_text: None,
        };
        let input_text = Payload::from(text(&input));
        exec.record(
            now,
            EventType::ExecutionStarted,
            Some(EventDetails::ExecutionStartedEventDetails {
                input: input_text.clone(),
                input_details: PayloadDetails::default(),
                role_arn: exec.ctx.role_arn.clone(),
            }),
        );
        if let Some(secs) = definition.timeout_seconds {
            let op = exec.op();
            exec.execution_timer = Some(op);
            exec.actions.push(Action::StartTimer {
                id: op,
                duration: Duration::from_secs(secs),
            });
        }
        exec.push_frame(machine, input, Arc::default(), now);
        if let Some(f) = exec.stack.last_mut() {
            f.input_text = Some(input_text);
        }
        exec.drive(Flow::Waiting, now, true);
        let actions = std::mem::take(&mut exec.actions);
        (exec, actions)
    }

    /// Whether a `Finish` action has been emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Feeds one event; returns the actions it causes.
    pub fn on_event(&mut self, event: Event, now: DateTime<Utc>) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        match event {
            Event::Abort { error, cause } => {
                self.record(
                    now,
                    EventType::ExecutionAborted,
                    Some(EventDetails::ExecutionAbortedEventDetails(ErrorDetails {
                        error: error.clone(),
                        cause: cause.clone(),
                    })),
                );
                self.finish(ExecutionStatus::Aborted, None, error, cause);
            }
            Event::TimerFired { id } if Some(id) == self.execution_timer => {
                self.record(
                    now,
                    EventType::ExecutionTimedOut,
                    Some(EventDetails::ExecutionTimedOutEventDetails(ErrorDetails {
                        error: None,
                        cause: None,
                    })),
                );
                self.finish(ExecutionStatus::TimedOut, None, None, None);
            }
            event => {
                let flow = self.resume(event, now);
                self.drive(flow, now, false);
            }
        }
        std::mem::take(&mut self.actions)
    }

    fn op(&mut self) -> OpId {
        let id = self.next_op;
        self.next_op += 1;
        id
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: deterministic given the seed, which the runner draws at random.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn record(
        &mut self,
        now: DateTime<Utc>,
        event_type: EventType,
        details: Option<EventDetails>,
    ) -> u64 {
        let id = self.last_event_id + 1;
        let event = HistoryEvent {
            id,
            previous_event_id: self.last_event_id,
            timestamp: now,
            event_type,
            details,
        };
        self.last_event_id = id;
        self.actions.push(Action::RecordHistory(event));
        id
    }

    fn finish(
        &mut self,
        status: ExecutionStatus,
        output: Option<Value>,
        error: Option<String>,
        cause: Option<String>,
    ) {
        self.finished = true;
        self.stack.clear();
        self.actions.push(Action::Finish(Completion {
            status,
            output,
            error,
            cause,
        }));
    }

    fn push_frame(
        &mut self,
        machine: Arc<Machine>,
        input: Value,
        variables: Arc<Map<String, Value>>,
        now: DateTime<Utc>,
    ) {
        let state = machine.start_at.clone();
        self.stack.push(Frame {
            machine,
            state,
            raw_input: input,
            entered_event_id: 0,
            entered_time: now,
            retry_counts: Vec::new(),
            retry_total: 0,
            waiting: Waiting::Nothing,
            variables,
            input_text: None,
        });
    }

    fn current_state(&self) -> Option<(Arc<Machine>, String)> {
        let f = self.stack.last()?;
        Some((f.machine.clone(), f.state.clone()))
    }

    fn context_object(&self, state: &State, map_item: Option<(usize, &Value)>) -> Value {
        let (name, entered, retries) = match self.stack.last() {
            Some(f) => (f.state.clone(), f.entered_time, f.retry_total),
            None => (state.name.clone(), self.start_time, 0),
        };
        let mut state_obj = json!({"Name": name, "EnteredTime": timestamp_text(entered)});
        if let (StateKind::Task(_), Some(o)) = (&state.kind, state_obj.as_object_mut()) {
            o.insert("RetryCount".into(), Value::from(retries));
        }
        let mut ctx = json!({
            "Execution": {
                "Id": self.ctx.execution_arn,
                "Input": self.input,
                "StartTime": timestamp_text(self.start_time),
                "Name": self.ctx.execution_name,
                "RoleArn": self.ctx.role_arn,
                "RedriveCount": 0,
            },
            "StateMachine": {"Id": self.ctx.state_machine_arn, "Name": self.ctx.state_machine_name},
            "State": state_obj,
        });
        // EXPRESS executions (`...:express:...` ARNs) cannot be redriven: no RedriveCount.
        if self.ctx.execution_arn.split(':').nth(5) == Some("express")
            && let Some(e) = ctx.get_mut("Execution").and_then(Value::as_object_mut)
        {
            e.shift_remove("RedriveCount");
        }
        if let (Some((index, value)), Some(o)) = (map_item, ctx.as_object_mut()) {
            o.insert(
                "Map".into(),
                json!({"Item": {"Index": index, "Value": value}}),
            );
        }
        ctx
    }

    /// The context object if `state` can read it (see [`State::reads_context`]).
    fn context_for(&self, state: &State) -> Option<Value> {
        state
            .reads_context
            .then(|| self.context_object(state, None))
    }

    /// Runs the engine until it waits or finishes. `enter` says whether the top frame's
    /// current state still has to be entered.
    fn drive(&mut self, flow: Flow, now: DateTime<Utc>, enter: bool) {
        let mut flow = flow;
        let mut enter = enter;
        loop {
            if self.finished {
                return;
            }
            if self.last_event_id >= MAX_HISTORY_EVENTS {
                let cause = format!(
                    "The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS})."
                );
                self.fail_execution(now, names::RUNTIME.into(), cause);
                return;
            }
            if enter {
                enter = false;
                flow = self.enter_state(now);
                continue;
            }
            match flow {
                Flow::Waiting => return,
                Flow::Done { output, next } => {
                    let Some(frame) = self.stack.last() else {
                        return;
                    };
                    let machine = frame.machine.clone();
                    let state = machine.states.get(&frame.state);
                    let type_name = state.map_or("Pass", |s| s.kind.type_name());
                    let name = state.map_or_else(|| frame.state.clone(), |s| s.name.clone());
                    // The output is serialised once: the next state's input (or the
                    // execution's output) is the same text.
                    let mut output_text = None;
                    if let Some(t) = EventType::exited(type_name) {
                        let out = Payload::from(text(&output));
                        output_text = Some(out.clone());
                        self.record(
                            now,
                            t,
                            Some(EventDetails::StateExitedEventDetails {
                                name,
                                output: out,
                                output_details: PayloadDetails::default(),
                            }),
                        );
                    }
                    match next {
                        Some(next) => {
                            if let Some(f) = self.stack.last_mut() {
                                f.state = next;
                                f.raw_input = output;
                                f.input_text = output_text;
                                f.retry_counts.clear();
                                f.retry_total = 0;
                                f.waiting = Waiting::Nothing;
                            }
                            enter = true;
                            flow = Flow::Waiting;
                        }
                        None => {
                            self.output_text = output_text;
                            flow = self.end_frame(Ok(output), now);
                        }
                    }
                }
                Flow::Failed(err) => flow = self.handle_error(err, now),
            }
        }
    }

    fn fail_execution(&mut self, now: DateTime<Utc>, error: String, cause: String) {
        let error = Some(error).filter(|e| !e.is_empty());
        let cause = Some(cause).filter(|c| !c.is_empty());
        self.record(
            now,
            EventType::ExecutionFailed,
            Some(EventDetails::ExecutionFailedEventDetails(ErrorDetails {
                error: error.clone(),
                cause: cause.clone(),
            })),
        );
        self.finish(ExecutionStatus::Failed, None, error, cause);
    }

    fn enter_state(&mut self, now: DateTime<Utc>) -> Flow {
        let Some(frame) = self.stack.last_mut() else {
            return Flow::Waiting;
        };
        let machine = frame.machine.clone();
        let Some(state) = machine.states.get(&frame.state) else {
            return Flow::Failed(StatesError::runtime(format!(
                "state {} does not exist",
                frame.state
            )));
        };
        let input = match frame.input_text.take() {
            Some(t) => t,
            None => text(&frame.raw_input).into(),
        };
        let id = self.record(
            now,
            EventType::entered(state.kind.type_name()),
            Some(EventDetails::StateEnteredEventDetails {
                name: state.name.clone(),
                input,
                input_details: PayloadDetails::default(),
            }),
        );
        if let Some(f) = self.stack.last_mut() {
            f.entered_event_id = id;
            f.entered_time = now;
            f.retry_counts = vec![0; recovery::retriers(state).len()];
            f.retry_total = 0;
        }
        self.run_state(state, now)
    }
}
