//! `docpipe eval --json` on the shared sets, through the real binary: on the Factur-X /
//! ZUGFeRD folder the printed-text targets with `--no-embedded` and every field right
//! where the embedded XML is read; on the r2v floor plans the room-detection targets.
//! Skipped when `../shared` is absent.

#[path = "support/skipping.rs"]
mod skipping;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn shared(dir: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(dir);
    p.is_dir().then_some(p)
}

fn zugferd() -> Option<PathBuf> {
    shared("invoices/zugferd")
}

fn eval(dir: &Path, extra: &[&str]) -> Value {
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_docpipe"))
        .arg("--home")
        .arg(home.path())
        .args(["eval", "--json"])
        .args(extra)
        .arg(dir)
        .env("DOCPIPE_LOG", "error")
        .output()
        .expect("docpipe runs");
    assert!(
        out.status.success(),
        "docpipe eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn accuracy(report: &Value, field: &str) -> (u64, u64) {
    let f = &report["fields"][field];
    (
        f["correct"].as_u64().unwrap_or(0),
        f["total"].as_u64().unwrap_or(0),
    )
}

#[test]
fn printed_text_meets_the_targets() {
    let Some(dir) = zugferd() else {
        skipping::skip("../shared is absent");
        return;
    };
    let report = eval(&dir, &["--no-embedded"]);
    let n = report["documents"].as_u64().unwrap_or(0);
    assert!(n >= 16, "{n} documents");
    assert_eq!(report["embedded_xml"], false);
    for field in [
        "invoice_number",
        "issue_date",
        "currency",
        "net_total",
        "tax_total",
        "gross_total",
    ] {
        let (correct, total) = accuracy(&report, field);
        println!("--no-embedded {field}: {correct}/{total}");
        assert!(total >= n, "{field}: only {total} of {n} documents scored");
        assert!(
            correct * 100 >= total * 95,
            "{field}: {correct}/{total} is under 95%; failures: {}",
            report["failures"]
        );
    }
    let sources: Vec<&str> = report["per_document"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["source"].as_str()).collect())
        .unwrap_or_default();
    assert!(sources.iter().all(|s| *s == "visual"), "{sources:?}");
}

#[test]
fn embedded_xml_is_read_exactly() {
    let Some(dir) = zugferd() else {
        skipping::skip("../shared is absent");
        return;
    };
    let report = eval(&dir, &[]);
    let n = report["documents"].as_u64().unwrap_or(0);
    assert!(n >= 16, "{n} documents");
    // Every document here with a truth file has valid embedded XML: all of it right.
    assert_eq!(
        report["failures"].as_array().map(Vec::len),
        Some(0),
        "{}",
        report["failures"]
    );
    assert_eq!(report["passed"].as_u64(), Some(n));
    let fields = report["fields"].as_object().cloned().unwrap_or_default();
    assert!(fields.len() >= 15, "{fields:?}");
    for (name, f) in fields {
        assert_eq!(f["correct"], f["total"], "{name}");
    }
    for d in report["per_document"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        assert_eq!(d["source"], "embedded_xml", "{d}");
    }
}

/// The room detector on the r2v plans rendered from their annotations: at least 90% of
/// plans with the right room count and a mean IoU of at least 0.85.
#[test]
fn floor_plans_meet_the_room_targets() {
    let Some(dir) = shared("floorplans/r2v") else {
        skipping::skip("../shared is absent");
        return;
    };
    let report = eval(&dir, &[]);
    let rooms = &report["rooms"];
    let plans = rooms["plans"].as_u64().unwrap_or(0);
    let right = rooms["count_correct"].as_u64().unwrap_or(0);
    let iou = rooms["mean_iou"].as_f64().unwrap_or(0.0);
    println!("rooms: {right}/{plans} right counts, mean IoU {iou:.3}");
    assert!(plans >= 15, "{rooms}");
    assert!(right * 10 >= plans * 9, "{rooms}");
    assert!(iou >= 0.85, "{rooms}");
}
