//! Test-only: runs the rule extractor over a folder of PDFs with truth files and prints
//! per-field accuracy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use docpipe_core::{Document, InvoiceResult};
use docpipe_invoice::extract_invoice;
use docpipe_pdf::{PdfLimits, extract_document};
use rust_decimal::Decimal;
use serde_json::Value;

use super::poppler;

/// The shared data folder, if present.
pub(crate) fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/invoices");
    p.is_dir().then_some(p)
}

/// Expected values of one document, by result field name.
pub(crate) type Truth = BTreeMap<&'static str, String>;

#[derive(Default, Debug)]
pub(crate) struct Score {
    pub right: usize,
    pub wrong: usize,
    pub missing: usize,
    /// A value where the truth has none (not counted in the total).
    pub extra: usize,
}

impl Score {
    pub(crate) fn total(&self) -> usize {
        self.right + self.wrong + self.missing
    }
}

fn norm_amount(s: &str) -> Option<Decimal> {
    s.trim().parse::<Decimal>().ok().map(|d| d.normalize())
}

fn norm_text(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Whether an extracted value matches the truth for a field.
pub(crate) fn matches(field: &str, got: &str, want: &str) -> bool {
    match field {
        f if f.ends_with("_total") => norm_amount(got) == norm_amount(want),
        "invoice_number" => {
            let n = |s: &str| {
                s.trim()
                    .trim_start_matches('#')
                    .replace(' ', "")
                    .to_lowercase()
            };
            n(got) == n(want)
        }
        "seller_name" | "buyer_name" => {
            let (g, w) = (norm_text(got), norm_text(want));
            g.len() >= 4 && (w.contains(&g) || g.contains(&w))
        }
        _ => got.trim() == want.trim(),
    }
}

/// Which text engine turns the PDF into a `Document`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// poppler's `pdftotext -bbox-layout` (reference).
    Poppler,
    /// docpipe's own PDF text layer.
    Docpipe,
}

pub(crate) fn document(engine: Engine, pdf: &Path) -> Option<Document> {
    match engine {
        Engine::Poppler => poppler::document(pdf),
        Engine::Docpipe => {
            let bytes = std::fs::read(pdf).ok()?;
            extract_document(&bytes, &PdfLimits::default()).ok()
        }
    }
}

/// Runs the extractor over `(pdf, truth)` pairs, prints a report, returns scores by field.
pub(crate) fn evaluate(
    set: &str,
    engine: Engine,
    docs: &[(PathBuf, Truth)],
    fields: &[&str],
) -> BTreeMap<String, Score> {
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    println!("== {set} ({engine:?} text): {} documents", docs.len());
    for (pdf, truth) in docs {
        let Some(doc) = document(engine, pdf) else {
            println!("  {}: no text", pdf.display());
            continue;
        };
        let result: InvoiceResult = extract_invoice(&doc);
        let name = pdf.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let mut misses = Vec::new();
        for f in fields {
            let Some(want) = truth.get(f) else {
                if let Some(got) = result.value(f) {
                    scores.entry((*f).to_owned()).or_default().extra += 1;
                    misses.push(format!("{f}: extra {got:?} (truth has none)"));
                }
                continue;
            };
            let s = scores.entry((*f).to_owned()).or_default();
            match result.value(f) {
                Some(got) if matches(f, got, want) => s.right += 1,
                Some(got) => {
                    s.wrong += 1;
                    misses.push(format!("{f}: got {got:?} want {want:?}"));
                }
                None => {
                    s.missing += 1;
                    misses.push(format!("{f}: missing, want {want:?}"));
                }
            }
        }
        if let Some(want) = truth.get("lines_total") {
            let s = scores.entry("lines".to_owned()).or_default();
            let got: Decimal = result.lines.iter().map(|l| l.net_amount).sum();
            if norm_amount(want) == Some(got.normalize()) && !result.lines.is_empty() {
                s.right += 1;
            } else if result.lines.is_empty() {
                s.missing += 1;
                misses.push("lines: none".to_owned());
            } else {
                s.wrong += 1;
                misses.push(format!(
                    "lines: sum {got} of {} want {want}",
                    result.lines.len()
                ));
            }
        }
        if let Some(want) = truth.get("tax_breakdown") {
            let s = scores.entry("tax_breakdown".to_owned()).or_default();
            let mut got: Vec<String> = result
                .tax_breakdown
                .iter()
                .map(|t| {
                    format!(
                        "{}/{}/{}",
                        t.rate.normalize(),
                        t.basis.normalize(),
                        t.tax.normalize()
                    )
                })
                .collect();
            got.sort();
            let got = got.join(" ");
            if &got == want {
                s.right += 1;
            } else if got.is_empty() {
                s.missing += 1;
                misses.push(format!("tax_breakdown: none, want {want}"));
            } else {
                s.wrong += 1;
                misses.push(format!("tax_breakdown: got {got} want {want}"));
            }
        }
        if misses.is_empty() {
            println!("  {name}: all right");
        } else {
            println!("  {name}:");
            for m in misses {
                println!("      {m}");
            }
        }
    }
    println!("  field              right / total   (wrong, missing; extra)");
    for (f, s) in &scores {
        println!(
            "  {f:<18} {:>5} / {:<5}   ({}, {}; {})",
            s.right,
            s.total(),
            s.wrong,
            s.missing,
            s.extra
        );
    }
    scores
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `(pdf, truth)` for every `*.pdf` with a `*.pdf.truth.json` in a Factur-X folder.
pub(crate) fn zugferd_docs(dir: &Path) -> Vec<(PathBuf, Truth)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut pdfs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    pdfs.sort();
    for pdf in pdfs {
        let truth_path = PathBuf::from(format!("{}.truth.json", pdf.display()));
        let Some(v) = std::fs::read_to_string(&truth_path)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        else {
            continue;
        };
        let mut t = Truth::new();
        let date = |s: String| {
            if s.len() == 8 {
                format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..])
            } else {
                s
            }
        };
        for (k, f) in [
            ("invoice_number", "invoice_number"),
            ("type_code", "type_code"),
            ("currency", "currency"),
            ("seller_name", "seller_name"),
            ("buyer_name", "buyer_name"),
        ] {
            if let Some(s) = str_of(&v[k]) {
                t.insert(f, s);
            }
        }
        for (k, f) in [("issue_date", "issue_date"), ("due_date", "due_date")] {
            if let Some(s) = str_of(&v[k]) {
                t.insert(f, date(s));
            }
        }
        for (k, f) in [
            ("LineTotalAmount", "net_total"),
            ("TaxBasisTotalAmount", "tax_basis_total"),
            ("TaxTotalAmount", "tax_total"),
            ("GrandTotalAmount", "gross_total"),
            ("TotalPrepaidAmount", "prepaid_total"),
            ("DuePayableAmount", "due_total"),
            ("ChargeTotalAmount", "charge_total"),
            ("AllowanceTotalAmount", "allowance_total"),
        ] {
            if let Some(s) = str_of(&v["totals"][k]) {
                t.insert(f, s);
            }
        }
        if let Some(lines) = v["lines"].as_array() {
            let sum: Decimal = lines
                .iter()
                .filter_map(|l| str_of(&l["line_total"]).and_then(|s| s.parse::<Decimal>().ok()))
                .sum();
            t.insert("lines_total", sum.to_string());
        }
        if let Some(tb) = v["tax_breakdown"].as_array() {
            let mut parts: Vec<String> = tb
                .iter()
                .filter_map(|x| {
                    let n = |k: &str| str_of(&x[k]).and_then(|s| norm_amount(&s));
                    Some(format!(
                        "{}/{}/{}",
                        n("rate_percent")?,
                        n("basis")?,
                        n("tax")?
                    ))
                })
                .collect();
            parts.sort();
            t.insert("tax_breakdown", parts.join(" "));
        }
        out.push((pdf, t));
    }
    out
}

/// `(pdf, truth)` for the invoice2data samples (`name.pdf` beside `name.json`).
pub(crate) fn invoice2data_docs(dir: &Path) -> Vec<(PathBuf, Truth)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut pdfs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    pdfs.sort();
    for pdf in pdfs {
        let Some(v) = std::fs::read_to_string(pdf.with_extension("json"))
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        else {
            continue;
        };
        let v = &v[0];
        let mut t = Truth::new();
        for (k, f) in [
            ("invoice_number", "invoice_number"),
            ("date", "issue_date"),
            ("date_due", "due_date"),
            ("currency", "currency"),
            ("issuer", "seller_name"),
            ("amount", "gross_total"),
            ("amount_untaxed", "net_total"),
            ("amount_tax", "tax_total"),
        ] {
            if let Some(s) = str_of(&v[k]) {
                t.insert(f, s);
            }
        }
        out.push((pdf, t));
    }
    out
}
