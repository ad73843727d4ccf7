//! The reader on the shared Factur-X / ZUGFeRD / XRechnung corpus: every field against
//! the truth files that `shared/data/tools/extract_cii_truth.py` made from the same XML.
//! Skipped when `../shared` is absent.

#[path = "../../../../tests/support/skipping.rs"]
mod skipping;

use std::path::{Path, PathBuf};

use docpipe_core::InvoiceResult;
use rust_decimal::Decimal;
use serde_json::Value;

use super::{EinvoiceError, EinvoiceLimits, parse_invoice_xml, read_embedded};

fn zugferd() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/invoices/zugferd");
    p.is_dir().then_some(p)
}

fn dec(v: &Value) -> Option<Decimal> {
    v.as_str().and_then(|s| s.parse::<Decimal>().ok())
}

fn date(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    Some(format!("{}-{}-{}", s.get(..4)?, s.get(4..6)?, s.get(6..8)?))
}

/// Every difference between a result and a truth file.
fn differences(r: &InvoiceResult, t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for f in [
        "invoice_number",
        "type_code",
        "seller_name",
        "buyer_name",
        "currency",
    ] {
        if r.value(f) != t[f].as_str() {
            out.push(format!("{f}: {:?} vs {:?}", r.value(f), t[f]));
        }
    }
    for f in ["issue_date", "due_date"] {
        if r.value(f).map(str::to_owned) != date(&t[f]) {
            out.push(format!("{f}: {:?} vs {:?}", r.value(f), t[f]));
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
        if r.amount(f) != dec(&t["totals"][k]) {
            out.push(format!("{f}: {:?} vs {:?}", r.value(f), t["totals"][k]));
        }
    }
    // Note-only lines (no amount) are not invoice lines.
    let lines: Vec<Value> = t["lines"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|l| !l["line_total"].is_null())
        .collect();
    if lines.len() != r.lines.len() {
        out.push(format!("{} lines vs {}", r.lines.len(), lines.len()));
    }
    for (l, w) in r.lines.iter().zip(&lines) {
        let same = l.line_id.as_deref() == w["line_id"].as_str()
            && Some(l.description.as_str()) == w["name"].as_str()
            && l.quantity == dec(&w["quantity"])
            && l.unit_price == dec(&w["net_unit_price"])
            && Some(l.net_amount) == dec(&w["line_total"])
            && l.tax_rate == dec(&w["tax_rate_percent"]);
        if !same {
            out.push(format!("line {l:?} vs {w}"));
        }
    }
    let taxes = t["tax_breakdown"].as_array().cloned().unwrap_or_default();
    if taxes.len() != r.tax_breakdown.len() {
        out.push(format!(
            "{} tax rows vs {}",
            r.tax_breakdown.len(),
            taxes.len()
        ));
    }
    for (x, w) in r.tax_breakdown.iter().zip(&taxes) {
        let same = Some(x.basis) == dec(&w["basis"])
            && Some(x.tax) == dec(&w["tax"])
            && Some(x.rate) == dec(&w["rate_percent"]).or(Some(Decimal::ZERO));
        if !same {
            out.push(format!("tax {x:?} vs {w}"));
        }
    }
    out
}

fn pdfs_with_truth(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    paths.sort();
    for pdf in paths {
        let truth = PathBuf::from(format!("{}.truth.json", pdf.display()));
        if let Some(v) = std::fs::read_to_string(truth)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        {
            out.push((pdf, v));
        }
    }
    out
}

#[test]
fn every_embedded_invoice_matches_its_truth() {
    let Some(root) = zugferd() else {
        skipping::skip("shared data not available");
        return;
    };
    let mut n = 0;
    for set in ["fx", "zugferd1", "zugferd2", "fail"] {
        for (pdf, truth) in pdfs_with_truth(&root.join(set)) {
            let bytes = std::fs::read(&pdf).expect("read pdf");
            let r = read_embedded(&bytes, &EinvoiceLimits::default());
            let Ok(Some(r)) = r else {
                panic!("{}: {r:?}", pdf.display());
            };
            let diff = differences(&r, &truth);
            assert!(diff.is_empty(), "{}: {diff:#?}", pdf.display());
            n += 1;
        }
    }
    assert!(n >= 16, "{n} documents");
}

#[test]
fn broken_and_absent_attachments() {
    let Some(root) = zugferd() else {
        skipping::skip("shared data not available");
        return;
    };
    let bad =
        std::fs::read(root.join("fail/factur-x-invalid-xml-encoding-attribute.pdf")).expect("read");
    let r = read_embedded(&bad, &EinvoiceLimits::default());
    assert!(matches!(r, Err(EinvoiceError::Xml(_))), "{r:?}");
    let plain =
        std::fs::read(root.join("unstructured/RE-E-974-Hetzner_2016-01-19_R0005532486.pdf"))
            .expect("read");
    assert_eq!(read_embedded(&plain, &EinvoiceLimits::default()), Ok(None));
    // A cap below the attachment's size refuses it.
    let good = std::fs::read(root.join("fx/EN16931_Einfach.pdf")).expect("read");
    let small = EinvoiceLimits {
        max_attachment_bytes: 1000,
        ..EinvoiceLimits::default()
    };
    let r = read_embedded(&good, &small);
    assert!(matches!(r, Err(EinvoiceError::TooLarge { .. })), "{r:?}");
}

#[test]
fn plain_cii_and_ubl_files_map_alike() {
    let Some(root) = zugferd() else {
        skipping::skip("shared data not available");
        return;
    };
    let mut n = 0;
    for (pdf, truth) in pdfs_with_truth(&root.join("fx")) {
        let stem = pdf
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        for (dir, ext) in [("cii", "cii.xml"), ("ubl", "ubl.xml")] {
            let path = root.join(dir).join(format!("{stem}.{ext}"));
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let inv = parse_invoice_xml(&bytes, &EinvoiceLimits::default());
            let Ok(inv) = inv else {
                panic!("{}: {inv:?}", path.display());
            };
            let r = inv.into_result(ext).expect("complete");
            let mut diff = differences(&r, &truth);
            if stem.starts_with("XRECHNUNG") {
                // The plain XRechnung files are a later issue of the same invoice.
                diff.retain(|d| !d.starts_with("issue_date") && !d.starts_with("due_date"));
            }
            if dir == "ubl" {
                // UBL has no line IDs' twin for every CII detail; compare the business
                // terms EN 16931 shares: header fields, totals and the tax breakdown.
                diff.retain(|d| !d.starts_with("line "));
            }
            assert!(diff.is_empty(), "{}: {diff:#?}", path.display());
            n += 1;
        }
    }
    assert!(n >= 18, "{n} files");
}
