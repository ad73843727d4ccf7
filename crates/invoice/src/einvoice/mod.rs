//! Embedded e-invoices: the XML that Factur-X, ZUGFeRD and XRechnung PDFs carry as an
//! attachment (CII, or UBL for some), read and mapped to the result model. When it is
//! there and sound it *is* the invoice: every field with confidence 1.0 and source
//! `embedded_xml`. A broken PDF, attachment or XML is an [`EinvoiceError`] (the caller
//! falls back to the printed text and notes why); an absent one is `Ok(None)`.
//!
//! Bounded throughout: the attachment's decoded size, the XML's node count and depth, and
//! no DTD at all (so neither entity expansion nor external entities). The async entry
//! point parses on its own thread with a large stack and a deadline, so a hostile file
//! costs at most that time and never takes the caller down.

mod attachment;
mod cii;
mod ubl;
mod xml;

use std::time::Duration;

use chrono::NaiveDate;
use docpipe_core::{Check, Field, InvoiceResult, LineItem, ResultSource, TaxSubtotal};
use rust_decimal::Decimal;

pub use attachment::{Attachment, find_invoice_xml, looks_like_pdf};

/// Bounds on reading one document's e-invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EinvoiceLimits {
    /// Largest decoded attachment, bytes.
    pub max_attachment_bytes: usize,
    /// Largest decoded PDF stream while loading the PDF (object streams, xref streams).
    pub max_stream_bytes: usize,
    /// Element nesting of the XML, and of the PDF's name tree.
    pub max_depth: usize,
    /// Nodes (elements, text, attributes' owners) of the XML.
    pub max_xml_nodes: u32,
    /// Stack of the parsing thread, bytes.
    pub stack_bytes: usize,
    /// How long the caller waits for the parse before giving up on it.
    pub timeout: Duration,
}

impl Default for EinvoiceLimits {
    fn default() -> Self {
        Self {
            max_attachment_bytes: 5 * 1024 * 1024,
            max_stream_bytes: 64 * 1024 * 1024,
            max_depth: 64,
            max_xml_nodes: 500_000,
            stack_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(20),
        }
    }
}

/// Why an embedded e-invoice could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EinvoiceError {
    #[error("the PDF could not be read for attachments: {0}")]
    Pdf(String),
    #[error("the attachment could not be decoded: {0}")]
    Attachment(String),
    #[error("the attachment {name} is larger than {max} bytes")]
    TooLarge { name: String, max: usize },
    #[error("the XML is not well-formed or not allowed: {0}")]
    Xml(String),
    #[error("the XML is nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("the XML is not an e-invoice: {0}")]
    NotAnInvoice(String),
    #[error("the e-invoice has a bad {what}: {value}")]
    BadValue { what: String, value: String },
    #[error("the e-invoice lacks {0}")]
    Missing(String),
    #[error("reading the e-invoice took longer than {0:?}")]
    Timeout(Duration),
    #[error("reading the e-invoice failed unexpectedly")]
    Crashed,
}

/// An e-invoice's business terms, before they become a result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invoice {
    /// `"CII"` or `"UBL"`.
    pub syntax: &'static str,
    pub invoice_number: Option<String>,
    pub type_code: Option<String>,
    pub issue_date: Option<String>,
    pub due_date: Option<String>,
    pub seller_name: Option<String>,
    pub buyer_name: Option<String>,
    pub currency: Option<String>,
    pub net_total: Option<Decimal>,
    pub charge_total: Option<Decimal>,
    pub allowance_total: Option<Decimal>,
    pub tax_basis_total: Option<Decimal>,
    pub tax_total: Option<Decimal>,
    pub gross_total: Option<Decimal>,
    pub prepaid_total: Option<Decimal>,
    pub due_total: Option<Decimal>,
    pub lines: Vec<LineItem>,
    pub tax_breakdown: Vec<TaxSubtotal>,
}

/// The name of the check that records where the answer came from (or why the embedded
/// e-invoice was not used).
pub const EMBEDDED_XML_CHECK: &str = "embedded_xml";

impl Invoice {
    /// The result, if the invoice has what every invoice must (number, issue date,
    /// currency, gross total): an e-invoice without them is broken, not half an answer.
    pub fn into_result(self, attachment: &str) -> Result<InvoiceResult, EinvoiceError> {
        let required = [
            ("invoice number", self.invoice_number.is_some()),
            ("issue date", self.issue_date.is_some()),
            ("currency", self.currency.is_some()),
            ("gross total", self.gross_total.is_some()),
        ];
        let missing: Vec<&str> = required
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(EinvoiceError::Missing(missing.join(", ")));
        }
        let mut r = InvoiceResult::new(ResultSource::EmbeddedXml);
        let texts = [
            ("invoice_number", self.invoice_number),
            ("type_code", self.type_code),
            ("issue_date", self.issue_date),
            ("due_date", self.due_date),
            ("seller_name", self.seller_name),
            ("buyer_name", self.buyer_name),
            ("currency", self.currency),
        ];
        for (name, v) in texts {
            if let Some(v) = v {
                r.set(name, Field::new(v, 1.0));
            }
        }
        let amounts = [
            ("net_total", self.net_total),
            ("charge_total", self.charge_total),
            ("allowance_total", self.allowance_total),
            ("tax_basis_total", self.tax_basis_total),
            ("tax_total", self.tax_total),
            ("gross_total", self.gross_total),
            ("prepaid_total", self.prepaid_total),
            ("due_total", self.due_total),
        ];
        for (name, v) in amounts {
            if let Some(v) = v {
                r.set(name, Field::new(crate::format_amount(v), 1.0));
            }
        }
        r.lines = self.lines;
        r.tax_breakdown = self.tax_breakdown;
        r.checks.push(Check {
            name: EMBEDDED_XML_CHECK.to_owned(),
            passed: true,
            detail: format!("read from the embedded {} ({})", attachment, self.syntax),
        });
        Ok(r)
    }
}

/// `YYYYMMDD` or `YYYY-MM-DD` as `YYYY-MM-DD`, if it is a real date.
fn ymd(v: &str, what: &str) -> Result<String, EinvoiceError> {
    let v = v.trim();
    let parsed = if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
        NaiveDate::parse_from_str(v, "%Y%m%d").ok()
    } else {
        NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()
    };
    parsed
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| EinvoiceError::BadValue {
            what: what.to_owned(),
            value: v.to_owned(),
        })
}

/// Maps e-invoice XML (CII or UBL) to its business terms.
pub fn parse_invoice_xml(bytes: &[u8], limits: &EinvoiceLimits) -> Result<Invoice, EinvoiceError> {
    if bytes.len() > limits.max_attachment_bytes {
        return Err(EinvoiceError::TooLarge {
            name: "XML".into(),
            max: limits.max_attachment_bytes,
        });
    }
    let text = xml::decode(bytes)?;
    let doc = xml::parse(text, limits)?;
    let root = doc.root_element();
    if cii::is_cii(root) {
        cii::map(root)
    } else if ubl::is_ubl(root) {
        ubl::map(root)
    } else {
        Err(EinvoiceError::NotAnInvoice(format!(
            "root element {:?}",
            root.tag_name().name()
        )))
    }
}

/// The e-invoice embedded in a PDF, as a result: `Ok(None)` if there is none.
pub fn read_embedded(
    pdf: &[u8],
    limits: &EinvoiceLimits,
) -> Result<Option<InvoiceResult>, EinvoiceError> {
    if !looks_like_pdf(pdf) {
        return Ok(None);
    }
    let Some(att) = find_invoice_xml(pdf, limits)? else {
        return Ok(None);
    };
    let invoice = parse_invoice_xml(&att.bytes, limits).map_err(|e| match e {
        EinvoiceError::Xml(m) => EinvoiceError::Xml(format!("{}: {m}", att.name)),
        e => e,
    })?;
    invoice.into_result(&att.name).map(Some)
}

/// [`read_embedded`] on a thread of its own, with the limits' stack and deadline: a panic
/// becomes [`EinvoiceError::Crashed`], a slow parse [`EinvoiceError::Timeout`] (the
/// thread is left to finish on its own; the PDF was parsed once already by the bounded
/// text worker, so this is a second line of defence, not the first).
pub async fn read_embedded_bounded(
    pdf: Vec<u8>,
    limits: EinvoiceLimits,
) -> Result<Option<InvoiceResult>, EinvoiceError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let timeout = limits.timeout;
    let spawned = std::thread::Builder::new()
        .name("einvoice".into())
        .stack_size(limits.stack_bytes)
        .spawn(move || {
            let _ = tx.send(read_embedded(&pdf, &limits));
        });
    if spawned.is_err() {
        return Err(EinvoiceError::Crashed);
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(r)) => r,
        // The sender was dropped without a reply: the thread panicked.
        Ok(Err(_)) => Err(EinvoiceError::Crashed),
        Err(_) => Err(EinvoiceError::Timeout(timeout)),
    }
}

/// What the embedded e-invoice gives an extractor that otherwise reads the printed text.
#[derive(Debug)]
pub enum EmbeddedInvoice {
    /// A sound e-invoice: the answer.
    Found(InvoiceResult),
    /// None (or not a PDF).
    Absent,
    /// One that cannot be used: the failed check saying why, for the printed text's
    /// result (verify keeps it, so a person learns the document's e-invoice is unsound).
    Unusable(Check),
}

/// Reads a document's embedded e-invoice, bounded, before its printed text is read.
pub async fn read_before_printed_text(original: &[u8]) -> EmbeddedInvoice {
    if !looks_like_pdf(original) {
        return EmbeddedInvoice::Absent;
    }
    match read_embedded_bounded(original.to_vec(), EinvoiceLimits::default()).await {
        Ok(Some(result)) => EmbeddedInvoice::Found(result),
        Ok(None) => EmbeddedInvoice::Absent,
        Err(e) => {
            tracing::warn!(error = %e, "embedded e-invoice unusable; reading the printed text");
            EmbeddedInvoice::Unusable(Check {
                name: EMBEDDED_XML_CHECK.to_owned(),
                passed: false,
                detail: format!("{e}; read the printed text instead"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_both_forms() {
        assert_eq!(ymd("20260131", "d").ok().as_deref(), Some("2026-01-31"));
        assert_eq!(ymd("2026-01-31", "d").ok().as_deref(), Some("2026-01-31"));
        assert!(ymd("20260231", "d").is_err());
        assert!(ymd("31.01.2026", "d").is_err());
    }

    #[test]
    fn an_invoice_without_its_essentials_is_refused() {
        let inv = Invoice {
            syntax: "CII",
            invoice_number: Some("1".into()),
            issue_date: Some("2026-01-31".into()),
            currency: Some("EUR".into()),
            ..Invoice::default()
        };
        assert_eq!(
            inv.clone().into_result("x.xml"),
            Err(EinvoiceError::Missing("gross total".into()))
        );
        let ok = Invoice {
            gross_total: Some(Decimal::new(11900, 2)),
            ..inv
        }
        .into_result("factur-x.xml");
        let Ok(r) = ok else {
            panic!("{ok:?}");
        };
        assert_eq!(r.source, ResultSource::EmbeddedXml);
        assert_eq!(r.value("gross_total"), Some("119.00"));
        assert!(r.fields.values().all(|f| f.confidence == 1.0));
        assert_eq!(r.checks.len(), 1);
    }

    #[test]
    fn non_pdf_bytes_have_no_attachment() {
        assert_eq!(
            read_embedded(b"\x89PNG\r\n", &EinvoiceLimits::default()),
            Ok(None)
        );
    }

    #[test]
    fn garbage_after_a_pdf_header_is_an_error_not_a_panic() {
        let r = read_embedded(b"%PDF-1.7\n garbage", &EinvoiceLimits::default());
        assert!(matches!(r, Err(EinvoiceError::Pdf(_))), "{r:?}");
    }

    #[test]
    fn other_xml_is_not_an_invoice() {
        let r = parse_invoice_xml(b"<html><body/></html>", &EinvoiceLimits::default());
        assert!(matches!(r, Err(EinvoiceError::NotAnInvoice(_))), "{r:?}");
    }
}

#[cfg(test)]
mod shared_tests;
