//! Seller and buyer names: under a heading ("Verkäufer", "Bill to", ...), in a "Name:"
//! row of the block, or failing that from the sender line above the address window and
//! the letterhead.

use docpipe_core::Field;

use super::labels::LABELS;
use super::layout::{Layout, Row};
use super::text::fold;
use super::{Hit, hits_of};

const LEGAL_FORMS: [&str; 22] = [
    "gmbh", "ag", "kg", "ohg", "gbr", "ug", "ltd", "limited", "inc", "llc", "corp", "plc", "bv",
    "nv", "sas", "sarl", "sa", "srl", "spa", "pvt", "ev", "se",
];

pub(super) fn parties(layout: &Layout, hits: &[Hit]) -> (Option<Field>, Option<Field>) {
    let buyer =
        by_heading(layout, hits, "buyer_name").or_else(|| sender_line(layout).and_then(|(_, b)| b));
    let seller = by_heading(layout, hits, "seller_name")
        .or_else(|| sender_line(layout).map(|(f, _)| f))
        .or_else(|| {
            // The letterhead guess must not be the buyer's address block.
            letterhead(layout).filter(|s| buyer.as_ref().is_none_or(|b| b.value != s.value))
        });
    (seller, buyer)
}

fn by_heading(layout: &Layout, hits: &[Hit], field: &str) -> Option<Field> {
    let mut best: Option<(f32, Field)> = None;
    for h in hits_of(hits, field) {
        let Some(row) = layout.rows.get(h.at.row) else {
            continue;
        };
        let Some(span) = row.span_box(h.at.start, h.at.end) else {
            continue;
        };
        let cell = row.cell_of.get(h.at.start).copied();
        // "Käufer/Leistungsempfänger": the heading runs over adjacent headings of the field.
        let mut end = h.at.end;
        for o in hits_of(hits, field) {
            if o.at.row == h.at.row && o.at.start == end {
                end = o.at.end;
            }
        }
        while row.words.get(end).is_some_and(|w| {
            let t = w.norm.join(" ");
            LABELS.iter().any(|l| l.field == field && l.text == t)
        }) {
            end += 1;
        }
        // A value in the heading's own cell: "Sold By : WS Retail Services".
        let rest: Vec<usize> = (end..row.words.len())
            .filter(|&i| row.cell_of.get(i).copied() == cell)
            .collect();
        let mut found = None;
        if let (Some(&s), Some(&e)) = (rest.first(), rest.last()) {
            found = name_from(row, s, e + 1).map(|n| (h.at.row, s, e + 1, n, 0.8));
        }
        if found.is_none() && rest.is_empty() {
            let limit = row.bbox.y1 + row.height() * 8.0;
            for (ri, r) in layout.rows.iter().enumerate().skip(h.at.row + 1).take(7) {
                if r.page != row.page || r.bbox.y0 > limit {
                    break;
                }
                // "Name: Lieferant GmbH" inside the block.
                if r.words
                    .first()
                    .is_some_and(|w| fold(&w.text).trim_end_matches(':') == "name")
                    && r.words
                        .first()
                        .is_some_and(|w| (w.bbox.x0 - span.x0).abs() < 0.05)
                {
                    found = name_from(r, 1, r.words.len()).map(|n| (ri, 1, r.words.len(), n, 0.9));
                    break;
                }
                let Some((s, e)) = r.cells().into_iter().find(|&(s, e)| {
                    r.span_box(s, e).is_some_and(|b| {
                        (b.x0 - span.x0).abs() < 0.03
                            || (b.x0 < span.x1 && b.x1 > span.x0 && b.x0 > span.x0 - 0.03)
                    })
                }) else {
                    continue;
                };
                let first = r.words.get(s).map(|w| fold(&w.text)).unwrap_or_default();
                if is_id_label(&first) {
                    continue;
                }
                if let Some(n) = name_from(r, s, e) {
                    found = Some((ri, s, e, n, 0.75));
                    break;
                }
            }
        }
        if let Some((ri, s, e, name, conf)) = found
            && let Some(r) = layout.rows.get(ri)
            && let Some(b) = r.span_box(s, e)
        {
            let score = h.label.weight * conf;
            if best.as_ref().is_none_or(|(bs, _)| score > *bs) {
                best = Some((
                    score,
                    Field::new(name, score * r.span_confidence(s, e)).at(r.page, b),
                ));
            }
        }
    }
    best.map(|(_, f)| f)
}

fn is_id_label(first: &str) -> bool {
    let t = first.trim_end_matches([':', '.']);
    const EXACT: [&str; 18] = [
        "nummer",
        "globale",
        "gln",
        "ust",
        "tel",
        "telefon",
        "fax",
        "kundennr",
        "lief",
        "steuernummer",
        "id",
        "vat",
        "email",
        "e",
        "nr",
        "customer",
        "account",
        "attn",
    ];
    EXACT.contains(&t)
        || ["kunden-", "lief-", "ust-", "kd-", "e-mail"]
            .iter()
            .any(|k| t.starts_with(k))
}

/// A plausible name from a word span: skips leading `Label:` words; refuses addresses,
/// numbers and e-mail addresses.
fn name_from(row: &Row, s: usize, e: usize) -> Option<String> {
    let mut s = s;
    while s < e
        && row
            .words
            .get(s)
            .is_some_and(|w| w.text.ends_with(':') || w.text == ":")
    {
        s += 1;
    }
    let text = row.text_range(s, e);
    let text = text.trim().trim_end_matches(',').trim();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let digits = text.chars().filter(|c| c.is_ascii_digit()).count();
    if letters < 2
        || digits > letters
        || text.contains('@')
        || text.starts_with(|c: char| c.is_ascii_digit() || c == '(')
    {
        return None;
    }
    Some(text.to_owned())
}

/// The small sender line above an address window ("Firma GmbH • Straße 1 • 12345 Ort"):
/// its first segment is the seller, the first line under it the buyer.
fn sender_line(layout: &Layout) -> Option<(Field, Option<Field>)> {
    let first_page = layout.rows.first()?.page;
    for (ri, r) in layout.rows.iter().enumerate() {
        if r.page != first_page || r.bbox.y0 > 0.4 {
            continue;
        }
        let seps = r
            .words
            .iter()
            .filter(|w| matches!(w.text.as_str(), "●" | "•" | "·" | "|" | "-" | "–" | "/"))
            .count();
        if seps < 2 {
            continue;
        }
        let end = r
            .words
            .iter()
            .position(|w| matches!(w.text.as_str(), "●" | "•" | "·" | "|" | "-" | "–" | "/"))?;
        let name = name_from(r, 0, end)?;
        let b = r.span_box(0, end)?;
        let seller = Field::new(name, 0.6).at(r.page, b);
        let x0 = r.words.first()?.bbox.x0;
        let buyer = layout
            .rows
            .iter()
            .enumerate()
            .skip(ri + 1)
            .take(3)
            .find_map(|(_, n)| {
                let (s, e) = n.cells().into_iter().find(|&(s, _)| {
                    n.words
                        .get(s)
                        .is_some_and(|w| (w.bbox.x0 - x0).abs() < 0.03)
                })?;
                let name = name_from(n, s, e)?;
                Some(Field::new(name, 0.55).at(n.page, n.span_box(s, e)?))
            });
        return Some((seller, buyer));
    }
    None
}

/// The first cell near the top of the first page naming a company (legal form).
fn letterhead(layout: &Layout) -> Option<Field> {
    let first_page = layout.rows.first()?.page;
    for r in &layout.rows {
        if r.page != first_page || r.bbox.y0 > 0.3 {
            continue;
        }
        for (s, e) in r.cells() {
            let has_form = r.words.get(s..e).unwrap_or_default().iter().any(|w| {
                let t = fold(&w.text);
                let t = t
                    .trim_matches(|c: char| !c.is_alphanumeric())
                    .replace('.', "");
                LEGAL_FORMS.contains(&t.as_str())
            });
            if has_form && let Some(name) = name_from(r, s, e) {
                return Some(Field::new(name, 0.45).at(r.page, r.span_box(s, e)?));
            }
        }
    }
    // Last resort: the first cell of the page that reads like a name (the sender's
    // letterhead usually comes first). A guess, and marked as one.
    let r = layout.rows.iter().find(|r| r.page == first_page)?;
    let (s, e) = r.cells().into_iter().next()?;
    let text = fold(&r.text_range(s, e));
    const NOT_A_NAME: [&str; 12] = [
        "invoice", "rechnung", "facture", "factuur", "receipt", "quittung", "page", "seite",
        "beispiel", "copy", "kopie", "bill",
    ];
    if NOT_A_NAME.iter().any(|k| text.contains(k)) || r.words.len() > 8 {
        return None;
    }
    let name = name_from(r, s, e)?;
    Some(Field::new(name, 0.3).at(r.page, r.span_box(s, e)?))
}
