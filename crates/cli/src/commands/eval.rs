//! `docpipe eval DIR`: runs the real pipeline over every PDF in a folder (recursively)
//! that has its answers beside it, and scores the results field by field.
//!
//! Answers are either `<name>.pdf.truth.json` (the Factur-X / ZUGFeRD truth format made by
//! `shared/data/tools/extract_cii_truth.py`) or invoice2data's `<name>.json` (a list with
//! one object). Values are compared after normalising: amounts as decimals, dates as
//! `YYYY-MM-DD`, identifiers and codes trimmed without spaces and case-folded, names
//! trimmed with whitespace collapsed and case-folded.
//!
//! Besides field accuracy it measures the verdict (`verdict`): how many documents read
//! right pass straight through, how many read wrong complete anyway (silent errors), how
//! many read right are sent to review needlessly, and how well field confidence predicts
//! correctness.

mod floorplans;
mod reviews;
mod verdict;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use docpipe_core::{DocumentKind, InvoiceResult, JobStatus, ResultSource};
use docpipe_local::embedded::{Content, Embedded, Submission};
use docpipe_ocr::{Scanner, TesseractOcr};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::settings::Settings;
use verdict::{Judged, KEY_FIELDS_EINVOICE, KEY_FIELDS_INVOICE2DATA, Reliability, Verdict};

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// Folder of PDFs with `*.pdf.truth.json` or invoice2data `*.json` answers beside
    /// them (searched recursively), and of r2v floor-plan annotations (`*.txt` directly
    /// in it, scored for rooms).
    #[arg(required_unless_present = "from_reviews")]
    pub dir: Option<PathBuf>,
    /// Score the machine's fields against what reviewers approved or corrected in this
    /// data folder's jobs, instead of against answer files.
    #[arg(long, conflicts_with_all = ["dir", "scan", "no_embedded", "room_variants"])]
    pub from_reviews: bool,
    /// Print one JSON object instead of a report.
    #[arg(long)]
    pub json: bool,
    /// Ignore embedded e-invoice XML: score the reading of the printed text only.
    #[arg(long)]
    pub no_embedded: bool,
    /// Read every PDF as a scan: render its pages to an image-only PDF first (poppler's
    /// `pdftoppm`, grayscale JPEG), so the pipeline reads it with raster OCR. Implies
    /// `--no-embedded`.
    #[arg(long)]
    pub scan: bool,
    /// Resolution of the pages `--scan` renders.
    #[arg(long, default_value_t = 200, requires = "scan", value_parser = clap::value_parser!(u32).range(50..=600))]
    pub scan_dpi: u32,
    /// Turn `--scan`'s pages by this many degrees clockwise, like a sheet fed in crooked.
    #[arg(
        long,
        default_value_t = 0.0,
        requires = "scan",
        allow_negative_numbers = true
    )]
    pub scan_skew: f32,
    /// Also score the r2v floor plans drawn as these variants (low-res, high-res, noisy,
    /// rotated, jpeg, scan, or all), each reported on its own.
    #[arg(long = "room-variant")]
    pub room_variants: Vec<String>,
}

/// How a field's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Identifier,
    Name,
    Date,
    Amount,
    Lines,
    TaxBreakdown,
}

/// The fields scored, in report order, with how each compares.
const FIELDS: [(&str, Kind); 17] = [
    ("invoice_number", Kind::Identifier),
    ("type_code", Kind::Identifier),
    ("issue_date", Kind::Date),
    ("due_date", Kind::Date),
    ("seller_name", Kind::Name),
    ("buyer_name", Kind::Name),
    ("currency", Kind::Identifier),
    ("net_total", Kind::Amount),
    ("charge_total", Kind::Amount),
    ("allowance_total", Kind::Amount),
    ("tax_basis_total", Kind::Amount),
    ("tax_total", Kind::Amount),
    ("gross_total", Kind::Amount),
    ("prepaid_total", Kind::Amount),
    ("due_total", Kind::Amount),
    ("lines", Kind::Lines),
    ("tax_breakdown", Kind::TaxBreakdown),
];

/// One document and its expected values (as strings in a comparable form).
#[derive(Debug, Clone)]
struct Case {
    pdf: PathBuf,
    expected: BTreeMap<&'static str, String>,
    /// The fields the verdict judges for this answer format.
    key_fields: &'static [&'static str],
}

#[derive(Debug, Default, Serialize)]
struct Tally {
    correct: usize,
    total: usize,
}

#[derive(Debug, Serialize)]
struct Failure {
    file: String,
    field: String,
    expected: String,
    got: Option<String>,
}

#[derive(Debug, Serialize)]
struct DocumentOutcome {
    file: String,
    passed: bool,
    status: String,
    source: Option<ResultSource>,
    needs_review: bool,
    review_reasons: Vec<String>,
    /// Every key field its answers hold was extracted and is right.
    key_fields_right: bool,
    /// The key fields that are wrong or missing.
    key_fields_wrong: Vec<String>,
    /// Pages of the document, and how many of them were read by raster OCR.
    pages: u32,
    ocr_pages: u32,
    seconds: f64,
    /// Why the job failed (or the scan could not be made).
    error: Option<String>,
}

/// How `--scan` made its documents.
#[derive(Debug, Clone, Copy, Serialize)]
struct ScanInfo {
    dpi: u32,
    skew_degrees: f32,
}

#[derive(Debug, Serialize)]
struct Report {
    documents: usize,
    passed: usize,
    embedded_xml: bool,
    /// Present when the documents were read as scans.
    scan: Option<ScanInfo>,
    fields: BTreeMap<String, Tally>,
    failures: Vec<Failure>,
    needs_review: Vec<String>,
    /// Straight-through, silent errors, needless reviews.
    verdict: Verdict,
    /// Field confidence against correctness.
    reliability: Reliability,
    /// Why documents were sent to review, most frequent first.
    review_reason_counts: Vec<ReasonCount>,
    /// Wall-clock time of the whole run, and documents processed at once.
    seconds: f64,
    concurrency: usize,
    per_document: Vec<DocumentOutcome>,
    /// Floor plans with r2v annotations in the folder: room count and IoU.
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<docpipe_rooms::eval::RoomsReport>,
    /// The same plans drawn as the variants asked for (`--room-variant`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    room_variants: Vec<docpipe_rooms::eval::RoomsReport>,
}

pub(crate) async fn eval(settings: &Settings, args: EvalArgs) -> Result<ExitCode> {
    let Some(dir) = args.dir.clone() else {
        return reviews::eval_reviews(settings, args.json).await;
    };
    let mut settings = settings.clone();
    settings.embedded_xml &= !args.no_embedded && !args.scan;
    let scanner = if args.scan {
        let scanner = Scanner::new()
            .with_dpi(args.scan_dpi)
            .with_skew(args.scan_skew);
        if !scanner.available().await {
            bail!("--scan renders pages with poppler: apt-get install poppler-utils");
        }
        if !TesseractOcr::new("tesseract").available().await {
            bail!(
                "--scan reads pages with Tesseract: {}",
                docpipe_ocr::INSTALL_HINT
            );
        }
        Some(Arc::new(scanner))
    } else {
        None
    };
    let cases = collect(&dir)?;
    let rooms = floorplans::rooms_report(&dir);
    let room_variants = floorplans::variant_reports(&dir, &args.room_variants)?;
    if cases.is_empty() && rooms.is_none() {
        bail!(
            "no PDF with answers (*.pdf.truth.json or invoice2data *.json) and no r2v floor plans (*.txt) under {}",
            dir.display()
        );
    }
    let pipeline = super::open_pipeline(&settings)?;
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, case) in cases.iter().enumerate() {
        let pipeline = pipeline.clone();
        let permits = Arc::clone(&permits);
        let pdf = case.pdf.clone();
        let scanner = scanner.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, process(&pipeline, &pdf, scanner.as_deref()).await)
        });
    }
    let mut results: Vec<Option<Processed>> = (0..cases.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, outcome) = joined?;
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(outcome);
        }
    }

    let seconds = started.elapsed().as_secs_f64();
    let root = &dir;
    let mut report = Report {
        documents: cases.len(),
        passed: 0,
        embedded_xml: settings.embedded_xml,
        scan: scanner.as_ref().map(|s| ScanInfo {
            dpi: s.dpi(),
            skew_degrees: s.skew_degrees(),
        }),
        fields: BTreeMap::new(),
        failures: Vec::new(),
        needs_review: Vec::new(),
        verdict: Verdict::default(),
        reliability: Reliability::tally([]),
        review_reason_counts: Vec::new(),
        seconds,
        concurrency: settings.concurrency,
        per_document: Vec::new(),
        rooms,
        room_variants,
    };
    let mut judged = Vec::with_capacity(cases.len());
    let mut confidences = Vec::new();
    for (case, outcome) in cases.iter().zip(results) {
        let Processed {
            status,
            result,
            pages,
            ocr_pages,
            seconds,
            error,
        } = outcome.unwrap_or_else(|| Processed::failed(None));
        let file = display_path(root, &case.pdf);
        let mut passed = true;
        let mut key_fields_wrong = Vec::new();
        for (name, kind) in FIELDS {
            let Some(want) = case.expected.get(name) else {
                continue;
            };
            let got = result.as_ref().and_then(|r| actual(r, name, kind));
            let tally = report.fields.entry(name.to_owned()).or_default();
            tally.total += 1;
            let right = got.as_deref().is_some_and(|g| same(kind, g, want));
            // Lines and the tax breakdown carry no single confidence.
            if !matches!(kind, Kind::Lines | Kind::TaxBreakdown) {
                let confidence = result
                    .as_ref()
                    .and_then(|r| r.fields.get(name))
                    .map(|f| f.confidence);
                confidences.push(confidence.map(|c| (c, right)));
            }
            if !right && case.key_fields.contains(&name) {
                key_fields_wrong.push(name.to_owned());
            }
            if right {
                tally.correct += 1;
            } else {
                passed = false;
                report.failures.push(Failure {
                    file: file.clone(),
                    field: name.to_owned(),
                    expected: want.clone(),
                    got,
                });
            }
        }
        let key_fields = case
            .key_fields
            .iter()
            .filter(|k| case.expected.contains_key(*k))
            .count();
        let key_fields_right = key_fields > 0 && key_fields_wrong.is_empty();
        judged.push(Judged {
            status,
            key_fields,
            key_fields_right,
        });
        let needs_review = result.as_ref().is_some_and(|r| r.needs_review);
        if needs_review {
            report.needs_review.push(file.clone());
        }
        if passed {
            report.passed += 1;
        }
        report.per_document.push(DocumentOutcome {
            file,
            passed,
            status: status.as_str().to_owned(),
            source: result.as_ref().map(|r| r.source),
            needs_review,
            review_reasons: result.map(|r| r.review_reasons).unwrap_or_default(),
            key_fields_right,
            key_fields_wrong,
            pages,
            ocr_pages,
            seconds,
            error,
        });
    }
    report.review_reason_counts = reason_counts(&report.per_document);
    report.verdict = Verdict::tally(judged);
    report.reliability = Reliability::tally(confidences);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// How many documents were sent to review for one kind of reason, and how many of those
/// had their key fields right (reviews the reason caused needlessly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct ReasonCount {
    reason: String,
    documents: usize,
    key_fields_right: usize,
}

/// The kind of a review reason: its check name, and for a low confidence what was unsure
/// (`low_confidence: seller_name at 0.60 is under 0.80` -> `low_confidence: seller_name`;
/// lines are one kind).
fn reason_kind(reason: &str) -> String {
    let Some((check, rest)) = reason.split_once(':') else {
        return reason.trim().to_owned();
    };
    let subject = rest.trim().split(" at ").next().unwrap_or("");
    if check.trim() == "low_confidence" && !subject.is_empty() {
        let subject = if subject.starts_with("line ") {
            "lines"
        } else {
            subject
        };
        format!("{}: {subject}", check.trim())
    } else {
        check.trim().to_owned()
    }
}

fn reason_counts(docs: &[DocumentOutcome]) -> Vec<ReasonCount> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for d in docs.iter().filter(|d| d.needs_review) {
        let kinds: std::collections::BTreeSet<String> =
            d.review_reasons.iter().map(|r| reason_kind(r)).collect();
        for k in kinds {
            let c = counts.entry(k).or_default();
            c.0 += 1;
            c.1 += usize::from(d.key_fields_right);
        }
    }
    let mut out: Vec<ReasonCount> = counts
        .into_iter()
        .map(|(reason, (documents, key_fields_right))| ReasonCount {
            reason,
            documents,
            key_fields_right,
        })
        .collect();
    out.sort_by(|a, b| b.documents.cmp(&a.documents).then(a.reason.cmp(&b.reason)));
    out
}

/// What the pipeline made of one document.
#[derive(Debug)]
struct Processed {
    status: JobStatus,
    result: Option<InvoiceResult>,
    pages: u32,
    ocr_pages: u32,
    seconds: f64,
    error: Option<String>,
}

impl Processed {
    fn failed(error: Option<String>) -> Self {
        Self {
            status: JobStatus::Failed,
            result: None,
            pages: 0,
            ocr_pages: 0,
            seconds: 0.0,
            error,
        }
    }
}

/// Runs one document through the pipeline (first made a scan of, with a scanner): its
/// final status, result and page counters.
async fn process(pipeline: &Embedded, pdf: &Path, scanner: Option<&Scanner>) -> Processed {
    let started = Instant::now();
    let failed = |e: String| Processed {
        seconds: started.elapsed().as_secs_f64(),
        ..Processed::failed(Some(e))
    };
    let submitted = match scanner {
        None => pipeline.submit_file(pdf, DocumentKind::Invoice).await,
        Some(scanner) => {
            let bytes = match tokio::fs::read(pdf).await {
                Ok(b) => b,
                Err(e) => return failed(format!("{}: {e}", pdf.display())),
            };
            let scanned = match scanner.scan(&bytes).await {
                Ok(b) => b,
                Err(e) => return failed(format!("scanning: {e}")),
            };
            let filename = pdf.file_name().map_or_else(
                || "scan.pdf".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
            pipeline
                .submit(Submission {
                    filename,
                    kind: DocumentKind::Invoice,
                    content: Content::Bytes(scanned),
                    owner: None,
                    correlation_id: None,
                })
                .await
        }
    };
    let job = match submitted {
        Ok(job) => job,
        Err(e) => return failed(e.to_string()),
    };
    if let Err(e) = pipeline.execute(&job.id).await {
        return failed(e.to_string());
    }
    let job = match pipeline.job(&job.id).await {
        Ok(job) => job,
        Err(e) => return failed(e.to_string()),
    };
    let result = pipeline.result(&job).await.ok().flatten();
    Processed {
        status: job.status,
        result,
        pages: job.cost.pages,
        ocr_pages: job.cost.ocr_pages,
        seconds: started.elapsed().as_secs_f64(),
        error: job
            .error
            .map(|e| format!("{}: {}", e.code.as_str(), e.message)),
    }
}

fn display_path(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

// ---------------------------------------------------------------- answers

/// Every PDF under `dir` (at most 16 levels down) with answers beside it, sorted.
fn collect(dir: &Path) -> Result<Vec<Case>> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let mut pdfs = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else {
                continue;
            };
            let p = e.path();
            if ft.is_dir() && depth < 16 {
                stack.push((p, depth + 1));
            } else if ft.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("pdf")) {
                pdfs.push(p);
            }
        }
    }
    pdfs.sort();
    Ok(pdfs.into_iter().filter_map(case_of).collect())
}

fn case_of(pdf: PathBuf) -> Option<Case> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
    };
    let truth = PathBuf::from(format!("{}.truth.json", pdf.display()));
    let (expected, key_fields) = if let Some(v) = read(&truth) {
        (from_cii_truth(&v), &KEY_FIELDS_EINVOICE[..])
    } else if let Some(v) = read(&pdf.with_extension("json")) {
        let v = match v {
            Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            other => other,
        };
        (from_invoice2data(&v), &KEY_FIELDS_INVOICE2DATA[..])
    } else {
        return None;
    };
    (!expected.is_empty()).then_some(Case {
        pdf,
        expected,
        key_fields,
    })
}

/// A JSON string or number as text; `None` for null, empty or anything else.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn from_cii_truth(v: &Value) -> BTreeMap<&'static str, String> {
    let mut e = BTreeMap::new();
    for f in [
        "invoice_number",
        "type_code",
        "seller_name",
        "buyer_name",
        "currency",
        "issue_date",
        "due_date",
    ] {
        if let Some(s) = scalar(&v[f]) {
            e.insert(f, s);
        }
    }
    for (k, f) in [
        ("LineTotalAmount", "net_total"),
        ("ChargeTotalAmount", "charge_total"),
        ("AllowanceTotalAmount", "allowance_total"),
        ("TaxBasisTotalAmount", "tax_basis_total"),
        ("TaxTotalAmount", "tax_total"),
        ("GrandTotalAmount", "gross_total"),
        ("TotalPrepaidAmount", "prepaid_total"),
        ("DuePayableAmount", "due_total"),
    ] {
        if let Some(s) = scalar(&v["totals"][k]) {
            e.insert(f, s);
        }
    }
    // Lines: how many carry an amount, and what they sum to (note-only lines are not
    // invoice lines).
    if let Some(lines) = v["lines"].as_array() {
        let amounts: Vec<Decimal> = lines
            .iter()
            .filter_map(|l| scalar(&l["line_total"]).and_then(|s| s.parse().ok()))
            .collect();
        if !amounts.is_empty() {
            e.insert("lines", lines_key(&amounts));
        }
    }
    if let Some(rows) = v["tax_breakdown"].as_array() {
        let rows: Vec<(Decimal, Decimal, Decimal)> = rows
            .iter()
            .filter_map(|r| {
                let d = |k: &str| scalar(&r[k]).and_then(|s| s.parse::<Decimal>().ok());
                Some((
                    d("rate_percent").unwrap_or_default(),
                    d("basis")?,
                    d("tax")?,
                ))
            })
            .collect();
        if !rows.is_empty() {
            e.insert("tax_breakdown", breakdown_key(rows));
        }
    }
    e
}

fn from_invoice2data(v: &Value) -> BTreeMap<&'static str, String> {
    let mut e = BTreeMap::new();
    for (k, f) in [
        ("invoice_number", "invoice_number"),
        ("date", "issue_date"),
        ("date_due", "due_date"),
        ("currency", "currency"),
        ("amount", "gross_total"),
        ("amount_untaxed", "net_total"),
        ("amount_tax", "tax_total"),
    ] {
        if let Some(s) = scalar(&v[k]) {
            e.insert(f, s);
        }
    }
    e
}

fn lines_key(amounts: &[Decimal]) -> String {
    let sum: Decimal = amounts.iter().sum();
    format!("{} lines, sum {}", amounts.len(), sum.normalize())
}

fn breakdown_key(mut rows: Vec<(Decimal, Decimal, Decimal)>) -> String {
    rows.sort();
    rows.iter()
        .map(|(r, b, t)| format!("{}%/{}/{}", r.normalize(), b.normalize(), t.normalize()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The extracted value of a field, in the same form as the expected one.
fn actual(r: &InvoiceResult, name: &str, kind: Kind) -> Option<String> {
    match kind {
        Kind::Lines => {
            let amounts: Vec<Decimal> = r.lines.iter().map(|l| l.net_amount).collect();
            (!amounts.is_empty()).then(|| lines_key(&amounts))
        }
        Kind::TaxBreakdown => (!r.tax_breakdown.is_empty()).then(|| {
            breakdown_key(
                r.tax_breakdown
                    .iter()
                    .map(|t| (t.rate, t.basis, t.tax))
                    .collect(),
            )
        }),
        _ => r.value(name).map(str::to_owned),
    }
}

// ---------------------------------------------------------------- comparison

fn same(kind: Kind, got: &str, want: &str) -> bool {
    match kind {
        Kind::Amount => match (amount(got), amount(want)) {
            (Some(g), Some(w)) => g == w,
            _ => false,
        },
        Kind::Date => date(got).is_some() && date(got) == date(want),
        Kind::Identifier => identifier(got) == identifier(want),
        Kind::Name => name(got) == name(want),
        Kind::Lines | Kind::TaxBreakdown => got == want,
    }
}

fn amount(s: &str) -> Option<Decimal> {
    s.trim().parse::<Decimal>().ok().map(|d| d.normalize())
}

/// `YYYY-MM-DD` from `YYYY-MM-DD`, `YYYYMMDD` or an ISO date-time.
fn date(s: &str) -> Option<String> {
    let s = s.trim();
    let d = if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        chrono::NaiveDate::parse_from_str(s, "%Y%m%d").ok()
    } else {
        chrono::NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
    }?;
    Some(d.format("%Y-%m-%d").to_string())
}

fn identifier(s: &str) -> String {
    s.trim()
        .trim_start_matches('#')
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

fn name(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

// ---------------------------------------------------------------- report

fn print_report(r: &Report) {
    floorplans::print(r.rooms.as_ref(), &r.room_variants);
    println!(
        "{} documents, {} passed (embedded e-invoice XML {}{})",
        r.documents,
        r.passed,
        if r.embedded_xml { "on" } else { "off" },
        r.scan.map_or(String::new(), |s| if s.skew_degrees == 0.0 {
            format!(", read as {}-dpi scans", s.dpi)
        } else {
            format!(
                ", read as {}-dpi scans turned {} degrees",
                s.dpi, s.skew_degrees
            )
        })
    );
    println!(
        "\n{:<18} {:>7} {:>7} {:>8}",
        "FIELD", "CORRECT", "TOTAL", "ACCURACY"
    );
    for (name, _) in FIELDS {
        if let Some(t) = r.fields.get(name) {
            let pct = if t.total == 0 {
                0.0
            } else {
                100.0 * t.correct as f64 / t.total as f64
            };
            println!("{name:<18} {:>7} {:>7} {pct:>7.1}%", t.correct, t.total);
        }
    }
    print_verdict(&r.verdict);
    print_reliability(&r.reliability);
    let n = r.per_document.len().max(1) as f64;
    println!(
        "\ntime: {:.1} s for {} documents ({:.2} s each, {} at once)",
        r.seconds,
        r.per_document.len(),
        r.seconds / n,
        r.concurrency
    );
    println!("\nDOCUMENTS");
    for d in &r.per_document {
        let source = d.source.map_or("-".to_owned(), |s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        });
        let silent = d.status == JobStatus::Completed.as_str() && !d.key_fields_right;
        println!(
            "{} {} ({}, {source}{}{}{})",
            if d.passed { "PASS" } else { "FAIL" },
            d.file,
            d.status,
            if d.needs_review { ", needs review" } else { "" },
            if d.ocr_pages > 0 {
                format!(", {} OCR page(s)", d.ocr_pages)
            } else {
                String::new()
            },
            if silent {
                ", SILENT ERROR"
            } else if d.key_fields_right {
                ", key fields right"
            } else {
                ""
            }
        );
        if let Some(e) = &d.error {
            println!("       error: {e}");
        }
        for f in r.failures.iter().filter(|f| f.file == d.file) {
            println!(
                "       {}: got {} want {}",
                f.field,
                f.got.as_deref().unwrap_or("nothing"),
                f.expected
            );
        }
    }
    if !r.review_reason_counts.is_empty() {
        println!(
            "\n{:<40} {:>9} {:>16}",
            "REVIEW REASON", "DOCUMENTS", "KEY FIELDS RIGHT"
        );
        for c in &r.review_reason_counts {
            println!(
                "{:<40} {:>9} {:>16}",
                c.reason, c.documents, c.key_fields_right
            );
        }
    }
    println!("\nNEEDS REVIEW ({})", r.needs_review.len());
    for d in r.per_document.iter().filter(|d| d.needs_review) {
        println!("{}", d.file);
        for reason in &d.review_reasons {
            println!("       {reason}");
        }
    }
}

/// `n of d (p%)`, or `n of d` when `d` is zero.
fn share(n: usize, d: usize) -> String {
    if d == 0 {
        format!("{n} of {d}")
    } else {
        format!("{n} of {d} ({:.1}%)", 100.0 * n as f64 / d as f64)
    }
}

fn print_verdict(v: &Verdict) {
    println!(
        "\nVERDICT (key fields, those answered: number, date, currency, net, tax, gross; \
         invoice2data: number, date, gross)"
    );
    println!(
        "key fields all right  {}",
        share(v.key_fields_right, v.documents)
    );
    println!(
        "straight-through      {}   completed without review, of those right",
        share(v.straight_through, v.key_fields_right)
    );
    println!(
        "silent errors         {}   completed with a key field wrong, of all",
        share(v.silent_errors, v.documents)
    );
    println!(
        "needless reviews      {}   sent to review with key fields right, of those right",
        share(v.needless_reviews, v.key_fields_right)
    );
    println!(
        "caught errors         {}   sent to review with a key field wrong, of all",
        share(v.caught_errors, v.documents)
    );
    println!("failed                {}", v.failed);
    if v.unjudged > 0 {
        println!(
            "not judged            {} (no key field answered)",
            v.unjudged
        );
    }
}

fn print_reliability(r: &Reliability) {
    println!(
        "\n{:<18} {:>7} {:>7} {:>8}",
        "FIELD CONFIDENCE", "FIELDS", "CORRECT", "ACCURACY"
    );
    let pct = |a: Option<f64>| a.map_or("-".to_owned(), |a| format!("{:.1}%", 100.0 * a));
    let last = r.bins.len().saturating_sub(1);
    for (i, b) in r.bins.iter().enumerate() {
        let range = format!(
            "[{:.2}, {:.2}{}",
            b.from,
            b.to,
            if i == last { "]" } else { ")" }
        );
        println!(
            "{range:<18} {:>7} {:>7} {:>8}",
            b.fields,
            b.correct,
            pct(b.accuracy)
        );
    }
    println!("not extracted      {:>7}", r.missing);
    println!(
        "accuracy of fields at confidence >= {:.2}: {} ({} of {})",
        r.confident.confidence,
        pct(r.confident.accuracy),
        r.confident.correct,
        r.confident.fields
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_after_normalising() {
        assert!(same(Kind::Amount, "850.00", "850"));
        assert!(same(Kind::Amount, "-220.00", "-220"));
        assert!(!same(Kind::Amount, "220.00", "-220"));
        assert!(!same(Kind::Amount, "n/a", "n/a"));
        assert!(same(Kind::Date, "2018-10-31", "20181031"));
        assert!(same(Kind::Date, "2014-08-03", "2014-08-03T00:00:00"));
        assert!(!same(Kind::Date, "2018-10-30", "20181031"));
        assert!(same(
            Kind::Identifier,
            "BLR_WFLD20151000982590",
            "#BLR_WFLD20151000982590"
        ));
        assert!(same(Kind::Identifier, " eur", "EUR"));
        assert!(same(
            Kind::Name,
            "Metallbau  Leipzig GmbH & Co. KG",
            "metallbau leipzig gmbh & co. kg "
        ));
        assert!(!same(
            Kind::Name,
            "Metallbau Leipzig",
            "Metallbau Leipzig GmbH"
        ));
    }

    #[test]
    fn review_reasons_are_counted_by_kind() {
        assert_eq!(
            reason_kind("low_confidence: seller_name at 0.60 is under 0.80"),
            "low_confidence: seller_name"
        );
        assert_eq!(
            reason_kind("low_confidence: line 2 at 0.70 is under 0.80"),
            "low_confidence: lines"
        );
        assert_eq!(
            reason_kind("lines_sum_to_net: 2 lines sum to 112.00, net total is 262.90"),
            "lines_sum_to_net"
        );
        assert_eq!(reason_kind("something odd"), "something odd");
        let doc = |reasons: &[&str], right: bool| DocumentOutcome {
            file: "x.pdf".into(),
            passed: right,
            status: JobStatus::NeedsReview.as_str().into(),
            source: None,
            needs_review: true,
            review_reasons: reasons.iter().map(|r| r.to_string()).collect(),
            key_fields_right: right,
            key_fields_wrong: Vec::new(),
            pages: 1,
            ocr_pages: 0,
            seconds: 0.0,
            error: None,
        };
        let counts = reason_counts(&[
            doc(
                &[
                    "low_confidence: line 1 at 0.70 is under 0.80",
                    "low_confidence: line 2 at 0.70 is under 0.80",
                    "lines_sum_to_net: 2 lines sum to 1, net total is 2",
                ],
                true,
            ),
            doc(&["low_confidence: line 1 at 0.70 is under 0.80"], false),
        ]);
        let got: Vec<(&str, usize, usize)> = counts
            .iter()
            .map(|c| (c.reason.as_str(), c.documents, c.key_fields_right))
            .collect();
        // One document counts once per kind, however many lines it names.
        assert_eq!(
            got,
            [("low_confidence: lines", 2, 1), ("lines_sum_to_net", 1, 1)]
        );
    }

    #[test]
    fn both_answer_formats_map_to_result_fields() {
        let i2d = serde_json::json!({"invoice_number": "42183017", "date": "2014-08-03",
            "currency": "USD", "amount": 4.11, "amount_untaxed": 4.11, "amount_tax": null,
            "issuer": "Amazon Web Services"});
        let e = from_invoice2data(&i2d);
        assert_eq!(e.get("gross_total").map(String::as_str), Some("4.11"));
        assert_eq!(e.get("net_total").map(String::as_str), Some("4.11"));
        assert_eq!(e.get("issue_date").map(String::as_str), Some("2014-08-03"));
        assert!(!e.contains_key("tax_total"));
        let cii = serde_json::json!({"invoice_number": "471102", "issue_date": "20180305",
            "due_date": null, "currency": "EUR",
            "totals": {"GrandTotalAmount": "529.87", "TaxTotalAmount": "56.87", "TotalPrepaidAmount": null},
            "tax_breakdown": [{"basis": "198.00", "tax": "37.62", "rate_percent": "19.00"},
                              {"basis": "275.00", "tax": "19.25", "rate_percent": "7.00"}],
            "lines": [{"line_total": null}, {"line_total": "198.00"}, {"line_total": "275.00"}]});
        let e = from_cii_truth(&cii);
        assert_eq!(e.get("gross_total").map(String::as_str), Some("529.87"));
        assert!(!e.contains_key("due_date") && !e.contains_key("prepaid_total"));
        assert_eq!(e.get("lines").map(String::as_str), Some("2 lines, sum 473"));
        assert_eq!(
            e.get("tax_breakdown").map(String::as_str),
            Some("7%/275/19.25 19%/198/37.62")
        );
    }
}
