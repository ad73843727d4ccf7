//! The functions' roles in infra/template.yaml against the code: every SDK operation the
//! adapters call has its IAM action listed (docpipe-aws `permissions`), each function's
//! role grants every action its code path needs on exactly the resource it needs, and
//! nothing else. A new adapter call, or a grant widened "to make it work", fails here.

use std::collections::BTreeSet;

use docpipe_aws::permissions::{Function, SDK_OPERATIONS, needs};
use serde_norway::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn template() -> Value {
    serde_norway::from_str(&read("infra/template.yaml")).expect("template parses")
}

/// A resource as text: `!GetAtt X.Arn` -> `${X.Arn}`, `!Ref X` -> `${X}`, `!Sub s` -> `s`.
fn render(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(render).collect(),
        Value::Tagged(t) => {
            let inner = t.value.as_str().unwrap_or_default();
            match t.tag.to_string().trim_start_matches('!') {
                "GetAtt" | "Ref" => vec![format!("${{{inner}}}")],
                "Sub" => vec![inner.to_owned()],
                other => panic!("unexpected tag {other} in a policy resource"),
            }
        }
        other => panic!("unexpected policy resource {other:?}"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

/// Every (action, resource) the function's inline policies allow.
fn granted(t: &Value, logical_id: &str) -> BTreeSet<(String, String)> {
    let f = &t["Resources"][logical_id];
    assert_eq!(
        f["Type"].as_str(),
        Some("AWS::Serverless::Function"),
        "{logical_id}"
    );
    let mut out = BTreeSet::new();
    for policy in f["Properties"]["Policies"].as_sequence().expect("Policies") {
        let statements = policy["Statement"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{logical_id}: only inline statements are checked"));
        for s in statements {
            assert_eq!(s["Effect"].as_str(), Some("Allow"), "{logical_id}");
            for action in strings(&s["Action"]) {
                for resource in render(&s["Resource"]) {
                    out.insert((action.clone(), resource));
                }
            }
        }
    }
    out
}

fn needed(function: Function) -> BTreeSet<(String, String)> {
    needs(function)
        .into_iter()
        .flat_map(|n| {
            n.target
                .rendered()
                .into_iter()
                .map(move |r| (n.action.to_owned(), r))
        })
        .collect()
}

#[test]
fn every_role_grants_what_its_code_needs_and_nothing_more() {
    let t = template();
    let mut problems = Vec::new();
    for f in Function::ALL {
        let id = f.logical_id();
        let granted = granted(&t, id);
        let needed = needed(f);
        for (action, resource) in needed.difference(&granted) {
            problems.push(format!("{id} lacks {action} on {resource}"));
        }
        for (action, resource) in granted.difference(&needed) {
            problems.push(format!(
                "{id} is granted {action} on {resource}, which no code path of it needs"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// SDK calls in the adapters' sources: `<client>.<operation>()` with the receiver one of
/// the SDK client fields, whitespace and line breaks ignored.
fn sdk_calls(source: &str) -> BTreeSet<String> {
    const RECEIVERS: &[&str] = &[".client.", ".s3.", "s3.", ".dynamodb.", "client."];
    const NOT_OPERATIONS: &[&str] = &["clone", "config", "as_ref"];
    let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = BTreeSet::new();
    for receiver in RECEIVERS {
        let mut rest = compact.as_str();
        while let Some(at) = rest.find(receiver) {
            rest = &rest[at + receiver.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty()
                && rest[name.len()..].starts_with("()")
                && !NOT_OPERATIONS.contains(&name.as_str())
            {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn every_sdk_call_of_the_adapters_has_its_action_listed() {
    let dir = format!("{ROOT}/crates/aws/src");
    let mut called = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("adapters") {
        let path = entry.expect("entry").path();
        // permissions.rs is the list itself; schema.rs creates tables for emulators and
        // tests (no deployed function calls it: checked below).
        if path.extension().is_some_and(|e| e == "rs")
            && path
                .file_name()
                .is_some_and(|n| n != "permissions.rs" && n != "schema.rs")
        {
            let source = std::fs::read_to_string(&path).expect("source");
            // Only the code, not its tests.
            let code = source.split("#[cfg(test)]").next().unwrap_or_default();
            called.extend(sdk_calls(code));
        }
    }
    for f in ["functions/src/lib.rs", "functions/api/src/main.rs"] {
        assert!(
            !read(f).contains("schema::"),
            "{f} creates tables: its role would need more than permissions::needs lists"
        );
    }
    let listed: BTreeSet<String> = SDK_OPERATIONS
        .iter()
        .map(|(op, _)| (*op).to_owned())
        .collect();
    let unlisted: Vec<_> = called.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "SDK operations called by docpipe-aws without an IAM action in permissions::SDK_OPERATIONS: {unlisted:?}"
    );
    let stale: Vec<_> = listed.difference(&called).collect();
    assert!(
        stale.is_empty(),
        "permissions::SDK_OPERATIONS lists operations no adapter calls: {stale:?}"
    );
    // And every listed action is needed by some function (else a call has no grant).
    let needed_actions: BTreeSet<&str> = Function::ALL
        .into_iter()
        .flat_map(needs)
        .map(|n| n.action)
        .collect();
    for (op, action) in SDK_OPERATIONS {
        assert!(
            needed_actions.contains(action),
            "{op} ({action}) is called but no function's needs name it"
        );
    }
}

#[test]
fn the_scanner_finds_calls_across_lines() {
    let src = "let out = self\n    .client\n    .get_item()\n    .table_name(t);\nstaging.s3.put_object().bucket(b); self.client.clone()";
    let found: Vec<String> = sdk_calls(src).into_iter().collect();
    assert_eq!(found, ["get_item", "put_object"]);
}
