//! Property-based fuzzing of the API's request parsing: arbitrary methods, paths, query
//! strings, headers and bodies (JSON, multipart, raw bytes) through the real router with
//! `tower::ServiceExt::oneshot`, over the local SQLite and filesystem stores. No request
//! may panic the router or earn a 500, and every refusal is the JSON error envelope.
//!
//! Case counts are small so the suite stays fast; `PROPTEST_CASES=N` raises them
//! (`bench/fuzz.sh` runs them longer, with a random seed).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request};
use chrono::{DateTime, Utc};
use docpipe_api::{ApiPorts, ApiSettings, AppState, LocalPresigner, Uploads};
use docpipe_core::keys::{generate_secret, hash_key};
use docpipe_core::ports::{Fetched, Result};
use docpipe_core::{
    ApiKey, BoxFuture, Clock, ErrorCode, Fetcher, Job, KeyStore, Orchestrator, StageError,
};
use docpipe_local::{FsObjectStore, SqliteJobStore};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;

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

struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Accepts every job and runs none: the fuzz is about the requests.
struct Accepting;

#[async_trait]
impl Orchestrator for Accepting {
    async fn start(&self, _: &Job) -> Result<()> {
        Ok(())
    }
    async fn stop(&self, _: &Job, _: &str) -> Result<()> {
        Ok(())
    }
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// Refuses every URL without touching the network.
struct NoNetwork;

#[async_trait]
impl Fetcher for NoNetwork {
    async fn check(&self, url: &str) -> Result<()> {
        Err(StageError::new(
            ErrorCode::UrlNotAllowed,
            format!("no network in this test: {url}"),
        ))
    }
    async fn fetch(&self, url: &str, _: u64) -> Result<Fetched> {
        Err(StageError::new(
            ErrorCode::UrlNotAllowed,
            format!("no network in this test: {url}"),
        ))
    }
}

async fn app(home: &std::path::Path) -> (axum::Router, String) {
    let store = SqliteJobStore::open(&home.join("docpipe.db")).expect("store");
    let secret = generate_secret().expect("secret");
    store
        .create(&ApiKey {
            name: "fuzz".into(),
            key_hash: hash_key(&secret),
            active: true,
            rate_limit_per_minute: u32::MAX,
            created_at: Utc::now(),
            last_used_at: None,
            request_count: 0,
            delete_document_when_final: false,
        })
        .await
        .expect("key");
    let upload_secret: Arc<[u8]> = Arc::from(&b"fuzz-upload-secret-0123456789abcdef"[..]);
    let objects: Arc<dyn docpipe_core::ObjectStore> =
        Arc::new(FsObjectStore::new(home.join("objects")));
    let state = AppState::new(
        ApiPorts {
            jobs: Arc::new(store.clone()),
            objects: objects.clone(),
            keys: Arc::new(store.clone()),
            idempotency: Arc::new(store.clone()),
            orchestrator: Arc::new(Accepting),
            fetcher: Arc::new(NoNetwork),
            uploads: Uploads::Local(LocalPresigner::new("http://127.0.0.1:9", upload_secret)),
            clock: Arc::new(WallClock),
            executions: Arc::new(store),
            pages: Arc::new(docpipe_core::StoredImagePages(objects.clone())),
        },
        ApiSettings {
            max_document_bytes: 64 * 1024,
            ..ApiSettings::default()
        },
    );
    (docpipe_api::router(state), secret)
}

#[derive(Debug, Clone)]
enum Auth {
    Key,
    Bearer,
    Garbage(String),
    None,
}

#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    auth: Auth,
    content_type: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("job_20260201080000_0123456789abcdef".to_owned()),
        Just("job_20260201080000_zz".to_owned()),
        Just("upl_0123456789abcdef".to_owned()),
        Just("..".to_owned()),
        Just("%2e%2e%2f".to_owned()),
        Just("%00".to_owned()),
        Just("%ZZ".to_owned()),
        Just("%C3%28".to_owned()),
        Just("%E2%82%AC".to_owned()),
        Just("a".repeat(300)),
        "[A-Za-z0-9_.~-]{0,40}",
        "(%[0-9A-F]{2}){1,6}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let pair = prop_oneof![
        proptest::sample::select(&[
            "status=queued",
            "status=completed",
            "status=bogus",
            "status=",
            "kind=invoice",
            "kind=blueprint",
            "kind=x",
            "limit=0",
            "limit=1",
            "limit=100",
            "limit=-1",
            "limit=99999999999999999999",
            "limit=abc",
            "cursor=",
            "cursor=%FF",
            "cursor=eyJ4IjoxfQ",
            "sig=00",
            "exp=1",
            "exp=-1",
            "exp=99999999999999999999",
            "owner=x",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,6}=[A-Za-z0-9%_.-]{0,12}",
    ];
    prop::collection::vec(pair, 0..4).prop_map(|p| {
        if p.is_empty() {
            String::new()
        } else {
            format!("?{}", p.join("&"))
        }
    })
}

fn path() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        Just("/api/v1/jobs".to_owned()),
        Just("/api/v1/jobs/".to_owned()),
        id_like().prop_map(|id| format!("/api/v1/jobs/{id}")),
        id_like().prop_map(|id| format!("/api/v1/jobs/{id}/result")),
        id_like().prop_map(|id| format!("/api/v1/jobs/{id}/other")),
        Just("/api/v1/uploads".to_owned()),
        id_like().prop_map(|id| format!("/api/v1/uploads/{id}")),
        Just("/health".to_owned()),
        Just("/openapi.json".to_owned()),
        Just("/".to_owned()),
        Just("//api/v1/jobs".to_owned()),
        "/[A-Za-z0-9/._~%-]{0,30}",
    ];
    (base, query()).prop_map(|(b, q)| format!("{b}{q}"))
}

/// JSON bodies shaped like job requests, with hostile values.
fn json_body() -> impl Strategy<Value = Value> {
    let string = prop_oneof![
        Just("JVBERi0xLjQKJeLjz9MK".to_owned()), // %PDF-1.4
        Just("iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB".to_owned()), // PNG
        Just("/9j/4AAQSkZJRgABAQ".to_owned()),   // JPEG
        Just("not base64 !!".to_owned()),
        Just("====".to_owned()),
        Just("http://127.0.0.1/x.pdf".to_owned()),
        Just("https://example.invalid/a.pdf".to_owned()),
        Just("file:///etc/passwd".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("invoice".to_owned()),
        Just("blueprint".to_owned()),
        Just("upl_0123456789abcdef".to_owned()),
        Just("\u{0}".to_owned()),
        Just("a".repeat(5000)),
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        string.prop_map(Value::String),
    ];
    let key = proptest::sample::select(&[
        "document",
        "content_base64",
        "filename",
        "kind",
        "url",
        "upload_id",
        "other",
        "",
    ]);
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

const BOUNDARY: &str = "fuzzboundary";

fn multipart_body() -> impl Strategy<Value = Vec<u8>> {
    let part = (
        proptest::sample::select(&["file", "kind", "other", "", "file\"; x=\"y"]),
        proptest::option::of(proptest::sample::select(&[
            "a.pdf",
            "../x.png",
            "",
            "\u{202e}.pdf",
        ])),
        prop_oneof![
            Just(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec()),
            Just(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
            Just(b"invoice".to_vec()),
            Just(b"blueprint".to_vec()),
            prop::collection::vec(any::<u8>(), 0..64),
        ],
    );
    (prop::collection::vec(part, 0..4), any::<bool>()).prop_map(|(parts, close)| {
        let mut body = Vec::new();
        for (name, filename, content) in parts {
            body.extend(format!("--{BOUNDARY}\r\n").as_bytes());
            let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
            if let Some(f) = filename {
                disposition.push_str(&format!("; filename=\"{f}\""));
            }
            body.extend(disposition.as_bytes());
            body.extend(b"\r\n\r\n");
            body.extend(&content);
            body.extend(b"\r\n");
        }
        if close {
            body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
        }
        body
    })
}

fn request() -> impl Strategy<Value = Req> {
    let method = proptest::sample::select(&[
        "GET", "GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
    ]);
    let auth = prop_oneof![
        4 => Just(Auth::Key),
        1 => Just(Auth::Bearer),
        1 => "[ -~]{0,80}".prop_map(Auth::Garbage),
        1 => Just(Auth::None),
    ];
    let content_type = proptest::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("application/json; charset=utf-8".to_owned()),
        Just(format!("multipart/form-data; boundary={BOUNDARY}")),
        Just("multipart/form-data".to_owned()),
        Just("application/pdf".to_owned()),
        Just("text/plain".to_owned()),
        "[ -~]{0,40}",
    ]);
    let header = prop_oneof![
        ("[ -~]{0,300}").prop_map(|v| ("idempotency-key", v)),
        ("[ -~]{0,140}").prop_map(|v| ("x-request-id", v)),
        ("[0-9]{1,12}").prop_map(|v| ("content-length", v)),
        ("[ -~]{0,40}").prop_map(|v| ("origin", v)),
        ("[ -~]{0,40}").prop_map(|v| ("accept", v)),
    ];
    let body = prop_oneof![
        3 => json_body().prop_map(|v| v.to_string().into_bytes()),
        1 => multipart_body(),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => Just(Vec::new()),
    ];
    (
        method,
        path(),
        auth,
        content_type,
        prop::collection::vec(header, 0..3),
        body,
    )
        .prop_map(|(method, path, auth, content_type, headers, body)| Req {
            method,
            path,
            auth,
            content_type,
            headers,
            body,
        })
}

fn build(req: &Req, key: &str) -> Option<Request<Body>> {
    let mut b = Request::builder()
        .method(Method::from_bytes(req.method.as_bytes()).ok()?)
        .uri(req.path.as_str());
    match &req.auth {
        Auth::Key => b = b.header("x-api-key", key),
        Auth::Bearer => b = b.header("authorization", format!("Bearer {key}")),
        Auth::Garbage(g) => b = b.header("x-api-key", g.as_str()),
        Auth::None => {}
    }
    if let Some(ct) = &req.content_type {
        b = b.header("content-type", ct.as_str());
    }
    for (k, v) in &req.headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Body::from(req.body.clone())).ok()
}

#[test]
fn hostile_requests_get_an_envelope_never_a_panic_or_a_500() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let home = tempfile::tempdir().expect("tempdir");
    let (router, key) = rt.block_on(app(home.path()));
    let mut runner = TestRunner::new(config(512));
    let result = runner.run(&request(), |req| {
        let Some(http) = build(&req, &key) else {
            return Ok(()); // not a request a client could send
        };
        let (status, body) = rt.block_on(async {
            let resp = router.clone().oneshot(http).await.expect("infallible");
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, body)
        });
        if status.is_server_error() {
            return Err(TestCaseError::fail(format!(
                "{status} for {req:?}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        if status.is_client_error() && req.method != "HEAD" {
            let v: Value = serde_json::from_slice(&body).map_err(|_| {
                TestCaseError::fail(format!(
                    "{status} without a JSON body for {req:?}: {:?}",
                    String::from_utf8_lossy(&body)
                ))
            })?;
            let ok = v["status"] == "error"
                && v["error"]["code"].is_string()
                && v["error"]["message"].is_string()
                && v["meta"]["request_id"].is_string();
            if !ok {
                return Err(TestCaseError::fail(format!(
                    "{status} outside the envelope for {req:?}: {v}"
                )));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Bodies over the request limit, in every shape the create endpoint reads: each is 413
/// `FILE_TOO_LARGE` in the envelope, whatever else is wrong with it.
#[test]
fn oversized_create_bodies_are_413_in_every_shape() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let home = tempfile::tempdir().expect("tempdir");
    let (router, key) = rt.block_on(app(home.path()));
    let limit = ApiSettings {
        max_document_bytes: 64 * 1024,
        ..ApiSettings::default()
    }
    .max_request_bytes();
    let shape = proptest::sample::select(&[
        "json",
        "multipart",
        "none",
        "raw-json",
        "document-json",
        "document-multipart",
    ]);
    let mut runner = TestRunner::new(config(24));
    let result =
        runner.run(
            &(shape, 1usize..200_000, any::<u8>()),
            |(shape, extra, fill)| {
                let filler = "A".repeat(limit + extra);
                let (content_type, body) = match shape {
                "json" => (
                    Some("application/json"),
                    format!(
                        r#"{{"document": {{"content_base64": "{filler}", "filename": "a.pdf"}}}}"#
                    )
                    .into_bytes(),
                ),
                "multipart" => (
                    Some("multipart/form-data; boundary=fuzzboundary"),
                    format!(
                        "--fuzzboundary\r\nContent-Disposition: form-data; name=\"file\"; \
                     filename=\"a.pdf\"\r\n\r\n%PDF-1.4 {filler}\r\n--fuzzboundary--\r\n"
                    )
                    .into_bytes(),
                ),
                "none" => (
                    None,
                    format!(r#"{{"document": {{"content_base64": "{filler}"}}}}"#).into_bytes(),
                ),
                // Under the request limit, but the document itself is over its own.
            "document-json" => {
                let doc = "QUFB".repeat((64 * 1024 + extra % 8192) / 3 + 1);
                (
                    Some("application/json"),
                    format!(r#"{{"document": {{"content_base64": "{doc}", "filename": "a.pdf"}}}}"#)
                        .into_bytes(),
                )
            }
            "document-multipart" => {
                let mut body = b"--fuzzboundary\r\nContent-Disposition: form-data; name=\"file\"; \
                                 filename=\"a.pdf\"\r\n\r\n%PDF-1.4\n"
                    .to_vec();
                body.extend(vec![fill; 64 * 1024 + extra % 8192]);
                body.extend(b"\r\n--fuzzboundary--\r\n");
                (Some("multipart/form-data; boundary=fuzzboundary"), body)
            }
            _ => (Some("application/json"), vec![fill; limit + extra]),
            };
                let mut b = Request::builder()
                    .method("POST")
                    .uri("/api/v1/jobs")
                    .header("x-api-key", key.as_str());
                if let Some(ct) = content_type {
                    b = b.header("content-type", ct);
                }
                let http = b.body(Body::from(body)).expect("request");
                let (status, body) = rt.block_on(async {
                    let resp = router.clone().oneshot(http).await.expect("infallible");
                    let status = resp.status();
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    (status, body)
                });
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if status != axum::http::StatusCode::PAYLOAD_TOO_LARGE
                    || v["error"]["code"] != "FILE_TOO_LARGE"
                {
                    return Err(TestCaseError::fail(format!(
                        "{shape} body of {} bytes: {status} {v}",
                        limit + extra
                    )));
                }
                Ok(())
            },
        );
    if let Err(e) = result {
        panic!("{e}");
    }
}
