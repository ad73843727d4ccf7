//! OASIS UBL 2.1 `Invoice` and `CreditNote` (EN 16931 / Peppol / XRechnung UBL) mapped to
//! the result model, with the same business terms as the CII mapping.

use docpipe_core::{LineItem, TaxSubtotal};
use roxmltree::Node;

use super::xml::{child, child_of, children, decimal, local, node_text, parse_decimal, text};
use super::{EinvoiceError, Invoice};

/// Whether a root element is a UBL invoice or credit note.
pub(super) fn is_ubl(root: Node<'_, '_>) -> bool {
    matches!(local(root), "Invoice" | "CreditNote")
        && root
            .tag_name()
            .namespace()
            .is_some_and(|ns| ns.starts_with("urn:oasis:names:specification:ubl:schema:xsd:"))
}

fn party_name(root: Option<Node<'_, '_>>, role: &str) -> Option<String> {
    let party = child_of(root, &[role]).and_then(|r| child(r, "Party"));
    text(party, "PartyName/Name").or_else(|| text(party, "PartyLegalEntity/RegistrationName"))
}

pub(super) fn map(root: Node<'_, '_>) -> Result<Invoice, EinvoiceError> {
    let credit = local(root) == "CreditNote";
    let r = Some(root);
    let currency = text(r, "DocumentCurrencyCode");
    let mut inv = Invoice {
        syntax: "UBL",
        invoice_number: text(r, "ID"),
        type_code: text(r, "InvoiceTypeCode")
            .or_else(|| text(r, "CreditNoteTypeCode"))
            .or_else(|| credit.then(|| "381".to_owned())),
        issue_date: iso_date(text(r, "IssueDate"), "issue date")?,
        due_date: iso_date(
            text(r, "DueDate").or_else(|| text(r, "PaymentMeans/PaymentDueDate")),
            "due date",
        )?,
        seller_name: party_name(r, "AccountingSupplierParty"),
        buyer_name: party_name(r, "AccountingCustomerParty"),
        currency: currency.clone(),
        ..Invoice::default()
    };
    let totals = child_of(r, &["LegalMonetaryTotal"]);
    inv.net_total = decimal(totals, "LineExtensionAmount")?;
    inv.charge_total = decimal(totals, "ChargeTotalAmount")?;
    inv.allowance_total = decimal(totals, "AllowanceTotalAmount")?;
    inv.tax_basis_total = decimal(totals, "TaxExclusiveAmount")?;
    inv.gross_total = decimal(totals, "TaxInclusiveAmount")?;
    inv.prepaid_total = decimal(totals, "PrepaidAmount")?;
    inv.due_total = decimal(totals, "PayableAmount")?;

    // With a tax currency there are two TaxTotals; ours is in the document currency.
    let tax_totals: Vec<Node<'_, '_>> = children(root, "TaxTotal").collect();
    let amount_currency = |t: &Node<'_, '_>| {
        child(*t, "TaxAmount").and_then(|a| a.attribute("currencyID").map(str::to_owned))
    };
    let tax_total = tax_totals
        .iter()
        .find(|t| currency.is_some() && amount_currency(t) == currency)
        .or_else(|| tax_totals.first());
    if let Some(t) = tax_total {
        let t = Some(*t);
        inv.tax_total = decimal(t, "TaxAmount")?;
        if let Some(t) = t {
            for sub in children(t, "TaxSubtotal") {
                let sub = Some(sub);
                let (Some(basis), Some(tax)) =
                    (decimal(sub, "TaxableAmount")?, decimal(sub, "TaxAmount")?)
                else {
                    return Err(EinvoiceError::BadValue {
                        what: "TaxSubtotal".into(),
                        value: "without TaxableAmount or TaxAmount".into(),
                    });
                };
                inv.tax_breakdown.push(TaxSubtotal {
                    rate: decimal(sub, "TaxCategory/Percent")?.unwrap_or_default(),
                    basis,
                    tax,
                });
            }
        }
    }

    let line_name = if credit {
        "CreditNoteLine"
    } else {
        "InvoiceLine"
    };
    for (i, line) in children(root, line_name).enumerate() {
        let l = Some(line);
        let net = decimal(l, "LineExtensionAmount")?.ok_or_else(|| EinvoiceError::BadValue {
            what: format!("line {}", i + 1),
            value: "no LineExtensionAmount".into(),
        })?;
        let quantity = match child_of(l, &["InvoicedQuantity", "CreditedQuantity"]) {
            Some(q) => match node_text(q) {
                Some(v) => Some(parse_decimal(&v, "quantity")?),
                None => None,
            },
            None => None,
        };
        inv.lines.push(LineItem {
            line_id: text(l, "ID"),
            description: text(l, "Item/Name").unwrap_or_default(),
            quantity,
            unit_price: decimal(l, "Price/PriceAmount")?,
            net_amount: net,
            tax_rate: decimal(l, "Item/ClassifiedTaxCategory/Percent")?,
            confidence: 1.0,
            page: None,
            bbox: None,
        });
    }
    Ok(inv)
}

fn iso_date(v: Option<String>, what: &str) -> Result<Option<String>, EinvoiceError> {
    v.map(|v| super::ymd(&v, what)).transpose()
}
