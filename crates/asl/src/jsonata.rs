//! JSONata mode: `{% expression %}` strings in `Arguments`, `Output`, `Assign`, `Items`,
//! `Condition` and the other JSONata fields, evaluated with jsonata-core. Step Functions
//! binds `$states` (`input`, `context`, `result`, `errorOutput`), the execution's
//! variables, and adds `$partition`, `$range`, `$hash`, `$random`, `$uuid` and `$parse`.

use std::sync::Arc;

use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::value::JValue;
use serde_json::{Map, Value};

use crate::error::{StatesError, names};

/// Wall-time guard for one evaluation (a runaway expression fails the state instead of
/// hanging the execution).
const EVAL_TIMEOUT_MS: u64 = 10_000;
/// Evaluation depth guard (jsonata-core raises D1011 past it).
const MAX_STACK_DEPTH: usize = 10_000;

/// One parsed `{% ... %}` expression.
#[derive(Debug, Clone)]
pub struct Expr {
    /// The expression between the delimiters, trimmed (as error messages quote it).
    text: String,
    ast: Arc<AstNode>,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// The text between `{%` and `%}` if `s` is a JSONata expression string.
/// The delimiters must be the string's first and last characters (`" {% x %} "` is a
/// literal string, as in Step Functions).
pub fn expression_text(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{%")?.strip_suffix("%}")?;
    Some(inner.trim())
}

impl Expr {
    /// Parses the inside of a `{% %}` string.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let ast = jsonata_core::parser::parse(text).map_err(|e| e.to_string())?;
        Ok(Expr {
            text: text.to_owned(),
            ast: Arc::new(ast),
        })
    }

    /// `Some(expr)` when `s` is `{% ... %}`, `None` for a literal string.
    pub fn parse_field(s: &str) -> Option<Result<Expr, String>> {
        expression_text(s).map(Expr::parse)
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates; `Ok(None)` when the result is undefined.
    pub fn eval(&self, env: &Env<'_>, field: &str) -> Result<Option<Value>, StatesError> {
        let mut evaluator = env.evaluator();
        match evaluator.evaluate(&self.ast, &JValue::Undefined) {
            Ok(v) => Ok(to_json(&v)),
            Err(e) => Err(evaluation_error(&self.text, field, &e)),
        }
    }

    /// Evaluates and requires a value.
    pub fn eval_required(&self, env: &Env<'_>, field: &str) -> Result<Value, StatesError> {
        self.eval(env, field)?.ok_or_else(|| {
            query_error(format!(
                "The JSONata expression '{}' specified for the field '{field}' returned nothing (undefined).",
                self.text
            ))
        })
    }
}

fn query_error(cause: String) -> StatesError {
    StatesError::new(names::QUERY_EVALUATION_ERROR, cause)
}

fn evaluation_error(text: &str, field: &str, e: &EvaluatorError) -> StatesError {
    // A host function reports an ASL error name as "Name: cause".
    let message = e.message();
    if let Some(rest) = message.strip_prefix("States.") {
        let (name, cause) = rest.split_once(": ").unwrap_or((rest, ""));
        return StatesError::new(format!("States.{name}"), cause.to_owned());
    }
    query_error(format!(
        "An error occurred while evaluating the JSONata expression '{text}' specified for the field '{field}': {message}"
    ))
}

/// A value template in JSONata mode: strings `{% ... %}` anywhere inside are evaluated,
/// everything else is copied.
#[derive(Debug, Clone, PartialEq)]
pub enum JTemplate {
    Literal(Value),
    Expr(Expr),
    Object(Vec<(String, JTemplate)>),
    Array(Vec<JTemplate>),
}

fn has_expression(v: &Value) -> bool {
    match v {
        Value::String(s) => expression_text(s).is_some(),
        Value::Object(o) => o.values().any(has_expression),
        Value::Array(a) => a.iter().any(has_expression),
        _ => false,
    }
}

impl JTemplate {
    pub fn parse(value: &Value) -> Result<JTemplate, String> {
        if !has_expression(value) {
            return Ok(JTemplate::Literal(value.clone()));
        }
        Ok(match value {
            Value::String(s) => match Expr::parse_field(s) {
                Some(e) => JTemplate::Expr(e.map_err(|m| format!("{s:?}: {m}"))?),
                None => JTemplate::Literal(value.clone()),
            },
            Value::Object(o) => JTemplate::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), JTemplate::parse(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Value::Array(a) => {
                JTemplate::Array(a.iter().map(JTemplate::parse).collect::<Result<_, _>>()?)
            }
            other => JTemplate::Literal(other.clone()),
        })
    }

    /// The single expression, if the template is exactly one `{% %}` string.
    pub fn as_expr(&self) -> Option<&Expr> {
        match self {
            JTemplate::Expr(e) => Some(e),
            _ => None,
        }
    }

    /// Evaluates; `field` is the definition field (`Output`, `Assign`, ...) for errors.
    pub fn eval(&self, env: &Env<'_>, field: &str) -> Result<Value, StatesError> {
        match self {
            JTemplate::Literal(v) => Ok(v.clone()),
            JTemplate::Expr(e) => e.eval_required(env, field),
            JTemplate::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    let v = t.eval(env, &format!("{field}/{k}"))?;
                    out.insert(k.clone(), v);
                }
                Ok(Value::Object(out))
            }
            JTemplate::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, t)| t.eval(env, &format!("{field}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
        }
    }
}

/// What a JSONata expression can see.
pub struct Env<'a> {
    pub input: &'a Value,
    pub context: &'a Value,
    pub result: Option<&'a Value>,
    pub error_output: Option<&'a Value>,
    pub variables: &'a Map<String, Value>,
    /// Seed of `$random()` and `$uuid()`.
    pub seed: u64,
}

impl Env<'_> {
    fn evaluator(&self) -> Evaluator {
        let mut ctx = Context::new();
        let mut states = indexmap_of(4);
        states.insert("input".to_owned(), JValue::from(self.input.clone()));
        states.insert("context".to_owned(), JValue::from(self.context.clone()));
        if let Some(r) = self.result {
            states.insert("result".to_owned(), JValue::from(r.clone()));
        }
        if let Some(e) = self.error_output {
            states.insert("errorOutput".to_owned(), JValue::from(e.clone()));
        }
        ctx.bind("states".to_owned(), JValue::object(states));
        for (k, v) in self.variables {
            ctx.bind(k.clone(), JValue::from(v.clone()));
        }
        let mut ev = Evaluator::with_options(
            ctx,
            EvaluatorOptions {
                timeout_ms: Some(EVAL_TIMEOUT_MS),
                max_stack_depth: Some(MAX_STACK_DEPTH),
                ..EvaluatorOptions::default()
            },
        );
        register_functions(&mut ev, self.seed);
        ev
    }
}

fn indexmap_of(n: usize) -> indexmap::IndexMap<String, JValue> {
    indexmap::IndexMap::with_capacity(n)
}

fn host_error(name: &str, cause: impl Into<String>) -> EvaluatorError {
    EvaluatorError::EvaluationError(format!("{name}: {}", cause.into()))
}

fn register(ev: &mut Evaluator, name: &str, f: impl Fn(&[JValue]) -> HostResult + 'static) {
    if ev.register_fn(name, f).is_err() {
        // `$random` replaces jsonata's own (seeded, so executions replay the same).
        let _ = ev.register_fn_override(name, |_: &[JValue]| Ok(JValue::Undefined));
    }
}

type HostResult = Result<JValue, EvaluatorError>;

fn register_functions(ev: &mut Evaluator, seed: u64) {
    register(ev, "partition", |args| {
        let (Some(JValue::Array(items)), Some(JValue::Number(size))) = (args.first(), args.get(1))
        else {
            return Err(host_error(
                "States.QueryEvaluationError",
                "$partition expects an array and a positive integer size",
            ));
        };
        if *size < 1.0 || size.fract() != 0.0 {
            return Err(host_error(
                "States.QueryEvaluationError",
                "$partition expects a positive integer size",
            ));
        }
        let size = *size as usize;
        let all: Vec<JValue> = items.iter().cloned().collect();
        let chunks: Vec<JValue> = all
            .chunks(size)
            .map(|c| JValue::array(c.to_vec()))
            .collect();
        Ok(JValue::array(chunks))
    });
    register(ev, "range", |args| {
        let num = |i: usize| match args.get(i) {
            Some(JValue::Number(n)) if n.fract() == 0.0 => Some(*n as i64),
            _ => None,
        };
        let (Some(start), Some(end), Some(step)) = (num(0), num(1), num(2)) else {
            return Err(host_error(
                "States.QueryEvaluationError",
                "$range expects three integers",
            ));
        };
        if step == 0 {
            return Err(host_error(
                "States.QueryEvaluationError",
                "$range step must not be zero",
            ));
        }
        let mut out = Vec::new();
        let mut x = start;
        while (step > 0 && x <= end) || (step < 0 && x >= end) {
            out.push(JValue::Number(x as f64));
            if out.len() > 1000 {
                return Err(host_error(
                    "States.QueryEvaluationError",
                    "$range produces more than 1000 items",
                ));
            }
            x += step;
        }
        Ok(match out.len() {
            1 => out.swap_remove(0),
            _ => JValue::array(out),
        })
    });
    register(ev, "hash", |args| {
        let (Some(JValue::String(data)), Some(JValue::String(alg))) = (args.first(), args.get(1))
        else {
            return Err(host_error(
                "States.QueryEvaluationError",
                "$hash expects a string and an algorithm name",
            ));
        };
        match crate::hash::hex_digest(alg, data.as_bytes()) {
            Some(h) => Ok(JValue::string(h)),
            None => Err(host_error(
                "States.QueryEvaluationError",
                format!("$hash: unsupported algorithm {alg}"),
            )),
        }
    });
    register(ev, "parse", |args| match args.first() {
        Some(JValue::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => Ok(JValue::from(v)),
            Err(e) => Err(host_error(
                "States.QueryEvaluationError",
                format!("$parse: the argument is not valid JSON: {e}"),
            )),
        },
        _ => Err(host_error(
            "States.QueryEvaluationError",
            "$parse expects a string",
        )),
    });
    let rng = std::cell::Cell::new(seed | 1);
    let next = move || {
        let mut x = rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let next = std::rc::Rc::new(next);
    let n2 = next.clone();
    let random = move |args: &[JValue]| -> HostResult {
        let x = match args.first() {
            Some(JValue::Number(s)) => {
                let mut z = (*s as i64 as u64) ^ 0x9E37_79B9_7F4A_7C15;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            }
            _ => next(),
        };
        Ok(JValue::Number((x >> 11) as f64 / (1u64 << 53) as f64))
    };
    if ev.register_fn("random", random.clone()).is_err() {
        let _ = ev.register_fn_override("random", random);
    }
    register(ev, "uuid", move |_| {
        let (a, b) = (n2(), n2());
        let hex = format!("{a:016x}{b:016x}");
        Ok(JValue::string(format!(
            "{}-{}-4{}-{:x}{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            8 + (b & 3),
            &hex[17..20],
            &hex[20..32]
        )))
    });
}

/// JSON for a JSONata value; `None` for undefined. Integral numbers become integers, as
/// JavaScript prints them.
pub fn to_json(v: &JValue) -> Option<Value> {
    Some(match v {
        JValue::Undefined => return None,
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => number(*n),
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(a) => Value::Array(a.iter().filter_map(to_json).collect()),
        JValue::Object(o) => {
            let mut m = Map::with_capacity(o.len());
            for (k, x) in o.iter() {
                if let Some(x) = to_json(x) {
                    m.insert(k.clone(), x);
                }
            }
            Value::Object(m)
        }
        // Functions and regexes serialise as "" in JSON.stringify-like output.
        JValue::Lambda(_) | JValue::Builtin { .. } | JValue::Regex { .. } => {
            Value::String(String::new())
        }
    })
}

fn number(n: f64) -> Value {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// JSON type name as Step Functions' messages spell it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(text: &str, input: Value) -> Result<Value, StatesError> {
        let t = JTemplate::parse(&Value::String(text.into())).map_err(StatesError::runtime)?;
        let vars = Map::new();
        let ctx = json!({});
        t.eval(
            &Env {
                input: &input,
                context: &ctx,
                result: None,
                error_output: None,
                variables: &vars,
                seed: 7,
            },
            "Output",
        )
    }

    #[test]
    fn states_bindings_and_functions() {
        assert_eq!(
            eval("{% $states.input.a + 1 %}", json!({"a": 1})).ok(),
            Some(json!(2))
        );
        assert_eq!(
            eval("{% $partition([1,2,3], 2) %}", json!({})).ok(),
            Some(json!([[1, 2], [3]]))
        );
        assert_eq!(
            eval("{% $range(1, 9, 9) %}", json!({})).ok(),
            Some(json!(1))
        );
        assert_eq!(
            eval("{% $parse('{\"a\": [1]}') %}", json!({})).ok(),
            Some(json!({"a": [1]}))
        );
        assert_eq!(
            eval("{% $hash('input data', 'SHA-1') %}", json!({})).ok(),
            Some(json!("aaff4a450a104cd177d28d18d74485e8cae074b7"))
        );
        let u = eval("{% $uuid() %}", json!({})).ok();
        assert_eq!(u.as_ref().and_then(Value::as_str).map(str::len), Some(36));
        let r = eval("{% $random() %}", json!({})).ok();
        assert!(
            r.and_then(|v| v.as_f64())
                .is_some_and(|x| (0.0..1.0).contains(&x))
        );
        let e = eval("{% $nope %}", json!({})).err();
        assert_eq!(
            e.map(|e| e.cause),
            Some(
                "The JSONata expression '$nope' specified for the field 'Output' returned nothing (undefined)."
                    .into()
            )
        );
    }
}
