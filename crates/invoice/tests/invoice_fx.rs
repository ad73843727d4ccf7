//! The rule extractor on the Factur-X EN16931 sample PDFs (printed text only, read by
//! poppler): per-field accuracy against the embedded XML's values.

#[path = "../../../tests/support/skipping.rs"]
mod skipping;

#[allow(dead_code)]
#[path = "support/invoice_eval.rs"]
mod invoice_eval;
#[path = "support/poppler.rs"]
mod poppler;

use docpipe_core::Extractor;
use docpipe_invoice::RuleExtractor;

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
fn fx_accuracy() {
    let (Some(shared), true) = (invoice_eval::shared(), poppler::available()) else {
        skipping::skip("shared data or pdftotext not available");
        return;
    };
    let docs = invoice_eval::zugferd_docs(&shared.join("zugferd/fx"));
    assert!(!docs.is_empty());
    let scores = invoice_eval::evaluate("fx", invoice_eval::Engine::Poppler, &docs, &FIELDS);
    let right = |f: &str| scores.get(f).map_or(0, |s| s.right);
    let n = docs.len();
    assert!(
        right("gross_total") >= n,
        "gross_total {} of {n}",
        right("gross_total")
    );
    assert!(right("tax_total") >= n - 1, "tax_total");
    assert!(right("due_total") >= n - 1, "due_total");
    assert!(right("net_total") >= n - 1, "net_total");
    assert!(right("invoice_number") >= n - 1, "invoice_number");
    assert!(right("issue_date") >= n - 1, "issue_date");
    assert!(right("currency") >= n, "currency");
}

/// The same documents through docpipe's own PDF text layer.
#[test]
fn fx_accuracy_own_text_layer() {
    let Some(shared) = invoice_eval::shared() else {
        skipping::skip("shared data not available");
        return;
    };
    let docs = invoice_eval::zugferd_docs(&shared.join("zugferd/fx"));
    let scores = invoice_eval::evaluate("fx", invoice_eval::Engine::Docpipe, &docs, &FIELDS);
    let right = |f: &str| scores.get(f).map_or(0, |s| s.right);
    assert!(right("gross_total") >= docs.len() - 1, "gross_total");
}

#[tokio::test]
async fn port_extracts_from_a_real_pdf() {
    let (Some(shared), true) = (invoice_eval::shared(), poppler::available()) else {
        skipping::skip("shared data or pdftotext not available");
        return;
    };
    let Some(doc) = poppler::document(&shared.join("zugferd/fx/EN16931_Einfach.pdf")) else {
        panic!("pdftotext failed");
    };
    let result = RuleExtractor::visual_only()
        .extract_invoice(&doc, None)
        .await;
    let Ok(result) = result else {
        panic!("extractor failed: {result:?}");
    };
    assert_eq!(result.source, docpipe_core::ResultSource::Visual);
    assert_eq!(result.value("gross_total"), Some("529.87"));
    assert_eq!(result.value("issue_date"), Some("2018-03-05"));
    assert!(result.checks.is_empty() && result.review_reasons.is_empty());
}
