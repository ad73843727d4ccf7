//! infra/template.yaml against the code: every Task of the definition has its function in
//! the template (built from a binary that exists), every ErrorEquals name is one the code
//! or the platform emits, the tables are the ones the adapters query, the retention numbers
//! are the core's, and events in and out are wired as the code expects.

use std::collections::BTreeSet;

use docpipe_aws::AwsSettings;
use docpipe_aws::events::EVENTBRIDGE_SOURCE;
use docpipe_aws::intake::{DROP_PREFIX, MESSAGE_PREFIX};
use docpipe_aws::jobs::{INDEX_BY_CREATED, INDEX_BY_OWNER, TTL_ATTRIBUTE};
use docpipe_aws::reconcile::code_of;
use docpipe_core::ErrorCode;
use docpipe_core::events::JOB_STATUS_V1;
use docpipe_core::retention::Retention;
use docpipe_core::stages::Stage;
use serde_json::Value as Json;
use serde_norway::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn template() -> Value {
    serde_norway::from_str(&read("infra/template.yaml")).expect("template parses")
}

fn definition() -> Json {
    serde_json::from_str(&read("statemachine/pipeline.asl.json")).expect("definition parses")
}

fn resources(t: &Value) -> &serde_norway::Mapping {
    t["Resources"].as_mapping().expect("Resources")
}

/// `!GetAtt X.Arn` as serde_norway reads the tag.
fn get_att_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "GetAtt" => t
            .value
            .as_str()
            .and_then(|s| s.strip_suffix(".Arn"))
            .map(str::to_owned),
        _ => None,
    }
}

/// Every state of the definition, nested ones included.
fn states(def: &Json) -> Vec<(String, Json)> {
    let mut out = Vec::new();
    if let Some(map) = def["States"].as_object() {
        for (name, state) in map {
            out.push((name.clone(), state.clone()));
            for branch in state["Branches"].as_array().into_iter().flatten() {
                out.extend(states(branch));
            }
            if state["Iterator"].is_object() {
                out.extend(states(&state["Iterator"]));
            }
            if state["ItemProcessor"].is_object() {
                out.extend(states(&state["ItemProcessor"]));
            }
        }
    }
    out
}

fn bins(manifest: &str) -> BTreeSet<String> {
    read(manifest)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_task_resource_has_its_function_in_the_template() {
    let t = template();
    let res = resources(&t);
    let machine = &res["PipelineStateMachine"]["Properties"];
    assert_eq!(
        machine["DefinitionUri"].as_str(),
        Some("../statemachine/pipeline.asl.json")
    );
    let subs = machine["DefinitionSubstitutions"]
        .as_mapping()
        .expect("substitutions");
    let binaries: BTreeSet<String> = bins("functions/Cargo.toml")
        .union(&bins("functions/api/Cargo.toml"))
        .cloned()
        .collect();
    let mut used = BTreeSet::new();
    for (name, state) in states(&definition()) {
        if state["Type"] != "Task" {
            continue;
        }
        let resource = state["Resource"].as_str().expect("Resource");
        let stage = Stage::from_resource(resource)
            .unwrap_or_else(|| panic!("{name}: {resource} is no stage"));
        let key = resource.trim_start_matches("${").trim_end_matches('}');
        let function = subs
            .get(key)
            .and_then(get_att_target)
            .unwrap_or_else(|| panic!("{name}: no substitution {key} = !GetAtt <Function>.Arn"));
        let f = &res[function.as_str()];
        assert_eq!(
            f["Type"].as_str(),
            Some("AWS::Serverless::Function"),
            "{function}"
        );
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{function}"
        );
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("Binary");
        assert_eq!(
            binary,
            stage.as_str().replace('_', "-"),
            "{function} runs the {stage} stage"
        );
        assert!(binaries.contains(binary), "{function}: no [[bin]] {binary}");
        // The state machine may invoke it.
        let invokable = machine["Policies"]
            .as_sequence()
            .expect("policies")
            .iter()
            .any(|p| {
                p["LambdaInvokePolicy"]["FunctionName"]
                    == Value::Tagged(Box::new(serde_norway::value::TaggedValue {
                        tag: serde_norway::value::Tag::new("Ref"),
                        value: Value::String(function.clone()),
                    }))
            });
        assert!(invokable, "the state machine may not invoke {function}");
        used.insert(key.to_owned());
    }
    let declared: BTreeSet<String> = subs
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    assert_eq!(declared, used, "substitutions the definition does not use");
    assert_eq!(used.len(), Stage::ALL.len());
}

#[test]
fn every_error_equals_name_is_one_that_is_emitted() {
    let ours: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.error_name().as_str().to_owned())
        .collect();
    // What Lambda's service and Step Functions raise themselves for a Task.
    let platform = [
        "States.ALL",
        "States.Timeout",
        "States.TaskFailed",
        "States.HeartbeatTimeout",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ];
    let mut matched = BTreeSet::new();
    for (name, state) in states(&definition()) {
        for rule in ["Retry", "Catch"] {
            for entry in state[rule].as_array().into_iter().flatten() {
                for e in entry["ErrorEquals"].as_array().into_iter().flatten() {
                    let e = e.as_str().expect("string");
                    assert!(
                        ours.contains(e) || platform.contains(&e),
                        "{name}.{rule}: nobody emits {e}"
                    );
                    matched.insert(e.to_owned());
                }
            }
        }
    }
    // The names the definition routes specially are emitted by the code.
    for special in ["DocPipe.Transient", "DocPipe.Cancelled"] {
        assert!(
            matched.contains(special) && ours.contains(special),
            "{special}"
        );
    }
}

#[test]
fn tables_match_what_the_adapters_query() {
    let t = template();
    let res = resources(&t);
    let names = AwsSettings::for_env("${Env}");
    let table = |logical: &str, expected_name: &str| -> Value {
        let p = res[logical]["Properties"].clone();
        match &p["TableName"] {
            Value::Tagged(tag) => assert_eq!(tag.value.as_str(), Some(expected_name), "{logical}"),
            other => panic!("{logical}: TableName {other:?}"),
        }
        assert_eq!(
            p["BillingMode"].as_str(),
            Some("PAY_PER_REQUEST"),
            "{logical}"
        );
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
            Some(true),
            "{logical}"
        );
        p
    };
    let key = |p: &Value| {
        p["KeySchema"][0]["AttributeName"]
            .as_str()
            .map(str::to_owned)
    };
    let indexes = |p: &Value| -> Vec<(String, Vec<String>)> {
        p["GlobalSecondaryIndexes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    i["IndexName"].as_str().unwrap_or_default().to_owned(),
                    i["KeySchema"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| k["AttributeName"].as_str().map(str::to_owned))
                        .collect(),
                )
            })
            .collect()
    };
    let ttl = |p: &Value| {
        p["TimeToLiveSpecification"]["AttributeName"]
            .as_str()
            .map(str::to_owned)
    };

    let jobs = table("JobsTable", &names.jobs_table);
    assert_eq!(key(&jobs).as_deref(), Some("job_id"));
    assert_eq!(
        indexes(&jobs),
        vec![
            (
                INDEX_BY_OWNER.to_owned(),
                vec!["owner".to_owned(), "created_key".to_owned()]
            ),
            (
                INDEX_BY_CREATED.to_owned(),
                vec!["list_pk".to_owned(), "created_key".to_owned()]
            ),
        ]
    );
    assert_eq!(ttl(&jobs).as_deref(), Some(TTL_ATTRIBUTE));
    let keys = table("ApiKeysTable", &names.api_keys_table);
    assert_eq!(key(&keys).as_deref(), Some("name"));
    assert_eq!(
        indexes(&keys),
        vec![(
            docpipe_aws::api_keys::INDEX_BY_HASH.to_owned(),
            vec!["key_hash".to_owned()]
        )]
    );
    let idem = table("IdempotencyTable", &names.idempotency_table);
    assert_eq!(
        (key(&idem).as_deref(), ttl(&idem).as_deref()),
        (Some("owner_key"), Some(TTL_ATTRIBUTE))
    );
    let cache = table("PreviewCacheTable", &names.preview_cache_table);
    assert_eq!(
        (key(&cache).as_deref(), ttl(&cache).as_deref()),
        (Some("blueprint_hash"), Some(TTL_ATTRIBUTE))
    );
    let hooks = table("WebhooksTable", &names.webhooks_table);
    let keys: Vec<&str> = hooks["KeySchema"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|k| k["AttributeName"].as_str())
        .collect();
    assert_eq!(keys, ["owner", "webhook_id"]);
    for t in [&jobs, &idem, &cache, &hooks] {
        assert_eq!(
            t["TimeToLiveSpecification"]["Enabled"].as_bool(),
            Some(true)
        );
    }
}

fn tagged(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            t.value.as_str().unwrap_or_default().to_owned(),
        )),
        _ => None,
    }
}

#[test]
fn bucket_lifecycles_are_the_core_retention() {
    let t = template();
    let res = resources(&t);
    let days = Retention::default().objects_secs / 86_400;
    for bucket in ["DocumentsBucket", "ResultsBucket"] {
        let rules = res[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
            .as_sequence()
            .expect("rules");
        let whole: Vec<&Value> = rules.iter().filter(|r| r.get("Prefix").is_none()).collect();
        assert_eq!(whole.len(), 1, "{bucket}: one rule for every object");
        assert_eq!(
            whole[0]["ExpirationInDays"].as_u64(),
            Some(days),
            "{bucket}"
        );
    }
    // Drops (and presigned uploads) and intake documents never taken expire too.
    let rules = res["DocumentsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .expect("rules");
    for prefix in [DROP_PREFIX, MESSAGE_PREFIX] {
        assert!(
            rules
                .iter()
                .any(|r| r["Prefix"].as_str() == Some(prefix) && r["Status"] == "Enabled"),
            "no lifecycle rule for {prefix}"
        );
    }
}

#[test]
fn events_in_and_out_are_wired_as_the_code_expects() {
    let t = template();
    let res = resources(&t);
    let binaries = bins("functions/Cargo.toml");
    for (function, binary) in [
        ("PublishEventsFunction", "publish-events"),
        ("DeliverWebhooksFunction", "deliver-webhooks"),
        ("IntakeFunction", "intake"),
        ("ReconcileFunction", "reconcile"),
    ] {
        let f = &res[function];
        assert_eq!(
            f["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some(binary)
        );
        assert!(binaries.contains(binary), "no [[bin]] {binary}");
    }
    // Every function's variables are settings the code knows.
    for (id, r) in res {
        if r["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let vars = r["Properties"]["Environment"]["Variables"].as_mapping();
        for name in vars.into_iter().flat_map(|m| m.keys()) {
            let name = name.as_str().expect("name");
            let setting = name.strip_prefix("DOCPIPE_").expect("DOCPIPE_ prefix");
            assert!(
                AwsSettings::is_known(&setting.to_ascii_lowercase()),
                "{id:?}: {name} is no setting"
            );
        }
    }

    // The jobs table's stream feeds the publisher, which puts on the bus.
    let jobs = &res["JobsTable"]["Properties"];
    assert_eq!(
        jobs["StreamSpecification"]["StreamViewType"].as_str(),
        Some("NEW_AND_OLD_IMAGES")
    );
    let publish = &res["PublishEventsFunction"]["Properties"];
    let stream = &publish["Events"]["JobChanges"];
    assert_eq!(stream["Type"].as_str(), Some("DynamoDB"));
    assert_eq!(
        tagged(&stream["Properties"]["Stream"]),
        Some(("GetAtt".into(), "JobsTable.StreamArn".into()))
    );
    assert_eq!(
        tagged(&publish["Environment"]["Variables"]["DOCPIPE_EVENT_BUS"]),
        Some(("Ref".into(), "EventBus".into()))
    );
    // The rule on the bus matches what the publisher puts and feeds the webhook queue.
    let rule = &res["JobStatusToWebhooksRule"]["Properties"];
    assert_eq!(
        tagged(&rule["EventBusName"]),
        Some(("Ref".into(), "EventBus".into()))
    );
    assert_eq!(
        rule["EventPattern"]["source"][0].as_str(),
        Some(EVENTBRIDGE_SOURCE)
    );
    assert_eq!(
        rule["EventPattern"]["detail-type"][0].as_str(),
        Some(JOB_STATUS_V1)
    );
    assert_eq!(
        tagged(&rule["Targets"][0]["Arn"]),
        Some(("GetAtt".into(), "WebhookQueue.Arn".into()))
    );
    // Both queues redrive to their dead-letter queue, and an alarm watches each of those.
    for (queue, dlq, alarm, consumer) in [
        (
            "WebhookQueue",
            "WebhookDeadLetterQueue",
            "WebhookDeadLettersAlarm",
            "DeliverWebhooksFunction",
        ),
        (
            "IntakeQueue",
            "IntakeDeadLetterQueue",
            "IntakeDeadLettersAlarm",
            "IntakeFunction",
        ),
    ] {
        let q = &res[queue]["Properties"];
        assert_eq!(
            tagged(&q["RedrivePolicy"]["deadLetterTargetArn"]),
            Some(("GetAtt".into(), format!("{dlq}.Arn"))),
            "{queue}"
        );
        assert!(q["RedrivePolicy"]["maxReceiveCount"].as_u64().is_some());
        let a = &res[alarm]["Properties"];
        assert_eq!(
            tagged(&a["Dimensions"][0]["Value"]),
            Some(("GetAtt".into(), format!("{dlq}.QueueName")))
        );
        let events = res[consumer]["Properties"]["Events"]
            .as_mapping()
            .expect("events");
        let sqs = events.values().next().expect("one event");
        assert_eq!(sqs["Type"].as_str(), Some("SQS"));
        assert_eq!(
            tagged(&sqs["Properties"]["Queue"]),
            Some(("GetAtt".into(), format!("{queue}.Arn")))
        );
        // Partial batches: a refused or failed message never takes its batch with it.
        assert_eq!(
            sqs["Properties"]["FunctionResponseTypes"][0].as_str(),
            Some("ReportBatchItemFailures")
        );
    }
    // The drop: object-created under incoming/ to the intake queue.
    let drop = &res["DocumentsBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
        [0];
    assert_eq!(drop["Event"].as_str(), Some("s3:ObjectCreated:*"));
    assert_eq!(
        tagged(&drop["Queue"]),
        Some(("GetAtt".into(), "IntakeQueue.Arn".into()))
    );
    assert_eq!(
        drop["Filter"]["S3Key"]["Rules"][0]["Value"].as_str(),
        Some(DROP_PREFIX)
    );
    // The reconciler hears exactly the statuses it has a code for.
    let pattern = &res["ReconcileFunction"]["Properties"]["Events"]["ExecutionEnded"]["Properties"]
        ["Pattern"];
    let statuses: Vec<&str> = pattern["detail"]["status"]
        .as_sequence()
        .expect("statuses")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(statuses.len(), 3);
    for s in statuses {
        assert!(code_of(s).is_some(), "{s}");
    }
    assert_eq!(
        tagged(&pattern["detail"]["stateMachineArn"][0]),
        Some(("Ref".into(), "PipelineStateMachine".into()))
    );
    let behind = &res["EventsBehindAlarm"]["Properties"];
    assert_eq!(behind["MetricName"].as_str(), Some("IteratorAge"));
    assert_eq!(
        tagged(&behind["Dimensions"][0]["Value"]),
        Some(("Ref".into(), "PublishEventsFunction".into()))
    );
    let reconciled = &res["JobsReconciledAlarm"]["Properties"];
    assert_eq!(reconciled["MetricName"].as_str(), Some("JobsReconciled"));
}

/// deploy.yml runs only after the CI workflow passed, on the commit CI ran on.
#[test]
fn deploy_runs_only_after_ci_passed_on_the_same_commit() {
    let ci: Value = serde_norway::from_str(&read(".github/workflows/ci.yml")).expect("ci.yml");
    let deploy: Value =
        serde_norway::from_str(&read(".github/workflows/deploy.yml")).expect("deploy.yml");
    let ci_name = ci["name"].as_str().expect("ci has a name");
    let on = deploy["on"].as_mapping().expect("on");
    assert_eq!(
        on.keys().filter_map(Value::as_str).collect::<Vec<_>>(),
        ["workflow_run"],
        "deploy.yml must start from CI's completion only (no push or tag trigger of its own)"
    );
    let run = &deploy["on"]["workflow_run"];
    assert_eq!(run["workflows"][0].as_str(), Some(ci_name));
    assert_eq!(run["types"][0].as_str(), Some("completed"));
    // Tags run CI, so prod deploys are gated too.
    assert!(
        ci["on"]["push"]["tags"]
            .as_sequence()
            .is_some_and(|t| !t.is_empty())
    );
    for (name, job) in deploy["jobs"].as_mapping().expect("jobs") {
        let cond = job["if"].as_str().unwrap_or_default();
        assert!(
            cond.contains("github.event.workflow_run.conclusion == 'success'"),
            "job {name:?} must run only when CI succeeded: {cond:?}"
        );
        let checkout = job["steps"]
            .as_sequence()
            .expect("steps")
            .iter()
            .find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout"))
            })
            .expect("a checkout step");
        assert_eq!(
            checkout["with"]["ref"].as_str(),
            Some("${{ github.event.workflow_run.head_sha }}"),
            "job {name:?} must deploy the commit CI ran on"
        );
    }
}
