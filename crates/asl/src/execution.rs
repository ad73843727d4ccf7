//! The functional core: an execution is a value that consumes events and returns actions.
//! It performs no I/O and reads no clock; the caller passes the current time in, so the
//! same code runs on system time, on virtual time and in replay.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::error::{StatesError, names};
use crate::history::{
    ErrorDetails, EventDetails, EventType, HistoryEvent, IterationDetails, Payload, PayloadDetails,
};
use crate::jsonata::{Env, JTemplate, type_name};
use crate::model::{
    Assign, BatchInput, Catcher, Definition, ErrorHandling, FailField, Jitter, Machine, Percentage,
    QueryLanguage, ResultHandling, Seconds, Selector, State, StateKind, Transition, WaitState,
    error_matches,
};
use crate::path::{ReferencePath, Scope};

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

    /// A frame reached its end (or failed): hand the result to the parent state.
    fn end_frame(&mut self, result: Result<Value, StatesError>, now: DateTime<Utc>) -> Flow {
        let output_text = self.output_text.take();
        self.stack.pop();
        if self.stack.is_empty() {
            match result {
                Ok(output) => {
                    self.record(
                        now,
                        EventType::ExecutionSucceeded,
                        Some(EventDetails::ExecutionSucceededEventDetails {
                            output: output_text.unwrap_or_else(|| text(&output).into()),
                            output_details: PayloadDetails::default(),
                        }),
                    );
                    self.finish(ExecutionStatus::Succeeded, Some(output), None, None);
                }
                Err(e) => self.fail_execution(now, e.error, e.cause),
            }
            return Flow::Waiting;
        }
        let Some((machine, name)) = self.current_state() else {
            return Flow::Waiting;
        };
        let Some(state) = machine.states.get(&name) else {
            return Flow::Waiting;
        };
        let Some(frame) = self.stack.last_mut() else {
            return Flow::Waiting;
        };
        let Waiting::Children(children) = &mut frame.waiting else {
            return Flow::Failed(StatesError::runtime("internal: no child work"));
        };
        let kind = children.kind;
        let index = children.results.len();
        match result {
            Ok(output) => {
                children.results.push(output);
                if kind == ChildKind::Map {
                    self.record(
                        now,
                        EventType::MapIterationSucceeded,
                        Some(EventDetails::MapIterationSucceededEventDetails(
                            IterationDetails {
                                name: name.clone(),
                                index,
                            },
                        )),
                    );
                }
                self.next_child(state, now)
            }
            Err(e)
                if kind == ChildKind::Map
                    && (children.tolerated_count.is_some()
                        || children.tolerated_percentage.is_some()) =>
            {
                children.failures += 1;
                let total = children.inputs.len().max(1) as f64;
                let failures = children.failures;
                // Either threshold, when given, fails the Map once exceeded.
                let exceeded = children.tolerated_count.is_some_and(|c| failures > c)
                    || children
                        .tolerated_percentage
                        .is_some_and(|p| failures as f64 * 100.0 / total > p);
                self.record(
                    now,
                    EventType::MapIterationFailed,
                    Some(EventDetails::MapIterationFailedEventDetails(
                        IterationDetails {
                            name: name.clone(),
                            index,
                        },
                    )),
                );
                if exceeded {
                    self.record(now, EventType::MapStateFailed, None);
                    if let Some(f) = self.stack.last_mut() {
                        f.waiting = Waiting::Nothing;
                    }
                    return Flow::Failed(StatesError::new(
                        names::EXCEED_TOLERATED_FAILURE,
                        "The specified tolerance threshold was exceeded",
                    ));
                }
                if let Some(f) = self.stack.last_mut()
                    && let Waiting::Children(children) = &mut f.waiting
                {
                    children
                        .results
                        .push(json!({"Error": e.error, "Cause": e.cause}));
                }
                self.next_child(state, now)
            }
            Err(e) => {
                let (event, details) = match kind {
                    ChildKind::Map => {
                        self.record(
                            now,
                            EventType::MapIterationFailed,
                            Some(EventDetails::MapIterationFailedEventDetails(
                                IterationDetails {
                                    name: name.clone(),
                                    index,
                                },
                            )),
                        );
                        (EventType::MapStateFailed, None)
                    }
                    ChildKind::Parallel => (EventType::ParallelStateFailed, None),
                };
                self.record(now, event, details);
                if let Some(f) = self.stack.last_mut() {
                    f.waiting = Waiting::Nothing;
                }
                Flow::Failed(e)
            }
        }
    }

    /// Starts the next child of a Map/Parallel state, or completes the state.
    fn next_child(&mut self, state: &State, now: DateTime<Utc>) -> Flow {
        let Some(frame) = self.stack.last_mut() else {
            return Flow::Waiting;
        };
        let variables = frame.variables.clone();
        let Waiting::Children(children) = &mut frame.waiting else {
            return Flow::Failed(StatesError::runtime("internal: no child work"));
        };
        let index = children.results.len();
        if let Some((machine, input)) = children.inputs.get(index).cloned() {
            let kind = children.kind;
            if kind == ChildKind::Map {
                self.record(
                    now,
                    EventType::MapIterationStarted,
                    Some(EventDetails::MapIterationStartedEventDetails(
                        IterationDetails {
                            name: state.name.clone(),
                            index,
                        },
                    )),
                );
            }
            self.push_frame(machine, input, variables, now);
            return self.enter_state(now);
        }
        let results = Value::Array(std::mem::take(&mut children.results));
        let kind = children.kind;
        frame.waiting = Waiting::Nothing;
        self.record(
            now,
            match kind {
                ChildKind::Map => EventType::MapStateSucceeded,
                ChildKind::Parallel => EventType::ParallelStateSucceeded,
            },
            None,
        );
        let handling = match &state.kind {
            StateKind::Map(m) => &m.result,
            StateKind::Parallel(p) => &p.result,
            _ => {
                return Flow::Failed(StatesError::runtime(
                    "internal: not a Map or Parallel state",
                ));
            }
        };
        self.complete_with_result(state, handling, results)
    }

    /// The raw input of the top frame for a ResultPath to write into: moved out of the
    /// frame when nothing can read it again (no Retry or Catch), copied otherwise.
    fn take_raw_input(&mut self, state: &State) -> Value {
        let reusable =
            error_handling(state).is_some_and(|h| !h.retry.is_empty() || !h.catch.is_empty());
        match self.stack.last_mut() {
            Some(f) if reusable => f.raw_input.clone(),
            Some(f) => {
                f.input_text = None;
                std::mem::take(&mut f.raw_input)
            }
            None => Value::Null,
        }
    }

    /// ResultSelector, Assign, ResultPath, OutputPath, then the transition.
    fn complete_with_result(
        &mut self,
        state: &State,
        handling: &ResultHandling,
        result: Value,
    ) -> Flow {
        if state.query_language == QueryLanguage::Jsonata {
            let next = match &state.transition {
                Transition::Next(n) => Some(n.clone()),
                _ => None,
            };
            let default = match state.kind {
                StateKind::Pass(_) => None,
                _ => Some(&result),
            };
            return self.jsonata_complete(
                state,
                state.assign.as_ref(),
                state.output.as_ref(),
                default,
                None,
                result.clone(),
                next,
            );
        }
        let ctx = self.context_for(state);
        let ctx = ctx.as_ref().unwrap_or(&NO_CONTEXT);
        let selected = match &handling.result_selector {
            Some(t) => {
                let Some(frame) = self.stack.last() else {
                    return Flow::Waiting;
                };
                let scope = Scope {
                    input: &result,
                    context: ctx,
                    variables: &frame.variables,
                };
                let mut rng = self.rng;
                let mut random = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                match t.eval(scope, &mut random) {
                    Ok(v) => v,
                    Err(e) => return Flow::Failed(e),
                }
            }
            None => result,
        };
        self.finish_result(state, handling.result_path.as_ref(), selected, ctx)
    }

    /// Assign, ResultPath and OutputPath of a JSONPath state's (selected) result.
    fn finish_result(
        &mut self,
        state: &State,
        result_path: Option<&ReferencePath>,
        selected: Value,
        ctx: &Value,
    ) -> Flow {
        if let Err(e) = self.assign(state, &selected, ctx) {
            return Flow::Failed(e);
        }
        let combined = match result_path {
            Some(rp) if rp.is_root() => selected,
            Some(rp) => match rp.write(self.take_raw_input(state), selected) {
                Ok(v) => v,
                Err(e) => return Flow::Failed(e),
            },
            None => self.take_raw_input(state),
        };
        self.output(state, combined, ctx)
    }

    /// The JSONata bindings of the top frame: `$states.input` is the raw state input.
    fn jsonata_parts(&mut self, state: &State) -> (Value, Value, Arc<Map<String, Value>>, u64) {
        let ctx = self.context_object(state, None);
        let (input, vars) = self
            .stack
            .last()
            .map(|f| (f.raw_input.clone(), f.variables.clone()))
            .unwrap_or_default();
        let seed = self.random();
        (input, ctx, vars, seed)
    }

    /// Ends a JSONata state: `Assign` and `Output` both see the variables as they were
    /// when the state was entered; the assignments take effect afterwards.
    #[allow(clippy::too_many_arguments)]
    fn jsonata_complete(
        &mut self,
        state: &State,
        assign: Option<&Assign>,
        output: Option<&JTemplate>,
        result: Option<&Value>,
        error_output: Option<&Value>,
        default_output: Value,
        next: Option<String>,
    ) -> Flow {
        let (input, ctx, vars, seed) = self.jsonata_parts(state);
        let env = Env {
            input: &input,
            context: &ctx,
            result,
            error_output,
            variables: &vars,
            seed,
        };
        let assigned = match assign {
            Some(Assign::Jsonata(t)) => match t.eval(&env, "Assign") {
                Ok(v) => Some(v),
                Err(e) => return Flow::Failed(e),
            },
            _ => None,
        };
        let output = match output {
            Some(t) => match t.eval(&env, "Output") {
                Ok(v) => v,
                Err(e) => return Flow::Failed(e),
            },
            None => default_output,
        };
        drop(vars);
        if let Some(Value::Object(o)) = assigned {
            self.set_variables(o);
        }
        Flow::Done { output, next }
    }

    /// Stores assigned variables in the top frame (copying them first if shared).
    fn set_variables(&mut self, assigned: Map<String, Value>) {
        if let Some(f) = self.stack.last_mut() {
            let vars = Arc::make_mut(&mut f.variables);
            for (k, v) in assigned {
                vars.insert(k, v);
            }
        }
    }

    fn assign(&mut self, state: &State, value: &Value, ctx: &Value) -> Result<(), StatesError> {
        self.assign_with(state.assign.as_ref(), value, ctx)
    }

    fn assign_with(
        &mut self,
        assign: Option<&Assign>,
        value: &Value,
        ctx: &Value,
    ) -> Result<(), StatesError> {
        let t = match assign {
            None => return Ok(()),
            Some(Assign::Path(t)) => t,
            Some(Assign::Jsonata(_)) => {
                // JSONata states assign through `jsonata_complete`.
                return Ok(());
            }
        };
        let Some(frame) = self.stack.last() else {
            return Ok(());
        };
        let scope = Scope {
            input: value,
            context: ctx,
            variables: &frame.variables,
        };
        let mut rng = self.rng;
        let assigned = t.eval(scope, &mut || {
            rng = rng.rotate_left(17) ^ 0x5851_F42D_4C95_7F2D;
            rng
        })?;
        if let Value::Object(o) = assigned {
            self.set_variables(o);
        }
        Ok(())
    }

    /// OutputPath and the transition.
    fn output(&self, state: &State, value: Value, ctx: &Value) -> Flow {
        let output = match &state.output_path {
            Some(p) if p.is_identity() => value,
            Some(p) => {
                let empty = Map::new();
                let vars = self.stack.last().map_or(&empty, |f| &*f.variables);
                match p.select_required(Scope {
                    input: &value,
                    context: ctx,
                    variables: vars,
                }) {
                    Ok(v) => v,
                    Err(e) => return Flow::Failed(e),
                }
            }
            None => Value::Object(Map::new()),
        };
        let next = match &state.transition {
            Transition::Next(n) => Some(n.clone()),
            _ => None,
        };
        Flow::Done { output, next }
    }

    /// The effective input: InputPath applied to the raw input.
    fn effective_input(&self, state: &State, ctx: &Value) -> Result<Value, StatesError> {
        let Some(frame) = self.stack.last() else {
            return Ok(Value::Null);
        };
        match &state.input_path {
            Some(p) => p.select_required(Scope {
                input: &frame.raw_input,
                context: ctx,
                variables: &frame.variables,
            }),
            None => Ok(Value::Object(Map::new())),
        }
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
            f.retry_counts = vec![0; retriers(state).len()];
            f.retry_total = 0;
        }
        self.run_state(state, now)
    }

    /// Records the scheduling events and asks the runner to invoke the task.
    fn schedule_task(
        &mut self,
        t: &crate::model::TaskState,
        input: Value,
        timeout: Option<u64>,
        now: DateTime<Utc>,
    ) -> Flow {
        let lambda = !t.resource.starts_with("arn:aws:states:::");
        let (resource_type, resource) = resource_parts(&t.resource);
        if lambda {
            self.record(
                now,
                EventType::LambdaFunctionScheduled,
                Some(EventDetails::LambdaFunctionScheduledEventDetails {
                    resource: t.resource.clone(),
                    input: text(&input),
                    input_details: PayloadDetails::default(),
                    timeout_in_seconds: timeout,
                }),
            );
            self.record(now, EventType::LambdaFunctionStarted, None);
        } else {
            self.record(
                now,
                EventType::TaskScheduled,
                Some(EventDetails::TaskScheduledEventDetails {
                    resource_type: resource_type.clone(),
                    resource: resource.clone(),
                    region: self.ctx.region.clone(),
                    parameters: text(&input),
                    timeout_in_seconds: timeout,
                }),
            );
            self.record(
                now,
                EventType::TaskStarted,
                Some(EventDetails::TaskStartedEventDetails {
                    resource_type,
                    resource,
                }),
            );
        }
        let op = self.op();
        if let Some(f) = self.stack.last_mut() {
            f.waiting = Waiting::Task {
                op,
                resource: t.resource.clone(),
                lambda,
            };
        }
        self.actions.push(Action::InvokeTask {
            id: op,
            resource: t.resource.clone(),
            input,
            timeout: timeout.map(Duration::from_secs),
        });
        Flow::Waiting
    }

    /// Starts the children of a Map or Parallel state.
    fn start_children(
        &mut self,
        state: &State,
        kind: ChildKind,
        inputs: Vec<(Arc<Machine>, Value)>,
        tolerated: (Option<u64>, Option<f64>),
        now: DateTime<Utc>,
    ) -> Flow {
        match kind {
            ChildKind::Parallel => self.record(now, EventType::ParallelStateStarted, None),
            ChildKind::Map => self.record(
                now,
                EventType::MapStateStarted,
                Some(EventDetails::MapStateStartedEventDetails {
                    length: inputs.len(),
                }),
            ),
        };
        if let Some(f) = self.stack.last_mut() {
            f.waiting = Waiting::Children(Children {
                kind,
                inputs,
                results: Vec::new(),
                tolerated_count: tolerated.0,
                tolerated_percentage: tolerated.1,
                failures: 0,
            });
        }
        self.next_child(state, now)
    }

    /// Runs a JSONPath Pass, Choice or Succeed state. These complete at once and have no
    /// Retry or Catch, so the raw input is moved out of the frame and reused rather than
    /// copied, and the context object is built only if the state can read it.
    fn run_simple_state(&mut self, state: &State) -> Flow {
        let ctx = self.context_for(state);
        let ctx = ctx.as_ref().unwrap_or(&NO_CONTEXT);
        let mut rng = self.random();
        let mut random = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let Some(frame) = self.stack.last_mut() else {
            return Flow::Waiting;
        };
        frame.input_text = None;
        let raw = std::mem::take(&mut frame.raw_input);
        let vars = Arc::clone(&frame.variables);
        let selected = match &state.input_path {
            Some(p) if p.is_identity() => None,
            Some(p) => match p.select_required(Scope {
                input: &raw,
                context: ctx,
                variables: &vars,
            }) {
                Ok(v) => Some(v),
                Err(e) => return Flow::Failed(e),
            },
            None => Some(Value::Object(Map::new())),
        };
        // The effective input: the InputPath selection, or the raw input itself.
        let effective = selected.as_ref().unwrap_or(&raw);
        let scope = Scope {
            input: effective,
            context: ctx,
            variables: &vars,
        };
        match &state.kind {
            StateKind::Pass(p) => {
                let result = if let Some(r) = &p.result {
                    r.clone()
                } else if let Some(t) = &p.parameters {
                    match t.eval(scope, &mut random) {
                        Ok(v) => v,
                        Err(e) => return Flow::Failed(e),
                    }
                } else {
                    effective.clone()
                };
                drop(vars);
                if let Err(e) = self.assign(state, &result, ctx) {
                    return Flow::Failed(e);
                }
                let combined = match &p.result_path {
                    Some(rp) if rp.is_root() => result,
                    Some(rp) => match rp.write(raw, result) {
                        Ok(v) => v,
                        Err(e) => return Flow::Failed(e),
                    },
                    None => raw,
                };
                self.output(state, combined, ctx)
            }
            StateKind::Choice(c) => {
                let mut matched = None;
                for rule in &c.choices {
                    match rule.condition.eval(scope) {
                        Ok(true) => {
                            matched =
                                Some((rule.assign.as_ref().or(state.assign.as_ref()), &rule.next));
                            break;
                        }
                        Ok(false) => {}
                        Err(e) => return Flow::Failed(e),
                    }
                }
                let (assign, next) = match (matched, &c.default) {
                    (Some(m), _) => m,
                    (None, Some(d)) => (state.assign.as_ref(), d),
                    (None, None) => {
                        return Flow::Failed(StatesError::new(
                            names::NO_CHOICE_MATCHED,
                            "No Matches!",
                        ));
                    }
                };
                drop(vars);
                let effective = selected.unwrap_or(raw);
                if let Err(e) = self.assign_with(assign, &effective, ctx) {
                    return Flow::Failed(e);
                }
                match self.output(state, effective, ctx) {
                    Flow::Done { output, .. } => Flow::Done {
                        output,
                        next: Some(next.clone()),
                    },
                    other => other,
                }
            }
            _ => {
                drop(vars);
                self.output(state, selected.unwrap_or(raw), ctx)
            }
        }
    }

    /// Runs a state's body (again, on a retry).
    fn run_state(&mut self, state: &State, now: DateTime<Utc>) -> Flow {
        if state.query_language == QueryLanguage::Jsonata {
            return self.run_state_jsonata(state, now);
        }
        if matches!(
            state.kind,
            StateKind::Pass(_) | StateKind::Choice(_) | StateKind::Succeed
        ) {
            return self.run_simple_state(state);
        }
        let ctx = self.context_for(state);
        let ctx = ctx.as_ref().unwrap_or(&NO_CONTEXT);
        let effective = match self.effective_input(state, ctx) {
            Ok(v) => v,
            Err(e) => return Flow::Failed(e),
        };
        let vars = self
            .stack
            .last()
            .map(|f| f.variables.clone())
            .unwrap_or_default();
        let scope = Scope {
            input: &effective,
            context: ctx,
            variables: &vars,
        };
        let mut rng = self.random();
        let mut random = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        match &state.kind {
            StateKind::Pass(_) | StateKind::Choice(_) | StateKind::Succeed => Flow::Failed(
                StatesError::runtime("internal: Pass, Choice and Succeed run in run_simple_state"),
            ),
            StateKind::Wait(w) => {
                let seconds = match wait_seconds(w, scope, now) {
                    Ok(s) => s,
                    Err(e) => return Flow::Failed(e),
                };
                let op = self.op();
                if let Some(f) = self.stack.last_mut() {
                    // The output is computed from the raw input when the timer fires.
                    f.waiting = Waiting::Timer { op };
                }
                self.actions.push(Action::StartTimer {
                    id: op,
                    duration: seconds_to_duration(seconds),
                });
                Flow::Waiting
            }
            StateKind::Fail(f) => {
                let field = |v: &Option<FailField>,
                             random: &mut dyn FnMut() -> u64|
                 -> Result<String, StatesError> {
                    Ok(match v {
                        None => String::new(),
                        Some(FailField::Literal(s)) => s.clone(),
                        Some(FailField::Path(p)) => match p.select_required(scope)? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                        Some(FailField::Intrinsic(i)) => match i.eval(scope, random)? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                        Some(FailField::Expr(_)) => String::new(),
                    })
                };
                let error = match field(&f.error, &mut random) {
                    Ok(e) => e,
                    Err(e) => return Flow::Failed(e),
                };
                let cause = match field(&f.cause, &mut random) {
                    Ok(c) => c,
                    Err(e) => return Flow::Failed(e),
                };
                // A Fail state ends its frame at once: no Retry or Catch of its own.
                self.end_frame(Err(StatesError::new(error, cause)), now)
            }
            StateKind::Task(t) => {
                let input = match &t.parameters {
                    Some(p) => match p.eval(scope, &mut random) {
                        Ok(v) => v,
                        Err(e) => return Flow::Failed(e),
                    },
                    None => effective.clone(),
                };
                let timeout = match resolve_seconds(&t.timeout, scope, "TimeoutSecondsPath") {
                    Ok(t) => t,
                    Err(e) => return Flow::Failed(e),
                };
                self.schedule_task(t, input, timeout, now)
            }
            StateKind::Parallel(p) => {
                let input = match &p.parameters {
                    Some(t) => match t.eval(scope, &mut random) {
                        Ok(v) => v,
                        Err(e) => return Flow::Failed(e),
                    },
                    None => effective.clone(),
                };
                let inputs = p
                    .branches
                    .iter()
                    .map(|b| (b.clone(), input.clone()))
                    .collect();
                self.start_children(state, ChildKind::Parallel, inputs, (None, None), now)
            }
            StateKind::Map(m) => {
                let tolerated = match map_numbers(m, scope) {
                    Ok(t) => t,
                    Err(e) => return Flow::Failed(e),
                };
                let items = match m.items_path.select_required(scope) {
                    Ok(Value::Array(items)) => items,
                    Ok(other) => {
                        return Flow::Failed(StatesError::runtime(format!(
                            "Map state input must be an array but was: {other}"
                        )));
                    }
                    Err(e) => return Flow::Failed(e),
                };
                let mut inputs = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let input = match &m.item_selector {
                        Some(Selector::Path(t)) => {
                            let item_ctx = self.context_object(state, Some((index, item)));
                            let scope = Scope {
                                input: &effective,
                                context: &item_ctx,
                                variables: &vars,
                            };
                            match t.eval(scope, &mut random) {
                                Ok(v) => v,
                                Err(e) => return Flow::Failed(e),
                            }
                        }
                        _ => item.clone(),
                    };
                    inputs.push(input);
                }
                let inputs = match self.batch(m, inputs, scope, None) {
                    Ok(i) => i,
                    Err(e) => return Flow::Failed(e),
                };
                let inputs = inputs
                    .into_iter()
                    .map(|i| (m.processor.clone(), i))
                    .collect();
                self.start_children(state, ChildKind::Map, inputs, tolerated, now)
            }
        }
    }

    /// Groups Map items into batches when the state has an `ItemBatcher`.
    fn batch(
        &mut self,
        m: &crate::model::MapState,
        items: Vec<Value>,
        scope: Scope<'_>,
        env: Option<&Env<'_>>,
    ) -> Result<Vec<Value>, StatesError> {
        let Some(b) = &m.item_batcher else {
            return Ok(items);
        };
        let number = |s: &Option<Seconds>, field: &str| -> Result<Option<u64>, StatesError> {
            match (s, env) {
                (Some(Seconds::Expr(e)), Some(env)) => {
                    let v = e.eval_required(env, field)?;
                    v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                        StatesError::new(
                            names::QUERY_EVALUATION_ERROR,
                            format!("The JSONata expression '{}' specified for the field '{field}' returned an unexpected result type. Expected 'positive integer', but was '{}' for value: {v}", e.text(), type_name(&v)),
                        )
                    })
                }
                _ => resolve_seconds(s, scope, &format!("{field}Path")),
            }
        };
        let max_items = number(&b.max_items, "MaxItemsPerBatch")?.unwrap_or(u64::MAX);
        let max_bytes =
            number(&b.max_bytes, "MaxInputBytesPerBatch")?.unwrap_or(MAX_PAYLOAD_BYTES as u64);
        let batch_input = match (&b.batch_input, env) {
            (Some(BatchInput::Path(t)), _) => {
                let mut rng = self.random();
                Some(t.eval(scope, &mut || {
                    rng = rng.rotate_left(7) ^ 0x9E37_79B9;
                    rng
                })?)
            }
            (Some(BatchInput::Jsonata(t)), Some(env)) => {
                Some(t.eval(env, "ItemBatcher/BatchInput")?)
            }
            _ => None,
        };
        let mut batches = Vec::new();
        let mut current: Vec<Value> = Vec::new();
        let mut bytes = 0u64;
        for item in items {
            let size = json_size(&item) as u64;
            if !current.is_empty()
                && (current.len() as u64 >= max_items || bytes + size > max_bytes)
            {
                batches.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += size;
            current.push(item);
        }
        if !current.is_empty() {
            batches.push(current);
        }
        Ok(batches
            .into_iter()
            .map(|items| {
                let mut o = Map::new();
                if let Some(bi) = &batch_input {
                    o.insert("BatchInput".into(), bi.clone());
                }
                o.insert("Items".into(), Value::Array(items));
                Value::Object(o)
            })
            .collect())
    }

    /// Runs a JSONata state's body (again, on a retry).
    fn run_state_jsonata(&mut self, state: &State, now: DateTime<Utc>) -> Flow {
        let (input, ctx, vars, seed) = self.jsonata_parts(state);
        let env = Env {
            input: &input,
            context: &ctx,
            result: None,
            error_output: None,
            variables: &vars,
            seed,
        };
        let next = match &state.transition {
            Transition::Next(n) => Some(n.clone()),
            _ => None,
        };
        let qerr = |cause: String| StatesError::new(names::QUERY_EVALUATION_ERROR, cause);
        match &state.kind {
            StateKind::Pass(_) | StateKind::Succeed => self.jsonata_complete(
                state,
                state.assign.as_ref(),
                state.output.as_ref(),
                None,
                None,
                input.clone(),
                next,
            ),
            StateKind::Choice(c) => {
                for rule in &c.choices {
                    let matched = match &rule.condition {
                        crate::choice::Condition::Constant(b) => *b,
                        crate::choice::Condition::Jsonata(e) => {
                            match e.eval_required(&env, "Condition") {
                                Ok(Value::Bool(b)) => b,
                                Ok(other) => {
                                    return Flow::Failed(qerr(format!(
                                        "The JSONata expression '{}' specified for the field 'Condition' returned an unexpected result type. Expected 'boolean', but was '{}' for value: {other}",
                                        e.text(),
                                        type_name(&other)
                                    )));
                                }
                                Err(e) => return Flow::Failed(e),
                            }
                        }
                        other => match other.eval(Scope {
                            input: &input,
                            context: &ctx,
                            variables: &vars,
                        }) {
                            Ok(b) => b,
                            Err(e) => return Flow::Failed(e),
                        },
                    };
                    if matched {
                        return self.jsonata_complete(
                            state,
                            rule.assign.as_ref().or(state.assign.as_ref()),
                            rule.output.as_ref().or(state.output.as_ref()),
                            None,
                            None,
                            input.clone(),
                            Some(rule.next.clone()),
                        );
                    }
                }
                match &c.default {
                    Some(d) => self.jsonata_complete(
                        state,
                        state.assign.as_ref(),
                        state.output.as_ref(),
                        None,
                        None,
                        input.clone(),
                        Some(d.clone()),
                    ),
                    None => Flow::Failed(StatesError::new(names::NO_CHOICE_MATCHED, "No Matches!")),
                }
            }
            StateKind::Wait(w) => {
                let seconds = match w {
                    WaitState::SecondsExpr(e) => match e.eval_required(&env, "Seconds") {
                        Ok(v) => match v.as_f64() {
                            Some(n) if n >= 0.0 && n.fract() == 0.0 => n,
                            _ => {
                                return Flow::Failed(qerr(format!(
                                    "The JSONata expression '{}' specified for the field 'Seconds' returned an unexpected result type. Expected 'integer', but was '{}' for value: {v}",
                                    e.text(),
                                    type_name(&v)
                                )));
                            }
                        },
                        Err(e) => return Flow::Failed(e),
                    },
                    WaitState::TimestampExpr(e) => match e.eval_required(&env, "Timestamp") {
                        Ok(Value::String(ts)) => match crate::choice::timestamp(&ts) {
                            Some(t) => {
                                (t.with_timezone(&Utc) - now).num_milliseconds() as f64 / 1000.0
                            }
                            None => {
                                return Flow::Failed(qerr(format!(
                                    "The JSONata expression '{}' specified for the field 'Timestamp' returned an invalid timestamp: {ts}",
                                    e.text()
                                )));
                            }
                        },
                        Ok(v) => {
                            return Flow::Failed(qerr(format!(
                                "The JSONata expression '{}' specified for the field 'Timestamp' returned an unexpected result type. Expected 'string', but was '{}' for value: {v}",
                                e.text(),
                                type_name(&v)
                            )));
                        }
                        Err(e) => return Flow::Failed(e),
                    },
                    other => {
                        let scope = Scope {
                            input: &input,
                            context: &ctx,
                            variables: &vars,
                        };
                        match wait_seconds(other, scope, now) {
                            Ok(s) => s,
                            Err(e) => return Flow::Failed(e),
                        }
                    }
                };
                let op = self.op();
                if let Some(f) = self.stack.last_mut() {
                    f.waiting = Waiting::Timer { op };
                }
                self.actions.push(Action::StartTimer {
                    id: op,
                    duration: seconds_to_duration(seconds),
                });
                Flow::Waiting
            }
            StateKind::Fail(f) => {
                let field = |v: &Option<FailField>, name: &str| -> Result<String, StatesError> {
                    Ok(match v {
                        None => String::new(),
                        Some(FailField::Literal(s)) => s.clone(),
                        Some(FailField::Expr(e)) => match e.eval_required(&env, name)? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                        Some(_) => String::new(),
                    })
                };
                let error = match field(&f.error, "Error") {
                    Ok(e) => e,
                    Err(e) => return Flow::Failed(e),
                };
                let cause = match field(&f.cause, "Cause") {
                    Ok(c) => c,
                    Err(e) => return Flow::Failed(e),
                };
                self.end_frame(Err(StatesError::new(error, cause)), now)
            }
            StateKind::Task(t) => {
                let args = match &t.arguments {
                    Some(a) => match a.eval(&env, "Arguments") {
                        Ok(v) => v,
                        Err(e) => return Flow::Failed(e),
                    },
                    None => input.clone(),
                };
                let timeout = match jsonata_seconds(&t.timeout, &env, "TimeoutSeconds") {
                    Ok(t) => t,
                    Err(e) => return Flow::Failed(e),
                };
                if let Err(e) = jsonata_seconds(&t.heartbeat, &env, "HeartbeatSeconds") {
                    return Flow::Failed(e);
                }
                self.schedule_task(t, args, timeout, now)
            }
            StateKind::Parallel(p) => {
                let args = match &p.arguments {
                    Some(a) => match a.eval(&env, "Arguments") {
                        Ok(v) => v,
                        Err(e) => return Flow::Failed(e),
                    },
                    None => input.clone(),
                };
                let inputs = p
                    .branches
                    .iter()
                    .map(|b| (b.clone(), args.clone()))
                    .collect();
                self.start_children(state, ChildKind::Parallel, inputs, (None, None), now)
            }
            StateKind::Map(m) => {
                let items = match &m.items {
                    Some(t) => match t.eval(&env, "Items") {
                        Ok(Value::Array(a)) => a,
                        Ok(other) => {
                            let text = t
                                .as_expr()
                                .map_or_else(String::new, |e| e.text().to_owned());
                            return Flow::Failed(qerr(format!(
                                "The JSONata expression '{text}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {other}",
                                type_name(&other)
                            )));
                        }
                        Err(e) => return Flow::Failed(e),
                    },
                    None => match &input {
                        Value::Array(a) => a.clone(),
                        other => {
                            return Flow::Failed(qerr(format!(
                                "Map state input must be an array but was: {other}"
                            )));
                        }
                    },
                };
                let tolerated = match map_numbers_jsonata(m, &env) {
                    Ok(t) => t,
                    Err(e) => return Flow::Failed(e),
                };
                let mut inputs = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let value = match &m.item_selector {
                        Some(Selector::Jsonata(t)) => {
                            let item_ctx = self.context_object(state, Some((index, item)));
                            let item_env = Env {
                                input: &input,
                                context: &item_ctx,
                                result: None,
                                error_output: None,
                                variables: &vars,
                                seed: seed.wrapping_add(index as u64),
                            };
                            match t.eval(&item_env, "ItemSelector") {
                                Ok(v) => v,
                                Err(e) => return Flow::Failed(e),
                            }
                        }
                        _ => item.clone(),
                    };
                    inputs.push(value);
                }
                let scope = Scope {
                    input: &input,
                    context: &ctx,
                    variables: &vars,
                };
                let inputs = match self.batch(m, inputs, scope, Some(&env)) {
                    Ok(i) => i,
                    Err(e) => return Flow::Failed(e),
                };
                let inputs = inputs
                    .into_iter()
                    .map(|i| (m.processor.clone(), i))
                    .collect();
                self.start_children(state, ChildKind::Map, inputs, tolerated, now)
            }
        }
    }

    /// Applies an external event to the waiting top frame.
    fn resume(&mut self, event: Event, now: DateTime<Utc>) -> Flow {
        let Some((machine, name)) = self.current_state() else {
            return Flow::Waiting;
        };
        let Some(state) = machine.states.get(&name) else {
            return Flow::Waiting;
        };
        let Some(frame) = self.stack.last_mut() else {
            return Flow::Waiting;
        };
        let waiting = std::mem::replace(&mut frame.waiting, Waiting::Nothing);
        match (waiting, event) {
            (Waiting::Timer { op }, Event::TimerFired { id })
                if op == id && state.query_language == QueryLanguage::Jsonata =>
            {
                let input = self
                    .stack
                    .last()
                    .map(|f| f.raw_input.clone())
                    .unwrap_or(Value::Null);
                let next = match &state.transition {
                    Transition::Next(n) => Some(n.clone()),
                    _ => None,
                };
                self.jsonata_complete(
                    state,
                    state.assign.as_ref(),
                    state.output.as_ref(),
                    None,
                    None,
                    input,
                    next,
                )
            }
            (Waiting::Timer { op }, Event::TimerFired { id }) if op == id => {
                let ctx = self.context_for(state);
                let ctx = ctx.as_ref().unwrap_or(&NO_CONTEXT);
                let effective = match self.effective_input(state, ctx) {
                    Ok(v) => v,
                    Err(e) => return Flow::Failed(e),
                };
                if let Err(e) = self.assign(state, &effective, ctx) {
                    return Flow::Failed(e);
                }
                self.output(state, effective, ctx)
            }
            (Waiting::Retry { op }, Event::TimerFired { id }) if op == id => {
                self.run_state(state, now)
            }
            (
                Waiting::Task {
                    op,
                    resource,
                    lambda,
                },
                event,
            ) => {
                let (resource_type, res) = resource_parts(&resource);
                match event {
                    Event::TaskSucceeded { id, output } if id == op => {
                        let size = json_size(&output);
                        if size > MAX_PAYLOAD_BYTES {
                            let who = if lambda {
                                resource.clone()
                            } else {
                                resource_type.clone()
                            };
                            return self.task_failed(
                                now,
                                lambda,
                                &resource_type,
                                &res,
                                StatesError::new(
                                    names::DATA_LIMIT_EXCEEDED,
                                    format!("The state/task '{who}' returned a result with a size exceeding the maximum number of bytes service limit."),
                                ),
                            );
                        }
                        if lambda {
                            self.record(
                                now,
                                EventType::LambdaFunctionSucceeded,
                                Some(EventDetails::LambdaFunctionSucceededEventDetails {
                                    output: text(&output),
                                    output_details: PayloadDetails::default(),
                                }),
                            );
                        } else {
                            self.record(
                                now,
                                EventType::TaskSucceeded,
                                Some(EventDetails::TaskSucceededEventDetails {
                                    resource_type,
                                    resource: res,
                                    output: text(&output),
                                    output_details: PayloadDetails::default(),
                                }),
                            );
                        }
                        let StateKind::Task(t) = &state.kind else {
                            return Flow::Waiting;
                        };
                        self.complete_with_result(state, &t.result, output)
                    }
                    Event::TaskFailed { id, error, cause } if id == op => self.task_failed(
                        now,
                        lambda,
                        &resource_type,
                        &res,
                        StatesError::new(error, cause),
                    ),
                    Event::TaskTimedOut { id } if id == op => {
                        let err = StatesError::new(names::TIMEOUT, "");
                        let details = ErrorDetails {
                            error: Some(err.error.clone()),
                            cause: None,
                        };
                        if lambda {
                            self.record(
                                now,
                                EventType::LambdaFunctionTimedOut,
                                Some(EventDetails::LambdaFunctionTimedOutEventDetails(details)),
                            );
                        } else {
                            self.record(
                                now,
                                EventType::TaskTimedOut,
                                Some(EventDetails::TaskTimedOutEventDetails {
                                    resource_type,
                                    resource: res,
                                    error: err.error.clone(),
                                    cause: String::new(),
                                }),
                            );
                        }
                        Flow::Failed(err)
                    }
                    _ => {
                        if let Some(f) = self.stack.last_mut() {
                            f.waiting = Waiting::Task {
                                op,
                                resource,
                                lambda,
                            };
                        }
                        Flow::Waiting
                    }
                }
            }
            (waiting, _) => {
                // A stale event (e.g. a timer of a state already left): ignore it.
                if let Some(f) = self.stack.last_mut() {
                    f.waiting = waiting;
                }
                Flow::Waiting
            }
        }
    }

    fn task_failed(
        &mut self,
        now: DateTime<Utc>,
        lambda: bool,
        resource_type: &str,
        resource: &str,
        err: StatesError,
    ) -> Flow {
        if lambda {
            self.record(
                now,
                EventType::LambdaFunctionFailed,
                Some(EventDetails::LambdaFunctionFailedEventDetails(
                    ErrorDetails {
                        error: Some(err.error.clone()),
                        cause: Some(err.cause.clone()),
                    },
                )),
            );
        } else {
            self.record(
                now,
                EventType::TaskFailed,
                Some(EventDetails::TaskFailedEventDetails {
                    resource_type: resource_type.to_owned(),
                    resource: resource.to_owned(),
                    error: err.error.clone(),
                    cause: err.cause.clone(),
                }),
            );
        }
        Flow::Failed(err)
    }

    /// Retry, then Catch, then fail the frame.
    fn handle_error(&mut self, err: StatesError, now: DateTime<Utc>) -> Flow {
        let Some((machine, name)) = self.current_state() else {
            return Flow::Waiting;
        };
        let Some(state) = machine.states.get(&name) else {
            return Flow::Waiting;
        };
        let mut err = err;
        let entered = self.stack.last().map_or(0, |f| f.entered_event_id);
        if (err.error == names::RUNTIME || err.error == names::QUERY_EVALUATION_ERROR)
            && !err.cause.starts_with("An error occurred while executing")
        {
            err.cause = format!(
                "An error occurred while executing the state '{name}' (entered at the event id #{entered}). {}",
                err.cause
            );
        }
        if let Some(handling) = error_handling(state) {
            // Retry
            if let Some(i) = handling
                .retry
                .iter()
                .position(|r| error_matches(&r.error_equals, &err.error))
            {
                let r = &handling.retry[i];
                let attempt = self
                    .stack
                    .last()
                    .and_then(|f| f.retry_counts.get(i).copied())
                    .unwrap_or(0);
                if attempt < r.max_attempts {
                    let mut delay = r.delay_seconds(attempt);
                    if r.jitter == Jitter::Full {
                        let unit = (self.random() >> 11) as f64 / (1u64 << 53) as f64;
                        delay *= unit;
                    }
                    let op = self.op();
                    if let Some(f) = self.stack.last_mut() {
                        if let Some(c) = f.retry_counts.get_mut(i) {
                            *c += 1;
                        }
                        f.retry_total += 1;
                        f.waiting = Waiting::Retry { op };
                    }
                    self.actions.push(Action::StartTimer {
                        id: op,
                        duration: seconds_to_duration(delay),
                    });
                    return Flow::Waiting;
                }
            }
            // Catch
            if let Some(c) = handling
                .catch
                .iter()
                .find(|c| error_matches(&c.error_equals, &err.error))
            {
                return self.caught(state, c, &err);
            }
        }
        self.end_frame(Err(err), now)
    }

    /// The catcher's transition: `{"Error", "Cause"}` written at its ResultPath. A failure
    /// to apply that ResultPath is not caught again.
    fn caught(&mut self, state: &State, c: &Catcher, err: &StatesError) -> Flow {
        let raw_input = self
            .stack
            .last()
            .map(|f| f.raw_input.clone())
            .unwrap_or(Value::Null);
        let error_output = json!({"Error": err.error, "Cause": err.cause});
        if state.query_language == QueryLanguage::Jsonata {
            return self.jsonata_complete(
                state,
                c.assign.as_ref(),
                c.output.as_ref(),
                None,
                Some(&error_output),
                error_output.clone(),
                Some(c.next.clone()),
            );
        }
        if c.assign.is_some() {
            let ctx = self.context_for(state);
            let ctx = ctx.as_ref().unwrap_or(&NO_CONTEXT);
            if let Err(e) = self.assign_with(c.assign.as_ref(), &error_output, ctx) {
                return Flow::Failed(e);
            }
        }
        let output = match &c.result_path {
            Some(rp) => match rp.write(raw_input, error_output) {
                Ok(v) => v,
                Err(e) => return Flow::Failed(e),
            },
            None => raw_input,
        };
        Flow::Done {
            output,
            next: Some(c.next.clone()),
        }
    }
}

/// Seconds as a duration: negative is zero, too large (or NaN) saturates.
fn seconds_to_duration(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

fn retriers(state: &State) -> &[crate::model::Retrier] {
    error_handling(state).map_or(&[], |h| h.retry.as_slice())
}

fn error_handling(state: &State) -> Option<&ErrorHandling> {
    match &state.kind {
        StateKind::Task(t) => Some(&t.errors),
        StateKind::Parallel(p) => Some(&p.errors),
        StateKind::Map(m) => Some(&m.errors),
        _ => None,
    }
}

/// `("lambda", "invoke")` for `arn:aws:states:::lambda:invoke`; `("lambda", arn)` otherwise.
fn resource_parts(resource: &str) -> (String, String) {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::") {
        let mut parts = rest.splitn(2, ':');
        let service = parts.next().unwrap_or_default().to_owned();
        let action = parts.next().unwrap_or_default().to_owned();
        (service, action)
    } else {
        ("lambda".to_owned(), resource.to_owned())
    }
}

fn resolve_seconds(
    s: &Option<Seconds>,
    scope: Scope<'_>,
    field: &str,
) -> Result<Option<u64>, StatesError> {
    match s {
        None => Ok(None),
        Some(Seconds::Fixed(n)) => Ok(Some(*n)),
        Some(Seconds::Expr(e)) => Err(StatesError::runtime(format!(
            "internal: the JSONata expression '{}' needs JSONata bindings",
            e.text()
        ))),
        Some(Seconds::Path(p)) => {
            let v = p.select_required(scope)?;
            match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(StatesError::runtime(format!(
                    "The {field} field refers to value \"{}\" which is not a valid integer: {}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    p.text()
                ))),
            }
        }
    }
}

type Tolerated = (Option<u64>, Option<f64>);

fn map_numbers(m: &crate::model::MapState, scope: Scope<'_>) -> Result<Tolerated, StatesError> {
    let mut count = None;
    for (s, field) in [
        (&m.max_concurrency, "MaxConcurrencyPath"),
        (&m.tolerated_failure_count, "ToleratedFailureCountPath"),
    ] {
        let n = match s {
            Some(Seconds::Path(p)) => {
                let v = p.select_required(scope)?;
                let n = v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse::<i64>().ok()));
                match n {
                    Some(n) if n < 0 && field == "ToleratedFailureCountPath" => {
                        return Err(StatesError::runtime(
                            "ToleratedFailureCount cannot be negative.",
                        ));
                    }
                    Some(n) => Some(n),
                    None => {
                        return Err(StatesError::runtime(format!(
                            "The {field} field refers to value \"{}\" which is not a valid integer: {}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                            p.text()
                        )));
                    }
                }
            }
            Some(Seconds::Fixed(n)) => i64::try_from(*n).ok(),
            _ => None,
        };
        if field == "ToleratedFailureCountPath" {
            count = n.and_then(|n| u64::try_from(n).ok());
        }
    }
    let pct = match &m.tolerated_failure_percentage {
        Some(Percentage::Fixed(p)) => Some(*p),
        Some(Percentage::Path(p)) => {
            let v = p.select_required(scope)?;
            match v.as_f64() {
                Some(x) if (0.0..=100.0).contains(&x) => Some(x),
                _ => {
                    return Err(StatesError::runtime(format!(
                        "The ToleratedFailurePercentagePath field refers to value \"{v}\" which is not a valid percentage: {}",
                        p.text()
                    )));
                }
            }
        }
        _ => None,
    };
    Ok((count, pct))
}

/// A JSONata number field that must be a non-negative integer.
fn jsonata_seconds(
    s: &Option<Seconds>,
    env: &Env<'_>,
    field: &str,
) -> Result<Option<u64>, StatesError> {
    match s {
        None | Some(Seconds::Path(_)) => Ok(None),
        Some(Seconds::Fixed(n)) => Ok(Some(*n)),
        Some(Seconds::Expr(e)) => {
            let v = e.eval_required(env, field)?;
            match v.as_f64() {
                Some(n) if n >= 0.0 && n.fract() == 0.0 => Ok(Some(n as u64)),
                _ => Err(StatesError::new(
                    names::QUERY_EVALUATION_ERROR,
                    format!(
                        "The JSONata expression '{}' specified for the field '{field}' returned an unexpected result type. Expected 'integer', but was '{}' for value: {v}",
                        e.text(),
                        type_name(&v)
                    ),
                )),
            }
        }
    }
}

fn map_numbers_jsonata(
    m: &crate::model::MapState,
    env: &Env<'_>,
) -> Result<Tolerated, StatesError> {
    jsonata_seconds(&m.max_concurrency, env, "MaxConcurrency")?;
    let count = jsonata_seconds(&m.tolerated_failure_count, env, "ToleratedFailureCount")?;
    let pct = match &m.tolerated_failure_percentage {
        Some(Percentage::Fixed(p)) => Some(*p),
        Some(Percentage::Expr(e)) => {
            let v = e.eval_required(env, "ToleratedFailurePercentage")?;
            match v.as_f64() {
                Some(x) if (0.0..=100.0).contains(&x) => Some(x),
                _ => {
                    return Err(StatesError::new(
                        names::QUERY_EVALUATION_ERROR,
                        format!(
                            "The JSONata expression '{}' specified for the field 'ToleratedFailurePercentage' returned an unexpected result type. Expected 'number between 0 and 100', but was '{}' for value: {v}",
                            e.text(),
                            type_name(&v)
                        ),
                    ));
                }
            }
        }
        _ => None,
    };
    Ok((count, pct))
}

fn wait_seconds(w: &WaitState, scope: Scope<'_>, now: DateTime<Utc>) -> Result<f64, StatesError> {
    let until = |ts: &str, what: Option<&str>| -> Result<f64, StatesError> {
        match crate::choice::timestamp(ts) {
            Some(t) => Ok((t.with_timezone(&Utc) - now).num_milliseconds() as f64 / 1000.0),
            None => Err(StatesError::runtime(format!(
                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {} == {ts}",
                what.unwrap_or("Timestamp")
            ))),
        }
    };
    match w {
        WaitState::Seconds(n) => Ok(*n as f64),
        WaitState::Timestamp(t) => until(t, None),
        WaitState::SecondsPath(p) => {
            let v = p.select_required(scope)?;
            match v.as_i64() {
                Some(n) if n >= 0 => Ok(n as f64),
                Some(_) => Err(StatesError::runtime(format!(
                    "The SecondsPath parameter references a negative value: {} == {v}",
                    p.text()
                ))),
                None => Err(StatesError::runtime(format!(
                    "The SecondsPath parameter does not reference a valid integer: {} == {v}",
                    p.text()
                ))),
            }
        }
        WaitState::SecondsExpr(e) | WaitState::TimestampExpr(e) => {
            Err(StatesError::runtime(format!(
                "internal: the JSONata expression '{}' needs JSONata bindings",
                e.text()
            )))
        }
        WaitState::TimestampPath(p) => {
            let v = p.select_required(scope)?;
            match v.as_str() {
                Some(s) => until(s, Some(p.text())),
                None => Err(StatesError::runtime(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {} == {v}",
                    p.text()
                ))),
            }
        }
    }
}
