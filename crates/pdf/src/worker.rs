//! Hostile-input isolation for the PDF text layer. Parsing runs in child processes (the
//! docpipe binary re-executed with [`WORKER_ARGS`]) that cap their own memory, CPU time
//! per document and stack, and stay warm across documents; the parent ([`PdfTextOcr`])
//! keeps a pool of them, sends each document on a worker's stdin, reads one reply frame
//! from its stdout under a wall-clock timeout and an output cap, and turns every way a
//! worker can die into a clean `DOCUMENT_UNREADABLE` error for that document alone (a file
//! that needs a password is `DOCUMENT_ENCRYPTED`). A stack overflow or an allocation
//! failure aborts a process and cannot be caught in-process; in a child it is just a dead
//! worker, replaced by the next document.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use docpipe_core::{Document, ErrorCode, MediaType, Ocr, StageError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use crate::{PdfLimits, extract_document};

/// The arguments that select the PDF text worker in the docpipe binary.
pub const WORKER_ARGS: [&str; 2] = ["__worker", "pdf-text"];

/// Documents a worker serves before it is replaced: memory the parser fragmented comes back.
pub const DOCUMENTS_PER_WORKER: usize = 256;

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
    /// Documents one worker process serves before it exits (the parent replaces it).
    pub max_documents: u64,
    pub pdf: PdfLimits,
}

impl Default for WorkerLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 1024 * 1024 * 1024,
            cpu_seconds: 20,
            stack_bytes: 64 * 1024 * 1024,
            max_input_bytes: 256 * 1024 * 1024,
            max_documents: DOCUMENTS_PER_WORKER as u64,
            pdf: PdfLimits::default(),
        }
    }
}

/// What the child answers for one document.
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

/// The start of every reply frame; anything else on the worker's stdout is not a reply.
const REPLY_MAGIC: [u8; 4] = *b"dpw1";

/// Exit code of a child whose parser panicked (after its error reply).
const EXIT_PANIC: u8 = 3;
/// Exit code of a child that could not set up (limits, stdin, thread).
const EXIT_SETUP: u8 = 4;

/// The child's entry point, with the default limits. The docpipe binary calls this when
/// started with [`WORKER_ARGS`]; it serves documents from stdin until stdin closes.
pub fn run_pdf_text_worker() -> ExitCode {
    run_pdf_text_worker_with(&WorkerLimits::default())
}

/// Runs the worker if `args` (as from `std::env::args_os()`, program name first) select it:
/// [`WORKER_ARGS`], then optional `name=value` limits as [`WorkerCommand::with_limits`]
/// writes them.
pub fn dispatch(args: &[OsString]) -> Option<ExitCode> {
    let selected = args.len() >= 3
        && args.get(1).is_some_and(|a| a == WORKER_ARGS[0])
        && args.get(2).is_some_and(|a| a == WORKER_ARGS[1]);
    if !selected {
        return None;
    }
    Some(run_pdf_text_worker_with_args(&args[3..]))
}

/// Runs the worker with the default limits changed by `name=value` arguments.
pub fn run_pdf_text_worker_with_args(args: &[OsString]) -> ExitCode {
    let mut limits = WorkerLimits::default();
    for a in args {
        if let Err(e) = limits.set(&a.to_string_lossy()) {
            eprintln!("pdf-text worker: {e}");
            return ExitCode::from(EXIT_SETUP);
        }
    }
    run_pdf_text_worker_with(&limits)
}

impl WorkerLimits {
    /// The `name=value` arguments that carry these limits to a worker.
    pub fn to_args(&self) -> Vec<OsString> {
        vec![
            format!("memory_bytes={}", self.memory_bytes).into(),
            format!("cpu_seconds={}", self.cpu_seconds).into(),
            format!("max_documents={}", self.max_documents).into(),
        ]
    }

    fn set(&mut self, arg: &str) -> Result<(), String> {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("expected name=value, got {arg:?}"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| format!("{name}: not a number: {value:?}"))?;
        match name {
            "memory_bytes" => self.memory_bytes = value,
            "cpu_seconds" => self.cpu_seconds = value.max(1),
            "max_documents" => self.max_documents = value.max(1),
            _ => return Err(format!("unknown limit {name:?}")),
        }
        Ok(())
    }
}

/// Writes one reply frame: [`REPLY_MAGIC`], the body's length (u32, little-endian), the
/// body (JSON).
fn reply(out: &mut impl Write, r: &Reply) -> std::io::Result<()> {
    let body = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(std::io::Error::other)?;
    out.write_all(&REPLY_MAGIC)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&body)?;
    out.flush()
}

/// The worker's loop: each request is the PDF's length (u64, little-endian) and its bytes;
/// each answer is one reply frame. Every document gets `cpu_seconds` of CPU of its own
/// (the soft RLIMIT_CPU moves up by that much before each one); memory and stack limits
/// hold for the process. Ends when stdin closes, or after a panic (the parent replaces
/// the worker).
pub fn run_pdf_text_worker_with(limits: &WorkerLimits) -> ExitCode {
    if let Err(e) = apply_limits(limits) {
        eprintln!("pdf-text worker: cannot set resource limits: {e}");
        return ExitCode::from(EXIT_SETUP);
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // One parser thread, with the bounded stack, for all of this worker's documents: a
    // panic ends it, and with it the worker.
    let (to_parser, requests) = std::sync::mpsc::channel::<Vec<u8>>();
    let (to_main, parsed) = std::sync::mpsc::channel();
    let pdf_limits = limits.pdf.clone();
    let parser = std::thread::Builder::new()
        .name("pdf-text".into())
        .stack_size(limits.stack_bytes)
        .spawn(move || {
            for bytes in requests {
                if to_main.send(extract_document(&bytes, &pdf_limits)).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = parser {
        eprintln!("pdf-text worker: cannot start the parser thread: {e}");
        return ExitCode::from(EXIT_SETUP);
    }
    for _ in 0..limits.max_documents {
        let mut len = [0u8; 8];
        match input.read_exact(&mut len) {
            Ok(()) => {}
            // The parent closed the pipe: no more documents.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pdf-text worker: cannot read stdin: {e}");
                return ExitCode::from(EXIT_SETUP);
            }
        }
        let len = u64::from_le_bytes(len);
        if len > limits.max_input_bytes {
            let _ = reply(
                &mut out,
                &Reply::Error {
                    message: format!("the PDF is larger than {} bytes", limits.max_input_bytes),
                    code: None,
                },
            );
            // The rest of the request cannot be skipped cheaply: end, the parent replaces us.
            return ExitCode::SUCCESS;
        }
        let mut bytes = Vec::new();
        if let Err(e) = (&mut input).take(len).read_to_end(&mut bytes) {
            eprintln!("pdf-text worker: cannot read stdin: {e}");
            return ExitCode::from(EXIT_SETUP);
        }
        if (bytes.len() as u64) < len {
            eprintln!("pdf-text worker: the request ended early");
            return ExitCode::from(EXIT_SETUP);
        }
        if let Err(e) = allow_cpu_for_one_document(limits.cpu_seconds) {
            eprintln!("pdf-text worker: cannot set the CPU limit: {e}");
            return ExitCode::from(EXIT_SETUP);
        }
        // No answer: the parser thread panicked on this document.
        let result = to_parser
            .send(bytes)
            .ok()
            .and_then(|()| parsed.recv().ok())
            .ok_or(());
        let answer = match result {
            Ok(Ok(document)) => Reply::Document(document),
            Ok(Err(e)) => {
                let code = e.code();
                Reply::Error {
                    message: e.to_string(),
                    code: (code != ErrorCode::DocumentUnreadable).then_some(code),
                }
            }
            Err(_) => {
                let _ = reply(
                    &mut out,
                    &Reply::Error {
                        message: "the parser failed on this file".into(),
                        code: None,
                    },
                );
                return ExitCode::from(EXIT_PANIC);
            }
        };
        if let Err(e) = reply(&mut out, &answer) {
            eprintln!("pdf-text worker: cannot write the reply: {e}");
            return ExitCode::from(EXIT_SETUP);
        }
    }
    ExitCode::SUCCESS
}

/// Moves the soft CPU limit to what this process has used so far plus `seconds`, so a
/// long-lived worker gives each document the same CPU budget.
#[cfg(unix)]
fn allow_cpu_for_one_document(seconds: u64) -> std::io::Result<()> {
    use rlimit::Resource;
    let used = cpu_seconds_used()?;
    let (_, hard) = Resource::CPU.get()?;
    Resource::CPU.set(used.saturating_add(seconds).min(hard), hard)
}

#[cfg(not(unix))]
fn allow_cpu_for_one_document(_seconds: u64) -> std::io::Result<()> {
    Ok(())
}

/// CPU seconds this process has used (user + system), rounded up, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s: the fixed USER_HZ of Linux's ABI).
#[cfg(unix)]
fn cpu_seconds_used() -> std::io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| std::io::Error::other("unexpected /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let tick = |i: usize| -> std::io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| std::io::Error::other("unexpected /proc/self/stat"))
    };
    let ticks = tick(11)?.saturating_add(tick(12)?);
    Ok(ticks.div_ceil(100))
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
    // Each document moves the soft limit (`allow_cpu_for_one_document`); the hard limit
    // bounds the worker's whole life.
    let (_, hard) = Resource::CPU.get()?;
    let life = limits
        .cpu_seconds
        .saturating_mul(limits.max_documents.saturating_add(1))
        .saturating_add(1);
    let hard = hard.min(life);
    Resource::CPU.set(limits.cpu_seconds.min(hard), hard)
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

    /// The same command, passing `limits` to the worker (for binaries that call
    /// [`dispatch`]).
    pub fn with_limits(mut self, limits: &WorkerLimits) -> Self {
        self.args.extend(limits.to_args());
        self
    }
}

/// The PDF text layer as an [`Ocr`] port: documents are parsed by a pool of warm worker
/// processes. A worker serves one document at a time and up to
/// [`DOCUMENTS_PER_WORKER`] in its life; one that crashes, overruns its CPU or memory,
/// floods its output or passes the wall-clock timeout is killed, fails only the document
/// it was parsing, and is replaced by a fresh one when the next document comes.
#[derive(Debug, Clone)]
pub struct PdfTextOcr {
    command: WorkerCommand,
    timeout: Duration,
    max_output_bytes: usize,
    documents_per_worker: usize,
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    /// One permit per worker that may run at once.
    permits: Semaphore,
    /// Warm workers waiting for a document.
    idle: Mutex<Vec<Worker>>,
}

impl Pool {
    fn new(size: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Semaphore::new(size.max(1)),
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take_idle(&self) -> Option<Worker> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut w) = idle.pop() {
            // One that died while idle (killed from outside) is dropped, not handed a
            // document it would fail.
            if matches!(w.child.try_wait(), Ok(None)) {
                return Some(w);
            }
        }
        None
    }

    fn give_back(&self, w: Worker) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(w);
    }
}

/// One worker process and its pipes.
#[derive(Debug)]
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The end of its stderr, kept by a task that drains the pipe so it never fills.
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_done: tokio::task::JoinHandle<()>,
    served: usize,
}

/// Bytes of a worker's stderr kept to say why it died.
const STDERR_TAIL: usize = 16 * 1024;

/// How one exchange with a worker ended, short of a reply.
enum Broken {
    /// The reply frame announced more than the output cap.
    TooLarge,
    /// Something other than a reply frame came back.
    Malformed,
    /// The pipes closed: the worker died.
    Died,
}

impl Worker {
    fn spawn(command: &WorkerCommand) -> std::io::Result<Self> {
        let mut child = Command::new(&command.program)
            .args(&command.args)
            // The docpipe binary allocates with mimalloc, which by default reserves address
            // space 1 GiB at a time: more than the worker's RLIMIT_AS leaves. Small steps keep
            // the address-space cap meaning "memory the parser uses".
            .env("MIMALLOC_ARENA_RESERVE", "16MiB")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(std::io::Error::other("the worker has no pipes"));
        };
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let tail = Arc::clone(&stderr);
        let stderr_done = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                t.extend_from_slice(&buf[..n]);
                if t.len() > STDERR_TAIL {
                    let cut = t.len() - STDERR_TAIL;
                    t.drain(..cut);
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr,
            stderr_done,
            served: 0,
        })
    }

    /// Sends one document and reads one reply frame (writing and reading at once, so a
    /// worker that answers early cannot block on a full pipe).
    async fn exchange(&mut self, bytes: &[u8], max_out: usize) -> Result<Reply, Broken> {
        let Self { stdin, stdout, .. } = self;
        let write = async {
            stdin.write_all(&(bytes.len() as u64).to_le_bytes()).await?;
            stdin.write_all(bytes).await?;
            stdin.flush().await
        };
        let read = async {
            let mut head = [0u8; 8];
            stdout
                .read_exact(&mut head)
                .await
                .map_err(|_| Broken::Died)?;
            let (magic, len) = head.split_at(4);
            if magic != REPLY_MAGIC {
                return Err(Broken::Malformed);
            }
            let mut n = [0u8; 4];
            n.copy_from_slice(len);
            let len = u32::from_le_bytes(n) as usize;
            if len > max_out {
                return Err(Broken::TooLarge);
            }
            let mut body = vec![0u8; len];
            stdout
                .read_exact(&mut body)
                .await
                .map_err(|_| Broken::Died)?;
            serde_json::from_slice::<Reply>(&body).map_err(|_| Broken::Malformed)
        };
        let (written, read) = tokio::join!(write, read);
        match (written, read) {
            (_, Ok(reply)) => Ok(reply),
            (_, Err(b)) => Err(b),
        }
    }

    /// Kills the worker and says how it ended, from its exit status and stderr.
    async fn kill_and_describe(mut self) -> String {
        let _ = self.child.start_kill();
        self.ended().await.0
    }

    /// Waits for the worker's end (it is dying or dead) and says how it ended, and whether
    /// it exited on its own with success.
    async fn ended(mut self) -> (String, bool) {
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.stderr_done).await;
        let stderr = {
            let t = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
            String::from_utf8_lossy(&t).into_owned()
        };
        let code = match &status {
            Ok(Ok(s)) => s.code(),
            _ => None,
        };
        let why = if stderr.contains("overflowed its stack") {
            "it overflowed its stack (deeply nested content)".to_string()
        } else if stderr.contains("memory allocation") || stderr.contains("capacity overflow") {
            "it ran out of memory".to_string()
        } else if code == Some(i32::from(EXIT_PANIC)) {
            "the parser failed on this file".to_string()
        } else {
            match status {
                Ok(Ok(s)) => describe_exit(&s),
                _ => "the worker did not exit; it was stopped".to_string(),
            }
        };
        (why, code == Some(0))
    }
}

impl PdfTextOcr {
    /// Default: 30 s per document, 256 MiB of reply, one worker per CPU.
    pub fn new(command: WorkerCommand) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            command,
            timeout: Duration::from_secs(30),
            max_output_bytes: 256 * 1024 * 1024,
            documents_per_worker: DOCUMENTS_PER_WORKER,
            pool: Pool::new(cpus),
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
        self.pool = Pool::new(n);
        self
    }

    /// A worker is replaced after serving `n` (at least 1) documents. It should not be more
    /// than the worker's own [`WorkerLimits::max_documents`].
    pub fn with_documents_per_worker(mut self, n: usize) -> Self {
        self.documents_per_worker = n.max(1);
        self
    }

    /// Process ids of the warm workers waiting for a document.
    pub fn idle_workers(&self) -> Vec<u32> {
        self.pool
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|w| w.child.id())
            .collect()
    }

    async fn run(&self, bytes: Vec<u8>) -> Result<Document, StageError> {
        let unreadable = |m: String| StageError::new(ErrorCode::DocumentUnreadable, m);
        let _permit = self
            .pool
            .permits
            .acquire()
            .await
            .map_err(|_| StageError::unavailable("the PDF text worker pool is closed"))?;
        let max_out = self.max_output_bytes;
        let mut reused = false;
        let (mut worker, reply) = loop {
            let mut worker = match self.pool.take_idle() {
                Some(w) if !reused => {
                    reused = true;
                    w
                }
                _ => {
                    reused = false;
                    Worker::spawn(&self.command).map_err(|e| {
                        StageError::unavailable(format!("cannot start the PDF text worker: {e}"))
                    })?
                }
            };
            let served_before = worker.served;
            match tokio::time::timeout(self.timeout, worker.exchange(&bytes, max_out)).await {
                Ok(Ok(reply)) => break (worker, reply),
                Ok(Err(Broken::TooLarge)) => {
                    let _ = worker.kill_and_describe().await;
                    return Err(unreadable(format!(
                        "the PDF's text is larger than {max_out} bytes"
                    )));
                }
                Ok(Err(Broken::Malformed)) => {
                    let _ = worker.kill_and_describe().await;
                    return Err(unreadable(
                        "the PDF text worker gave a malformed reply".into(),
                    ));
                }
                Ok(Err(Broken::Died)) => {
                    let (why, clean_exit) = worker.ended().await;
                    // A warm worker that had ended on its own (its document allowance used
                    // up) before it saw this document: not the document's doing; once more
                    // on a fresh worker.
                    if clean_exit && served_before > 0 && reused {
                        continue;
                    }
                    return Err(unreadable(format!("the PDF could not be parsed: {why}")));
                }
                Err(_) => {
                    let _ = worker.kill_and_describe().await;
                    return Err(unreadable(format!(
                        "parsing the PDF took longer than {} s; the worker was stopped",
                        self.timeout.as_secs_f32()
                    )));
                }
            }
        };
        worker.served += 1;
        let answer = match reply {
            Reply::Document(d) => Ok(d),
            // Only a document's own verdicts pass from the child; anything else it could
            // name is the parent's to decide.
            Reply::Error {
                message,
                code: Some(ErrorCode::DocumentEncrypted),
            } => Err(StageError::new(ErrorCode::DocumentEncrypted, message)),
            Reply::Error { message, .. } => Err(unreadable(message)),
        };
        if worker.served < self.documents_per_worker {
            self.pool.give_back(worker);
        } else {
            // Closing stdin ends it; kill_on_drop covers one that does not listen.
            tokio::spawn(async move {
                let Worker {
                    mut child, stdin, ..
                } = worker;
                drop(stdin);
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            });
        }
        answer
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
