//! The verify stage: required fields, arithmetic in `rust_decimal`, dates, currency and
//! confidence. A failed check or a low-confidence field sends the job to `needs_review`
//! with the reasons; a check whose inputs are absent is skipped, not failed.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use tracing::info;

use super::{VerifyInput, VerifyOutput, elapsed_ms, enter, read_json, write_json};
use crate::error::StageError;
use crate::ids::ObjectKey;
use crate::job::JobStatus;
use crate::ports::{JobPatch, Ports};
use crate::result::{Check, DATE_FIELDS, InvoiceResult};

mod rooms;

pub use rooms::{apply_room_checks, run_room_checks};

/// Fields an invoice must have to be usable.
pub const REQUIRED_FIELDS: [&str; 4] = ["invoice_number", "issue_date", "currency", "gross_total"];

/// Active ISO 4217 currency codes.
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB \
BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD \
FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR \
KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR \
MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK \
SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES \
VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// Checks the extraction and stores the checked result at `results/{job}/verified.json`.
pub async fn verify(ports: &Ports, input: VerifyInput) -> Result<VerifyOutput, StageError> {
    let start = ports.clock.now();
    enter(ports, &input.job_id, JobStatus::Verifying).await?;
    let extraction: serde_json::Value = read_json(ports, &input.extraction.key).await?;
    if rooms::is_rooms_result(&extraction) {
        return rooms::verify_rooms(ports, input, extraction, start).await;
    }
    let mut result: InvoiceResult = serde_json::from_value(extraction).map_err(|e| {
        StageError::internal(format!("object {} is not valid: {e}", input.extraction.key))
    })?;
    apply_checks(&mut result, ports.settings.review_confidence_threshold);
    let key = ObjectKey::for_job("results", &input.job_id, "verified.json");
    write_json(ports, &key, &result).await?;
    ports
        .jobs
        .update(
            &input.job_id,
            JobPatch {
                stage_ms: Some(("verify".into(), elapsed_ms(ports, start))),
                ..JobPatch::default()
            },
            ports.clock.now(),
        )
        .await?;
    info!(job_id = %input.job_id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "verify",
          needs_review = result.needs_review, failed_checks = result.checks.iter().filter(|c| !c.passed).count(),
          "checks done");
    Ok(VerifyOutput {
        key,
        needs_review: result.needs_review,
        review_reasons: result.review_reasons,
    })
}

/// The names of the checks this stage runs. Checks with other names come from the
/// extractor (e.g. `embedded_xml`: why an embedded e-invoice was or was not used) and are
/// kept ahead of these, so running verify twice gives the same result.
pub const VERIFY_CHECKS: [&str; 10] = [
    "required_fields",
    "amounts_valid",
    "lines_sum_to_net",
    "net_to_tax_basis",
    "net_plus_tax_equals_gross",
    "gross_minus_prepaid_equals_due",
    "tax_rates_applied",
    "tax_breakdown_sums_to_tax",
    "dates_valid",
    "currency_valid",
];

/// Fields whose confidence decides the verdict: the required fields and the totals that
/// take part in the arithmetic. Names, the due date, the type code and lines keep their
/// confidence in the result for a reader to weigh, but do not send a document to review
/// by themselves (a line that breaks the arithmetic does, through `lines_sum_to_net`).
pub const VERDICT_FIELDS: [&str; 10] = [
    "invoice_number",
    "issue_date",
    "currency",
    "net_total",
    "tax_basis_total",
    "tax_total",
    "gross_total",
    "prepaid_total",
    "due_total",
    "allowance_total",
];

/// Runs every check, replacing this stage's checks, `needs_review` and `review_reasons`;
/// the extractor's own checks are kept, and a failed one sends the job to review too.
///
/// A document completes without review only when every check passed, every verdict
/// field clears `confidence_threshold`, and the totals could be reconciled at all:
/// a net (or tax basis), a tax and a gross total are present, so that
/// `net_plus_tax_equals_gross` ran (a gross total nothing else confirms is a guess).
pub fn apply_checks(result: &mut InvoiceResult, confidence_threshold: f32) {
    let mut checks: Vec<Check> = result
        .checks
        .iter()
        .filter(|c| !VERIFY_CHECKS.contains(&c.name.as_str()))
        .cloned()
        .collect();
    checks.extend(run_checks(result));
    let mut reasons: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if !checks.iter().any(|c| c.name == "net_plus_tax_equals_gross") {
        let missing: Vec<&str> = [
            (
                "net_total",
                result
                    .value("net_total")
                    .or(result.value("tax_basis_total")),
            ),
            ("tax_total", result.value("tax_total")),
            ("gross_total", result.value("gross_total")),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| n)
        .collect();
        reasons.push(format!(
            "totals_unreconciled: net + tax = gross cannot be checked without {}",
            missing.join(", ")
        ));
    }
    for (name, field) in &result.fields {
        if VERDICT_FIELDS.contains(&name.as_str()) && field.confidence < confidence_threshold {
            reasons.push(format!(
                "low_confidence: {name} at {:.2} is under {:.2}",
                field.confidence, confidence_threshold
            ));
        }
    }
    result.checks = checks;
    result.needs_review = !reasons.is_empty();
    result.review_reasons = reasons;
}

/// One cent, the tolerance of a single rounding.
fn cent() -> Decimal {
    Decimal::new(1, 2)
}

fn money(d: Decimal) -> String {
    let mut d = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    d.rescale(2);
    d.to_string()
}

/// The checks, in a fixed order. Each check appears only when its inputs are present.
pub fn run_checks(r: &InvoiceResult) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut push = |name: &str, passed: bool, detail: String| {
        checks.push(Check {
            name: name.to_owned(),
            passed,
            detail,
        })
    };

    let missing: Vec<&str> = REQUIRED_FIELDS
        .into_iter()
        .filter(|f| r.value(f).is_none_or(|v| v.trim().is_empty()))
        .collect();
    push(
        "required_fields",
        missing.is_empty(),
        if missing.is_empty() {
            "all required fields present".into()
        } else {
            format!("missing {}", missing.join(", "))
        },
    );

    // Amount fields that are present must parse.
    let unparsable: Vec<&str> = crate::result::AMOUNT_FIELDS
        .into_iter()
        .filter(|f| r.value(f).is_some() && r.amount(f).is_none())
        .collect();
    if !unparsable.is_empty() {
        push(
            "amounts_valid",
            false,
            format!("not decimal amounts: {}", unparsable.join(", ")),
        );
    }

    let net = r.amount("net_total");
    let charges = r.amount("charge_total").unwrap_or_default();
    let allowances = r.amount("allowance_total").unwrap_or_default();
    let basis = r.amount("tax_basis_total");
    let tax = r.amount("tax_total");
    let gross = r.amount("gross_total");
    let prepaid = r.amount("prepaid_total").unwrap_or_default();
    let due = r.amount("due_total");

    if let Some(net) = net
        && !r.lines.is_empty()
    {
        let sum: Decimal = r.lines.iter().map(|l| l.net_amount).sum();
        let tolerance = cent() * Decimal::from(r.lines.len());
        push(
            "lines_sum_to_net",
            (sum - net).abs() <= tolerance,
            format!(
                "{} lines sum to {}, net total is {}",
                r.lines.len(),
                money(sum),
                money(net)
            ),
        );
    }

    if let (Some(net), Some(basis)) = (net, basis) {
        let expected = net + charges - allowances;
        push(
            "net_to_tax_basis",
            (expected - basis).abs() <= cent(),
            format!(
                "net {} + charges {} - allowances {} = {}, tax basis is {}",
                money(net),
                money(charges),
                money(allowances),
                money(expected),
                money(basis)
            ),
        );
    }

    let base = basis.or(net.map(|n| n + charges - allowances));
    if let (Some(base), Some(tax), Some(gross)) = (base, tax, gross) {
        push(
            "net_plus_tax_equals_gross",
            (base + tax - gross).abs() <= cent(),
            format!(
                "{} + tax {} = {}, gross total is {}",
                money(base),
                money(tax),
                money(base + tax),
                money(gross)
            ),
        );
    }

    if let (Some(gross), Some(due)) = (gross, due) {
        push(
            "gross_minus_prepaid_equals_due",
            (gross - prepaid - due).abs() <= cent(),
            format!(
                "gross {} - prepaid {} = {}, due is {}",
                money(gross),
                money(prepaid),
                money(gross - prepaid),
                money(due)
            ),
        );
    }

    if !r.tax_breakdown.is_empty() {
        let hundred = Decimal::from(100);
        let wrong: Vec<String> = r
            .tax_breakdown
            .iter()
            .filter_map(|t| {
                let expected = (t.basis * t.rate / hundred)
                    .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
                ((expected - t.tax).abs() > cent()).then(|| {
                    format!(
                        "{}% of {} is {}, not {}",
                        t.rate.normalize(),
                        money(t.basis),
                        money(expected),
                        money(t.tax)
                    )
                })
            })
            .collect();
        push(
            "tax_rates_applied",
            wrong.is_empty(),
            if wrong.is_empty() {
                format!("{} tax rates check out", r.tax_breakdown.len())
            } else {
                wrong.join("; ")
            },
        );
        if let Some(tax) = tax {
            let sum: Decimal = r.tax_breakdown.iter().map(|t| t.tax).sum();
            let tolerance = cent() * Decimal::from(r.tax_breakdown.len());
            push(
                "tax_breakdown_sums_to_tax",
                (sum - tax).abs() <= tolerance,
                format!(
                    "breakdown sums to {}, tax total is {}",
                    money(sum),
                    money(tax)
                ),
            );
        }
    }

    let mut dates = Vec::new();
    let mut bad_dates = Vec::new();
    for f in DATE_FIELDS {
        if let Some(v) = r.value(f) {
            match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                Ok(d) => dates.push((f, d)),
                Err(_) => bad_dates.push(format!("{f} {v:?} is not a YYYY-MM-DD date")),
            }
        }
    }
    if let (Some((_, issue)), Some((_, due_date))) = (
        dates.iter().find(|(f, _)| *f == "issue_date"),
        dates.iter().find(|(f, _)| *f == "due_date"),
    ) && due_date < issue
    {
        bad_dates.push(format!("due date {due_date} is before issue date {issue}"));
    }
    if !dates.is_empty() || !bad_dates.is_empty() {
        push(
            "dates_valid",
            bad_dates.is_empty(),
            if bad_dates.is_empty() {
                "dates are valid".into()
            } else {
                bad_dates.join("; ")
            },
        );
    }

    if let Some(c) = r.value("currency") {
        let ok = c.len() == 3 && ISO_4217.split_whitespace().any(|code| code == c);
        push(
            "currency_valid",
            ok,
            if ok {
                format!("{c} is an ISO 4217 code")
            } else {
                format!("{c:?} is not an ISO 4217 code")
            },
        );
    }

    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{Field, LineItem, ResultSource, TaxSubtotal};

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    /// EN16931_Einfach from the Factur-X corpus: consistent in every respect.
    fn consistent() -> InvoiceResult {
        let mut r = InvoiceResult::new(ResultSource::Visual);
        for (k, v) in [
            ("invoice_number", "471102"),
            ("issue_date", "2018-03-05"),
            ("due_date", "2018-04-04"),
            ("currency", "EUR"),
            ("net_total", "473.00"),
            ("tax_basis_total", "473.00"),
            ("tax_total", "56.87"),
            ("gross_total", "529.87"),
            ("prepaid_total", "0.00"),
            ("due_total", "529.87"),
        ] {
            r.set(k, Field::new(v, 0.95));
        }
        r.lines = vec![
            LineItem {
                description: "Trennblätter A4".into(),
                net_amount: d("198.00"),
                confidence: 0.9,
                ..LineItem::default()
            },
            LineItem {
                description: "Joghurt Banane".into(),
                net_amount: d("275.00"),
                confidence: 0.9,
                ..LineItem::default()
            },
        ];
        r.tax_breakdown = vec![
            TaxSubtotal {
                rate: d("7"),
                basis: d("275.00"),
                tax: d("19.25"),
            },
            TaxSubtotal {
                rate: d("19"),
                basis: d("198.00"),
                tax: d("37.62"),
            },
        ];
        r
    }

    fn failed(r: &InvoiceResult) -> Vec<String> {
        r.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.clone())
            .collect()
    }

    #[test]
    fn a_consistent_invoice_passes_every_check() {
        let mut r = consistent();
        apply_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
        let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "required_fields",
                "lines_sum_to_net",
                "net_to_tax_basis",
                "net_plus_tax_equals_gross",
                "gross_minus_prepaid_equals_due",
                "tax_rates_applied",
                "tax_breakdown_sums_to_tax",
                "dates_valid",
                "currency_valid"
            ]
        );
    }

    fn broken(edit: impl FnOnce(&mut InvoiceResult), check: &str) {
        let mut r = consistent();
        edit(&mut r);
        apply_checks(&mut r, 0.8);
        assert!(r.needs_review);
        assert_eq!(failed(&r), [check], "{:?}", r.review_reasons);
        assert!(r.review_reasons[0].starts_with(check));
    }

    #[test]
    fn each_rule_catches_its_own_break() {
        broken(
            |r| drop(r.fields.remove("invoice_number")),
            "required_fields",
        );
        broken(|r| r.lines[0].net_amount = d("199.00"), "lines_sum_to_net");
        broken(
            |r| {
                r.set("tax_basis_total", Field::new("470.00", 0.95));
                r.set("gross_total", Field::new("526.87", 0.95));
                r.set("due_total", Field::new("526.87", 0.95));
            },
            "net_to_tax_basis",
        );
        broken(
            |r| {
                r.set("gross_total", Field::new("530.87", 0.95));
                r.set("due_total", Field::new("530.87", 0.95));
            },
            "net_plus_tax_equals_gross",
        );
        broken(
            |r| r.set("due_total", Field::new("500.00", 0.95)),
            "gross_minus_prepaid_equals_due",
        );
        broken(
            |r| r.tax_breakdown[0].basis = d("300.00"),
            "tax_rates_applied",
        );
        broken(
            |r| {
                r.tax_breakdown[1].tax = d("37.72");
                r.tax_breakdown[1].basis = d("198.50");
            },
            "tax_breakdown_sums_to_tax",
        );
        broken(
            |r| r.set("issue_date", Field::new("2018-02-30", 0.95)),
            "dates_valid",
        );
        broken(
            |r| r.set("due_date", Field::new("2018-01-01", 0.95)),
            "dates_valid",
        );
        broken(
            |r| r.set("currency", Field::new("EURO", 0.95)),
            "currency_valid",
        );
    }

    #[test]
    fn prepaid_amounts_reduce_the_amount_due() {
        let mut r = consistent();
        r.set("prepaid_total", Field::new("100.00", 0.95));
        r.set("due_total", Field::new("429.87", 0.95));
        apply_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
    }

    #[test]
    fn absent_inputs_skip_their_checks() {
        let mut r = InvoiceResult::new(ResultSource::Visual);
        r.set("gross_total", Field::new("10.00", 0.9));
        apply_checks(&mut r, 0.8);
        let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["required_fields"]);
        assert!(r.needs_review);
    }

    #[test]
    fn low_confidence_sends_to_review() {
        let mut r = consistent();
        r.set("gross_total", Field::new("529.87", 0.5));
        apply_checks(&mut r, 0.8);
        assert!(r.needs_review);
        assert!(failed(&r).is_empty());
        assert_eq!(r.review_reasons.len(), 1);
        assert!(r.review_reasons[0].contains("gross_total"));
        // The threshold is a setting.
        apply_checks(&mut r, 0.4);
        assert!(!r.needs_review);
    }

    #[test]
    fn only_verdict_fields_need_confidence() {
        let mut r = consistent();
        r.set("seller_name", Field::new("Lieferant GmbH", 0.3));
        r.set("due_date", Field::new("2018-04-04", 0.5));
        r.lines[0].confidence = 0.4;
        apply_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
        r.set("tax_total", Field::new("56.87", 0.7));
        apply_checks(&mut r, 0.8);
        assert_eq!(r.review_reasons.len(), 1, "{:?}", r.review_reasons);
        assert!(r.review_reasons[0].starts_with("low_confidence: tax_total"));
    }

    #[test]
    fn totals_that_cannot_be_reconciled_need_review() {
        let mut r = consistent();
        r.fields.remove("tax_total");
        apply_checks(&mut r, 0.8);
        assert!(r.needs_review);
        assert!(failed(&r).is_empty(), "{:?}", r.checks);
        assert_eq!(
            r.review_reasons,
            ["totals_unreconciled: net + tax = gross cannot be checked without tax_total"]
        );
    }

    #[test]
    fn credit_notes_with_negative_amounts_balance() {
        let mut r = consistent();
        for (k, v) in [
            ("net_total", "-473.00"),
            ("tax_basis_total", "-473.00"),
            ("tax_total", "-56.87"),
            ("gross_total", "-529.87"),
            ("due_total", "-529.87"),
        ] {
            r.set(k, Field::new(v, 0.95));
        }
        r.lines.clear();
        r.tax_breakdown.clear();
        apply_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
    }

    /// A credit note (type 381) as printed with minus signs everywhere: lines, breakdown
    /// and totals all negative, every rule still applies.
    fn negative_credit_note() -> InvoiceResult {
        let mut r = consistent();
        r.set("type_code", Field::new("381", 0.95));
        for (k, v) in [
            ("net_total", "-473.00"),
            ("tax_basis_total", "-473.00"),
            ("tax_total", "-56.87"),
            ("gross_total", "-529.87"),
            ("due_total", "-529.87"),
        ] {
            r.set(k, Field::new(v, 0.95));
        }
        for l in &mut r.lines {
            l.net_amount = -l.net_amount;
        }
        for t in &mut r.tax_breakdown {
            t.basis = -t.basis;
            t.tax = -t.tax;
        }
        r
    }

    #[test]
    fn credit_notes_carry_their_sign_through_every_rule() {
        let mut r = negative_credit_note();
        apply_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
        assert_eq!(r.checks.len(), 9, "every check ran: {:?}", r.checks);
        // A credit note printed with positive amounts (as EN 16931 XML has them) is as
        // consistent: the sign is the document's, not the type code's.
        let mut r = consistent();
        r.set("type_code", Field::new("381", 0.95));
        apply_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
        // Rounding half away from zero: -0.5 cents rounds to -1 cent like 0.5 to 1.
        let mut r = negative_credit_note();
        r.tax_breakdown = vec![TaxSubtotal {
            rate: d("19"),
            basis: d("-0.50"),
            tax: d("-0.10"),
        }];
        r.tax_breakdown[0].tax = d("-0.10");
        let checks = run_checks(&r);
        let rates = checks.iter().find(|c| c.name == "tax_rates_applied");
        assert!(rates.is_some_and(|c| c.passed), "{rates:?}");
    }

    #[test]
    fn a_credit_note_with_a_lost_sign_is_caught() {
        broken_from(
            negative_credit_note(),
            |r| r.set("tax_total", Field::new("56.87", 0.95)),
            &["net_plus_tax_equals_gross", "tax_breakdown_sums_to_tax"],
        );
        broken_from(
            negative_credit_note(),
            |r| r.lines[0].net_amount = d("198.00"),
            &["lines_sum_to_net"],
        );
        broken_from(
            negative_credit_note(),
            |r| r.tax_breakdown[1].tax = d("37.62"),
            &["tax_rates_applied", "tax_breakdown_sums_to_tax"],
        );
        broken_from(
            negative_credit_note(),
            |r| r.set("due_total", Field::new("529.87", 0.95)),
            &["gross_minus_prepaid_equals_due"],
        );
    }

    fn broken_from(mut r: InvoiceResult, edit: impl FnOnce(&mut InvoiceResult), checks: &[&str]) {
        edit(&mut r);
        apply_checks(&mut r, 0.8);
        assert!(r.needs_review);
        assert_eq!(failed(&r), checks, "{:?}", r.review_reasons);
    }

    #[test]
    fn unparsable_amounts_are_a_failed_check() {
        broken(
            |r| r.set("charge_total", Field::new("12,50", 0.95)),
            "amounts_valid",
        );
    }

    #[test]
    fn each_rule_tolerates_one_cent_of_rounding() {
        let mut r = consistent();
        // Each rule's inputs off by exactly one cent: within tolerance.
        r.lines[0].net_amount = d("198.01");
        r.set("tax_basis_total", Field::new("473.01", 0.95));
        r.set("gross_total", Field::new("529.89", 0.95));
        r.set("due_total", Field::new("529.88", 0.95));
        r.tax_breakdown[1].tax = d("37.63");
        apply_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
        // Two cents is not rounding.
        let mut r = consistent();
        r.tax_breakdown[1].tax = d("37.64");
        r.set("tax_total", Field::new("56.89", 0.95));
        r.set("gross_total", Field::new("529.89", 0.95));
        r.set("due_total", Field::new("529.89", 0.95));
        apply_checks(&mut r, 0.8);
        assert_eq!(failed(&r), ["tax_rates_applied"], "{:?}", r.review_reasons);
    }

    #[test]
    fn extractor_checks_are_kept_and_count() {
        let mut r = consistent();
        r.checks.push(Check {
            name: "embedded_xml".into(),
            passed: false,
            detail: "factur-x.xml is not well-formed".into(),
        });
        apply_checks(&mut r, 0.8);
        assert!(r.needs_review);
        assert_eq!(failed(&r), ["embedded_xml"]);
        assert!(r.review_reasons[0].starts_with("embedded_xml: "));
        // Verify twice: the same checks, not duplicates.
        let first = r.checks.clone();
        apply_checks(&mut r, 0.8);
        assert_eq!(r.checks, first);
        // A passed extractor check is kept and changes nothing.
        let mut r = consistent();
        r.checks.push(Check {
            name: "embedded_xml".into(),
            passed: true,
            detail: "read from the embedded factur-x.xml (CII)".into(),
        });
        apply_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
        assert_eq!(r.checks[0].name, "embedded_xml");
    }
}
