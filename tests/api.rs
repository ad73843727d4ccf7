//! The HTTP API end to end: a real `docpipe serve` on 127.0.0.1 (port 0) over a temp dir,
//! driven with a real HTTP client. Each test starts its own server and stops it.

mod api_events;
mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use common::fixture;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Notify;

const BIN: &str = env!("CARGO_BIN_EXE_docpipe");

struct Server {
    child: Child,
    url: String,
    home: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(env: &[(&str, String)]) -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), env)
    }

    /// Starts a server on an existing data folder (a restart).
    fn start_in(home: tempfile::TempDir, env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg("--home")
            .arg(home.path())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env_remove("DOCPIPE_HOME")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("docpipe serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the listening line");
        let url = line
            .trim()
            .strip_prefix("docpipe listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            child,
            url,
            home,
            http: reqwest::Client::new(),
        }
    }

    fn key(&self, name: &str, extra: &[&str]) -> String {
        create_key(self.home.path(), name, extra)
    }

    fn u(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    async fn create_json(&self, key: &str, body: Value) -> (StatusCode, Value) {
        self.post(key, "/api/v1/jobs", body).await
    }

    async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.u(path))
            .header("x-api-key", key)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.expect("json body"))
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.u(path))
            .header("x-api-key", key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.expect("json body"))
    }

    /// Submits a fixture invoice and waits for its job to finish; the job.
    async fn run_invoice(&self, key: &str, fixture_name: &str) -> Value {
        let bytes = std::fs::read(fixture(fixture_name)).expect("fixture");
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let (st, v) = self
            .create_json(key, json!({"document": {"content_base64": b64}}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        self.wait_final(key, &job_id(&v)).await
    }

    /// Polls until the job is final and none of its executions is still running
    /// (bounded): a job fails a moment before its execution ends.
    async fn wait_settled(&self, key: &str, id: &str) -> Value {
        for _ in 0..600 {
            let job = self.wait_final(key, id).await;
            let (_, v) = self
                .get(key, &format!("/api/v1/jobs/{id}/executions"))
                .await;
            let running = v["data"]["executions"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["status"] == "RUNNING"));
            if !running {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the executions of job {id} did not end");
    }

    /// Polls the job until it reaches a final status (bounded).
    async fn wait_final(&self, key: &str, id: &str) -> Value {
        for _ in 0..600 {
            let (s, v) = self.get(key, &format!("/api/v1/jobs/{id}")).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let status = v["data"]["status"].as_str().unwrap_or_default().to_owned();
            if ["completed", "needs_review", "failed", "cancelled"].contains(&status.as_str()) {
                return v["data"].clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("job {id} did not finish");
    }
}

/// `docpipe keys create NAME` on a data folder, as an operator does; the new key.
fn create_key(home: &std::path::Path, name: &str, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(["keys", "create", name])
        .args(extra)
        .output()
        .expect("keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

fn invoice_b64() -> String {
    let bytes = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The invoice fixture grown past the largest object the data folder keeps in its
/// database (1 MiB) by an unreferenced stream: the same invoice to every reader.
fn large_invoice_b64() -> String {
    let mut doc = lopdf::Document::load(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    doc.add_object(lopdf::Stream::new(
        lopdf::Dictionary::new(),
        vec![b' '; 1_200_000],
    ));
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("saved");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn job_id(v: &Value) -> String {
    v["data"]["job_id"].as_str().expect("job id").to_owned()
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

/// A document server for URL ingest on 127.0.0.1: `/invoice.pdf`, `/slow.pdf` (answers only
/// after `release`), `/redirect?to=URL`; counts every request.
struct DocServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    release: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn doc_server() -> DocServer {
    let hits = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let pdf = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    let app = {
        let (h1, h2, h3) = (hits.clone(), hits.clone(), hits.clone());
        let rel = release.clone();
        let pdf2 = pdf.clone();
        Router::new()
            .route(
                "/invoice.pdf",
                get(move || {
                    h1.fetch_add(1, Ordering::SeqCst);
                    let pdf = pdf.clone();
                    async move { pdf }
                }),
            )
            .route(
                "/slow.pdf",
                get(move || {
                    h2.fetch_add(1, Ordering::SeqCst);
                    let rel = rel.clone();
                    let pdf = pdf2.clone();
                    async move {
                        rel.notified().await;
                        pdf
                    }
                }),
            )
            .route(
                "/redirect",
                get(
                    move |axum::extract::Query(q): axum::extract::Query<
                        std::collections::HashMap<String, String>,
                    >| {
                        h3.fetch_add(1, Ordering::SeqCst);
                        async move {
                            (
                                AxumStatus::FOUND,
                                [("location", q.get("to").cloned().unwrap_or_default())],
                            )
                                .into_response()
                        }
                    },
                ),
            )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    DocServer {
        addr,
        hits,
        release,
        task,
    }
}

#[tokio::test]
async fn jobs_created_four_ways_complete_with_results() {
    let docs = doc_server().await;
    let s = Server::start(&[("DOCPIPE_URL_ALLOWED_HOSTS", docs.addr.to_string())]);
    let key = s.key("alice", &[]);

    // (a) JSON with base64 content.
    let (st, v) = s
        .create_json(
            &key,
            json!({"document": {"content_base64": invoice_b64(), "filename": "a.pdf"}}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "success");
    assert!(v["meta"]["request_id"].is_string());
    let a = job_id(&v);

    // (b) multipart/form-data.
    let bytes = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.clone()).file_name("b.pdf"),
        )
        .text("kind", "invoice");
    let r = s
        .http
        .post(s.u("/api/v1/jobs"))
        .header("authorization", format!("Bearer {key}"))
        .multipart(form)
        .send()
        .await
        .expect("multipart");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let b = job_id(&r.json().await.expect("json"));

    // (c) a URL that ingest fetches.
    let (st, v) = s
        .create_json(
            &key,
            json!({"document": {"url": format!("http://{}/invoice.pdf", docs.addr)}}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let c = job_id(&v);

    // (d) a presigned upload.
    let r = s
        .http
        .post(s.u("/api/v1/uploads"))
        .header("x-api-key", &key)
        .json(&json!({"filename": "d.pdf"}))
        .send()
        .await
        .expect("upload link");
    assert_eq!(r.status(), StatusCode::CREATED);
    let link: Value = r.json().await.expect("json");
    let put_url = link["data"]["url"].as_str().expect("url").to_owned();
    let upload_id = link["data"]["upload_id"].as_str().expect("id").to_owned();
    let put = s
        .http
        .put(&put_url)
        .body(bytes.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::OK);
    // A tampered signature is refused.
    let bad = s
        .http
        .put(put_url.replace("signature=", "signature=0"))
        .body(bytes)
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);
    let (st, v) = s.create_json(&key, json!({"upload_id": upload_id})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let d = job_id(&v);

    for id in [&a, &b, &c, &d] {
        let job = s.wait_final(&key, id).await;
        assert!(
            ["completed", "needs_review"].contains(&job["status"].as_str().unwrap_or_default()),
            "{job:#}"
        );
        // The same document four times: a job that ingests after an earlier one finished
        // reuses its result (content-hash dedupe) instead of running OCR and extract.
        let history = job["status_history"].as_array().map_or(0, Vec::len);
        match job["deduplicated_from"].as_str() {
            None => {
                assert!(history >= 6, "{job:#}");
                assert!(job["stage_timings"]["ocr"].is_u64(), "{job:#}");
            }
            Some(from) => {
                assert!(
                    [&a, &b, &c, &d].iter().any(|j| j.as_str() == from),
                    "{job:#}"
                );
                assert_eq!(history, 3, "queued, ingesting, final: {job:#}");
            }
        }
        let (st, r) = s.get(&key, &format!("/api/v1/jobs/{id}/result")).await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["data"]["fields"]["gross_total"]["value"], "529.87");
    }
    assert_eq!(docs.hits.load(Ordering::SeqCst), 1, "URL fetched once");
}

#[tokio::test]
async fn a_running_job_can_be_cancelled_and_stays_cancelled() {
    let docs = doc_server().await;
    let s = Server::start(&[("DOCPIPE_URL_ALLOWED_HOSTS", docs.addr.to_string())]);
    let key = s.key("alice", &[]);
    let (st, v) = s
        .create_json(
            &key,
            json!({"document": {"url": format!("http://{}/slow.pdf", docs.addr)}}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let id = job_id(&v);
    // Wait until ingest is fetching (the slow server has been hit).
    for _ in 0..400 {
        if docs.hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(docs.hits.load(Ordering::SeqCst), 1);
    let r = s
        .http
        .delete(s.u(&format!("/api/v1/jobs/{id}")))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["data"]["status"], "cancelled");
    docs.release.notify_waiters();
    let job = s.wait_final(&key, &id).await;
    assert_eq!(job["status"], "cancelled");
    let (st, r) = s.get(&key, &format!("/api/v1/jobs/{id}/result")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{r}");
    // Cancelling again is harmless; a finished job cannot be cancelled.
    let again = s
        .http
        .delete(s.u(&format!("/api/v1/jobs/{id}")))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("delete");
    assert_eq!(again.status(), StatusCode::OK);
    let (_, v) = s
        .create_json(&key, json!({"document": {"content_base64": invoice_b64()}}))
        .await;
    let done = job_id(&v);
    s.wait_final(&key, &done).await;
    let r = s
        .http
        .delete(s.u(&format!("/api/v1/jobs/{done}")))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.expect("json");
    assert_eq!(code(&v), "JOB_ALREADY_COMPLETED");
    // A cancelled job is not run again: the client asked for it to stop.
    let (st, v) = s
        .post(&key, &format!("/api/v1/jobs/{id}/retry"), json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(code(&v), "JOB_CANCELLED");
}

#[tokio::test]
async fn listing_idempotency_auth_and_isolation() {
    let s = Server::start(&[]);
    let alice = s.key("alice", &[]);
    let bob = s.key("bob", &[]);
    let body = json!({"document": {"content_base64": invoice_b64(), "filename": "x.pdf"}});

    // Idempotent retry: same key and body, same job; same key, other body, 409.
    let send = |key: &str, idem: &str, body: &Value| {
        s.http
            .post(s.u("/api/v1/jobs"))
            .header("x-api-key", key.to_owned())
            .header("idempotency-key", idem.to_owned())
            .json(body)
            .send()
    };
    let first: Value = send(&alice, "k1", &body)
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let second: Value = send(&alice, "k1", &body)
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(job_id(&first), job_id(&second));
    let other = json!({"document": {"content_base64": invoice_b64(), "filename": "y.pdf"}});
    let r = send(&alice, "k1", &other).await.expect("req");
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        code(&r.json::<Value>().await.expect("json")),
        "IDEMPOTENCY_CONFLICT"
    );
    // Keys are per caller: bob may use the same idempotency key.
    let bobs: Value = send(&bob, "k1", &body)
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_ne!(job_id(&bobs), job_id(&first));

    let (_, v) = s.create_json(&alice, body.clone()).await;
    let newest = job_id(&v);

    // Newest first, paginated, only the caller's jobs.
    let (st, p1) = s.get(&alice, "/api/v1/jobs?limit=1").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(p1["data"]["jobs"][0]["job_id"], newest.as_str());
    let cursor = p1["data"]["next_cursor"].as_str().expect("more").to_owned();
    let (_, p2) = s
        .get(&alice, &format!("/api/v1/jobs?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(p2["data"]["jobs"][0]["job_id"], job_id(&first).as_str());
    let (_, all) = s.get(&alice, "/api/v1/jobs").await;
    assert_eq!(all["data"]["jobs"].as_array().expect("jobs").len(), 2);
    let (st, bad) = s.get(&alice, "/api/v1/jobs?status=bogus").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["details"]["field"], "status");

    // Another key's job does not exist for you.
    let (st, v) = s.get(&bob, &format!("/api/v1/jobs/{newest}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(code(&v), "JOB_NOT_FOUND");
    let r = s
        .http
        .delete(s.u(&format!("/api/v1/jobs/{newest}")))
        .header("x-api-key", &bob)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Authentication.
    let r = s.http.get(s.u("/api/v1/jobs")).send().await.expect("req");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        code(&r.json::<Value>().await.expect("json")),
        "UNAUTHORIZED"
    );
    let (st, _) = s.get("dp_not_a_key", "/api/v1/jobs").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Bob's key is in use (and so kept by the server) when another process revokes it:
    // the very next request must be refused.
    for _ in 0..2 {
        let (st, _) = s.get(&bob, "/api/v1/jobs").await;
        assert_eq!(st, StatusCode::OK);
    }
    let revoke = Command::new(BIN)
        .arg("--home")
        .arg(s.home.path())
        .args(["keys", "revoke", "bob"])
        .output()
        .expect("revoke");
    assert!(revoke.status.success());
    let (st, _) = s.get(&bob, "/api/v1/jobs").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // The key list shows usage, never secrets.
    let list = Command::new(BIN)
        .arg("--home")
        .arg(s.home.path())
        .args(["keys", "list"])
        .output()
        .expect("list");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("alice") && text.contains("revoked"), "{text}");
    assert!(!text.contains(&alice));

    // The health check needs no key.
    let h = s.http.get(s.u("/health")).send().await.expect("health");
    assert_eq!(h.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_key_is_rate_limited() {
    let s = Server::start(&[]);
    let key = s.key("tight", &["--rate-limit", "5"]);
    let other = s.key("other", &["--rate-limit", "5"]);
    for _ in 0..5 {
        let (st, _) = s.get(&key, "/api/v1/jobs").await;
        assert_eq!(st, StatusCode::OK);
    }
    let r = s
        .http
        .get(s.u("/api/v1/jobs"))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry));
    assert_eq!(
        code(&r.json::<Value>().await.expect("json")),
        "RATE_LIMITED"
    );
    // Another key is not affected.
    let (st, _) = s.get(&other, "/api/v1/jobs").await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn ssrf_targets_are_refused_and_never_reached() {
    let forbidden = doc_server().await;
    let allowed = doc_server().await;
    let s = Server::start(&[("DOCPIPE_URL_ALLOWED_HOSTS", allowed.addr.to_string())]);
    let key = s.key("alice", &[]);
    let port = forbidden.addr.port();
    // Refused when the job is created: never contacted.
    for url in [
        format!("http://127.0.0.1:{port}/invoice.pdf"),
        format!("http://localhost:{port}/invoice.pdf"),
        format!("http://[::1]:{port}/invoice.pdf"),
        format!("http://0.0.0.0:{port}/invoice.pdf"),
        format!("http://[::ffff:127.0.0.1]:{port}/invoice.pdf"),
        format!("http://2130706433:{port}/invoice.pdf"),
        format!("http://0x7f.1:{port}/invoice.pdf"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/a.pdf".to_owned(),
        "http://192.168.0.1/a.pdf".to_owned(),
        "http://[fd00::1]/a.pdf".to_owned(),
        "http://[fe80::1]/a.pdf".to_owned(),
        "http://224.0.0.1/a.pdf".to_owned(),
        format!("ftp://127.0.0.1:{port}/a.pdf"),
        "file:///etc/passwd".to_owned(),
        format!("http://user:pw@127.0.0.1:{port}/a.pdf"),
    ] {
        let (st, v) = s.create_json(&key, json!({"document": {"url": url}})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        assert_eq!(code(&v), "URL_NOT_ALLOWED", "{url}: {v}");
    }
    // A redirect from an allowed host to a forbidden one: refused at that hop.
    let target = format!("http://127.0.0.1:{port}/invoice.pdf");
    let (st, v) = s
        .create_json(
            &key,
            json!({"document": {"url": format!("http://{}/redirect?to={target}", allowed.addr)}}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let job = s.wait_final(&key, &job_id(&v)).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "URL_NOT_ALLOWED", "{job:#}");
    assert_eq!(allowed.hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        forbidden.hits.load(Ordering::SeqCst),
        0,
        "the forbidden server was reached"
    );
    // Nothing was created for the refused ones.
    let (_, list) = s.get(&key, "/api/v1/jobs").await;
    assert_eq!(list["data"]["jobs"].as_array().expect("jobs").len(), 1);
}

#[tokio::test]
async fn bad_requests_get_codes_and_create_nothing() {
    let s = Server::start(&[("DOCPIPE_MAX_DOCUMENT_MIB", "1".to_owned())]);
    let key = s.key("alice", &[]);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            json!({"document": {"content_base64": "%%%"}}),
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            Some("document.content_base64"),
        ),
        (
            json!({"document": {"content_base64": invoice_b64(), "kind": "poem"}}),
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            Some("document.kind"),
        ),
        (
            json!({"document": {"content_base64": invoice_b64(), "colour": "red"}}),
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            None,
        ),
        (
            json!({"document": {"content_base64": 12}}),
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            Some("document.content_base64"),
        ),
        (
            json!({}),
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            Some("document"),
        ),
        (
            json!({"document": {"content_base64": b64(b"PK\x03\x04 a zip")}}),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_FILE_FORMAT",
            None,
        ),
        (
            json!({"document": {"content_base64": ""}}),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_FILE_FORMAT",
            None,
        ),
        (
            json!({"document": {"content_base64": b64(&vec![b'%'; 1024 * 1024 + 10])}}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "FILE_TOO_LARGE",
            None,
        ),
        (
            json!({"upload_id": "upl_00000000000000000000000000000000"}),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("upload_id"),
        ),
    ];
    for (body, status, want, field) in cases {
        let (st, v) = s.create_json(&key, body.clone()).await;
        assert_eq!(st, status, "{v}");
        assert_eq!(code(&v), want, "{v}");
        assert_eq!(v["status"], "error");
        if let Some(f) = field {
            assert_eq!(v["error"]["details"]["field"], f, "{v}");
        }
    }
    // Not JSON at all, and a body far over any limit.
    let r = s
        .http
        .post(s.u("/api/v1/jobs"))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body("{\"document\": ")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .http
        .post(s.u("/api/v1/jobs"))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        code(&r.json::<Value>().await.expect("json")),
        "FILE_TOO_LARGE"
    );
    let r = s
        .http
        .post(s.u("/api/v1/jobs"))
        .header("x-api-key", &key)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, list) = s.get(&key, "/api/v1/jobs").await;
    assert_eq!(
        list["data"]["jobs"].as_array().expect("jobs").len(),
        0,
        "nothing half-created"
    );

    // A hostile filename is reduced to one safe segment.
    let (st, v) = s
        .create_json(
            &key,
            json!({"document": {"content_base64": invoice_b64(), "filename": "../../etc/passwd.pdf"}}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(v["data"]["filename"], "passwd.pdf");
    // The request id is honoured.
    let r = s
        .http
        .get(s.u("/health"))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .expect("req");
    assert_eq!(r.headers()["x-request-id"], "trace-123");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["meta"]["request_id"], "trace-123");
}

#[tokio::test]
async fn a_full_queue_refuses_with_503_instead_of_growing() {
    let docs = doc_server().await;
    let s = Server::start(&[
        ("DOCPIPE_URL_ALLOWED_HOSTS", docs.addr.to_string()),
        ("DOCPIPE_WORKERS", "1".to_owned()),
        ("DOCPIPE_QUEUE_CAPACITY", "1".to_owned()),
    ]);
    let key = s.key("alice", &[]);
    let slow = json!({"document": {"url": format!("http://{}/slow.pdf", docs.addr)}});
    let (st, _) = s.create_json(&key, slow.clone()).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    for _ in 0..400 {
        if docs.hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (st, _) = s.create_json(&key, slow.clone()).await;
    assert_eq!(st, StatusCode::ACCEPTED, "one waits in the queue");
    let r = s
        .http
        .post(s.u("/api/v1/jobs"))
        .header("x-api-key", &key)
        .json(&slow)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        code(&r.json::<Value>().await.expect("json")),
        "SERVICE_UNAVAILABLE"
    );
    docs.release.notify_waiters();
}

#[tokio::test]
async fn the_openapi_document_matches_the_live_router() {
    let s = Server::start(&[]);
    let key = s.key("alice", &[]);
    let r = s.http.get(s.u("/openapi.json")).send().await.expect("req");
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut seen = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().expect("ops").keys() {
            let concrete = path
                .replace("{job_id}", "job_20260101000000_abc")
                .replace("{upload_id}", "upl_00000000000000000000000000000000");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let r = s
                .http
                .request(m, s.u(&concrete))
                .header("x-api-key", &key)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("req");
            let status = r.status();
            let v: Value = r.json().await.expect("json");
            // The route exists: no "no such route" 404 and no 405.
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(code(&v), "NOT_FOUND_ROUTE");
            assert!(
                !(status == StatusCode::NOT_FOUND && v["error"]["message"] == "no such route"),
                "{method} {path} is documented but not routed"
            );
            seen.push(format!("{method} {path}"));
        }
    }
    for want in [
        "post /api/v1/jobs",
        "get /api/v1/jobs",
        "get /api/v1/jobs/{job_id}",
        "delete /api/v1/jobs/{job_id}",
        "get /api/v1/jobs/{job_id}/result",
        "post /api/v1/uploads",
        "get /api/v1/reviews",
        "post /api/v1/jobs/{job_id}/review",
        "post /api/v1/jobs/{job_id}/retry",
        "get /api/v1/jobs/{job_id}/executions",
        "get /api/v1/jobs/{job_id}/pages/{page}",
        "get /health",
    ] {
        assert!(
            seen.contains(&want.to_owned()),
            "{want} is not documented: {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_server_killed_mid_execution_resumes_the_job_on_restart() {
    let docs = doc_server().await;
    let env = [("DOCPIPE_URL_ALLOWED_HOSTS", docs.addr.to_string())];
    let mut s = Server::start(&env);
    let key = s.key("alice", &[]);
    let (st, v) = s
        .create_json(
            &key,
            json!({"document": {"url": format!("http://{}/slow.pdf", docs.addr)}}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let id = job_id(&v);
    let wait_hits = |n: usize| {
        let hits = docs.hits.clone();
        async move {
            for _ in 0..1000 {
                if hits.load(Ordering::SeqCst) >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the document server was not asked {n} times");
        }
    };
    wait_hits(1).await;
    // SIGKILL while ingest is fetching: no chance to clean up.
    s.child.kill().expect("kill");
    s.child.wait().expect("reaped");
    let home = std::mem::replace(&mut s.home, tempfile::tempdir().expect("tempdir"));
    drop(s);
    let s = Server::start_in(home, &env);
    // The in-flight ingest runs again (stages are idempotent); let it through.
    wait_hits(2).await;
    docs.release.notify_waiters();
    let job = s.wait_final(&key, &id).await;
    assert!(
        ["completed", "needs_review"].contains(&job["status"].as_str().unwrap_or_default()),
        "{job:#}"
    );
    let (st, r) = s.get(&key, &format!("/api/v1/jobs/{id}/result")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(r["data"]["fields"]["gross_total"]["value"], "529.87");
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let s = Server::start(&[("DOCPIPE_CORS_ORIGINS", "https://app.example".to_owned())]);
    let preflight = s
        .http
        .request(reqwest::Method::OPTIONS, s.u("/api/v1/jobs"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-api-key, content-type")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = s
        .http
        .get(s.u("/health"))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .expect("health");
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    // With no origin configured, no response carries CORS headers.
    let plain = Server::start(&[]);
    let r = plain
        .http
        .get(plain.u("/health"))
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

/// Another process reading the database (here `docpipe jobs list`, as an operator would
/// run it) while the server writes must never take the server down: SQLite's shared
/// memory is only safe while every process's locks on it are SQLite's own.
#[tokio::test]
async fn readers_in_other_processes_never_kill_a_busy_server() {
    let mut s = Server::start(&[("DOCPIPE_WORKERS", "2".to_owned())]);
    let key = s.key("alice", &["--rate-limit", "100000"]);
    let body = json!({"document": {"content_base64": invoice_b64()}});
    let home = s.home.path().to_path_buf();
    // 50 reads in other processes, one after the other, while jobs go through.
    let readers = std::thread::spawn(move || {
        for i in 0..50 {
            let out = Command::new(BIN)
                .arg("--home")
                .arg(&home)
                .args(["jobs", "list", "--limit", "5"])
                .output()
                .expect("jobs list");
            assert!(
                out.status.success(),
                "run {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    let mut jobs = 0;
    while !readers.is_finished() {
        let (st, v) = s.create_json(&key, body.clone()).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        // Poll like a client, so the API's kept views are read and refreshed too.
        let job = s.wait_final(&key, &job_id(&v)).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        jobs += 1;
        assert!(
            s.child.try_wait().expect("status").is_none(),
            "the server died"
        );
    }
    readers.join().expect("the readers finished");
    assert!(jobs > 0);
    assert!(
        s.child.try_wait().expect("status").is_none(),
        "the server died while another process read the database"
    );
    let h = s.http.get(s.u("/health")).send().await.expect("health");
    assert_eq!(h.status(), StatusCode::OK);
}

async fn post_raw(s: &Server, key: &str, idem: &str, body: &[u8]) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.u("/api/v1/jobs"))
        .header("x-api-key", key)
        .header("idempotency-key", idem)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.expect("json body"))
}

/// Many requests with one Idempotency-Key at once make one job, and every one of them is
/// answered with it; a key whose request died between its record and its job (SIGKILL)
/// is not ruined: the next retry creates the job the record names.
#[tokio::test]
async fn one_idempotency_key_makes_one_job_however_many_ask_at_once() {
    let s = Arc::new(Server::start(&[]));
    let key = s.key("alice", &["--rate-limit", "100000"]);
    let body =
        serde_json::to_vec(&json!({"document": {"content_base64": invoice_b64()}})).expect("body");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (s, key, body) = (s.clone(), key.clone(), body.clone());
        set.spawn(async move { post_raw(&s, &key, "same-request", &body).await });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(answer) = set.join_next().await {
        let (st, v) = answer.expect("task");
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        ids.insert(job_id(&v));
    }
    assert_eq!(ids.len(), 1, "one job: {ids:?}");
    let id = ids.into_iter().next().expect("an id");
    let job = s.wait_final(&key, &id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let (_, list) = s.get(&key, "/api/v1/jobs").await;
    assert_eq!(list["data"]["jobs"].as_array().expect("jobs").len(), 1);

    // The record of a request that died before its job was stored.
    let orphan = docpipe_core::JobId::generate(chrono::Utc::now());
    {
        use docpipe_core::IdempotencyStore;
        use sha2::Digest;
        let store = docpipe_local::sqlite::SqliteJobStore::open(&s.home.path().join("docpipe.db"))
            .expect("store");
        let record = docpipe_core::IdempotencyRecord {
            owner: "alice".into(),
            key: "died-halfway".into(),
            request_hash: hex::encode(sha2::Sha256::digest(&body)),
            job_id: orphan.clone(),
            created_at: chrono::Utc::now(),
        };
        assert!(
            store
                .put_if_absent(&record)
                .await
                .expect("stored")
                .is_none()
        );
    }
    let (st, v) = post_raw(&s, &key, "died-halfway", &body).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(job_id(&v), orphan.as_str(), "the job the record names");
    let job = s.wait_final(&key, orphan.as_str()).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    // And again: the same job.
    let (st, v) = post_raw(&s, &key, "died-halfway", &body).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(job_id(&v), orphan.as_str());
}

/// A full queue refuses before anything is stored: no job, no document, no idempotency
/// record; the same request after `Retry-After` makes a job that runs.
#[tokio::test]
async fn a_refused_request_stores_nothing_and_its_retry_runs() {
    let docs = doc_server().await;
    let s = Server::start(&[
        ("DOCPIPE_URL_ALLOWED_HOSTS", docs.addr.to_string()),
        ("DOCPIPE_WORKERS", "1".to_owned()),
        ("DOCPIPE_QUEUE_CAPACITY", "1".to_owned()),
    ]);
    let key = s.key("alice", &[]);
    let slow = json!({"document": {"url": format!("http://{}/slow.pdf", docs.addr)}});
    let (st, v) = s.create_json(&key, slow).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let running = job_id(&v);
    for _ in 0..400 {
        if docs.hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let quick = json!({"document": {"url": format!("http://{}/invoice.pdf", docs.addr)}});
    let (st, v) = s.create_json(&key, quick).await;
    assert_eq!(st, StatusCode::ACCEPTED, "one waits in the queue");
    let waiting = job_id(&v);
    let body =
        serde_json::to_vec(&json!({"document": {"content_base64": invoice_b64()}})).expect("body");
    let (st, v) = post_raw(&s, &key, "full-queue", &body).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(code(&v), "SERVICE_UNAVAILABLE");
    let (_, list) = s.get(&key, "/api/v1/jobs").await;
    assert_eq!(
        list["data"]["jobs"].as_array().expect("jobs").len(),
        2,
        "nothing stored for the refused request: {list:#}"
    );
    let uploads = s.home.path().join("objects/uploads");
    let stored = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(stored, 0, "no document stored");
    // Let the queue drain, then retry as told.
    for _ in 0..1000 {
        docs.release.notify_waiters();
        let (_, v) = s.get(&key, &format!("/api/v1/jobs/{running}")).await;
        if v["data"]["status"] != "ingesting" && v["data"]["status"] != "queued" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.wait_final(&key, &running).await;
    s.wait_final(&key, &waiting).await;
    let (st, v) = post_raw(&s, &key, "full-queue", &body).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let job = s.wait_final(&key, &job_id(&v)).await;
    assert_eq!(job["status"], "completed", "{job:#}");
}

/// A job exists only once its document is stored: when the bytes cannot be stored the
/// client gets an error and no job (a server killed between the two would otherwise leave
/// an accepted job without its document), and the retry under the same key runs.
#[tokio::test]
async fn a_job_exists_only_with_its_document() {
    let s = Server::start(&[]);
    let key = s.key("alice", &[]);
    let uploads = s.home.path().join("objects/uploads");
    let _ = std::fs::remove_dir_all(&uploads);
    std::fs::create_dir_all(s.home.path().join("objects")).expect("objects folder");
    // A file where the uploads folder goes: no document can be stored, even by root.
    std::fs::write(&uploads, b"in the way").expect("blocker");
    // Over the size kept in the database, so the document goes to the uploads folder.
    let body = serde_json::to_vec(&json!({"document": {"content_base64": large_invoice_b64()}}))
        .expect("body");
    let (st, v) = post_raw(&s, &key, "store-fails", &body).await;
    assert!(st.is_server_error(), "{st} {v}");
    assert!(v["error"]["code"].is_string(), "{v}");
    let (_, list) = s.get(&key, "/api/v1/jobs").await;
    assert_eq!(
        list["data"]["jobs"].as_array().expect("jobs").len(),
        0,
        "no job without its document: {list:#}"
    );
    std::fs::remove_file(&uploads).expect("blocker removed");
    let (st, v) = post_raw(&s, &key, "store-fails", &body).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let job = s.wait_final(&key, &job_id(&v)).await;
    assert!(
        ["completed", "needs_review"].contains(&job["status"].as_str().unwrap_or_default()),
        "{job:#}"
    );
}

/// Smaller defects at the edges: an upload is used by one job only; a multipart document
/// over the limit is 413; a job id that is not UTF-8 still gets the JSON envelope.
#[tokio::test]
async fn uploads_are_used_once_and_edges_answer_in_the_envelope() {
    let s = Server::start(&[]);
    let key = s.key("alice", &["--rate-limit", "100000"]);
    let r = s
        .http
        .post(s.u("/api/v1/uploads"))
        .header("x-api-key", &key)
        .json(&json!({"filename": "a.pdf"}))
        .send()
        .await
        .expect("upload link");
    assert_eq!(r.status(), StatusCode::CREATED);
    let link: Value = r.json().await.expect("json");
    let upload_id = link["data"]["upload_id"].as_str().expect("id").to_owned();
    let pdf = std::fs::read(fixture("invoices/EN16931_Einfach.pdf")).expect("fixture");
    let r = s
        .http
        .put(link["data"]["url"].as_str().expect("url"))
        .body(pdf.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::OK);
    let (st, v) = s
        .create_json(&key, json!({"upload_id": upload_id.clone()}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let first = job_id(&v);
    let (st, v) = s.create_json(&key, json!({"upload_id": upload_id})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(code(&v), "UPLOAD_ALREADY_USED");
    let job = s.wait_final(&key, &first).await;
    assert_eq!(job["status"], "completed", "{job:#}");

    // Multipart: a document over 2 MiB is fine, one over the 50 MiB limit is 413.
    let multipart = |bytes: Vec<u8>| {
        reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("big.pdf"),
        )
    };
    let mut padded = pdf.clone();
    padded.resize(3 * 1024 * 1024, b'\n');
    let r = s
        .http
        .post(s.u("/api/v1/jobs"))
        .header("x-api-key", &key)
        .multipart(multipart(padded))
        .send()
        .await
        .expect("multipart");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut huge = pdf;
    huge.resize(51 * 1024 * 1024, b'\n');
    let r = s
        .http
        .post(s.u("/api/v1/jobs"))
        .header("x-api-key", &key)
        .multipart(multipart(huge))
        .send()
        .await
        .expect("multipart");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        code(&r.json::<Value>().await.expect("json")),
        "FILE_TOO_LARGE"
    );

    // Path segments that are not UTF-8 once decoded.
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/jobs/%ff%fe"),
        (reqwest::Method::GET, "/api/v1/jobs/%ff%fe/result"),
        (reqwest::Method::DELETE, "/api/v1/jobs/%ff%fe"),
        (
            reqwest::Method::PUT,
            "/api/v1/uploads/%ff%fe?expires=1&signature=x",
        ),
    ] {
        let r = s
            .http
            .request(method.clone(), s.u(path))
            .header("x-api-key", &key)
            .send()
            .await
            .expect("request");
        let status = r.status();
        assert!(status.is_client_error(), "{method} {path}: {status}");
        let v: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
        assert_eq!(v["status"], "error", "{v}");
        assert!(v["error"]["code"].is_string(), "{v}");
        assert!(v["meta"]["request_id"].is_string(), "{v}");
    }
}

/// A client that sends half a request is cut off: headers and bodies have deadlines.
#[tokio::test]
async fn half_sent_requests_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start(&[
        ("DOCPIPE_HEADER_TIMEOUT_SECS", "1".to_owned()),
        ("DOCPIPE_BODY_TIMEOUT_SECS", "1".to_owned()),
    ]);
    let key = s.key("alice", &[]);
    let addr = s.url.trim_start_matches("http://").to_owned();
    let partial = [
        "GET /health HTTP/1.1\r\nhost: x\r\n".to_owned(),
        format!(
            "POST /api/v1/jobs HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"doc"
        ),
    ];
    for request in partial {
        let mut conn = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        conn.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer)).await;
        assert!(
            read.is_ok(),
            "the connection stayed open: {:?}",
            String::from_utf8_lossy(&answer)
        );
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    // A whole request still works.
    let h = s.http.get(s.u("/health")).send().await.expect("health");
    assert_eq!(h.status(), StatusCode::OK);
}

/// Every field is doubtful at a threshold of 1 when the printed page is read: each job
/// lands in review.
fn review_env() -> [(&'static str, String); 2] {
    [
        ("DOCPIPE_EMBEDDED_XML", "false".to_owned()),
        ("DOCPIPE_REVIEW_CONFIDENCE_THRESHOLD", "1".to_owned()),
    ]
}

#[tokio::test]
async fn a_reviewer_corrects_a_job_and_the_correction_is_verified_versioned_and_recorded() {
    let s = Server::start(&review_env());
    let key = s.key("alice", &[]);
    let other = s.key("bob", &[]);
    let job = s.run_invoice(&key, "invoices/EN16931_Einfach.pdf").await;
    assert_eq!(job["status"], "needs_review", "{job:#}");
    let id = job["job_id"].as_str().expect("id").to_owned();
    let review = format!("/api/v1/jobs/{id}/review");

    // The queue is the tenant's own.
    let (st, v) = s.get(&key, "/api/v1/reviews").await;
    assert_eq!(st, StatusCode::OK);
    let queued: Vec<&str> = v["data"]["reviews"]
        .as_array()
        .expect("reviews")
        .iter()
        .filter_map(|r| r["job"]["job_id"].as_str())
        .collect();
    assert_eq!(queued, [id.as_str()]);
    assert!(
        v["data"]["reviews"][0]["review_reasons"]
            .as_array()
            .is_some_and(|r| r
                .iter()
                .any(|r| r.as_str().is_some_and(|r| r.starts_with("low_confidence")))),
        "{v:#}"
    );
    let (_, v) = s.get(&other, "/api/v1/reviews").await;
    assert_eq!(v["data"]["reviews"], json!([]));
    let (st, _) = s.post(&other, &review, json!({"action": "approve"})).await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "another tenant's job does not exist"
    );

    // A correction that breaks the arithmetic is refused with the failed checks; a dry
    // run shows the same without storing anything.
    let wrong = json!({"action": "correct", "fields": {"gross_total": "530.00"}});
    let mut dry = wrong.clone();
    dry["dry_run"] = json!(true);
    let (st, v) = s.post(&key, &review, dry).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["passed"], false);
    assert_eq!(v["data"]["changed"], json!(["gross_total"]));
    let (st, v) = s.post(&key, &review, wrong.clone()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(code(&v), "CHECKS_FAILED");
    let failed: Vec<&str> = v["error"]["details"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(failed.contains(&"net_plus_tax_equals_gross"), "{failed:?}");
    let mut forced = wrong.clone();
    forced["force"] = json!(true);
    let (st, v) = s.post(&key, &review, forced).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "force needs a comment: {v}");
    let (st, v) = s
        .post(
            &key,
            &review,
            json!({"action": "correct", "fields": {"total": "1"}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "unknown field: {v}");
    let (_, v) = s.get(&key, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(v["data"]["status"], "needs_review", "nothing was stored");

    // A correction that keeps the arithmetic is stored beside the machine's result.
    let good = json!({"action": "correct", "fields": {"invoice_number": "471102-A"},
                      "comment": "number read from the order"});
    let (st, v) = s.post(&key, &review, good.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["job"]["status"], "completed");
    let (_, v) = s.get(&key, &format!("/api/v1/jobs/{id}")).await;
    let last = v["data"]["status_history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .expect("history");
    assert_eq!(last["status"], "completed");
    assert_eq!(last["by"], "alice");
    assert_eq!(last["action"], "correct");
    assert_eq!(last["fields"], json!(["invoice_number"]));
    let (_, r) = s.get(&key, &format!("/api/v1/jobs/{id}/result")).await;
    assert_eq!(r["data"]["fields"]["invoice_number"]["value"], "471102-A");
    assert_eq!(r["data"]["fields"]["invoice_number"]["confidence"], 1.0);
    assert_eq!(r["data"]["needs_review"], false);
    assert_eq!(r["data"]["review"]["by"], "alice");
    let (_, m) = s
        .get(&key, &format!("/api/v1/jobs/{id}/result?version=machine"))
        .await;
    assert_eq!(m["data"]["fields"]["invoice_number"]["value"], "471102");
    assert_eq!(m["data"]["needs_review"], true);
    let csv = s
        .http
        .get(s.u(&format!("/api/v1/jobs/{id}/result?format=csv")))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("csv");
    assert!(
        csv.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/csv"))
    );
    let csv = csv.text().await.expect("text");
    assert!(csv.contains("field,invoice_number,471102-A,1"), "{csv}");

    // The same request again is answered again; another decision is a conflict.
    let (st, v) = s.post(&key, &review, good).await;
    assert_eq!(st, StatusCode::OK, "a repeated request is idempotent: {v}");
    let (st, v) = s.post(&key, &review, json!({"action": "approve"})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(code(&v), "JOB_STATE_CONFLICT");
    let (_, v) = s.get(&key, "/api/v1/reviews").await;
    assert_eq!(v["data"]["reviews"], json!([]));

    // The correction is ground truth for evaluation: the machine missed the number.
    let out = Command::new(BIN)
        .arg("--home")
        .arg(s.home.path())
        .args(["eval", "--from-reviews", "--json"])
        .output()
        .expect("eval runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["reviewed"], 1, "{report:#}");
    assert_eq!(report["corrected"], 1);
    assert_eq!(
        report["fields"]["invoice_number"],
        json!({"correct": 0, "total": 1})
    );
    assert_eq!(report["fields"]["gross_total"]["correct"], 1);
    assert_eq!(report["per_job"][0]["wrong"], json!(["invoice_number"]));
}

#[tokio::test]
async fn two_reviewers_racing_one_wins_and_a_rejection_fails_the_job() {
    let s = Server::start(&review_env());
    let key = s.key("alice", &[]);
    let job = s.run_invoice(&key, "invoices/EN16931_Rabatte.pdf").await;
    assert_eq!(job["status"], "needs_review", "{job:#}");
    let id = job["job_id"].as_str().expect("id").to_owned();
    let review = format!("/api/v1/jobs/{id}/review");
    let approve = s.post(&key, &review, json!({"action": "approve"}));
    let reject = s.post(
        &key,
        &review,
        json!({"action": "reject", "reason": "not ours"}),
    );
    let ((a, av), (b, bv)) = tokio::join!(approve, reject);
    let mut statuses = [a, b];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{av} {bv}"
    );
    let (_, v) = s.get(&key, &format!("/api/v1/jobs/{id}")).await;
    let changes = v["data"]["status_history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|c| c.get("by").is_some())
        .count();
    assert_eq!(changes, 1, "exactly one decision is recorded: {v:#}");

    // A rejection fails the job with the reviewer's reason.
    let job = s.run_invoice(&key, "invoices/EN16931_Gutschrift.pdf").await;
    assert_eq!(job["status"], "needs_review", "{job:#}");
    let id = job["job_id"].as_str().expect("id").to_owned();
    let (st, v) = s
        .post(
            &key,
            &format!("/api/v1/jobs/{id}/review"),
            json!({"action": "reject", "reason": "a duplicate"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["job"]["status"], "failed");
    assert_eq!(v["data"]["job"]["error"]["code"], "REJECTED_IN_REVIEW");
    assert_eq!(v["data"]["job"]["error"]["message"], "a duplicate");
}

#[tokio::test]
async fn a_failed_job_is_retried_as_a_new_execution_and_keeps_the_old_one() {
    let faults = [
        ("DOCPIPE_ALLOW_FAULT_INJECTION", "true".to_owned()),
        ("DOCPIPE_FAULT_INJECTION_PROBABILITY", "1".to_owned()),
        ("DOCPIPE_FAULT_INJECTION_MODE", "permanent".to_owned()),
    ];
    let mut s = Server::start(&faults);
    let key = s.key("alice", &[]);
    let job = s.run_invoice(&key, "invoices/EN16931_Einfach.pdf").await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let id = job["job_id"].as_str().expect("id").to_owned();
    s.wait_settled(&key, &id).await;
    let retry = format!("/api/v1/jobs/{id}/retry");
    // Retried while the fault persists: it fails again, as a second execution.
    let (st, v) = s.post(&key, &retry, json!({})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["data"]["attempt"], 1);
    let job = s.wait_final(&key, &id).await;
    assert_eq!(job["status"], "failed", "{job:#}");

    // The fault is gone (a restart without it); two retries race, one runs.
    s.child.kill().expect("kill");
    s.child.wait().expect("reaped");
    let home = std::mem::replace(&mut s.home, tempfile::tempdir().expect("tempdir"));
    drop(s);
    let s = Server::start_in(home, &[]);
    s.wait_settled(&key, &id).await;
    let ((a, av), (b, bv)) = tokio::join!(
        s.post(&key, &retry, json!({})),
        s.post(&key, &retry, json!({}))
    );
    let mut statuses = [a, b];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{av} {bv}"
    );
    let job = s.wait_final(&key, &id).await;
    assert!(
        ["completed", "needs_review"].contains(&job["status"].as_str().unwrap_or_default()),
        "{job:#}"
    );
    assert_eq!(job["error"], Value::Null, "the old reason is gone");
    let (_, v) = s.get(&key, &format!("/api/v1/jobs/{id}")).await;
    let retries: Vec<&Value> = v["data"]["status_history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|c| c["action"] == "retry")
        .collect();
    assert_eq!(retries.len(), 2, "{v:#}");
    assert!(
        retries
            .iter()
            .all(|c| c["by"] == "alice" && c["status"] == "queued")
    );

    // Every execution keeps its history.
    let (st, v) = s.get(&key, &format!("/api/v1/jobs/{id}/executions")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let executions = v["data"]["executions"].as_array().expect("executions");
    let names: Vec<&str> = executions
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, [id.clone(), format!("{id}-r1"), format!("{id}-r2")]);
    for e in executions {
        assert!(
            e["events"].as_array().is_some_and(|ev| ev.len() > 2),
            "{e:#}"
        );
    }
    let (st, v) = s.post(&key, &retry, json!({})).await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "a finished job is not retried: {v}"
    );
    assert_eq!(code(&v), "JOB_STATE_CONFLICT");
}

/// Whether the data folder holds any object of the job under `prefix` (`uploads`,
/// `documents`, `ocr`, `results`).
fn has_objects(home: &std::path::Path, prefix: &str, id: &str) -> bool {
    let as_files = std::fs::read_dir(home.join("objects").join(prefix).join(id))
        .is_ok_and(|mut entries| entries.next().is_some());
    // Objects up to 1 MiB are rows of the job database.
    let db = rusqlite::Connection::open_with_flags(
        home.join("docpipe.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("job database");
    let rows: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM objects WHERE folder = ?1",
            [format!("{prefix}/{id}")],
            |r| r.get(0),
        )
        .expect("objects table");
    as_files || rows > 0
}

#[tokio::test]
async fn a_key_can_ask_that_documents_go_when_their_job_ends() {
    let s = Server::start(&[]);
    let dropping = s.key("blueprints", &["--delete-documents-when-final"]);
    let keeping = s.key("keeper", &[]);
    let home = s.home.path();

    // Completed: the document and its text go, the result stays.
    let job = s
        .run_invoice(&dropping, "invoices/EN16931_Einfach.pdf")
        .await;
    let id = job["job_id"].as_str().expect("id").to_owned();
    let job = s.wait_settled(&dropping, &id).await;
    assert!(
        ["completed", "needs_review"].contains(&job["status"].as_str().unwrap_or_default()),
        "{job:#}"
    );
    assert_eq!(job["delete_document_when_final"], true, "{job:#}");
    for prefix in ["uploads", "documents", "ocr"] {
        assert!(!has_objects(home, prefix, &id), "{prefix}/{id} deleted");
    }
    let (st, v) = s.get(&dropping, &format!("/api/v1/jobs/{id}/result")).await;
    assert_eq!(st, StatusCode::OK, "the result stays: {v}");
    assert_eq!(v["data"]["fields"]["invoice_number"]["value"], "471102");

    // Another key's job keeps its document (another invoice: the same one would reuse
    // the first result, with no text of its own).
    let kept = s
        .run_invoice(&keeping, "invoices/EN16931_Rabatte.pdf")
        .await;
    let kept_id = kept["job_id"].as_str().expect("id").to_owned();
    let kept = s.wait_settled(&keeping, &kept_id).await;
    assert_eq!(kept["delete_document_when_final"], false, "{kept:#}");
    assert!(has_objects(home, "documents", &kept_id));
    assert!(has_objects(home, "ocr", &kept_id));

    // Failed (a PDF that needs a password): the document goes too, and the job cannot
    // be retried from it.
    let failed = s
        .run_invoice(&dropping, "pdf/encrypted/user-password.pdf")
        .await;
    let failed_id = failed["job_id"].as_str().expect("id").to_owned();
    let failed = s.wait_settled(&dropping, &failed_id).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["error"]["code"], "DOCUMENT_ENCRYPTED", "{failed:#}");
    for prefix in ["uploads", "documents", "ocr"] {
        assert!(
            !has_objects(home, prefix, &failed_id),
            "{prefix}/{failed_id}"
        );
    }
    let (st, v) = s
        .post(
            &dropping,
            &format!("/api/v1/jobs/{failed_id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(code(&v), "JOB_STATE_CONFLICT");
    let kept_failed = s
        .run_invoice(&keeping, "pdf/encrypted/user-password.pdf")
        .await;
    let kept_failed_id = kept_failed["job_id"].as_str().expect("id").to_owned();
    s.wait_settled(&keeping, &kept_failed_id).await;
    assert!(has_objects(home, "documents", &kept_failed_id));

    // The sweeper (the backstop) finds nothing left to drop.
    let gc = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(["gc", "--json"])
        .output()
        .expect("gc");
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    let report: Value = serde_json::from_slice(&gc.stdout).expect("gc report");
    assert_eq!(report["documents_dropped"], json!([]), "{report:#}");
    assert!(has_objects(home, "documents", &kept_id), "not asked for");
}

#[tokio::test]
async fn the_host_setting_deletes_every_jobs_document_in_serve_and_run() {
    let on = [(
        "DOCPIPE_RETENTION_DELETE_DOCUMENT_WHEN_FINAL",
        "true".to_owned(),
    )];
    let s = Server::start(&on);
    let key = s.key("alice", &[]);
    let job = s.run_invoice(&key, "invoices/EN16931_Einfach.pdf").await;
    let id = job["job_id"].as_str().expect("id").to_owned();
    let job = s.wait_settled(&key, &id).await;
    assert_eq!(job["delete_document_when_final"], true, "{job:#}");
    assert!(!has_objects(s.home.path(), "documents", &id));
    assert!(has_objects(s.home.path(), "results", &id));

    // `docpipe run` with the setting: the same.
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .arg("--home")
        .arg(home.path())
        .args(["run", "--json"])
        .arg(fixture("invoices/EN16931_Einfach.pdf"))
        .env_remove("DOCPIPE_HOME")
        .env(on[0].0, &on[0].1)
        .output()
        .expect("run");
    let runs: Value = serde_json::from_slice(&out.stdout).expect("run --json");
    let id = runs[0]["job_id"].as_str().expect("job id");
    assert!(runs[0]["result"].is_object(), "{runs:#}");
    for prefix in ["uploads", "documents", "ocr"] {
        assert!(!has_objects(home.path(), prefix, id), "{prefix}/{id}");
    }
    assert!(has_objects(home.path(), "results", id));
}
