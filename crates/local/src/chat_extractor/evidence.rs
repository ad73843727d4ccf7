//! Confidence from evidence the document holds. A chat model's own confidence is not
//! worth much (it is rarely calibrated, and small local models give none reliably), so
//! each value is rated by whether the document text shows it:
//!
//! - a field whose value occurs in the text gets [`SEEN`] (over the default review
//!   threshold of 0.8) and the page and box where it occurs: an amount as an amount in
//!   any locale format (`1.234,50`, `1,234.50 EUR`), a date as a date in any common form
//!   (`01.03.2024`, `March 1, 2024`), a currency as its code, symbol or name, text
//!   (number, parties) as the same run of letters and digits, case and punctuation aside;
//!   a type code printed as such, or named by the title (380 "invoice", 381 "credit note");
//! - a line whose description and net amount both occur gets [`SEEN`] and the
//!   description's page and box;
//! - anything else gets [`UNSEEN`], under the threshold: the job goes to review, with a
//!   `low_confidence` reason naming the value.
//!
//! Whether the amounts agree with one another is the verify stage's business (its
//! arithmetic checks), not the confidence's.

use chrono::{Datelike, NaiveDate};
use docpipe_core::result::{AMOUNT_FIELDS, DATE_FIELDS};
use docpipe_core::{BBox, Document, InvoiceResult, Line};
use rust_decimal::Decimal;

use docpipe_invoice::{DateOrder, currency_of_name, currency_of_token, find_dates, parse_amount};

/// The confidence of a value the document text shows.
pub const SEEN: f32 = 0.9;
/// The confidence of a value the document text does not show.
pub const UNSEEN: f32 = 0.5;

/// Longest run of words read as one amount (`1 234,56 EUR`) or one date (`1. März 2024`).
const MAX_WINDOW: usize = 4;

/// Where on the document something was seen.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Place {
    page: u32,
    bbox: BBox,
}

/// One word of the document, folded into its alphanumeric pieces.
struct Token {
    text: String,
    page: u32,
    bbox: BBox,
}

/// What the document shows, read once: every amount and currency mention, the lines
/// (for dates), and the folded word pieces in reading order.
struct Seen<'a> {
    amounts: Vec<(Decimal, Place)>,
    /// Every line with its page number and text, for dates: finding dates costs five
    /// regular expressions a try, so only lines that print the year are tried, and a
    /// found date's own words are looked for only in its line.
    lines: Vec<(u32, &'a Line, String)>,
    currencies: Vec<(&'static str, Place)>,
    tokens: Vec<Token>,
}

/// Every date in `text`, read day first and, where a `/` makes it ambiguous, month first.
fn dates_in(text: &str) -> impl Iterator<Item = NaiveDate> {
    let orders: &[DateOrder] = if text.contains('/') {
        &[DateOrder::DayFirst, DateOrder::MonthFirst]
    } else {
        &[DateOrder::DayFirst]
    };
    orders
        .iter()
        .flat_map(move |order| find_dates(text, *order))
}

impl<'a> Seen<'a> {
    fn read(document: &'a Document) -> Self {
        let mut seen = Seen {
            amounts: Vec::new(),
            lines: Vec::new(),
            currencies: Vec::new(),
            tokens: Vec::new(),
        };
        for page in &document.pages {
            for line in &page.lines {
                let at = |bbox| Place {
                    page: page.number,
                    bbox,
                };
                let text = line.text();
                if let Some(code) = currency_of_name(&text) {
                    seen.currencies.push((code, at(line.bbox)));
                }
                seen.lines.push((page.number, line, text));
                for (i, word) in line.words.iter().enumerate() {
                    for piece in fold(&word.text) {
                        seen.tokens.push(Token {
                            text: piece,
                            page: page.number,
                            bbox: word.bbox,
                        });
                    }
                    if let Some(code) = currency_of_token(&word.text) {
                        seen.currencies.push((code, at(word.bbox)));
                    }
                    let mut text = String::new();
                    let mut bbox = word.bbox;
                    for next in line.words.iter().skip(i).take(MAX_WINDOW) {
                        if !text.is_empty() {
                            text.push(' ');
                        }
                        text.push_str(&next.text);
                        bbox = bbox.union(next.bbox);
                        if let Some(a) = parse_amount(&text) {
                            seen.amounts.push((a.value.abs(), at(bbox)));
                            if let Some(code) = a.currency {
                                seen.currencies.push((code, at(bbox)));
                            }
                        }
                    }
                }
            }
        }
        seen
    }

    fn amount(&self, value: &str) -> Option<Place> {
        let v: Decimal = value.parse().ok()?;
        let v = v.abs();
        self.amounts.iter().find(|(a, _)| *a == v).map(|(_, p)| *p)
    }

    /// The first line showing the date, and in it the fewest words that do.
    fn date(&self, value: &str) -> Option<Place> {
        let d = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
        // Every form prints the year's last two digits (`2024`, `24`, `20240301`).
        let year = format!("{:02}", d.year().rem_euclid(100));
        let (page, line, _) = self
            .lines
            .iter()
            .find(|(_, _, text)| text.contains(&year) && dates_in(text).any(|x| x == d))?;
        let words = &line.words;
        let bbox = (1..=MAX_WINDOW.min(words.len()))
            .flat_map(|n| words.windows(n))
            .find(|run| {
                let text: Vec<&str> = run.iter().map(|w| w.text.as_str()).collect();
                dates_in(&text.join(" ")).any(|x| x == d)
            })
            .map_or(line.bbox, |run| {
                run.iter().skip(1).fold(run[0].bbox, |b, w| b.union(w.bbox))
            });
        Some(Place { page: *page, bbox })
    }

    fn currency(&self, code: &str) -> Option<Place> {
        self.currencies
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, p)| *p)
    }

    /// The first run of words that holds `text`'s pieces in order, on one page.
    fn text(&self, text: &str) -> Option<Place> {
        let want = fold(text);
        if want.is_empty() || want.len() > self.tokens.len() {
            return None;
        }
        self.tokens.windows(want.len()).find_map(|run| {
            let page = run[0].page;
            let same = run
                .iter()
                .zip(&want)
                .all(|(t, w)| t.page == page && t.text == *w);
            same.then(|| Place {
                page,
                bbox: run.iter().skip(1).fold(run[0].bbox, |b, t| b.union(t.bbox)),
            })
        })
    }

    fn type_code(&self, code: &str) -> Option<Place> {
        let titles: &[&str] = match code {
            "380" => &[
                "invoice", "rechnung", "facture", "factuur", "fattura", "factura",
            ],
            "381" => &[
                "credit note",
                "gutschrift",
                "avoir",
                "creditnota",
                "nota di credito",
            ],
            _ => &[],
        };
        self.text(code)
            .or_else(|| titles.iter().find_map(|t| self.text(t)))
    }
}

/// Lower case, split into runs of letters and digits: `R-2024/001` -> `r 2024 001`.
fn fold(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Rates every field and line of `result` against what `document` shows (see the module
/// documentation), setting confidence, page and box.
pub fn rate(result: &mut InvoiceResult, document: &Document) {
    let seen = Seen::read(document);
    for (name, field) in result.fields.iter_mut() {
        let value = field.value.as_str();
        let place = if AMOUNT_FIELDS.contains(&name.as_str()) {
            seen.amount(value)
        } else if DATE_FIELDS.contains(&name.as_str()) {
            seen.date(value)
        } else if name == "currency" {
            seen.currency(value)
        } else if name == "type_code" {
            seen.type_code(value)
        } else {
            seen.text(value)
        };
        field.confidence = if place.is_some() { SEEN } else { UNSEEN };
        field.page = place.map(|p| p.page);
        field.bbox = place.map(|p| p.bbox);
    }
    for line in &mut result.lines {
        let described = seen.text(&line.description);
        let amount = seen.amount(&line.net_amount.to_string());
        line.confidence = if described.is_some() && amount.is_some() {
            SEEN
        } else {
            UNSEEN
        };
        line.page = described.map(|p| p.page);
        line.bbox = described.map(|p| p.bbox);
    }
}

#[cfg(test)]
mod tests {
    use docpipe_core::{Field, Line, LineItem, Page, ResultSource, TextSource, Word};

    use super::*;

    fn document(lines: &[&str]) -> Document {
        let lines = lines
            .iter()
            .enumerate()
            .filter_map(|(row, text)| {
                let y = 0.05 + row as f32 * 0.05;
                Line::from_words(
                    text.split(' ')
                        .enumerate()
                        .map(|(i, w)| Word {
                            text: w.to_owned(),
                            bbox: BBox::new(0.1 * i as f32, y, 0.1 * i as f32 + 0.08, y + 0.02),
                            confidence: 1.0,
                        })
                        .collect(),
                )
            })
            .collect();
        Document {
            source: TextSource::PdfText,
            pages: vec![Page {
                number: 1,
                width: 595.0,
                height: 842.0,
                lines,
            }],
        }
    }

    fn rated(doc: &Document, fields: &[(&str, &str)]) -> InvoiceResult {
        let mut r = InvoiceResult::new(ResultSource::Llm);
        for (name, value) in fields {
            r.set(name, Field::new(*value, 0.0));
        }
        rate(&mut r, doc);
        r
    }

    #[test]
    fn values_the_text_shows_are_seen_in_any_format() {
        let doc = document(&[
            "Rechnung Nr. R-2024/001",
            "Datum: 01.03.2024 fällig 31. März 2024",
            "Lieferant: Muster GmbH & Co. KG",
            "Summe brutto 1.234,50 €",
        ]);
        let r = rated(
            &doc,
            &[
                ("invoice_number", "R-2024/001"),
                ("issue_date", "2024-03-01"),
                ("due_date", "2024-03-31"),
                ("seller_name", "Muster GmbH & Co KG"),
                ("gross_total", "1234.50"),
                ("currency", "EUR"),
                ("type_code", "380"),
            ],
        );
        for (name, f) in &r.fields {
            assert_eq!(f.confidence, SEEN, "{name} is printed");
            assert_eq!(f.page, Some(1), "{name}");
        }
        // The box is where the value stands: the gross total is on the fourth row.
        let b = r.fields["gross_total"].bbox.expect("box");
        assert!(b.y0 > 0.19 && b.y1 < 0.23, "{b:?}");
    }

    #[test]
    fn values_the_text_does_not_show_are_unseen() {
        let doc = document(&["Invoice 42", "Total 100.00 EUR"]);
        let r = rated(
            &doc,
            &[
                ("invoice_number", "43"),
                ("gross_total", "100.01"),
                ("currency", "USD"),
                ("issue_date", "2024-03-01"),
                ("buyer_name", "Nobody Ltd"),
                ("type_code", "381"),
            ],
        );
        for (name, f) in &r.fields {
            assert_eq!(f.confidence, UNSEEN, "{name} is not printed");
            assert_eq!(f.bbox, None, "{name}");
        }
    }

    #[test]
    fn a_line_needs_its_description_and_its_amount() {
        let doc = document(&["Widgets blue 20 9,90 198,00", "Gadgets 1 5,00 5,00"]);
        let mut r = InvoiceResult::new(ResultSource::Llm);
        for (description, net) in [("Widgets blue", "198.00"), ("Gadgets", "6.00")] {
            r.lines.push(LineItem {
                description: description.to_owned(),
                net_amount: net.parse().expect("decimal"),
                ..LineItem::default()
            });
        }
        rate(&mut r, &doc);
        assert_eq!(r.lines[0].confidence, SEEN);
        assert_eq!(r.lines[0].page, Some(1));
        assert_eq!(r.lines[1].confidence, UNSEEN, "6.00 is not printed");
    }
}
