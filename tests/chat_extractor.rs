//! Invoices read by a language model behind an OpenAI-compatible chat-completions server:
//! a fake server on 127.0.0.1 (started and stopped by each test) answers with recorded
//! replies (`fixtures/chat/`), and the job goes through the real state machine, so retries
//! and timeouts are the definition's, on virtual time where they wait.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use common::{Harness, docpipe, fixture};
use docpipe_asl::clock::VirtualClock;
use docpipe_core::invoice_record::{Judgement, schema, strict_schema};
use docpipe_core::ports::Result;
use docpipe_core::{Document, ErrorCode, Job, JobStatus, MediaType, Ocr, StageError};
use docpipe_local::chat_extractor::{ChatConfig, ChatExtractor};
use docpipe_pdf::{PdfLimits, extract_document};
use serde_json::Value;

const MODEL: &str = "qwen2.5:7b-instruct";
const INVOICE: &str = "invoices/EN16931_Einfach.pdf";

/// One answer of the fake server.
#[derive(Clone, Copy)]
enum Answer {
    /// A status and a recorded body from `fixtures/chat/`.
    Reply(u16, &'static str),
    /// Keep the request open and never answer.
    Hold,
}

/// What the fake server was sent.
#[derive(Debug, Clone)]
struct Received {
    body: Value,
    authorization: Option<String>,
}

#[derive(Default)]
struct Script {
    answers: Vec<Answer>,
    received: Mutex<Vec<Received>>,
}

/// A fake OpenAI-compatible server on 127.0.0.1: the n-th request gets the n-th answer
/// (the last one repeats). Dropping it stops it.
struct FakeModelServer {
    base_url: String,
    script: Arc<Script>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeModelServer {
    async fn start(answers: &[Answer]) -> Self {
        let script = Arc::new(Script {
            answers: answers.to_vec(),
            ..Script::default()
        });
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(answer))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            script,
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.script.received.lock().expect("lock").clone()
    }
}

impl Drop for FakeModelServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(script): State<Arc<Script>>, headers: HeaderMap, body: String) -> Response {
    let n = {
        let mut received = script.received.lock().expect("lock");
        received.push(Received {
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        received.len() - 1
    };
    match script.answers.get(n).or(script.answers.last()) {
        Some(Answer::Reply(status, file)) => {
            let body = std::fs::read(fixture(&format!("chat/{file}"))).expect("fixture");
            let status = StatusCode::from_u16(*status).expect("status");
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Some(Answer::Hold) | None => std::future::pending().await,
    }
}

/// The PDF text layer read in-process (a trusted fixture), so no child process lets the
/// paused runtime jump its timers.
struct InProcessText;

#[async_trait::async_trait]
impl Ocr for InProcessText {
    async fn recognize(&self, bytes: Vec<u8>, _: MediaType) -> Result<Document> {
        extract_document(&bytes, &PdfLimits::default())
            .map_err(|e| StageError::new(ErrorCode::DocumentUnreadable, e.to_string()))
    }
}

/// What one job through the embedded pipeline came to.
struct Outcome {
    job: Job,
    result: Option<Value>,
    received: Vec<Received>,
    lambda_failures: usize,
    waited: Duration,
}

/// Runs the fixture invoice through the embedded pipeline with the chat extractor pointed
/// at `base_url`, on virtual time.
async fn run_job(base_url: &str, timeout: Duration) -> (Job, Option<Value>, usize, Duration) {
    let clock = Arc::new(VirtualClock::new(
        Utc.with_ymd_and_hms(2026, 2, 2, 8, 0, 0)
            .single()
            .expect("a date"),
    ));
    let chat = ChatExtractor::new(
        ChatConfig {
            base_url: base_url.to_owned(),
            model: MODEL.to_owned(),
            api_key: None,
            timeout,
            max_tokens: 4096,
            embedded_xml: false,
        },
        clock.clone(),
    )
    .expect("a valid configuration");
    let h = Harness::with(Arc::new(InProcessText), Arc::new(chat), clock.clone());
    let id = h
        .pipeline
        .submit_file(&fixture(INVOICE), docpipe_core::DocumentKind::Invoice)
        .await
        .expect("submitted")
        .id;
    let record = h.pipeline.execute(&id).await.expect("executes");
    let failures = record
        .history
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "LambdaFunctionFailed")
        .count();
    let job = h.pipeline.job(&id).await.expect("job");
    let result = h.pipeline.result_json(&job).await.expect("result read");
    (job, result, failures, clock.elapsed())
}

async fn run_with(answers: &[Answer], timeout: Duration) -> Outcome {
    let server = FakeModelServer::start(answers).await;
    let (job, result, lambda_failures, waited) = run_job(&server.base_url, timeout).await;
    Outcome {
        job,
        result,
        received: server.received(),
        lambda_failures,
        waited,
    }
}

fn failure(job: &Job) -> (ErrorCode, String) {
    assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
    let e = job.error.clone().expect("a failed job has its error");
    (e.code, e.message)
}

fn assert_read_and_verified(result: &Value) {
    assert_eq!(result["source"], "llm");
    assert_eq!(result["needs_review"], false, "{result:#}");
    let gross = &result["fields"]["gross_total"];
    assert_eq!(gross["value"], "529.87");
    // Rated by the evidence: printed on page 2, where its box is.
    assert_eq!(
        gross["confidence"].as_f64().map(|c| (c * 100.0).round()),
        Some(90.0)
    );
    assert_eq!(gross["page"], 2);
    assert!(gross["box"].is_array(), "{gross}");
    assert_eq!(result["lines"].as_array().map(Vec::len), Some(2));
    let checks = result["checks"].as_array().expect("checks");
    for name in [
        "required_fields",
        "lines_sum_to_net",
        "net_plus_tax_equals_gross",
        "tax_rates_applied",
    ] {
        let check = checks.iter().find(|c| c["name"] == name).expect(name);
        assert_eq!(check["passed"], true, "{check}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docpipe_run_reads_an_invoice_through_a_local_model() {
    let server = FakeModelServer::start(&[Answer::Reply(200, "einfach.completion.json")]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "sk-local-0123456789";
    let mut cmd = docpipe(&dir.path().join("home"));
    cmd.current_dir(dir.path())
        .args(["run", "--json", "--no-embedded"])
        .arg(fixture(INVOICE))
        .env("DOCPIPE_EXTRACTOR", "openai")
        .env("DOCPIPE_LLM_BASE_URL", &server.base_url)
        .env("DOCPIPE_LLM_MODEL", MODEL)
        .env("DOCPIPE_LLM_API_KEY", key)
        .env("DOCPIPE_LOG", "trace");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("joined")
        .expect("docpipe runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(key), "the key is never logged");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v[0]["status"], "completed", "{v:#}");
    assert_read_and_verified(&v[0]["result"]);
    assert_eq!(
        v[0]["result"]["fields"]["invoice_number"]["value"],
        "471102"
    );

    // What the server was asked.
    let received = server.received();
    assert_eq!(received.len(), 1);
    let Received {
        body,
        authorization,
    } = &received[0];
    assert_eq!(authorization.as_deref(), Some(&*format!("Bearer {key}")));
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["temperature"], 0);
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("record_invoice") && s.contains("YYYY-MM-DD"))
    );
    assert_eq!(messages[1]["role"], "user");
    let text = messages[1]["content"].as_str().expect("the document text");
    for printed in ["--- page 1 ---", "471102", "--- page 2 ---", "529,87"] {
        assert!(text.contains(printed), "{printed} is in the prompt");
    }
    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "record_invoice");
    assert_eq!(format["json_schema"]["strict"], true);
    assert_eq!(
        format["json_schema"]["schema"],
        strict_schema(&schema(Judgement::Caller))
    );
}

#[tokio::test(start_paused = true)]
async fn a_busy_server_is_retried_until_it_answers() {
    let o = run_with(
        &[
            Answer::Reply(503, "loading.503.json"),
            Answer::Reply(429, "rate-limited.429.json"),
            Answer::Reply(200, "einfach.completion.json"),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(o.job.status, JobStatus::Completed, "{:#?}", o.job);
    assert_read_and_verified(o.result.as_ref().expect("result"));
    assert_eq!(o.received.len(), 3);
    assert_eq!(o.lambda_failures, 2, "the 503 and the 429 were retried");
    assert!(o.waited >= Duration::from_secs(3), "1 + 2 s of backoff");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_times_out_on_virtual_time() {
    let wall = std::time::Instant::now();
    let o = run_with(&[Answer::Hold], Duration::from_secs(60)).await;
    let (code, message) = failure(&o.job);
    assert_eq!(code, ErrorCode::ServiceUnavailable);
    assert!(message.contains("did not answer within 60 s"), "{message}");
    assert_eq!(o.received.len(), 5, "1 try + 4 retries");
    assert!(
        o.waited >= Duration::from_secs(5 * 60 + 15),
        "{:?}",
        o.waited
    );
    assert!(wall.elapsed() < Duration::from_secs(10));
}

/// Replies with no usable answer: the job fails with the reply's code at once (retrying
/// the same request cannot help) and keeps no half result.
#[tokio::test(start_paused = true)]
async fn replies_without_a_usable_answer_fail_the_job_without_retrying() {
    let failed = ErrorCode::ExtractionFailed;
    let refused = ErrorCode::ExtractionRefused;
    for (status, file, code, says) in [
        (
            200,
            "misfit.completion.json",
            failed,
            "gross_total \"529,87\" is not a decimal",
        ),
        (
            200,
            "cut.completion.json",
            failed,
            "cut at llm_max_tokens (4096)",
        ),
        (
            404,
            "model-not-found.404.json",
            failed,
            "404 Not Found: model",
        ),
        (
            200,
            "refusal.completion.json",
            refused,
            "the model refused: I'm sorry",
        ),
        (
            200,
            "content-filter.completion.json",
            refused,
            "content filter",
        ),
    ] {
        let o = run_with(&[Answer::Reply(status, file)], Duration::from_secs(60)).await;
        let (got, message) = failure(&o.job);
        assert_eq!(got, code, "{file}");
        assert!(message.contains(says), "{file}: {message}");
        assert_eq!(o.received.len(), 1, "{file}: not retried");
        assert!(o.result.is_none(), "{file}: no half result");
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_server_is_unavailable_and_retried() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").port()
    };
    let (job, _, failures, _) = run_job(
        &format!("http://127.0.0.1:{port}/v1"),
        Duration::from_secs(60),
    )
    .await;
    let (code, message) = failure(&job);
    assert_eq!(code, ErrorCode::ServiceUnavailable);
    assert!(message.contains("unreachable"), "{message}");
    assert_eq!(failures, 5, "1 try + 4 retries");
}

#[test]
fn a_model_without_a_name_is_a_settings_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = docpipe(&dir.path().join("home"))
        .current_dir(dir.path())
        .args(["run", "--json"])
        .arg(fixture(INVOICE))
        .env("DOCPIPE_EXTRACTOR", "openai")
        .env_remove("DOCPIPE_LLM_MODEL")
        .output()
        .expect("docpipe runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("llm_model"), "{stderr}");
    assert!(!dir.path().join("home/docpipe.db").exists());
}
