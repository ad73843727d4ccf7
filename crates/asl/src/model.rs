//! The typed model of a state machine definition, parsed and validated in one pass.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::choice::{ChoiceRule, Condition};
use crate::error::{Error, Result, names};
use crate::intrinsics::{Intrinsic, looks_like_call};
use crate::jsonata::{Expr, JTemplate, expression_text};
use crate::path::{Path, ReferencePath};
use crate::template::Template;

/// The query language of a definition or state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryLanguage {
    #[default]
    JsonPath,
    Jsonata,
}

/// A validated state machine definition.
#[derive(Debug, Clone)]
pub struct Definition {
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    pub timeout_seconds: Option<u64>,
    /// The top-level states.
    pub machine: Arc<Machine>,
    /// The definition as given (what a durable journal stores to replay an execution).
    pub source: Arc<Value>,
}

/// A set of states with a start state: the top level, a Parallel branch or a Map processor.
#[derive(Debug, Clone)]
pub struct Machine {
    pub start_at: String,
    /// By name; a fast non-keyed hash (names come from the definition, not from input).
    pub states: rustc_hash::FxHashMap<String, State>,
    /// State names in definition order.
    pub order: Vec<String>,
}

/// Where a state goes after it completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Next(String),
    End,
    /// Choice, Succeed and Fail decide for themselves.
    Terminal,
}

/// One state: common fields and the type-specific part.
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub comment: Option<String>,
    pub transition: Transition,
    /// `None` when the definition sets `null` (the state sees `{}`).
    pub input_path: Option<Path>,
    /// `None` when the definition sets `null` (the state outputs `{}`).
    pub output_path: Option<Path>,
    /// `Assign` (JSONPath or JSONata, after the state's query language).
    pub assign: Option<Assign>,
    /// The state's query language (its own `QueryLanguage` or the definition's).
    pub query_language: QueryLanguage,
    /// JSONata `Output` (`None`: the default output).
    pub output: Option<JTemplate>,
    pub kind: StateKind,
    /// Whether the state may read the context object (`$$` in JSONPath; every JSONata
    /// state binds `$states.context`). Computed at load so that the interpreter builds the
    /// context object only for the states that can read it.
    pub reads_context: bool,
}

/// Whether a JSONPath state's definition mentions the context object anywhere: every
/// path or intrinsic argument that reads it is a string containing `$$`.
fn mentions_context(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("$$"),
        Value::Array(a) => a.iter().any(mentions_context),
        Value::Object(o) => o
            .iter()
            .any(|(k, v)| k.contains("$$") || mentions_context(v)),
        _ => false,
    }
}

/// An `Assign` block in either query language.
#[derive(Debug, Clone, PartialEq)]
pub enum Assign {
    Path(Template),
    Jsonata(JTemplate),
}

/// The type-specific part of a state.
#[derive(Debug, Clone)]
// States are parsed once and shared behind an `Arc<Machine>`: variant size is no cost.
#[allow(clippy::large_enum_variant)]
pub enum StateKind {
    Pass(PassState),
    Task(TaskState),
    Choice(ChoiceState),
    Wait(WaitState),
    Succeed,
    Fail(FailState),
    Parallel(ParallelState),
    Map(Box<MapState>),
}

impl StateKind {
    /// The `Type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            StateKind::Pass(_) => "Pass",
            StateKind::Task(_) => "Task",
            StateKind::Choice(_) => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail(_) => "Fail",
            StateKind::Parallel(_) => "Parallel",
            StateKind::Map(_) => "Map",
        }
    }
}

/// `ResultSelector` and `ResultPath`.
#[derive(Debug, Clone, Default)]
pub struct ResultHandling {
    pub result_selector: Option<Template>,
    /// `None` when `ResultPath` is `null`: the result is discarded.
    pub result_path: Option<ReferencePath>,
}

/// Jitter applied to retry intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    #[default]
    None,
    Full,
}

/// One `Retry` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub jitter: Jitter,
}

impl Retrier {
    /// The delay before retry number `attempt` (0-based), before jitter.
    pub fn delay_seconds(&self, attempt: u32) -> f64 {
        let d = self.interval_seconds as f64 * self.backoff_rate.powi(attempt as i32);
        match self.max_delay_seconds {
            Some(max) => d.min(max as f64),
            None => d,
        }
    }
}

/// One `Catch` entry.
#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    /// `None` when `ResultPath` is `null`.
    pub result_path: Option<ReferencePath>,
    /// JSONata `Output` (default: the error output).
    pub output: Option<JTemplate>,
    pub assign: Option<Assign>,
}

/// Whether an `ErrorEquals` list matches an error name.
pub fn error_matches(error_equals: &[String], error: &str) -> bool {
    // States.Runtime is terminal: neither Retry nor Catch applies to it.
    if error == names::RUNTIME {
        return false;
    }
    error_equals.iter().any(|e| {
        e == error
            || (e == names::ALL)
            || (e == names::TASK_FAILED && !error.starts_with("States.") && error != names::TIMEOUT)
            || (e == names::TASK_FAILED && error == names::TASK_FAILED)
    })
}

/// Retry and Catch of Task, Parallel and Map.
#[derive(Debug, Clone, Default)]
pub struct ErrorHandling {
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug, Clone)]
pub struct PassState {
    pub result: Option<Value>,
    pub parameters: Option<Template>,
    pub result_path: Option<ReferencePath>,
}

/// A number of seconds given literally or by a path.
#[derive(Debug, Clone)]
pub enum Seconds {
    Fixed(u64),
    Path(Path),
    /// A JSONata expression (JSONata mode).
    Expr(Expr),
}

#[derive(Debug, Clone)]
pub struct TaskState {
    pub resource: String,
    pub parameters: Option<Template>,
    /// JSONata `Arguments`.
    pub arguments: Option<JTemplate>,
    pub timeout: Option<Seconds>,
    pub heartbeat: Option<Seconds>,
    pub result: ResultHandling,
    pub errors: ErrorHandling,
}

#[derive(Debug, Clone)]
pub struct ChoiceState {
    pub choices: Vec<ChoiceRule>,
    pub default: Option<String>,
}

#[derive(Debug, Clone)]
pub enum WaitState {
    Seconds(u64),
    Timestamp(String),
    SecondsPath(Path),
    TimestampPath(Path),
    /// JSONata `Seconds`.
    SecondsExpr(Expr),
    /// JSONata `Timestamp`.
    TimestampExpr(Expr),
}

/// `Error`/`Cause` of a Fail state: a literal, a path or an intrinsic call.
#[derive(Debug, Clone)]
pub enum FailField {
    Literal(String),
    Path(Path),
    Intrinsic(Intrinsic),
    /// A JSONata expression (JSONata mode).
    Expr(Expr),
}

#[derive(Debug, Clone)]
pub struct FailState {
    pub error: Option<FailField>,
    pub cause: Option<FailField>,
}

#[derive(Debug, Clone)]
pub struct ParallelState {
    pub branches: Vec<Arc<Machine>>,
    pub parameters: Option<Template>,
    /// JSONata `Arguments`.
    pub arguments: Option<JTemplate>,
    pub result: ResultHandling,
    pub errors: ErrorHandling,
}

#[derive(Debug, Clone)]
pub struct MapState {
    pub processor: Arc<Machine>,
    pub items_path: Path,
    /// JSONata `Items` (`None`: the state input).
    pub items: Option<JTemplate>,
    pub item_selector: Option<Selector>,
    pub max_concurrency: Option<Seconds>,
    pub tolerated_failure_count: Option<Seconds>,
    pub tolerated_failure_percentage: Option<Percentage>,
    pub item_batcher: Option<ItemBatcher>,
    pub result: ResultHandling,
    pub errors: ErrorHandling,
}

/// `ItemSelector` in either query language.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Path(Template),
    Jsonata(JTemplate),
}

/// `ToleratedFailurePercentage` given literally, by a path or by an expression.
#[derive(Debug, Clone)]
pub enum Percentage {
    Fixed(f64),
    Path(Path),
    Expr(Expr),
}

/// `ItemBatcher`: items are grouped into `{"Items": [...], "BatchInput": ...}` batches.
#[derive(Debug, Clone)]
pub struct ItemBatcher {
    pub max_items: Option<Seconds>,
    pub max_bytes: Option<Seconds>,
    pub batch_input: Option<BatchInput>,
}

/// `BatchInput` of an item batcher.
#[derive(Debug, Clone)]
pub enum BatchInput {
    Path(Template),
    Jsonata(JTemplate),
}

// ---------------------------------------------------------------------------------------
// Parsing

struct Fields<'a> {
    state: &'a str,
    obj: &'a Map<String, Value>,
    jsonata: bool,
}

impl<'a> Fields<'a> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::state(self.state, message)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key)
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.err(format!("{key} must be a string"))),
        }
    }

    fn uint(&self, key: &str) -> Result<Option<u64>> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be a non-negative integer"))),
        }
    }

    fn path(&self, key: &str) -> Result<Option<Path>> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => Path::parse(&s)
                .map(Some)
                .map_err(|e| self.err(format!("{key}: {e}"))),
        }
    }

    /// InputPath/OutputPath: absent -> `$`, null -> None.
    fn io_path(&self, key: &str) -> Result<Option<Path>> {
        match self.obj.get(key) {
            None => Path::parse("$").map(Some),
            Some(Value::Null) => Ok(None),
            Some(_) => self.path(key),
        }
    }

    fn result_path(&self, obj: &Map<String, Value>) -> Result<Option<ReferencePath>> {
        match obj.get("ResultPath") {
            None => ReferencePath::parse("$").map(Some),
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => ReferencePath::parse(s)
                .map(Some)
                .map_err(|e| self.err(format!("ResultPath: {e}"))),
            Some(_) => Err(self.err("ResultPath must be a string or null")),
        }
    }

    fn template(&self, key: &str) -> Result<Option<Template>> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(v) => Template::parse(v, key)
                .map(Some)
                .map_err(|e| self.err(format!("{key}: {e}"))),
        }
    }

    fn seconds(&self, key: &str) -> Result<Option<Seconds>> {
        if self.jsonata
            && let Some(e) = self.expr(key)?
        {
            return Ok(Some(Seconds::Expr(e)));
        }
        if let Some(n) = self.uint(key)? {
            return Ok(Some(Seconds::Fixed(n)));
        }
        Ok(self.path(&format!("{key}Path"))?.map(Seconds::Path))
    }

    /// A JSONata `{% %}` string field.
    fn expr(&self, key: &str) -> Result<Option<Expr>> {
        match self.obj.get(key) {
            Some(Value::String(s)) => match expression_text(s) {
                Some(text) => Expr::parse(text)
                    .map(Some)
                    .map_err(|e| self.err(format!("{key}: invalid JSONata expression: {e}"))),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// A JSONata value template field.
    fn jtemplate(&self, key: &str) -> Result<Option<JTemplate>> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(v) => JTemplate::parse(v)
                .map(Some)
                .map_err(|e| self.err(format!("{key}: invalid JSONata expression: {e}"))),
        }
    }

    fn assign(&self, obj: &Map<String, Value>) -> Result<Option<Assign>> {
        let Some(v) = obj.get("Assign") else {
            return Ok(None);
        };
        if !v.is_object() {
            return Err(self.err("Assign must be an object"));
        }
        if self.jsonata {
            JTemplate::parse(v)
                .map(|t| Some(Assign::Jsonata(t)))
                .map_err(|e| self.err(format!("Assign: invalid JSONata expression: {e}")))
        } else {
            Template::parse(v, "Assign")
                .map(|t| Some(Assign::Path(t)))
                .map_err(|e| self.err(format!("Assign: {e}")))
        }
    }

    fn fail_field(&self, key: &str) -> Result<Option<FailField>> {
        if self.jsonata
            && let Some(e) = self.expr(key)?
        {
            return Ok(Some(FailField::Expr(e)));
        }
        if let Some(s) = self.string(key)? {
            return Ok(Some(FailField::Literal(s)));
        }
        let path_key = format!("{key}Path");
        match self.string(&path_key)? {
            None => Ok(None),
            Some(s) if looks_like_call(&s) => Intrinsic::parse(&s)
                .map(|i| Some(FailField::Intrinsic(i)))
                .map_err(|e| self.err(format!("{path_key}: {e}"))),
            Some(s) => Path::parse(&s)
                .map(|p| Some(FailField::Path(p)))
                .map_err(|e| self.err(format!("{path_key}: {e}"))),
        }
    }

    fn error_equals(&self, obj: &Map<String, Value>, what: &str) -> Result<Vec<String>> {
        let Some(list) = obj.get("ErrorEquals").and_then(Value::as_array) else {
            return Err(self.err(format!("{what}: ErrorEquals must be an array")));
        };
        if list.is_empty() {
            return Err(self.err(format!("{what}: ErrorEquals must not be empty")));
        }
        let names: Vec<String> = list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.err(format!("{what}: ErrorEquals must hold strings")))
            })
            .collect::<Result<_>>()?;
        if names.iter().any(|n| n == names::ALL) && names.len() > 1 {
            return Err(self.err(format!(
                "{what}: States.ALL must appear alone in ErrorEquals"
            )));
        }
        Ok(names)
    }

    fn errors(&self) -> Result<ErrorHandling> {
        let mut out = ErrorHandling::default();
        if let Some(retry) = self.get("Retry") {
            let Some(list) = retry.as_array() else {
                return Err(self.err("Retry must be an array"));
            };
            for (i, r) in list.iter().enumerate() {
                let what = format!("Retry[{i}]");
                let Some(o) = r.as_object() else {
                    return Err(self.err(format!("{what} must be an object")));
                };
                let f = Fields {
                    state: self.state,
                    obj: o,
                    jsonata: self.jsonata,
                };
                let error_equals = self.error_equals(o, &what)?;
                if error_equals.iter().any(|e| e == names::ALL) && i + 1 != list.len() {
                    return Err(self.err(format!("{what}: States.ALL must be in the last retrier")));
                }
                let backoff_rate = match o.get("BackoffRate") {
                    None => 2.0,
                    Some(v) => v.as_f64().filter(|b| *b >= 1.0).ok_or_else(|| {
                        self.err(format!("{what}: BackoffRate must be a number >= 1.0"))
                    })?,
                };
                let jitter = match f.string("JitterStrategy")?.as_deref() {
                    None | Some("NONE") => Jitter::None,
                    Some("FULL") => Jitter::Full,
                    Some(other) => {
                        return Err(self.err(format!("{what}: unknown JitterStrategy {other}")));
                    }
                };
                let interval_seconds = f.uint("IntervalSeconds")?.unwrap_or(1);
                if interval_seconds == 0 {
                    return Err(self.err(format!("{what}: IntervalSeconds must be at least 1")));
                }
                out.retry.push(Retrier {
                    error_equals,
                    interval_seconds,
                    max_attempts: u32::try_from(f.uint("MaxAttempts")?.unwrap_or(3))
                        .unwrap_or(u32::MAX),
                    backoff_rate,
                    max_delay_seconds: f.uint("MaxDelaySeconds")?,
                    jitter,
                });
            }
        }
        if let Some(catch) = self.get("Catch") {
            let Some(list) = catch.as_array() else {
                return Err(self.err("Catch must be an array"));
            };
            for (i, c) in list.iter().enumerate() {
                let what = format!("Catch[{i}]");
                let Some(o) = c.as_object() else {
                    return Err(self.err(format!("{what} must be an object")));
                };
                let f = Fields {
                    state: self.state,
                    obj: o,
                    jsonata: self.jsonata,
                };
                let error_equals = self.error_equals(o, &what)?;
                if error_equals.iter().any(|e| e == names::ALL) && i + 1 != list.len() {
                    return Err(self.err(format!("{what}: States.ALL must be in the last catcher")));
                }
                let Some(next) = f.string("Next")? else {
                    return Err(self.err(format!("{what}: Next is required")));
                };
                let output = if self.jsonata {
                    f.jtemplate("Output")?
                } else {
                    None
                };
                out.catch.push(Catcher {
                    error_equals,
                    next,
                    result_path: self.result_path(o)?,
                    output,
                    assign: f.assign(o)?,
                });
            }
        }
        Ok(out)
    }

    fn result_handling(&self) -> Result<ResultHandling> {
        Ok(ResultHandling {
            result_selector: self.template("ResultSelector")?,
            result_path: self.result_path(self.obj)?,
        })
    }
}

/// The `QueryLanguage` field of `obj`, or `default`.
fn query_language(
    obj: &Map<String, Value>,
    default: QueryLanguage,
    what: &str,
) -> Result<QueryLanguage> {
    match obj.get("QueryLanguage") {
        None => Ok(default),
        Some(Value::String(s)) if s == "JSONata" => Ok(QueryLanguage::Jsonata),
        Some(Value::String(s)) if s == "JSONPath" => {
            if default == QueryLanguage::Jsonata {
                return Err(Error::Definition(format!(
                    "{what}: QueryLanguage JSONPath cannot be used inside a JSONata definition"
                )));
            }
            Ok(QueryLanguage::JsonPath)
        }
        Some(other) => Err(Error::Definition(format!(
            "{what}: QueryLanguage must be JSONata or JSONPath, not {other}"
        ))),
    }
}

/// Fields that only one query language allows.
const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultPath",
    "ResultSelector",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "ErrorPath",
    "CausePath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
];
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];

impl Definition {
    /// Parses and validates a definition.
    pub fn parse(json: &str) -> Result<Definition> {
        let value: Value = serde_json::from_str(json)?;
        Self::from_value(&value)
    }

    /// Parses and validates a definition given as a JSON value.
    pub fn from_value(value: &Value) -> Result<Definition> {
        let Some(obj) = value.as_object() else {
            return Err(Error::Definition(
                "a definition must be a JSON object".into(),
            ));
        };
        let query_language = query_language(obj, QueryLanguage::JsonPath, "definition")?;
        let timeout_seconds = match obj.get("TimeoutSeconds") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                Error::Definition("TimeoutSeconds must be a non-negative integer".into())
            })?),
        };
        Ok(Definition {
            comment: obj
                .get("Comment")
                .and_then(Value::as_str)
                .map(str::to_owned),
            query_language,
            timeout_seconds,
            machine: Arc::new(Machine::parse(obj, "definition", query_language)?),
            source: Arc::new(value.clone()),
        })
    }
}

impl Machine {
    fn parse(obj: &Map<String, Value>, what: &str, ql: QueryLanguage) -> Result<Machine> {
        let Some(start_at) = obj.get("StartAt").and_then(Value::as_str) else {
            return Err(Error::Definition(format!("{what}: StartAt is required")));
        };
        let Some(states_obj) = obj.get("States").and_then(Value::as_object) else {
            return Err(Error::Definition(format!(
                "{what}: States must be an object"
            )));
        };
        let mut states = rustc_hash::FxHashMap::default();
        let mut order = Vec::new();
        for (name, v) in states_obj {
            let Some(o) = v.as_object() else {
                return Err(Error::state(name, "a state must be an object"));
            };
            states.insert(name.clone(), State::parse(name, o, ql)?);
            order.push(name.clone());
        }
        if !states.contains_key(start_at) {
            return Err(Error::Definition(format!(
                "{what}: StartAt \"{start_at}\" does not exist"
            )));
        }
        let machine = Machine {
            start_at: start_at.to_owned(),
            states,
            order,
        };
        machine.check_targets()?;
        Ok(machine)
    }

    fn check_targets(&self) -> Result<()> {
        for name in &self.order {
            let Some(state) = self.states.get(name) else {
                continue;
            };
            let check = |field: &str, target: &str| -> Result<()> {
                if self.states.contains_key(target) {
                    Ok(())
                } else {
                    Err(Error::state(
                        name,
                        format!("{field} \"{target}\" does not exist"),
                    ))
                }
            };
            if let Transition::Next(n) = &state.transition {
                check("Next", n)?;
            }
            match &state.kind {
                StateKind::Choice(c) => {
                    for rule in &c.choices {
                        check("Next", &rule.next)?;
                    }
                    if let Some(d) = &c.default {
                        check("Default", d)?;
                    }
                }
                StateKind::Task(TaskState { errors, .. })
                | StateKind::Parallel(ParallelState { errors, .. }) => {
                    for c in &errors.catch {
                        check("Catch Next", &c.next)?;
                    }
                }
                StateKind::Map(m) => {
                    for c in &m.errors.catch {
                        check("Catch Next", &c.next)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl State {
    fn parse(name: &str, obj: &Map<String, Value>, default_ql: QueryLanguage) -> Result<State> {
        let ql = query_language(obj, default_ql, &format!("state \"{name}\""))?;
        let jsonata = ql == QueryLanguage::Jsonata;
        let f = Fields {
            state: name,
            obj,
            jsonata,
        };
        let forbidden = if jsonata { JSONPATH_ONLY } else { JSONATA_ONLY };
        if let Some(field) = forbidden.iter().find(|k| obj.contains_key(**k)) {
            return Err(f.err(format!(
                "the field {field} is not supported with QueryLanguage {}",
                if jsonata { "JSONata" } else { "JSONPath" }
            )));
        }
        let Some(type_name) = f.string("Type")? else {
            return Err(f.err("Type is required"));
        };
        let kind = match type_name.as_str() {
            "Pass" => StateKind::Pass(PassState {
                result: f.get("Result").cloned(),
                parameters: f.template("Parameters")?,
                result_path: f.result_path(obj)?,
            }),
            "Task" => {
                let Some(resource) = f.string("Resource")? else {
                    return Err(f.err("Resource is required"));
                };
                StateKind::Task(TaskState {
                    resource,
                    parameters: f.template("Parameters")?,
                    arguments: f.jtemplate("Arguments")?,
                    timeout: f.seconds("TimeoutSeconds")?,
                    heartbeat: f.seconds("HeartbeatSeconds")?,
                    result: f.result_handling()?,
                    errors: f.errors()?,
                })
            }
            "Choice" => {
                let Some(list) = f.get("Choices").and_then(Value::as_array) else {
                    return Err(f.err("Choices must be an array"));
                };
                if list.is_empty() {
                    return Err(f.err("Choices must not be empty"));
                }
                let mut choices = Vec::new();
                for rule in list {
                    let next = rule
                        .get("Next")
                        .and_then(Value::as_str)
                        .ok_or_else(|| f.err("every choice rule needs Next"))?;
                    let Some(rule_obj) = rule.as_object() else {
                        return Err(f.err("a choice rule must be an object"));
                    };
                    let rf = Fields {
                        state: name,
                        obj: rule_obj,
                        jsonata,
                    };
                    let condition = if jsonata {
                        match rf.expr("Condition")? {
                            Some(e) => Condition::Jsonata(e),
                            None => match rule_obj.get("Condition") {
                                Some(Value::Bool(b)) => Condition::Constant(*b),
                                _ => {
                                    return Err(f.err(
                                        "a JSONata choice rule needs a Condition expression",
                                    ));
                                }
                            },
                        }
                    } else {
                        Condition::parse(rule, name)?
                    };
                    choices.push(ChoiceRule {
                        condition,
                        next: next.to_owned(),
                        assign: rf.assign(rule_obj)?,
                        output: if jsonata {
                            rf.jtemplate("Output")?
                        } else {
                            None
                        },
                    });
                }
                StateKind::Choice(ChoiceState {
                    choices,
                    default: f.string("Default")?,
                })
            }
            "Wait" => {
                let wait = if let Some(e) = f.expr("Seconds")?.filter(|_| jsonata) {
                    WaitState::SecondsExpr(e)
                } else if let Some(e) = f.expr("Timestamp")?.filter(|_| jsonata) {
                    WaitState::TimestampExpr(e)
                } else if let Some(n) = f.uint("Seconds")? {
                    WaitState::Seconds(n)
                } else if let Some(t) = f.string("Timestamp")? {
                    if crate::choice::timestamp(&t).is_none() {
                        return Err(f.err(format!("Timestamp {t:?} is not an ISO-8601 timestamp")));
                    }
                    WaitState::Timestamp(t)
                } else if let Some(p) = f.path("SecondsPath")? {
                    WaitState::SecondsPath(p)
                } else if let Some(p) = f.path("TimestampPath")? {
                    WaitState::TimestampPath(p)
                } else {
                    return Err(f.err(
                        "a Wait state needs Seconds, Timestamp, SecondsPath or TimestampPath",
                    ));
                };
                StateKind::Wait(wait)
            }
            "Succeed" => StateKind::Succeed,
            "Fail" => StateKind::Fail(FailState {
                error: f.fail_field("Error")?,
                cause: f.fail_field("Cause")?,
            }),
            "Parallel" => {
                let Some(list) = f.get("Branches").and_then(Value::as_array) else {
                    return Err(f.err("Branches must be an array"));
                };
                let mut branches = Vec::new();
                for (i, b) in list.iter().enumerate() {
                    let Some(o) = b.as_object() else {
                        return Err(f.err(format!("Branches[{i}] must be an object")));
                    };
                    let what = format!("state \"{name}\" Branches[{i}]");
                    let bql = query_language(o, default_ql, &what)?;
                    branches.push(Arc::new(Machine::parse(o, &what, bql)?));
                }
                StateKind::Parallel(ParallelState {
                    branches,
                    parameters: f.template("Parameters")?,
                    arguments: f.jtemplate("Arguments")?,
                    result: f.result_handling()?,
                    errors: f.errors()?,
                })
            }
            "Map" => {
                let processor = match f.get("ItemProcessor").or_else(|| f.get("Iterator")) {
                    Some(Value::Object(o)) => {
                        let what = format!("state \"{name}\" ItemProcessor");
                        let pql = query_language(o, default_ql, &what)?;
                        Arc::new(Machine::parse(o, &what, pql)?)
                    }
                    _ => return Err(f.err("ItemProcessor must be an object")),
                };
                if f.get("ItemReader").is_some() || f.get("ResultWriter").is_some() {
                    return Err(f.err(
                        "ItemReader and ResultWriter need S3, which docpipe does not run locally: give the items inline",
                    ));
                }
                let item_selector = if jsonata {
                    f.jtemplate("ItemSelector")?.map(Selector::Jsonata)
                } else {
                    match f.template("ItemSelector")? {
                        Some(t) => Some(t),
                        None => f.template("Parameters")?,
                    }
                    .map(Selector::Path)
                };
                let tolerated_failure_percentage =
                    if let Some(e) = f.expr("ToleratedFailurePercentage")?.filter(|_| jsonata) {
                        Some(Percentage::Expr(e))
                    } else if let Some(v) = f.get("ToleratedFailurePercentage") {
                        match v.as_f64() {
                            Some(p) if (0.0..=100.0).contains(&p) => Some(Percentage::Fixed(p)),
                            _ => {
                                return Err(f.err(
                                    "ToleratedFailurePercentage must be a number between 0 and 100",
                                ));
                            }
                        }
                    } else {
                        f.path("ToleratedFailurePercentagePath")?
                            .map(Percentage::Path)
                    };
                let item_batcher = match f.get("ItemBatcher") {
                    None => None,
                    Some(Value::Object(o)) => {
                        let bf = Fields {
                            state: name,
                            obj: o,
                            jsonata,
                        };
                        let batch_input = match o.get("BatchInput") {
                            None => None,
                            Some(v) if jsonata => {
                                Some(BatchInput::Jsonata(JTemplate::parse(v).map_err(|e| {
                                    f.err(format!("ItemBatcher.BatchInput: {e}"))
                                })?))
                            }
                            Some(v) => Some(BatchInput::Path(
                                Template::parse(v, "BatchInput")
                                    .map_err(|e| f.err(format!("ItemBatcher.BatchInput: {e}")))?,
                            )),
                        };
                        Some(ItemBatcher {
                            max_items: bf.seconds("MaxItemsPerBatch")?,
                            max_bytes: bf.seconds("MaxInputBytesPerBatch")?,
                            batch_input,
                        })
                    }
                    Some(_) => return Err(f.err("ItemBatcher must be an object")),
                };
                StateKind::Map(Box::new(MapState {
                    processor,
                    items_path: f.path("ItemsPath")?.map_or_else(|| Path::parse("$"), Ok)?,
                    items: f.jtemplate("Items")?,
                    item_selector,
                    max_concurrency: f.seconds("MaxConcurrency")?,
                    tolerated_failure_count: f.seconds("ToleratedFailureCount")?,
                    tolerated_failure_percentage,
                    item_batcher,
                    result: f.result_handling()?,
                    errors: f.errors()?,
                }))
            }
            other => return Err(f.err(format!("unknown state type {other:?}"))),
        };
        let terminal = matches!(
            kind,
            StateKind::Choice(_) | StateKind::Succeed | StateKind::Fail(_)
        );
        let next = f.string("Next")?;
        let end = f.get("End").and_then(Value::as_bool).unwrap_or(false);
        let transition = match (terminal, next, end) {
            (true, None, false) => Transition::Terminal,
            (true, _, _) => {
                return Err(f.err(format!("a {type_name} state cannot have Next or End")));
            }
            (false, Some(_), true) => return Err(f.err("Next and End are mutually exclusive")),
            (false, Some(n), false) => Transition::Next(n),
            (false, None, true) => Transition::End,
            (false, None, false) => return Err(f.err("either Next or End is required")),
        };
        let (input_path, output_path) = if jsonata {
            (Some(Path::parse("$")?), Some(Path::parse("$")?))
        } else if matches!(kind, StateKind::Fail(_)) {
            // A Fail state has neither field; its paths read the raw input.
            (Some(Path::parse("$")?), None)
        } else {
            (f.io_path("InputPath")?, f.io_path("OutputPath")?)
        };
        Ok(State {
            name: name.to_owned(),
            comment: f.string("Comment")?,
            transition,
            input_path,
            output_path,
            assign: f.assign(obj)?,
            query_language: ql,
            output: if jsonata && !matches!(kind, StateKind::Fail(_)) {
                f.jtemplate("Output")?
            } else {
                None
            },
            kind,
            reads_context: jsonata
                || obj
                    .iter()
                    .any(|(k, v)| k.contains("$$") || mentions_context(v)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(def: &str) -> String {
        match Definition::parse(def) {
            Ok(_) => String::from("ok"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn validation_names_state_and_field() {
        assert_eq!(
            err(r#"{"StartAt":"Ingest","States":{"Ingest":{"Type":"Pass","Next":"Foo"}}}"#),
            "state \"Ingest\": Next \"Foo\" does not exist"
        );
        assert_eq!(
            err(r#"{"StartAt":"X","States":{"A":{"Type":"Pass","End":true}}}"#),
            "definition: StartAt \"X\" does not exist"
        );
        assert_eq!(
            err(r#"{"StartAt":"A","States":{"A":{"Type":"Nope","End":true}}}"#),
            "state \"A\": unknown state type \"Nope\""
        );
        assert_eq!(
            err(r#"{"StartAt":"A","States":{"A":{"Type":"Pass"}}}"#),
            "state \"A\": either Next or End is required"
        );
        assert!(
            err(
                r#"{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"r","End":true,
            "Catch":[{"ErrorEquals":["States.ALL","X"],"Next":"A"}]}}}"#
            )
            .contains("States.ALL must appear alone")
        );
        assert!(
            err(
                r#"{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"r","End":true,
            "Retry":[{"ErrorEquals":["States.ALL"]},{"ErrorEquals":["X"]}]}}}"#
            )
            .contains("States.ALL must be in the last retrier")
        );
        assert!(
            err(
                r#"{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"r","End":true,
            "Catch":[{"ErrorEquals":["X"],"Next":"Gone"}]}}}"#
            )
            .contains("Catch Next \"Gone\" does not exist")
        );
        assert!(err(r#"{"StartAt":"A","States":{"A":{"Type":"Choice","Choices":[{"Variable":"$.x","IsNull":true,"Next":"B"}],"Default":"C"},"B":{"Type":"Succeed"}}}"#)
        .contains("Default \"C\" does not exist"));
        assert_eq!(
            err(r#"{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}"#),
            "ok"
        );
    }

    #[test]
    fn task_failed_matches_task_errors_not_timeouts() {
        let list = vec![names::TASK_FAILED.to_owned()];
        assert!(error_matches(&list, "DocPipe.Transient"));
        assert!(!error_matches(&list, names::TIMEOUT));
        assert!(!error_matches(&[names::ALL.to_owned()], names::RUNTIME));
        assert!(error_matches(&[names::ALL.to_owned()], names::TIMEOUT));
    }
}
