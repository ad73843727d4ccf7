//! Document-level allowances and charges printed as rows of their own, usually under the
//! invoice lines: "REMISE : Remise commerciale 20,00% sur 200,00 EUR -40,00", "Zuschlag
//! Fracht 10,00". EN 16931 keeps them out of the line total: net (the lines) + charges -
//! allowances = tax basis. A row counts when one of its first cells names an allowance or
//! a charge and a later cell ends it with an amount.

use rust_decimal::Decimal;

use super::amount::{parse_amount, parse_percent};
use super::layout::{Layout, Row};
use super::text::fold;

/// Words that name an allowance (a reduction) in the six languages.
const ALLOWANCE_WORDS: [&str; 11] = [
    "remise",
    "rabatt",
    "nachlass",
    "abschlag",
    "discount",
    "allowance",
    "reduction",
    "korting",
    "sconto",
    "descuento",
    "bonificacion",
];

/// Words that name a charge (a surcharge) in the six languages.
const CHARGE_WORDS: [&str; 8] = [
    "charge",
    "zuschlag",
    "aufschlag",
    "surcharge",
    "toeslag",
    "maggiorazione",
    "recargo",
    "supplement",
];

/// The allowances and charges found: their magnitudes, and what they add to the total
/// as printed (a row prints its contribution with its sign: "-5,00" for an allowance on
/// an invoice, "5,00" for the same allowance on one whose amounts are all negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Adjustments {
    pub allowances: Decimal,
    pub charges: Decimal,
    pub contribution: Decimal,
}

impl Adjustments {
    pub(crate) fn any(self) -> bool {
        !self.allowances.is_zero() || !self.charges.is_zero()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allowance,
    Charge,
}

/// Every allowance and charge row of the document, summed.
pub(super) fn adjustments(layout: &Layout) -> Adjustments {
    let mut out = Adjustments::default();
    for row in &layout.rows {
        if let Some((kind, v)) = adjustment_row(row) {
            out.contribution += v;
            match kind {
                Kind::Allowance => out.allowances += v.abs(),
                Kind::Charge => out.charges += v.abs(),
            }
        }
    }
    out
}

/// Whether a row is an allowance or charge row.
pub(super) fn is_adjustment(row: &Row) -> bool {
    adjustment_row(row).is_some()
}

/// Whether a (folded) description names an allowance or a charge: one of its words is an
/// allowance or charge word, or starts with one ("Rabattstaffel" does not count, "Rabatt:"
/// does).
pub(super) fn names_adjustment(folded: &str) -> bool {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| ALLOWANCE_WORDS.contains(&w) || CHARGE_WORDS.contains(&w))
}

fn adjustment_row(row: &Row) -> Option<(Kind, Decimal)> {
    let cells = row.cells();
    let (kind, cell) = cells.iter().take(3).enumerate().find_map(|(ci, &(s, e))| {
        row.words.get(s..e)?.iter().find_map(|w| {
            let f = fold(&w.text);
            let t = f.trim_matches(|c: char| !c.is_alphanumeric());
            if ALLOWANCE_WORDS.contains(&t) {
                Some((Kind::Allowance, ci))
            } else if CHARGE_WORDS.contains(&t) {
                Some((Kind::Charge, ci))
            } else {
                None
            }
        })
    })?;
    // The row's value: its last amount with decimals that is not a rate, in a later cell.
    let (&(start, _), _) = cells.get(cell + 1..).and_then(|c| c.split_first())?;
    let mut i = row.words.len();
    while i > start {
        i -= 1;
        let w = row.words.get(i)?;
        let next_is_percent = row
            .words
            .get(i + 1)
            .is_some_and(|n| n.text.starts_with('%'));
        if w.text.contains('%')
            || next_is_percent
            || parse_percent(&w.text, false).is_some()
            || matches!(w.text.as_str(), "-" | "–" | "−")
        {
            // A rate, or a dash where no rate applies.
            continue;
        }
        if let Some(a) = parse_amount(&w.text) {
            if a.has_decimals {
                // A sign printed apart: "- 1,40".
                let apart = i > start
                    && row
                        .words
                        .get(i - 1)
                        .is_some_and(|p| matches!(p.text.as_str(), "-" | "–" | "−"));
                return Some((kind, if apart { -a.value } else { a.value }));
            }
            continue;
        }
        // A currency code or symbol, or a tax category code "(K)", after the amount.
        let category = w.text.starts_with('(')
            && w.text.ends_with(')')
            && w.text.chars().filter(|c| c.is_alphanumeric()).count() <= 3;
        if category || super::currency::currency_of_token(&w.text).is_some() {
            continue;
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::layout::testdoc::doc;
    use super::*;

    #[test]
    fn allowance_and_charge_rows_are_summed() {
        let d = doc(&[
            (50.0, 300.0, "100"),
            (120.0, 300.0, "REMISE"),
            (165.0, 300.0, ":"),
            (175.0, 300.0, "Remise"),
            (215.0, 300.0, "commerciale"),
            (330.0, 300.0, "20,00%"),
            (380.0, 300.0, "sur"),
            (400.0, 300.0, "200,00"),
            (440.0, 300.0, "EUR"),
            (480.0, 300.0, "-40,00"),
            (540.0, 300.0, "20,00%"),
            (50.0, 315.0, "AAA"),
            (120.0, 315.0, "CHARGE"),
            (165.0, 315.0, ":"),
            (175.0, 315.0, "Frais"),
            (480.0, 315.0, "20,00"),
            (540.0, 315.0, "20,00%"),
            (50.0, 330.0, "100"),
            (120.0, 330.0, "REMISE"),
            (165.0, 330.0, ":"),
            (175.0, 330.0, "Remise"),
            (470.0, 330.0, "-"),
            (480.0, 330.0, "1,40"),
            (540.0, 330.0, "20,00%"),
        ]);
        let a = adjustments(&Layout::new(&d));
        assert_eq!(a.allowances, Decimal::new(4140, 2));
        assert_eq!(a.charges, Decimal::new(2000, 2));
        assert_eq!(a.contribution, Decimal::new(-2140, 2));
    }

    #[test]
    fn headers_and_prose_are_no_adjustments() {
        let d = doc(&[
            (50.0, 100.0, "Description"),
            (300.0, 100.0, "Charge"),
            (330.0, 100.0, "(+)"),
            (480.0, 100.0, "Total"),
            (50.0, 130.0, "Skonto"),
            (100.0, 130.0, "2%"),
            (130.0, 130.0, "bis"),
            (150.0, 130.0, "06.09.2026"),
        ]);
        assert!(!adjustments(&Layout::new(&d)).any());
    }
}
