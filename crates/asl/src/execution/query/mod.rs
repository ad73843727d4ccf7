//! The query language of a state (`JSONPath` or `JSONata`) is the one part of the state
//! logic that differs between the two: how a state's fields are evaluated against its
//! input, context object and variables, and how its result becomes its output. [`Query`]
//! names those parts; `states.rs` runs every state type once over it, and the completions
//! below pick the language of the state at hand.

mod jsonata;
mod path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::children::Tolerated;
use super::{Execution, Flow};
use crate::choice::ChoiceRule;
use crate::error::StatesError;
use crate::jsonata::JTemplate;
use crate::model::{
    Assign, BatchInput, Catcher, ChoiceState, FailField, MapState, ParallelState, PassState,
    QueryLanguage, ResultHandling, Seconds, Selector, State, TaskState, Transition, WaitState,
};

pub(super) use jsonata::JsonataQuery;
pub(super) use path::PathQuery;

/// How a state that completes at once (Pass, Choice, Succeed) ends.
pub(super) struct Ending<'s> {
    /// A Pass state's result, when the language computes one (`Result`, `Parameters`).
    pub(super) result: Option<Value>,
    /// The matched rule's `Assign`, else the state's.
    pub(super) assign: Option<&'s Assign>,
    /// The matched rule's JSONata `Output`, else the state's.
    pub(super) output: Option<&'s JTemplate>,
    /// The transition: a Choice rule's or default's `Next`, else the state's own.
    pub(super) next: Option<String>,
}

/// The evaluation of one run of a state in its query language, bound to the top frame's
/// input, context object and variables.
pub(super) trait Query: Sized {
    /// Binds the top frame for a run of `state`.
    fn bind(exec: &mut Execution, state: &State) -> Result<Self, StatesError>;

    /// A Pass state's result (`None`: the state has none in this language).
    fn pass_result(&mut self, pass: &PassState) -> Result<Option<Value>, StatesError>;

    /// The first Choice rule that matches (`None`: the default applies).
    fn choose<'c>(&self, choice: &'c ChoiceState) -> Result<Option<&'c ChoiceRule>, StatesError>;

    /// How long a Wait state waits.
    fn wait_seconds(&self, wait: &WaitState, now: DateTime<Utc>) -> Result<f64, StatesError>;

    /// A Fail state's `Error` or `Cause` (`field` names it).
    fn fail_text(&mut self, value: &Option<FailField>, field: &str) -> Result<String, StatesError>;

    /// A Task's input (`Parameters` / `Arguments`) and its time-out in seconds.
    fn task_input(&mut self, task: &TaskState) -> Result<(Value, Option<u64>), StatesError>;

    /// The input every Parallel branch receives.
    fn branch_input(&mut self, parallel: &ParallelState) -> Result<Value, StatesError>;

    /// A Map state's items and the failures it tolerates.
    fn map_items(&mut self, map: &MapState) -> Result<(Vec<Value>, Tolerated), StatesError>;

    /// Whether `selector` is written in this language (the other kind is ignored).
    fn selects(selector: &Selector) -> bool;

    /// One item through the `ItemSelector`; `item_context` is the context object with
    /// `$$.Map.Item`.
    fn select_item(
        &mut self,
        selector: &Selector,
        index: usize,
        item_context: &Value,
    ) -> Result<Value, StatesError>;

    /// An `ItemBatcher` limit (`MaxItemsPerBatch`, `MaxInputBytesPerBatch`).
    fn batch_limit(&self, limit: &Option<Seconds>, field: &str)
    -> Result<Option<u64>, StatesError>;

    /// An `ItemBatcher`'s `BatchInput` (`None`: written in the other language).
    fn batch_input(
        &self,
        exec: &mut Execution,
        input: &BatchInput,
    ) -> Result<Option<Value>, StatesError>;

    /// Ends a state that completes at once.
    fn end_now(self, exec: &mut Execution, state: &State, ending: Ending<'_>) -> Flow;

    /// Ends a Task, Map or Parallel state with its result.
    fn end_with_result(
        exec: &mut Execution,
        state: &State,
        handling: &ResultHandling,
        result: Value,
    ) -> Flow;

    /// Ends a Wait state once its timer fired.
    fn end_after_timer(exec: &mut Execution, state: &State) -> Flow;

    /// Leaves a state through a catcher, with `{"Error", "Cause"}` as the error output.
    fn end_caught(
        exec: &mut Execution,
        state: &State,
        catcher: &Catcher,
        error_output: Value,
    ) -> Flow;
}

/// The state's own transition.
pub(super) fn next_of(state: &State) -> Option<String> {
    match &state.transition {
        Transition::Next(n) => Some(n.clone()),
        _ => None,
    }
}

impl Execution {
    /// Ends a Task, Map or Parallel state with its result, in the state's language.
    pub(super) fn end_with_result(
        &mut self,
        state: &State,
        handling: &ResultHandling,
        result: Value,
    ) -> Flow {
        match state.query_language {
            QueryLanguage::JsonPath => PathQuery::end_with_result(self, state, handling, result),
            QueryLanguage::Jsonata => JsonataQuery::end_with_result(self, state, handling, result),
        }
    }

    /// Ends a Wait state once its timer fired, in the state's language.
    pub(super) fn end_after_timer(&mut self, state: &State) -> Flow {
        match state.query_language {
            QueryLanguage::JsonPath => PathQuery::end_after_timer(self, state),
            QueryLanguage::Jsonata => JsonataQuery::end_after_timer(self, state),
        }
    }

    /// Leaves a state through a catcher, in the state's language.
    pub(super) fn end_caught(
        &mut self,
        state: &State,
        catcher: &Catcher,
        error_output: Value,
    ) -> Flow {
        match state.query_language {
            QueryLanguage::JsonPath => PathQuery::end_caught(self, state, catcher, error_output),
            QueryLanguage::Jsonata => JsonataQuery::end_caught(self, state, catcher, error_output),
        }
    }

    /// Stores assigned variables in the top frame (copying them first if shared).
    pub(super) fn set_variables(&mut self, assigned: serde_json::Map<String, Value>) {
        if let Some(f) = self.stack.last_mut() {
            let vars = std::sync::Arc::make_mut(&mut f.variables);
            for (k, v) in assigned {
                vars.insert(k, v);
            }
        }
    }
}
