//! Intrinsic functions (`States.Format(...)` and friends): parsed once with the definition,
//! evaluated against a [`Scope`].

use serde_json::{Map, Number, Value};

use crate::error::{Error, Result, StatesError, names};
use crate::path::{Path, Scope, Selection};

/// A parsed intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Intrinsic {
    pub name: String,
    pub args: Vec<Arg>,
}

/// One argument of an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Literal(Value),
    Path(Path),
    Call(Intrinsic),
}

const FUNCTIONS: &[&str] = &[
    "Format",
    "StringToJson",
    "JsonToString",
    "Array",
    "ArrayPartition",
    "ArrayContains",
    "ArrayRange",
    "ArrayGetItem",
    "ArrayLength",
    "ArrayUnique",
    "Base64Encode",
    "Base64Decode",
    "Hash",
    "JsonMerge",
    "MathRandom",
    "MathAdd",
    "StringSplit",
    "UUID",
];

/// Whether a string value of a `.$` field is an intrinsic call rather than a path.
pub fn looks_like_call(text: &str) -> bool {
    text.trim_start().starts_with("States.")
}

impl Intrinsic {
    pub fn parse(text: &str) -> Result<Intrinsic> {
        let mut p = Parser {
            chars: text.chars().collect(),
            pos: 0,
            text,
        };
        let call = p.call()?;
        p.skip_ws();
        if p.pos != p.chars.len() {
            return Err(p.err("unexpected text after the call"));
        }
        Ok(call)
    }

    /// Evaluates the call. `random` supplies randomness (UUID, MathRandom without seed).
    pub fn eval(
        &self,
        scope: Scope<'_>,
        random: &mut dyn FnMut() -> u64,
    ) -> Result<Value, StatesError> {
        let mut args = Vec::with_capacity(self.args.len());
        for (i, a) in self.args.iter().enumerate() {
            args.push(match a {
                Arg::Literal(Value::String(s)) if !(self.name == "Format" && i == 0) => {
                    Value::String(unescape(s))
                }
                Arg::Literal(v) => v.clone(),
                Arg::Path(p) => match p.select(scope) {
                    Selection::Found(v) => v,
                    Selection::Missing(why) => {
                        return Err(StatesError::runtime(format!(
                            "The JsonPath argument for the field '{}' could not be found: {why}",
                            p.text()
                        )));
                    }
                },
                Arg::Call(c) => c.eval(scope, random)?,
            });
        }
        call(&self.name, args, random)
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `States.Format` renders non-string arguments the way AWS's Java runtime prints them.
fn format_arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let parts: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k}={}", format_arg(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(format_arg).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> Error {
        Error::Path {
            path: self.text.to_owned(),
            message: format!("{message} (at character {})", self.pos),
        }
    }

    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn call(&mut self) -> Result<Intrinsic> {
        self.skip_ws();
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.')
        {
            self.pos += 1;
        }
        let full: String = self.chars[start..self.pos].iter().collect();
        let Some(name) = full.strip_prefix("States.") else {
            return Err(self.err("an intrinsic function starts with 'States.'"));
        };
        if !FUNCTIONS.contains(&name) {
            return Err(self.err(&format!("unknown intrinsic function {full}")));
        }
        self.skip_ws();
        if self.chars.get(self.pos) != Some(&'(') {
            return Err(self.err("expected '('"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.chars.get(self.pos) == Some(&')') {
            self.pos += 1;
        } else {
            loop {
                args.push(self.arg()?);
                self.skip_ws();
                match self.chars.get(self.pos) {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or ')'")),
                }
            }
        }
        Ok(Intrinsic {
            name: name.to_owned(),
            args,
        })
    }

    fn arg(&mut self) -> Result<Arg> {
        self.skip_ws();
        match self.chars.get(self.pos) {
            Some('\'') => {
                self.pos += 1;
                let mut s = String::new();
                loop {
                    match self.chars.get(self.pos) {
                        None => return Err(self.err("unterminated string")),
                        Some('\\') => {
                            match self.chars.get(self.pos + 1) {
                                // `\'` ends nothing; `\{`, `\}` and `\\` stay escaped until
                                // evaluation, where States.Format needs to see them.
                                Some('\'') => s.push('\''),
                                Some(c) => {
                                    s.push('\\');
                                    s.push(*c);
                                }
                                None => return Err(self.err("dangling escape")),
                            }
                            self.pos += 2;
                        }
                        Some('\'') => {
                            self.pos += 1;
                            break;
                        }
                        Some(c) => {
                            s.push(*c);
                            self.pos += 1;
                        }
                    }
                }
                Ok(Arg::Literal(Value::String(s)))
            }
            Some('$') => {
                let start = self.pos;
                let mut depth = 0i32;
                let mut quote: Option<char> = None;
                while let Some(&c) = self.chars.get(self.pos) {
                    if let Some(q) = quote {
                        if c == q {
                            quote = None;
                        }
                    } else {
                        match c {
                            '\'' | '"' if depth > 0 => quote = Some(c),
                            '[' | '(' => depth += 1,
                            ']' => depth -= 1,
                            ')' if depth == 0 => break,
                            ')' => depth -= 1,
                            ',' if depth == 0 => break,
                            c if c.is_whitespace() && depth == 0 => break,
                            _ => {}
                        }
                    }
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                Ok(Arg::Path(Path::parse(&text)?))
            }
            Some('S') => Ok(Arg::Call(self.call()?)),
            Some(_) => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| *c != ',' && *c != ')' && !c.is_whitespace())
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                match serde_json::from_str::<Value>(&text) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                        Ok(Arg::Literal(v))
                    }
                    _ => Err(self.err(&format!("invalid argument {text:?}"))),
                }
            }
            None => Err(self.err("expected an argument")),
        }
    }
}

fn failure(message: impl Into<String>) -> StatesError {
    StatesError::new(names::INTRINSIC_FAILURE, message)
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), StatesError> {
    if args.len() != n {
        return Err(failure(format!(
            "Function States.{name} expects {n} argument(s), got {}",
            args.len()
        )));
    }
    Ok(())
}

fn int_arg(name: &str, v: &Value) -> Result<i64, StatesError> {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 => Ok(f as i64),
        _ => Err(failure(format!(
            "Function States.{name} expects integer arguments, got {v}"
        ))),
    }
}

fn str_arg<'a>(name: &str, v: &'a Value) -> Result<&'a str, StatesError> {
    v.as_str()
        .ok_or_else(|| failure(format!("Function States.{name} expects a string, got {v}")))
}

fn arr_arg<'a>(name: &str, v: &'a Value) -> Result<&'a Vec<Value>, StatesError> {
    v.as_array()
        .ok_or_else(|| failure(format!("Function States.{name} expects an array, got {v}")))
}

/// JSON equality where 1 == 1.0.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn call(
    name: &str,
    args: Vec<Value>,
    random: &mut dyn FnMut() -> u64,
) -> Result<Value, StatesError> {
    match name {
        "Format" => {
            let Some((template, rest)) = args.split_first() else {
                return Err(failure(
                    "Function States.Format expects at least 1 argument",
                ));
            };
            let template = str_arg(name, template)?;
            let mut out = String::new();
            let mut rest = rest.iter();
            let mut chars = template.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    }
                    '{' if chars.peek() == Some(&'}') => {
                        chars.next();
                        let Some(v) = rest.next() else {
                            return Err(failure(
                                "Function States.Format has more placeholders than arguments",
                            ));
                        };
                        out.push_str(&format_arg(v));
                    }
                    c => out.push(c),
                }
            }
            Ok(Value::String(out))
        }
        "StringToJson" => {
            arity(name, &args, 1)?;
            let s = str_arg(name, &args[0])?;
            if s.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(s)
                .map_err(|e| failure(format!("Function States.StringToJson: invalid JSON: {e}")))
        }
        "JsonToString" => {
            arity(name, &args, 1)?;
            Ok(Value::String(args[0].to_string()))
        }
        "Array" => Ok(Value::Array(args)),
        "ArrayPartition" => {
            arity(name, &args, 2)?;
            let arr = arr_arg(name, &args[0])?;
            let size = int_arg(name, &args[1])?;
            if size <= 0 {
                return Err(failure(
                    "Function States.ArrayPartition: chunk size must be positive",
                ));
            }
            Ok(Value::Array(
                arr.chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "ArrayContains" => {
            arity(name, &args, 2)?;
            let arr = arr_arg(name, &args[0])?;
            Ok(Value::Bool(arr.iter().any(|v| json_eq(v, &args[1]))))
        }
        "ArrayRange" => {
            arity(name, &args, 3)?;
            let (start, end, step) = (
                int_arg(name, &args[0])?,
                int_arg(name, &args[1])?,
                int_arg(name, &args[2])?,
            );
            if step == 0 {
                return Err(failure("Function States.ArrayRange: step must not be 0"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                out.push(Value::from(i));
                if out.len() > 1000 {
                    return Err(failure("Function States.ArrayRange: more than 1000 items"));
                }
                i += step;
            }
            Ok(Value::Array(out))
        }
        "ArrayGetItem" => {
            arity(name, &args, 2)?;
            let arr = arr_arg(name, &args[0])?;
            let i = int_arg(name, &args[1])?;
            usize::try_from(i)
                .ok()
                .and_then(|i| arr.get(i))
                .cloned()
                .ok_or_else(|| {
                    failure(format!(
                        "Function States.ArrayGetItem: index {i} out of range"
                    ))
                })
        }
        "ArrayLength" => {
            arity(name, &args, 1)?;
            Ok(Value::from(arr_arg(name, &args[0])?.len()))
        }
        "ArrayUnique" => {
            arity(name, &args, 1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in arr_arg(name, &args[0])? {
                if !out.iter().any(|o| json_eq(o, v)) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "Base64Encode" => {
            arity(name, &args, 1)?;
            Ok(Value::String(base64_encode(
                str_arg(name, &args[0])?.as_bytes(),
            )))
        }
        "Base64Decode" => {
            arity(name, &args, 1)?;
            let bytes = base64_decode(str_arg(name, &args[0])?)
                .ok_or_else(|| failure("Function States.Base64Decode: invalid base64"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| failure("Function States.Base64Decode: not UTF-8"))
        }
        "Hash" => {
            arity(name, &args, 2)?;
            let data = match &args[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let alg = str_arg(name, &args[1])?;
            crate::hash::hex_digest(alg, data.as_bytes())
                .map(Value::String)
                .ok_or_else(|| {
                    failure(format!("Function States.Hash: unsupported algorithm {alg}"))
                })
        }
        "JsonMerge" => {
            arity(name, &args, 3)?;
            let (Some(a), Some(b)) = (args[0].as_object(), args[1].as_object()) else {
                return Err(failure("Function States.JsonMerge expects two objects"));
            };
            let deep = args[2].as_bool().unwrap_or(false);
            if deep {
                return Err(failure(
                    "Function States.JsonMerge: deep merge is not supported",
                ));
            }
            let mut out: Map<String, Value> = a.clone();
            for (k, v) in b {
                out.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(out))
        }
        "MathRandom" => {
            if args.len() != 2 && args.len() != 3 {
                return Err(failure(
                    "Function States.MathRandom expects 2 or 3 arguments",
                ));
            }
            let (start, end) = (int_arg(name, &args[0])?, int_arg(name, &args[1])?);
            if end <= start {
                return Err(failure(
                    "Function States.MathRandom: end must be greater than start",
                ));
            }
            let span = (end - start) as u64;
            Ok(Value::from(start + (random() % span) as i64))
        }
        "MathAdd" => {
            arity(name, &args, 2)?;
            let mut sum: i64 = 0;
            for a in &args {
                let f = a.as_f64().ok_or_else(|| {
                    failure(format!("Function States.MathAdd expects numbers, got {a}"))
                })?;
                // AWS rounds each operand half up before adding.
                sum = sum.saturating_add((f + 0.5).floor() as i64);
            }
            Ok(Value::Number(Number::from(sum)))
        }
        "StringSplit" => {
            arity(name, &args, 2)?;
            let s = str_arg(name, &args[0])?;
            let delims: Vec<char> = str_arg(name, &args[1])?.chars().collect();
            Ok(Value::Array(
                s.split(|c| delims.contains(&c))
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_owned()))
                    .collect(),
            ))
        }
        "UUID" => {
            arity(name, &args, 0)?;
            let hi = random();
            let lo = random();
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&hi.to_be_bytes());
            b[8..].copy_from_slice(&lo.to_be_bytes());
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Ok(Value::String(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )))
        }
        other => Err(failure(format!(
            "unknown intrinsic function States.{other}"
        ))),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = B64.iter().position(|x| *x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(text: &str, input: Value) -> Result<Value, StatesError> {
        let vars = Map::new();
        let ctx = json!({"StateMachine": {"Name": "my-machine-name"}});
        let scope = Scope {
            input: &input,
            context: &ctx,
            variables: &vars,
        };
        let mut n = 7u64;
        Intrinsic::parse(text)
            .expect("parses")
            .eval(scope, &mut || {
                n += 1;
                n
            })
    }

    #[test]
    fn functions() {
        let v = eval(
            "States.Format('a={} b={} \\{}', $.a, $.b)",
            json!({"a": "x", "b": [1]}),
        );
        assert_eq!(v, Ok(json!("a=x b=[1] {}")));
        let v = eval(
            "States.Format('{} and {}', $.o, 'it\\'s')",
            json!({"o": {"a": 1, "b": [1, "x"]}}),
        );
        assert_eq!(v, Ok(json!("{a=1, b=[1, x]} and it's")));
        assert_eq!(
            eval("States.StringToJson($.s)", json!({"s": "{\"k\":1}"})),
            Ok(json!({"k": 1}))
        );
        assert_eq!(
            eval("States.JsonToString($)", json!({"k": 1})),
            Ok(json!("{\"k\":1}"))
        );
        assert_eq!(
            eval("States.Array('a', 1, true, null)", json!({})),
            Ok(json!(["a", 1, true, null]))
        );
        assert_eq!(
            eval("States.ArrayLength($.a)", json!({"a": [1, 2]})),
            Ok(json!(2))
        );
        assert_eq!(
            eval("States.MathAdd($.a, -1)", json!({"a": 1.5})),
            Ok(json!(1))
        );
        assert_eq!(eval("States.MathAdd(-2.5, 0)", json!({})), Ok(json!(-2)));
        assert_eq!(
            eval("States.StringSplit('a,b,,c', ',')", json!({})),
            Ok(json!(["a", "b", "c"]))
        );
        assert_eq!(
            eval(
                "States.JsonMerge($.a, $.b, false)",
                json!({"a": {"x": 1, "y": 1}, "b": {"y": 2}})
            ),
            Ok(json!({"x": 1, "y": 2}))
        );
        assert_eq!(
            eval("States.ArrayRange(1, 9, 2)", json!({})),
            Ok(json!([1, 3, 5, 7, 9]))
        );
        assert_eq!(
            eval("States.ArrayPartition($.a, 2)", json!({"a": [1, 2, 3]})),
            Ok(json!([[1, 2], [3]]))
        );
        assert_eq!(
            eval("States.Base64Encode('hello')", json!({})),
            Ok(json!("aGVsbG8="))
        );
        assert_eq!(
            eval("States.Base64Decode('aGVsbG8=')", json!({})),
            Ok(json!("hello"))
        );
        assert_eq!(
            eval(
                "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, '-')), -1))",
                json!({})
            ),
            Ok(json!("name"))
        );
        let uuid = eval("States.UUID()", json!({})).expect("uuid");
        assert_eq!(uuid.as_str().map(str::len), Some(36));
        assert!(Intrinsic::parse("States.Nope(1)").is_err());
        assert!(eval("States.ArrayLength($.a)", json!({"a": 1})).is_err());
    }
}
