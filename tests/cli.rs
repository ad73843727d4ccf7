//! `docpipe` as a user runs it: real binary, real state machine, SQLite in a temp dir.

mod common;

use std::path::{Path, PathBuf};

use common::{docpipe, fixture, same_amount, shared, truth_gross};
use serde_json::Value;

fn run_json(home: &Path, files: &[PathBuf]) -> (Option<i32>, Vec<Value>) {
    let out = docpipe(home)
        .arg("run")
        .arg("--json")
        .args(files)
        .output()
        .expect("docpipe runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let arr = v.as_array().cloned().expect("a JSON array");
    assert_eq!(arr.len(), files.len(), "one object per file");
    (out.status.code(), arr)
}

fn invoices() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture("invoices"))
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_invoices_come_out_verified_with_their_totals() {
    let home = tempfile::tempdir().expect("tempdir");
    let files = invoices();
    assert!(files.len() >= 3);
    let (code, out) = run_json(home.path(), &files);
    assert_eq!(code, Some(0), "{out:#?}");
    for (file, o) in files.iter().zip(&out) {
        let status = o["status"].as_str().expect("status");
        assert!(
            status == "completed" || status == "needs_review",
            "{}: {o:#}",
            file.display()
        );
        assert!(o["error"].is_null());
        let result = &o["result"];
        assert_eq!(result["kind"], "invoice");
        // The fixtures are Factur-X: read from their embedded XML (on by default).
        assert_eq!(result["source"], "embedded_xml");
        let gross = result["fields"]["gross_total"]["value"]
            .as_str()
            .expect("gross total extracted");
        let want = truth_gross(file).expect("truth");
        assert!(
            same_amount(gross, &want),
            "{}: {gross} != {want}",
            file.display()
        );
        assert!(result["checks"].as_array().is_some_and(|c| !c.is_empty()));
        // The result file is written too.
        let id = o["job_id"].as_str().expect("job id");
        assert!(
            home.path()
                .join("results")
                .join(format!("{id}.json"))
                .is_file()
        );
    }
}

#[test]
fn the_table_shows_totals_and_jobs_and_history_are_inspectable() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = fixture("invoices/EN16931_Einfach.pdf");
    let out = docpipe(home.path())
        .arg("run")
        .arg(&file)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("FILE") && table.contains("GROSS"), "{table}");
    assert!(table.contains("EN16931_Einfach.pdf"), "{table}");
    assert!(table.contains("529.87"), "{table}");

    let list = docpipe(home.path())
        .args(["jobs", "list", "--json"])
        .output()
        .expect("runs");
    assert!(list.status.success());
    let page: Value = serde_json::from_slice(&list.stdout).expect("json");
    let id = page["jobs"][0]["id"].as_str().expect("a job").to_owned();

    let show = docpipe(home.path())
        .args(["jobs", "show", &id])
        .output()
        .expect("runs");
    assert!(show.status.success());
    let shown: Value = serde_json::from_slice(&show.stdout).expect("json");
    let statuses: Vec<&str> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(
        &statuses[..5],
        ["queued", "ingesting", "ocr", "extracting", "verifying"]
    );
    assert!(
        shown["job"]["content_sha256"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    assert!(shown["job"]["cost"]["stage_ms"]["ocr"].is_u64());

    let hist = docpipe(home.path())
        .args(["executions", "history", &id])
        .output()
        .expect("runs");
    assert!(hist.status.success());
    let rec: Value = serde_json::from_slice(&hist.stdout).expect("json");
    assert_eq!(rec["status"], "SUCCEEDED");
    let types: Vec<&str> = rec["history"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types.first(), Some(&"ExecutionStarted"));
    assert_eq!(types.last(), Some(&"ExecutionSucceeded"));
    assert!(
        types.contains(&"LambdaFunctionScheduled") && types.contains(&"LambdaFunctionSucceeded")
    );
}

#[test]
fn bad_inputs_fail_their_jobs_with_the_right_code() {
    let home = tempfile::tempdir().expect("tempdir");
    let big = home.path().join("big.pdf");
    {
        // 51 MiB, sparse: the pipeline must refuse it by size without reading it.
        let f = std::fs::File::create(&big).expect("create");
        f.set_len(51 * 1024 * 1024).expect("size");
    }
    let cases = [
        (fixture("bad/zip-renamed.pdf"), "INVALID_FILE_FORMAT"),
        (fixture("bad/empty.pdf"), "INVALID_FILE_FORMAT"),
        (fixture("bad/truncated.pdf"), "DOCUMENT_UNREADABLE"),
        (
            fixture("pdf/encrypted/user-password.pdf"),
            "DOCUMENT_ENCRYPTED",
        ),
        (big, "FILE_TOO_LARGE"),
    ];
    let files: Vec<PathBuf> = cases.iter().map(|(f, _)| f.clone()).collect();
    let (code, out) = run_json(home.path(), &files);
    assert_eq!(code, Some(1), "a failed job makes the exit code non-zero");
    for ((file, want), o) in cases.iter().zip(&out) {
        assert_eq!(o["status"], "failed", "{}: {o:#}", file.display());
        assert_eq!(o["error"]["code"], *want, "{}: {o:#}", file.display());
        assert!(
            o["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(o["result"].is_null());
    }
}

#[test]
fn a_rendered_blueprint_comes_out_with_its_rooms() {
    let home = tempfile::tempdir().expect("tempdir");
    let plan = home.path().join("plan.png");
    let out = docpipe(home.path())
        .args(["floorplan", "render"])
        .arg(fixture("floorplans/r2v-00_02.txt"))
        .arg(&plan)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = docpipe(home.path())
        .args(["run", "--json", "--kind", "blueprint"])
        .arg(&plan)
        .output()
        .expect("runs");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let status = v[0]["status"].as_str().expect("status");
    assert!(status == "completed" || status == "needs_review", "{v:#}");
    let result = &v[0]["result"];
    assert_eq!(result["kind"], "blueprint");
    let rooms = result["rooms"].as_array().expect("rooms");
    // The annotation labels 10 wall-enclosed rooms; the detector finds most of them.
    assert!((5..=14).contains(&rooms.len()), "{result:#}");
    let (w, h) = (
        result["image"]["width"].as_f64().expect("width"),
        result["image"]["height"].as_f64().expect("height"),
    );
    for room in rooms {
        assert!(
            room["area_px"].as_f64().is_some_and(|a| a > 0.0),
            "{room:#}"
        );
        let poly = room["polygon"].as_array().expect("polygon");
        let norm = room["polygon_normalised"].as_array().expect("normalised");
        assert!(poly.len() >= 4 && poly.len() == norm.len());
        for (p, n) in poly.iter().zip(norm) {
            let x = p[0].as_f64().expect("x");
            assert!((x / w - n[0].as_f64().expect("nx")).abs() < 1e-4);
            assert!(p[1].as_f64().expect("y") <= h);
        }
    }
    let checks: Vec<&str> = result["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == true)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        checks.contains(&"rooms_found") && checks.contains(&"rooms_disjoint"),
        "{result:#}"
    );

    // A PDF blueprint that is a vector drawing (walls as filled paths, labels as text) is
    // rendered with poppler and read like a scan; without poppler it is refused clearly.
    let out = docpipe(home.path())
        .args(["run", "--json", "--kind", "blueprint"])
        .arg(fixture("floorplans/vector-plan.pdf"))
        .output()
        .expect("runs");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let poppler = std::process::Command::new("pdftoppm")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if poppler {
        assert_eq!(v[0]["status"], "completed", "{v:#}");
        assert_eq!(v[0]["result"]["page"], 1, "{v:#}");
        let rooms = v[0]["result"]["rooms"].as_array().expect("rooms");
        assert_eq!(rooms.len(), 3, "{v:#}");
        // Labels from the drawing's text layer.
        let mut labels: Vec<&str> = rooms.iter().filter_map(|r| r["label"].as_str()).collect();
        labels.sort_unstable();
        assert_eq!(labels, ["Bath", "Kitchen", "Living"], "{v:#}");
    } else {
        eprintln!("pdftoppm is not installed: checking the refusal instead");
        assert_eq!(v[0]["status"], "failed");
        assert_eq!(v[0]["error"]["code"], "UNSUPPORTED_DOCUMENT");
        assert!(
            v[0]["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("poppler")),
            "{v:#}"
        );
    }
}

/// Whether Tesseract can run here; the scan tests skip (saying so) when it cannot.
fn tesseract_installed() -> bool {
    let ok = std::process::Command::new("tesseract")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipping the OCR half: tesseract is not installed \
             (apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu)"
        );
    }
    ok
}

/// A PNG "scan" of an invoice is accepted and read by raster OCR: with Tesseract it
/// finishes with the printed gross total; without it the job fails with
/// UNSUPPORTED_DOCUMENT naming the package to install, and nothing crashes.
#[test]
fn a_scanned_invoice_png_goes_through_ocr() {
    let home = tempfile::tempdir().expect("tempdir");
    let scan = fixture("invoices/EN16931_Einfach-page2.png");
    let (code, out) = run_json(home.path(), std::slice::from_ref(&scan));
    let o = &out[0];
    if !tesseract_installed() {
        assert_eq!(code, Some(1));
        assert_eq!(o["status"], "failed", "{o:#}");
        assert_eq!(o["error"]["code"], "UNSUPPORTED_DOCUMENT", "{o:#}");
        let message = o["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("tesseract-ocr"), "{message}");
        return;
    }
    let status = o["status"].as_str().expect("status");
    // The page has the totals but not the header (number, dates), so review is expected.
    assert!(status == "completed" || status == "needs_review", "{o:#}");
    assert!(o["error"].is_null(), "{o:#}");
    let gross = o["result"]["fields"]["gross_total"]["value"]
        .as_str()
        .expect("gross total extracted");
    assert!(same_amount(gross, "529.87"), "{gross}");
}

/// Every damaged or malicious PDF from qpdf's test suite through the whole pipeline:
/// each job ends (failed or done), the process never panics, hangs or runs away.
#[test]
fn hostile_pdfs_fail_cleanly() {
    let Some(shared) = shared() else { return };
    let dir = shared.join("data/robustness/qpdf/qtest");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("qtest")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let home = tempfile::tempdir().expect("tempdir");
    let (_, out) = run_json(home.path(), &files);
    let mut failed = 0;
    for (file, o) in files.iter().zip(&out) {
        let status = o["status"].as_str().expect("status");
        assert!(
            ["failed", "completed", "needs_review"].contains(&status),
            "{}: {o:#}",
            file.display()
        );
        if status == "failed" {
            failed += 1;
            let code = o["error"]["code"].as_str().expect("code");
            assert!(
                // UNSUPPORTED_DOCUMENT: a PDF with no text layer on a machine without
                // the OCR engine.
                [
                    "DOCUMENT_UNREADABLE",
                    "DOCUMENT_ENCRYPTED",
                    "INVALID_FILE_FORMAT",
                    "UNSUPPORTED_DOCUMENT"
                ]
                .contains(&code),
                "{}: {o:#}",
                file.display()
            );
        }
    }
    eprintln!(
        "{} hostile files: {failed} failed cleanly, {} processed",
        files.len(),
        files.len() - failed
    );
}

#[test]
fn factur_x_set_completes_and_most_gross_totals_match() {
    let Some(shared) = shared() else { return };
    let dir = shared.join("data/invoices/zugferd/fx");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fx")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
        .collect();
    files.sort();
    let home = tempfile::tempdir().expect("tempdir");
    let (code, out) = run_json(home.path(), &files);
    assert_eq!(code, Some(0), "no job failed");
    let mut matched = 0;
    for (file, o) in files.iter().zip(&out) {
        let got = o["result"]["fields"]["gross_total"]["value"].as_str();
        let want = truth_gross(file);
        let ok = matches!((got, &want), (Some(g), Some(w)) if same_amount(g, w));
        eprintln!(
            "{}: gross {got:?} truth {want:?} {}",
            file.display(),
            if ok { "ok" } else { "MISMATCH" }
        );
        matched += usize::from(ok);
    }
    eprintln!("gross totals matched: {matched}/{}", files.len());
    assert!(matched * 10 >= files.len() * 7, "{matched}/{}", files.len());
}

/// Output cut short by a closed pipe (`docpipe executions history ID | head`) ends the
/// command quietly: no panic, no error.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_, out) = run_json(home.path(), &[fixture("invoices/EN16931_Einfach.pdf")]);
    let id = out[0]["job_id"].as_str().expect("job id").to_owned();
    for args in [
        vec!["executions", "history", id.as_str()],
        vec!["jobs", "show", id.as_str()],
        vec!["jobs", "list"],
    ] {
        let mut child = docpipe(home.path())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starts");
        // The reader goes away before the first line is written, as `head` does after
        // its lines.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
    }
}

/// The data folder is private to its owner: the folder 0700, the database (with its
/// log and shared memory), documents and results 0600.
#[cfg(unix)]
#[test]
fn the_data_folder_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("data");
    let (code, _) = run_json(&home, &[fixture("invoices/EN16931_Einfach.pdf")]);
    assert_eq!(code, Some(0));
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&home), 0o700, "the data folder");
    let mut files = 0;
    let mut stack = vec![home.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                assert_eq!(mode(&p) & 0o077, 0, "{} is open to others", p.display());
                stack.push(p);
            } else {
                assert_eq!(mode(&p) & 0o077, 0, "{} is open to others", p.display());
                files += 1;
            }
        }
    }
    assert!(
        files >= 4,
        "the database, a document and results were written"
    );
}

/// A job's cost in dollars: on this host (vCPU time), and its counters on AWS, whose state
/// transitions are the states the execution really entered; and the estimate per stage.
#[test]
fn jobs_are_priced_in_dollars_and_a_workload_can_be_estimated() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = fixture("invoices/EN16931_Einfach.pdf");
    let (code, outcomes) = run_json(home.path(), std::slice::from_ref(&file));
    assert_eq!(code, Some(0));
    let o = &outcomes[0];
    let cost = &o["cost"];
    assert_eq!(cost["host"], "local", "{cost}");
    let total: f64 = cost["total_usd"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a total");
    assert!(total > 0.0 && total < 0.001, "{total}");
    assert!(
        cost["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .all(|l| l["unit"] == "vCPU-s")
    );

    let id = o["job_id"].as_str().expect("job id");
    let out = docpipe(home.path())
        .args(["cost", "job", id, "--json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let priced: Value = serde_json::from_slice(&out.stdout).expect("json");
    let aws = &priced["aws"];
    assert_eq!(aws["host"], "aws");
    let transitions = aws["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["item"] == "Step Functions state transitions")
        .and_then(|l| l["quantity"].as_str())
        .expect("transitions");
    let hist = docpipe(home.path())
        .args(["executions", "history", id])
        .output()
        .expect("runs");
    let rec: Value = serde_json::from_slice(&hist.stdout).expect("json");
    let entered = rec["history"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("StateEntered"))
        })
        .count();
    assert_eq!(transitions, entered.to_string(), "{rec}");

    let out = docpipe(home.path())
        .args(["cost", "estimate", "--documents", "1000", "--pages", "1"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    for stage in [
        "api", "ingest", "ocr", "extract", "verify", "finalize", "pipeline",
    ] {
        assert!(table.contains(&format!("{stage} subtotal")), "{table}");
    }
    assert!(
        table.contains("Textract DetectDocumentText pages"),
        "{table}"
    );
    assert!(table.contains("per 1,000 documents: $2.68"), "{table}");
    let bad = docpipe(home.path())
        .args(["cost", "estimate", "--model", "no-such-model"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not in the price table"));
}
