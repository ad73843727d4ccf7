//! `JSONata` states: `Arguments`, `Output`, `Assign` and the other fields are expressions
//! over `$states` (input, context, result, error output) and the variables.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::path::{resolve_seconds, wait_seconds};
use super::{Ending, Query, next_of};
use crate::choice::{ChoiceRule, Condition};
use crate::error::{StatesError, names};
use crate::execution::children::Tolerated;
use crate::execution::{Execution, Flow};
use crate::jsonata::{Env, JTemplate, type_name};
use crate::model::{
    Assign, BatchInput, Catcher, ChoiceState, FailField, MapState, ParallelState, PassState,
    Percentage, ResultHandling, Seconds, Selector, State, StateKind, TaskState, WaitState,
};
use crate::path::Scope;

/// One run of a `JSONata` state: `$states.input` is the raw state input.
pub(in crate::execution) struct JsonataQuery {
    input: Value,
    ctx: Value,
    variables: Arc<Map<String, Value>>,
    /// Seed of `$random()` and `$uuid()`.
    seed: u64,
}

fn query_error(cause: String) -> StatesError {
    StatesError::new(names::QUERY_EVALUATION_ERROR, cause)
}

/// The error of an expression whose value has the wrong type.
fn unexpected(expr: &str, field: &str, expected: &str, v: &Value) -> StatesError {
    query_error(format!(
        "The JSONata expression '{expr}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{}' for value: {v}",
        type_name(v)
    ))
}

impl JsonataQuery {
    fn env(&self) -> Env<'_> {
        Env {
            input: &self.input,
            context: &self.ctx,
            result: None,
            error_output: None,
            variables: &self.variables,
            seed: self.seed,
        }
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            input: &self.input,
            context: &self.ctx,
            variables: &self.variables,
        }
    }
}

impl Query for JsonataQuery {
    fn bind(exec: &mut Execution, state: &State) -> Result<Self, StatesError> {
        let (input, ctx, variables, seed) = exec.jsonata_parts(state);
        Ok(JsonataQuery {
            input,
            ctx,
            variables,
            seed,
        })
    }

    fn pass_result(&mut self, _pass: &PassState) -> Result<Option<Value>, StatesError> {
        Ok(None)
    }

    fn choose<'c>(&self, choice: &'c ChoiceState) -> Result<Option<&'c ChoiceRule>, StatesError> {
        let env = self.env();
        for rule in &choice.choices {
            let matched = match &rule.condition {
                Condition::Constant(b) => *b,
                Condition::Jsonata(e) => match e.eval_required(&env, "Condition")? {
                    Value::Bool(b) => b,
                    other => return Err(unexpected(e.text(), "Condition", "boolean", &other)),
                },
                other => other.eval(self.scope())?,
            };
            if matched {
                return Ok(Some(rule));
            }
        }
        Ok(None)
    }

    fn wait_seconds(&self, wait: &WaitState, now: DateTime<Utc>) -> Result<f64, StatesError> {
        let env = self.env();
        match wait {
            WaitState::SecondsExpr(e) => {
                let v = e.eval_required(&env, "Seconds")?;
                match v.as_f64() {
                    Some(n) if n >= 0.0 && n.fract() == 0.0 => Ok(n),
                    _ => Err(unexpected(e.text(), "Seconds", "integer", &v)),
                }
            }
            WaitState::TimestampExpr(e) => match e.eval_required(&env, "Timestamp")? {
                Value::String(ts) => match crate::choice::timestamp(&ts) {
                    Some(t) => Ok((t.with_timezone(&Utc) - now).num_milliseconds() as f64 / 1000.0),
                    None => Err(query_error(format!(
                        "The JSONata expression '{}' specified for the field 'Timestamp' returned an invalid timestamp: {ts}",
                        e.text()
                    ))),
                },
                v => Err(unexpected(e.text(), "Timestamp", "string", &v)),
            },
            other => wait_seconds(other, self.scope(), now),
        }
    }

    fn fail_text(&mut self, value: &Option<FailField>, field: &str) -> Result<String, StatesError> {
        Ok(match value {
            Some(FailField::Literal(s)) => s.clone(),
            Some(FailField::Expr(e)) => match e.eval_required(&self.env(), field)? {
                Value::String(s) => s,
                other => other.to_string(),
            },
            _ => String::new(),
        })
    }

    fn task_input(&mut self, task: &TaskState) -> Result<(Value, Option<u64>), StatesError> {
        let env = self.env();
        let args = match &task.arguments {
            Some(a) => a.eval(&env, "Arguments")?,
            None => self.input.clone(),
        };
        let timeout = jsonata_seconds(&task.timeout, &env, "TimeoutSeconds")?;
        jsonata_seconds(&task.heartbeat, &env, "HeartbeatSeconds")?;
        Ok((args, timeout))
    }

    fn branch_input(&mut self, parallel: &ParallelState) -> Result<Value, StatesError> {
        match &parallel.arguments {
            Some(a) => a.eval(&self.env(), "Arguments"),
            None => Ok(self.input.clone()),
        }
    }

    fn map_items(&mut self, map: &MapState) -> Result<(Vec<Value>, Tolerated), StatesError> {
        let env = self.env();
        let items = match &map.items {
            Some(t) => match t.eval(&env, "Items")? {
                Value::Array(a) => a,
                other => {
                    let text = t.as_expr().map_or("", |e| e.text());
                    return Err(unexpected(text, "Items", "array", &other));
                }
            },
            None => match &self.input {
                Value::Array(a) => a.clone(),
                other => {
                    return Err(query_error(format!(
                        "Map state input must be an array but was: {other}"
                    )));
                }
            },
        };
        Ok((items, map_numbers_jsonata(map, &env)?))
    }

    fn selects(selector: &Selector) -> bool {
        matches!(selector, Selector::Jsonata(_))
    }

    fn select_item(
        &mut self,
        selector: &Selector,
        index: usize,
        item_context: &Value,
    ) -> Result<Value, StatesError> {
        let Selector::Jsonata(t) = selector else {
            return Err(StatesError::runtime(
                "internal: a JSONPath ItemSelector in a JSONata state",
            ));
        };
        let env = Env {
            input: &self.input,
            context: item_context,
            result: None,
            error_output: None,
            variables: &self.variables,
            seed: self.seed.wrapping_add(index as u64),
        };
        t.eval(&env, "ItemSelector")
    }

    fn batch_limit(
        &self,
        limit: &Option<Seconds>,
        field: &str,
    ) -> Result<Option<u64>, StatesError> {
        match limit {
            Some(Seconds::Expr(e)) => {
                let v = e.eval_required(&self.env(), field)?;
                v.as_u64()
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| unexpected(e.text(), field, "positive integer", &v))
            }
            _ => resolve_seconds(limit, self.scope(), &format!("{field}Path")),
        }
    }

    fn batch_input(
        &self,
        _exec: &mut Execution,
        input: &BatchInput,
    ) -> Result<Option<Value>, StatesError> {
        match input {
            BatchInput::Jsonata(t) => t.eval(&self.env(), "ItemBatcher/BatchInput").map(Some),
            BatchInput::Path(_) => Ok(None),
        }
    }

    fn end_now(self, exec: &mut Execution, state: &State, ending: Ending<'_>) -> Flow {
        let JsonataQuery { input, .. } = self;
        let next = ending.next.or_else(|| next_of(state));
        exec.jsonata_complete(state, ending.assign, ending.output, None, None, input, next)
    }

    fn end_with_result(
        exec: &mut Execution,
        state: &State,
        _handling: &ResultHandling,
        result: Value,
    ) -> Flow {
        let default = match state.kind {
            StateKind::Pass(_) => None,
            _ => Some(&result),
        };
        exec.jsonata_complete(
            state,
            state.assign.as_ref(),
            state.output.as_ref(),
            default,
            None,
            result.clone(),
            next_of(state),
        )
    }

    fn end_after_timer(exec: &mut Execution, state: &State) -> Flow {
        let input = exec
            .stack
            .last()
            .map(|f| f.raw_input.clone())
            .unwrap_or(Value::Null);
        exec.jsonata_complete(
            state,
            state.assign.as_ref(),
            state.output.as_ref(),
            None,
            None,
            input,
            next_of(state),
        )
    }

    fn end_caught(
        exec: &mut Execution,
        state: &State,
        catcher: &Catcher,
        error_output: Value,
    ) -> Flow {
        exec.jsonata_complete(
            state,
            catcher.assign.as_ref(),
            catcher.output.as_ref(),
            None,
            Some(&error_output),
            error_output.clone(),
            Some(catcher.next.clone()),
        )
    }
}

impl Execution {
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
