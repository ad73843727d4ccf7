//! Payload templates: `Parameters`, `ResultSelector`, `ItemSelector` and `Assign` in
//! JSONPath mode. Keys ending in `.$` take their value from a path or an intrinsic call;
//! everything else is copied.

use serde_json::{Map, Value};

use crate::error::{Error, Result, StatesError};
use crate::intrinsics::{Intrinsic, looks_like_call};
use crate::path::{Path, Scope, Selection};

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// Copied as is (contains no `.$` keys).
    Literal(Value),
    Object(Vec<(String, Field)>),
    Array(Vec<Template>),
}

/// The value of one key of an object template.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Template(Template),
    Path { key: String, path: Path },
    Intrinsic(Intrinsic),
}

fn has_dynamic(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, v)| k.ends_with(".$") || has_dynamic(v)),
        Value::Array(a) => a.iter().any(has_dynamic),
        _ => false,
    }
}

impl Template {
    /// Compiles `value`; `field` names the definition field for error messages.
    pub fn parse(value: &Value, field: &str) -> Result<Template> {
        if !has_dynamic(value) {
            return Ok(Template::Literal(value.clone()));
        }
        match value {
            Value::Object(o) => {
                let mut fields = Vec::with_capacity(o.len());
                for (k, v) in o {
                    if let Some(name) = k.strip_suffix(".$") {
                        let Some(text) = v.as_str() else {
                            return Err(Error::Definition(format!(
                                "{field}: the value of \"{k}\" must be a path or an intrinsic function"
                            )));
                        };
                        let f = if looks_like_call(text) {
                            Field::Intrinsic(Intrinsic::parse(text)?)
                        } else {
                            Field::Path {
                                key: k.clone(),
                                path: Path::parse(text)?,
                            }
                        };
                        fields.push((name.to_owned(), f));
                    } else {
                        fields.push((k.clone(), Field::Template(Template::parse(v, field)?)));
                    }
                }
                Ok(Template::Object(fields))
            }
            Value::Array(a) => Ok(Template::Array(
                a.iter()
                    .map(|v| Template::parse(v, field))
                    .collect::<Result<_>>()?,
            )),
            other => Ok(Template::Literal(other.clone())),
        }
    }

    pub fn eval(
        &self,
        scope: Scope<'_>,
        random: &mut dyn FnMut() -> u64,
    ) -> Result<Value, StatesError> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|t| t.eval(scope, random))
                    .collect::<Result<_, _>>()?,
            )),
            Template::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (name, f) in fields {
                    let v = match f {
                        Field::Template(t) => t.eval(scope, random)?,
                        Field::Intrinsic(i) => i.eval(scope, random)?,
                        Field::Path { key, path } => match path.select(scope) {
                            Selection::Found(v) => v,
                            Selection::Missing(_) => {
                                return Err(StatesError::runtime(format!(
                                    "The JSONPath '{}' specified for the field '{}' could not be found in the input '{}'",
                                    path.text(),
                                    key,
                                    scope.input
                                )));
                            }
                        },
                    };
                    out.insert(name.clone(), v);
                }
                Ok(Value::Object(out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_paths_context_and_intrinsics() {
        let t = Template::parse(
            &json!({
                "lit": "x.$",
                "a.$": "$.a",
                "nested": {"b.$": "$.b[0]", "list": [{"c.$": "$$.Name"}, "$.notapath"]},
                "f.$": "States.Format('{}-{}', $.a, $$.Name)"
            }),
            "Parameters",
        )
        .expect("parses");
        let input = json!({"a": 1, "b": ["z"]});
        let ctx = json!({"Name": "ctx"});
        let vars = Map::new();
        let scope = Scope {
            input: &input,
            context: &ctx,
            variables: &vars,
        };
        let out = t.eval(scope, &mut || 4).expect("evaluates");
        assert_eq!(
            out,
            json!({"lit": "x.$", "a": 1, "nested": {"b": "z", "list": [{"c": "ctx"}, "$.notapath"]}, "f": "1-ctx"})
        );
        let t = Template::parse(&json!({"v.$": "$.missing"}), "Parameters").expect("parses");
        let e = t.eval(scope, &mut || 4).expect_err("missing");
        assert_eq!(e.error, "States.Runtime");
        assert!(
            e.cause
                .contains("'$.missing' specified for the field 'v.$'")
        );
    }
}
