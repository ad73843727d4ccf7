//! Choice rules: comparison operators, `And`/`Or`/`Not`, and their evaluation.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::error::{Error, Result, StatesError};
use crate::path::{Path, Scope, Selection};

/// A comparison operator (the `...Path` variants share the operator and use
/// [`Operand::Path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

const OPERATORS: &[(&str, Operator)] = &[
    ("StringEquals", Operator::StringEquals),
    ("StringLessThan", Operator::StringLessThan),
    ("StringGreaterThan", Operator::StringGreaterThan),
    ("StringLessThanEquals", Operator::StringLessThanEquals),
    ("StringGreaterThanEquals", Operator::StringGreaterThanEquals),
    ("StringMatches", Operator::StringMatches),
    ("NumericEquals", Operator::NumericEquals),
    ("NumericLessThan", Operator::NumericLessThan),
    ("NumericGreaterThan", Operator::NumericGreaterThan),
    ("NumericLessThanEquals", Operator::NumericLessThanEquals),
    (
        "NumericGreaterThanEquals",
        Operator::NumericGreaterThanEquals,
    ),
    ("BooleanEquals", Operator::BooleanEquals),
    ("TimestampEquals", Operator::TimestampEquals),
    ("TimestampLessThan", Operator::TimestampLessThan),
    ("TimestampGreaterThan", Operator::TimestampGreaterThan),
    ("TimestampLessThanEquals", Operator::TimestampLessThanEquals),
    (
        "TimestampGreaterThanEquals",
        Operator::TimestampGreaterThanEquals,
    ),
    ("IsNull", Operator::IsNull),
    ("IsPresent", Operator::IsPresent),
    ("IsNumeric", Operator::IsNumeric),
    ("IsString", Operator::IsString),
    ("IsBoolean", Operator::IsBoolean),
    ("IsTimestamp", Operator::IsTimestamp),
];

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Value(Value),
    Path(Path),
}

/// A boolean expression of a Choice rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare(Box<Comparison>),
    /// A JSONata `Condition` (evaluated by the execution, which has the bindings).
    Jsonata(crate::jsonata::Expr),
    /// A JSONata `Condition` given as a literal boolean.
    Constant(bool),
}

/// `Variable` compared with an operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub variable: Path,
    pub operator: Operator,
    pub operand: Operand,
}

/// A top-level rule: a condition and the state to go to.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
    /// The rule's own `Assign`, used instead of the state's when the rule matches.
    pub assign: Option<crate::model::Assign>,
    /// The rule's own JSONata `Output`.
    pub output: Option<crate::jsonata::JTemplate>,
}

impl Condition {
    /// Parses one rule object (`top` rules carry `Next`, which the caller reads).
    pub fn parse(v: &Value, state: &str) -> Result<Condition> {
        let Some(o) = v.as_object() else {
            return Err(Error::state(state, "a choice rule must be an object"));
        };
        let list = |key: &str, items: &Value| -> Result<Vec<Condition>> {
            let Some(a) = items.as_array().filter(|a| !a.is_empty()) else {
                return Err(Error::state(
                    state,
                    format!("{key} must be a non-empty array"),
                ));
            };
            a.iter().map(|c| Condition::parse(c, state)).collect()
        };
        if let Some(items) = o.get("And") {
            return Ok(Condition::And(list("And", items)?));
        }
        if let Some(items) = o.get("Or") {
            return Ok(Condition::Or(list("Or", items)?));
        }
        if let Some(inner) = o.get("Not") {
            return Ok(Condition::Not(Box::new(Condition::parse(inner, state)?)));
        }
        if o.contains_key("Condition") {
            return Err(Error::state(
                state,
                "Condition (JSONata) rules are not supported yet",
            ));
        }
        let Some(var) = o.get("Variable").and_then(Value::as_str) else {
            return Err(Error::state(
                state,
                "a choice rule needs Variable, And, Or or Not",
            ));
        };
        let variable = Path::parse(var)?;
        for (key, value) in o {
            let (name, is_path) = match key.strip_suffix("Path") {
                Some(n) if OPERATORS.iter().any(|(k, _)| *k == n) => (n, true),
                _ => (key.as_str(), false),
            };
            let Some((_, operator)) = OPERATORS.iter().find(|(k, _)| *k == name) else {
                continue;
            };
            let operand = if is_path {
                let Some(text) = value.as_str() else {
                    return Err(Error::state(state, format!("{key} must be a path string")));
                };
                Operand::Path(Path::parse(text)?)
            } else {
                check_operand(*operator, value)
                    .map_err(|m| Error::state(state, format!("{key}: {m}")))?;
                Operand::Value(value.clone())
            };
            return Ok(Condition::Compare(Box::new(Comparison {
                variable,
                operator: *operator,
                operand,
            })));
        }
        Err(Error::state(
            state,
            format!("choice rule on {var} has no comparison operator"),
        ))
    }

    /// Evaluates against the scope; a missing `Variable` is a `States.Runtime` error
    /// (except for `IsPresent`).
    pub fn eval(&self, scope: Scope<'_>) -> Result<bool, StatesError> {
        match self {
            Condition::Constant(b) => Ok(*b),
            Condition::Jsonata(e) => Err(StatesError::runtime(format!(
                "internal: the JSONata condition '{}' needs JSONata bindings",
                e.text()
            ))),
            Condition::And(cs) => {
                for c in cs {
                    if !c.eval(scope)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(cs) => {
                for c in cs {
                    if c.eval(scope)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(c) => Ok(!c.eval(scope)?),
            Condition::Compare(c) => {
                let Comparison {
                    variable,
                    operator,
                    operand,
                } = c.as_ref();
                let value = match variable.select(scope) {
                    Selection::Found(v) => Some(v),
                    Selection::Missing(_) => None,
                };
                let operand = match operand {
                    Operand::Value(v) => v.clone(),
                    Operand::Path(p) => p.select_required(scope)?,
                };
                if *operator == Operator::IsPresent {
                    return Ok(operand.as_bool() == Some(value.is_some()));
                }
                let Some(value) = value else {
                    return Err(StatesError::runtime(format!(
                        "Invalid path '{}': The choice state's condition path references an invalid value.",
                        variable.text()
                    )));
                };
                Ok(compare(*operator, &value, &operand))
            }
        }
    }
}

fn check_operand(op: Operator, v: &Value) -> Result<(), String> {
    use Operator::*;
    let ok = match op {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals
        | StringMatches => v.is_string(),
        NumericEquals
        | NumericLessThan
        | NumericGreaterThan
        | NumericLessThanEquals
        | NumericGreaterThanEquals => v.is_number(),
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => v.as_str().is_some_and(|s| timestamp(s).is_some()),
        BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => {
            v.is_boolean()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid operand {v}"))
    }
}

/// An ISO-8601 / RFC 3339 timestamp as ASL accepts it.
pub(crate) fn timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .filter(|_| s.contains('T'))
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literals.
pub fn string_matches(text: &str, pattern: &str) -> bool {
    enum Tok {
        Lit(char),
        Star,
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => toks.push(Tok::Lit(n)),
                None => toks.push(Tok::Lit('\\')),
            },
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Lit(c)),
        }
    }
    let t: Vec<char> = text.chars().collect();
    // Classic wildcard matching with one backtrack point.
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match toks.get(pi) {
            Some(Tok::Lit(c)) if *c == t[ti] => {
                ti += 1;
                pi += 1;
            }
            Some(Tok::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[pi..].iter().all(|t| matches!(t, Tok::Star))
}

fn compare(op: Operator, value: &Value, operand: &Value) -> bool {
    use Operator::*;
    use std::cmp::Ordering;
    let ord_matches = |o: Ordering, op: Operator| match op {
        StringEquals | NumericEquals | TimestampEquals => o == Ordering::Equal,
        StringLessThan | NumericLessThan | TimestampLessThan => o == Ordering::Less,
        StringGreaterThan | NumericGreaterThan | TimestampGreaterThan => o == Ordering::Greater,
        StringLessThanEquals | NumericLessThanEquals | TimestampLessThanEquals => {
            o != Ordering::Greater
        }
        StringGreaterThanEquals | NumericGreaterThanEquals | TimestampGreaterThanEquals => {
            o != Ordering::Less
        }
        _ => false,
    };
    match op {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals => match (value.as_str(), operand.as_str()) {
            (Some(a), Some(b)) => ord_matches(a.cmp(b), op),
            _ => false,
        },
        StringMatches => match (value.as_str(), operand.as_str()) {
            (Some(a), Some(b)) => string_matches(a, b),
            _ => false,
        },
        NumericEquals
        | NumericLessThan
        | NumericGreaterThan
        | NumericLessThanEquals
        | NumericGreaterThanEquals => match (value.as_f64(), operand.as_f64()) {
            (Some(a), Some(b)) if value.is_number() && operand.is_number() => {
                a.partial_cmp(&b).is_some_and(|o| ord_matches(o, op))
            }
            _ => false,
        },
        BooleanEquals => match (value.as_bool(), operand.as_bool()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => {
            match (
                value.as_str().and_then(timestamp),
                operand.as_str().and_then(timestamp),
            ) {
                (Some(a), Some(b)) => ord_matches(a.cmp(&b), op),
                _ => false,
            }
        }
        IsNull | IsNumeric | IsString | IsBoolean | IsTimestamp | IsPresent => {
            let is = match op {
                IsNull => value.is_null(),
                IsNumeric => value.is_number(),
                IsString => value.is_string(),
                IsBoolean => value.is_boolean(),
                IsTimestamp => value.as_str().and_then(timestamp).is_some(),
                _ => true,
            };
            operand.as_bool() == Some(is)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn check(rule: Value, input: Value) -> Result<bool, StatesError> {
        let c = Condition::parse(&rule, "C").expect("parses");
        let vars = Map::new();
        c.eval(Scope {
            input: &input,
            context: &Value::Null,
            variables: &vars,
        })
    }

    #[test]
    fn operators() {
        let i = json!({"s": "abc", "n": 5, "b": true, "t": "2024-01-01T00:00:00Z", "z": null, "m": 5.0});
        assert_eq!(
            check(json!({"Variable": "$.s", "StringEquals": "abc"}), i.clone()),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.s", "StringLessThan": "abd"}),
                i.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.s", "StringGreaterThanEquals": "abc"}),
                i.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.s", "StringMatches": "a*c"}),
                i.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$.n", "NumericEquals": 5.0}), i.clone()),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.n", "NumericEqualsPath": "$.m"}),
                i.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$.n", "NumericLessThan": 5}), i.clone()),
            Ok(false)
        );
        assert_eq!(
            check(json!({"Variable": "$.s", "NumericEquals": 5}), i.clone()),
            Ok(false)
        );
        assert_eq!(
            check(json!({"Variable": "$.b", "BooleanEquals": true}), i.clone()),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.t", "TimestampLessThan": "2024-01-01T00:00:01+00:00"}),
                i.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$.z", "IsNull": true}), i.clone()),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$.q", "IsPresent": false}), i.clone()),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$.t", "IsTimestamp": true}), i.clone()),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$.s", "IsString": true}), i.clone()),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$.n", "IsNumeric": false}), i.clone()),
            Ok(false)
        );
        assert_eq!(
            check(
                json!({"And": [{"Variable": "$.n", "NumericGreaterThan": 1}, {"Not": {"Variable": "$.b", "BooleanEquals": false}}]}),
                i.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Or": [{"Variable": "$.n", "NumericGreaterThan": 10}, {"Variable": "$.s", "StringEquals": "x"}]}),
                i.clone()
            ),
            Ok(false)
        );
        assert!(check(json!({"Variable": "$.missing", "StringEquals": "x"}), i).is_err());
        assert!(Condition::parse(&json!({"Variable": "$.n", "NumericEquals": "x"}), "C").is_err());
    }

    #[test]
    fn wildcards() {
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(string_matches("anything", "*"));
        assert!(string_matches("a*b", "a\\*b"));
        assert!(!string_matches("axb", "a\\*b"));
        assert!(!string_matches("abc", "a*d"));
        assert!(string_matches("", "*"));
    }
}
