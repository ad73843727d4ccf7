//! Each state type, written once: what a Pass, Choice, Wait, Succeed, Fail, Task,
//! Parallel or Map state does with its evaluated fields. The evaluation itself is the
//! state's query language ([`Query`]).

use chrono::{DateTime, Utc};

use super::children::{DEFAULT_BATCH_BYTES, batches};
use super::query::{Ending, JsonataQuery, PathQuery, Query};
use super::recovery::seconds_to_duration;
use super::{Action, ChildKind, Execution, Flow, Waiting};
use crate::error::{StatesError, names};
use crate::model::{QueryLanguage, State, StateKind};

/// Turns a `Result` into its value or returns the failure as the state's flow.
macro_rules! or_fail {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Flow::Failed(e),
        }
    };
}

impl Execution {
    /// Runs a state's body (again, on a retry) in its query language.
    pub(super) fn run_state(&mut self, state: &State, now: DateTime<Utc>) -> Flow {
        match state.query_language {
            QueryLanguage::JsonPath => self.run_in::<PathQuery>(state, now),
            QueryLanguage::Jsonata => self.run_in::<JsonataQuery>(state, now),
        }
    }

    fn run_in<Q: Query>(&mut self, state: &State, now: DateTime<Utc>) -> Flow {
        let mut q = or_fail!(Q::bind(self, state));
        match &state.kind {
            StateKind::Pass(p) => {
                let result = or_fail!(q.pass_result(p));
                let ending = Ending {
                    result,
                    assign: state.assign.as_ref(),
                    output: state.output.as_ref(),
                    next: None,
                };
                q.end_now(self, state, ending)
            }
            StateKind::Succeed => {
                let ending = Ending {
                    result: None,
                    assign: None,
                    output: state.output.as_ref(),
                    next: None,
                };
                q.end_now(self, state, ending)
            }
            StateKind::Choice(c) => {
                let ending = match (or_fail!(q.choose(c)), &c.default) {
                    (Some(rule), _) => Ending {
                        result: None,
                        assign: rule.assign.as_ref().or(state.assign.as_ref()),
                        output: rule.output.as_ref().or(state.output.as_ref()),
                        next: Some(rule.next.clone()),
                    },
                    (None, Some(default)) => Ending {
                        result: None,
                        assign: state.assign.as_ref(),
                        output: state.output.as_ref(),
                        next: Some(default.clone()),
                    },
                    (None, None) => {
                        return Flow::Failed(StatesError::new(
                            names::NO_CHOICE_MATCHED,
                            "No Matches!",
                        ));
                    }
                };
                q.end_now(self, state, ending)
            }
            StateKind::Wait(w) => {
                let seconds = or_fail!(q.wait_seconds(w, now));
                drop(q);
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
                let error = or_fail!(q.fail_text(&f.error, "Error"));
                let cause = or_fail!(q.fail_text(&f.cause, "Cause"));
                drop(q);
                // A Fail state ends its frame at once: no Retry or Catch of its own.
                self.end_frame(Err(StatesError::new(error, cause)), now)
            }
            StateKind::Task(t) => {
                let (input, timeout) = or_fail!(q.task_input(t));
                drop(q);
                self.schedule_task(t, input, timeout, now)
            }
            StateKind::Parallel(p) => {
                let input = or_fail!(q.branch_input(p));
                drop(q);
                let inputs = p
                    .branches
                    .iter()
                    .map(|b| (b.clone(), input.clone()))
                    .collect();
                self.start_children(state, ChildKind::Parallel, inputs, (None, None), now)
            }
            StateKind::Map(m) => {
                let (items, tolerated) = or_fail!(q.map_items(m));
                let selector = m.item_selector.as_ref().filter(|s| Q::selects(s));
                let mut inputs = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    inputs.push(match selector {
                        Some(s) => {
                            let item_context = self.context_object(state, Some((index, item)));
                            or_fail!(q.select_item(s, index, &item_context))
                        }
                        None => item.clone(),
                    });
                }
                if let Some(b) = &m.item_batcher {
                    let max_items = or_fail!(q.batch_limit(&b.max_items, "MaxItemsPerBatch"));
                    let max_bytes = or_fail!(q.batch_limit(&b.max_bytes, "MaxInputBytesPerBatch"));
                    let batch_input = match &b.batch_input {
                        Some(i) => or_fail!(q.batch_input(self, i)),
                        None => None,
                    };
                    inputs = batches(
                        inputs,
                        max_items.unwrap_or(u64::MAX),
                        max_bytes.unwrap_or(DEFAULT_BATCH_BYTES),
                        batch_input.as_ref(),
                    );
                }
                drop(q);
                let inputs = inputs
                    .into_iter()
                    .map(|i| (m.processor.clone(), i))
                    .collect();
                self.start_children(state, ChildKind::Map, inputs, tolerated, now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::execution::query::next_of;

    #[test]
    fn next_of_a_terminal_state_is_none() {
        let d = crate::model::Definition::parse(
            r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"},"B":{"Type":"Succeed"}}}"#,
        )
        .expect("definition");
        let a = d.machine.states.get("A").expect("A");
        let b = d.machine.states.get("B").expect("B");
        assert_eq!(next_of(a).as_deref(), Some("B"));
        assert_eq!(next_of(b), None);
    }
}
