//! Prints the extractor's view of one PDF: `INVOICE_DEBUG=path cargo test -p docpipe-local
//! --test invoice_debug -- --nocapture`. Does nothing without the variable.

#[path = "../../../tests/support/skipping.rs"]
mod skipping;

#[path = "support/poppler.rs"]
mod poppler;

#[test]
fn dump() {
    let Ok(path) = std::env::var("INVOICE_DEBUG") else {
        return;
    };
    if !poppler::available() {
        skipping::skip("pdftotext not available");
        return;
    }
    let Some(doc) = poppler::document(std::path::Path::new(&path)) else {
        println!("pdftotext failed");
        return;
    };
    for r in docpipe_invoice::layout_rows(&doc) {
        println!("{r}");
    }
    let result = docpipe_invoice::extract_invoice(&doc);
    for (k, f) in &result.fields {
        println!("{k:<16} {:<30} {:.2}", f.value, f.confidence);
    }
    for t in &result.tax_breakdown {
        println!("tax {} {} {}", t.rate, t.basis, t.tax);
    }
    for l in &result.lines {
        println!(
            "line {:?} q={:?} p={:?} net={} rate={:?}",
            l.description, l.quantity, l.unit_price, l.net_amount, l.tax_rate
        );
    }
}
