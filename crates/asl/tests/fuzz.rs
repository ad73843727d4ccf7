//! Property-based fuzzing of everything in docpipe-asl that reads text a definition's
//! author controls: the definition parser and validator, JSONPath (paths and reference
//! paths), intrinsic functions and JSONata expressions. None may panic, whatever the input.
//!
//! Case counts are small so the suite stays fast; `PROPTEST_CASES=N` raises them
//! (`bench/fuzz.sh` runs them longer).

use std::path::PathBuf;
use std::sync::OnceLock;

use docpipe_asl::Definition;
use docpipe_asl::intrinsics::Intrinsic;
use docpipe_asl::jsonata::{Env, Expr};
use docpipe_asl::path::{Path, ReferencePath, Scope, parse_reference};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value, json};

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    // A fixed seed in the suite (reproducible); bench/fuzz.sh sets DOCPIPE_FUZZ_SEED.
    let seed = std::env::var("DOCPIPE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20260201);
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    }
}

/// Words of the ASL vocabulary, so generated objects look like definitions often enough to
/// get past the first checks.
const ASL_WORDS: &[&str] = &[
    "Type",
    "States",
    "StartAt",
    "Next",
    "End",
    "Resource",
    "Parameters",
    "Arguments",
    "ResultPath",
    "InputPath",
    "OutputPath",
    "ResultSelector",
    "Output",
    "Assign",
    "QueryLanguage",
    "Choices",
    "Default",
    "Variable",
    "Condition",
    "StringEquals",
    "NumericLessThan",
    "IsPresent",
    "And",
    "Or",
    "Not",
    "Retry",
    "Catch",
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "Branches",
    "Iterator",
    "ItemProcessor",
    "ProcessorConfig",
    "ItemsPath",
    "Items",
    "ItemSelector",
    "MaxConcurrency",
    "ToleratedFailurePercentage",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "TimeoutSeconds",
    "TimeoutSecondsPath",
    "HeartbeatSeconds",
    "Error",
    "Cause",
    "ErrorPath",
    "CausePath",
    "Comment",
    "Version",
    "Task",
    "Pass",
    "Choice",
    "Wait",
    "Succeed",
    "Fail",
    "Parallel",
    "Map",
    "JSONata",
    "JSONPath",
    "States.ALL",
    "States.TaskFailed",
    "A",
    "B",
    "x.$",
    "y",
    "Result",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(ASL_WORDS).prop_map(str::to_owned),
        1 => "[a-zA-Z.$]{0,6}",
    ]
}

/// Short strings that are often paths, intrinsics or JSONata.
fn asl_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => word(),
        2 => path_text(),
        1 => intrinsic_text(),
        1 => jsonata_text().prop_map(|e| format!("{{% {e} %}}")),
        1 => any::<String>(),
    ]
}

/// Arbitrary JSON with ASL words as keys and strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop_oneof![Just(0), Just(-1), Just(1), Just(99_999_999)].prop_map(|n| json!(n)),
        asl_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A definition-shaped document: a `States` map of typed states with arbitrary fields.
fn definition_like() -> impl Strategy<Value = Value> {
    let state = (
        proptest::sample::select(&[
            "Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map", "Bogus",
        ]),
        prop::collection::vec((word(), json_value()), 0..6),
    )
        .prop_map(|(ty, fields)| {
            let mut m: Map<String, Value> = fields.into_iter().collect();
            m.insert("Type".into(), json!(ty));
            Value::Object(m)
        });
    (
        prop::collection::vec((word(), state), 1..5),
        word(),
        proptest::option::of(proptest::sample::select(&["JSONata", "JSONPath", "Other"])),
    )
        .prop_map(|(states, start, ql)| {
            let mut def = json!({
                "StartAt": start,
                "States": Value::Object(states.into_iter().collect()),
            });
            if let Some(ql) = ql {
                def["QueryLanguage"] = json!(ql);
            }
            def
        })
}

/// One edit of a JSON tree, addressed by the index of a node in depth-first order.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, Value),
    Remove(usize),
    Insert(usize, String, Value),
    Rename(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), json_value()).prop_map(|(i, v)| Edit::Replace(i, v)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), word(), json_value()).prop_map(|(i, k, v)| Edit::Insert(i, k, v)),
        (any::<usize>(), word()).prop_map(|(i, k)| Edit::Rename(i, k)),
    ]
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// The `n`-th node (depth-first, the root first) and applies `f` to it.
fn with_node(v: &mut Value, n: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *n == 0 {
        f(v);
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| with_node(c, n, f)),
        Value::Object(o) => o.values_mut().any(|c| with_node(c, n, f)),
        _ => false,
    }
}

fn apply(doc: &mut Value, e: &Edit) {
    let total = count(doc);
    match e {
        Edit::Replace(i, new) => {
            let mut n = i % total;
            with_node(doc, &mut n, &mut |v| *v = new.clone());
        }
        Edit::Remove(i) => {
            let mut n = i % total;
            let pick = *i;
            with_node(doc, &mut n, &mut |v| match v {
                Value::Object(o) if !o.is_empty() => {
                    let key = o.keys().nth(pick % o.len()).cloned();
                    if let Some(k) = key {
                        o.remove(&k);
                    }
                }
                Value::Array(a) if !a.is_empty() => {
                    a.remove(pick % a.len());
                }
                _ => {}
            });
        }
        Edit::Insert(i, key, new) => {
            let mut n = i % total;
            with_node(doc, &mut n, &mut |v| match v {
                Value::Object(o) => {
                    o.insert(key.clone(), new.clone());
                }
                Value::Array(a) => a.push(new.clone()),
                _ => {}
            });
        }
        Edit::Rename(i, key) => {
            let mut n = i % total;
            let pick = *i;
            with_node(doc, &mut n, &mut |v| {
                if let Value::Object(o) = v
                    && !o.is_empty()
                {
                    let old = o.keys().nth(pick % o.len()).cloned();
                    if let Some(old) = old
                        && let Some(x) = o.remove(&old)
                    {
                        o.insert(key.clone(), x);
                    }
                }
            });
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipeline() -> &'static Value {
    static DEF: OnceLock<Value> = OnceLock::new();
    DEF.get_or_init(|| {
        let text = std::fs::read_to_string(repo().join("statemachine/pipeline.asl.json"))
            .expect("the pipeline definition");
        serde_json::from_str(&text).expect("valid JSON")
    })
}

/// The conformance corpus's definitions (`../shared/asl-conformance`), when present.
fn conformance() -> &'static [Value] {
    static DEFS: OnceLock<Vec<Value>> = OnceLock::new();
    DEFS.get_or_init(|| {
        let dir = repo().join("../shared/asl-conformance/cases");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!(
                "SKIPPING the conformance mutations: {} is absent",
                dir.display()
            );
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path().join("definition.json")))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        paths
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    })
}

fn path_text() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        Just(".a".to_owned()),
        Just(".b".to_owned()),
        Just("..a".to_owned()),
        Just(".*".to_owned()),
        Just("[0]".to_owned()),
        Just("[-1]".to_owned()),
        Just("[*]".to_owned()),
        Just("[1:3]".to_owned()),
        Just("[::-1]".to_owned()),
        Just("['k']".to_owned()),
        Just("[?(@.a > 1)]".to_owned()),
        Just("[?(@.a == 'x')]".to_owned()),
        Just(".length()".to_owned()),
        Just("[0,1]".to_owned()),
        "[.\\[\\]'\"*?@()0-9a-z:,=<>!-]{1,4}",
    ];
    (
        prop_oneof![Just("$"), Just("$$"), Just("$v"), Just(""), Just("$.")],
        prop::collection::vec(seg, 0..6),
    )
        .prop_map(|(root, segs)| format!("{root}{}", segs.concat()))
}

fn intrinsic_text() -> impl Strategy<Value = String> {
    let name = proptest::sample::select(&[
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
        "Nope",
    ]);
    let arg = prop_oneof![
        Just("$.a".to_owned()),
        Just("$".to_owned()),
        Just("$$.Execution.Id".to_owned()),
        Just("'text {}'".to_owned()),
        Just("'{}{}'".to_owned()),
        Just("'\\\\'".to_owned()),
        Just("'SHA-256'".to_owned()),
        Just("'MD5'".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        (-5i64..20).prop_map(|n| n.to_string()),
        Just("1000000000".to_owned()),
        Just("-1000000000".to_owned()),
        Just("1.5".to_owned()),
        Just("States.Array(1, 2)".to_owned()),
        "[a-z0-9'(),$. ]{0,6}",
    ];
    (name, prop::collection::vec(arg, 0..5))
        .prop_map(|(n, args)| format!("States.{n}({})", args.join(", ")))
}

fn jsonata_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        proptest::sample::select(&[
            "$states.input",
            "$states.context",
            "$states.input.a",
            "a",
            "b.c",
            "$x",
            "$",
            "$$",
            "1",
            "0",
            "-1",
            "3.5",
            "1e308",
            "'s'",
            "\"t\"",
            "true",
            "false",
            "null",
            "+",
            "-",
            "*",
            "/",
            "%",
            "&",
            "=",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "and",
            "or",
            "in",
            "~>",
            "?",
            ":",
            "..",
            ".",
            "[",
            "]",
            "(",
            ")",
            "{",
            "}",
            ",",
            ";",
            ":=",
            "@",
            "#",
            "^(",
            "$sum(",
            "$count(",
            "$map(",
            "$filter(",
            "$reduce(",
            "$string(",
            "$number(",
            "$substring(",
            "$join(",
            "$split(",
            "$keys(",
            "$lookup(",
            "$each(",
            "$sort(",
            "$reverse(",
            "$append(",
            "$exists(",
            "$length(",
            "$uppercase(",
            "$partition(",
            "$range(",
            "$hash(",
            "$random()",
            "$uuid()",
            "$parse(",
            "$formatNumber(",
            "$pad(",
            "$replace(",
            "$match(",
            "$power(",
            "$sqrt(",
            "$zip(",
            "$merge(",
            "$spread(",
            "$sift(",
            "$eval(",
            "function($v){$v}",
            "function($f){$f($f)}",
            "/[a-z]+/",
            "**",
            "[1..1000000000]",
        ])
        .prop_map(str::to_owned),
        "[ -~]{1,3}",
    ];
    prop::collection::vec(token, 1..12).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_json_definitions_never_panic(doc in json_value()) {
        let _ = Definition::from_value(&doc);
        let _ = Definition::parse(&doc.to_string());
    }

    #[test]
    fn definition_shaped_documents_never_panic(doc in definition_like()) {
        let _ = Definition::from_value(&doc);
    }

    #[test]
    fn arbitrary_text_never_panics_the_parser(text in any::<String>()) {
        let _ = Definition::parse(&text);
    }

    #[test]
    fn mutations_of_the_pipeline_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
        let mut doc = pipeline().clone();
        for e in &edits {
            apply(&mut doc, e);
        }
        let _ = Definition::from_value(&doc);
    }

    #[test]
    fn mutations_of_conformance_definitions_never_panic(
        pick in any::<usize>(),
        edits in prop::collection::vec(edit(), 1..5),
    ) {
        let defs = conformance();
        if !defs.is_empty() {
            let mut doc = defs[pick % defs.len()].clone();
            for e in &edits {
                apply(&mut doc, e);
            }
            let _ = Definition::from_value(&doc);
        }
    }

    #[test]
    fn paths_parse_and_select_without_panics(
        text in path_text(),
        input in json_value(),
        context in json_value(),
    ) {
        let mut variables = Map::new();
        variables.insert("v".into(), input.clone());
        let scope = Scope { input: &input, context: &context, variables: &variables };
        if let Ok(p) = Path::parse(&text) {
            let _ = p.select(scope);
            let _ = p.select_required(scope);
        }
        let _ = parse_reference(&text);
        if let Ok(r) = ReferencePath::parse(&text) {
            let _ = r.write(input.clone(), context.clone());
        }
    }

    #[test]
    fn intrinsics_parse_and_evaluate_without_panics(text in intrinsic_text(), input in json_value()) {
        let variables = Map::new();
        let context = json!({"Execution": {"Id": "arn:x", "Name": "n"}});
        let scope = Scope { input: &input, context: &context, variables: &variables };
        if let Ok(call) = Intrinsic::parse(&text) {
            let mut seed = 7u64;
            let mut random = move || {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                seed
            };
            let _ = call.eval(scope, &mut random);
        }
    }

    #[test]
    fn jsonata_parses_and_evaluates_without_panics(text in jsonata_text(), input in json_value()) {
        if let Ok(expr) = Expr::parse(&text) {
            let context = json!({"Execution": {"Id": "arn:x"}});
            let mut variables = Map::new();
            variables.insert("x".into(), json!([1, 2, 3]));
            let env = Env {
                input: &input,
                context: &context,
                result: None,
                error_output: None,
                variables: &variables,
                seed: 1,
            };
            let _ = expr.eval(&env, "Output");
        }
    }
}
