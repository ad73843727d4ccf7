//! `docpipe eval --json` on the shared sets, through the real binary: on the Factur-X /
//! ZUGFeRD folder the printed-text targets with `--no-embedded` and every field right
//! where the embedded XML is read; on the r2v floor plans the room-detection targets, and
//! on the MLSTRUCT-FP sheets rooms found and the walls scored.
//! Skipped when `../shared` is absent. `eval --scan` on a shipped invoice: read through
//! OCR from an image-only rendering (skipped when poppler or Tesseract is missing).

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

fn installed(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A shipped invoice rendered to a 200-dpi image-only PDF is read through raster OCR:
/// every page by the engine, embedded XML off, and the printed number, date and totals
/// come back right.
#[test]
fn a_scanned_invoice_is_read_through_ocr() {
    if !installed("tesseract", "--version") || !installed("pdftoppm", "-v") {
        println!(
            "SKIPPED a_scanned_invoice_is_read_through_ocr: tesseract or pdftoppm is not \
             installed (apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu \
             poppler-utils; scripts/test.sh installs them)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/invoices");
    for name in ["EN16931_Einfach.pdf", "EN16931_Einfach.pdf.truth.json"] {
        std::fs::copy(fixtures.join(name), dir.path().join(name)).expect("copies the fixture");
    }
    let report = eval(dir.path(), &["--scan"]);
    assert_eq!(report["documents"].as_u64(), Some(1), "{report}");
    assert_eq!(report["embedded_xml"], false);
    assert_eq!(report["scan"]["dpi"].as_u64(), Some(200), "{report}");
    let doc = &report["per_document"][0];
    assert_eq!(doc["source"], "visual", "{doc}");
    let pages = count(&doc["pages"]);
    assert_eq!(pages, 2, "{doc}");
    assert_eq!(
        count(&doc["ocr_pages"]),
        pages,
        "every page read by OCR: {doc}"
    );
    for field in ["invoice_number", "issue_date", "currency", "gross_total"] {
        let (correct, total) = accuracy(&report, field);
        assert_eq!((correct, total), (1, 1), "{field}: {}", report["failures"]);
    }
    verdict_is_consistent(&report);
}

fn accuracy(report: &Value, field: &str) -> (u64, u64) {
    let f = &report["fields"][field];
    (
        f["correct"].as_u64().unwrap_or(0),
        f["total"].as_u64().unwrap_or(0),
    )
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The verdict and reliability figures exist and agree with the per-document outcomes
/// and the field tallies. Returns the verdict.
fn verdict_is_consistent(report: &Value) -> Value {
    let docs = report["per_document"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let n = count(&report["documents"]);
    assert_eq!(docs.len() as u64, n);
    for d in &docs {
        assert!(d["key_fields_right"].is_boolean(), "{d}");
        assert!(d["review_reasons"].is_array(), "{d}");
        assert!(d["key_fields_wrong"].is_array(), "{d}");
        let wrong = d["key_fields_wrong"].as_array().map_or(0, Vec::len);
        assert_eq!(d["key_fields_right"] == true, wrong == 0, "{d}");
        // A document whose key fields are wrong has a failure listed for each of them.
        for field in d["key_fields_wrong"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            assert!(
                report["failures"].as_array().is_some_and(|f| f
                    .iter()
                    .any(|f| f["file"] == d["file"] && f["field"] == field)),
                "{field} of {}",
                d["file"]
            );
        }
        if d["status"] == "needs_review" {
            assert_eq!(d["needs_review"], true, "{d}");
            assert!(
                !d["review_reasons"].as_array().is_some_and(Vec::is_empty),
                "{d}"
            );
        }
    }
    let v = report["verdict"].clone();
    let with = |status: &str, right: bool| {
        docs.iter()
            .filter(|d| d["status"] == status && d["key_fields_right"] == right)
            .count() as u64
    };
    let right = docs
        .iter()
        .filter(|d| d["key_fields_right"] == true)
        .count() as u64;
    assert_eq!(count(&v["documents"]) + count(&v["unjudged"]), n, "{v}");
    assert_eq!(count(&v["key_fields_right"]), right, "{v}");
    assert_eq!(
        count(&v["straight_through"]),
        with("completed", true),
        "{v}"
    );
    assert_eq!(count(&v["silent_errors"]), with("completed", false), "{v}");
    assert_eq!(
        count(&v["needless_reviews"]),
        with("needs_review", true),
        "{v}"
    );
    assert_eq!(
        count(&v["caught_errors"]),
        with("needs_review", false),
        "{v}"
    );
    let outcomes = [
        "straight_through",
        "silent_errors",
        "needless_reviews",
        "caught_errors",
        "failed",
    ]
    .iter()
    .map(|k| count(&v[*k]))
    .sum::<u64>();
    assert_eq!(outcomes, count(&v["documents"]), "{v}");
    if right > 0 {
        let rate = v["straight_through_rate"].as_f64().expect("a rate");
        assert!((rate - count(&v["straight_through"]) as f64 / right as f64).abs() < 1e-9);
    }

    // Reliability: every scalar field the answers hold is either in a bin or missing.
    let r = &report["reliability"];
    let bins = r["bins"].as_array().cloned().unwrap_or_default();
    assert_eq!(bins.len(), 5, "{r}");
    assert_eq!(bins[0]["from"].as_f64(), Some(0.0));
    assert_eq!(bins[4]["to"].as_f64(), Some(1.0));
    let binned: u64 = bins.iter().map(|b| count(&b["fields"])).sum();
    let scalar_fields: u64 = report["fields"]
        .as_object()
        .map(|f| {
            f.iter()
                .filter(|(k, _)| *k != "lines" && *k != "tax_breakdown")
                .map(|(_, t)| count(&t["total"]))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(binned + count(&r["missing"]), scalar_fields, "{r}");
    for b in &bins {
        assert!(count(&b["correct"]) <= count(&b["fields"]), "{b}");
    }
    let confident: u64 = bins
        .iter()
        .filter(|b| b["from"].as_f64().is_some_and(|f| f >= 0.9 - 1e-6))
        .map(|b| count(&b["fields"]))
        .sum();
    assert_eq!(count(&r["confident"]["fields"]), confident, "{r}");
    assert!(report["seconds"].as_f64().is_some_and(|s| s > 0.0));
    println!("verdict: {v}\nreliability: {r}");
    v
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
    verdict_is_consistent(&report);
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
    // Read exactly, so every key field is right and nothing completes wrong.
    let v = verdict_is_consistent(&report);
    assert_eq!(v["key_fields_right"].as_u64(), Some(n), "{v}");
    assert_eq!(v["silent_errors"].as_u64(), Some(0), "{v}");
}

/// The room detector on the r2v plans rendered from their annotations: on the 15 plans it
/// was first built on, at least 90% of plans with the right room count and a mean IoU of
/// at least 0.85; over those and the 100 plans of `r2v-more` together (115), at least the
/// figures last measured (a ratchet: 81 of 115 right counts, checked at 79; mean IoU
/// 0.914, checked at 0.91).
#[test]
fn floor_plans_meet_the_room_targets() {
    let (Some(first), Some(more)) = (shared("floorplans/r2v"), shared("floorplans/r2v-more"))
    else {
        skipping::skip("../shared is absent");
        return;
    };
    let first = eval(&first, &[]);
    let more = eval(&more, &[]);
    let figures = |report: &Value| {
        let rooms = &report["rooms"];
        (
            rooms["plans"].as_u64().unwrap_or(0),
            rooms["count_correct"].as_u64().unwrap_or(0),
            rooms["truth_rooms"].as_u64().unwrap_or(0),
            rooms["mean_iou"].as_f64().unwrap_or(0.0),
        )
    };
    let (plans, right, _, iou) = figures(&first);
    println!("r2v rooms: {right}/{plans} right counts, mean IoU {iou:.3}");
    assert!(plans >= 15, "{}", first["rooms"]);
    assert!(right * 10 >= plans * 9, "{}", first["rooms"]);
    assert!(iou >= 0.85, "{}", first["rooms"]);

    let (plans2, right2, truth2, iou2) = figures(&more);
    let truth1 = figures(&first).2;
    let plans = plans + plans2;
    let right = right + right2;
    let iou = (iou * truth1 as f64 + iou2 * truth2 as f64) / (truth1 + truth2).max(1) as f64;
    println!("r2v + r2v-more rooms: {right}/{plans} right counts, mean IoU {iou:.3}");
    assert!(plans >= 115, "{}", more["rooms"]);
    assert!(
        right * 115 >= 79 * plans,
        "{right}/{plans}: {}",
        more["rooms"]
    );
    assert!(iou >= 0.91, "{iou:.3}: {}", more["rooms"]);
}

/// The room detector on the MLSTRUCT-FP sheets (real drawings, walls drawn as outline
/// pairs, no room truth): rooms found on at least 5 of the 6 sheets, and the detected
/// walls against the annotated wall rectangles at least the mean pixel IoU last measured
/// (a ratchet: 0.695, checked at 0.68).
#[test]
fn mlstruct_sheets_have_rooms_and_their_walls() {
    let Some(dir) = shared("floorplans/mlstruct-fp") else {
        skipping::skip("../shared is absent");
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_docpipe"))
        .arg("--home")
        .arg(home.path())
        .args(["floorplan", "eval", "--json"])
        .arg(&dir)
        .env("DOCPIPE_LOG", "error")
        .output()
        .expect("docpipe runs");
    assert!(
        out.status.success(),
        "docpipe floorplan eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let sheets = &report["sheets"];
    println!("MLSTRUCT-FP: {sheets}");
    assert!(sheets["sheets"].as_u64().unwrap_or(0) >= 6, "{sheets}");
    assert!(sheets["with_rooms"].as_u64().unwrap_or(0) >= 5, "{sheets}");
    assert!(
        sheets["mean_wall_iou"].as_f64().unwrap_or(0.0) >= 0.68,
        "{sheets}"
    );
}
