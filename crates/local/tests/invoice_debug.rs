//! Developer views of the rule extractor, each doing nothing without its variable:
//! - `INVOICE_DEBUG=path` (a PDF, read by poppler, or a document model `.json` as the ocr
//!   stage stores it): the visual rows and the extracted fields;
//! - `INVOICE_MODELS=dir INVOICE_OUT=file`: every document model `*.json` in `dir` through
//!   the extractor and the verify checks, the results written to `file` as
//!   `[{"file", "result"}]` (to score rule changes without running the pipeline).
//!
//! `cargo test -p docpipe-local --test invoice_debug -- --nocapture`

#[path = "support/poppler.rs"]
mod poppler;

use docpipe_core::Document;

fn load(path: &std::path::Path) -> Option<Document> {
    if path.extension().is_some_and(|e| e == "json") {
        let text = std::fs::read_to_string(path).ok()?;
        return serde_json::from_str(&text).ok();
    }
    if !poppler::available() {
        println!("skipped: pdftotext not available");
        return None;
    }
    poppler::document(path)
}

#[test]
fn dump() {
    let Ok(path) = std::env::var("INVOICE_DEBUG") else {
        return;
    };
    let Some(doc) = load(std::path::Path::new(&path)) else {
        println!("could not read {path}");
        return;
    };
    for r in docpipe_local::invoice::layout_rows(&doc) {
        println!("{r}");
    }
    let mut result = docpipe_local::invoice::extract_invoice(&doc);
    docpipe_core::stages::verify::apply_checks(&mut result, 0.8);
    for (k, f) in &result.fields {
        println!("{k:<16} {:<30} {:.2}", f.value, f.confidence);
    }
    for t in &result.tax_breakdown {
        println!("tax {} {} {}", t.rate, t.basis, t.tax);
    }
    for l in &result.lines {
        println!(
            "line {:?} q={:?} p={:?} net={} rate={:?} conf={:.2}",
            l.description, l.quantity, l.unit_price, l.net_amount, l.tax_rate, l.confidence
        );
    }
    for r in &result.review_reasons {
        println!("review: {r}");
    }
}

#[test]
fn models() {
    let (Ok(dir), Ok(out)) = (
        std::env::var("INVOICE_MODELS"),
        std::env::var("INVOICE_OUT"),
    ) else {
        return;
    };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("model folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut all = Vec::new();
    for p in paths {
        let Some(doc) = load(&p) else {
            continue;
        };
        let mut result = docpipe_local::invoice::extract_invoice(&doc);
        docpipe_core::stages::verify::apply_checks(&mut result, 0.8);
        all.push(serde_json::json!({"file": p.display().to_string(), "result": result}));
    }
    std::fs::write(&out, serde_json::to_string(&all).expect("json")).expect("write results");
}
