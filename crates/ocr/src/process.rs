//! One run of an external tool (tesseract, pdftoppm) over untrusted bytes: input on stdin,
//! output read from stdout under a byte cap, a wall-clock timeout, and on Linux memory and
//! CPU limits applied to the child right after it starts (`prlimit`, so no `pre_exec`).

use std::ffi::OsString;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::Command;

/// A tool invocation and its bounds.
#[derive(Debug, Clone)]
pub(crate) struct Invocation<'a> {
    pub program: &'a Path,
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, &'static str)>,
    pub timeout: Duration,
    pub max_output_bytes: usize,
    /// Address space of the child (RLIMIT_AS), bytes.
    pub memory_bytes: u64,
    /// CPU seconds of the child (RLIMIT_CPU).
    pub cpu_seconds: u64,
}

/// How a run went wrong.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program is not installed (or not executable).
    NotFound,
    Spawn(std::io::Error),
    Timeout,
    OutputTooLarge,
    /// Non-zero exit or a signal; the start of its stderr.
    Failed {
        status: ExitStatus,
        stderr: String,
    },
}

impl RunError {
    /// A short account for a job error message.
    pub(crate) fn describe(&self, tool: &str, timeout: Duration, max_out: usize) -> String {
        match self {
            RunError::NotFound => format!("{tool} is not installed"),
            RunError::Spawn(e) => format!("cannot start {tool}: {e}"),
            RunError::Timeout => format!(
                "{tool} took longer than {} s and was stopped",
                timeout.as_secs_f32()
            ),
            RunError::OutputTooLarge => format!("{tool}'s output is larger than {max_out} bytes"),
            RunError::Failed { status, stderr } => {
                let why = describe_exit(status);
                let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                if first.is_empty() {
                    format!("{tool} failed: {why}")
                } else {
                    format!("{tool} failed: {why}: {}", first.trim())
                }
            }
        }
    }
}

/// Runs `inv` with `input` on stdin; returns its stdout.
pub(crate) async fn run(inv: &Invocation<'_>, input: Vec<u8>) -> Result<Vec<u8>, RunError> {
    let mut cmd = Command::new(inv.program);
    cmd.args(&inv.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in &inv.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => RunError::NotFound,
        _ => RunError::Spawn(e),
    })?;
    limit_child(child.id(), inv.memory_bytes, inv.cpu_seconds);
    let max_out = inv.max_output_bytes;
    let exchanged = docpipe_pdf::child::exchange(&mut child, input, max_out, 16 * 1024);
    let Ok(exchanged) = tokio::time::timeout(inv.timeout, exchanged).await else {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(RunError::Timeout);
    };
    let docpipe_pdf::child::Exchanged {
        out,
        read: read_result,
        err,
    } = exchanged.map_err(RunError::Spawn)?;
    if out.len() > max_out {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(RunError::OutputTooLarge);
    }
    let status = match tokio::time::timeout(inv.timeout, child.wait()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(RunError::Spawn(e)),
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(RunError::Timeout);
        }
    };
    if let Err(e) = read_result {
        return Err(RunError::Spawn(e));
    }
    if !status.success() {
        return Err(RunError::Failed {
            status,
            stderr: String::from_utf8_lossy(&err).into_owned(),
        });
    }
    Ok(out)
}

/// Caps the child's memory and CPU. The child runs a few instructions unlimited before
/// this lands, which is harmless: the limits are about what the document makes it do.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn limit_child(pid: Option<u32>, memory_bytes: u64, cpu_seconds: u64) {
    use rlimit::Resource;
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    let mem = Some((memory_bytes, memory_bytes));
    let cpu = Some((cpu_seconds, cpu_seconds.saturating_add(1)));
    if let Err(e) = rlimit::prlimit(pid, Resource::AS, mem, None) {
        tracing::warn!(error = %e, "cannot limit the OCR tool's memory");
    }
    if let Err(e) = rlimit::prlimit(pid, Resource::CPU, cpu, None) {
        tracing::warn!(error = %e, "cannot limit the OCR tool's CPU time");
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn limit_child(_pid: Option<u32>, _memory_bytes: u64, _cpu_seconds: u64) {}

fn describe_exit(status: &ExitStatus) -> String {
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
        Some(c) => format!("exit code {c}"),
        None => "it ended abnormally".to_string(),
    }
}
