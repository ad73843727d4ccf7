//! The rule extractor on invoice2data's real vendor invoices (English, Dutch, French,
//! German, Indian layouts). Figures are printed; floors only where stable.

#[path = "../../../tests/support/skipping.rs"]
mod skipping;

#[allow(dead_code)]
#[path = "support/invoice_eval.rs"]
mod invoice_eval;
#[path = "support/poppler.rs"]
mod poppler;

const FIELDS: [&str; 8] = [
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
    "seller_name",
    "net_total",
    "tax_total",
    "gross_total",
];

#[test]
fn invoice2data_accuracy() {
    let (Some(shared), true) = (invoice_eval::shared(), poppler::available()) else {
        skipping::skip("shared data or pdftotext not available");
        return;
    };
    let docs = invoice_eval::invoice2data_docs(&shared.join("invoice2data"));
    assert!(!docs.is_empty());
    let scores = invoice_eval::evaluate(
        "invoice2data",
        invoice_eval::Engine::Poppler,
        &docs,
        &FIELDS,
    );
    let right = |f: &str| scores.get(f).map_or(0, |s| s.right);
    assert!(right("gross_total") >= 9, "gross_total");
    assert!(right("invoice_number") >= 9, "invoice_number");
    assert!(right("issue_date") >= 9, "issue_date");
    assert!(right("currency") >= 9, "currency");
    invoice_eval::evaluate(
        "invoice2data",
        invoice_eval::Engine::Docpipe,
        &docs,
        &FIELDS,
    );
}
