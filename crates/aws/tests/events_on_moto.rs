//! Events in and out on moto's server: an S3 drop through SQS to a started execution, a
//! malformed intake message in the dead-letter queue with its reason, the reconciler
//! failing a timed-out execution's job, TTL attributes on every record that expires, and
//! status events put on EventBridge, read back from the queue a rule sends them to,
//! checked against `schemas/job.status.v1.schema.json` and delivered to a webhook receiver
//! on 127.0.0.1 with valid signatures.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use docpipe_aws::events::{EVENTBRIDGE_SOURCE, events_of_stream_batch};
use docpipe_aws::intake::Starter;
use docpipe_aws::reconcile::{ExecutionStatusChange, Reconciled, reconcile};
use docpipe_aws::sqs::{Queue, REASON_ATTRIBUTE, SqsBatch, SqsMessage, queue_url_of_arn};
use docpipe_aws::webhooks::{Delivered, Deliverer};
use docpipe_aws::{AwsAdapters, SystemClock};
use docpipe_core::events::{JOB_STATUS_V1, JOB_STATUS_V1_SCHEMA};
use docpipe_core::keys::hash_key;
use docpipe_core::lifecycle;
use docpipe_core::retention::Retention;
use docpipe_core::stages::{VerifyOutput, dedupe_key};
use docpipe_core::webhooks::{RetryPolicy, Webhook, WebhookSecret};
use docpipe_core::{
    ApiKey, CachedResult, DocumentKind, ErrorCode, IdempotencyRecord, IdempotencyStore, Job,
    JobFilter, JobId, JobPatch, JobStatus, JobStore, KeyStore, ObjectKey, ResultCache, StageError,
};
use docpipe_fetch::{FetchPolicy, HttpFetcher};
use serde_json::{Value, json};
use support::{Moto, deployed};

macro_rules! moto_or_skip {
    () => {
        match Moto::start().await {
            Some(m) => m,
            None => return,
        }
    };
}

const ACCOUNT: &str = "123456789012";

/// A queue: its URL and ARN.
async fn queue(a: &AwsAdapters, name: &str) -> (String, String) {
    let url = a
        .sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let arn = a
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|m| m.get(&QueueAttributeName::QueueArn).cloned())
        .expect("arn");
    (url, arn)
}

async fn receive(a: &AwsAdapters, url: &str) -> Vec<Message> {
    a.sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default()
}

/// The messages as Lambda's SQS event source hands them to a function.
fn lambda_batch(messages: &[Message], queue_arn: &str) -> SqsBatch {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let system = m.attributes();
            let attr = |name: MessageSystemAttributeName| {
                system.and_then(|s| s.get(&name)).cloned()
            };
            let user: serde_json::Map<String, Value> = m
                .message_attributes()
                .map(|attrs| {
                    attrs
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                json!({"stringValue": v.string_value(), "dataType": v.data_type()}),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {
                    "ApproximateReceiveCount": attr(MessageSystemAttributeName::ApproximateReceiveCount),
                    "SentTimestamp": attr(MessageSystemAttributeName::SentTimestamp),
                },
                "messageAttributes": user,
                "eventSourceARN": queue_arn,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("a Lambda SQS batch")
}

/// What the event source mapping does with the messages a function did not hand back.
async fn delete_done(a: &AwsAdapters, url: &str, batch: &SqsBatch, failed: &[String]) {
    for m in &batch.records {
        if !failed.contains(&m.message_id) {
            a.sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(&m.receipt_handle)
                .send()
                .await
                .expect("delete");
        }
    }
}

async fn state_machine(a: &AwsAdapters) -> String {
    aws_sdk_sfn::Client::new(&a.sdk)
        .create_state_machine()
        .name("docpipe-test-pipeline")
        .definition(
            r#"{"StartAt":"Wait","States":{"Wait":{"Type":"Wait","Seconds":600,"End":true}}}"#,
        )
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/docpipe-test-sfn"))
        .send()
        .await
        .expect("state machine")
        .state_machine_arn
}

/// Adapters with a state machine to start executions on.
async fn with_pipeline(moto: &Moto) -> AwsAdapters {
    let a = deployed(moto).await;
    let arn = state_machine(&a).await;
    let mut settings = a.settings.clone();
    settings.state_machine_arn = Some(arn);
    let a = AwsAdapters::new(settings, a.sdk.clone());
    // The tenant acme is an API key.
    a.keys
        .create(&ApiKey {
            name: "acme".into(),
            key_hash: hash_key("dp_secret_acme"),
            active: true,
            rate_limit_per_minute: 60,
            created_at: Utc::now(),
            last_used_at: None,
            request_count: 0,
            delete_document_when_final: false,
        })
        .await
        .expect("key");
    a
}

fn starter<'a>(a: &'a AwsAdapters, dead_letters: &'a Queue) -> Starter<'a> {
    Starter {
        jobs: &a.jobs,
        objects: &a.objects,
        idempotency: &a.idempotency,
        keys: &a.keys,
        orchestrator: a.orchestrator.as_ref().expect("a state machine"),
        clock: &SystemClock,
        documents_bucket: &a.settings.documents_bucket,
        dead_letters,
        delete_document_when_final: false,
    }
}

fn failures(answer: &docpipe_aws::sqs::BatchResponse) -> Vec<String> {
    answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

async fn owner_jobs(a: &AwsAdapters, owner: &str) -> Vec<Job> {
    a.jobs
        .list(&JobFilter {
            owner: Some(owner.to_owned()),
            ..JobFilter::default()
        })
        .await
        .expect("list")
        .jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_drop_goes_through_sqs_to_a_started_execution_once() {
    let moto = moto_or_skip!();
    let a = with_pipeline(&moto).await;
    let (intake_url, intake_arn) = queue(&a, "docpipe-test-intake").await;
    let (dlq_url, _) = queue(&a, "docpipe-test-intake-dlq").await;
    // The template's notification: object-created under incoming/ to the intake queue.
    a.s3.put_bucket_notification_configuration()
        .bucket(&a.settings.documents_bucket)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(
                    aws_sdk_s3::types::QueueConfiguration::builder()
                        .queue_arn(&intake_arn)
                        .events(aws_sdk_s3::types::Event::S3ObjectCreated)
                        .filter(
                            aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                                .key(
                                    aws_sdk_s3::types::S3KeyFilter::builder()
                                        .filter_rules(
                                            aws_sdk_s3::types::FilterRule::builder()
                                                .name(aws_sdk_s3::types::FilterRuleName::Prefix)
                                                .value("incoming/")
                                                .build(),
                                        )
                                        .build(),
                                )
                                .build(),
                        )
                        .build()
                        .expect("queue configuration"),
                )
                .build(),
        )
        .send()
        .await
        .expect("notifications");
    let pdf = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/invoices/EN16931_Einfach.pdf"
    ))
    .expect("fixture");
    a.s3.put_object()
        .bucket(&a.settings.documents_bucket)
        .key("incoming/acme/EN16931_Einfach.pdf")
        .body(pdf.clone().into())
        .send()
        .await
        .expect("drop");
    // Outside the drop: no notification.
    a.s3.put_object()
        .bucket(&a.settings.documents_bucket)
        .key("documents/other.pdf")
        .body(pdf.into())
        .send()
        .await
        .expect("put");

    let dead_letters = Queue::new(a.sqs.clone(), &dlq_url);
    let start = starter(&a, &dead_letters);
    // S3's test event (sent when the notification was set) and the drop's notification.
    let mut messages = Vec::new();
    for _ in 0..5 {
        messages.extend(receive(&a, &intake_url).await);
        if messages
            .iter()
            .any(|m| m.body().is_some_and(|b| b.contains("ObjectCreated")))
        {
            break;
        }
    }
    let batch = lambda_batch(&messages, &intake_arn);
    let answer = start.handle(&batch).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    delete_done(&a, &intake_url, &batch, &[]).await;

    let jobs = owner_jobs(&a, "acme").await;
    assert_eq!(jobs.len(), 1, "one job for the drop: {jobs:?}");
    let job = &jobs[0];
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.kind, DocumentKind::Invoice);
    assert_eq!(job.filename, "EN16931_Einfach.pdf");
    assert_eq!(
        job.keys.upload.as_ref().map(|k| k.as_str()),
        Some("incoming/acme/EN16931_Einfach.pdf")
    );
    let sfn = a.orchestrator.as_ref().expect("orchestrator");
    let execution = sfn.describe(&job.execution_name()).await.expect("started");
    assert_eq!(execution.status, "RUNNING");

    // The same notification delivered again (SQS is at least once): the same job.
    let drop_message: Vec<Message> = messages
        .into_iter()
        .filter(|m| m.body().is_some_and(|b| b.contains("ObjectCreated")))
        .collect();
    assert_eq!(drop_message.len(), 1);
    let again = start
        .handle(&lambda_batch(&drop_message, &intake_arn))
        .await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(
        owner_jobs(&a, "acme").await.len(),
        1,
        "idempotent on key + ETag"
    );
    assert!(
        receive(&a, &dlq_url).await.is_empty(),
        "nothing dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_lands_in_the_dead_letter_queue_with_its_reason() {
    let moto = moto_or_skip!();
    let a = with_pipeline(&moto).await;
    let (intake_url, intake_arn) = queue(&a, "docpipe-test-intake").await;
    let (dlq_url, _) = queue(&a, "docpipe-test-intake-dlq").await;
    let bad = [
        (
            r#"{"document": {}, "idempotency_key": "k1"}"#,
            Some("acme"),
            "exactly one of url and s3_uri",
        ),
        ("not json at all", Some("acme"), "not JSON"),
        (
            r#"{"document": {"s3_uri": "s3://docpipe-test-documents/intake/missing.pdf"}, "idempotency_key": "k2"}"#,
            Some("acme"),
            "no object intake/missing.pdf",
        ),
        (
            r#"{"document": {"url": "https://example.com/a.pdf"}, "idempotency_key": "k3"}"#,
            Some("nobody"),
            "\"nobody\" is no active API key",
        ),
        (
            r#"{"document": {"url": "https://example.com/b.pdf"}, "idempotency_key": "k4"}"#,
            None,
            "no tenant attribute",
        ),
    ];
    for (body, tenant, _) in &bad {
        let mut send = a
            .sqs
            .send_message()
            .queue_url(&intake_url)
            .message_body(*body);
        if let Some(tenant) = tenant {
            send = send.message_attributes(
                "tenant",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(*tenant)
                    .build()
                    .expect("attribute"),
            );
        }
        send.send().await.expect("send");
    }
    let dead_letters = Queue::new(a.sqs.clone(), &dlq_url);
    let mut messages = Vec::new();
    while messages.len() < bad.len() {
        let got = receive(&a, &intake_url).await;
        assert!(!got.is_empty(), "the messages are on the queue");
        messages.extend(got);
    }
    let batch = lambda_batch(&messages, &intake_arn);
    let answer = starter(&a, &dead_letters).handle(&batch).await;
    assert!(
        answer.batch_item_failures.is_empty(),
        "refused messages are done with once dead-lettered"
    );
    delete_done(&a, &intake_url, &batch, &failures(&answer)).await;

    let mut dead = Vec::new();
    while dead.len() < bad.len() {
        let got = receive(&a, &dlq_url).await;
        assert!(
            !got.is_empty(),
            "every refused message is in the dead-letter queue"
        );
        dead.extend(got);
    }
    for (body, _, why) in &bad {
        let m = dead
            .iter()
            .find(|m| m.body() == Some(*body))
            .unwrap_or_else(|| panic!("{body} dead-lettered unchanged"));
        let reason = m
            .message_attributes()
            .and_then(|attrs| attrs.get(REASON_ATTRIBUTE))
            .and_then(|v| v.string_value())
            .expect("a reason");
        assert!(reason.contains(why), "{body}: {reason}");
    }
    // Nothing half-made: no job, no claim.
    assert!(owner_jobs(&a, "acme").await.is_empty());
    for key in ["k1", "k2", "k3", "k4"] {
        for owner in ["acme", "nobody"] {
            assert_eq!(a.idempotency.get(owner, key).await.expect("get"), None);
        }
    }
    assert!(
        receive(&a, &intake_url).await.is_empty(),
        "the intake queue is empty"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_fails_the_job_of_a_timed_out_execution() {
    let moto = moto_or_skip!();
    let a = with_pipeline(&moto).await;
    let sfn = a.orchestrator.as_ref().expect("orchestrator");
    let now = Utc::now();
    let stuck = Job::new(JobId::generate(now), DocumentKind::Invoice, "a.pdf", now);
    a.jobs.create(&stuck).await.expect("create");
    for to in [JobStatus::Ingesting, JobStatus::Ocr] {
        a.jobs
            .transition(&stuck.id, to, JobPatch::default(), now)
            .await
            .expect("moves");
    }
    docpipe_core::Orchestrator::start(sfn, &stuck)
        .await
        .expect("execution");
    let done = Job::new(JobId::generate(now), DocumentKind::Invoice, "b.pdf", now);
    a.jobs.create(&done).await.expect("create");
    lifecycle::fail(
        &a.jobs,
        &SystemClock,
        &done.id,
        &StageError::new(ErrorCode::InvalidFileFormat, "not a PDF"),
    )
    .await
    .expect("failed");

    // The event Step Functions puts on the default bus, through a rule with the
    // template's pattern, to a queue the test reads.
    let (url, arn) = queue(&a, "docpipe-test-reconcile").await;
    let events = aws_sdk_eventbridge::Client::new(&a.sdk);
    let pattern = json!({
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["TIMED_OUT", "ABORTED", "FAILED"],
                   "stateMachineArn": [a.settings.state_machine_arn.clone()]},
    });
    events
        .put_rule()
        .name("docpipe-test-executions-ended")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("rule");
    events
        .put_targets()
        .rule("docpipe-test-executions-ended")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("reconcile")
                .arn(&arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("target");
    let status_change = |job: &Job, status: &str| {
        let detail = json!({
            "executionArn": sfn.execution_arn(&job.execution_name()),
            "stateMachineArn": a.settings.state_machine_arn,
            "name": job.execution_name(),
            "status": status,
            "startDate": now.timestamp_millis(),
            "stopDate": now.timestamp_millis(),
            "input": "{}",
            "error": null,
            "cause": null,
        });
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.states")
            .detail_type("Step Functions Execution Status Change")
            .detail(detail.to_string())
            .build()
    };
    let out = events
        .put_events()
        .entries(status_change(&stuck, "TIMED_OUT"))
        .entries(status_change(&done, "ABORTED"))
        .entries(status_change(&stuck, "SUCCEEDED"))
        .send()
        .await
        .expect("put");
    assert_eq!(out.failed_entry_count(), 0);
    let mut received = Vec::new();
    for _ in 0..5 {
        received.extend(receive(&a, &url).await);
        if received.len() >= 2 {
            break;
        }
    }
    assert_eq!(
        received.len(),
        2,
        "the rule passes only executions that ended early"
    );
    let mut outcomes = HashMap::new();
    for m in &received {
        let envelope: Value = serde_json::from_str(m.body().expect("body")).expect("event");
        let change: ExecutionStatusChange =
            serde_json::from_value(envelope["detail"].clone()).expect("detail");
        let outcome = reconcile(&a.jobs, &SystemClock, &change)
            .await
            .expect("reconciles");
        outcomes.insert(change.name.clone(), outcome);
    }
    let Some(Reconciled::Failed(job)) = outcomes.get(stuck.id.as_str()) else {
        panic!("the stuck job is failed: {outcomes:?}");
    };
    assert_eq!(job.status, JobStatus::Failed);
    let stored = a.jobs.get(&stuck.id).await.expect("job");
    assert_eq!(stored.status, JobStatus::Failed);
    assert_eq!(
        stored.error.as_ref().map(|e| e.code),
        Some(ErrorCode::ExecutionTimedOut)
    );
    // A job that had ended keeps its own reason.
    assert_eq!(
        outcomes.get(done.id.as_str()),
        Some(&Reconciled::AlreadyFinal)
    );
    assert_eq!(
        a.jobs
            .get(&done.id)
            .await
            .expect("job")
            .error
            .map(|e| e.code),
        Some(ErrorCode::InvalidFileFormat)
    );
    // The same event again changes nothing.
    let again = ExecutionStatusChange {
        execution_arn: sfn.execution_arn(stuck.id.as_str()),
        name: stuck.id.to_string(),
        status: "TIMED_OUT".into(),
        error: None,
        cause: None,
    };
    assert_eq!(
        reconcile(&a.jobs, &SystemClock, &again).await.expect("ok"),
        Reconciled::AlreadyFinal
    );
}

fn item_number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

async fn raw(a: &AwsAdapters, table: &str, key: (&str, &str)) -> HashMap<String, AttributeValue> {
    a.dynamodb
        .get_item()
        .table_name(table)
        .key(key.0, AttributeValue::S(key.1.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .expect("item")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_expiring_record_carries_its_ttl_from_the_core_retention() {
    let moto = moto_or_skip!();
    let a = deployed(&moto).await;
    let retention = Retention::default();
    let at: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("t");
    // The tables expire by `expires_at`.
    for table in [
        &a.settings.jobs_table,
        &a.settings.idempotency_table,
        &a.settings.preview_cache_table,
        &a.settings.webhooks_table,
    ] {
        let ttl = a
            .dynamodb
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .expect("ttl")
            .time_to_live_description
            .expect("description");
        assert_eq!(
            ttl.attribute_name(),
            Some(docpipe_aws::jobs::TTL_ATTRIBUTE),
            "{table}"
        );
    }
    // A running job never expires; a final one 7 days after its last change.
    let job = Job::new(JobId::generate(at), DocumentKind::Invoice, "a.pdf", at);
    a.jobs.create(&job).await.expect("create");
    let item = raw(&a, &a.settings.jobs_table, ("job_id", job.id.as_str())).await;
    assert_eq!(item_number(&item, "expires_at"), None);
    let ended = at + ChronoDuration::minutes(3);
    a.jobs
        .transition(
            &job.id,
            JobStatus::Failed,
            JobPatch {
                error: Some(StageError::new(ErrorCode::InvalidFileFormat, "no").into()),
                ..JobPatch::default()
            },
            ended,
        )
        .await
        .expect("failed");
    let item = raw(&a, &a.settings.jobs_table, ("job_id", job.id.as_str())).await;
    assert_eq!(
        item_number(&item, "expires_at"),
        Some(ended.timestamp() + retention.final_jobs_secs as i64)
    );
    // Idempotency records: 24 hours.
    let record = IdempotencyRecord {
        owner: "acme".into(),
        key: "k".into(),
        request_hash: "h".into(),
        job_id: job.id.clone(),
        created_at: at,
    };
    a.idempotency.put_if_absent(&record).await.expect("put");
    let item = raw(&a, &a.settings.idempotency_table, ("owner_key", "acme#k")).await;
    assert_eq!(
        item_number(&item, "expires_at"),
        Some(at.timestamp() + retention.idempotency_secs as i64)
    );
    // Dedupe entries: their hour (what the finalize stage asks for, from the settings).
    let key = dedupe_key(&"ab".repeat(32), DocumentKind::Invoice, "profile");
    let entry = CachedResult {
        job_id: job.id.clone(),
        verification: VerifyOutput {
            key: ObjectKey::parse(&format!("results/{}/verified.json", job.id)).expect("key"),
            needs_review: false,
            review_reasons: Vec::new(),
        },
    };
    assert_eq!(a.settings.stage.dedupe_ttl_secs, 3600);
    let until = at + ChronoDuration::seconds(a.settings.stage.dedupe_ttl_secs as i64);
    a.results.put(&key, &entry, at, until).await.expect("put");
    let item = raw(
        &a,
        &a.settings.preview_cache_table,
        ("blueprint_hash", &key),
    )
    .await;
    assert_eq!(item_number(&item, "expires_at"), Some(until.timestamp()));
    // A webhook's failures: as long as final jobs.
    let failed = docpipe_core::webhooks::Delivery {
        id: format!("{}.1", job.id),
        webhook_id: "wh_0123456789abcdef0123456789abcdef".into(),
        event_id: format!("{}.1", job.id),
        event_type: JOB_STATUS_V1.into(),
        job_id: job.id.to_string(),
        state: docpipe_core::webhooks::DeliveryState::Dead,
        attempts: 30,
        created_at: at,
        next_attempt_at: at,
        last_error: None,
        body: "{}".into(),
    };
    a.webhooks
        .record_dead("acme", &failed, "503", ended)
        .await
        .expect("recorded");
    let item = a
        .dynamodb
        .get_item()
        .table_name(&a.settings.webhooks_table)
        .key("owner", AttributeValue::S("acme".into()))
        .key(
            "webhook_id",
            AttributeValue::S(format!(
                "wh_0123456789abcdef0123456789abcdef#dead#{}.1",
                job.id
            )),
        )
        .send()
        .await
        .expect("get")
        .item
        .expect("the failure");
    assert_eq!(
        item_number(&item, "expires_at"),
        Some(ended.timestamp() + retention.final_jobs_secs as i64)
    );
    // Configured numbers are honoured the same way.
    let mut settings = a.settings.clone();
    settings.set("final_jobs_secs", "86400").expect("valid");
    let short = AwsAdapters::new(settings, a.sdk.clone());
    let quick = Job::new(JobId::generate(at), DocumentKind::Invoice, "b.pdf", at);
    short.jobs.create(&quick).await.expect("create");
    short
        .jobs
        .transition(&quick.id, JobStatus::Cancelled, JobPatch::default(), at)
        .await
        .expect("cancelled");
    let item = raw(&a, &a.settings.jobs_table, ("job_id", quick.id.as_str())).await;
    assert_eq!(
        item_number(&item, "expires_at"),
        Some(at.timestamp() + 86_400)
    );
}

/// The Lambda DynamoDB-stream form of an attribute value.
fn stream_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(stream_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({
            "M": m.iter().map(|(k, v)| (k.clone(), stream_json(v))).collect::<serde_json::Map<_, _>>()
        }),
        other => panic!("unexpected attribute {other:?}"),
    }
}

fn image(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), stream_json(v)))
            .collect(),
    )
}

/// A receiver on 127.0.0.1 that keeps every request's headers and body.
type Received = Arc<Mutex<Vec<(HashMap<String, String>, String)>>>;

async fn receiver() -> (String, Received, tokio::task::JoinHandle<()>) {
    let got: Received = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                keep.lock().expect("lock").push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("127.0.0.1:{}", addr.port()), got, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_reach_eventbridge_with_the_schema_and_are_delivered_signed() {
    let moto = moto_or_skip!();
    let mut a = deployed(&moto).await;
    let events = aws_sdk_eventbridge::Client::new(&a.sdk);
    events
        .create_event_bus()
        .name("docpipe-test")
        .send()
        .await
        .expect("bus");
    let mut settings = a.settings.clone();
    settings.event_bus = Some("docpipe-test".into());
    a = AwsAdapters::new(settings, a.sdk.clone());
    let (webhook_url, webhook_arn) = queue(&a, "docpipe-test-webhooks").await;
    let (dlq_url, _) = queue(&a, "docpipe-test-webhooks-dlq").await;
    // The template's rule: every job.status.v1 event to the webhook queue.
    events
        .put_rule()
        .name("docpipe-test-job-status-to-webhooks")
        .event_bus_name("docpipe-test")
        .event_pattern(
            json!({"source": [EVENTBRIDGE_SOURCE], "detail-type": [JOB_STATUS_V1]}).to_string(),
        )
        .send()
        .await
        .expect("rule");
    events
        .put_targets()
        .rule("docpipe-test-job-status-to-webhooks")
        .event_bus_name("docpipe-test")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("webhooks")
                .arn(&webhook_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("target");

    // A job's changes as the table's stream records them.
    let now = Utc::now();
    let mut job = Job::new(JobId::generate(now), DocumentKind::Invoice, "a.pdf", now);
    job.owner = Some("acme".into());
    a.jobs.create(&job).await.expect("create");
    let mut images = vec![image(
        &raw(&a, &a.settings.jobs_table, ("job_id", job.id.as_str())).await,
    )];
    for to in [JobStatus::Ingesting, JobStatus::Failed] {
        let patch = JobPatch {
            error: (to == JobStatus::Failed)
                .then(|| StageError::new(ErrorCode::InvalidFileFormat, "not a PDF").into()),
            ..JobPatch::default()
        };
        a.jobs
            .transition(&job.id, to, patch, now)
            .await
            .expect("moves");
        images.push(image(
            &raw(&a, &a.settings.jobs_table, ("job_id", job.id.as_str())).await,
        ));
    }
    let mut records = vec![json!({"eventName": "INSERT", "dynamodb": {"NewImage": images[0]}})];
    for pair in images.windows(2) {
        records.push(
            json!({"eventName": "MODIFY", "dynamodb": {"OldImage": pair[0], "NewImage": pair[1]}}),
        );
    }
    // A write that is no status change is no event.
    records.push(
        json!({"eventName": "MODIFY", "dynamodb": {"OldImage": images[2], "NewImage": images[2]}}),
    );
    let batch = json!({ "Records": records });
    let published = events_of_stream_batch(&batch).expect("events");
    assert_eq!(published.len(), 3);
    a.events
        .as_ref()
        .expect("a publisher")
        .publish(&published)
        .await
        .expect("put on the bus");

    let mut messages = Vec::new();
    for _ in 0..5 {
        messages.extend(receive(&a, &webhook_url).await);
        if messages.len() >= 3 {
            break;
        }
    }
    assert_eq!(messages.len(), 3, "every change reached the queue");
    let schema: Value = serde_json::from_str(JOB_STATUS_V1_SCHEMA).expect("schema");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("job.status.v1.schema.json", schema)
        .expect("schema loads");
    let compiled = compiler
        .compile("job.status.v1.schema.json", &mut schemas)
        .expect("schema compiles");
    let mut seen = Vec::new();
    for m in &messages {
        let envelope: Value = serde_json::from_str(m.body().expect("body")).expect("JSON");
        assert_eq!(envelope["source"], EVENTBRIDGE_SOURCE);
        assert_eq!(envelope["detail-type"], JOB_STATUS_V1);
        let detail = &envelope["detail"];
        if let Err(e) = schemas.validate(detail, compiled) {
            panic!("{detail} does not fit the schema: {e}");
        }
        assert_eq!(detail["subject"], job.id.as_str());
        seen.push((
            detail["id"].as_str().expect("id").to_owned(),
            detail["data"]["status"].clone(),
            detail["data"]["previous_status"].clone(),
            detail["data"]["error_code"].clone(),
        ));
    }
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        seen,
        vec![
            (
                format!("{}.1", job.id),
                json!("queued"),
                Value::Null,
                Value::Null
            ),
            (
                format!("{}.2", job.id),
                json!("ingesting"),
                json!("queued"),
                Value::Null
            ),
            (
                format!("{}.3", job.id),
                json!("failed"),
                json!("ingesting"),
                json!("INVALID_FILE_FORMAT")
            ),
        ]
    );

    // Delivery: the owner's webhook on 127.0.0.1 gets each event, signed.
    let (host, got, server) = receiver().await;
    let secret = WebhookSecret::generate().expect("secret");
    let hook = Webhook {
        id: Webhook::new_id().expect("id"),
        owner: "acme".into(),
        url: format!("http://{host}/hook"),
        event_types: vec![JOB_STATUS_V1.to_owned()],
        secret: secret.clone(),
        created_at: now,
    };
    a.webhooks.create(&hook).await.expect("webhook");
    let sender = HttpFetcher::new(FetchPolicy {
        allowed_hosts: vec![host.clone()],
        ..FetchPolicy::default()
    });
    let dead_letters = Queue::new(a.sqs.clone(), &dlq_url);
    let endpoint = moto.url();
    let own_queue = |m: &SqsMessage| {
        queue_url_of_arn(&m.event_source_arn, Some(&endpoint)).map(|u| Queue::new(a.sqs.clone(), u))
    };
    let deliverer = Deliverer {
        webhooks: &a.webhooks,
        jobs: &a.jobs,
        sender: &sender,
        clock: &SystemClock,
        policy: RetryPolicy::default(),
        queue: &own_queue,
        dead_letters: &dead_letters,
    };
    let batch = lambda_batch(&messages, &webhook_arn);
    for m in &batch.records {
        assert_eq!(
            deliverer.deliver(m).await.expect("delivers"),
            Delivered::Done {
                delivered: 1,
                dead: 0
            }
        );
    }
    let requests = got.lock().expect("lock").clone();
    assert_eq!(requests.len(), 3);
    for (headers, body) in &requests {
        let id = &headers["webhook-id"];
        let timestamp: i64 = headers["webhook-timestamp"].parse().expect("timestamp");
        assert!(
            secret.verify(
                id,
                timestamp,
                body.as_bytes(),
                &headers["webhook-signature"]
            ),
            "{id}: a valid signature"
        );
        let event: Value = serde_json::from_str(body).expect("the CloudEvent");
        assert_eq!(&event["id"], id);
        assert!(schemas.validate(&event, compiled).is_ok());
    }
    // A receiver that is gone: the message comes back later (a retry), nothing is lost.
    server.abort();
    let _ = server.await;
    let outcome = deliverer.deliver(&batch.records[0]).await.expect("tried");
    assert!(
        matches!(outcome, Delivered::Retry { at, .. } if at > Utc::now()),
        "{outcome:?}"
    );
    assert!(receive(&a, &dlq_url).await.is_empty());
}

/// A tenant whose key asks for it: its job carries the choice from intake, and when the
/// job ends its upload, document and text go from both buckets (the result stays); a
/// tenant that did not ask keeps its document, unless the deployment asks for every job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_asks_loses_its_documents_when_its_job_ends() {
    use docpipe_aws::intake::{Intake, Outcome, Source};
    use docpipe_core::ObjectStore;
    use docpipe_core::stages::{CaughtError, RecordFailureInput, record_failure};

    let moto = moto_or_skip!();
    let a = with_pipeline(&moto).await;
    a.keys
        .create(&ApiKey {
            name: "drops".into(),
            key_hash: hash_key("dp_secret_drops"),
            active: true,
            rate_limit_per_minute: 60,
            created_at: Utc::now(),
            last_used_at: None,
            request_count: 0,
            delete_document_when_final: true,
        })
        .await
        .expect("key");
    let (dlq_url, _) = queue(&a, "docpipe-test-intake-dlq").await;
    let dead_letters = Queue::new(a.sqs.clone(), &dlq_url);
    let ports = a.ports(Arc::new(HttpFetcher::new(FetchPolicy::default())));

    // Each tenant drops a document; the starter takes it (the deployment's own setting
    // off, then on).
    let submit = |tenant: &'static str, every_job: bool| {
        let a = &a;
        let dead_letters = &dead_letters;
        async move {
            let upload =
                ObjectKey::parse(&format!("incoming/{tenant}/plan-{every_job}.pdf")).expect("key");
            a.objects
                .put(&upload, b"%PDF-1.7 plan".to_vec())
                .await
                .expect("drop");
            let start = Starter {
                delete_document_when_final: every_job,
                ..starter(a, dead_letters)
            };
            let outcome = start
                .submit(Intake {
                    tenant: Some(tenant.to_owned()),
                    kind: DocumentKind::Invoice,
                    filename: format!("plan-{every_job}.pdf"),
                    source: Source::Object {
                        key: upload.clone(),
                        size: None,
                    },
                    key: format!("s3:{}#1", upload.as_str()),
                    request_hash: upload.as_str().to_owned(),
                })
                .await;
            let Outcome::Started(job) = outcome else {
                panic!("{tenant}: not started: {outcome:?}");
            };
            *job
        }
    };
    let asking = submit("drops", false).await;
    let keeping = submit("acme", false).await;
    let deployment = submit("acme", true).await;
    assert!(asking.delete_document_when_final);
    assert!(!keeping.delete_document_when_final);
    assert!(deployment.delete_document_when_final);
    // Stored with the job, as every host reads it.
    assert!(
        a.jobs
            .get(&asking.id)
            .await
            .expect("job")
            .delete_document_when_final
    );

    // The job got as far as a document and its text, then failed.
    let mut objects = Vec::new();
    for job in [&asking, &keeping, &deployment] {
        let document = ObjectKey::for_job("documents", &job.id, "plan.pdf");
        let ocr = ObjectKey::for_job("ocr", &job.id, "document.json");
        let result = ObjectKey::for_job("results", &job.id, "extraction.json");
        for key in [&document, &ocr, &result] {
            a.objects.put(key, b"{}".to_vec()).await.expect("object");
        }
        a.jobs
            .update(
                &job.id,
                JobPatch {
                    document_key: Some(document.clone()),
                    ocr_key: Some(ocr.clone()),
                    ..JobPatch::default()
                },
                Utc::now(),
            )
            .await
            .expect("patched");
        let ended = record_failure(
            &ports,
            RecordFailureInput {
                job_id: job.id.clone(),
                correlation_id: None,
                error: CaughtError {
                    error: "DocPipe.InvalidDocument".into(),
                    cause: r#"{"errorType":"DocPipe.InvalidDocument","errorMessage":"DOCUMENT_ENCRYPTED: a password is needed"}"#.into(),
                },
            },
        )
        .await
        .expect("recorded");
        assert_eq!(ended.status, JobStatus::Failed);
        let upload = job.keys.upload.clone().expect("upload");
        objects.push([upload, document, ocr, result]);
    }
    let present = |keys: &[ObjectKey; 4]| {
        let keys = keys.clone();
        let objects = a.objects.clone();
        async move {
            let mut out = Vec::new();
            for key in &keys {
                out.push(objects.get(key).await.expect("read").is_some());
            }
            out
        }
    };
    assert_eq!(present(&objects[0]).await, [false, false, false, true]);
    assert_eq!(present(&objects[1]).await, [true; 4], "not asked for");
    assert_eq!(present(&objects[2]).await, [false, false, false, true]);
}
