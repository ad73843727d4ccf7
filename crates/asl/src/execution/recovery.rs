//! Retry and Catch: an error in a state is retried by the first matching retrier while it
//! has attempts left (after its backoff, with jitter if asked), else caught by the first
//! matching catcher, else it ends the frame.

use std::time::Duration;

use serde_json::json;

use super::{Action, Execution, Flow, Waiting};
use crate::error::{StatesError, names};
use crate::model::{ErrorHandling, Jitter, Retrier, State, StateKind, error_matches};

use chrono::{DateTime, Utc};

impl Execution {
    /// Retry, then Catch, then fail the frame.
    pub(super) fn handle_error(&mut self, err: StatesError, now: DateTime<Utc>) -> Flow {
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
                let error_output = json!({"Error": err.error, "Cause": err.cause});
                return self.end_caught(state, c, error_output);
            }
        }
        self.end_frame(Err(err), now)
    }
}

/// Seconds as a duration: negative is zero, too large (or NaN) saturates.
pub(super) fn seconds_to_duration(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

pub(super) fn retriers(state: &State) -> &[Retrier] {
    error_handling(state).map_or(&[], |h| h.retry.as_slice())
}

pub(super) fn error_handling(state: &State) -> Option<&ErrorHandling> {
    match &state.kind {
        StateKind::Task(t) => Some(&t.errors),
        StateKind::Parallel(p) => Some(&p.errors),
        StateKind::Map(m) => Some(&m.errors),
        _ => None,
    }
}
