//! Tasks: scheduling an invocation (with the history events Step Functions records for
//! Lambda functions and for service integrations) and applying what the runner reports:
//! success, failure, time-out, and the timers of Wait states and retries.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Action, Event, Execution, Flow, MAX_PAYLOAD_BYTES, Waiting, json_size, text};
use crate::error::{StatesError, names};
use crate::history::{ErrorDetails, EventDetails, EventType, PayloadDetails};
use crate::model::{StateKind, TaskState};

impl Execution {
    /// Records the scheduling events and asks the runner to invoke the task.
    pub(super) fn schedule_task(
        &mut self,
        t: &TaskState,
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

    /// Applies an external event to the waiting top frame.
    pub(super) fn resume(&mut self, event: Event, now: DateTime<Utc>) -> Flow {
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
            (Waiting::Timer { op }, Event::TimerFired { id }) if op == id => {
                self.end_after_timer(state)
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
                        self.end_with_result(state, &t.result, output)
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
