//! The rule extractor on the ZUGFeRD 1 and 2 sample PDFs (printed text only).

#[path = "../../../tests/support/skipping.rs"]
mod skipping;

#[allow(dead_code)]
#[path = "support/invoice_eval.rs"]
mod invoice_eval;
#[path = "support/poppler.rs"]
mod poppler;

const FIELDS: [&str; 13] = [
    "invoice_number",
    "type_code",
    "issue_date",
    "due_date",
    "currency",
    "seller_name",
    "buyer_name",
    "net_total",
    "tax_basis_total",
    "tax_total",
    "gross_total",
    "prepaid_total",
    "due_total",
];

#[test]
fn zugferd1_and_2_accuracy() {
    let (Some(shared), true) = (invoice_eval::shared(), poppler::available()) else {
        skipping::skip("shared data or pdftotext not available");
        return;
    };
    let mut docs = invoice_eval::zugferd_docs(&shared.join("zugferd/zugferd1"));
    docs.extend(invoice_eval::zugferd_docs(&shared.join("zugferd/zugferd2")));
    assert!(!docs.is_empty());
    let scores =
        invoice_eval::evaluate("zugferd1+2", invoice_eval::Engine::Poppler, &docs, &FIELDS);
    let right = |f: &str| scores.get(f).map_or(0, |s| s.right);
    let n = docs.len();
    assert!(
        right("gross_total") >= n,
        "gross_total {} of {n}",
        right("gross_total")
    );
    assert!(right("invoice_number") >= n, "invoice_number");
    assert!(right("issue_date") >= n, "issue_date");
    assert!(right("tax_total") >= n, "tax_total");
    invoice_eval::evaluate("zugferd1+2", invoice_eval::Engine::Docpipe, &docs, &FIELDS);
}
