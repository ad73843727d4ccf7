//! The same request-level scenario against both hosts of the router: `docpipe serve` over
//! real HTTP, and the Lambda host, where each request is an API Gateway HTTP API (payload
//! v2) event from `fixtures/events/` fed through `lambda_http`'s own adapter (the code
//! `lambda_http::run` runs for each invocation) and each answer is the serialised Lambda
//! response API Gateway would turn back into HTTP.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use docpipe_api::{ApiPorts, ApiSettings, AppState, LocalPresigner, Uploads};
use docpipe_core::ports::StageSettings;
use docpipe_invoice::RuleExtractor;
use docpipe_local::embedded::{Embedded, EmbeddedOptions};
use docpipe_local::orchestrator::{EmbeddedOrchestrator, PoolOptions};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use serde_json::{Value, json};

use super::{Server, create_key, invoice_b64};
use crate::common::{fixture, pdf_ocr};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const MAX_DOCUMENT_MIB: u64 = 1;
const PUBLIC_URL: &str = "https://a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com";

/// An answer as the client sees it.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// A fixture event with `${NAME}` replaced in every string (so values land correctly
/// escaped wherever they are, JSON bodies included); the query string parameters are
/// derived from the raw query string, as API Gateway does.
fn event(name: &str, vars: &HashMap<&str, String>) -> Value {
    let path = fixture(&format!("events/{name}.json"));
    let text = std::fs::read_to_string(&path).expect("event fixture");
    let mut event: Value = serde_json::from_str(&text).expect("event is JSON");
    substitute(&mut event, vars);
    let query = event["rawQueryString"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !query.is_empty() {
        let params: serde_json::Map<String, Value> = query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), Value::String(v.to_owned()))
            })
            .collect();
        event["queryStringParameters"] = Value::Object(params);
    }
    event
}

fn substitute(v: &mut Value, vars: &HashMap<&str, String>) {
    match v {
        Value::String(s) if s.contains("${") => {
            for (k, val) in vars {
                *s = s.replace(&format!("${{{k}}}"), val);
            }
            assert!(!s.contains("${"), "unbound variable in {s:.80}");
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, vars)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, vars)),
        _ => {}
    }
}

fn event_body(event: &Value) -> Vec<u8> {
    let body = event["body"].as_str().unwrap_or_default();
    if event["isBase64Encoded"].as_bool().unwrap_or(false) {
        B64.decode(body).expect("base64 event body")
    } else {
        body.as_bytes().to_vec()
    }
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

enum Host {
    /// `docpipe serve`: the event replayed as the HTTP request it describes.
    Serve(Server),
    /// The router under `lambda_http`, over the same local adapters `docpipe serve` uses.
    Lambda {
        home: tempfile::TempDir,
        router: axum::Router,
        _orchestrator: EmbeddedOrchestrator,
    },
}

impl Host {
    fn serve() -> Self {
        Host::Serve(Server::start(&[(
            "DOCPIPE_MAX_DOCUMENT_MIB",
            MAX_DOCUMENT_MIB.to_string(),
        )]))
    }

    fn lambda() -> Self {
        let home = tempfile::tempdir().expect("tempdir");
        let pipeline = Embedded::open(EmbeddedOptions {
            home: home.path().to_path_buf(),
            settings: StageSettings::default(),
            ocr: pdf_ocr(),
            extractor: Arc::new(RuleExtractor::default()),
            fetcher: Arc::new(docpipe_fetch::HttpFetcher::default()),
            clock: Arc::new(docpipe_asl::clock::SystemClock),
        })
        .expect("pipeline opens");
        let orchestrator = EmbeddedOrchestrator::start(
            pipeline.clone(),
            PoolOptions {
                workers: 2,
                queue: 16,
            },
        );
        let ports = pipeline.ports();
        let store = pipeline.store();
        let secret: Arc<[u8]> = Arc::from(&b"lambda-host-test-upload-secret!!"[..]);
        let state = AppState::new(
            ApiPorts {
                jobs: ports.jobs.clone(),
                objects: ports.objects.clone(),
                keys: Arc::new(store.clone()),
                idempotency: Arc::new(store.clone()),
                orchestrator: Arc::new(orchestrator.clone()),
                fetcher: ports.fetcher.clone(),
                uploads: Uploads::Local(LocalPresigner::new(PUBLIC_URL.to_owned(), secret)),
                clock: ports.clock.clone(),
                executions: Arc::new(store.clone()),
                pages: Arc::new(docpipe_core::StoredImagePages(ports.objects.clone())),
            },
            ApiSettings {
                max_document_bytes: MAX_DOCUMENT_MIB * 1024 * 1024,
                ..ApiSettings::default()
            },
        );
        Host::Lambda {
            home,
            router: docpipe_api::router(state),
            _orchestrator: orchestrator,
        }
    }

    fn home(&self) -> &Path {
        match self {
            Host::Serve(s) => s.home.path(),
            Host::Lambda { home, .. } => home.path(),
        }
    }

    /// `docpipe keys create` on the host's data folder, as an operator does.
    fn key(&self, name: &str, extra: &[&str]) -> String {
        create_key(self.home(), name, extra)
    }

    async fn send(&self, event: Value) -> Reply {
        match self {
            Host::Serve(server) => {
                let ctx = &event["requestContext"]["http"];
                let method =
                    reqwest::Method::from_bytes(ctx["method"].as_str().expect("method").as_bytes())
                        .expect("method");
                let mut url = server.u(event["rawPath"].as_str().expect("rawPath"));
                let query = event["rawQueryString"].as_str().unwrap_or_default();
                if !query.is_empty() {
                    url = format!("{url}?{query}");
                }
                let mut req = server.http.request(method, url);
                for (k, v) in event["headers"].as_object().expect("headers") {
                    if !matches!(k.as_str(), "host" | "content-length") {
                        req = req.header(k, v.as_str().expect("header value"));
                    }
                }
                if event.get("body").is_some() {
                    req = req.body(event_body(&event));
                }
                let resp = req.send().await.expect("request");
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                let body = json_of(&resp.bytes().await.expect("body"));
                Reply {
                    status,
                    headers,
                    body,
                }
            }
            Host::Lambda { router, .. } => {
                let request: LambdaRequest =
                    serde_json::from_value(event).expect("an API Gateway v2 event");
                let adapter = Adapter::from(router.clone());
                let response = adapter
                    .oneshot(LambdaEvent::new(request, Context::default()))
                    .await
                    .expect("the router never fails");
                // What goes back to API Gateway: statusCode, headers, body, isBase64Encoded.
                let out = serde_json::to_value(&response).expect("serialisable response");
                let headers = out["headers"]
                    .as_object()
                    .expect("headers")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                let raw = out["body"].as_str().unwrap_or_default();
                let body = if out["isBase64Encoded"].as_bool().unwrap_or(false) {
                    B64.decode(raw).expect("base64 body")
                } else {
                    raw.as_bytes().to_vec()
                };
                Reply {
                    status: out["statusCode"].as_u64().expect("statusCode") as u16,
                    headers,
                    body: json_of(&body),
                }
            }
        }
    }
}

fn multipart(boundary: &str, pdf: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\ninvoice\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"mp.pdf\"\r\n\
             Content-Type: application/pdf\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(pdf);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// `vars` with some values added or replaced.
fn with<'a>(
    vars: &HashMap<&'a str, String>,
    extra: &[(&'a str, String)],
) -> HashMap<&'a str, String> {
    let mut v = vars.clone();
    v.extend(extra.iter().cloned());
    v
}

/// The scenario both hosts must pass, request for request.
async fn scenario(host: &Host) {
    let alice = host.key("alice", &[]);
    let bob = host.key("bob", &[]);
    let slow = host.key("slow", &["--rate-limit", "2"]);
    let pdf = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("KEY", alice.clone()),
        ("DOCUMENT_B64", invoice_b64()),
        ("FILENAME", "invoice.pdf".to_owned()),
        ("IDEMPOTENCY_KEY", "order-4711".to_owned()),
    ]);

    // Health needs no key.
    let r = host.send(event("health", &vars)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "success");

    // Auth: no key, a wrong key.
    let mut no_key = event("get-job", &with(&vars, &[("JOB_ID", "job_x".into())]));
    no_key["headers"]
        .as_object_mut()
        .expect("headers")
        .remove("x-api-key");
    let r = host.send(no_key).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{r:?}");
    let r = host
        .send(event(
            "list-jobs",
            &with(&vars, &[("KEY", "dp_wrong".into())]),
        ))
        .await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{r:?}");

    // Create from JSON; the same Idempotency-Key and body is the same job; another body
    // under that key is a conflict.
    let r = host.send(event("create-json", &vars)).await;
    assert_eq!(r.status, 202, "{r:?}");
    let job = r.body["data"]["job_id"]
        .as_str()
        .expect("job id")
        .to_owned();
    assert!(r.body["meta"]["request_id"].is_string(), "{r:?}");
    assert!(r.headers.contains_key("x-request-id"), "{r:?}");
    let again = host.send(event("create-json", &vars)).await;
    assert_eq!(
        (again.status, &again.body["data"]["job_id"]),
        (202, &json!(job))
    );
    let r = host
        .send(event(
            "create-json",
            &with(&vars, &[("FILENAME", "other.pdf".into())]),
        ))
        .await;
    assert_eq!((r.status, r.code()), (409, "IDEMPOTENCY_CONFLICT"), "{r:?}");
    vars.insert("JOB_ID", job.clone());

    // Poll to completion, then the result; a finished job cannot be cancelled.
    let mut done = None;
    for _ in 0..600 {
        let r = host.send(event("get-job", &vars)).await;
        assert_eq!(r.status, 200, "{r:?}");
        let status = r.body["data"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if ["completed", "needs_review", "failed", "cancelled"].contains(&status.as_str()) {
            done = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let done = done.expect("the job finishes");
    assert_eq!(done.body["data"]["status"], "completed", "{done:?}");
    assert!(
        done.body["data"]["status_history"]
            .as_array()
            .expect("history")
            .len()
            >= 6
    );
    let r = host.send(event("get-result", &vars)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["data"]["fields"]["gross_total"]["value"], "529.87",
        "{r:?}"
    );
    let r = host.send(event("cancel-job", &vars)).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "JOB_ALREADY_COMPLETED"),
        "{r:?}"
    );

    // Bearer works like x-api-key; another key does not see the job.
    let r = host.send(event("get-job-bearer", &vars)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = host
        .send(event("get-job", &with(&vars, &[("KEY", bob.clone())])))
        .await;
    assert_eq!((r.status, r.code()), (404, "JOB_NOT_FOUND"), "{r:?}");

    // Multipart, as a binary (base64-encoded) event body.
    let boundary = "docpipe-boundary-7MA4YWxk".to_owned();
    let mp = B64.encode(multipart(&boundary, &pdf));
    let r = host
        .send(event(
            "create-multipart",
            &with(&vars, &[("BOUNDARY", boundary), ("MULTIPART_B64", mp)]),
        ))
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["data"]["filename"], "mp.pdf", "{r:?}");
    let mp_job = r.body["data"]["job_id"]
        .as_str()
        .expect("job id")
        .to_owned();

    // A presigned upload: the link, the PUT (binary body), then the job from it.
    let r = host.send(event("upload-link", &vars)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let upload_id = r.body["data"]["upload_id"]
        .as_str()
        .expect("upload id")
        .to_owned();
    let url = r.body["data"]["url"].as_str().expect("url").to_owned();
    let rest = url.split_once("://").map(|(_, r)| r).expect("absolute URL");
    let path_and_query = &rest[rest.find('/').expect("a path")..];
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let r = host
        .send(event(
            "upload-put",
            &with(
                &vars,
                &[("UPLOAD_PATH", path.into()), ("UPLOAD_QUERY", query.into())],
            ),
        ))
        .await;
    assert!(r.status == 200 || r.status == 201, "{r:?}");
    let r = host
        .send(event(
            "create-upload",
            &with(&vars, &[("UPLOAD_ID", upload_id)]),
        ))
        .await;
    assert_eq!(r.status, 202, "{r:?}");

    let upload_job = r.body["data"]["job_id"]
        .as_str()
        .expect("job id")
        .to_owned();

    // Listing is the caller's own jobs, newest first.
    let listed = |r: &Reply| -> Vec<String> {
        r.body["data"]["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter_map(|j| j["job_id"].as_str().map(str::to_owned))
            .collect()
    };
    let r = host.send(event("list-jobs", &vars)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        listed(&r),
        vec![upload_job.clone(), mp_job.clone(), job.clone()],
        "{r:?}"
    );
    let r = host
        .send(event("list-jobs", &with(&vars, &[("KEY", bob.clone())])))
        .await;
    assert_eq!(listed(&r), Vec::<String>::new(), "{r:?}");

    // Rejections: each a 4xx with its code.
    let big = B64.encode(vec![b'%'; (MAX_DOCUMENT_MIB * 1024 * 1024 + 4096) as usize]);
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"document\": ".into(), 400, "VALIDATION_ERROR"),
        (
            r#"{"document":{"content_base64":12,"filename":"a.pdf"}}"#.into(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            r#"{"document":{"content_base64":"!!!not base64","filename":"a.pdf"}}"#.into(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            format!(
                r#"{{"document":{{"content_base64":"{}","filename":"a.pdf","kind":"recipe"}}}}"#,
                vars["DOCUMENT_B64"]
            ),
            400,
            "VALIDATION_ERROR",
        ),
        (
            format!(
                r#"{{"document":{{"content_base64":"{}","filename":"a.pdf"}}}}"#,
                B64.encode(b"just some text, not a document")
            ),
            415,
            "INVALID_FILE_FORMAT",
        ),
        (
            format!(r#"{{"document":{{"content_base64":"{big}","filename":"big.pdf"}}}}"#),
            413,
            "FILE_TOO_LARGE",
        ),
        (
            r#"{"document":{"url":"http://169.254.169.254/latest/meta-data/"}}"#.into(),
            422,
            "URL_NOT_ALLOWED",
        ),
        (
            r#"{"document":{"url":"file:///etc/passwd"}}"#.into(),
            422,
            "URL_NOT_ALLOWED",
        ),
    ];
    for (body, status, code) in cases {
        let r = host
            .send(event("create-raw", &with(&vars, &[("BODY", body.clone())])))
            .await;
        assert_eq!((r.status, r.code()), (status, code), "{body:.120}: {r:?}");
    }
    let r = host.send(event("list-jobs", &vars)).await;
    assert_eq!(listed(&r).len(), 3, "a rejection created nothing: {r:?}");
    let r = host.send(event("unknown-route", &vars)).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{r:?}");

    // A key's own rate limit: 2 a minute, the third request waits.
    let slow_vars = with(&vars, &[("KEY", slow)]);
    for _ in 0..2 {
        let r = host.send(event("list-jobs", &slow_vars)).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = host.send(event("list-jobs", &slow_vars)).await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{r:?}");
    let wait: u64 = r.headers["retry-after"]
        .parse()
        .expect("Retry-After seconds");
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateway_events_through_lambda_http() {
    scenario(&Host::lambda()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_requests_over_http_to_docpipe_serve() {
    scenario(&Host::serve()).await;
}
