//! The moto harness: finds (or installs) moto's server in the project's Python venv, starts
//! one on a free port on 127.0.0.1 for a test and stops it when the test drops it.
//!
//! Where moto lives: `$DOCPIPE_VENV_DIR/moto` (default `~/.cache/docpipe-venv/moto`), made
//! with `python3 -m venv` and `pip install 'moto[server]==5.2.5'` when missing (what
//! `scripts/aws-checks.sh` does too). If it cannot be installed the tests say so and skip,
//! unless `DOCPIPE_REQUIRE_MOTO=1` (CI), where that is a failure.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) const MOTO_VERSION: &str = "5.2.5";
const SERVER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/moto_server.py");

/// A running moto server; killed on drop.
pub(crate) struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

fn venv_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCPIPE_VENV_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/docpipe-venv")
}

/// The venv's python with moto importable, installing it if needed (under a lock, so
/// parallel test binaries install once).
fn moto_python() -> Result<PathBuf, String> {
    let dir = venv_dir();
    let venv = dir.join("moto");
    let python = venv.join("bin/python");
    if venv.join("bin/moto_server").exists() {
        return Ok(python);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let script = format!(
        "test -x '{v}/bin/moto_server' || {{ python3 -m venv '{v}' && '{v}/bin/pip' install -q 'moto[server]=={MOTO_VERSION}'; }}",
        v = venv.display()
    );
    let status = Command::new("flock")
        .arg(dir.join(".moto.lock"))
        .args(["sh", "-c", &script])
        .status()
        .map_err(|e| format!("running the moto install: {e}"))?;
    if status.success() && venv.join("bin/moto_server").exists() {
        Ok(python)
    } else {
        Err(format!(
            "installing moto[server]=={MOTO_VERSION} into {} failed",
            venv.display()
        ))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Moto {
    /// Starts a server, or returns `None` (after saying why) when moto is unavailable.
    pub(crate) async fn start() -> Option<Moto> {
        let python = match moto_python() {
            Ok(p) => p,
            Err(why) => {
                if std::env::var("DOCPIPE_REQUIRE_MOTO").as_deref() == Ok("1") {
                    panic!("moto is required (DOCPIPE_REQUIRE_MOTO=1): {why}");
                }
                eprintln!("SKIPPED: moto server unavailable: {why}");
                return None;
            }
        };
        let mut last = String::new();
        for _ in 0..3 {
            match Self::spawn(&python).await {
                Ok(m) => return Some(m),
                Err(e) => last = e,
            }
        }
        panic!("moto server did not start: {last}");
    }

    async fn spawn(python: &Path) -> Result<Moto, String> {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("docpipe-moto-{port}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
        // `timeout` is the backstop should the test process die without dropping us.
        let child = Command::new("timeout")
            .args(["--signal=KILL", "1800"])
            .arg(python)
            .arg(SERVER_SCRIPT)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("spawning moto: {e}"))?;
        let mut moto = Moto { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!("moto exited with {status}: {}", moto.log_tail()));
            }
            if let Ok((200, _)) = http("GET", &format!("{}/moto-api/", moto.url()), &[], b"").await
            {
                return Ok(moto);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "moto not ready on port {port}: {}",
            moto.log_tail()
        ))
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub(crate) fn sdk_config(&self) -> SdkConfig {
        docpipe_aws::config::emulator_sdk_config(&self.url())
    }

    /// Turns on moto's ASL interpreter and the Docker-free Lambda backend.
    pub(crate) async fn enable_executions(&self) {
        let body =
            br#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#;
        let (status, text) = http(
            "POST",
            &format!("{}/moto-api/config", self.url()),
            &[],
            body,
        )
        .await
        .expect("moto config");
        assert!(
            (200..300).contains(&status),
            "{status}: {}",
            String::from_utf8_lossy(&text)
        );
    }

    /// Queues Lambda results, answered in order by every invoke (any function).
    pub(crate) async fn queue_lambda_results(&self, results: &[String]) {
        let body = serde_json::json!({ "results": results }).to_string();
        let (status, text) = http(
            "POST",
            &format!("{}/moto-api/static/lambda-simple/response", self.url()),
            &[],
            body.as_bytes(),
        )
        .await
        .expect("queue lambda results");
        assert!(
            (200..300).contains(&status),
            "{status}: {}",
            String::from_utf8_lossy(&text)
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // `timeout` forwards nothing on SIGKILL of itself, so kill its child first by
        // asking `timeout` nicely: SIGTERM is relayed to the server.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client for moto's control API and presigned URLs (plain http on
/// 127.0.0.1 only). Returns the status and the body.
pub(crate) async fn http(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not a plain http URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length") {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(body).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut payload = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload)?;
    }
    Ok((status, payload))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size_text = String::from_utf8_lossy(&data[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size_text:?}: {e}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The settings of an environment named `test` whose clients all talk to `moto`.
pub(crate) fn settings(moto: &Moto) -> docpipe_aws::AwsSettings {
    let mut s = docpipe_aws::AwsSettings::for_env("test");
    s.endpoint_url = Some(moto.url());
    s
}

/// Adapters over moto with every table and both buckets created.
pub(crate) async fn deployed(moto: &Moto) -> docpipe_aws::AwsAdapters {
    let a = docpipe_aws::AwsAdapters::new(settings(moto), moto.sdk_config());
    docpipe_aws::schema::create_tables(&a.dynamodb, &a.settings)
        .await
        .expect("tables");
    for bucket in [&a.settings.documents_bucket, &a.settings.results_bucket] {
        a.s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("bucket");
    }
    a
}
