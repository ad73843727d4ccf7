//! JSONPath in ASL: `$` paths over the state input, `$$` paths over the context object,
//! and reference paths (the subset ResultPath may use) with a writer that creates missing
//! parents.
//!
//! Evaluation uses serde_json_path (RFC 9535), compiled once when the definition is parsed.
//! ASL writes paths in the Jayway dialect (`$.my-field`, `$.a.b[0]`), so the text is first
//! rewritten into RFC 9535 form (`$['my-field']`).

use serde_json::Value;
use serde_json_path::JsonPath;

use crate::error::{Error, Result, StatesError};

/// One step of a definite path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// What a path is evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the state's input.
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a variable set by `Assign`.
    Variable(String),
}

/// The documents a path can read: the input, the context object and the variables.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub input: &'a Value,
    pub context: &'a Value,
    pub variables: &'a serde_json::Map<String, Value>,
}

/// A compiled ASL path (`$...`, `$$...` or `$variable...`).
#[derive(Debug, Clone)]
pub struct Path {
    text: String,
    root: Root,
    query: JsonPath,
    /// `Some` for definite paths made only of fields and indexes.
    segments: Option<Vec<Segment>>,
    definite: bool,
}

impl PartialEq for Path {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// What a path selected from its document.
pub enum Selection {
    /// The path matched nothing; the text is Jayway's explanation.
    Missing(String),
    Found(Value),
}

impl Path {
    pub fn parse(text: &str) -> Result<Path> {
        let (root, rest) = if let Some(rest) = text.strip_prefix("$$") {
            (Root::Context, format!("${rest}"))
        } else if let Some(rest) = text.strip_prefix('$') {
            let name_len = rest.find(['.', '[']).unwrap_or(rest.len());
            if name_len == 0 {
                (Root::Input, text.to_owned())
            } else {
                let name = &rest[..name_len];
                if !is_shorthand(name) {
                    return Err(Error::Path {
                        path: text.to_owned(),
                        message: format!("invalid variable name {name:?}"),
                    });
                }
                (
                    Root::Variable(name.to_owned()),
                    format!("${}", &rest[name_len..]),
                )
            }
        } else {
            return Err(Error::Path {
                path: text.to_owned(),
                message: "a path must start with '$'".into(),
            });
        };
        let (rfc, definite) = to_rfc9535(&rest).map_err(|message| Error::Path {
            path: text.to_owned(),
            message,
        })?;
        let query = JsonPath::parse(&rfc).map_err(|e| Error::Path {
            path: text.to_owned(),
            message: e.to_string(),
        })?;
        let segments = if definite {
            parse_reference(&rest).ok()
        } else {
            None
        };
        Ok(Path {
            text: text.to_owned(),
            root,
            query,
            segments,
            definite,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Whether this is `$`: it selects the whole input (so a caller may use the input
    /// itself instead of a copy).
    pub fn is_identity(&self) -> bool {
        self.root == Root::Input && self.segments.as_ref().is_some_and(Vec::is_empty)
    }

    /// Selects from the scope. A definite path yields its one value; an indefinite one
    /// yields the array of matches (possibly empty).
    pub fn select(&self, scope: Scope<'_>) -> Selection {
        let doc = match &self.root {
            Root::Input => scope.input,
            Root::Context => scope.context,
            Root::Variable(name) => match scope.variables.get(name) {
                Some(v) => v,
                None => {
                    return Selection::Missing(format!("variable ${name} is not defined"));
                }
            },
        };
        if let Some(segs) = &self.segments {
            return select_segments(doc, segs);
        }
        let nodes = self.query.query(doc);
        if self.definite {
            match nodes.at_most_one() {
                Ok(Some(v)) => Selection::Found(v.clone()),
                _ => Selection::Missing(format!("No results for path: {}", self.text)),
            }
        } else {
            Selection::Found(Value::Array(nodes.all().into_iter().cloned().collect()))
        }
    }

    /// Selects or fails with AWS's `Invalid path` runtime error.
    pub fn select_required(&self, scope: Scope<'_>) -> Result<Value, StatesError> {
        match self.select(scope) {
            Selection::Found(v) => Ok(v),
            Selection::Missing(why) => Err(StatesError::runtime(format!(
                "Invalid path '{}' : {}",
                self.text, why
            ))),
        }
    }
}

fn select_segments(doc: &Value, segs: &[Segment]) -> Selection {
    let mut cur = doc;
    for (i, seg) in segs.iter().enumerate() {
        let next = match seg {
            Segment::Field(name) => cur.as_object().and_then(|o| o.get(name)),
            Segment::Index(n) => cur.as_array().and_then(|a| a.get(*n)),
        };
        match next {
            Some(v) => cur = v,
            None if i + 1 == segs.len() => {
                return Selection::Missing(format!("No results for path: {}", shown(&segs[..=i])));
            }
            None => {
                return Selection::Missing(format!(
                    "Missing property in path {}",
                    shown(&segs[..=i])
                ));
            }
        }
    }
    Selection::Found(cur.clone())
}

/// `$['a'][0]`: how AWS shows a path in its errors (built only when there is one).
fn shown(segs: &[Segment]) -> String {
    let mut out = String::from("$");
    for seg in segs {
        match seg {
            Segment::Field(name) => {
                out.push_str("['");
                out.push_str(name);
                out.push_str("']");
            }
            Segment::Index(n) => {
                out.push('[');
                out.push_str(&n.to_string());
                out.push(']');
            }
        }
    }
    out
}

fn is_shorthand(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn quote(name: &str) -> String {
    let escaped = name.replace('\\', "\\\\").replace('\'', "\\'");
    format!("['{escaped}']")
}

/// Rewrites a Jayway-style path into RFC 9535 syntax; also says whether it is definite.
fn to_rfc9535(text: &str) -> Result<(String, bool), String> {
    rfc9535(text, true)
}

fn to_rfc9535_generic(text: &str) -> Result<(String, bool), String> {
    rfc9535(text, false)
}

fn rfc9535(text: &str, quoted_names: bool) -> Result<(String, bool), String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.first() != Some(&'$') {
        return Err("a path must start with '$'".into());
    }
    let mut out = String::from("$");
    let mut definite = true;
    let mut i = 1;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                if chars.get(i + 1) == Some(&'.') {
                    definite = false;
                    out.push_str("..");
                    i += 2;
                    if chars.get(i) == Some(&'[') {
                        continue;
                    }
                } else {
                    i += 1;
                    out.push('.');
                }
                if chars.get(i) == Some(&'*') {
                    definite = false;
                    out.push('*');
                    i += 1;
                    continue;
                }
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if name.is_empty() {
                    return Err("empty field name".into());
                }
                if is_shorthand(&name) {
                    out.push_str(&name);
                } else {
                    out.pop();
                    if out.ends_with('.') {
                        // descendant segment: `..['x']`
                        out.push('.');
                    }
                    out.push_str(&quote(&name));
                }
            }
            '[' if quoted_names && matches!(chars.get(i + 1), Some('\'' | '"')) => {
                // A quoted name, Jayway style: a backslash escapes only the quote itself.
                let q = chars[i + 1];
                let mut name = String::new();
                let mut j = i + 2;
                loop {
                    match chars.get(j) {
                        None => return Err("unclosed quote".into()),
                        Some('\\') if chars.get(j + 1) == Some(&q) => {
                            name.push(q);
                            j += 2;
                        }
                        Some(&c) if c == q => break,
                        Some(&c) => {
                            name.push(c);
                            j += 1;
                        }
                    }
                }
                if chars.get(j + 1) != Some(&']') {
                    // Not a single quoted name (e.g. a union): copy it through below.
                    return to_rfc9535_bracket(&chars, i, out, definite);
                }
                out.push_str(&quote(&name));
                i = j + 2;
            }
            '[' => {
                let start = i;
                let mut quote_char: Option<char> = None;
                let mut depth = 0usize;
                while i < chars.len() {
                    let c = chars[i];
                    match quote_char {
                        Some(q) => {
                            if c == '\\' {
                                i += 1;
                            } else if c == q {
                                quote_char = None;
                            }
                        }
                        None => match c {
                            '\'' | '"' => quote_char = Some(c),
                            '[' => depth += 1,
                            ']' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            '*' | ':' | '?' | ',' => definite = false,
                            _ => {}
                        },
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unclosed '['".into());
                }
                let inner: String = chars[start..=i].iter().collect();
                out.push_str(&inner);
                i += 1;
            }
            c => return Err(format!("unexpected character {c:?}")),
        }
    }
    Ok((out, definite))
}

/// Copies the rest of a path from a bracket that is not a single quoted name.
fn to_rfc9535_bracket(
    chars: &[char],
    at: usize,
    out: String,
    definite: bool,
) -> Result<(String, bool), String> {
    let rest: String = chars[at..].iter().collect();
    let (tail, tail_definite) = to_rfc9535_generic(&format!("${rest}"))?;
    Ok((format!("{out}{}", &tail[1..]), definite && tail_definite))
}

/// Parses a reference path: `$`, `.field`, `['field']`, `["field"]`, `[index]`.
pub fn parse_reference(text: &str) -> Result<Vec<Segment>, String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.first() != Some(&'$') {
        return Err("a reference path must start with '$'".into());
    }
    let mut segs = Vec::new();
    let mut i = 1;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if name.is_empty() || name == "*" {
                    return Err("not a reference path".into());
                }
                segs.push(Segment::Field(name));
            }
            '[' => {
                i += 1;
                match chars.get(i) {
                    Some(&q) if q == '\'' || q == '"' => {
                        i += 1;
                        let mut name = String::new();
                        loop {
                            match chars.get(i) {
                                None => return Err("unclosed quote".into()),
                                Some('\\') if chars.get(i + 1) == Some(&q) => {
                                    name.push(q);
                                    i += 2;
                                }
                                Some(&c) if c == q => {
                                    i += 1;
                                    break;
                                }
                                Some(&c) => {
                                    name.push(c);
                                    i += 1;
                                }
                            }
                        }
                        if chars.get(i) != Some(&']') {
                            return Err("expected ']'".into());
                        }
                        i += 1;
                        segs.push(Segment::Field(name));
                    }
                    _ => {
                        let start = i;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                        let digits: String = chars[start..i].iter().collect();
                        if digits.is_empty() || chars.get(i) != Some(&']') {
                            return Err("not a reference path".into());
                        }
                        i += 1;
                        let n = digits.parse().map_err(|_| "index too large".to_string())?;
                        segs.push(Segment::Index(n));
                    }
                }
            }
            _ => return Err("not a reference path".into()),
        }
    }
    Ok(segs)
}

/// A compiled ResultPath-style reference path.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferencePath {
    text: String,
    segments: Vec<Segment>,
}

impl ReferencePath {
    pub fn parse(text: &str) -> Result<Self> {
        let segments = parse_reference(text).map_err(|message| Error::Path {
            path: text.to_owned(),
            message,
        })?;
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is `$`: writing replaces the whole target.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Writes `value` into `target` at this path, creating missing objects on the way.
    pub fn write(&self, target: Value, value: Value) -> Result<Value, StatesError> {
        let mut target = target;
        if self.segments.is_empty() {
            return Ok(value);
        }
        let mut cur = &mut target;
        for seg in &self.segments {
            cur = match seg {
                Segment::Field(name) => {
                    if !cur.is_object() {
                        return Err(
                            self.mismatch(&format!("cannot set field '{name}' on a non-object"))
                        );
                    }
                    let Some(obj) = cur.as_object_mut() else {
                        return Err(self.mismatch("not an object"));
                    };
                    obj.entry(name.clone())
                        .or_insert_with(|| Value::Object(Default::default()))
                }
                Segment::Index(n) => match cur.as_array_mut().and_then(|a| a.get_mut(*n)) {
                    Some(v) => v,
                    None => return Err(self.mismatch(&format!("index {n} does not exist"))),
                },
            };
        }
        *cur = value;
        Ok(target)
    }

    fn mismatch(&self, why: &str) -> StatesError {
        StatesError::new(
            crate::error::names::RESULT_PATH_MATCH_FAILURE,
            format!("Unable to apply ResultPath '{}': {why}", self.text),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope<'a>(
        input: &'a Value,
        ctx: &'a Value,
        vars: &'a serde_json::Map<String, Value>,
    ) -> Scope<'a> {
        Scope {
            input,
            context: ctx,
            variables: vars,
        }
    }

    fn sel(p: &str, v: &Value) -> Option<Value> {
        let ctx = json!({"Ctx": 1});
        let mut vars = serde_json::Map::new();
        vars.insert("var".into(), json!({"k": [5]}));
        match Path::parse(p)
            .expect("parses")
            .select(scope(v, &ctx, &vars))
        {
            Selection::Found(v) => Some(v),
            Selection::Missing(_) => None,
        }
    }

    #[test]
    fn definite_and_indefinite() {
        let doc = json!({"a": {"b-c": [1, 2, {"d": 3}]}, "x": [{"y": 1}, {"y": 2}]});
        assert_eq!(sel("$", &doc), Some(doc.clone()));
        assert_eq!(sel("$.a.b-c[1]", &doc), Some(json!(2)));
        assert_eq!(sel("$.a['b-c'][2].d", &doc), Some(json!(3)));
        assert_eq!(sel("$.x[*].y", &doc), Some(json!([1, 2])));
        assert_eq!(sel("$..y", &doc), Some(json!([1, 2])));
        assert_eq!(sel("$.x[?(@.y == 2)]", &doc), Some(json!([{"y": 2}])));
        assert_eq!(sel("$.nope", &doc), None);
        assert_eq!(sel("$$.Ctx", &doc), Some(json!(1)));
        assert_eq!(sel("$var.k[0]", &doc), Some(json!(5)));
        assert_eq!(sel("$var", &doc), Some(json!({"k": [5]})));
    }

    #[test]
    fn missing_messages_follow_jayway() {
        let doc = json!({"a": 1});
        let vars = serde_json::Map::new();
        let s = scope(&doc, &Value::Null, &vars);
        let p = Path::parse("$.no.such").expect("parses");
        let e = p.select_required(s).expect_err("missing");
        assert_eq!(
            e.cause,
            "Invalid path '$.no.such' : Missing property in path $['no']"
        );
        let p = Path::parse("$.b").expect("parses");
        let e = p.select_required(s).expect_err("missing");
        assert_eq!(e.cause, "Invalid path '$.b' : No results for path: $['b']");
    }

    #[test]
    fn reference_writer_creates_parents() {
        let r = ReferencePath::parse("$.a.b['c d']").expect("parses");
        let out = r.write(json!({"keep": 1}), json!(7)).expect("writes");
        assert_eq!(out, json!({"keep": 1, "a": {"b": {"c d": 7}}}));
        let r = ReferencePath::parse("$").expect("parses");
        assert_eq!(
            r.write(json!({"x": 1}), json!(2)).expect("writes"),
            json!(2)
        );
        let r = ReferencePath::parse("$.list[1]").expect("parses");
        let out = r.write(json!({"list": [0, 0]}), json!(5)).expect("writes");
        assert_eq!(out, json!({"list": [0, 5]}));
        assert!(r.write(json!({"list": []}), json!(5)).is_err());
        assert!(ReferencePath::parse("$.a[*]").is_err());
        let r = ReferencePath::parse("$.s.t").expect("parses");
        assert!(r.write(json!({"s": "str"}), json!(1)).is_err());
    }
}
