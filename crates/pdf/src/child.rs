//! Talking to a bounded child process: feed it its input, read its stdout up to a cap and a
//! little of its stderr, all at once so neither side blocks on a full pipe. Shared by the PDF
//! text worker and the OCR engine runners; the callers apply their own timeout around it.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

/// What came back: stdout (at most `max_out + 1` bytes, so a caller can tell it overflowed),
/// how reading stdout ended, and the start of stderr.
pub struct Exchanged {
    pub out: Vec<u8>,
    pub read: std::io::Result<usize>,
    pub err: Vec<u8>,
}

/// Writes `input` to the child's stdin and reads its output. A child whose stdout passes
/// `max_out` bytes is killed at once rather than left blocked until a timeout. Fails only
/// if the child was spawned without piped stdin, stdout and stderr.
pub async fn exchange(
    child: &mut Child,
    input: Vec<u8>,
    max_out: usize,
    max_err: usize,
) -> std::io::Result<Exchanged> {
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("the child has no pipes"));
    };
    let write = async move {
        // A child that stops reading early closes the pipe; its exit status tells why.
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
        drop(stdin);
    };
    let read_out = async move {
        let mut out = Vec::new();
        let r = stdout.take(max_out as u64 + 1).read_to_end(&mut out).await;
        if out.len() > max_out {
            // It would block on a full pipe; stop it now rather than at the timeout.
            let _ = child.start_kill();
        }
        (out, r)
    };
    let read_err = async move {
        let mut err = Vec::new();
        let _ = stderr.take(max_err as u64).read_to_end(&mut err).await;
        err
    };
    let ((), (out, read), err) = tokio::join!(write, read_out, read_err);
    Ok(Exchanged { out, read, err })
}
