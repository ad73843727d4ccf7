//! The AWS adapters against moto's server (real SDK clients, real HTTP, real DynamoDB
//! condition semantics): every test starts its own server on a free port and stops it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use docpipe_aws::preview_cache::PreviewCache;
use docpipe_aws::{AwsAdapters, AwsSettings, ParameterStore, Presigner, SecretCache};
use docpipe_core::ResultCache;
use docpipe_core::keys::hash_key;
use docpipe_core::stages::{PipelineInput, VerifyOutput, dedupe_key};
use docpipe_core::{
    ApiKey, CachedResult, DocumentKind, ErrorCode, ErrorName, IdempotencyRecord, IdempotencyStore,
    Job, JobFilter, JobId, JobPatch, JobStatus, JobStore, KeyStore, ObjectKey, ObjectStore,
    Orchestrator,
};
use support::{Moto, deployed, http, settings};

macro_rules! moto_or_skip {
    () => {
        match Moto::start().await {
            Some(m) => m,
            None => return,
        }
    };
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid")
        + ChronoDuration::seconds(secs)
}

fn new_job(at: DateTime<Utc>, owner: Option<&str>) -> Job {
    let mut job = Job::new(JobId::generate(at), DocumentKind::Invoice, "inv.pdf", at);
    job.owner = owner.map(str::to_owned);
    job
}

async fn raw_item(
    a: &AwsAdapters,
    id: &JobId,
) -> std::collections::HashMap<String, AttributeValue> {
    a.dynamodb
        .get_item()
        .table_name(&a.settings.jobs_table)
        .key("job_id", AttributeValue::S(id.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
        .expect("item exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_transitions_are_table_checked_recorded_and_expire() {
    let moto = moto_or_skip!();
    let a = deployed(&moto).await;
    let store = &a.jobs;
    let job = new_job(t(0), Some("acme"));
    store.create(&job).await.expect("create");
    let dup = store.create(&job).await.expect_err("duplicate");
    assert_eq!(dup.code, ErrorCode::ValidationError);
    assert_eq!(store.get(&job.id).await.expect("get"), job);
    let missing = JobId::generate(t(0));
    assert_eq!(
        store.get(&missing).await.expect_err("missing").code,
        ErrorCode::JobNotFound
    );

    let patch = JobPatch {
        pages: Some(2),
        stage_ms: Some((docpipe_core::stages::Stage::Ingest, 40)),
        ..JobPatch::default()
    };
    let j = store
        .transition(&job.id, JobStatus::Ingesting, patch, t(1))
        .await
        .expect("queued -> ingesting");
    assert_eq!((j.status, j.cost.pages), (JobStatus::Ingesting, 2));
    // Re-entering the current status (a retried stage) is allowed and not recorded twice.
    store
        .transition(&job.id, JobStatus::Ingesting, JobPatch::default(), t(2))
        .await
        .expect("retry");
    let illegal = store
        .transition(&job.id, JobStatus::Verifying, JobPatch::default(), t(3))
        .await
        .expect_err("ingesting -> verifying");
    assert_eq!(illegal.code, ErrorCode::InvalidTransition);
    let j = store
        .update(
            &job.id,
            JobPatch {
                ocr_pages: Some(2),
                ..JobPatch::default()
            },
            t(4),
        )
        .await
        .expect("update");
    assert_eq!((j.status, j.cost.ocr_pages), (JobStatus::Ingesting, 2));
    assert!(!raw_item(&a, &job.id).await.contains_key("expires_at"));

    store
        .transition(&job.id, JobStatus::Cancelled, JobPatch::default(), t(5))
        .await
        .expect("cancel");
    let after = store
        .transition(&job.id, JobStatus::Ocr, JobPatch::default(), t(6))
        .await
        .expect_err("cancelled stays cancelled");
    assert_eq!(after.code, ErrorCode::JobCancelled);
    assert_eq!(after.name(), ErrorName::Cancelled);

    let history: Vec<_> = store
        .history(&job.id)
        .await
        .expect("history")
        .into_iter()
        .map(|c| (c.status, c.at))
        .collect();
    assert_eq!(
        history,
        vec![
            (JobStatus::Queued, t(0)),
            (JobStatus::Ingesting, t(1)),
            (JobStatus::Cancelled, t(5))
        ]
    );
    let item = raw_item(&a, &job.id).await;
    let expires: i64 = item["expires_at"]
        .as_n()
        .expect("number")
        .parse()
        .expect("int");
    assert_eq!(expires, (t(5) + ChronoDuration::days(7)).timestamp());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_a_lost_race_is_invalid_transition_never_an_overwrite() {
    let moto = moto_or_skip!();
    let a = deployed(&moto).await;
    let job = new_job(t(0), None);
    a.jobs.create(&job).await.expect("create");
    // Two writers read the same queued job; the first moves it to ingesting. The second
    // wants cancelled, which the table allows from ingesting too: only the condition on
    // the status and version it read can refuse it, and must.
    let first = a.jobs.read(&job.id).await.expect("read");
    let second = a.jobs.read(&job.id).await.expect("read");
    assert_eq!(first.version, second.version);
    a.jobs
        .transition_from(first, JobStatus::Ingesting, JobPatch::default(), t(1))
        .await
        .expect("first writer wins");
    let lost = a
        .jobs
        .transition_from(
            second,
            JobStatus::Cancelled,
            JobPatch {
                pages: Some(9),
                ..JobPatch::default()
            },
            t(2),
        )
        .await
        .expect_err("second writer loses");
    assert_eq!(lost.code, ErrorCode::InvalidTransition);
    assert_eq!(lost.name(), ErrorName::Cancelled);
    assert!(lost.message.contains("it is now ingesting"), "{lost}");
    let now = a.jobs.read(&job.id).await.expect("read");
    assert_eq!(
        (now.job.status, now.job.cost.pages, now.version),
        (JobStatus::Ingesting, 0, 2)
    );
    let statuses: Vec<_> = a
        .jobs
        .history(&job.id)
        .await
        .expect("history")
        .into_iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, vec![JobStatus::Queued, JobStatus::Ingesting]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_concurrent_writers_each_win_or_lose_cleanly() {
    let moto = moto_or_skip!();
    let a = deployed(&moto).await;
    // Writers at once, each through its own client. (moto serialises nothing per item,
    // so exact accounting is the deterministic test's job; here every outcome must be a
    // win or a clean DocPipe.Cancelled loss, and the job must end in a legal state.)
    let job = new_job(t(0), None);
    a.jobs.create(&job).await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = AwsAdapters::new(settings(&moto), moto.sdk_config()).jobs;
        let id = job.id.clone();
        tasks.push(tokio::spawn(async move {
            let to = if i % 4 == 3 {
                JobStatus::Cancelled
            } else {
                JobStatus::Ingesting
            };
            (
                to,
                store
                    .transition(&id, to, JobPatch::default(), t(1 + i))
                    .await,
            )
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            (to, Ok(j)) => {
                assert_eq!(j.status, to);
                won += 1;
            }
            (_, Err(e)) => assert_eq!(e.name(), ErrorName::Cancelled, "{e}"),
        }
    }
    assert!(won >= 1);
    let status = a.jobs.get(&job.id).await.expect("get").status;
    assert!(
        matches!(status, JobStatus::Ingesting | JobStatus::Cancelled),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_lists_by_owner_newest_first_across_pages() {
    let moto = moto_or_skip!();
    let a = deployed(&moto).await;
    let mut acme = Vec::new();
    for i in 0..7 {
        let job = new_job(t(i * 10), Some("acme"));
        a.jobs.create(&job).await.expect("create");
        acme.push(job.id.clone());
    }
    for i in 0..3 {
        a.jobs
            .create(&new_job(t(i * 10 + 5), Some("other")))
            .await
            .expect("create");
    }
    a.jobs.create(&new_job(t(100), None)).await.expect("create");
    // acme's third job finishes.
    a.jobs
        .transition(&acme[2], JobStatus::Failed, JobPatch::default(), t(200))
        .await
        .expect("fail");

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = a
            .jobs
            .list(&JobFilter {
                owner: Some("acme".into()),
                limit: Some(3),
                cursor: cursor.clone(),
                ..JobFilter::default()
            })
            .await
            .expect("list");
        pages += 1;
        seen.extend(page.jobs.iter().map(|j| j.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let newest_first: Vec<JobId> = acme.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);

    let failed = a
        .jobs
        .list(&JobFilter {
            owner: Some("acme".into()),
            status: Some(JobStatus::Failed),
            limit: Some(1),
            ..JobFilter::default()
        })
        .await
        .expect("filtered");
    assert_eq!(
        failed.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        vec![acme[2].clone()]
    );
    assert_eq!(failed.next_cursor, None);

    let all = a
        .jobs
        .list(&JobFilter {
            limit: Some(100),
            ..JobFilter::default()
        })
        .await
        .expect("all");
    assert_eq!(all.jobs.len(), 11);
    assert!(
        all.jobs
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at)
    );
    let bad = a
        .jobs
        .list(&JobFilter {
            cursor: Some("nonsense".into()),
            ..JobFilter::default()
        })
        .await
        .expect_err("bad cursor");
    assert_eq!(bad.code, ErrorCode::ValidationError);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_round_trip_routes_buckets_encrypts_and_caps() {
    let moto = moto_or_skip!();
    let a = deployed(&moto).await;
    let id = JobId::generate(t(0));
    let doc = ObjectKey::for_job("documents", &id, "inv.pdf");
    let result = ObjectKey::for_job("results", &id, "result.json");
    let body = b"%PDF-1.7 test".to_vec();
    a.objects.put(&doc, body.clone()).await.expect("put");
    a.objects.put(&result, b"{}".to_vec()).await.expect("put");
    assert_eq!(a.objects.get(&doc).await.expect("get"), Some(body.clone()));
    assert_eq!(
        a.objects.size(&doc).await.expect("size"),
        Some(body.len() as u64)
    );
    let missing = ObjectKey::for_job("documents", &id, "nope.pdf");
    assert_eq!(a.objects.get(&missing).await.expect("get"), None);
    assert_eq!(a.objects.size(&missing).await.expect("size"), None);

    // Documents and results live in their own buckets, each object encrypted.
    for (bucket, key) in [
        (&a.settings.documents_bucket, &doc),
        (&a.settings.results_bucket, &result),
    ] {
        let head =
            a.s3.head_object()
                .bucket(bucket)
                .key(key.as_str())
                .send()
                .await
                .expect("object in its bucket");
        assert_eq!(
            head.server_side_encryption().map(|s| s.as_str()),
            Some("AES256")
        );
    }
    assert!(
        a.s3.head_object()
            .bucket(&a.settings.documents_bucket)
            .key(result.as_str())
            .send()
            .await
            .is_err()
    );

    // A store with a 4-byte cap refuses to read the 13-byte document.
    let small = docpipe_aws::S3ObjectStore::new(
        a.s3.clone(),
        &a.settings.documents_bucket,
        &a.settings.results_bucket,
        4,
    );
    let err = small.get(&doc).await.expect_err("over the cap");
    assert_eq!(err.code, ErrorCode::FileTooLarge);

    a.objects.delete(&doc).await.expect("delete");
    a.objects.delete(&doc).await.expect("delete is idempotent");
    assert_eq!(a.objects.size(&doc).await.expect("size"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_presigned_put_and_get_work_without_credentials() {
    let moto = moto_or_skip!();
    let a = deployed(&moto).await;
    let key =
        ObjectKey::parse("incoming/upl_00000000000000000000000000000000/document").expect("key");
    let body = b"%PDF-1.4 presigned".to_vec();
    let put = a
        .objects
        .presign_put(&key, Some(body.len() as u64), Duration::from_secs(300))
        .await
        .expect("presign put");
    assert_eq!(put.method, "PUT");
    assert!(put.url.contains("X-Amz-Signature="), "{}", put.url);
    let (status, text) = http("PUT", &put.url, &put.headers, &body)
        .await
        .expect("PUT");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
    assert_eq!(a.objects.get(&key).await.expect("get"), Some(body.clone()));

    let get = a
        .objects
        .presign_get(&key, Duration::from_secs(60))
        .await
        .expect("presign get");
    let (status, got) = http("GET", &get.url, &get.headers, b"").await.expect("GET");
    assert_eq!((status, got), (200, body));
    let err = a
        .objects
        .presign_put(&key, Some(u64::MAX), Duration::from_secs(60))
        .await
        .expect_err("over the cap");
    assert_eq!(err.code, ErrorCode::FileTooLarge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfn_starts_idempotently_describes_and_stops() {
    let moto = moto_or_skip!();
    let sdk = moto.sdk_config();
    let client = aws_sdk_sfn::Client::new(&sdk);
    let definition =
        r#"{"StartAt":"Wait","States":{"Wait":{"Type":"Wait","Seconds":600,"End":true}}}"#;
    let arn = client
        .create_state_machine()
        .name("docpipe-test-pipeline")
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/docpipe-test-sfn")
        .send()
        .await
        .expect("state machine")
        .state_machine_arn;
    let sfn = docpipe_aws::SfnOrchestrator::new(client, &arn);
    Orchestrator::health(&sfn).await.expect("healthy");
    let job = new_job(t(0), Some("acme"));
    let input = PipelineInput::for_job(&job);
    let name = job.execution_name();
    let first = sfn.start(&input, &name).await.expect("start");
    assert_eq!(first.execution_arn, sfn.execution_arn(job.id.as_str()));
    // A retried request: the same name again is not an error and starts nothing new.
    let again = sfn.start(&input, &name).await.expect("start again");
    assert_eq!(again.execution_arn, first.execution_arn);
    let info = sfn.describe(&name).await.expect("describe");
    assert_eq!(info.status, "RUNNING");
    assert!(info.started_at.is_some());

    sfn.stop(&name, "cancelled by the client")
        .await
        .expect("stop");
    let info = sfn.describe(&name).await.expect("describe");
    assert_eq!(info.status, "ABORTED");
    let unknown = JobId::generate(t(0));
    assert_eq!(
        sfn.describe(unknown.as_str()).await.expect_err("none").code,
        ErrorCode::JobNotFound
    );
    // Through the port, stopping a job that never ran is a no-op.
    Orchestrator::stop(&sfn, &new_job(t(0), None), "cancel")
        .await
        .expect("no-op");
    Orchestrator::start(&sfn, &job)
        .await
        .expect("port start is idempotent too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_idempotency_and_preview_cache() {
    let moto = moto_or_skip!();
    let a = deployed(&moto).await;
    let key = ApiKey {
        name: "acme".into(),
        key_hash: hash_key("dp_secret_acme"),
        active: true,
        rate_limit_per_minute: 120,
        created_at: t(0),
        last_used_at: None,
        request_count: 0,
        delete_document_when_final: false,
    };
    a.keys.create(&key).await.expect("create");
    assert_eq!(
        a.keys.create(&key).await.expect_err("taken").code,
        ErrorCode::ValidationError
    );
    assert_eq!(
        a.keys.find_by_hash(&key.key_hash).await.expect("find"),
        Some(key.clone())
    );
    assert_eq!(
        a.keys.find_by_hash(&hash_key("other")).await.expect("find"),
        None
    );
    a.keys.record_use("acme", 1, t(5)).await.expect("use");
    a.keys.record_use("acme", 2, t(6)).await.expect("use");
    let listed = a.keys.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].request_count, listed[0].last_used_at),
        (3, Some(t(6)))
    );
    a.keys.revoke("acme").await.expect("revoke");
    assert_eq!(
        a.keys.revoke("nobody").await.expect_err("none").code,
        ErrorCode::NotFound
    );
    let found = a
        .keys
        .find_by_hash(&key.key_hash)
        .await
        .expect("find")
        .expect("still stored");
    assert!(!found.active);

    let record = IdempotencyRecord {
        owner: "acme".into(),
        key: "k-1".into(),
        request_hash: "h1".into(),
        job_id: JobId::generate(t(0)),
        created_at: t(0),
    };
    assert_eq!(
        a.idempotency.put_if_absent(&record).await.expect("first"),
        None
    );
    let second = IdempotencyRecord {
        job_id: JobId::generate(t(1)),
        ..record.clone()
    };
    assert_eq!(
        a.idempotency.put_if_absent(&second).await.expect("second"),
        Some(record.clone())
    );
    assert_eq!(
        a.idempotency.get("acme", "k-1").await.expect("get"),
        Some(record)
    );
    assert_eq!(a.idempotency.get("other", "k-1").await.expect("get"), None);

    let cache = PreviewCache::new(a.dynamodb.clone(), &a.settings.preview_cache_table);
    let key = dedupe_key(&"ab".repeat(32), DocumentKind::Blueprint, "profile");
    let entry = CachedResult {
        job_id: JobId::parse("job_20260301120000_abc").expect("id"),
        verification: VerifyOutput {
            key: ObjectKey::parse("results/job_20260301120000_abc/verified.json").expect("key"),
            needs_review: true,
            review_reasons: vec!["rooms_disjoint failed".into()],
        },
    };
    assert_eq!(cache.get(&key, t(0)).await.expect("miss"), None);
    cache.put(&key, &entry, t(0), t(3600)).await.expect("put");
    assert_eq!(cache.get(&key, t(3599)).await.expect("hit"), Some(entry));
    // Expired but not yet deleted by DynamoDB's TTL sweeper: still a miss.
    assert_eq!(cache.get(&key, t(3600)).await.expect("expired"), None);
    // Another kind (or profile) of the same bytes is another key.
    let other = dedupe_key(&"ab".repeat(32), DocumentKind::Invoice, "profile");
    assert_eq!(cache.get(&other, t(0)).await.expect("miss"), None);
    assert!(cache.get("not-a-hash", t(0)).await.is_err());
}

/// A clock the test moves by hand: the caches' five minutes pass in no time.
struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(t(0))))
    }

    fn advance(&self, secs: i64) {
        let mut now = self.0.lock().expect("clock");
        *now += ChronoDuration::seconds(secs);
    }
}

impl docpipe_core::Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }

    fn sleep(&self, duration: Duration) -> docpipe_core::BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

async fn put_parameter(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .overwrite(true)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("parameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_from_parameter_store_refresh_after_five_minutes() {
    let moto = moto_or_skip!();
    let sdk = moto.sdk_config();
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    for (name, value) in [
        ("/docpipe/test/bedrock_model_id", "amazon.nova-lite-v1:0"),
        ("/docpipe/test/review_confidence_threshold", "0.9"),
        ("/docpipe/test/from_a_newer_version", "x"),
        ("/docpipe/prod/bedrock_model_id", "not-ours"),
    ] {
        put_parameter(&ssm, name, value).await;
    }
    let clock = ManualClock::new();
    let first = AwsSettings::for_env("test");
    // A variable the function started with wins over Parameter Store.
    let source = docpipe_aws::SettingsSource::new(
        &first,
        ssm.clone(),
        clock.clone(),
        vec![("max_document_mib".into(), "10".into())],
    );
    let s = source.current().await.expect("settings");
    assert_eq!(s.bedrock_model_id, "amazon.nova-lite-v1:0");
    assert!((s.stage.review_confidence_threshold - 0.9).abs() < 1e-6);
    assert_eq!(s.stage.max_document_bytes, 10 * 1024 * 1024);

    // Changed in Parameter Store: the cached value serves for five minutes, then the new one.
    put_parameter(
        &ssm,
        "/docpipe/test/bedrock_model_id",
        "amazon.nova-pro-v1:0",
    )
    .await;
    clock.advance(299);
    let s = source.current().await.expect("cached");
    assert_eq!(s.bedrock_model_id, "amazon.nova-lite-v1:0");
    clock.advance(1);
    let s = source.current().await.expect("refreshed");
    assert_eq!(s.bedrock_model_id, "amazon.nova-pro-v1:0");
    // And a bad value is refused rather than half applied.
    put_parameter(&ssm, "/docpipe/test/review_confidence_threshold", "7").await;
    clock.advance(300);
    let err = source.current().await.expect_err("out of range");
    assert_eq!(err.code, ErrorCode::ValidationError);

    // The same through ParameterStore directly, with its own TTL.
    let params = ParameterStore::new(
        ssm,
        "/docpipe/test/",
        Duration::from_secs(60),
        clock.clone(),
    );
    assert_eq!(
        params.all().await.expect("params")["bedrock_model_id"],
        "amazon.nova-pro-v1:0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_cached_for_five_minutes_then_read_again() {
    let moto = moto_or_skip!();
    let sdk = moto.sdk_config();
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    for (name, value) in [
        ("docpipe/test/upload-signing", "u1"),
        ("docpipe/test/webhook-signing", "w1"),
    ] {
        sm.create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("secret");
    }
    let clock = ManualClock::new();
    let secrets = Arc::new(SecretCache::new(sm.clone(), clock.clone()));
    assert_eq!(
        secrets
            .get("docpipe/test/upload-signing")
            .await
            .expect("secret"),
        "u1"
    );
    assert_eq!(
        secrets
            .get("docpipe/test/webhook-signing")
            .await
            .expect("secret"),
        "w1"
    );
    // Rotated: the old value for five minutes, then the new one.
    for (name, value) in [
        ("docpipe/test/upload-signing", "u2"),
        ("docpipe/test/webhook-signing", "w2"),
    ] {
        sm.put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .expect("rotate");
    }
    clock.advance(299);
    assert_eq!(
        secrets
            .get("docpipe/test/upload-signing")
            .await
            .expect("cached"),
        "u1"
    );
    assert_eq!(
        secrets
            .get("docpipe/test/webhook-signing")
            .await
            .expect("cached"),
        "w1"
    );
    clock.advance(1);
    assert_eq!(
        secrets
            .get("docpipe/test/upload-signing")
            .await
            .expect("fresh"),
        "u2"
    );
    assert_eq!(
        secrets
            .get("docpipe/test/webhook-signing")
            .await
            .expect("fresh"),
        "w2"
    );
    assert!(secrets.get("docpipe/test/missing").await.is_err());
}
