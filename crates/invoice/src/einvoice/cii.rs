//! UN/CEFACT Cross Industry Invoice (Factur-X, ZUGFeRD 2, XRechnung CII) and its
//! predecessor, ZUGFeRD 1's Cross Industry Document, mapped to the result model. The
//! paths mirror `shared/data/tools/extract_cii_truth.py`, which made the truth files.

use docpipe_core::{LineItem, TaxSubtotal};
use roxmltree::Node;

use super::xml::{child_of, children, decimal, find, local, node_text, text};
use super::{EinvoiceError, Invoice};

/// Whether a root element is a CII document.
pub(super) fn is_cii(root: Node<'_, '_>) -> bool {
    matches!(
        local(root),
        "CrossIndustryInvoice" | "CrossIndustryDocument"
    )
}

pub(super) fn map(root: Node<'_, '_>) -> Result<Invoice, EinvoiceError> {
    let r = Some(root);
    let doc = child_of(r, &["ExchangedDocument", "HeaderExchangedDocument"]);
    let tx = child_of(
        r,
        &[
            "SupplyChainTradeTransaction",
            "SpecifiedSupplyChainTradeTransaction",
        ],
    );
    let agr = child_of(
        tx,
        &[
            "ApplicableHeaderTradeAgreement",
            "ApplicableSupplyChainTradeAgreement",
        ],
    );
    let stl = child_of(
        tx,
        &[
            "ApplicableHeaderTradeSettlement",
            "ApplicableSupplyChainTradeSettlement",
        ],
    );
    let summ = child_of(
        stl,
        &[
            "SpecifiedTradeSettlementHeaderMonetarySummation",
            "SpecifiedTradeSettlementMonetarySummation",
        ],
    );
    if doc.is_none() || tx.is_none() {
        return Err(EinvoiceError::NotAnInvoice(
            "a CII document without ExchangedDocument or SupplyChainTradeTransaction".into(),
        ));
    }

    let mut inv = Invoice {
        syntax: "CII",
        invoice_number: text(doc, "ID"),
        type_code: text(doc, "TypeCode"),
        issue_date: date(find(doc, "IssueDateTime/DateTimeString"), "issue date")?,
        due_date: date(
            find(
                stl,
                "*SpecifiedTradePaymentTerms/DueDateDateTime/DateTimeString",
            ),
            "due date",
        )?,
        seller_name: text(agr, "SellerTradeParty/Name"),
        buyer_name: text(agr, "BuyerTradeParty/Name"),
        currency: text(stl, "InvoiceCurrencyCode"),
        ..Invoice::default()
    };
    inv.net_total = decimal(summ, "LineTotalAmount")?;
    inv.charge_total = decimal(summ, "ChargeTotalAmount")?;
    inv.allowance_total = decimal(summ, "AllowanceTotalAmount")?;
    inv.tax_basis_total = decimal(summ, "TaxBasisTotalAmount")?;
    inv.gross_total = decimal(summ, "GrandTotalAmount")?;
    inv.prepaid_total = decimal(summ, "TotalPrepaidAmount")?;
    inv.due_total = decimal(summ, "DuePayableAmount")?;
    // With a tax currency (BT-6) there are two tax totals; ours is the invoice
    // currency's, else the one without a currency, else the first.
    if let Some(summ) = summ {
        let totals: Vec<Node<'_, '_>> = children(summ, "TaxTotalAmount").collect();
        let cur = inv.currency.as_deref();
        let pick = totals
            .iter()
            .find(|t| cur.is_some() && t.attribute("currencyID") == cur)
            .or_else(|| totals.iter().find(|t| t.attribute("currencyID").is_none()))
            .or_else(|| totals.first());
        if let Some(t) = pick
            && let Some(v) = node_text(*t)
        {
            inv.tax_total = Some(super::xml::parse_decimal(&v, "TaxTotalAmount")?);
        }
    }

    if let Some(tx) = tx {
        for li in children(tx, "IncludedSupplyChainTradeLineItem") {
            let li = Some(li);
            // A line without an amount is a note (ZUGFeRD 1 EXTENDED has them), not an
            // invoice line.
            let Some(net) = decimal(li, "*LineTotalAmount")? else {
                continue;
            };
            let rate = match decimal(li, "*RateApplicablePercent")? {
                Some(r) => Some(r),
                None => decimal(li, "*ApplicablePercent")?,
            };
            inv.lines.push(LineItem {
                line_id: text(li, "*LineID"),
                description: text(li, "SpecifiedTradeProduct/Name").unwrap_or_default(),
                quantity: decimal(li, "*BilledQuantity")?,
                unit_price: decimal(li, "*NetPriceProductTradePrice/ChargeAmount")?,
                net_amount: net,
                tax_rate: rate,
                confidence: 1.0,
                page: None,
                bbox: None,
            });
        }
    }
    if let Some(stl) = stl {
        for t in children(stl, "ApplicableTradeTax") {
            let t = Some(t);
            let rate = match decimal(t, "RateApplicablePercent")? {
                Some(r) => Some(r),
                None => decimal(t, "ApplicablePercent")?,
            };
            let (Some(basis), Some(tax)) =
                (decimal(t, "BasisAmount")?, decimal(t, "CalculatedAmount")?)
            else {
                return Err(EinvoiceError::BadValue {
                    what: "ApplicableTradeTax".into(),
                    value: "without BasisAmount or CalculatedAmount".into(),
                });
            };
            inv.tax_breakdown.push(TaxSubtotal {
                // An exempt category (O, E) may state no rate: it is zero.
                rate: rate.unwrap_or_default(),
                basis,
                tax,
            });
        }
    }
    Ok(inv)
}

/// A `udt:DateTimeString` as `YYYY-MM-DD`. Format 102 (and no format) is `CCYYMMDD`;
/// 610 (month) and 616 (week) name no day and give no date.
fn date(n: Option<Node<'_, '_>>, what: &str) -> Result<Option<String>, EinvoiceError> {
    let Some(n) = n else {
        return Ok(None);
    };
    let Some(v) = node_text(n) else {
        return Ok(None);
    };
    match n.attribute("format") {
        None | Some("102") => super::ymd(&v, what).map(Some),
        Some(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_cross_industry_invoice() {
        let x = r#"<rsm:CrossIndustryInvoice
  xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
  xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
 <rsm:ExchangedDocument><ram:ID>G-1</ram:ID><ram:TypeCode>381</ram:TypeCode>
  <ram:IssueDateTime><udt:DateTimeString format="102">20260131</udt:DateTimeString></ram:IssueDateTime>
 </rsm:ExchangedDocument>
 <rsm:SupplyChainTradeTransaction>
  <ram:IncludedSupplyChainTradeLineItem>
   <ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID></ram:AssociatedDocumentLineDocument>
   <ram:SpecifiedTradeProduct><ram:Name>Gutschrift Ware</ram:Name></ram:SpecifiedTradeProduct>
   <ram:SpecifiedLineTradeSettlement>
    <ram:ApplicableTradeTax><ram:RateApplicablePercent>19</ram:RateApplicablePercent></ram:ApplicableTradeTax>
    <ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>100.00</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>
   </ram:SpecifiedLineTradeSettlement>
  </ram:IncludedSupplyChainTradeLineItem>
  <ram:ApplicableHeaderTradeAgreement>
   <ram:SellerTradeParty><ram:Name>Lieferant GmbH</ram:Name></ram:SellerTradeParty>
   <ram:BuyerTradeParty><ram:Name>Kunde AG</ram:Name></ram:BuyerTradeParty>
  </ram:ApplicableHeaderTradeAgreement>
  <ram:ApplicableHeaderTradeSettlement>
   <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
   <ram:ApplicableTradeTax><ram:CalculatedAmount>19.00</ram:CalculatedAmount><ram:BasisAmount>100.00</ram:BasisAmount><ram:RateApplicablePercent>19.00</ram:RateApplicablePercent></ram:ApplicableTradeTax>
   <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    <ram:LineTotalAmount>100.00</ram:LineTotalAmount>
    <ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
    <ram:TaxTotalAmount currencyID="CHF">18.00</ram:TaxTotalAmount>
    <ram:TaxTotalAmount currencyID="EUR">19.00</ram:TaxTotalAmount>
    <ram:GrandTotalAmount>119.00</ram:GrandTotalAmount>
    <ram:DuePayableAmount>119.00</ram:DuePayableAmount>
   </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
  </ram:ApplicableHeaderTradeSettlement>
 </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>"#;
        let doc = roxmltree::Document::parse(x).expect("parses");
        let inv = map(doc.root_element()).expect("maps");
        assert_eq!(inv.invoice_number.as_deref(), Some("G-1"));
        assert_eq!(inv.type_code.as_deref(), Some("381"));
        assert_eq!(inv.issue_date.as_deref(), Some("2026-01-31"));
        assert_eq!(inv.seller_name.as_deref(), Some("Lieferant GmbH"));
        assert_eq!(inv.buyer_name.as_deref(), Some("Kunde AG"));
        // The tax total in the invoice currency, not the first one.
        assert_eq!(inv.tax_total, Some("19.00".parse().expect("decimal")));
        // A credit note keeps the signs the XML has (positive here).
        assert_eq!(inv.gross_total, Some("119.00".parse().expect("decimal")));
        assert_eq!(inv.lines.len(), 1);
        assert_eq!(inv.lines[0].description, "Gutschrift Ware");
        assert_eq!(inv.tax_breakdown.len(), 1);
    }

    #[test]
    fn broken_values_are_errors_not_half_results() {
        let x = r#"<CrossIndustryInvoice><ExchangedDocument><ID>1</ID>
<IssueDateTime><DateTimeString format="102">2026-13-45</DateTimeString></IssueDateTime>
</ExchangedDocument><SupplyChainTradeTransaction/></CrossIndustryInvoice>"#;
        let doc = roxmltree::Document::parse(x).expect("parses");
        assert!(map(doc.root_element()).is_err());
        let x = r#"<CrossIndustryInvoice><ExchangedDocument><ID>1</ID></ExchangedDocument>
<SupplyChainTradeTransaction><ApplicableHeaderTradeSettlement>
<SpecifiedTradeSettlementHeaderMonetarySummation><GrandTotalAmount>1.234,00</GrandTotalAmount>
</SpecifiedTradeSettlementHeaderMonetarySummation></ApplicableHeaderTradeSettlement>
</SupplyChainTradeTransaction></CrossIndustryInvoice>"#;
        let doc = roxmltree::Document::parse(x).expect("parses");
        assert!(map(doc.root_element()).is_err());
    }
}
