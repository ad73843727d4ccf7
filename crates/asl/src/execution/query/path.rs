//! `JSONPath` states: `InputPath`, `Parameters`, `ResultSelector`, `ResultPath` and
//! `OutputPath` over a scope of the effective input, the context object and variables.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Ending, Query};
use crate::choice::ChoiceRule;
use crate::error::StatesError;
use crate::execution::children::Tolerated;
use crate::execution::recovery::error_handling;
use crate::execution::{Execution, Flow, NO_CONTEXT};
use crate::model::{
    Assign, BatchInput, Catcher, ChoiceState, FailField, MapState, ParallelState, PassState,
    Percentage, ResultHandling, Seconds, Selector, State, StateKind, TaskState, Transition,
    WaitState,
};
use crate::path::{ReferencePath, Scope};

/// One run of a `JSONPath` state.
pub(in crate::execution) struct PathQuery {
    /// The raw input when the state completes at once (moved out of the frame: Pass,
    /// Choice and Succeed have no Retry or Catch to read it again); `Null` otherwise.
    raw: Value,
    /// The `InputPath` selection; `None`: the effective input is `raw` itself.
    selected: Option<Value>,
    /// The context object, when the state can read it.
    ctx: Option<Value>,
    variables: Arc<Map<String, Value>>,
    /// State of the generator behind `States.UUID` and `States.MathRandom`.
    rng: u64,
}

/// xorshift64: the per-state generator handed to templates.
fn xorshift(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

impl PathQuery {
    fn effective(&self) -> &Value {
        self.selected.as_ref().unwrap_or(&self.raw)
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            input: self.effective(),
            context: self.ctx.as_ref().unwrap_or(&NO_CONTEXT),
            variables: &self.variables,
        }
    }

    /// Evaluates a template over the effective input with this run's generator.
    fn eval(&mut self, t: &crate::template::Template) -> Result<Value, StatesError> {
        let mut rng = self.rng;
        let v = t.eval(self.scope(), &mut || xorshift(&mut rng));
        self.rng = rng;
        v
    }
}

impl Query for PathQuery {
    fn bind(exec: &mut Execution, state: &State) -> Result<Self, StatesError> {
        let ctx = exec.context_for(state);
        let context = ctx.as_ref().unwrap_or(&NO_CONTEXT);
        if matches!(
            state.kind,
            StateKind::Pass(_) | StateKind::Choice(_) | StateKind::Succeed
        ) {
            let rng = exec.random();
            let Some(frame) = exec.stack.last_mut() else {
                return Err(StatesError::runtime("internal: no frame to run"));
            };
            frame.input_text = None;
            let raw = std::mem::take(&mut frame.raw_input);
            let variables = Arc::clone(&frame.variables);
            let selected = match &state.input_path {
                Some(p) if p.is_identity() => None,
                Some(p) => Some(p.select_required(Scope {
                    input: &raw,
                    context,
                    variables: &variables,
                })?),
                None => Some(Value::Object(Map::new())),
            };
            return Ok(PathQuery {
                raw,
                selected,
                ctx,
                variables,
                rng,
            });
        }
        let effective = exec.effective_input(state, context)?;
        let variables = exec
            .stack
            .last()
            .map(|f| f.variables.clone())
            .unwrap_or_default();
        let rng = exec.random();
        Ok(PathQuery {
            raw: Value::Null,
            selected: Some(effective),
            ctx,
            variables,
            rng,
        })
    }

    fn pass_result(&mut self, pass: &PassState) -> Result<Option<Value>, StatesError> {
        Ok(Some(if let Some(r) = &pass.result {
            r.clone()
        } else if let Some(t) = &pass.parameters {
            self.eval(t)?
        } else {
            self.effective().clone()
        }))
    }

    fn choose<'c>(&self, choice: &'c ChoiceState) -> Result<Option<&'c ChoiceRule>, StatesError> {
        for rule in &choice.choices {
            if rule.condition.eval(self.scope())? {
                return Ok(Some(rule));
            }
        }
        Ok(None)
    }

    fn wait_seconds(&self, wait: &WaitState, now: DateTime<Utc>) -> Result<f64, StatesError> {
        wait_seconds(wait, self.scope(), now)
    }

    fn fail_text(
        &mut self,
        value: &Option<FailField>,
        _field: &str,
    ) -> Result<String, StatesError> {
        Ok(match value {
            None | Some(FailField::Expr(_)) => String::new(),
            Some(FailField::Literal(s)) => s.clone(),
            Some(FailField::Path(p)) => match p.select_required(self.scope())? {
                Value::String(s) => s,
                other => other.to_string(),
            },
            Some(FailField::Intrinsic(i)) => {
                let mut rng = self.rng;
                let v = i.eval(self.scope(), &mut || xorshift(&mut rng));
                self.rng = rng;
                match v? {
                    Value::String(s) => s,
                    other => other.to_string(),
                }
            }
        })
    }

    fn task_input(&mut self, task: &TaskState) -> Result<(Value, Option<u64>), StatesError> {
        let input = match &task.parameters {
            Some(p) => self.eval(p)?,
            None => self.effective().clone(),
        };
        let timeout = resolve_seconds(&task.timeout, self.scope(), "TimeoutSecondsPath")?;
        Ok((input, timeout))
    }

    fn branch_input(&mut self, parallel: &ParallelState) -> Result<Value, StatesError> {
        match &parallel.parameters {
            Some(t) => self.eval(t),
            None => Ok(self.effective().clone()),
        }
    }

    fn map_items(&mut self, map: &MapState) -> Result<(Vec<Value>, Tolerated), StatesError> {
        let tolerated = map_numbers(map, self.scope())?;
        match map.items_path.select_required(self.scope())? {
            Value::Array(items) => Ok((items, tolerated)),
            other => Err(StatesError::runtime(format!(
                "Map state input must be an array but was: {other}"
            ))),
        }
    }

    fn selects(selector: &Selector) -> bool {
        matches!(selector, Selector::Path(_))
    }

    fn select_item(
        &mut self,
        selector: &Selector,
        _index: usize,
        item_context: &Value,
    ) -> Result<Value, StatesError> {
        let Selector::Path(t) = selector else {
            return Err(StatesError::runtime(
                "internal: a JSONata ItemSelector in a JSONPath state",
            ));
        };
        let scope = Scope {
            input: self.effective(),
            context: item_context,
            variables: &self.variables,
        };
        let mut rng = self.rng;
        let v = t.eval(scope, &mut || xorshift(&mut rng));
        self.rng = rng;
        v
    }

    fn batch_limit(
        &self,
        limit: &Option<Seconds>,
        field: &str,
    ) -> Result<Option<u64>, StatesError> {
        resolve_seconds(limit, self.scope(), &format!("{field}Path"))
    }

    fn batch_input(
        &self,
        exec: &mut Execution,
        input: &BatchInput,
    ) -> Result<Option<Value>, StatesError> {
        let BatchInput::Path(t) = input else {
            return Ok(None);
        };
        let mut rng = exec.random();
        t.eval(self.scope(), &mut || {
            rng = rng.rotate_left(7) ^ 0x9E37_79B9;
            rng
        })
        .map(Some)
    }

    fn end_now(self, exec: &mut Execution, state: &State, ending: Ending<'_>) -> Flow {
        let PathQuery {
            raw,
            selected,
            ctx,
            variables,
            ..
        } = self;
        // Assignments copy the variables while anyone else holds them.
        drop(variables);
        let ctx = ctx.as_ref().unwrap_or(&NO_CONTEXT);
        if let Some(result) = ending.result {
            // Pass: the result is written into the raw input at ResultPath.
            if let Err(e) = exec.assign_with(ending.assign, &result, ctx) {
                return Flow::Failed(e);
            }
            let result_path = match &state.kind {
                StateKind::Pass(p) => p.result_path.as_ref(),
                _ => None,
            };
            let combined = match result_path {
                Some(rp) if rp.is_root() => result,
                Some(rp) => match rp.write(raw, result) {
                    Ok(v) => v,
                    Err(e) => return Flow::Failed(e),
                },
                None => raw,
            };
            return exec.output(state, combined, ctx);
        }
        let effective = selected.unwrap_or(raw);
        if let Err(e) = exec.assign_with(ending.assign, &effective, ctx) {
            return Flow::Failed(e);
        }
        match exec.output(state, effective, ctx) {
            Flow::Done { output, next } => Flow::Done {
                output,
                next: ending.next.or(next),
            },
            other => other,
        }
    }

    fn end_with_result(
        exec: &mut Execution,
        state: &State,
        handling: &ResultHandling,
        result: Value,
    ) -> Flow {
        let ctx = exec.context_for(state);
        let ctx = ctx.as_ref().unwrap_or(&NO_CONTEXT);
        let selected = match &handling.result_selector {
            Some(t) => {
                let Some(frame) = exec.stack.last() else {
                    return Flow::Waiting;
                };
                let scope = Scope {
                    input: &result,
                    context: ctx,
                    variables: &frame.variables,
                };
                let mut rng = exec.rng;
                match t.eval(scope, &mut || xorshift(&mut rng)) {
                    Ok(v) => v,
                    Err(e) => return Flow::Failed(e),
                }
            }
            None => result,
        };
        exec.finish_result(state, handling.result_path.as_ref(), selected, ctx)
    }

    fn end_after_timer(exec: &mut Execution, state: &State) -> Flow {
        let ctx = exec.context_for(state);
        let ctx = ctx.as_ref().unwrap_or(&NO_CONTEXT);
        let effective = match exec.effective_input(state, ctx) {
            Ok(v) => v,
            Err(e) => return Flow::Failed(e),
        };
        if let Err(e) = exec.assign_with(state.assign.as_ref(), &effective, ctx) {
            return Flow::Failed(e);
        }
        exec.output(state, effective, ctx)
    }

    fn end_caught(
        exec: &mut Execution,
        state: &State,
        catcher: &Catcher,
        error_output: Value,
    ) -> Flow {
        let raw_input = exec
            .stack
            .last()
            .map(|f| f.raw_input.clone())
            .unwrap_or(Value::Null);
        if catcher.assign.is_some() {
            let ctx = exec.context_for(state);
            let ctx = ctx.as_ref().unwrap_or(&NO_CONTEXT);
            if let Err(e) = exec.assign_with(catcher.assign.as_ref(), &error_output, ctx) {
                return Flow::Failed(e);
            }
        }
        // A failure to apply the catcher's ResultPath is not caught again.
        let output = match &catcher.result_path {
            Some(rp) => match rp.write(raw_input, error_output) {
                Ok(v) => v,
                Err(e) => return Flow::Failed(e),
            },
            None => raw_input,
        };
        Flow::Done {
            output,
            next: Some(catcher.next.clone()),
        }
    }
}

impl Execution {
    /// Assign, ResultPath and OutputPath of a JSONPath state's (selected) result.
    fn finish_result(
        &mut self,
        state: &State,
        result_path: Option<&ReferencePath>,
        selected: Value,
        ctx: &Value,
    ) -> Flow {
        if let Err(e) = self.assign_with(state.assign.as_ref(), &selected, ctx) {
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
}

pub(super) fn resolve_seconds(
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

pub(super) fn map_numbers(
    m: &crate::model::MapState,
    scope: Scope<'_>,
) -> Result<Tolerated, StatesError> {
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

pub(super) fn wait_seconds(
    w: &WaitState,
    scope: Scope<'_>,
    now: DateTime<Utc>,
) -> Result<f64, StatesError> {
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
