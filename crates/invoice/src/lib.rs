//! Rule-based invoice field extraction from the document model: labels in English,
//! German, French and Dutch, values read by layout (to the right of a label on its row,
//! or in the aligned cell below), amounts and dates in every common locale format, and
//! arithmetic (net + tax = gross) as evidence when candidates compete. No per-vendor
//! templates.

mod adjustments;
mod amount;
mod credit;
mod currency;
mod date;
mod labels;
mod layout;
mod parties;
mod table;
mod text;

pub mod einvoice;

use std::collections::BTreeMap;

use async_trait::async_trait;
use docpipe_core::{BBox, Document, Extractor, Field, InvoiceResult, ResultSource, StageError};
use rust_decimal::Decimal;

pub use amount::{Amount, format_amount, parse_amount, parse_percent};
pub use currency::{currency_of_name, currency_of_token};
pub use date::{DateOrder, find_date, find_dates};

use labels::Label;
use layout::{LabelHit, Layout, Row};
use text::{fold, is_wordlike};

/// The local extractor: the embedded e-invoice XML when the document carries one (and
/// `embedded_xml` is on), else the rules over the printed invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleExtractor {
    /// Read Factur-X / ZUGFeRD / XRechnung XML attachments first. Off, only the printed
    /// text counts (what an accuracy figure for the visual rules needs).
    pub embedded_xml: bool,
}

impl Default for RuleExtractor {
    fn default() -> Self {
        Self { embedded_xml: true }
    }
}

impl RuleExtractor {
    /// Embedded e-invoice XML first, then the printed text.
    pub fn new() -> Self {
        Self::default()
    }

    /// The printed text only.
    pub fn visual_only() -> Self {
        Self {
            embedded_xml: false,
        }
    }
}

#[async_trait]
impl Extractor for RuleExtractor {
    async fn extract_invoice(
        &self,
        document: &Document,
        original: Option<&[u8]>,
    ) -> Result<InvoiceResult, StageError> {
        let mut note = None;
        if self.embedded_xml
            && let Some(bytes) = original
            && crate::einvoice::looks_like_pdf(bytes)
        {
            let read = crate::einvoice::read_embedded_bounded(
                bytes.to_vec(),
                crate::einvoice::EinvoiceLimits::default(),
            )
            .await;
            match read {
                Ok(Some(result)) => return Ok(result),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "embedded e-invoice unusable; reading the printed text");
                    note = Some(e);
                }
            }
        }
        let mut result = extract_invoice(document);
        if let Some(e) = note {
            // Kept by verify: the document claims to be an e-invoice and is not a sound
            // one, which a person should know even when the printed text reads well.
            result.checks.push(docpipe_core::Check {
                name: crate::einvoice::EMBEDDED_XML_CHECK.to_owned(),
                passed: false,
                detail: format!("{e}; read the printed text instead"),
            });
        }
        Ok(result)
    }
}

/// Extracts invoice fields, lines and tax breakdown from a document's visible text.
pub fn extract_invoice(document: &Document) -> InvoiceResult {
    let layout = Layout::new(document);
    let (lines, tables) = table::line_items(&layout);
    // Labels inside the line tables belong to a line (a service period, an order
    // reference), not to the document.
    let hits: Vec<Hit> = label_hits(&layout)
        .into_iter()
        .filter(|h| {
            !(matches!(h.label.field, "invoice_number" | "issue_date" | "due_date")
                && tables.iter().any(|&(s, e)| h.at.row > s && h.at.row < e))
        })
        .collect();
    let mut result = InvoiceResult::new(ResultSource::Visual);

    let currency = currency_field(&layout, &hits);
    let order = if currency.as_ref().is_some_and(|f| f.value == "USD") {
        DateOrder::MonthFirst
    } else {
        DateOrder::DayFirst
    };
    if let Some(f) = currency {
        result.set("currency", f);
    }
    if let Some(f) = type_code(&layout) {
        result.set("type_code", f);
    }
    if let Some(f) = invoice_number(&layout, &hits) {
        result.set("invoice_number", f);
    }
    for field in ["issue_date", "due_date"] {
        if let Some(f) = date_field(&layout, &hits, field, order) {
            result.set(field, f);
        }
    }
    if let (Some(i), Some(d)) = (
        result.fields.get("issue_date"),
        result.fields.get("due_date"),
    ) && d.value < i.value
    {
        // A due date before the issue date was misread.
        result.fields.remove("due_date");
    }
    let (seller, buyer) = parties::parties(&layout, &hits);
    if let Some(f) = seller {
        result.set("seller_name", f);
    }
    if let Some(f) = buyer {
        result.set("buyer_name", f);
    }
    result.tax_breakdown = table::tax_breakdown(&layout, &tables);
    result.lines = lines;
    totals(&layout, &hits, &tables, &mut result);
    credit::amounts_as_the_standard_states(&mut result);
    result
}

/// The visual rows the extractor sees, cells separated by ` | ` (for debugging rules).
#[doc(hidden)]
pub fn layout_rows(document: &Document) -> Vec<String> {
    let layout = Layout::new(document);
    layout
        .rows
        .iter()
        .map(|r| {
            let cells: Vec<String> = r
                .cells()
                .into_iter()
                .map(|(s, e)| r.text_range(s, e))
                .collect();
            format!(
                "p{} y{:.3} x{:.3}: {}",
                r.page,
                r.bbox.y0,
                r.bbox.x0,
                cells.join(" | ")
            )
        })
        .collect()
}

/// A label found in the layout, after dropping matches contained in a longer match.
#[derive(Debug, Clone, Copy)]
struct Hit {
    label: &'static Label,
    at: LabelHit,
}

fn label_hits(layout: &Layout) -> Vec<Hit> {
    let mut all: Vec<Hit> = Vec::new();
    for (ri, row) in layout.rows.iter().enumerate() {
        for (i, token) in layout.tokens_of(ri).enumerate() {
            let Some(labels) = labels::BY_FIRST_TOKEN.get(token) else {
                continue;
            };
            for (label, toks) in labels {
                let Some(at) = layout.find_at(ri, i, toks) else {
                    continue;
                };
                if (label.anywhere || at.at_cell_start || only_qualifiers_before(row, at.start))
                    && !(label.weight < 0.6 && after_article(row, at.start))
                {
                    all.push(Hit { label, at });
                }
            }
        }
    }
    // Leftmost-longest per row, as a tokenizer would: "Factuur datum | Factuur" is a
    // date label and then a number label, not "datum Factuur".
    all.sort_by(|a, b| {
        (a.at.row, a.at.start)
            .cmp(&(b.at.row, b.at.start))
            .then(b.at.len.cmp(&a.at.len))
    });
    let mut out: Vec<Hit> = Vec::new();
    let mut last: Option<(usize, usize, usize)> = None;
    for h in all {
        let keep = match last {
            Some((row, start, end)) if row == h.at.row => {
                h.at.start >= end || (h.at.start == start && h.at.end == end)
            }
            _ => true,
        };
        if keep {
            if last.is_none_or(|(row, start, end)| {
                row != h.at.row || h.at.start != start || h.at.end != end
            }) {
                last = Some((h.at.row, h.at.start, h.at.end));
            }
            out.push(h);
        }
    }
    out
}

/// Labels that only say "number" or "of (date)": whose number or date they give depends
/// on the noun before them ("Rechnung Nr." or "Bestellung Nr.", "Rechnung vom").
const GENERIC_LABELS: [&str; 6] = ["nr", "n", "#", "vom", "du", "dated"];

/// Nouns of the invoice itself, in the six languages (German compounds such as
/// "Handelsrechnung" or "Schlussrechnung" end in "rechnung").
const INVOICE_NOUNS: [&str; 12] = [
    "rechnung",
    "gutschrift",
    "invoice",
    "bill",
    "facture",
    "avoir",
    "factuur",
    "creditnota",
    "fattura",
    "factura",
    "receipt",
    "quittung",
];

/// Nouns of other documents and things that carry numbers and dates on an invoice.
const OTHER_NOUNS: [&str; 30] = [
    "bestellung",
    "auftrag",
    "lieferung",
    "lieferschein",
    "kunde",
    "kunden",
    "vertrag",
    "angebot",
    "version",
    "order",
    "delivery",
    "customer",
    "contract",
    "quote",
    "commande",
    "livraison",
    "client",
    "contrat",
    "devis",
    "bestelling",
    "levering",
    "klant",
    "offerte",
    "ordine",
    "consegna",
    "contratto",
    "pedido",
    "entrega",
    "albaran",
    "contrato",
];

/// Whose number or date a generic label gives: the nearest noun before it on its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Invoice,
    Other,
    Unknown,
}

fn owner_before(row: &Row, start: usize) -> Owner {
    let mut lettered = 0;
    for i in (0..start).rev() {
        let Some(w) = row.words.get(i) else {
            break;
        };
        for t in w.norm.iter().rev() {
            if !t.chars().any(char::is_alphabetic) {
                continue;
            }
            if INVOICE_NOUNS
                .iter()
                .any(|n| t == n || (t.len() > n.len() + 2 && t.ends_with(n) && *n == "rechnung"))
            {
                return Owner::Invoice;
            }
            if OTHER_NOUNS.contains(&t.as_str()) {
                return Owner::Other;
            }
            lettered += 1;
            if lettered >= 4 {
                return Owner::Unknown;
            }
        }
    }
    Owner::Unknown
}

/// A label hit's score: its weight (less when it does not begin its cell); a weak label
/// on a row that names the invoice gains; a generic label ("Nr.", "vom") takes the
/// strength of the noun it belongs to, and belongs to no invoice field after another
/// document's noun (`None`).
fn label_score(h: &Hit, row: &Row) -> Option<f32> {
    let mut score = h.label.weight * if h.at.at_cell_start { 1.0 } else { 0.9 };
    if GENERIC_LABELS.contains(&h.label.text.as_str()) {
        return match owner_before(row, h.at.start) {
            Owner::Invoice => Some(score.max(0.9)),
            Owner::Other => None,
            Owner::Unknown => Some(score),
        };
    }
    let row_text = fold(&row.text());
    if h.label.weight < 0.9
        && [
            "rechnung",
            "gutschrift",
            "invoice",
            "facture",
            "factuur",
            "fattura",
            "factura",
        ]
        .iter()
        .any(|k| row_text.contains(k))
    {
        score += 0.2;
    }
    Some(score)
}

/// Whether the word before `start` is an article, a preposition or a possessive: a bare
/// noun after one is prose ("Références sur la facture", "zu dieser Rechnung", "the
/// invoice"), not a label before its value.
fn after_article(row: &Row, start: usize) -> bool {
    const ARTICLES: [&str; 44] = [
        "the", "of", "on", "to", "for", "this", "your", "our", "der", "die", "das", "den", "dem",
        "des", "zur", "zum", "zu", "dieser", "ihre", "ihrer", "unsere", "la", "le", "les", "l",
        "sur", "cette", "votre", "notre", "het", "van", "op", "deze", "il", "della", "sulla",
        "questa", "el", "del", "esta", "su", "una", "une", "un",
    ];
    start
        .checked_sub(1)
        .and_then(|i| row.words.get(i))
        .is_some_and(|w| {
            let f = fold(&w.text);
            ARTICLES.contains(&f.trim_matches(|c: char| !c.is_alphanumeric()))
        })
}

/// Whether the words before `start` in its cell only qualify a label: a rate ("19 %
/// VAT"), "plus" or "included" ("zuzüglich 19% MwSt.", "incl. VAT"), punctuation. Such a
/// label still names its value; a label after other words is prose ("the VAT number").
fn only_qualifiers_before(row: &Row, start: usize) -> bool {
    const QUALIFYING: [&str; 14] = [
        "zzgl",
        "zuzuglich",
        "plus",
        "add",
        "inkl",
        "incl",
        "including",
        "enthaltene",
        "enthalten",
        "davon",
        "dont",
        "di",
        "cui",
        "de",
    ];
    let cell = row.cell_of.get(start);
    if start == 0 || cell.is_none() {
        return false;
    }
    (0..start)
        .rev()
        .take_while(|&i| row.cell_of.get(i) == cell)
        .all(|i| {
            let Some(w) = row.words.get(i) else {
                return false;
            };
            let f = fold(&w.text);
            let t =
                f.trim_matches(|c: char| !c.is_alphanumeric() && c != '%' && c != ',' && c != '.');
            let t = t.trim_matches(|c: char| c == ',' || c == '.');
            t.is_empty() || t == "%" || parse_percent(t, true).is_some() || QUALIFYING.contains(&t)
        })
}

fn hits_of<'a>(hits: &'a [Hit], field: &'a str) -> impl Iterator<Item = &'a Hit> + 'a {
    hits.iter().filter(move |h| h.label.field == field)
}

/// One candidate value for a field.
#[derive(Debug, Clone)]
struct Candidate {
    value: String,
    score: f32,
    row: usize,
    page: u32,
    bbox: BBox,
    ocr: f32,
}

impl Candidate {
    /// The field, its confidence lowered by the OCR engine's doubt about the words it was
    /// read from: a word read at 0.9 or more costs nothing (Tesseract's confidences above
    /// 90 mark words it reads right), one at 0.6 costs a third.
    fn field(&self, confidence: f32) -> Field {
        Field::new(
            self.value.clone(),
            (confidence * ocr_factor(self.ocr)).clamp(0.0, 1.0),
        )
        .at(self.page, self.bbox)
    }
}

/// How much an OCR word confidence lowers a field's confidence (see `Candidate::field`).
fn ocr_factor(word_confidence: f32) -> f32 {
    (word_confidence / 0.9).clamp(0.0, 1.0)
}

fn conf_of(score: f32) -> f32 {
    (0.5 + 0.45 * score).min(0.95)
}

/// The best candidate, and a confidence from the evidence behind it: how specific its
/// label is (the score: 1.0 names the field outright), whether candidates with another
/// value compete (a rival scoring within 80% of it costs 0.15; none at all adds 0.08),
/// and whether another label led to the same value (adds 0.04).
fn decide(cands: Vec<Candidate>, prefer_late: bool) -> Option<(Candidate, f32)> {
    let chosen = best(cands.clone(), prefer_late)?;
    let agreeing = cands
        .iter()
        .filter(|c| c.value == chosen.value && c.row != chosen.row)
        .count();
    let rival = cands
        .iter()
        .filter(|c| c.value != chosen.value)
        .map(|c| c.score)
        .fold(None, |m: Option<f32>, s| Some(m.map_or(s, |m| m.max(s))));
    let mut conf = 0.5 + 0.45 * chosen.score.min(1.0);
    match rival {
        None => conf += 0.08,
        Some(r) if r >= chosen.score * 0.8 => conf -= 0.15,
        Some(_) => {}
    }
    if agreeing > 0 {
        conf += 0.04;
    }
    Some((chosen, conf.min(0.97)))
}

/// Whether any word after `from` on a row holds a digit (a header row has none).
fn has_number_right(row: &Row, from: usize) -> bool {
    row.words
        .iter()
        .skip(from)
        .any(|w| w.text.chars().any(|c| c.is_ascii_digit()))
}

fn is_filler(word: &str) -> bool {
    let f = fold(word);
    let f = f.trim_matches(|c: char| !c.is_alphanumeric());
    matches!(
        f,
        "" | "no" | "nr" | "n" | "number" | "nummer" | "num" | "numero" | "id" | "of" | "at"
    )
}

// ---------------------------------------------------------------- invoice number

fn invoice_number(layout: &Layout, hits: &[Hit]) -> Option<Field> {
    let mut cands: Vec<Candidate> = Vec::new();
    for h in hits_of(hits, "invoice_number") {
        let Some(row) = layout.rows.get(h.at.row) else {
            continue;
        };
        let Some(mut score) = label_score(h, row) else {
            continue;
        };
        let mut found = None;
        for (i, w) in row.words.iter().enumerate().skip(h.at.end).take(4) {
            if let Some(v) = id_value(&w.text) {
                found = Some((h.at.row, i, i + 1, v));
                break;
            }
            if is_filler(&w.text) || w.text == "#" || w.text == ":" {
                continue;
            }
            break;
        }
        if found.is_none()
            && !has_value_right_id(row, h.at.end)
            && let Some(span) = row.span_box(h.at.start, h.at.end)
            && let Some((ri, s, e)) = layout.below(h.at.row, span, 3)
            && let Some(r) = layout.rows.get(ri)
            && let Some((i, v)) = (s..e).find_map(|i| {
                r.words
                    .get(i)
                    .and_then(|w| id_value(&w.text))
                    .map(|v| (i, v))
            })
        {
            found = Some((ri, i, i + 1, v));
            score *= 0.85;
        }
        if let Some((ri, s, e, v)) = found
            && let Some(r) = layout.rows.get(ri)
            && let Some(bbox) = r.span_box(s, e)
        {
            cands.push(Candidate {
                value: v,
                score,
                row: ri,
                page: r.page,
                bbox,
                ocr: r.span_confidence(s, e),
            });
        }
    }
    decide(cands, false).map(|(c, conf)| c.field(conf))
}

fn has_value_right_id(row: &Row, from: usize) -> bool {
    row.words.iter().skip(from).any(|w| {
        !is_filler(&w.text) && w.text.chars().any(char::is_alphanumeric) && !is_wordlike(&w.text, 3)
    })
}

/// An identifier: has a digit, is not a date or an amount with decimals.
fn id_value(word: &str) -> Option<String> {
    let v = word
        .trim_start_matches('#')
        .trim_end_matches([',', ';', ':', '.'])
        .trim_matches(|c| c == '(' || c == ')');
    if v.chars().count() < 2 || !v.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    if find_date(v, DateOrder::DayFirst).is_some()
        && v.chars().filter(char::is_ascii_digit).count() < 9
    {
        return None;
    }
    if parse_amount(v).is_some_and(|a| a.has_decimals || a.currency.is_some()) {
        return None;
    }
    if v.ends_with('%') {
        return None;
    }
    Some(v.to_owned())
}

/// The best candidate: highest score; ties go to the earliest (or latest) row.
fn best(mut cands: Vec<Candidate>, prefer_late: bool) -> Option<Candidate> {
    cands.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then_with(|| {
            if prefer_late {
                b.row.cmp(&a.row)
            } else {
                a.row.cmp(&b.row)
            }
        })
    });
    cands.into_iter().next()
}

// ---------------------------------------------------------------- dates

fn date_field(layout: &Layout, hits: &[Hit], field: &str, order: DateOrder) -> Option<Field> {
    let mut cands = Vec::new();
    for h in hits_of(hits, field) {
        let Some(row) = layout.rows.get(h.at.row) else {
            continue;
        };
        let Some(mut score) = label_score(h, row) else {
            continue;
        };
        let end = (h.at.end + 8).min(row.words.len());
        let right = row.text_range(h.at.end, end);
        let mut found = find_date(&right, order).map(|d| (h.at.row, h.at.end, end, d));
        if found.is_none()
            && !has_date_like_right(row, h.at.end)
            && let Some(span) = row.span_box(h.at.start, h.at.end)
            && let Some((ri, s, e)) = layout.below(h.at.row, span, 3)
            && let Some(r) = layout.rows.get(ri)
            && let Some(d) = find_date(&r.text_range(s, e), order)
        {
            found = Some((ri, s, e, d));
            score *= 0.9;
        }
        // A label ending its row ("... Nr. 4711 vom") whose value wrapped to the start of
        // the next row, as running text does.
        if found.is_none()
            && h.at.end == row.words.len()
            && let Some(next) = layout.rows.get(h.at.row + 1)
            && next.page == row.page
            && next.bbox.y0 - row.bbox.y1 < row.height() * 1.5
            && let Some(&(s, e)) = next.cells().first()
            && let Some(d) = find_date(&next.text_range(s, e.min(s + 4)), order)
        {
            found = Some((h.at.row + 1, s, e.min(s + 4), d));
            score *= 0.9;
        }
        if let Some((ri, s, e, d)) = found
            && let Some(r) = layout.rows.get(ri)
            && let Some(bbox) = r.span_box(s, e)
        {
            cands.push(Candidate {
                value: d.format("%Y-%m-%d").to_string(),
                score,
                row: ri,
                page: r.page,
                bbox,
                ocr: r.span_confidence(s, e),
            });
        }
    }
    if cands.is_empty() && field == "issue_date" {
        // Fallback: the first date in the top third of the first page.
        for (ri, r) in layout.rows.iter().enumerate() {
            if r.page != layout.rows.first().map_or(1, |f| f.page) || r.bbox.y0 > 0.35 {
                continue;
            }
            if let Some(d) = find_date(&r.text(), order)
                && let Some(bbox) = r.span_box(0, r.words.len())
            {
                cands.push(Candidate {
                    value: d.format("%Y-%m-%d").to_string(),
                    score: 0.0,
                    row: ri,
                    page: r.page,
                    bbox,
                    ocr: r.span_confidence(0, r.words.len()),
                });
                break;
            }
        }
        return best(cands, false).map(|c| c.field(0.35));
    }
    decide(cands, false).map(|(c, conf)| c.field(conf))
}

fn has_date_like_right(row: &Row, from: usize) -> bool {
    row.words
        .iter()
        .skip(from)
        .take(3)
        .any(|w| w.text.chars().any(|c| c.is_ascii_digit()))
}

// ---------------------------------------------------------------- currency

fn currency_field(layout: &Layout, hits: &[Hit]) -> Option<Field> {
    let mut cands = Vec::new();
    for h in hits_of(hits, "currency") {
        let Some(row) = layout.rows.get(h.at.row) else {
            continue;
        };
        let mut found = row
            .words
            .iter()
            .enumerate()
            .skip(h.at.end)
            .take(3)
            .find_map(|(i, w)| currency_of_token(&w.text).map(|c| (h.at.row, i, c)));
        if found.is_none()
            && let Some(span) = row.span_box(h.at.start, h.at.end)
            && let Some((ri, s, e)) = layout.below(h.at.row, span, 3)
            && let Some(r) = layout.rows.get(ri)
        {
            found = r
                .words
                .iter()
                .enumerate()
                .take(e)
                .skip(s)
                .find_map(|(i, w)| currency_of_token(&w.text).map(|c| (ri, i, c)));
        }
        if let Some((ri, i, c)) = found
            && let Some(r) = layout.rows.get(ri)
            && let Some(bbox) = r.span_box(i, i + 1)
        {
            cands.push(Candidate {
                value: c.to_owned(),
                score: h.label.weight,
                row: ri,
                page: r.page,
                bbox,
                ocr: r.span_confidence(i, i + 1),
            });
        }
    }
    if let Some(c) = best(cands, false) {
        return Some(c.field(0.95));
    }
    // No label: count symbols and codes next to amounts and in prose.
    let mut tally: BTreeMap<&'static str, (usize, usize, usize)> = BTreeMap::new();
    for (ri, r) in layout.rows.iter().enumerate() {
        for (i, w) in r.words.iter().enumerate() {
            let cur = currency_of_token(&w.text)
                .or_else(|| parse_amount(&w.text).and_then(|a| a.currency));
            if let Some(c) = cur {
                let e = tally.entry(c).or_insert((0, ri, i));
                e.0 += 1;
            }
        }
        if let Some(c) = currency_of_name(&r.text()) {
            let e = tally.entry(c).or_insert((0, ri, 0));
            e.0 += 2;
        }
    }
    let kinds = tally.len();
    let (code, (count, ri, i)) = tally.into_iter().max_by_key(|(_, v)| v.0)?;
    let r = layout.rows.get(ri)?;
    let bbox = r.span_box(i, i + 1)?;
    // Unlabelled: as sure as the marks are many and agree (one currency seen throughout).
    let conf = match (kinds, count) {
        (1, 3..) => 0.9,
        (1, 2) => 0.85,
        (_, 2..) => 0.75,
        _ => 0.6,
    };
    Some(Field::new(code, conf).at(r.page, bbox))
}

// ---------------------------------------------------------------- type code

fn type_code(layout: &Layout) -> Option<Field> {
    let first_page = layout.rows.first()?.page;
    let head: Vec<&Row> = layout
        .rows
        .iter()
        .filter(|r| r.page == first_page && r.bbox.y0 < 0.5)
        .collect();
    // An explicit UNTDID 1001 code in a title: "Handelsrechnung (380)".
    for r in &head {
        let t = fold(&r.text());
        if ![
            "rechnung",
            "gutschrift",
            "invoice",
            "credit",
            "facture",
            "avoir",
            "factuur",
        ]
        .iter()
        .any(|k| t.contains(k))
        {
            continue;
        }
        for w in &r.words {
            let code = w.text.trim_matches(|c| c == '(' || c == ')');
            if w.text.starts_with('(')
                && code.len() == 3
                && [
                    "380", "381", "383", "384", "386", "387", "389", "393", "394", "575", "751",
                ]
                .contains(&code)
                && let Some(bbox) = r.span_box(0, r.words.len())
            {
                return Some(Field::new(code, 0.95).at(r.page, bbox));
            }
        }
    }
    let credit = [
        "gutschrift",
        "credit note",
        "creditnota",
        "credit memo",
        "avoir",
        "note de credit",
        "rechnungskorrektur",
        "stornorechnung",
    ];
    let invoice = [
        "rechnung", "invoice", "facture", "factuur", "receipt", "bill",
    ];
    for (keys, code, conf) in [(&credit[..], "381", 0.85), (&invoice[..], "380", 0.75)] {
        for r in &head {
            let t = fold(&r.text());
            if keys.iter().any(|k| t.contains(k))
                && let Some(bbox) = r.span_box(0, r.words.len())
            {
                return Some(Field::new(code, conf).at(r.page, bbox));
            }
        }
    }
    None
}

// ---------------------------------------------------------------- totals

const TOTAL_FIELDS: [&str; 8] = [
    "net_total",
    "tax_basis_total",
    "tax_total",
    "gross_total",
    "due_total",
    "prepaid_total",
    "charge_total",
    "allowance_total",
];

/// Amounts to the right of `from` on a row, up to the next word that reads like a label.
fn amounts_right(row: &Row, from: usize) -> Vec<(Amount, usize, usize)> {
    let mut out = Vec::new();
    let mut i = from;
    while i < row.words.len() {
        let mut matched = None;
        for k in (1..=3).rev() {
            let end = i + k;
            if end > row.words.len() || row.cell_of.get(i) != row.cell_of.get(end - 1) {
                continue;
            }
            if let Some(a) = parse_amount(&row.text_range(i, end)) {
                matched = Some((a, end));
                break;
            }
        }
        if let Some((a, end)) = matched {
            // "19" followed by "%" is a rate, not an amount.
            let next_is_percent = row.words.get(end).is_some_and(|w| w.text.starts_with('%'));
            if !next_is_percent {
                out.push((a, i, end));
            }
            i = end;
            continue;
        }
        let Some(w) = row.words.get(i) else {
            break;
        };
        if w.text.starts_with('(') {
            // Skip a parenthesised remark: "(excl. USt.)".
            let close = (i..row.words.len())
                .find(|&j| row.words.get(j).is_some_and(|x| x.text.ends_with(')')))
                .unwrap_or(i);
            i = close + 1;
            continue;
        }
        let t = w
            .text
            .trim_matches(|c: char| !c.is_alphanumeric() && !"€$£%".contains(c));
        if t.is_empty()
            || parse_percent(t, false).is_some()
            || currency_of_token(t).is_some()
            || !is_wordlike(t, 3)
            || date::is_month(t)
            || matches!(
                fold(t).as_str(),
                "incl" | "inkl" | "excl" | "exkl" | "ttc" | "ht" | "eur" | "on" | "in"
            )
        {
            i += 1;
            continue;
        }
        break;
    }
    out
}

/// Amounts (with decimals) straight below a header label, row after row.
fn column_amounts(layout: &Layout, row: usize, span: BBox) -> Vec<(usize, usize, usize, Amount)> {
    let mut out = Vec::new();
    let mut at = row;
    while out.len() < 8 {
        // The first value may sit a few rows down, with notes in other columns between
        // (a totals header row printed above the figures, beside payment terms).
        let max_rows = if out.is_empty() { 4 } else { 2 };
        let Some((ri, s, e)) = layout.below(at, span, max_rows) else {
            break;
        };
        let Some(r) = layout.rows.get(ri) else {
            break;
        };
        let Some((a, s2, e2)) = amounts_right(r, s).into_iter().find(|(_, _, e2)| *e2 <= e) else {
            break;
        };
        if !a.has_decimals {
            break;
        }
        out.push((ri, s2, e2, a));
        at = ri;
    }
    out
}

fn totals(layout: &Layout, hits: &[Hit], tables: &[(usize, usize)], result: &mut InvoiceResult) {
    let in_table = |row: usize| tables.iter().any(|&(s, e)| row >= s && row < e);
    let mut cands: BTreeMap<&str, Vec<(Candidate, Decimal)>> = BTreeMap::new();
    for field in TOTAL_FIELDS {
        let mut list = Vec::new();
        for h in hits_of(hits, field) {
            let Some(row) = layout.rows.get(h.at.row) else {
                continue;
            };
            let mut score = h.label.weight * if h.at.at_cell_start { 1.0 } else { 0.85 };
            let right = amounts_right(row, h.at.end);
            let mut found = right.last().map(|(a, s, e)| (h.at.row, *s, *e, *a));
            if found.is_none()
                && !has_number_right(row, h.at.end)
                && table::header(row, h.at.row).is_none()
                && !in_table(h.at.row)
                && let Some(span) = row.span_box(h.at.start, h.at.end)
            {
                let column = column_amounts(layout, h.at.row, span);
                // A column of per-rate values closed by their sum: take the sum.
                if let Some((last, rest)) = column.split_last()
                    && rest.len() >= 2
                    && rest.iter().map(|c| c.3.value).sum::<Decimal>() == last.3.value
                {
                    found = Some(*last);
                    score *= 0.95;
                } else if let Some(first) = column.first() {
                    found = Some(*first);
                    score *= 0.8;
                }
            }
            let Some((ri, s, e, a)) = found else {
                continue;
            };
            if !a.has_decimals {
                score *= 0.8;
            }
            let Some(r) = layout.rows.get(ri) else {
                continue;
            };
            let Some(bbox) = r.span_box(s, e) else {
                continue;
            };
            let mut value = a.value;
            if matches!(field, "prepaid_total" | "allowance_total" | "charge_total") {
                value = value.abs();
            }
            list.push((
                Candidate {
                    value: format_amount(value),
                    score,
                    row: ri,
                    page: r.page,
                    bbox,
                    ocr: r.span_confidence(s, e),
                },
                value,
            ));
        }
        // Highest score first; among equals the later (totals sit at the end).
        list.sort_by(|a, b| b.0.score.total_cmp(&a.0.score).then(b.0.row.cmp(&a.0.row)));
        cands.insert(field, list);
    }

    // Choose net/basis, tax and gross together when arithmetic can decide.
    let top = |f: &str| -> Vec<(Candidate, Decimal)> {
        cands
            .get(f)
            .map(|v| v.iter().take(4).cloned().collect())
            .unwrap_or_default()
    };
    let nets = top("net_total");
    let bases = top("tax_basis_total");
    let taxes = top("tax_total");
    let grosses = top("gross_total");
    let breakdown_tax: Option<Decimal> = (!result.tax_breakdown.is_empty())
        .then(|| result.tax_breakdown.iter().map(|t| t.tax).sum());
    let breakdown_basis: Option<Decimal> = (!result.tax_breakdown.is_empty())
        .then(|| result.tax_breakdown.iter().map(|t| t.basis).sum());

    let mut chosen: BTreeMap<&str, (Candidate, f32)> = BTreeMap::new();
    let mut best_combo: Option<(f32, usize, usize, usize, bool)> = None;
    let base_list = if bases.is_empty() { &nets } else { &bases };
    for (bi, b) in base_list.iter().enumerate() {
        for (ti, t) in taxes.iter().enumerate() {
            for (gi, g) in grosses.iter().enumerate() {
                if b.1 + t.1 == g.1 {
                    let s = b.0.score + t.0.score + g.0.score;
                    if best_combo.is_none_or(|c| s > c.0) {
                        best_combo = Some((s, bi, ti, gi, !bases.is_empty()));
                    }
                }
            }
        }
    }
    let chain_closed = best_combo.is_some();
    if let Some((_, bi, ti, gi, is_basis)) = best_combo {
        let field = if is_basis {
            "tax_basis_total"
        } else {
            "net_total"
        };
        if let Some(b) = base_list.get(bi) {
            chosen.insert(field, (b.0.clone(), 0.98));
        }
        if let Some(t) = taxes.get(ti) {
            chosen.insert("tax_total", (t.0.clone(), 0.98));
        }
        if let Some(g) = grosses.get(gi) {
            chosen.insert("gross_total", (g.0.clone(), 0.98));
        }
    }
    for field in TOTAL_FIELDS {
        if chosen.contains_key(field) {
            continue;
        }
        if let Some((c, _)) = cands.get(field).and_then(|v| v.first()) {
            chosen.insert(field, (c.clone(), conf_of(c.score)));
        }
    }
    // "Warenwert 457,20 ... Nettobetrag 448,99": with allowances or charges between
    // them, the net amount that adds up with the tax is the tax basis, and the net total
    // is the other net amount in the same totals block, the one the lines sum to. (Not a
    // subtotal of some lines further up: the block is a few rows, the difference small.)
    let line_sum: Option<Decimal> =
        (!result.lines.is_empty()).then(|| result.lines.iter().map(|l| l.net_amount).sum());
    if !chosen.contains_key("tax_basis_total")
        && let Some(sum) = line_sum
        && let Some((net_c, net_conf)) = chosen.get("net_total").cloned()
        && let Ok(base) = net_c.value.parse::<Decimal>()
        && base != sum
        && (sum - base).abs() * Decimal::from(4) <= sum.abs()
        && let Some((c, _)) = cands.get("net_total").and_then(|v| {
            v.iter().find(|(c, v)| {
                *v == sum
                    && c.bbox != net_c.bbox
                    && c.page == net_c.page
                    && c.row.abs_diff(net_c.row) <= 4
            })
        })
    {
        chosen.insert("net_total", (c.clone(), 0.9));
        chosen.insert("tax_basis_total", (net_c, net_conf));
    }
    // Allowances and charges printed as rows of their own: when the printed net amount is
    // what the VAT breakdown's bases add up to, it is the tax basis (EN 16931: the bases
    // sum to the basis), and the net total (the lines) is basis - charges + allowances.
    let adjusted = adjustments::adjustments(layout);
    let mut net_placed = false;
    if adjusted.any()
        && !chosen.contains_key("tax_basis_total")
        && let Some((net_c, net_conf)) = chosen.get("net_total").cloned()
        && let Ok(printed) = net_c.value.parse::<Decimal>()
        && (breakdown_basis == Some(printed) || line_sum == Some(printed - adjusted.contribution))
        && line_sum != Some(printed)
    {
        let net = printed - adjusted.contribution;
        let conf: f32 = if line_sum == Some(net) { 0.95 } else { 0.85 };
        let (page, ocr) = (net_c.page, net_c.ocr);
        let derived = |v: Decimal| Candidate {
            value: format_amount(v),
            score: 0.7,
            row: 0,
            page,
            bbox: BBox::default(),
            ocr,
        };
        chosen.insert("net_total", (derived(net), conf.min(net_conf.max(0.85))));
        chosen.insert("tax_basis_total", (net_c, net_conf));
        net_placed = true;
        for (field, v) in [
            ("allowance_total", adjusted.allowances),
            ("charge_total", adjusted.charges),
        ] {
            if !chosen.contains_key(field) {
                chosen.insert(field, (derived(v), conf));
            }
        }
    }
    // Allowances or charges printed, and nothing tells whether the printed net amount is
    // before them (the lines) or after them (the basis): the net total is a guess.
    if adjusted.any()
        && !net_placed
        && !chosen.contains_key("tax_basis_total")
        && let Some((c, conf)) = chosen.get("net_total").cloned()
        && (line_sum.is_none() || line_sum != c.value.parse::<Decimal>().ok())
    {
        chosen.insert("net_total", (c, conf.min(0.7)));
    }
    // Tax total from the printed breakdown when no total line says it.
    if let Some(sum) = breakdown_tax {
        match chosen.get("tax_total") {
            None => {
                let first = layout.rows.first().map_or(1, |r| r.page);
                chosen.insert(
                    "tax_total",
                    (
                        Candidate {
                            value: format_amount(sum),
                            score: 0.7,
                            row: 0,
                            page: first,
                            bbox: BBox::default(),
                            ocr: 1.0,
                        },
                        0.7,
                    ),
                );
            }
            Some((c, conf)) => {
                if c.value.parse::<Decimal>().ok() == Some(sum) {
                    let boosted = (c.clone(), conf.max(0.95));
                    chosen.insert("tax_total", boosted);
                } else if chain_closed {
                    // Basis + tax = gross as printed: a breakdown that disagrees is one
                    // read in part (a row lost to OCR), not a better tax total.
                } else if let Some(alt) = cands
                    .get("tax_total")
                    .and_then(|v| v.iter().find(|(_, d)| *d == sum))
                {
                    chosen.insert("tax_total", (alt.0.clone(), 0.9));
                } else if *conf < 0.9 {
                    // A weak label match loses against the printed breakdown's sum.
                    let first = layout.rows.first().map_or(1, |r| r.page);
                    let c = Candidate {
                        value: format_amount(sum),
                        score: 0.7,
                        row: 0,
                        page: first,
                        bbox: BBox::default(),
                        ocr: 1.0,
                    };
                    chosen.insert("tax_total", (c, 0.7));
                }
            }
        }
    }
    if let (Some(sum), Some((c, conf))) = (breakdown_basis, chosen.get("tax_basis_total"))
        && c.value.parse::<Decimal>().ok() == Some(sum)
    {
        let boosted = (c.clone(), conf.max(0.95));
        chosen.insert("tax_basis_total", boosted);
    }
    // The breakdown's bases adding up to the net total: that is the tax basis too.
    if !chosen.contains_key("tax_basis_total")
        && !chosen.contains_key("charge_total")
        && !chosen.contains_key("allowance_total")
        && let (Some(sum), Some((c, _))) = (breakdown_basis, chosen.get("net_total"))
        && c.value.parse::<Decimal>().ok() == Some(sum)
    {
        let c = c.clone();
        chosen.insert("tax_basis_total", (c, 0.85));
    }
    let val = |chosen: &BTreeMap<&str, (Candidate, f32)>, f: &str| {
        chosen
            .get(f)
            .and_then(|(c, _)| c.value.parse::<Decimal>().ok())
    };
    // No net or basis line, but the breakdown's bases and taxes add up to the gross: the
    // bases are the net total (single-rate receipts print only the breakdown).
    if !chosen.contains_key("net_total")
        && !chosen.contains_key("tax_basis_total")
        && let (Some(b), Some(t), Some(g)) =
            (breakdown_basis, breakdown_tax, val(&chosen, "gross_total"))
        && b + t == g
    {
        let first = layout.rows.first().map_or(1, |r| r.page);
        let c = Candidate {
            value: format_amount(b),
            score: 0.7,
            row: 0,
            page: first,
            bbox: BBox::default(),
            ocr: 1.0,
        };
        chosen.insert("net_total", (c.clone(), 0.75));
        chosen.insert("tax_basis_total", (c, 0.75));
    }
    // A tax total that was not read (or read as something that does not add up), where
    // basis and gross were: their difference is the tax when the rates printed on the
    // document give it too.
    if !chain_closed
        && let Some(b) = val(&chosen, "tax_basis_total").or(val(&chosen, "net_total"))
        && let Some(g) = val(&chosen, "gross_total")
        && val(&chosen, "tax_total").is_none_or(|t| b + t != g)
        && let Some(tax) = tax_from_rates(result, &label_rates(layout, hits), b, g - b)
    {
        let (page, ocr) = chosen
            .get("gross_total")
            .map_or((1, 1.0), |(c, _)| (c.page, c.ocr));
        let c = Candidate {
            value: format_amount(tax),
            score: 0.7,
            row: 0,
            page,
            bbox: BBox::default(),
            ocr,
        };
        chosen.insert("tax_total", (c, 0.85));
    }
    // No gross line, but net + tax equals the printed amount due: that amount is the
    // gross as well.
    if !chosen.contains_key("gross_total")
        && let Some(d) = val(&chosen, "due_total")
        && let Some(t) = val(&chosen, "tax_total")
        && let Some(n) = val(&chosen, "tax_basis_total").or(val(&chosen, "net_total"))
        && n + t == d
        && let Some((c, _)) = chosen.get("due_total")
    {
        let c = c.clone();
        chosen.insert("gross_total", (c, 0.85));
    }
    // Due = gross - prepaid is evidence for all three.
    if let (Some(g), Some(d)) = (val(&chosen, "gross_total"), val(&chosen, "due_total")) {
        let p = val(&chosen, "prepaid_total").unwrap_or(Decimal::ZERO);
        if g - p == d {
            for f in ["gross_total", "due_total"] {
                if let Some(e) = chosen.get_mut(f) {
                    e.1 = e.1.max(0.95);
                }
            }
        }
    }
    // A single-rate invoice prints no breakdown table, only "USt. (19 %) 16,61": with the
    // basis that still is one, if the arithmetic holds.
    if result.tax_breakdown.is_empty()
        && let Some((tax_c, _)) = chosen.get("tax_total")
        && let Some(tax) = val(&chosen, "tax_total")
        && let Some(basis) = val(&chosen, "tax_basis_total").or(val(&chosen, "net_total"))
        && let Some(row) = layout.rows.get(tax_c.row)
        && tax_c.bbox != BBox::default()
    {
        let rates = table::percents(&row.text());
        if let [rate] = rates[..]
            && (basis * rate / Decimal::ONE_HUNDRED - tax).abs() <= Decimal::new(11, 3)
        {
            result
                .tax_breakdown
                .push(docpipe_core::TaxSubtotal { rate, basis, tax });
        }
    }
    for (field, (c, conf)) in chosen {
        let f = if c.bbox == BBox::default() {
            Field::new(c.value.clone(), conf)
        } else {
            c.field(conf)
        };
        result.set(field, f);
    }
}

/// The rates printed on the rows labelled as the tax total ("MwSt. 19 %").
fn label_rates(layout: &Layout, hits: &[Hit]) -> Vec<Decimal> {
    hits_of(hits, "tax_total")
        .filter_map(|h| layout.rows.get(h.at.row))
        .flat_map(|row| table::percents(&row.text()))
        .collect()
}

/// `difference` (gross - basis) when the tax rates printed on the document give that tax
/// for `basis`, to the cent per rate: each line's net amount at its rate when every line
/// has one and they sum to the basis, else the basis at the document's one rate (of the
/// lines, the breakdown and the tax label's row).
fn tax_from_rates(
    result: &InvoiceResult,
    label_rates: &[Decimal],
    basis: Decimal,
    difference: Decimal,
) -> Option<Decimal> {
    let hundred = Decimal::ONE_HUNDRED;
    let mut rates: Vec<Decimal> = result
        .lines
        .iter()
        .filter_map(|l| l.tax_rate)
        .chain(result.tax_breakdown.iter().map(|t| t.rate))
        .chain(label_rates.iter().copied())
        .filter(|r| !r.is_zero())
        .collect();
    rates.sort();
    rates.dedup();
    let by_lines = (!result.lines.is_empty()
        && result.lines.iter().all(|l| l.tax_rate.is_some())
        && result.lines.iter().map(|l| l.net_amount).sum::<Decimal>() == basis)
        .then(|| {
            result
                .lines
                .iter()
                .map(|l| l.net_amount * l.tax_rate.unwrap_or_default() / hundred)
                .sum::<Decimal>()
        });
    let expected = match (by_lines, &rates[..]) {
        (Some(t), _) => t,
        (None, [rate]) => basis * *rate / hundred,
        _ => return None,
    };
    let tolerance = Decimal::new(1, 2) * Decimal::from(rates.len().max(1)) + Decimal::new(1, 3);
    (!difference.is_zero() && (expected - difference).abs() <= tolerance).then_some(difference)
}

#[cfg(test)]
mod tests {
    use super::layout::testdoc::doc;
    use super::*;

    #[test]
    fn label_right_layout() {
        let d = doc(&[
            (50.0, 50.0, "RECHNUNG"),
            (50.0, 80.0, "Rechnungsnummer:"),
            (300.0, 80.0, "RE-2026-17"),
            (50.0, 95.0, "Rechnungsdatum:"),
            (300.0, 95.0, "31.01.2026"),
            (50.0, 110.0, "Zahlbar"),
            (100.0, 110.0, "bis:"),
            (300.0, 110.0, "28.02.2026"),
            (300.0, 400.0, "Nettobetrag"),
            (480.0, 400.0, "1.000,00"),
            (500.0, 400.0, "€"),
            (300.0, 415.0, "MwSt."),
            (340.0, 415.0, "19%"),
            (480.0, 415.0, "190,00"),
            (500.0, 415.0, "€"),
            (300.0, 430.0, "Gesamtbetrag"),
            (480.0, 430.0, "1.190,00"),
            (500.0, 430.0, "€"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("invoice_number"), Some("RE-2026-17"));
        assert_eq!(r.value("issue_date"), Some("2026-01-31"));
        assert_eq!(r.value("due_date"), Some("2026-02-28"));
        assert_eq!(r.value("net_total"), Some("1000.00"));
        assert_eq!(r.value("tax_total"), Some("190.00"));
        assert_eq!(r.value("gross_total"), Some("1190.00"));
        assert_eq!(r.value("currency"), Some("EUR"));
        assert_eq!(r.value("type_code"), Some("380"));
        let gross = r.fields.get("gross_total").map_or(0.0, |f| f.confidence);
        assert!(gross > 0.9, "arithmetic raises confidence: {gross}");
        assert!(r.checks.is_empty() && !r.needs_review);
    }

    #[test]
    fn label_below_layout() {
        let d = doc(&[
            (50.0, 50.0, "Invoice"),
            (50.0, 80.0, "Invoice"),
            (95.0, 80.0, "Date:"),
            (250.0, 80.0, "Due"),
            (275.0, 80.0, "Date:"),
            (400.0, 80.0, "Invoice"),
            (450.0, 80.0, "No"),
            (50.0, 94.0, "03/20/2023"),
            (250.0, 94.0, "04/04/2023"),
            (400.0, 94.0, "INV-0008"),
            (300.0, 300.0, "Subtotal"),
            (450.0, 300.0, "$"),
            (460.0, 300.0, "262.90"),
            (300.0, 315.0, "Tax"),
            (450.0, 315.0, "$"),
            (460.0, 315.0, "16.94"),
            (300.0, 330.0, "Total"),
            (450.0, 330.0, "$"),
            (460.0, 330.0, "279.84"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("issue_date"), Some("2023-03-20"));
        assert_eq!(r.value("due_date"), Some("2023-04-04"));
        assert_eq!(r.value("invoice_number"), Some("INV-0008"));
        assert_eq!(r.value("currency"), Some("USD"));
        assert_eq!(r.value("gross_total"), Some("279.84"));
        assert_eq!(r.value("net_total"), Some("262.90"));
        assert_eq!(r.value("tax_total"), Some("16.94"));
    }

    #[test]
    fn credit_note_and_currency_label() {
        let d = doc(&[
            (50.0, 50.0, "Gutschrift"),
            (150.0, 50.0, "Nr."),
            (175.0, 50.0, "G-17"),
            (50.0, 80.0, "Währung:"),
            (300.0, 80.0, "CHF"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("type_code"), Some("381"));
        assert_eq!(r.value("currency"), Some("CHF"));
        assert_eq!(r.value("invoice_number"), Some("G-17"));
    }

    #[test]
    fn french_invoice() {
        let d = doc(&[
            (50.0, 40.0, "Boulangerie"),
            (120.0, 40.0, "Dupont"),
            (160.0, 40.0, "SARL"),
            (50.0, 100.0, "Facture"),
            (100.0, 100.0, "n°FA-2024-0012"),
            (250.0, 100.0, "du"),
            (270.0, 100.0, "3"),
            (280.0, 100.0, "mars"),
            (310.0, 100.0, "2024"),
            (50.0, 115.0, "Date"),
            (80.0, 115.0, "d'échéance"),
            (160.0, 115.0, ":"),
            (250.0, 115.0, "02/04/2024"),
            (300.0, 400.0, "Total"),
            (340.0, 400.0, "HT"),
            (460.0, 400.0, "1 250,00"),
            (520.0, 400.0, "€"),
            (300.0, 415.0, "TVA"),
            (330.0, 415.0, "20%"),
            (460.0, 415.0, "250,00"),
            (520.0, 415.0, "€"),
            (300.0, 430.0, "Total"),
            (340.0, 430.0, "TTC"),
            (460.0, 430.0, "1 500,00"),
            (520.0, 430.0, "€"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("invoice_number"), Some("FA-2024-0012"));
        assert_eq!(r.value("issue_date"), Some("2024-03-03"));
        assert_eq!(r.value("due_date"), Some("2024-04-02"));
        assert_eq!(r.value("net_total"), Some("1250.00"));
        assert_eq!(r.value("tax_total"), Some("250.00"));
        assert_eq!(r.value("gross_total"), Some("1500.00"));
        assert_eq!(r.value("currency"), Some("EUR"));
        assert_eq!(r.value("seller_name"), Some("Boulangerie Dupont SARL"));
        assert_eq!(r.tax_breakdown.len(), 1, "{:?}", r.tax_breakdown);
    }

    #[test]
    fn dutch_invoice_with_prepayment() {
        let d = doc(&[
            (50.0, 100.0, "Factuurnummer:"),
            (200.0, 100.0, "993548900"),
            (50.0, 115.0, "Factuurdatum:"),
            (200.0, 115.0, "19"),
            (215.0, 115.0, "april"),
            (250.0, 115.0, "2014"),
            (300.0, 400.0, "Subtotaal"),
            (460.0, 400.0, "€ 100,00"),
            (300.0, 415.0, "BTW"),
            (330.0, 415.0, "21%"),
            (460.0, 415.0, "€ 21,00"),
            (300.0, 430.0, "Totaal"),
            (460.0, 430.0, "€ 121,00"),
            (300.0, 445.0, "Reeds"),
            (340.0, 445.0, "betaald"),
            (460.0, 445.0, "€ 21,00-"),
            (300.0, 460.0, "Te"),
            (320.0, 460.0, "betalen"),
            (460.0, 460.0, "€ 100,00"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("invoice_number"), Some("993548900"));
        assert_eq!(r.value("issue_date"), Some("2014-04-19"));
        assert_eq!(r.value("net_total"), Some("100.00"));
        assert_eq!(r.value("tax_total"), Some("21.00"));
        assert_eq!(r.value("gross_total"), Some("121.00"));
        assert_eq!(r.value("prepaid_total"), Some("21.00"));
        assert_eq!(r.value("due_total"), Some("100.00"));
        let due = r.fields.get("due_total").map_or(0.0, |f| f.confidence);
        assert!(
            due >= 0.95,
            "gross - prepaid = due raises confidence: {due}"
        );
    }

    #[test]
    fn english_credit_note_with_table() {
        let d = doc(&[
            (50.0, 40.0, "CREDIT"),
            (100.0, 40.0, "NOTE"),
            (50.0, 70.0, "Credit"),
            (95.0, 70.0, "note"),
            (130.0, 70.0, "no."),
            (160.0, 70.0, "CN-77"),
            (50.0, 85.0, "Date:"),
            (160.0, 85.0, "Jan"),
            (185.0, 85.0, "5,"),
            (200.0, 85.0, "2026"),
            (50.0, 200.0, "Description"),
            (250.0, 200.0, "Qty"),
            (330.0, 200.0, "Unit"),
            (360.0, 200.0, "price"),
            (480.0, 200.0, "Amount"),
            (50.0, 215.0, "Returned"),
            (110.0, 215.0, "widgets"),
            (250.0, 215.0, "2"),
            (330.0, 215.0, "25.00"),
            (480.0, 215.0, "50.00"),
            (50.0, 230.0, "Restocking"),
            (120.0, 230.0, "service"),
            (250.0, 230.0, "1"),
            (330.0, 230.0, "10.00"),
            (480.0, 230.0, "10.00"),
            (330.0, 260.0, "Subtotal"),
            (480.0, 260.0, "60.00"),
            (330.0, 275.0, "VAT"),
            (360.0, 275.0, "20%"),
            (480.0, 275.0, "12.00"),
            (330.0, 290.0, "Total"),
            (480.0, 290.0, "£72.00"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("type_code"), Some("381"));
        assert_eq!(r.value("invoice_number"), Some("CN-77"));
        assert_eq!(r.value("issue_date"), Some("2026-01-05"));
        assert_eq!(r.value("currency"), Some("GBP"));
        assert_eq!(r.value("gross_total"), Some("72.00"));
        assert_eq!(r.lines.len(), 2, "{:?}", r.lines);
        let first = r
            .lines
            .first()
            .map(|l| (l.description.clone(), l.quantity, l.net_amount));
        assert_eq!(
            first,
            Some((
                "Returned widgets".to_owned(),
                Some(Decimal::from(2)),
                Decimal::new(5000, 2)
            ))
        );
    }

    #[test]
    fn vat_breakdown_rows() {
        let d = doc(&[
            (50.0, 300.0, "Steuersatz"),
            (200.0, 300.0, "Basis"),
            (350.0, 300.0, "Steuer"),
            (50.0, 315.0, "7"),
            (60.0, 315.0, "%"),
            (200.0, 315.0, "275,00"),
            (350.0, 315.0, "19,25"),
            (50.0, 330.0, "19"),
            (65.0, 330.0, "%"),
            (200.0, 330.0, "198,00"),
            (350.0, 330.0, "37,62"),
        ]);
        let r = extract_invoice(&d);
        let got: Vec<(String, String, String)> = r
            .tax_breakdown
            .iter()
            .map(|t| (t.rate.to_string(), t.basis.to_string(), t.tax.to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("7".to_owned(), "275.00".to_owned(), "19.25".to_owned()),
                ("19".to_owned(), "198.00".to_owned(), "37.62".to_owned())
            ]
        );
        // No tax total line: the breakdown's sum, with a modest confidence.
        assert_eq!(r.value("tax_total"), Some("56.87"));
        assert!(
            r.fields
                .get("tax_total")
                .is_some_and(|f| f.confidence < 0.8)
        );
    }

    /// A breakdown read in part (a row lost to OCR) does not replace a tax total with
    /// which basis + tax = gross as printed.
    #[test]
    fn a_partial_breakdown_does_not_override_a_closing_chain() {
        let d = doc(&[
            (50.0, 300.0, "Steuersatz"),
            (200.0, 300.0, "Basis"),
            (350.0, 300.0, "USt.-Betrag"),
            (50.0, 315.0, "7"),
            (60.0, 315.0, "%"),
            (200.0, 315.0, "275,00"),
            (350.0, 315.0, "19,25"),
            (50.0, 330.0, "1:9"),
            (200.0, 330.0, "198.,00"),
            (350.0, 330.0, "3?,62"),
            (300.0, 400.0, "Nettobetrag"),
            (480.0, 400.0, "473,00"),
            (300.0, 415.0, "Steuerbetrag"),
            (480.0, 415.0, "56,87"),
            (300.0, 430.0, "Bruttosumme"),
            (480.0, 430.0, "529,87"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.tax_breakdown.len(), 1, "{:?}", r.tax_breakdown);
        assert_eq!(r.value("tax_total"), Some("56.87"));
        assert!(
            r.fields
                .get("tax_total")
                .is_some_and(|f| f.confidence >= 0.9)
        );
    }

    /// A tax total OCR could not read is gross - basis when the printed rate gives the
    /// same; with a modest confidence, since it was not read.
    #[test]
    fn an_unreadable_tax_total_is_the_difference_the_rate_confirms() {
        let rows = |rate: &'static str| {
            doc(&[
                (300.0, 400.0, "Nettobetrag"),
                (480.0, 400.0, "16,90"),
                (300.0, 415.0, "MwSt."),
                (350.0, 415.0, rate),
                (362.0, 415.0, "%"),
                (480.0, 415.0, "Igy"),
                (300.0, 430.0, "Bruttosumme"),
                (480.0, 430.0, "18,08"),
            ])
        };
        let r = extract_invoice(&rows("7"));
        assert_eq!(r.value("tax_total"), Some("1.18"));
        let conf = r.fields.get("tax_total").map_or(1.0, |f| f.confidence);
        assert!((0.8..0.9).contains(&conf), "{conf}");
        // A difference the rate does not give is no tax total.
        assert_eq!(extract_invoice(&rows("19")).value("tax_total"), None);
    }

    #[test]
    fn a_noun_in_prose_is_no_label() {
        let d = doc(&[
            (50.0, 300.0, "Références"),
            (120.0, 300.0, "sur"),
            (140.0, 300.0, "la"),
            (155.0, 300.0, "facture"),
            (50.0, 315.0, "CADRE"),
            (90.0, 315.0, "DE"),
            (110.0, 315.0, "FACTURATION"),
            (190.0, 315.0, ":"),
            (200.0, 315.0, "S1"),
        ]);
        assert_eq!(extract_invoice(&d).value("invoice_number"), None);
        let d = doc(&[(50.0, 300.0, "Facture"), (50.0, 315.0, "F-2026-17")]);
        assert_eq!(
            extract_invoice(&d).value("invoice_number"),
            Some("F-2026-17")
        );
    }

    /// Labels whose words OCR glued together are still labels.
    #[test]
    fn glued_label_words_are_read() {
        let d = doc(&[
            (300.0, 400.0, "TOTALHT"),
            (480.0, 400.0, "100,00"),
            (300.0, 415.0, "TOTAL"),
            (340.0, 415.0, "TVA"),
            (480.0, 415.0, "20,00"),
            (300.0, 430.0, "TOTALTTC"),
            (480.0, 430.0, "120,00"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("net_total"), Some("100.00"));
        assert_eq!(r.value("tax_total"), Some("20.00"));
        assert_eq!(r.value("gross_total"), Some("120.00"));
    }

    #[test]
    fn rechnung_hash_number() {
        let d = doc(&[
            (50.0, 300.0, "Rechnung"),
            (100.0, 300.0, "#"),
            (115.0, 300.0, "RE-20171118/506"),
            (200.0, 300.0, "von"),
            (225.0, 300.0, "18.11.2017"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("invoice_number"), Some("RE-20171118/506"));
    }

    /// ZUGFeRD 1's "Warenrechnung": the lines sum to the goods value, allowances and a
    /// charge lead to the "Nettobetrag", which is the tax basis.
    #[test]
    fn net_before_allowances_is_the_line_sum() {
        let d = doc(&[
            (50.0, 200.0, "Artikel"),
            (250.0, 200.0, "Menge"),
            (330.0, 200.0, "Preis"),
            (480.0, 200.0, "Betrag"),
            (50.0, 215.0, "Zitronensäure"),
            (250.0, 215.0, "100"),
            (330.0, 215.0, "1,00"),
            (480.0, 215.0, "100,00"),
            (50.0, 230.0, "Gelierzucker"),
            (250.0, 230.0, "50"),
            (330.0, 230.0, "1,00"),
            (480.0, 230.0, "50,00"),
            (300.0, 300.0, "Warenwert"),
            (480.0, 300.0, "150,00"),
            (300.0, 315.0, "Rabatt"),
            (480.0, 315.0, "-10,00"),
            (300.0, 330.0, "Nettobetrag"),
            (480.0, 330.0, "140,00"),
            (300.0, 345.0, "MwSt"),
            (340.0, 345.0, "19%"),
            (480.0, 345.0, "26,60"),
            (300.0, 360.0, "Endbetrag"),
            (480.0, 360.0, "166,60"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.lines.len(), 2, "{:?}", r.lines);
        assert_eq!(r.value("net_total"), Some("150.00"));
        assert_eq!(r.value("tax_basis_total"), Some("140.00"));
        assert_eq!(r.value("tax_total"), Some("26.60"));
        assert_eq!(r.value("gross_total"), Some("166.60"));
    }

    /// A credit note printed with minus signs is reported with positive amounts, as
    /// EN 16931 states them (type code 381 carries the direction); one printed positive
    /// stays positive.
    #[test]
    fn credit_note_amounts_follow_the_standard() {
        let words = |sign: &'static str| {
            let amount = move |v: &'static str| -> &'static str {
                match (sign, v) {
                    ("-", "100,00") => "-100,00",
                    ("-", "19,00") => "-19,00",
                    ("-", "119,00") => "-119,00",
                    _ => v,
                }
            };
            doc(&[
                (50.0, 50.0, "Gutschrift"),
                (150.0, 50.0, "Nr."),
                (175.0, 50.0, "G-17"),
                (50.0, 65.0, "Datum:"),
                (150.0, 65.0, "31.01.2026"),
                (50.0, 300.0, "Steuersatz"),
                (200.0, 300.0, "Basis"),
                (350.0, 300.0, "Steuer"),
                (50.0, 315.0, "19"),
                (65.0, 315.0, "%"),
                (200.0, 315.0, amount("100,00")),
                (350.0, 315.0, amount("19,00")),
                (300.0, 400.0, "Nettobetrag"),
                (480.0, 400.0, amount("100,00")),
                (300.0, 415.0, "MwSt."),
                (480.0, 415.0, amount("19,00")),
                (300.0, 430.0, "Gesamtbetrag"),
                (480.0, 430.0, amount("119,00")),
            ])
        };
        let r = extract_invoice(&words("-"));
        assert_eq!(r.value("type_code"), Some("381"));
        assert_eq!(r.value("net_total"), Some("100.00"));
        assert_eq!(r.value("tax_total"), Some("19.00"));
        assert_eq!(r.value("gross_total"), Some("119.00"));
        let got: Vec<(String, String)> = r
            .tax_breakdown
            .iter()
            .map(|t| (t.basis.to_string(), t.tax.to_string()))
            .collect();
        assert_eq!(got, vec![("100.00".to_owned(), "19.00".to_owned())]);
        let r = extract_invoice(&words("+"));
        assert_eq!(r.value("type_code"), Some("381"));
        assert_eq!(r.value("gross_total"), Some("119.00"));
        assert_eq!(r.value("tax_total"), Some("19.00"));
    }

    /// "zuzüglich 19% MwSt." still labels the tax; "Gesamtbetrag Netto/Steuer/Brutto"
    /// are composed labels.
    #[test]
    fn qualified_and_composed_totals_labels() {
        let d = doc(&[
            (300.0, 400.0, "Rechnungssumme"),
            (390.0, 400.0, "netto"),
            (480.0, 400.0, "845,00"),
            (300.0, 415.0, "zuzüglich"),
            (360.0, 415.0, "19%"),
            (385.0, 415.0, "MwSt."),
            (480.0, 415.0, "160,55"),
            (300.0, 430.0, "Rechnungssumme"),
            (390.0, 430.0, "brutto"),
            (480.0, 430.0, "1.005,55"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("net_total"), Some("845.00"));
        assert_eq!(r.value("tax_total"), Some("160.55"));
        assert_eq!(r.value("gross_total"), Some("1005.55"));
        let d = doc(&[
            (300.0, 400.0, "Gesamtbetrag"),
            (375.0, 400.0, "Netto:"),
            (480.0, 400.0, "554,55"),
            (300.0, 415.0, "Gesamtbetrag"),
            (375.0, 415.0, "Steuer:"),
            (480.0, 415.0, "100,83"),
            (300.0, 430.0, "Gesamtbetrag"),
            (375.0, 430.0, "Brutto:"),
            (480.0, 430.0, "655,38"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("net_total"), Some("554.55"));
        assert_eq!(r.value("tax_total"), Some("100.83"));
        assert_eq!(r.value("gross_total"), Some("655.38"));
    }

    #[test]
    fn italian_invoice() {
        let d = doc(&[
            (50.0, 80.0, "Fattura"),
            (95.0, 80.0, "n."),
            (110.0, 80.0, "2024/117"),
            (50.0, 95.0, "Data"),
            (80.0, 95.0, "fattura:"),
            (250.0, 95.0, "6"),
            (260.0, 95.0, "dicembre"),
            (310.0, 95.0, "2026"),
            (50.0, 110.0, "Data"),
            (80.0, 110.0, "scadenza:"),
            (250.0, 110.0, "05/01/2027"),
            (300.0, 400.0, "Totale"),
            (340.0, 400.0, "imponibile"),
            (480.0, 400.0, "1.000,00"),
            (300.0, 415.0, "IVA"),
            (330.0, 415.0, "22%"),
            (480.0, 415.0, "220,00"),
            (300.0, 430.0, "Totale"),
            (340.0, 430.0, "documento"),
            (480.0, 430.0, "1.220,00"),
            (520.0, 430.0, "EUR"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("invoice_number"), Some("2024/117"));
        assert_eq!(r.value("issue_date"), Some("2026-12-06"));
        assert_eq!(r.value("due_date"), Some("2027-01-05"));
        assert_eq!(r.value("net_total"), Some("1000.00"));
        assert_eq!(r.value("tax_total"), Some("220.00"));
        assert_eq!(r.value("gross_total"), Some("1220.00"));
        assert_eq!(r.value("currency"), Some("EUR"));
    }

    #[test]
    fn spanish_invoice() {
        let d = doc(&[
            (50.0, 80.0, "Número"),
            (100.0, 80.0, "de"),
            (115.0, 80.0, "factura:"),
            (250.0, 80.0, "F-2026-0042"),
            (50.0, 95.0, "Fecha"),
            (90.0, 95.0, "de"),
            (105.0, 95.0, "factura:"),
            (250.0, 95.0, "6"),
            (260.0, 95.0, "de"),
            (275.0, 95.0, "diciembre"),
            (330.0, 95.0, "de"),
            (345.0, 95.0, "2026"),
            (50.0, 110.0, "Fecha"),
            (90.0, 110.0, "de"),
            (105.0, 110.0, "vencimiento:"),
            (250.0, 110.0, "05/01/2027"),
            (300.0, 400.0, "Base"),
            (330.0, 400.0, "imponible"),
            (480.0, 400.0, "500,00"),
            (300.0, 415.0, "IVA"),
            (330.0, 415.0, "21%"),
            (480.0, 415.0, "105,00"),
            (300.0, 430.0, "Total"),
            (340.0, 430.0, "factura"),
            (480.0, 430.0, "605,00"),
            (520.0, 430.0, "€"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("invoice_number"), Some("F-2026-0042"));
        assert_eq!(r.value("issue_date"), Some("2026-12-06"));
        assert_eq!(r.value("due_date"), Some("2027-01-05"));
        assert_eq!(r.value("net_total"), Some("500.00"));
        assert_eq!(r.value("tax_total"), Some("105.00"));
        assert_eq!(r.value("gross_total"), Some("605.00"));
        assert_eq!(r.value("currency"), Some("EUR"));
    }

    /// "Nr." and "vom" belong to the noun before them: the order's number and date in a
    /// remark neither compete with the invoice's nor lower its confidence.
    #[test]
    fn generic_labels_belong_to_their_noun() {
        let d = doc(&[
            (50.0, 60.0, "Handelsrechnung"),
            (150.0, 60.0, "(380)"),
            (185.0, 60.0, "Nr."),
            (205.0, 60.0, "471102"),
            (250.0, 60.0, "vom"),
            (275.0, 60.0, "05.06.2018"),
            (50.0, 300.0, "Rechnung"),
            (105.0, 300.0, "gemäß"),
            (140.0, 300.0, "Bestellung"),
            (205.0, 300.0, "Nr."),
            (225.0, 300.0, "2018-471331"),
            (300.0, 300.0, "vom"),
            (325.0, 300.0, "01.03.2018."),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("invoice_number"), Some("471102"));
        assert_eq!(r.value("issue_date"), Some("2018-06-05"));
        for f in ["invoice_number", "issue_date"] {
            let c = r.fields.get(f).map_or(0.0, |f| f.confidence);
            assert!(c >= 0.9, "{f} at {c}");
        }
    }

    /// A date label ending its row, the date wrapped to the next row's start.
    #[test]
    fn wrapped_date() {
        let d = doc(&[
            (50.0, 60.0, "VERSICHERUNGSRECHNUNG"),
            (190.0, 60.0, "Nr."),
            (210.0, 60.0, "00.123.456.7-2018-1"),
            (330.0, 60.0, "vom"),
            (50.0, 72.0, "18.04.2018"),
            (50.0, 200.0, "ZUGFeRD-Version:"),
            (150.0, 200.0, "2.1.1"),
            (180.0, 200.0, "vom"),
            (205.0, 200.0, "01.07.2020"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("invoice_number"), Some("00.123.456.7-2018-1"));
        assert_eq!(r.value("issue_date"), Some("2018-04-18"));
    }

    /// Delivery and service dates, and the referenced invoice's date, are not the invoice
    /// date even under a "Date" heading.
    #[test]
    fn other_dates_are_not_the_invoice_date() {
        let d = doc(&[
            (300.0, 60.0, "Date"),
            (330.0, 60.0, ":"),
            (450.0, 60.0, "31/01/2022"),
            (50.0, 300.0, "DATE"),
            (80.0, 300.0, "DE"),
            (100.0, 300.0, "FACTURE"),
            (150.0, 300.0, "ASSOCIÉE"),
            (205.0, 300.0, ":"),
            (215.0, 300.0, "01/01/2022"),
            (300.0, 300.0, "DATE"),
            (330.0, 300.0, "DE"),
            (350.0, 300.0, "LIVRAISON"),
            (410.0, 300.0, ":"),
            (420.0, 300.0, "28/01/2022"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("issue_date"), Some("2022-01-31"));
    }

    /// Totals printed as a header row with the figures a few rows below, allowance and
    /// charge rows under the lines: the printed "Total HT" is the tax basis (the VAT
    /// breakdown's bases add up to it), the net total the lines' sum.
    #[test]
    fn totals_under_their_header_with_allowances_and_charges() {
        let d = doc(&[
            (50.0, 200.0, "Désignation"),
            (300.0, 200.0, "Qté"),
            (480.0, 200.0, "Montant"),
            (50.0, 215.0, "Prestation"),
            (300.0, 215.0, "1,00"),
            (480.0, 215.0, "60,00"),
            (50.0, 230.0, "Fournitures"),
            (300.0, 230.0, "3,00"),
            (480.0, 230.0, "35,00"),
            (50.0, 250.0, "REMISE"),
            (95.0, 250.0, ":"),
            (105.0, 250.0, "REMISE"),
            (150.0, 250.0, "COMMERCIALE"),
            (480.0, 250.0, "-5,00"),
            (530.0, 250.0, "20,00%"),
            (50.0, 265.0, "CHARGE"),
            (95.0, 265.0, ":"),
            (105.0, 265.0, "FRAIS"),
            (480.0, 265.0, "10,00"),
            (530.0, 265.0, "20,00%"),
            (50.0, 300.0, "Détail"),
            (90.0, 300.0, "TVA"),
            (300.0, 300.0, "Taux"),
            (380.0, 300.0, "Base"),
            (480.0, 300.0, "Montant"),
            (300.0, 315.0, "20,00%"),
            (380.0, 315.0, "100,00"),
            (480.0, 315.0, "20,00"),
            (320.0, 350.0, "TOTAL"),
            (355.0, 350.0, "HT"),
            (400.0, 350.0, "TOTAL"),
            (435.0, 350.0, "TVA"),
            (480.0, 350.0, "TOTAL"),
            (515.0, 350.0, "TTC"),
            (50.0, 362.0, "Tout"),
            (80.0, 362.0, "retard"),
            (120.0, 362.0, "de"),
            (140.0, 362.0, "paiement"),
            (50.0, 374.0, "Indemnité"),
            (110.0, 374.0, "forfaitaire"),
            (320.0, 386.0, "100,00"),
            (400.0, 386.0, "20,00"),
            (480.0, 386.0, "120,00"),
        ]);
        let r = extract_invoice(&d);
        assert_eq!(r.value("tax_basis_total"), Some("100.00"));
        assert_eq!(r.value("tax_total"), Some("20.00"));
        assert_eq!(r.value("gross_total"), Some("120.00"));
        assert_eq!(r.value("net_total"), Some("95.00"));
        assert_eq!(r.value("allowance_total"), Some("5.00"));
        assert_eq!(r.value("charge_total"), Some("10.00"));
        assert_eq!(r.lines.len(), 2, "{:?}", r.lines);
    }

    /// OCR word confidences: at 0.9 or more no cost, below it in proportion.
    #[test]
    fn ocr_word_confidence_lowers_field_confidence() {
        let mut d = doc(&[
            (50.0, 80.0, "Rechnungsnummer:"),
            (300.0, 80.0, "RE-2026-17"),
        ]);
        let sure = extract_invoice(&d)
            .fields
            .get("invoice_number")
            .map(|f| f.confidence);
        for w in d
            .pages
            .iter_mut()
            .flat_map(|p| &mut p.lines)
            .flat_map(|l| &mut l.words)
        {
            w.confidence = 0.95;
        }
        let read = extract_invoice(&d)
            .fields
            .get("invoice_number")
            .map(|f| f.confidence);
        assert_eq!(sure, read);
        for w in d
            .pages
            .iter_mut()
            .flat_map(|p| &mut p.lines)
            .flat_map(|l| &mut l.words)
        {
            w.confidence = 0.6;
        }
        let doubtful = extract_invoice(&d)
            .fields
            .get("invoice_number")
            .map_or(1.0, |f| f.confidence);
        assert!(doubtful < 0.7, "{doubtful}");
    }

    #[test]
    fn missing_fields_are_omitted() {
        let d = doc(&[
            (50.0, 50.0, "Seite"),
            (90.0, 50.0, "1"),
            (50.0, 70.0, "Danke!"),
        ]);
        let r = extract_invoice(&d);
        assert!(r.fields.is_empty(), "{:?}", r.fields);
    }
}
#[cfg(test)]
mod scale_tests {
    use docpipe_core::{BBox, Document, Line, Page, TextSource, Word};

    #[test]
    fn empty_documents_give_empty_results() {
        for pages in [
            vec![],
            vec![Page {
                number: 1,
                width: 0.0,
                height: 0.0,
                lines: vec![],
            }],
        ] {
            let d = Document {
                source: TextSource::Ocr,
                pages,
            };
            let r = super::extract_invoice(&d);
            assert!(r.fields.is_empty() && r.lines.is_empty() && r.tax_breakdown.is_empty());
        }
    }

    /// 100 dense pages (60,000 words) finish in well under the bound even unoptimised;
    /// the bound only catches accidental quadratic work.
    #[test]
    fn a_hundred_dense_pages_stay_fast() {
        let word = |r: usize, c: usize| Word {
            text: if c.is_multiple_of(3) {
                format!("{},{:02}", r * 7 + c, c)
            } else {
                "Rechnungsposten".to_owned()
            },
            bbox: BBox::new(
                0.05 + c as f32 * 0.09,
                0.05 + r as f32 * 0.015,
                0.12 + c as f32 * 0.09,
                0.06 + r as f32 * 0.015,
            ),
            confidence: 1.0,
        };
        let pages = (1..=100)
            .map(|n| Page {
                number: n,
                width: 595.0,
                height: 842.0,
                lines: (0..60)
                    .filter_map(|r| Line::from_words((0..10).map(|c| word(r, c)).collect()))
                    .collect(),
            })
            .collect();
        let d = Document {
            source: TextSource::PdfText,
            pages,
        };
        let t = std::time::Instant::now();
        let r = super::extract_invoice(&d);
        assert!(t.elapsed().as_secs() < 30, "{:?}", t.elapsed());
        assert!(r.value("gross_total").is_none());
    }
}
