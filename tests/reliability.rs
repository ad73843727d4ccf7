//! The reliability drivers of `bench/` at a small scale, against this build's real
//! `docpipe serve` on 127.0.0.1:
//! - `bench/chaos.py`: jobs created with Idempotency-Keys while the server is SIGKILLed and
//!   restarted on the same data folder and another process reads the database; then
//!   nothing lost, nothing run twice, every job final, histories and executions consistent.
//! - `bench/load.py`: concurrent creates with repeated keys; every answer 202/409/429/503 in
//!   the envelope, no job lost or duplicated, the server's memory settles.
//!
//! The drivers are Python 3 (standard library only), as in CI.

mod common;

use std::process::Command;

fn driver(script: &str, args: &[&str]) -> (bool, String) {
    let path = common::repo_root().join("bench").join(script);
    let out = Command::new("python3")
        .arg(&path)
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_docpipe"))
        .args(args)
        .env_remove("DOCPIPE_HOME")
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to run {}: {e}", path.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    (out.status.success(), text)
}

#[test]
fn chaos_kills_and_restarts_lose_nothing_and_run_nothing_twice() {
    let (ok, text) = driver(
        "chaos.py",
        &[
            "-n",
            "60",
            "-k",
            "2",
            "-c",
            "4",
            "--seed",
            "7",
            "--deadline",
            "300",
        ],
    );
    assert!(ok, "chaos found violations:\n{text}");
    assert!(text.contains("kills: 2 (SIGKILL)"), "{text}");
}

#[test]
fn load_with_repeated_keys_answers_in_the_envelope_and_settles() {
    let (ok, text) = driver(
        "load.py",
        &[
            "-n",
            "600",
            "-c",
            "16",
            "--seed",
            "7",
            "--settle-secs",
            "1",
            "--deadline",
            "300",
        ],
    );
    assert!(ok, "load found violations:\n{text}");
}
