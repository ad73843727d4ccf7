//! Property-based fuzzing of the e-invoice reader: CII and UBL XML (the team's ZUGFeRD
//! samples in `../shared`, and small documents written here) mutated byte by byte and with
//! hostile fragments, and Factur-X PDFs mutated around their attachment. The reader may
//! refuse anything; it may never panic.
//!
//! Case counts are small so the suite stays fast; `PROPTEST_CASES=N` raises them
//! (`bench/fuzz.sh` runs them longer).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use docpipe_invoice::einvoice::{EinvoiceLimits, parse_invoice_xml, read_embedded};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    // A fixed seed in the suite (reproducible); bench/fuzz.sh sets DOCPIPE_FUZZ_SEED.
    let seed = std::env::var("DOCPIPE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20260201);
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    }
}

const CII: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
<rsm:ExchangedDocument><ram:ID>471102</ram:ID><ram:TypeCode>380</ram:TypeCode>
<ram:IssueDateTime><udt:DateTimeString format="102">20240305</udt:DateTimeString></ram:IssueDateTime></rsm:ExchangedDocument>
<rsm:SupplyChainTradeTransaction>
<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID></ram:AssociatedDocumentLineDocument>
<ram:SpecifiedTradeProduct><ram:Name>Widget</ram:Name></ram:SpecifiedTradeProduct>
<ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>10.00</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>
<ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="H87">10</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>
<ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>19</ram:RateApplicablePercent></ram:ApplicableTradeTax>
<ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>100.00</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation></ram:SpecifiedLineTradeSettlement>
</ram:IncludedSupplyChainTradeLineItem>
<ram:ApplicableHeaderTradeAgreement><ram:SellerTradeParty><ram:Name>Seller GmbH</ram:Name></ram:SellerTradeParty><ram:BuyerTradeParty><ram:Name>Buyer AG</ram:Name></ram:BuyerTradeParty></ram:ApplicableHeaderTradeAgreement>
<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
<ram:ApplicableTradeTax><ram:CalculatedAmount>19.00</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode><ram:BasisAmount>100.00</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>19</ram:RateApplicablePercent></ram:ApplicableTradeTax>
<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>100.00</ram:LineTotalAmount><ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount><ram:TaxTotalAmount currencyID="EUR">19.00</ram:TaxTotalAmount><ram:GrandTotalAmount>119.00</ram:GrandTotalAmount><ram:DuePayableAmount>119.00</ram:DuePayableAmount></ram:SpecifiedTradeSettlementHeaderMonetarySummation>
</ram:ApplicableHeaderTradeSettlement></rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>
"#;

const UBL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:ID>INV-1</cbc:ID><cbc:IssueDate>2024-03-05</cbc:IssueDate><cbc:DueDate>2024-04-05</cbc:DueDate><cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
<cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Seller</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
<cac:AccountingCustomerParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Buyer</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingCustomerParty>
<cac:TaxTotal><cbc:TaxAmount currencyID="EUR">19.00</cbc:TaxAmount><cac:TaxSubtotal><cbc:TaxableAmount currencyID="EUR">100.00</cbc:TaxableAmount><cbc:TaxAmount currencyID="EUR">19.00</cbc:TaxAmount><cac:TaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>19</cbc:Percent></cac:TaxCategory></cac:TaxSubtotal></cac:TaxTotal>
<cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount><cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount><cbc:TaxInclusiveAmount currencyID="EUR">119.00</cbc:TaxInclusiveAmount><cbc:PayableAmount currencyID="EUR">119.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
<cac:InvoiceLine><cbc:ID>1</cbc:ID><cbc:InvoicedQuantity unitCode="H87">10</cbc:InvoicedQuantity><cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount><cac:Item><cbc:Name>Widget</cbc:Name><cac:ClassifiedTaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>19</cbc:Percent></cac:ClassifiedTaxCategory></cac:Item><cac:Price><cbc:PriceAmount currencyID="EUR">10.00</cbc:PriceAmount></cac:Price></cac:InvoiceLine>
</Invoice>
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn xml_files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// The seed documents: the two written here, and the shared CII and UBL samples.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = vec![CII.as_bytes().to_vec(), UBL.as_bytes().to_vec()];
        let shared = repo().join("../shared/data/invoices/zugferd");
        if shared.is_dir() {
            seeds.extend(xml_files(&shared.join("cii")));
            seeds.extend(xml_files(&shared.join("ubl")));
        } else {
            eprintln!(
                "SKIPPING the shared e-invoice samples: {} is absent; fuzzing the built-in ones only",
                shared.display()
            );
        }
        seeds
    })
}

/// Fragments that have broken XML readers: entities, DTDs, CDATA, deep nesting, numbers
/// and dates out of range, encodings.
const FRAGMENTS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "&",
    "&amp;",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "&unknown;",
    "<!DOCTYPE a [<!ENTITY e \"xx\">]>",
    "<!DOCTYPE a SYSTEM \"file:///etc/passwd\">",
    "<![CDATA[x]]>",
    "]]>",
    "<?xml version=\"1.1\"?>",
    "<?pi x?>",
    "<!-- c -->",
    "xmlns:ram=\"urn:other\"",
    " currencyID=\"\"",
    "<ram:GrandTotalAmount>1e400</ram:GrandTotalAmount>",
    "<cbc:PayableAmount currencyID=\"EUR\">-0</cbc:PayableAmount>",
    "99999999999999999999999999999999999.999",
    "-79228162514264337593543950336",
    "0.0000000000000000000000000000001",
    "NaN",
    "20241399",
    "2024-02-30",
    "",
    "\u{feff}",
    "\u{0}",
    "\u{10ffff}",
    "ä€😀",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
    Nest(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<usize>(), prop_oneof![
            3 => proptest::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 1..8),
        ]).prop_map(|(i, f)| Mutation::Insert(i, f)),
        2 => (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<usize>(), 1usize..256).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), 1usize..200).prop_map(|(i, n)| Mutation::Nest(i, n)),
    ]
}

fn mutate(doc: &mut Vec<u8>, m: &Mutation) {
    let len = doc.len().max(1);
    match m {
        Mutation::Flip(i, b) => {
            if !doc.is_empty() {
                doc[i % len] = *b;
            }
        }
        Mutation::Insert(i, f) => {
            let at = i % (doc.len() + 1);
            doc.splice(at..at, f.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let at = i % len;
            let end = (at + n).min(doc.len());
            if at < end {
                doc.drain(at..end);
            }
        }
        Mutation::Duplicate(i, n) => {
            let at = i % len;
            let end = (at + n).min(doc.len());
            if at < end {
                let copy = doc[at..end].to_vec();
                doc.splice(end..end, copy);
            }
        }
        Mutation::Truncate(i) => doc.truncate(i % len),
        Mutation::Nest(i, n) => {
            let at = i % (doc.len() + 1);
            let mut deep = b"<a>".repeat(*n);
            deep.extend(b"</a>".repeat(*n));
            doc.splice(at..at, deep);
        }
    }
}

#[test]
fn the_seeds_are_read_as_invoices() {
    let limits = EinvoiceLimits::default();
    for (i, seed) in seeds().iter().enumerate() {
        let invoice = parse_invoice_xml(seed, &limits)
            .unwrap_or_else(|e| panic!("seed {i} does not parse: {e}"));
        invoice
            .into_result("seed.xml")
            .unwrap_or_else(|e| panic!("seed {i} does not map: {e}"));
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_invoice_xml_never_panics(
        pick in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let seeds = seeds();
        let mut doc = seeds[pick % seeds.len()].clone();
        for m in &mutations {
            mutate(&mut doc, m);
        }
        if let Ok(invoice) = parse_invoice_xml(&doc, &EinvoiceLimits::default()) {
            let _ = invoice.into_result("fuzz.xml");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_xml_reader(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_invoice_xml(&bytes, &EinvoiceLimits::default());
    }
}

proptest! {
    // Each case loads a whole PDF: fewer of them.
    #![proptest_config(config(48))]

    #[test]
    fn mutated_factur_x_pdfs_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        static PDF: OnceLock<Vec<u8>> = OnceLock::new();
        let pdf = PDF.get_or_init(|| {
            std::fs::read(repo().join("fixtures/invoices/EN16931_Einfach.pdf")).expect("fixture")
        });
        let mut doc = pdf.clone();
        for m in &mutations {
            mutate(&mut doc, m);
        }
        let _ = read_embedded(&doc, &EinvoiceLimits::default());
    }
}
