//! scripts/aws-smoke.sh cannot run here (it deploys to a real account); what it reads out
//! of the answers, scripts/aws_smoke.py, runs here on answers in the shapes AWS and the API
//! give (scripts/testdata/aws-smoke: DescribeStacks as the AWS CLI prints it, the API's
//! job views and result).

use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// (exit code, stdout, stderr) of `python3 scripts/aws_smoke.py ARGS` with the recorded
/// answers' paths.
fn parse(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if a.ends_with(".json") {
                format!("{ROOT}/scripts/testdata/aws-smoke/{a}")
            } else {
                (*a).to_owned()
            }
        })
        .collect();
    let out = Command::new("python3")
        .arg(format!("{ROOT}/scripts/aws_smoke.py"))
        .args(&args)
        .output()
        .expect("python3 runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

#[test]
fn the_smoke_script_reads_the_stack_outputs() {
    assert_eq!(
        parse(&["output", "ApiUrl", "describe-stacks.json"]),
        (
            0,
            "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/".into(),
            String::new()
        )
    );
    assert_eq!(
        parse(&["output", "ApiKeysTableName", "describe-stacks.json"]).1,
        "docpipe-smoke-api-keys"
    );
    let (code, _, err) = parse(&["output", "ApiUrl", "describe-stacks-rolled-back.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("ROLLBACK_COMPLETE"), "{err}");
    let (code, _, err) = parse(&["output", "NoSuchOutput", "describe-stacks.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("no output NoSuchOutput"), "{err}");
}

#[test]
fn the_smoke_script_follows_a_job_to_its_result_and_cost() {
    assert_eq!(
        parse(&["job-id", "create.json"]).1,
        "job_20261207090000_k3v9q2"
    );
    // Still running: not final (exit 3), so the script polls again.
    assert_eq!(parse(&["final", "job-running.json"]).0, 3);
    assert_eq!(parse(&["final", "job-completed.json"]).0, 0);
    assert_eq!(parse(&["final", "job-failed.json"]).0, 0);
    assert_eq!(
        parse(&["check-job", "job-completed.json"]),
        (0, "completed 1 0.0026795335855".into(), String::new())
    );
    let (code, _, err) = parse(&["check-job", "job-failed.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("EXTRACTION_FAILED"), "{err}");
    assert_eq!(
        parse(&["check-result", "result.json"]).1,
        "invoice 471102 gross 529.87"
    );
    assert_eq!(
        parse(&["sum", "job-completed.json", "job-completed.json"]).1,
        "0.0053590671710"
    );
    // An error envelope stops the script with the API's code.
    let (code, _, err) = parse(&["status", "unauthorized.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("UNAUTHORIZED"), "{err}");
}
