//! `docpipe eval DIR`: runs the real pipeline over every PDF in a folder (recursively)
//! that has its answers beside it, and scores the results field by field.
//!
//! Answers are either `<name>.pdf.truth.json` (the Factur-X / ZUGFeRD truth format made by
//! `shared/data/tools/extract_cii_truth.py`) or invoice2data's `<name>.json` (a list with
//! one object). Values are compared after normalising: amounts as decimals, dates as
//! `YYYY-MM-DD`, identifiers and codes trimmed without spaces and case-folded, names
//! trimmed with whitespace collapsed and case-folded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;
use docpipe_core::{DocumentKind, InvoiceResult, JobStatus, ResultSource};
use docpipe_local::embedded::Embedded;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::settings::Settings;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder of PDFs with `*.pdf.truth.json` or invoice2data `*.json` answers beside
    /// them (searched recursively), and of r2v floor-plan annotations (`*.txt` directly
    /// in it, scored for rooms).
    pub dir: PathBuf,
    /// Print one JSON object instead of a report.
    #[arg(long)]
    pub json: bool,
    /// Ignore embedded e-invoice XML: score the reading of the printed text only.
    #[arg(long)]
    pub no_embedded: bool,
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
}

#[derive(Debug, Serialize)]
struct Report {
    documents: usize,
    passed: usize,
    embedded_xml: bool,
    fields: BTreeMap<String, Tally>,
    failures: Vec<Failure>,
    needs_review: Vec<String>,
    per_document: Vec<DocumentOutcome>,
    /// Floor plans with r2v annotations in the folder: room count and IoU.
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<docpipe_rooms::eval::RoomsReport>,
}

/// Room detection scored on the r2v annotation files (`*.txt`) directly in `dir`, if any.
fn rooms_report(dir: &std::path::Path) -> Option<docpipe_rooms::eval::RoomsReport> {
    let has_txt = std::fs::read_dir(dir).ok()?.any(|e| {
        e.ok()
            .is_some_and(|e| e.path().extension().is_some_and(|x| x == "txt"))
    });
    if !has_txt {
        return None;
    }
    match docpipe_rooms::eval::evaluate_r2v_dir(dir) {
        Ok(r) if r.plans > 0 => Some(r),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "scoring floor plans");
            None
        }
    }
}

pub async fn eval(settings: &Settings, args: EvalArgs) -> Result<ExitCode> {
    let mut settings = settings.clone();
    settings.embedded_xml &= !args.no_embedded;
    let cases = collect(&args.dir)?;
    let rooms = rooms_report(&args.dir);
    if cases.is_empty() && rooms.is_none() {
        bail!(
            "no PDF with answers (*.pdf.truth.json or invoice2data *.json) and no r2v floor plans (*.txt) under {}",
            args.dir.display()
        );
    }
    let pipeline = super::open_pipeline(&settings)?;
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, case) in cases.iter().enumerate() {
        let pipeline = pipeline.clone();
        let permits = Arc::clone(&permits);
        let pdf = case.pdf.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, process(&pipeline, &pdf).await)
        });
    }
    let mut results: Vec<Option<(String, Option<InvoiceResult>)>> =
        (0..cases.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, outcome) = joined?;
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(outcome);
        }
    }

    let root = &args.dir;
    let mut report = Report {
        documents: cases.len(),
        passed: 0,
        embedded_xml: settings.embedded_xml,
        fields: BTreeMap::new(),
        failures: Vec::new(),
        needs_review: Vec::new(),
        per_document: Vec::new(),
        rooms,
    };
    for (case, outcome) in cases.iter().zip(results) {
        let (status, result) =
            outcome.unwrap_or_else(|| (JobStatus::Failed.as_str().to_owned(), None));
        let file = display_path(root, &case.pdf);
        let mut passed = true;
        for (name, kind) in FIELDS {
            let Some(want) = case.expected.get(name) else {
                continue;
            };
            let got = result.as_ref().and_then(|r| actual(r, name, kind));
            let tally = report.fields.entry(name.to_owned()).or_default();
            tally.total += 1;
            if got.as_deref().is_some_and(|g| same(kind, g, want)) {
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
            status,
            source: result.as_ref().map(|r| r.source),
            needs_review,
            review_reasons: result.map(|r| r.review_reasons).unwrap_or_default(),
        });
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one document through the pipeline: its final status and result, if any.
async fn process(pipeline: &Embedded, pdf: &Path) -> (String, Option<InvoiceResult>) {
    let failed = || (JobStatus::Failed.as_str().to_owned(), None);
    let Ok(job) = pipeline.submit_file(pdf, DocumentKind::Invoice).await else {
        return failed();
    };
    if pipeline.execute(&job.id).await.is_err() {
        return failed();
    }
    let Ok(job) = pipeline.job(&job.id).await else {
        return failed();
    };
    let result = pipeline.result(&job).await.ok().flatten();
    (job.status.as_str().to_owned(), result)
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
    let expected = if let Some(v) = read(&truth) {
        from_cii_truth(&v)
    } else if let Some(v) = read(&pdf.with_extension("json")) {
        let v = match v {
            Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            other => other,
        };
        from_invoice2data(&v)
    } else {
        return None;
    };
    (!expected.is_empty()).then_some(Case { pdf, expected })
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
    if let Some(rooms) = &r.rooms {
        println!(
            "floor plans: {}, room count right on {}, mean IoU {:.3}\n",
            rooms.plans, rooms.count_correct, rooms.mean_iou
        );
    }
    println!(
        "{} documents, {} passed (embedded e-invoice XML {})",
        r.documents,
        r.passed,
        if r.embedded_xml { "on" } else { "off" }
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
    println!("\nDOCUMENTS");
    for d in &r.per_document {
        let source = d.source.map_or("-".to_owned(), |s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        });
        println!(
            "{} {} ({}, {source}{})",
            if d.passed { "PASS" } else { "FAIL" },
            d.file,
            d.status,
            if d.needs_review { ", needs review" } else { "" }
        );
        for f in r.failures.iter().filter(|f| f.file == d.file) {
            println!(
                "       {}: got {} want {}",
                f.field,
                f.got.as_deref().unwrap_or("nothing"),
                f.expected
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
