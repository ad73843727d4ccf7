//! Map iterations and Parallel branches: each child runs as a frame of its own on the
//! execution's stack, one after the other; their results (or tolerated failures) are
//! collected in order and become the parent state's result.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{
    ChildKind, Children, Execution, ExecutionStatus, Flow, MAX_PAYLOAD_BYTES, Waiting, json_size,
    text,
};
use crate::error::{StatesError, names};
use crate::history::{EventDetails, EventType, IterationDetails, PayloadDetails};
use crate::model::{Machine, State, StateKind};

/// What a Map state may tolerate: a count and a percentage of failed iterations.
pub(super) type Tolerated = (Option<u64>, Option<f64>);

impl Execution {
    /// A frame reached its end (or failed): hand the result to the parent state.
    pub(super) fn end_frame(
        &mut self,
        result: Result<Value, StatesError>,
        now: DateTime<Utc>,
    ) -> Flow {
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
        self.end_with_result(state, handling, results)
    }

    /// Starts the children of a Map or Parallel state.
    pub(super) fn start_children(
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
}

/// Groups Map items into `{"BatchInput", "Items"}` batches of at most `max_items` items
/// and `max_bytes` bytes of JSON (a single larger item is a batch of its own).
pub(super) fn batches(
    items: Vec<Value>,
    max_items: u64,
    max_bytes: u64,
    batch_input: Option<&Value>,
) -> Vec<Value> {
    let mut batches = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut bytes = 0u64;
    for item in items {
        let size = json_size(&item) as u64;
        if !current.is_empty() && (current.len() as u64 >= max_items || bytes + size > max_bytes) {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(item);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
        .into_iter()
        .map(|items| {
            let mut o = Map::new();
            if let Some(bi) = batch_input {
                o.insert("BatchInput".into(), bi.clone());
            }
            o.insert("Items".into(), Value::Array(items));
            Value::Object(o)
        })
        .collect()
}

/// The default batch size limit: Step Functions' payload limit.
pub(super) const DEFAULT_BATCH_BYTES: u64 = MAX_PAYLOAD_BYTES as u64;
