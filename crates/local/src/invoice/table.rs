//! Tables: the VAT breakdown (rows where basis x rate = tax) and line items (rows under a
//! header with description and amount columns, matched by column alignment).

use std::sync::LazyLock;

use docpipe_core::{LineItem, TaxSubtotal};
use regex::Regex;
use rust_decimal::Decimal;

use super::amount::{parse_amount, parse_percent};
use super::layout::{Layout, Row};
use super::text::fold;

const TAX_WORDS: [&str; 10] = [
    "steuer",
    "ust",
    "mwst",
    "vat",
    "tax",
    "btw",
    "tva",
    "gst",
    "%",
    "umsatzsteuer",
];

fn has_tax_word(row: &Row) -> bool {
    let t = fold(&row.text());
    TAX_WORDS.iter().any(|k| t.contains(k))
}

/// Numbers on a row: `(value, is_percent, has_decimals, word index)`.
fn numbers(row: &Row) -> Vec<(Decimal, bool, bool, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < row.words.len() {
        let Some(w) = row.words.get(i) else {
            break;
        };
        let next_pct = row.words.get(i + 1).is_some_and(|n| n.text == "%");
        if let Some(p) = parse_percent(&w.text, false) {
            out.push((p, true, false, i));
        } else if let Some(a) = parse_amount(&w.text) {
            if next_pct {
                out.push((a.value, true, a.has_decimals, i));
                i += 1;
            } else {
                out.push((a.value, false, a.has_decimals, i));
            }
        }
        i += 1;
    }
    out
}

/// Every percentage in a text: `19 %`, `(19%)`, `7,5 %`.
pub(super) fn percents(text: &str) -> Vec<Decimal> {
    static PCT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:^|[^\d.,])(\d{1,2}(?:[.,]\d{1,2})?)\s*%").expect("valid regex")
    });
    PCT.captures_iter(text)
        .filter_map(|c| c.get(1))
        .filter_map(|m| parse_percent(m.as_str(), true))
        .collect()
}

/// VAT subtotals: rows holding a rate and two amounts with basis x rate / 100 = tax.
/// Rows of the line tables (`tables`: header to last line) are invoice lines, and rows
/// naming an allowance or a charge ("5,00% sur 28,00 EUR -1,40") are adjustments, not
/// VAT subtotals, however well their figures multiply.
pub(super) fn tax_breakdown(layout: &Layout, tables: &[(usize, usize)]) -> Vec<TaxSubtotal> {
    let mut out: Vec<TaxSubtotal> = Vec::new();
    let tol = Decimal::new(11, 3);
    let taxy: Vec<bool> = layout.rows.iter().map(has_tax_word).collect();
    for (ri, row) in layout.rows.iter().enumerate() {
        if tables.iter().any(|&(s, e)| ri > s && ri < e) || super::adjustments::is_adjustment(row) {
            continue;
        }
        let context = (ri.saturating_sub(4)..=ri).any(|i| {
            layout.rows.get(i).is_some_and(|r| r.page == row.page)
                && taxy.get(i).copied().unwrap_or(false)
        });
        if !context {
            continue;
        }
        let mut nums = numbers(row);
        // A breakdown row has a handful of numbers; bound the pair search on odd rows.
        nums.truncate(16);
        let rates: Vec<Decimal> = nums
            .iter()
            .filter(|(v, pct, dec, _)| {
                *pct || (*v <= Decimal::from(30) && (!dec || v.scale() <= 1))
            })
            .map(|n| n.0)
            .collect();
        let amounts: Vec<(Decimal, usize)> = nums
            .iter()
            .filter(|(v, pct, dec, _)| !pct && *dec && v.scale() == 2)
            .map(|n| (n.0, n.3))
            .collect();
        let mut found = None;
        'search: for rate in &rates {
            for (bi, (b, _)) in amounts.iter().enumerate() {
                for (t, _) in amounts.iter().skip(bi + 1) {
                    // A credit note may print its breakdown negative: basis and tax
                    // then share the sign.
                    let negative = *b < Decimal::ZERO;
                    if b.is_zero()
                        || (!negative && t.is_sign_negative())
                        || (negative && *t > Decimal::ZERO)
                    {
                        continue;
                    }
                    let expect = *b * *rate / Decimal::ONE_HUNDRED;
                    let ok = if rate.is_zero() {
                        t.is_zero()
                            && (taxy.get(ri).copied().unwrap_or(false) || row.words.len() <= 6)
                    } else {
                        (expect - *t).abs() <= tol && b.abs() > t.abs()
                    };
                    if ok {
                        found = Some(TaxSubtotal {
                            rate: *rate,
                            basis: *b,
                            tax: *t,
                        });
                        break 'search;
                    }
                }
            }
        }
        if let Some(t) = found
            && !out.iter().any(|o| o.rate == t.rate)
        {
            out.push(t);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Desc,
    Qty,
    Price,
    Amount,
    Tax,
}

fn role(word: &str) -> Option<Col> {
    let f = fold(word);
    let f = f.trim_matches(|c: char| !c.is_alphanumeric());
    let r = match f {
        "bezeichnung"
        | "beschreibung"
        | "artikelbeschreibung"
        | "artikelbezeichnung"
        | "description"
        | "omschrijving"
        | "designation"
        | "artikel"
        | "product"
        | "item"
        | "title"
        | "leistung"
        | "produkt"
        | "libelle"
        | "article"
        | "service" => Col::Desc,
        "menge" | "anzahl" | "qty" | "quantity" | "aantal" | "hoeveelheid" | "nombre" | "qte"
        | "quantite" => Col::Qty,
        "preis" | "einzelpreis" | "nettopreis" | "price" | "rate" | "prijs" | "prix"
        | "stuckpreis" | "vk-preis" | "p.u." | "unit" => Col::Price,
        "betrag" | "nettobetrag" | "gesamt" | "gesamtpreis" | "amount" | "total" | "bedrag"
        | "montant" | "zeilenbetrag" | "nettowert" | "summe" | "positionsbetrag" | "netto" => {
            Col::Amount
        }
        "ust" | "mwst" | "steuersatz" | "vat" | "tax" | "taxes" | "btw" | "tva" | "mwst-%" => {
            Col::Tax
        }
        _ => return None,
    };
    Some(r)
}

pub(super) struct Header {
    row: usize,
    cols: Vec<(Col, f32, f32)>,
}

pub(super) fn header(row: &Row, ri: usize) -> Option<Header> {
    let cols: Vec<(Col, f32, f32)> = row
        .words
        .iter()
        .filter_map(|w| role(&w.text).map(|r| (r, w.bbox.x0, w.bbox.x1)))
        .collect();
    let has = |c: Col| cols.iter().any(|x| x.0 == c);
    (cols.len() >= 3 && has(Col::Amount) && (has(Col::Desc) || has(Col::Qty)))
        .then_some(Header { row: ri, cols })
}

fn is_totals_row(row: &Row) -> bool {
    let t = fold(&row.text());
    // Section headings end a table by themselves.
    const SECTIONS: [&str; 4] = [
        "steueraufschlusselung",
        "umsatzsteueraufschlusselung",
        "zahlungsbedingungen",
        "payment terms",
    ];
    if SECTIONS.iter().any(|k| t.starts_with(k)) {
        return true;
    }
    // Totals labels end it when they carry a number (a header continuation such as
    // "Ohne MwSt." does not).
    if !t.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    const STARTS: [&str; 20] = [
        "positionssumme",
        "subtotal",
        "sub total",
        "summe",
        "total",
        "totaal",
        "nettobetrag",
        "netto",
        "brutto",
        "rechnungssumme",
        "zwischensumme",
        "exclusief",
        "net total",
        "subtotaal",
        "total ht",
        "gesamtbetrag",
        "warenwert",
        "ust",
        "mwst",
        "vat",
    ];
    STARTS.iter().chain(&["tax"]).any(|k| {
        t.starts_with(k) && t[k.len()..].starts_with(|c: char| !c.is_alphabetic())
            || k.len() >= 6
                && t.contains(&format!(" {k}"))
                && row.words.len() <= 6
                && !t.contains("pos")
    })
}

/// Allowances and charges printed inside a table are not invoice lines.
fn is_allowance_row(desc: &str) -> bool {
    let t = fold(desc);
    [
        "rabatt",
        "abschlag",
        "zuschlag",
        "skonto",
        "discount",
        "allowance",
        "remise",
        "korting",
    ]
    .iter()
    .any(|k| t.contains(k))
        || super::adjustments::names_adjustment(&t)
}

/// A sub-header inside a table: words only (and `%`), one of them naming an amount.
fn is_subheader(row: &Row) -> bool {
    row.words.len() >= 2
        && row
            .words
            .iter()
            .all(|w| !w.text.chars().any(|c| c.is_ascii_digit()))
        && row.words.iter().any(|w| role(&w.text) == Some(Col::Amount))
}

/// The number on `row` in the column `(x0, x1)`: the word overlapping it most (for the
/// right-aligned amount column, the one whose right edge is nearest).
fn in_col(
    row: &Row,
    x0: f32,
    x1: f32,
    want_pct: bool,
    right_aligned: bool,
) -> Option<(Decimal, usize)> {
    let mut best: Option<(f32, Decimal, usize)> = None;
    for (i, w) in row.words.iter().enumerate() {
        let b = w.bbox;
        if b.x1 < x0 - 0.04 || b.x0 > x1 + 0.02 {
            continue;
        }
        let text = if row
            .words
            .get(i + 1)
            .is_some_and(|n| n.text == "%" || n.text == "€")
        {
            format!(
                "{}{}",
                w.text,
                row.words.get(i + 1).map_or("", |n| n.text.as_str())
            )
        } else {
            w.text.clone()
        };
        let value = if want_pct {
            parse_percent(&text, true)
        } else {
            parse_amount(&text).map(|a| a.value)
        };
        let Some(v) = value else {
            continue;
        };
        let distance = if right_aligned {
            (b.x1 - x1).abs()
        } else {
            ((b.x0 + b.x1) / 2.0 - (x0 + x1) / 2.0).abs()
        };
        if best.is_none_or(|(d, _, _)| distance < d) {
            best = Some((distance, v, i));
        }
    }
    best.map(|(_, v, i)| (v, i))
}

/// Line items under each table header, and the row ranges (header to last body row) the
/// tables cover.
pub(super) fn line_items(layout: &Layout) -> (Vec<LineItem>, Vec<(usize, usize)>) {
    let mut out = Vec::new();
    let mut regions = Vec::new();
    let mut ri = 0;
    while ri < layout.rows.len() {
        let Some(h) = layout.rows.get(ri).and_then(|r| header(r, ri)) else {
            ri += 1;
            continue;
        };
        let Some(&(_, ax0, ax1)) = h.cols.iter().rev().find(|c| c.0 == Col::Amount) else {
            ri += 1;
            continue;
        };
        let col = |c: Col| h.cols.iter().find(|x| x.0 == c).map(|x| (x.1, x.2));
        let desc_x = col(Col::Desc).map(|d| d.0);
        let mut pending: Option<LineItem> = None;
        let mut r = h.row + 1;
        while r < layout.rows.len() {
            let Some(row) = layout.rows.get(r) else {
                break;
            };
            if is_totals_row(row) || header(row, r).is_some() || is_subheader(row) {
                break;
            }
            let amount = in_col(row, ax0, ax1, false, true).filter(|(v, i)| {
                v.scale() == 2
                    && row
                        .words
                        .get(*i)
                        .is_some_and(|w| w.text.contains([',', '.']))
            });
            // Description: words in or right of the description column, left of numbers.
            let desc_words: Vec<&str> = row
                .words
                .iter()
                .filter(|w| desc_x.is_none_or(|x| w.bbox.x1 > x - 0.02) && w.bbox.x1 < ax0 - 0.02)
                .filter(|w| {
                    parse_amount(&w.text).is_none() && parse_percent(&w.text, false).is_none()
                })
                .map(|w| w.text.as_str())
                .collect();
            let desc = desc_words.join(" ");
            let has_desc = desc_words
                .iter()
                .any(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
                && !is_allowance_row(&desc);
            let qty = col(Col::Qty)
                .and_then(|(x0, x1)| in_col(row, x0, x1, false, false))
                .map(|q| q.0);
            let price = col(Col::Price)
                .and_then(|(x0, x1)| in_col(row, x0, x1, false, false))
                .map(|q| q.0);
            let starts = has_desc && (qty.is_some() || price.is_some() || amount.is_some());
            if starts {
                if let Some(p) = pending.take()
                    && !p.net_amount.is_zero()
                {
                    out.push(p);
                }
                let tax_rate = col(Col::Tax)
                    .and_then(|(x0, x1)| in_col(row, x0, x1, true, false))
                    .map(|q| q.0);
                pending = Some(LineItem {
                    line_id: None,
                    description: desc,
                    quantity: qty,
                    unit_price: price,
                    net_amount: amount.map(|a| a.0).unwrap_or_default(),
                    tax_rate,
                    confidence: if amount.is_some() { 0.7 } else { 0.6 },
                    page: Some(row.page),
                    bbox: row.span_box(0, row.words.len()),
                });
            } else if let (Some(p), Some((a, _))) = (pending.as_mut(), amount)
                && p.net_amount.is_zero()
            {
                p.net_amount = a;
            }
            r += 1;
        }
        if let Some(p) = pending.take()
            && !p.net_amount.is_zero()
        {
            out.push(p);
        }
        regions.push((h.row, r));
        ri = r.max(ri + 1);
    }
    (out, regions)
}
