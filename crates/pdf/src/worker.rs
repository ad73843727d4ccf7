//! Hostile-input isolation for the PDF text layer. Parsing runs in a child process (the
//! docpipe binary re-executed with [`WORKER_ARGS`]) that caps its own memory, CPU time and
//! stack; the parent ([`PdfTextOcr`]) feeds it the bytes on stdin, reads one JSON reply
//! from stdout under a wall-clock timeout and an output cap, and turns every way the child
//! can die into a clean `DOCUMENT_UNREADABLE` error (a file that needs a password is
//! `DOCUMENT_ENCRYPTED`). A stack overflow or an allocation
//! failure aborts a process and cannot be caught in-process; in a child it is just a
//! non-zero exit.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docpipe_core::{Document, ErrorCode, MediaType, Ocr, StageError};
use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::{PdfLimits, extract_document};

/// The arguments that select the PDF text worker in the docpipe binary.
pub const WORKER_ARGS: [&str; 2] = ["__worker", "pdf-text"];

/// Bounds the child applies to itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLimits {
    /// Address space (RLIMIT_AS), bytes.
    pub memory_bytes: u64,
    /// CPU seconds (RLIMIT_CPU soft limit; SIGXCPU, then SIGKILL one second later).
    pub cpu_seconds: u64,
    /// Stack of the parsing thread, bytes.
    pub stack_bytes: usize,
    /// Largest PDF read from stdin, bytes.
    pub max_input_bytes: u64,
    pub pdf: PdfLimits,
}

impl Default for WorkerLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 1024 * 1024 * 1024,
            cpu_seconds: 20,
            stack_bytes: 64 * 1024 * 1024,
            max_input_bytes: 256 * 1024 * 1024,
            pdf: PdfLimits::default(),
        }
    }
}

/// What the child writes to stdout: exactly one JSON value.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Document(Document),
    Error {
        message: String,
        /// The error's code when it is not `DOCUMENT_UNREADABLE`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<ErrorCode>,
    },
}

/// Exit code of a child that read the input but found no document in it.
const EXIT_DOCUMENT_ERROR: u8 = 2;
/// Exit code of a child whose parser panicked.
const EXIT_PANIC: u8 = 3;
/// Exit code of a child that could not set up (limits, stdin, thread).
const EXIT_SETUP: u8 = 4;

/// The child's entry point, with the default limits. The docpipe binary calls this when
/// started with [`WORKER_ARGS`]; it reads a PDF from stdin and writes a [`Reply`].
pub fn run_pdf_text_worker() -> ExitCode {
    run_pdf_text_worker_with(&WorkerLimits::default())
}

/// Runs the worker if `args` (as from `std::env::args_os()`, program name first) select it.
pub fn dispatch(args: &[OsString]) -> Option<ExitCode> {
    let selected = args.len() == 3
        && args.get(1).is_some_and(|a| a == WORKER_ARGS[0])
        && args.get(2).is_some_and(|a| a == WORKER_ARGS[1]);
    selected.then(run_pdf_text_worker)
}

fn reply(r: &Reply) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    serde_json::to_writer(&mut out, r)?;
    out.write_all(b"\n")?;
    out.flush()
}

pub fn run_pdf_text_worker_with(limits: &WorkerLimits) -> ExitCode {
    if let Err(e) = apply_limits(limits) {
        eprintln!("pdf-text worker: cannot set resource limits: {e}");
        return ExitCode::from(EXIT_SETUP);
    }
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin()
        .lock()
        .take(limits.max_input_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
    {
        eprintln!("pdf-text worker: cannot read stdin: {e}");
        return ExitCode::from(EXIT_SETUP);
    }
    if bytes.len() as u64 > limits.max_input_bytes {
        let _ = reply(&Reply::Error {
            message: format!("the PDF is larger than {} bytes", limits.max_input_bytes),
            code: None,
        });
        return ExitCode::from(EXIT_DOCUMENT_ERROR);
    }
    let pdf_limits = limits.pdf.clone();
    let parser = std::thread::Builder::new()
        .name("pdf-text".into())
        .stack_size(limits.stack_bytes)
        .spawn(move || extract_document(&bytes, &pdf_limits));
    let result = match parser {
        Ok(handle) => handle.join(),
        Err(e) => {
            eprintln!("pdf-text worker: cannot start the parser thread: {e}");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    match result {
        Ok(Ok(document)) => match reply(&Reply::Document(document)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pdf-text worker: cannot write the reply: {e}");
                ExitCode::from(EXIT_SETUP)
            }
        },
        Ok(Err(e)) => {
            let code = e.code();
            let _ = reply(&Reply::Error {
                message: e.to_string(),
                code: (code != ErrorCode::DocumentUnreadable).then_some(code),
            });
            ExitCode::from(EXIT_DOCUMENT_ERROR)
        }
        Err(_) => ExitCode::from(EXIT_PANIC),
    }
}

#[cfg(unix)]
fn apply_limits(limits: &WorkerLimits) -> std::io::Result<()> {
    use rlimit::Resource;
    let cap = |r: Resource, want: u64| -> std::io::Result<()> {
        let (_, hard) = r.get()?;
        let hard = hard.min(want.saturating_add(want / 20).max(want + 1));
        r.set(want.min(hard), hard)
    };
    cap(Resource::AS, limits.memory_bytes)?;
    cap(Resource::CPU, limits.cpu_seconds)?;
    Ok(())
}

#[cfg(not(unix))]
fn apply_limits(_limits: &WorkerLimits) -> std::io::Result<()> {
    Ok(())
}

/// How to start the worker: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl WorkerCommand {
    /// The running executable with [`WORKER_ARGS`], for binaries that call [`dispatch`].
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: WORKER_ARGS.iter().map(OsString::from).collect(),
        })
    }
}

/// The PDF text layer as an [`Ocr`] port, each document parsed in a worker process.
#[derive(Debug, Clone)]
pub struct PdfTextOcr {
    command: WorkerCommand,
    timeout: Duration,
    max_output_bytes: usize,
    permits: Arc<Semaphore>,
}

impl PdfTextOcr {
    /// Default: 30 s per document, 256 MiB of reply, one worker per CPU.
    pub fn new(command: WorkerCommand) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            command,
            timeout: Duration::from_secs(30),
            max_output_bytes: 256 * 1024 * 1024,
            permits: Arc::new(Semaphore::new(cpus)),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_max_output_bytes(mut self, max: usize) -> Self {
        self.max_output_bytes = max;
        self
    }

    /// At most `n` (at least 1) workers at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.permits = Arc::new(Semaphore::new(n.max(1)));
        self
    }

    async fn run(&self, bytes: Vec<u8>) -> Result<Document, StageError> {
        let unreadable = |m: String| StageError::new(ErrorCode::DocumentUnreadable, m);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StageError::unavailable("the PDF text worker pool is closed"))?;
        let mut child = Command::new(&self.command.program)
            .args(&self.command.args)
            // The docpipe binary allocates with mimalloc, which by default reserves address
            // space 1 GiB at a time: more than the worker's RLIMIT_AS leaves. Small steps keep
            // the address-space cap meaning "memory the parser uses".
            .env("MIMALLOC_ARENA_RESERVE", "16MiB")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                StageError::unavailable(format!("cannot start the PDF text worker: {e}"))
            })?;
        let max_out = self.max_output_bytes;
        let exchanged = crate::child::exchange(&mut child, bytes, max_out, 64 * 1024);
        let exchanged = match tokio::time::timeout(self.timeout, exchanged).await {
            Ok(v) => v,
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(unreadable(format!(
                    "parsing the PDF took longer than {} s; the worker was stopped",
                    self.timeout.as_secs_f32()
                )));
            }
        };
        let crate::child::Exchanged {
            out,
            read: read_result,
            err,
        } = exchanged.map_err(|_| StageError::unavailable("the PDF text worker has no pipes"))?;
        if out.len() > max_out {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(unreadable(format!(
                "the PDF's text is larger than {max_out} bytes"
            )));
        }
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(StageError::unavailable(format!(
                    "cannot wait for the PDF text worker: {e}"
                )));
            }
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(unreadable(
                    "the PDF text worker did not exit; it was stopped".into(),
                ));
            }
        };
        if let Err(e) = read_result {
            return Err(unreadable(format!(
                "cannot read the PDF text worker's reply: {e}"
            )));
        }
        let code = status.code();
        if status.success() || code == Some(i32::from(EXIT_DOCUMENT_ERROR)) {
            return match serde_json::from_slice::<Reply>(&out) {
                Ok(Reply::Document(d)) if status.success() => Ok(d),
                // Only a document's own verdicts pass from the child; anything else it
                // could name is the parent's to decide.
                Ok(Reply::Error {
                    message,
                    code: Some(ErrorCode::DocumentEncrypted),
                }) => Err(StageError::new(ErrorCode::DocumentEncrypted, message)),
                Ok(Reply::Error { message, .. }) => Err(unreadable(message)),
                _ => Err(unreadable(
                    "the PDF text worker gave a malformed reply".into(),
                )),
            };
        }
        let stderr = String::from_utf8_lossy(&err);
        let why = if stderr.contains("overflowed its stack") {
            "it overflowed its stack (deeply nested content)".to_string()
        } else if stderr.contains("memory allocation") || stderr.contains("capacity overflow") {
            "it ran out of memory".to_string()
        } else if code == Some(i32::from(EXIT_PANIC)) {
            "the parser failed on this file".to_string()
        } else {
            describe_exit(&status)
        };
        Err(unreadable(format!("the PDF could not be parsed: {why}")))
    }
}

fn describe_exit(status: &std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return match sig {
                9 | 24 => "it exceeded its CPU or memory limit and was killed".to_string(),
                6 => "it aborted".to_string(),
                11 | 7 => "it crashed".to_string(),
                s => format!("it was killed by signal {s}"),
            };
        }
    }
    match status.code() {
        Some(c) => format!("the worker exited with code {c}"),
        None => "the worker ended abnormally".to_string(),
    }
}

#[async_trait]
impl Ocr for PdfTextOcr {
    async fn recognize(
        &self,
        bytes: Vec<u8>,
        media_type: MediaType,
    ) -> Result<Document, StageError> {
        match media_type {
            MediaType::Pdf => self.run(bytes).await,
            MediaType::Png | MediaType::Jpeg => Err(StageError::new(
                ErrorCode::UnsupportedDocument,
                format!(
                    "{} needs raster OCR, which this build does not have yet",
                    media_type.as_str()
                ),
            )),
        }
    }
}
