//! Review and retry on the AWS host: the API Lambda's router (docpipe-api) over the AWS
//! adapters on a moto server (DynamoDB jobs, keys and idempotency, S3 objects, Step
//! Functions), each request an API Gateway HTTP API (payload v2) event fed through
//! `lambda_http`'s own adapter, each answer the serialised Lambda response.
//!
//! moto runs no Lambda, so the pipeline's stages are played by the test the way the stage
//! functions write: the job moves through its statuses in DynamoDB and the verified
//! result lands in S3. Everything the API does is the real code over the real adapters.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use docpipe_api::{ApiPorts, ApiSettings, AppState, Presigner, Uploads};
use docpipe_aws::{AwsAdapters, AwsSettings, SfnOrchestrator, SystemClock, schema};
use docpipe_core::keys::{generate_secret, hash_key};
use docpipe_core::ports::Result;
use docpipe_core::result::{Field, InvoiceResult, ResultSource};
use docpipe_core::stages::verify::apply_checks;
use docpipe_core::{
    ApiKey, ErrorCode, JobId, JobPatch, JobStatus, JobStore, KeyStore, ObjectKey, ObjectStore,
    StageError, StoredImagePages, UploadId, lifecycle,
};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use serde_json::{Value, json};
use support::Moto;

macro_rules! moto_or_skip {
    () => {
        match Moto::start().await {
            Some(m) => m,
            None => return,
        }
    };
}

/// Uploads are not part of these tests.
struct NoUploads;

#[async_trait]
impl Presigner for NoUploads {
    async fn presign_put(
        &self,
        _: &UploadId,
        _: &ObjectKey,
        _: DateTime<Utc>,
        _: u64,
    ) -> Result<String> {
        Err(StageError::unavailable("no uploads in this test"))
    }
}

struct AwsHost {
    adapters: AwsAdapters,
    sfn: Arc<SfnOrchestrator>,
    router: axum::Router,
}

impl AwsHost {
    async fn deploy(moto: &Moto) -> Self {
        Self::deploy_with(moto, Arc::new(NoFetch), None).await
    }

    /// With a fetcher (it checks webhook URLs) and the webhook queue replays go to.
    async fn deploy_with(
        moto: &Moto,
        fetcher: Arc<dyn docpipe_core::Fetcher>,
        webhook_queue_url: Option<String>,
    ) -> Self {
        let mut settings = AwsSettings::for_env("test");
        settings.endpoint_url = Some(moto.url());
        settings.webhook_queue_url = webhook_queue_url;
        let adapters = AwsAdapters::new(settings, moto.sdk_config());
        schema::create_tables(&adapters.dynamodb, &adapters.settings)
            .await
            .expect("tables");
        for bucket in [
            &adapters.settings.documents_bucket,
            &adapters.settings.results_bucket,
        ] {
            adapters
                .s3
                .create_bucket()
                .bucket(bucket)
                .send()
                .await
                .expect("bucket");
        }
        let client = aws_sdk_sfn::Client::new(&moto.sdk_config());
        let arn = client
            .create_state_machine()
            .name("docpipe-review-test")
            .definition(docpipe_core::PIPELINE_DEFINITION)
            .role_arn("arn:aws:iam::123456789012:role/docpipe-test-sfn")
            .send()
            .await
            .expect("state machine")
            .state_machine_arn;
        let sfn = Arc::new(SfnOrchestrator::new(client, &arn));
        let state = AppState::new(
            ApiPorts {
                jobs: Arc::new(adapters.jobs.clone()),
                objects: Arc::new(adapters.objects.clone()),
                keys: Arc::new(adapters.keys.clone()),
                idempotency: Arc::new(adapters.idempotency.clone()),
                orchestrator: sfn.clone(),
                fetcher,
                uploads: Uploads::Presigned(Arc::new(NoUploads)),
                clock: Arc::new(SystemClock),
                executions: sfn.clone(),
                pages: Arc::new(StoredImagePages(Arc::new(adapters.objects.clone()))),
            },
            ApiSettings::default(),
        )
        .with_health_probe(Arc::new(adapters.health()))
        .with_webhooks(Arc::new(adapters.webhooks.clone()));
        Self {
            adapters,
            sfn,
            router: docpipe_api::router(state),
        }
    }

    async fn key(&self, name: &str) -> String {
        let secret = generate_secret().expect("secret");
        self.adapters
            .keys
            .create(&ApiKey {
                name: name.to_owned(),
                key_hash: hash_key(&secret),
                active: true,
                rate_limit_per_minute: 10_000,
                created_at: Utc::now(),
                last_used_at: None,
                request_count: 0,
                delete_document_when_final: false,
            })
            .await
            .expect("key");
        secret
    }

    /// One request as API Gateway hands it to the function; (status, JSON body).
    async fn send(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": query,
            "headers": {
                "accept": "application/json",
                "content-type": "application/json",
                "host": "a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com",
                "x-api-key": key
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "a1b2c3d4e5",
                "domainName": "a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com",
                "domainPrefix": "a1b2c3d4e5",
                "http": {
                    "method": method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.7",
                    "userAgent": "docpipe-tests/1.0"
                },
                "requestId": "review-test",
                "routeKey": "$default",
                "stage": "$default",
                "time": "22/Nov/2026:21:00:00 +0000",
                "timeEpoch": 1795381200000u64
            },
            "isBase64Encoded": false
        });
        if !query.is_empty() {
            let params: serde_json::Map<String, Value> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect();
            event["queryStringParameters"] = Value::Object(params);
        }
        if let Some(body) = body {
            event["body"] = Value::String(body.to_string());
        }
        let request: LambdaRequest = serde_json::from_value(event).expect("an API Gateway event");
        let response = Adapter::from(self.router.clone())
            .oneshot(LambdaEvent::new(request, Context::default()))
            .await
            .expect("the router never fails");
        let out = serde_json::to_value(&response).expect("serialisable response");
        let raw = out["body"].as_str().unwrap_or_default();
        let bytes = if out["isBase64Encoded"].as_bool().unwrap_or(false) {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .expect("base64 body")
        } else {
            raw.as_bytes().to_vec()
        };
        let status = out["statusCode"].as_u64().expect("statusCode") as u16;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Submits a document through the API (its execution starts in Step Functions); the
    /// job id.
    async fn submit(&self, key: &str) -> JobId {
        let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(pdf);
        let (st, v) = self
            .send(
                "POST",
                "/api/v1/jobs",
                key,
                Some(json!({"document": {"content_base64": b64, "filename": "a.pdf"}})),
            )
            .await;
        assert_eq!(st, 202, "{v}");
        JobId::parse(v["data"]["job_id"].as_str().expect("id")).expect("job id")
    }

    /// What the stage functions would do for a document that reads doubtfully: the job
    /// moves through its stages and its verified result (needing review) lands in S3.
    async fn play_stages_to_review(&self, id: &JobId) {
        let jobs = &self.adapters.jobs;
        let now = Utc::now();
        for status in [
            JobStatus::Ingesting,
            JobStatus::Extracting,
            JobStatus::Verifying,
        ] {
            jobs.transition(id, status, JobPatch::default(), now)
                .await
                .expect("stage");
        }
        let mut result = InvoiceResult::new(ResultSource::Visual);
        for (name, value, conf) in [
            ("invoice_number", "INV-7", 0.55),
            ("issue_date", "2026-11-20", 0.95),
            ("currency", "EUR", 0.99),
            ("net_total", "100.00", 0.95),
            ("tax_total", "19.00", 0.95),
            ("gross_total", "119.00", 0.95),
        ] {
            result.set(name, Field::new(value, conf));
        }
        apply_checks(&mut result, 0.8);
        assert!(result.needs_review);
        let key = ObjectKey::for_job("results", id, "verified.json");
        self.adapters
            .objects
            .put(&key, serde_json::to_vec(&result).expect("json"))
            .await
            .expect("result stored");
        jobs.transition(
            id,
            JobStatus::NeedsReview,
            JobPatch {
                result_key: Some(key),
                ..JobPatch::default()
            },
            now,
        )
        .await
        .expect("to review");
    }
}

struct NoFetch;

#[async_trait]
impl docpipe_core::Fetcher for NoFetch {
    async fn check(&self, _: &str) -> Result<()> {
        Err(StageError::new(
            ErrorCode::UrlNotAllowed,
            "no fetching here",
        ))
    }
    async fn fetch(&self, _: &str, _: u64) -> Result<docpipe_core::Fetched> {
        Err(StageError::new(
            ErrorCode::UrlNotAllowed,
            "no fetching here",
        ))
    }
}

/// `GET /health` as the API Lambda answers it: the jobs store, every table, both buckets
/// and the state machine reached, the model and region named. (The calls it makes are the
/// ones the API's role grants: `tests/iam.rs` of docpipe-aws-mock-tests holds the
/// template to `permissions::needs(Api)`, which lists them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_200_when_every_dependency_is_reached() {
    let moto = moto_or_skip!();
    let host = AwsHost::deploy(&moto).await;
    let (status, body) = host.send("GET", "/health", "", None).await;
    assert_eq!(status, 200, "{body}");
    let checks = &body["data"]["checks"];
    for name in [
        "store",
        "object_store",
        "orchestrator",
        "jobs_table",
        "api_keys_table",
        "idempotency_table",
        "preview_cache_table",
        "documents_bucket",
        "results_bucket",
        "bedrock",
        "textract",
    ] {
        assert_eq!(checks[name], "ok", "{name}: {body}");
    }
    assert_eq!(
        body["data"]["details"]["bedrock"],
        "model anthropic.claude-3-haiku-20240307-v1:0"
    );
    assert_eq!(
        body["data"]["details"]["textract"],
        "DetectDocumentText in us-east-1"
    );

    // The signing secrets, when the settings name them: read (through the cache), never
    // shown.
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config());
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
    let mut settings = host.adapters.settings.clone();
    settings.upload_signing_secret = Some("docpipe/test/upload-signing".into());
    settings.webhook_secret = Some("docpipe/test/missing".into());
    let probe = AwsAdapters::new(settings, moto.sdk_config()).health();
    let checks: std::collections::BTreeMap<String, bool> = docpipe_core::HealthProbe::check(&probe)
        .await
        .into_iter()
        .map(|(name, r)| (name, r.is_ok()))
        .collect();
    assert_eq!(
        checks.get("upload_signing_secret"),
        Some(&true),
        "{checks:?}"
    );
    assert_eq!(checks.get("webhook_secret"), Some(&false), "{checks:?}");

    // A bucket that is gone: 503, and the check names it.
    host.adapters
        .s3
        .delete_bucket()
        .bucket(&host.adapters.settings.results_bucket)
        .send()
        .await
        .expect("delete the empty results bucket");
    let (status, body) = host.send("GET", "/health", "", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["data"]["status"], "degraded");
    assert_ne!(body["data"]["checks"]["results_bucket"], "ok", "{body}");
    assert_eq!(body["data"]["checks"]["documents_bucket"], "ok", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_is_stored_in_dynamodb_and_retry_starts_an_execution() {
    let moto = moto_or_skip!();
    let host = AwsHost::deploy(&moto).await;
    let alice = host.key("alice").await;
    let bob = host.key("bob").await;

    // Review: the queue, a refused correction, a stored one, the race's loser.
    let id = host.submit(&alice).await;
    host.play_stages_to_review(&id).await;
    let (st, v) = host.send("GET", "/api/v1/reviews", &alice, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["reviews"][0]["job"]["job_id"], id.as_str());
    let (_, v) = host.send("GET", "/api/v1/reviews", &bob, None).await;
    assert_eq!(v["data"]["reviews"], json!([]));
    let review = format!("/api/v1/jobs/{id}/review");
    let (st, v) = host
        .send(
            "POST",
            &review,
            &alice,
            Some(json!({"action": "correct", "fields": {"tax_total": "20.00"}})),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"]["code"], "CHECKS_FAILED");
    let (st, v) = host
        .send(
            "POST",
            &review,
            &alice,
            Some(json!({"action": "correct", "fields": {"invoice_number": "INV-17"}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["job"]["status"], "completed");
    let (st, v) = host
        .send("POST", &review, &alice, Some(json!({"action": "approve"})))
        .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "JOB_STATE_CONFLICT");
    // In DynamoDB: the history entry names the reviewer and the field.
    let history = host.adapters.jobs.history(&id).await.expect("history");
    let last = history.last().expect("entries");
    assert_eq!(last.status, JobStatus::Completed);
    let op = last.operator.as_ref().expect("a reviewer's change");
    assert_eq!(op.by, "alice");
    assert_eq!(op.fields, ["invoice_number"]);
    let (_, r) = host
        .send("GET", &format!("/api/v1/jobs/{id}/result"), &alice, None)
        .await;
    assert_eq!(r["data"]["fields"]["invoice_number"]["value"], "INV-17");
    let (_, r) = host
        .send(
            "GET",
            &format!("/api/v1/jobs/{id}/result?version=machine"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r["data"]["fields"]["invoice_number"]["value"], "INV-7");

    // Retry: a failed job runs again as a new Step Functions execution.
    let failed = host.submit(&alice).await;
    lifecycle::fail(
        &host.adapters.jobs,
        &SystemClock,
        &failed,
        &StageError::new(ErrorCode::ServiceUnavailable, "Textract throttled"),
    )
    .await
    .expect("failed");
    let retry = format!("/api/v1/jobs/{failed}/retry");
    // Its execution has not ended (moto runs no task): a retry waits for it.
    let (st, v) = host.send("POST", &retry, &alice, None).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "JOB_STATE_CONFLICT");
    host.sfn
        .stop(failed.as_str(), "the execution ended")
        .await
        .expect("stopped");
    let (st, v) = host.send("POST", &retry, &alice, None).await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["data"]["attempt"], 1);
    let (st, v) = host.send("POST", &retry, &alice, None).await;
    assert_eq!(st, 409, "queued, not failed: {v}");
    let info = host
        .sfn
        .describe(&format!("{failed}-r1"))
        .await
        .expect("the retry's execution exists");
    assert_eq!(info.status, "RUNNING");
    let (st, v) = host
        .send(
            "GET",
            &format!("/api/v1/jobs/{failed}/executions"),
            &alice,
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["data"]["executions"]
        .as_array()
        .expect("executions")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, [failed.to_string(), format!("{failed}-r1")]);
    let (st, _) = host.send("POST", &retry, &bob, None).await;
    assert_eq!(st, 404, "another tenant's job does not exist");
}

/// The webhook API on the AWS host: subscriptions in DynamoDB, a delivery that failed for a
/// day on the webhook's failure list, replayed through the webhook queue to the receiver
/// once it is back, signed with the secret shown at creation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_live_in_dynamodb_and_failures_are_listed_and_replayed() {
    use docpipe_aws::sqs::{Queue, SqsBatch};
    use docpipe_aws::webhooks::{Delivered, Deliverer};
    use docpipe_core::events::JobStatusEvent;
    use docpipe_core::webhooks::{RetryPolicy, WebhookSecret};
    use docpipe_fetch::{FetchPolicy, HttpFetcher};

    let moto = moto_or_skip!();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config());
    let queue_url = sqs
        .create_queue()
        .queue_name("docpipe-test-webhooks")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    // A receiver on 127.0.0.1 that is down at first: a free port, listened on later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let host = format!("127.0.0.1:{port}");
    let sender = Arc::new(HttpFetcher::new(FetchPolicy {
        allowed_hosts: vec![host.clone()],
        ..FetchPolicy::default()
    }));
    let aws = AwsHost::deploy_with(&moto, sender.clone(), Some(queue_url.clone())).await;
    let key = aws.key("acme").await;

    let (status, created) = aws
        .send(
            "POST",
            "/api/v1/webhooks",
            &key,
            Some(json!({"url": format!("http://{host}/hook")})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    let secret = WebhookSecret::parse(
        created["data"]["secret"]
            .as_str()
            .expect("secret shown once"),
    )
    .expect("a secret");
    let (status, listed) = aws.send("GET", "/api/v1/webhooks", &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"]["webhooks"].as_array().map(Vec::len), Some(1));
    assert!(listed["data"]["webhooks"][0].get("secret").is_none());

    // An event of one of acme's jobs, as the bus hands it to the queue.
    let now = Utc::now();
    let mut job = docpipe_core::Job::new(
        JobId::generate(now),
        docpipe_core::DocumentKind::Invoice,
        "a.pdf",
        now,
    );
    job.owner = Some("acme".into());
    aws.adapters.jobs.create(&job).await.expect("job");
    let event = JobStatusEvent::for_change(&job, None, 1, "urn:docpipe:aws", now);
    let envelope = json!({"source": "docpipe", "detail-type": "job.status.v1",
        "detail": serde_json::to_value(&event).expect("event")});
    let message = |body: String| -> SqsBatch {
        serde_json::from_value(
            json!({"Records": [{"messageId": "m1", "receiptHandle": "r1",
            "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:docpipe-test-webhooks"}]}),
        )
        .expect("batch")
    };
    let dead_letters = Queue::new(sqs.clone(), &queue_url);
    let no_queue = |_: &docpipe_aws::sqs::SqsMessage| None;
    let deliverer = |policy: RetryPolicy| Deliverer {
        webhooks: &aws.adapters.webhooks,
        jobs: &aws.adapters.jobs,
        sender: &*sender,
        clock: &SystemClock,
        policy,
        queue: &no_queue,
        dead_letters: &dead_letters,
    };
    // Nothing listens yet and its day is over at once: on the failure list.
    let over = RetryPolicy {
        give_up_after: std::time::Duration::ZERO,
        ..RetryPolicy::default()
    };
    let batch = message(envelope.to_string());
    assert_eq!(
        deliverer(over)
            .deliver(&batch.records[0])
            .await
            .expect("tried"),
        Delivered::Done {
            delivered: 0,
            dead: 1
        }
    );
    let (status, failures) = aws
        .send(
            "GET",
            &format!("/api/v1/webhooks/{id}/failures"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{failures}");
    let list = failures["data"]["failures"].as_array().expect("failures");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], event.id.as_str());
    assert_eq!(list[0]["event"]["subject"], job.id.as_str());
    assert!(
        list[0]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    // Another tenant sees none of it.
    let other = aws.key("globex").await;
    let (status, _) = aws
        .send(
            "GET",
            &format!("/api/v1/webhooks/{id}/failures"),
            &other,
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Replay: back on the queue for this webhook, off the list.
    let (status, replayed) = aws
        .send("POST", &format!("/api/v1/webhooks/{id}/replay"), &key, None)
        .await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["data"]["replayed"], 1);
    let (_, failures) = aws
        .send(
            "GET",
            &format!("/api/v1/webhooks/{id}/failures"),
            &key,
            None,
        )
        .await;
    assert_eq!(
        failures["data"]["failures"].as_array().map(Vec::len),
        Some(0)
    );
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1);
    let replay_body = received[0].body().expect("body").to_owned();

    // The receiver is back: the replay is delivered, signed with the webhook's secret.
    let got: Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().expect("lock").push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&host).await.expect("bind");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let batch = message(replay_body);
    assert_eq!(
        deliverer(RetryPolicy::default())
            .deliver(&batch.records[0])
            .await
            .expect("delivered"),
        Delivered::Done {
            delivered: 1,
            dead: 0
        }
    );
    let requests = got.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    assert_eq!(header("webhook-id"), event.id);
    let timestamp: i64 = header("webhook-timestamp").parse().expect("timestamp");
    assert!(secret.verify(
        &event.id,
        timestamp,
        body.as_bytes(),
        header("webhook-signature")
    ));
    server.abort();

    let (status, _) = aws
        .send("DELETE", &format!("/api/v1/webhooks/{id}"), &key, None)
        .await;
    assert!((200..300).contains(&status), "{status}");
    let (_, listed) = aws.send("GET", "/api/v1/webhooks", &key, None).await;
    assert_eq!(listed["data"]["webhooks"].as_array().map(Vec::len), Some(0));
}
