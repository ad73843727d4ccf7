//! Events out, end to end on the embedded host: the outbox's `job.status.v1` events (their
//! schema), webhooks created through the API and delivered to receivers on 127.0.0.1 with
//! Standard Webhooks signatures, retries on a virtual clock, the failure list and its
//! replay, the pipeline beside a dead receiver, and `docpipe events tail`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Request, StatusCode};
use chrono::{DateTime, Utc};
use docpipe_api::{ApiPorts, ApiSettings, AppState, LocalPresigner, Uploads};
use docpipe_core::events::{EventSink, JOB_STATUS_V1_SCHEMA};
use docpipe_core::ports::StageSettings;
use docpipe_core::webhooks::{RetryPolicy, WebhookSecret};
use docpipe_core::{BoxFuture, Clock, DocumentKind, JobStatus};
use docpipe_fetch::{FetchPolicy, HttpFetcher};
use docpipe_invoice::RuleExtractor;
use docpipe_local::delivery::DeliveryWorker;
use docpipe_local::embedded::{Content, Embedded, EmbeddedOptions, Submission};
use docpipe_local::orchestrator::{EmbeddedOrchestrator, PoolOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{docpipe, fixture, pdf_ocr};

const OWNER: &str = "alice";

/// Time that moves only when the test says so (the delivery worker's clock).
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Utc::now())))
    }

    fn advance(&self, d: chrono::Duration) {
        let mut now = self.0.lock().expect("clock");
        *now += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        // Only the worker's idle pause in `run`; the tests drive passes themselves.
        Box::pin(tokio::time::sleep(duration.min(Duration::from_millis(50))))
    }
}

/// What a receiver does with a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    /// 500 for the first n requests, then 200.
    FailFirst(usize),
    /// 503 always.
    Down,
    /// Accepts and never answers.
    Hang,
}

#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    answered: u16,
}

/// A webhook receiver on 127.0.0.1, stopped when dropped.
struct Receiver {
    url: String,
    host: String,
    got: Arc<Mutex<Vec<Received>>>,
    /// Woken by every request.
    arrived: Arc<tokio::sync::Notify>,
    mode: Arc<Mutex<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start(mode: Mode) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(mode));
        let seen = Arc::new(AtomicUsize::new(0));
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (g, m, a) = (got.clone(), mode.clone(), arrived.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (g, m, a, seen) = (g.clone(), m.clone(), a.clone(), seen.clone());
                async move {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let mode = *m.lock().expect("mode");
                    let status = match mode {
                        Mode::Ok => StatusCode::OK,
                        Mode::FailFirst(k) if n < k => StatusCode::INTERNAL_SERVER_ERROR,
                        Mode::FailFirst(_) => StatusCode::NO_CONTENT,
                        Mode::Down => StatusCode::SERVICE_UNAVAILABLE,
                        Mode::Hang => {
                            std::future::pending::<()>().await;
                            StatusCode::OK
                        }
                    };
                    g.lock().expect("log").push(Received {
                        headers,
                        body,
                        answered: status.as_u16(),
                    });
                    a.notify_waiters();
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            host: addr.to_string(),
            got,
            arrived,
            mode,
            task,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("log").clone()
    }

    /// The bodies answered 2xx, in arrival order.
    fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }
}

/// The embedded host with the API router and a delivery worker on a manual clock.
struct Host {
    dir: tempfile::TempDir,
    pipeline: Embedded,
    router: axum::Router,
    key: String,
    clock: Arc<ManualClock>,
    worker: DeliveryWorker,
    _orchestrator: EmbeddedOrchestrator,
}

impl Host {
    /// `allowed`: receivers (`host:port`) the SSRF guard lets through, as the
    /// `url_allowed_hosts` setting does.
    fn new(allowed: &[&str]) -> Self {
        Self::with_settings(allowed, StageSettings::default())
    }

    fn with_settings(allowed: &[&str], settings: StageSettings) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let fetcher = HttpFetcher::new(FetchPolicy {
            allowed_hosts: allowed.iter().map(|s| s.to_string()).collect(),
            ..FetchPolicy::default()
        });
        let pipeline = Embedded::open(EmbeddedOptions {
            home: home.clone(),
            settings,
            ocr: pdf_ocr(),
            extractor: Arc::new(RuleExtractor::default()),
            fetcher: Arc::new(fetcher.clone()),
            clock: Arc::new(docpipe_asl::clock::SystemClock),
        })
        .expect("pipeline opens");
        let key = common::create_key(&home, OWNER);
        let orchestrator = EmbeddedOrchestrator::start(
            pipeline.clone(),
            PoolOptions {
                workers: 2,
                queue: 64,
            },
        );
        let ports = pipeline.ports();
        let store = pipeline.store();
        let secret: Arc<[u8]> = Arc::from(&b"events-test-upload-signing-secret"[..]);
        let clock = ManualClock::new();
        let state = AppState::new(
            ApiPorts {
                jobs: ports.jobs.clone(),
                objects: ports.objects.clone(),
                keys: Arc::new(store.clone()),
                idempotency: Arc::new(store.clone()),
                orchestrator: Arc::new(orchestrator.clone()),
                fetcher: ports.fetcher.clone(),
                uploads: Uploads::Local(LocalPresigner::new("http://127.0.0.1", secret)),
                clock: clock.clone(),
                executions: Arc::new(store.clone()),
                pages: Arc::new(docpipe_core::StoredImagePages(ports.objects.clone())),
            },
            ApiSettings::default(),
        )
        .with_webhooks(Arc::new(store.clone()));
        let worker = DeliveryWorker::new(
            store.clone(),
            Arc::new(fetcher),
            clock.clone(),
            RetryPolicy {
                request_timeout: Duration::from_secs(2),
                ..RetryPolicy::default()
            },
        );
        Self {
            dir,
            pipeline,
            router: docpipe_api::router(state),
            key,
            clock,
            worker,
            _orchestrator: orchestrator,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", &self.key)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            ))
            .expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("answer");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("JSON"))
    }

    /// Subscribes `url`; the webhook's id and its secret.
    async fn subscribe(&self, url: &str) -> (String, WebhookSecret) {
        let (status, v) = self
            .call("POST", "/api/v1/webhooks", Some(json!({ "url": url })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let secret = v["data"]["secret"].as_str().expect("secret shown once");
        (
            v["data"]["id"].as_str().expect("id").to_owned(),
            WebhookSecret::parse(secret).expect("a whsec_ secret"),
        )
    }

    /// Submits the invoice fixture as the key's job and runs it to its end.
    async fn run_job(&self) -> String {
        let bytes = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
        let job = self
            .pipeline
            .submit(Submission {
                filename: "invoice.pdf".into(),
                kind: DocumentKind::Invoice,
                content: Content::Bytes(bytes),
                owner: Some(OWNER.into()),
                correlation_id: None,
            })
            .await
            .expect("submitted");
        self.pipeline.execute(&job.id).await.expect("executed");
        job.id.to_string()
    }

    /// The job's statuses, oldest first, as the store recorded them.
    async fn statuses(&self, job_id: &str) -> Vec<JobStatus> {
        let id = docpipe_core::JobId::parse(job_id).expect("id");
        let history = self
            .pipeline
            .ports()
            .jobs
            .history(&id)
            .await
            .expect("history");
        history.into_iter().map(|c| c.status).collect()
    }
}

fn schema() -> (boon::Schemas, boon::SchemaIndex) {
    let doc: Value = serde_json::from_str(JOB_STATUS_V1_SCHEMA).expect("schema is JSON");
    let on_disk: Value = serde_json::from_slice(
        &std::fs::read(common::repo_root().join("schemas/job.status.v1.schema.json"))
            .expect("schema file"),
    )
    .expect("JSON");
    assert_eq!(doc, on_disk, "the compiled-in schema is the shipped file");
    let id = doc["$id"].as_str().expect("$id").to_owned();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler.add_resource(&id, doc).expect("resource");
    let index = compiler
        .compile(&id, &mut schemas)
        .expect("schema compiles");
    (schemas, index)
}

/// Checks a delivery's signature and returns its event.
fn verified(r: &Received, secret: &WebhookSecret) -> Value {
    let h = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {n} header"))
            .to_owned()
    };
    let id = h("webhook-id");
    let ts: i64 = h("webhook-timestamp").parse().expect("timestamp");
    assert!(
        secret.verify(&id, ts, &r.body, &h("webhook-signature")),
        "a valid signature on {id}"
    );
    let event: Value = serde_json::from_slice(&r.body).expect("JSON body");
    assert_eq!(event["id"], id, "webhook-id is the event id");
    event
}

fn statuses_of(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["data"]["status"].as_str().expect("status").to_owned())
        .collect()
}

fn names(statuses: &[JobStatus]) -> Vec<String> {
    statuses.iter().map(|s| s.as_str().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_gets_every_status_change_in_order_with_valid_signatures() {
    let receiver = Receiver::start(Mode::Ok).await;
    let host = Host::new(&[&receiver.host]);
    let (hook, secret) = host.subscribe(&receiver.url).await;
    let (status, listed) = host.call("GET", "/api/v1/webhooks", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"]["webhooks"][0]["id"], hook.as_str());
    assert!(
        listed["data"]["webhooks"][0].get("secret").is_none(),
        "the secret is shown only once: {listed}"
    );

    let job = host.run_job().await;
    let pass = host.worker.run_until_idle().await.expect("delivers");
    let statuses = host.statuses(&job).await;
    assert_eq!(
        names(&statuses),
        [
            "queued",
            "ingesting",
            "ocr",
            "extracting",
            "verifying",
            "completed"
        ]
    );
    assert_eq!(pass.delivered as usize, statuses.len(), "{pass:?}");

    let (schemas, index) = schema();
    let events: Vec<Value> = receiver
        .accepted()
        .iter()
        .map(|r| verified(r, &secret))
        .collect();
    for e in &events {
        if let Err(err) = schemas.validate(e, index) {
            panic!("{e} does not fit the schema: {err}");
        }
        assert_eq!(e["subject"], job.as_str());
        assert_eq!(e["type"], "job.status.v1");
    }
    assert_eq!(
        statuses_of(&events),
        names(&statuses),
        "every change, in order"
    );
    let previous: Vec<Value> = events
        .iter()
        .map(|e| e["data"]["previous_status"].clone())
        .collect();
    assert_eq!(previous[0], Value::Null);
    assert_eq!(previous[1], "queued");
    let last = events.last().expect("final event");
    assert_eq!(
        last["data"]["result_link"],
        format!("/api/v1/jobs/{job}/result")
    );

    // Another pass sends nothing again.
    let again = host.worker.run_until_idle().await.expect("pass");
    assert_eq!(again.delivered, 0);

    // Deleting the webhook stops deliveries; another key cannot see or delete it.
    let (status, _) = host
        .call("DELETE", &format!("/api/v1/webhooks/{hook}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = host
        .call("DELETE", &format!("/api/v1/webhooks/{hook}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    host.run_job().await;
    host.worker.run_until_idle().await.expect("pass");
    assert_eq!(
        receiver.accepted().len(),
        events.len(),
        "nothing after delete"
    );
    drop(host.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_three_times_then_recovers_gets_every_event() {
    let receiver = Receiver::start(Mode::FailFirst(3)).await;
    let host = Host::new(&[&receiver.host]);
    let (_hook, secret) = host.subscribe(&receiver.url).await;
    let job = host.run_job().await;

    let mut passes = 0;
    loop {
        host.worker.run_until_idle().await.expect("pass");
        let statuses = host.statuses(&job).await;
        if receiver.accepted().len() >= statuses.len() {
            break;
        }
        passes += 1;
        assert!(passes < 50, "not delivered after {passes} retries");
        // Past any backoff the first failures can ask for.
        host.clock.advance(chrono::Duration::minutes(10));
    }
    let all = receiver.received();
    assert_eq!(
        all.iter().filter(|r| r.answered >= 500).count(),
        3,
        "three failed attempts"
    );
    let first_failed = verified(&all[0], &secret);
    let events: Vec<Value> = receiver
        .accepted()
        .iter()
        .map(|r| verified(r, &secret))
        .collect();
    assert_eq!(statuses_of(&events), names(&host.statuses(&job).await));
    // Retries carry the same id: a receiver dedupes by it.
    assert_eq!(events[0]["id"], first_failed["id"]);
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "every event once back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receivers_deliveries_reach_the_failure_list_and_replay_works() {
    let receiver = Receiver::start(Mode::Down).await;
    let host = Host::new(&[&receiver.host]);
    let (hook, secret) = host.subscribe(&receiver.url).await;
    let job = host.run_job().await;
    let count = host.statuses(&job).await.len();

    // A day and an hour of retries, an hour at a time.
    for _ in 0..26 {
        host.worker.run_until_idle().await.expect("pass");
        host.clock.advance(chrono::Duration::hours(1));
    }
    host.worker.run_until_idle().await.expect("pass");
    assert!(receiver.accepted().is_empty());
    let (status, v) = host
        .call("GET", &format!("/api/v1/webhooks/{hook}/failures"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let failures = v["data"]["failures"].as_array().expect("failures");
    assert_eq!(
        failures.len(),
        count,
        "every event on the failure list: {v}"
    );
    assert!(failures[0]["attempts"].as_u64().expect("attempts") > 3);
    assert_eq!(failures[0]["event"]["data"]["status"], "queued");

    // The receiver comes back; the tenant replays.
    receiver.set(Mode::Ok);
    let (status, v) = host
        .call("POST", &format!("/api/v1/webhooks/{hook}/replay"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["data"]["replayed"], count);
    host.worker.run_until_idle().await.expect("pass");
    let events: Vec<Value> = receiver
        .accepted()
        .iter()
        .map(|r| verified(r, &secret))
        .collect();
    assert_eq!(statuses_of(&events), names(&host.statuses(&job).await));
    let (_, v) = host
        .call("GET", &format!("/api/v1/webhooks/{hook}/failures"), None)
        .await;
    assert_eq!(v["data"]["failures"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_go_through_the_ssrf_guard() {
    let host = Host::new(&[]);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "ftp://example.com/x",
    ] {
        let (status, v) = host
            .call("POST", "/api/v1/webhooks", Some(json!({ "url": url })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        assert_eq!(v["error"]["code"], "URL_NOT_ALLOWED");
    }
    let (status, v) = host
        .call(
            "POST",
            "/api/v1/webhooks",
            Some(json!({ "url": "https://example.com/x", "event_types": ["job.deleted"] })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = host
        .call("GET", "/api/v1/webhooks/nope/failures", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

/// Jobs per second through the embedded pipeline while the delivery worker runs beside
/// it: once with no webhook, once with a receiver that accepts and never answers.
async fn throughput(dead_receiver: bool, jobs: usize) -> (f64, u64) {
    let receiver = Receiver::start(Mode::Hang).await;
    let host = Host::new(&[&receiver.host]);
    if dead_receiver {
        host.subscribe(&receiver.url).await;
    }
    let worker = host.worker.clone();
    let delivering = tokio::spawn(worker.run(Duration::from_millis(10), std::future::pending()));
    let started = Instant::now();
    for _ in 0..jobs {
        host.run_job().await;
    }
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    delivering.abort();
    let events = host.pipeline.store().last_seq().await.expect("events");
    (rate, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_does_not_slow_the_pipeline() {
    const JOBS: usize = 8;
    let (baseline, events_without) = throughput(false, JOBS).await;
    let (with_dead, events_with) = throughput(true, JOBS).await;
    eprintln!(
        "pipeline throughput: {baseline:.2} jobs/s without webhooks, {with_dead:.2} jobs/s \
         with a receiver that never answers ({:.0}%)",
        100.0 * with_dead / baseline
    );
    // Every job finished and wrote all its events although none could be delivered.
    assert_eq!(events_without, events_with);
    assert_eq!(events_with as usize, JOBS * 6);
}

#[test]
fn events_tail_prints_each_change_as_it_happens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    // The follower starts first, on an empty data folder (from the start, since it may
    // open the folder after the run began).
    let mut tail = docpipe(&home)
        .args(["events", "tail", "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tail starts");
    let out = tail.stdout.take().expect("stdout");
    let run = docpipe(&home)
        .args(["run", "--json"])
        .arg(fixture("invoices/EN16931_Einfach.pdf"))
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ran: Value = serde_json::from_slice(&run.stdout).expect("run --json");
    let job = ran[0]["job_id"].as_str().expect("job id").to_owned();
    let mut lines = BufReader::new(out).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let e: Value = serde_json::from_str(&line).expect("a JSON line");
        assert_eq!(e["subject"], job.as_str());
        let status = e["data"]["status"].as_str().expect("status").to_owned();
        seen.push(status.clone());
        if status == "completed" {
            break;
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert_eq!(
        seen,
        [
            "queued",
            "ingesting",
            "ocr",
            "extracting",
            "verifying",
            "completed"
        ]
    );
    // The whole outbox, without following.
    let all = Command::new(env!("CARGO_BIN_EXE_docpipe"))
        .arg("--home")
        .arg(&home)
        .args(["events", "tail", "--all", "--no-follow", "--job", &job])
        .output()
        .expect("tail --all");
    assert!(all.status.success());
    assert_eq!(String::from_utf8_lossy(&all.stdout).lines().count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_stopped_before_its_job_is_final_fails_it_as_aborted() {
    let host = Host::new(&[]);
    let bytes = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    let job = host
        .pipeline
        .submit(Submission {
            filename: "invoice.pdf".into(),
            kind: DocumentKind::Invoice,
            content: Content::Bytes(bytes),
            owner: Some(OWNER.into()),
            correlation_id: None,
        })
        .await
        .expect("submitted");
    let stop = docpipe_asl::StopHandle::new();
    stop.stop(Some("Operator".into()), Some("stopped by hand".into()));
    let record = host
        .pipeline
        .execute_with_stop(&job.id, Some(stop))
        .await
        .expect("executed");
    assert_eq!(record.status.as_str(), "ABORTED");
    let (status, v) = host
        .call("GET", &format!("/api/v1/jobs/{}", job.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["data"]["status"], "failed", "{v}");
    assert_eq!(v["data"]["error"]["code"], "EXECUTION_ABORTED", "{v}");
    // Its event says so too.
    let events = host
        .pipeline
        .store()
        .events_after(0, 100)
        .await
        .expect("events");
    let last: Value = serde_json::from_str(&events.last().expect("an event").json).expect("JSON");
    assert_eq!(last["data"]["error_code"], "EXECUTION_ABORTED");
}

/// `docpipe gc`'s sweep at chosen times: it removes exactly what has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_exactly_what_has_expired() {
    use docpipe_core::retention::Retention;
    use docpipe_core::{IdempotencyRecord, IdempotencyStore};
    use docpipe_local::retention::sweep;

    // Dedupe on, so finishing the job writes a cache entry.
    let host = Host::with_settings(
        &[],
        StageSettings {
            dedupe_ttl_secs: 3600,
            ..StageSettings::default()
        },
    );
    let store = host.pipeline.store().clone();
    let objects = host.pipeline.objects().clone();
    let done = host.run_job().await;
    let bytes = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    // A job that never ran: unfinished, so it and its document stay whatever their age.
    let waiting = host
        .pipeline
        .submit(Submission {
            filename: "waiting.pdf".into(),
            kind: DocumentKind::Invoice,
            content: Content::Bytes(bytes),
            owner: Some(OWNER.into()),
            correlation_id: None,
        })
        .await
        .expect("submitted")
        .id
        .to_string();
    let t0 = Utc::now();
    store
        .put_if_absent(&IdempotencyRecord {
            owner: OWNER.into(),
            key: "k1".into(),
            request_hash: "h".into(),
            job_id: docpipe_core::JobId::parse(&done).expect("id"),
            created_at: t0,
        })
        .await
        .expect("record");
    let policy = Retention::default();
    let at = |d: chrono::Duration| t0 + d;
    let jobs = |r: &docpipe_local::retention::SweepReport| r.jobs.clone();

    // Within every period: nothing goes.
    let r = sweep(
        &store,
        &objects,
        &policy,
        at(chrono::Duration::minutes(30)),
        false,
    )
    .await
    .expect("sweep");
    assert_eq!(r, Default::default(), "nothing expired yet: {r:?}");

    // Past the dedupe hour and the idempotency day: those, and nothing else.
    let dry = sweep(
        &store,
        &objects,
        &policy,
        at(chrono::Duration::hours(25)),
        true,
    )
    .await
    .expect("dry run");
    assert_eq!(
        (dry.idempotency_records, dry.dedupe_entries),
        (1, 1),
        "{dry:?}"
    );
    assert!(jobs(&dry).is_empty());
    let r = sweep(
        &store,
        &objects,
        &policy,
        at(chrono::Duration::hours(25)),
        false,
    )
    .await
    .expect("sweep");
    assert_eq!(r, dry, "a dry run says what the sweep does");
    assert!(store.get(OWNER, "k1").await.expect("read").is_none());

    // Past a week: the final job (history, events, executions) goes; the waiting one and
    // every document stay.
    let r = sweep(
        &store,
        &objects,
        &policy,
        at(chrono::Duration::days(8)),
        false,
    )
    .await
    .expect("sweep");
    assert_eq!(jobs(&r), vec![done.clone()], "{r:?}");
    assert!(r.object_folders.is_empty(), "{r:?}");
    let (status, _) = host
        .call("GET", &format!("/api/v1/jobs/{done}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = host
        .call("GET", &format!("/api/v1/jobs/{waiting}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let left = store.events_after(0, 100).await.expect("events");
    assert!(
        left.iter().all(|e| e.job_id.as_str() == waiting),
        "{left:?}"
    );

    // Past a month: the finished job's documents and results go; the waiting job's stay.
    let r = sweep(
        &store,
        &objects,
        &policy,
        at(chrono::Duration::days(31)),
        false,
    )
    .await
    .expect("sweep");
    assert!(r.jobs.is_empty());
    assert!(!r.object_folders.is_empty());
    assert!(r.object_folders.iter().all(|f| f.ends_with(&done)), "{r:?}");
    assert!(
        r.object_folders.iter().any(|f| f.starts_with("results/")),
        "{r:?}"
    );
    let (status, v) = host
        .call("GET", &format!("/api/v1/jobs/{waiting}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let folders = objects.folders().await.expect("folders");
    assert!(
        folders
            .iter()
            .any(|f| f.prefix == "uploads" && f.name == waiting),
        "{folders:?}"
    );
    let again = sweep(
        &store,
        &objects,
        &policy,
        at(chrono::Duration::days(31)),
        false,
    )
    .await
    .expect("sweep");
    assert_eq!(again, Default::default(), "a second sweep finds nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_jobs_document_can_go_at_once_keeping_its_result() {
    use docpipe_core::retention::Retention;
    let host = Host::new(&[]);
    let job = host.run_job().await;
    let policy = Retention {
        delete_document_when_final: true,
        ..Retention::default()
    };
    let store = host.pipeline.store().clone();
    let objects = host.pipeline.objects().clone();
    let r = docpipe_local::retention::sweep(&store, &objects, &policy, Utc::now(), false)
        .await
        .expect("sweep");
    assert_eq!(r.documents_dropped, vec![job.clone()]);
    let id = docpipe_core::JobId::parse(&job).expect("id");
    let stored = host.pipeline.job(&id).await.expect("job");
    for key in [&stored.keys.upload, &stored.keys.document]
        .into_iter()
        .flatten()
    {
        assert_eq!(
            docpipe_core::ObjectStore::size(&objects, key)
                .await
                .expect("size"),
            None,
            "{key} deleted"
        );
    }
    let (status, v) = host
        .call("GET", &format!("/api/v1/jobs/{job}/result"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the result stays: {v}");
    let r = docpipe_local::retention::sweep(&store, &objects, &policy, Utc::now(), false)
        .await
        .expect("sweep");
    assert!(r.documents_dropped.is_empty());
}

/// `docpipe watch`: 20 files, a kill -9 mid-way, a restart: each file is one job, moved
/// once to done/ with its job id.
#[test]
fn watch_takes_each_file_exactly_once_across_a_kill() {
    const FILES: usize = 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).expect("drop folder");
    let invoice = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    for i in 0..FILES {
        std::fs::write(drop.join(format!("invoice-{i:02}.pdf")), &invoice).expect("file");
    }
    let mut watcher = docpipe(&home)
        .arg("watch")
        .arg(&drop)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch starts");
    let out = watcher.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    for _ in 0..3 {
        let line = lines.next().expect("a file taken").expect("line");
        assert!(line.starts_with("completed job_"), "{line}");
    }
    // Killed mid-way through the next files.
    watcher.kill().expect("kill -9");
    let _ = watcher.wait();

    let again = docpipe(&home)
        .arg("watch")
        .arg(&drop)
        .arg("--once")
        .output()
        .expect("watch --once");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&drop)
        .expect("drop")
        .flatten()
        .filter(|e| e.path().is_file())
        .collect();
    assert!(left.is_empty(), "every file taken: {left:?}");
    let mut moved: Vec<String> = std::fs::read_dir(drop.join("done"))
        .expect("done/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    moved.sort();
    assert_eq!(moved.len(), FILES, "{moved:?}");
    let failed = std::fs::read_dir(drop.join("failed"))
        .expect("failed/")
        .count();
    assert_eq!(failed, 0);
    let list = docpipe(&home)
        .args(["jobs", "list", "--json", "--limit", "100"])
        .output()
        .expect("jobs list");
    let listed: Value = serde_json::from_slice(&list.stdout).expect("jobs JSON");
    let jobs = listed["jobs"]
        .as_array()
        .or(listed.as_array())
        .expect("jobs")
        .clone();
    assert_eq!(jobs.len(), FILES, "one job per file, none twice");
    for job in &jobs {
        assert_eq!(job["status"], "completed", "{job}");
        let id = job["job_id"].as_str().or(job["id"].as_str()).expect("id");
        let file = job["filename"].as_str().expect("filename");
        assert!(
            moved.contains(&format!("{id}-{file}")),
            "{id}-{file} in done/: {moved:?}"
        );
    }
}

/// The intake schema and the parser agree: what one takes the other takes.
#[test]
fn intake_messages_fit_the_schema_exactly_when_they_parse() {
    use docpipe_core::intake::{INTAKE_V1_SCHEMA, IntakeMessage};
    let doc: Value = serde_json::from_str(INTAKE_V1_SCHEMA).expect("schema is JSON");
    let id = doc["$id"].as_str().expect("$id").to_owned();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(&id, doc).expect("resource");
    let index = compiler.compile(&id, &mut schemas).expect("compiles");
    for (msg, valid) in [
        (
            json!({"document": {"url": "https://example.com/a.pdf"}, "idempotency_key": "k"}),
            true,
        ),
        (
            json!({"document": {"s3_uri": "s3://docs-bucket/incoming/acme/a.pdf"}, "kind": "blueprint",
                   "idempotency_key": "k", "callback": "https://example.com/cb"}),
            true,
        ),
        (json!({"document": {}, "idempotency_key": "k"}), false),
        (
            json!({"document": {"url": "https://a/b", "s3_uri": "s3://bbb/k"}, "idempotency_key": "k"}),
            false,
        ),
        (
            json!({"document": {"url": "ftp://a/b"}, "idempotency_key": "k"}),
            false,
        ),
        (json!({"document": {"url": "https://a/b"}}), false),
        (
            json!({"document": {"url": "https://a/b"}, "idempotency_key": ""}),
            false,
        ),
        (
            json!({"document": {"url": "https://a/b"}, "idempotency_key": "k", "kind": "menu"}),
            false,
        ),
        (
            json!({"document": {"url": "https://a/b"}, "idempotency_key": "k", "x": 1}),
            false,
        ),
    ] {
        let by_schema = schemas.validate(&msg, index).is_ok();
        let by_parser = IntakeMessage::parse(msg.to_string().as_bytes()).is_ok();
        assert_eq!((by_schema, by_parser), (valid, valid), "{msg}");
    }
}

/// `docpipe serve` delivers webhooks itself: a job created over HTTP reaches a receiver on
/// 127.0.0.1 with every change, signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docpipe_serve_delivers_webhooks() {
    let receiver = Receiver::start(Mode::Ok).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let key = common::create_key(&home, OWNER);
    let mut child = docpipe(&home)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DOCPIPE_URL_ALLOWED_HOSTS", &receiver.host)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let base = line
        .trim()
        .strip_prefix("docpipe listening on ")
        .expect("listening")
        .to_owned();
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/api/v1/webhooks"))
        .header("x-api-key", &key)
        .json(&json!({ "url": receiver.url }))
        .send()
        .await
        .expect("create webhook")
        .json()
        .await
        .expect("JSON");
    let secret =
        WebhookSecret::parse(created["data"]["secret"].as_str().expect("secret")).expect("whsec_");
    let bytes = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    use base64::Engine;
    let job: Value = http
        .post(format!("{base}/api/v1/jobs"))
        .header("x-api-key", &key)
        .json(&json!({ "document": {
            "content_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
            "filename": "invoice.pdf" } }))
        .send()
        .await
        .expect("create job")
        .json()
        .await
        .expect("JSON");
    let job_id = job["data"]["job_id"].as_str().expect("job id").to_owned();
    let mut events = Vec::new();
    for _ in 0..100 {
        let arrived = receiver.arrived.notified();
        events = receiver
            .accepted()
            .iter()
            .map(|r| verified(r, &secret))
            .collect::<Vec<_>>();
        if events
            .last()
            .is_some_and(|e| e["data"]["status"] == "completed")
        {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), arrived).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        statuses_of(&events),
        [
            "queued",
            "ingesting",
            "ocr",
            "extracting",
            "verifying",
            "completed"
        ]
    );
    assert!(events.iter().all(|e| e["subject"] == job_id.as_str()));
}
