//! The sign convention of EN 16931: a credit note (type code 381) states its amounts as
//! positive numbers and lets the type code say that the money flows back. Credit notes
//! printed with minus signs everywhere are reported the same way, so a result reads alike
//! whether it came from the embedded XML or from the printed page. Other documents keep
//! the signs they print (a corrected invoice, 384, may legitimately total a negative
//! amount), and on such a document the allowances, charges and prepaid amounts, which the
//! reader finds as magnitudes, carry the same negative sign (EN 16931 states them in the
//! document's direction: net + charges - allowances = basis, gross - prepaid = due).

use docpipe_core::InvoiceResult;
use rust_decimal::Decimal;

use super::amount::format_amount;

/// Totals that carry the document's direction as printed.
const SIGNED_TOTALS: [&str; 5] = [
    "net_total",
    "tax_basis_total",
    "tax_total",
    "gross_total",
    "due_total",
];

/// Totals the reader finds as magnitudes, whatever the document's direction.
const MAGNITUDES: [&str; 3] = ["allowance_total", "charge_total", "prepaid_total"];

/// Turns a credit note printed with negative amounts into the standard's positive form:
/// when the type code is 381 and the gross (or, failing it, the amount due or the net)
/// total is negative, every signed total, line amount and VAT subtotal changes sign.
pub(super) fn amounts_as_the_standard_states(result: &mut InvoiceResult) {
    let Some(lead) = ["gross_total", "due_total", "net_total", "tax_basis_total"]
        .into_iter()
        .find_map(|f| result.amount(f))
    else {
        return;
    };
    if lead >= Decimal::ZERO {
        return;
    }
    if result.value("type_code") != Some("381") {
        // A document that totals a negative amount: its magnitudes take its sign.
        for name in MAGNITUDES {
            if let Some(field) = result.fields.get_mut(name)
                && let Ok(v) = field.value.parse::<Decimal>()
                && v > Decimal::ZERO
            {
                field.value = format_amount(-v);
            }
        }
        return;
    }
    for name in SIGNED_TOTALS {
        if let Some(field) = result.fields.get_mut(name)
            && let Ok(v) = field.value.parse::<Decimal>()
        {
            field.value = format_amount(-v);
        }
    }
    for name in MAGNITUDES {
        if let Some(field) = result.fields.get_mut(name)
            && let Ok(v) = field.value.parse::<Decimal>()
            && v < Decimal::ZERO
        {
            field.value = format_amount(-v);
        }
    }
    for line in &mut result.lines {
        line.net_amount = -line.net_amount;
    }
    for t in &mut result.tax_breakdown {
        t.basis = -t.basis;
        t.tax = -t.tax;
    }
}

#[cfg(test)]
mod tests {
    use docpipe_core::{Field, LineItem, ResultSource, TaxSubtotal};

    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn printed(type_code: &str, sign: &str) -> InvoiceResult {
        let mut r = InvoiceResult::new(ResultSource::Visual);
        r.set("type_code", Field::new(type_code, 0.9));
        for (k, v) in [
            ("net_total", "100.00"),
            ("tax_total", "19.00"),
            ("gross_total", "119.00"),
            ("due_total", "119.00"),
        ] {
            r.set(k, Field::new(format!("{sign}{v}"), 0.95));
        }
        r.set("prepaid_total", Field::new("0.00", 0.9));
        r.lines = vec![LineItem {
            description: "Returned goods".into(),
            net_amount: d(&format!("{sign}100.00")),
            confidence: 0.9,
            ..LineItem::default()
        }];
        r.tax_breakdown = vec![TaxSubtotal {
            rate: d("19"),
            basis: d(&format!("{sign}100.00")),
            tax: d(&format!("{sign}19.00")),
        }];
        r
    }

    #[test]
    fn a_credit_note_printed_negative_is_reported_positive() {
        let mut r = printed("381", "-");
        amounts_as_the_standard_states(&mut r);
        assert_eq!(r.value("net_total"), Some("100.00"));
        assert_eq!(r.value("tax_total"), Some("19.00"));
        assert_eq!(r.value("gross_total"), Some("119.00"));
        assert_eq!(r.value("due_total"), Some("119.00"));
        assert_eq!(r.value("prepaid_total"), Some("0.00"));
        assert_eq!(r.lines[0].net_amount, d("100.00"));
        assert_eq!(r.tax_breakdown[0].basis, d("100.00"));
        assert_eq!(r.tax_breakdown[0].tax, d("19.00"));
    }

    #[test]
    fn a_credit_note_printed_positive_stays_positive() {
        let mut r = printed("381", "");
        let before = r.clone();
        amounts_as_the_standard_states(&mut r);
        assert_eq!(r, before);
    }

    #[test]
    fn other_documents_keep_their_printed_sign() {
        for code in ["380", "384"] {
            let mut r = printed(code, "-");
            let before = r.clone();
            amounts_as_the_standard_states(&mut r);
            assert_eq!(r, before, "{code}");
        }
    }

    /// An invoice that totals a negative amount states its allowances, charges and
    /// prepaid amounts negative too, so that its arithmetic closes as printed.
    #[test]
    fn magnitudes_take_the_sign_of_a_negative_invoice() {
        for (sign, expected) in [("-", "-10.00"), ("", "10.00")] {
            let mut r = printed("380", sign);
            for f in MAGNITUDES {
                r.set(f, Field::new("10.00", 0.9));
            }
            amounts_as_the_standard_states(&mut r);
            for f in MAGNITUDES {
                assert_eq!(r.value(f), Some(expected), "{f} with sign {sign:?}");
            }
        }
        // A credit note printed negative becomes positive, magnitudes included.
        let mut r = printed("381", "-");
        r.set("allowance_total", Field::new("10.00", 0.9));
        amounts_as_the_standard_states(&mut r);
        assert_eq!(r.value("allowance_total"), Some("10.00"));
    }
}
