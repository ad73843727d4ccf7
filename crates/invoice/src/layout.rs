//! Visual rows rebuilt from word boxes. Text engines split a page into lines in different
//! ways (a label and its value far to the right may come as two lines), so the extractor
//! regroups every word of a page by vertical overlap into rows, and each row into cells at
//! wide gaps. Labels are matched on folded tokens; values are read to the right of a label
//! on its row or in the aligned cell below.

use docpipe_core::{BBox, Document};

use super::text::tokens;

/// One word as the extractor sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tok {
    pub text: String,
    pub bbox: BBox,
    pub confidence: f32,
    /// Folded alphanumeric pieces of the text.
    pub norm: Vec<String>,
}

/// Words on one visual row of one page, left to right, split into cells at wide gaps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub page: u32,
    pub words: Vec<Tok>,
    pub bbox: BBox,
    /// Index of the cell of each word.
    pub cell_of: Vec<usize>,
    /// Every token of the row: (token, word index, first of its word, last of its word).
    flat: Vec<(String, usize, bool, bool)>,
}

impl Row {
    pub(crate) fn text(&self) -> String {
        join(&self.words)
    }

    /// The text of the words in `from..to`.
    pub(crate) fn text_range(&self, from: usize, to: usize) -> String {
        join(self.words.get(from..to).unwrap_or_default())
    }

    /// Word index ranges of the cells.
    pub(crate) fn cells(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (i, c) in self.cell_of.iter().enumerate() {
            match out.last_mut() {
                Some(last) if self.cell_of.get(last.0) == Some(c) => last.1 = i + 1,
                _ => out.push((i, i + 1)),
            }
        }
        out
    }

    /// The box of the words in `from..to`.
    pub(crate) fn span_box(&self, from: usize, to: usize) -> Option<BBox> {
        let ws = self.words.get(from..to)?;
        let first = ws.first()?.bbox;
        Some(ws.iter().fold(first, |b, w| b.union(w.bbox)))
    }

    /// The lowest word confidence in `from..to`.
    pub(crate) fn span_confidence(&self, from: usize, to: usize) -> f32 {
        self.words
            .get(from..to)
            .unwrap_or_default()
            .iter()
            .map(|w| w.confidence)
            .fold(1.0, f32::min)
    }

    pub(crate) fn height(&self) -> f32 {
        self.bbox.height().max(0.004)
    }
}

fn join(ws: &[Tok]) -> String {
    ws.iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every row of the document, page by page, top to bottom.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Layout {
    pub rows: Vec<Row>,
}

/// Where a label was found: row and word span `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LabelHit {
    pub row: usize,
    pub start: usize,
    pub end: usize,
    /// Number of tokens matched (longer labels are more specific).
    pub len: usize,
    /// The label begins a cell.
    pub at_cell_start: bool,
}

impl Layout {
    pub(crate) fn new(document: &Document) -> Self {
        let mut rows = Vec::new();
        for page in &document.pages {
            let mut words: Vec<Tok> = page
                .lines
                .iter()
                .flat_map(|l| &l.words)
                .flat_map(|w| split_word(&w.text, w.bbox, w.confidence))
                .collect();
            words.sort_by(|a, b| a.bbox.center_y().total_cmp(&b.bbox.center_y()));
            let mut page_rows: Vec<Vec<Tok>> = Vec::new();
            let mut current: Vec<Tok> = Vec::new();
            let mut band = (0.0_f32, 0.0_f32);
            for w in words {
                let h = w.bbox.height().max(0.002);
                let cy = w.bbox.center_y();
                let fits = !current.is_empty()
                    && cy >= band.0 - h * 0.1
                    && cy <= band.1 + h * 0.1
                    && (w.bbox.y0.max(band.0) < w.bbox.y1.min(band.1));
                if fits {
                    current.push(w);
                } else {
                    if !current.is_empty() {
                        page_rows.push(std::mem::take(&mut current));
                    }
                    band = (w.bbox.y0, w.bbox.y1);
                    current.push(w);
                }
            }
            if !current.is_empty() {
                page_rows.push(current);
            }
            for mut ws in page_rows {
                ws.sort_by(|a, b| a.bbox.x0.total_cmp(&b.bbox.x0));
                let Some(first) = ws.first().map(|w| w.bbox) else {
                    continue;
                };
                let bbox = ws.iter().fold(first, |b, w| b.union(w.bbox));
                let mut heights: Vec<f32> = ws.iter().map(|w| w.bbox.height()).collect();
                heights.sort_by(f32::total_cmp);
                let h = heights.get(heights.len() / 2).copied().unwrap_or(0.01);
                let mut cell_of = Vec::with_capacity(ws.len());
                let mut cell = 0;
                for (i, w) in ws.iter().enumerate() {
                    if i > 0
                        && let Some(prev) = ws.get(i - 1)
                    {
                        // Gap in page-width units; heights are page-height units, so scale.
                        let gap = (w.bbox.x0 - prev.bbox.x1) * page.width.max(1.0);
                        let em = h * page.height.max(1.0);
                        if gap > em * 0.9 {
                            cell += 1;
                        }
                    }
                    cell_of.push(cell);
                }
                let flat = ws
                    .iter()
                    .enumerate()
                    .flat_map(|(wi, w)| {
                        let n = w.norm.len();
                        w.norm
                            .iter()
                            .enumerate()
                            .map(move |(ti, t)| (t.clone(), wi, ti == 0, ti + 1 == n))
                    })
                    .collect();
                rows.push(Row {
                    page: page.number,
                    words: ws,
                    bbox,
                    cell_of,
                    flat,
                });
            }
        }
        Layout { rows }
    }

    #[cfg(test)]
    /// Every place `label` (folded tokens) occurs on a word boundary.
    pub(crate) fn find(&self, label: &[&str]) -> Vec<LabelHit> {
        let mut out = Vec::new();
        for (ri, row) in self.rows.iter().enumerate() {
            out.extend(find_in_row(row, label).into_iter().map(|(s, e)| LabelHit {
                row: ri,
                start: s,
                end: e,
                len: label.len(),
                at_cell_start: s == 0 || row.cell_of.get(s) != row.cell_of.get(s.saturating_sub(1)),
            }));
        }
        out
    }

    /// `label` (folded tokens) starting at token `i` of row `ri`, on word boundaries.
    pub(crate) fn find_at(&self, ri: usize, i: usize, label: &[&str]) -> Option<LabelHit> {
        let row = self.rows.get(ri)?;
        let window = row.flat.get(i..i + label.len())?;
        if !window.iter().zip(label).all(|(f, l)| f.0 == *l) {
            return None;
        }
        let (first, last) = (window.first()?, window.last()?);
        if !(first.2 && last.3) {
            return None;
        }
        let (s, e) = (first.1, last.1 + 1);
        Some(LabelHit {
            row: ri,
            start: s,
            end: e,
            len: label.len(),
            at_cell_start: s == 0 || row.cell_of.get(s) != row.cell_of.get(s.saturating_sub(1)),
        })
    }

    /// The folded tokens of row `ri`, in order.
    pub(crate) fn tokens_of(&self, ri: usize) -> impl Iterator<Item = &str> {
        self.rows
            .get(ri)
            .into_iter()
            .flat_map(|r| r.flat.iter().map(|f| f.0.as_str()))
    }

    /// The aligned cell below a span: the first row beneath (within a few row heights, same
    /// page) holding a cell that overlaps the span horizontally. Returns row and word range.
    pub(crate) fn below(
        &self,
        row: usize,
        span: BBox,
        max_rows: usize,
    ) -> Option<(usize, usize, usize)> {
        let r = self.rows.get(row)?;
        // About a row and a half per row searched (4.5 row heights for three rows).
        let limit = r.bbox.y1 + r.height() * 1.5 * max_rows.max(3) as f32;
        for (ri, cand) in self.rows.iter().enumerate().skip(row + 1).take(max_rows) {
            if cand.page != r.page || cand.bbox.y0 > limit {
                return None;
            }
            for (s, e) in cand.cells() {
                let Some(b) = cand.span_box(s, e) else {
                    continue;
                };
                let overlap = b.x1.min(span.x1 + 0.01) - b.x0.max(span.x0 - 0.01);
                if overlap > 0.0 {
                    return Some((ri, s, e));
                }
            }
        }
        None
    }
}

/// Word spans of `row` whose tokens spell `label`, starting and ending on word boundaries.
#[cfg(test)]
fn find_in_row(row: &Row, label: &[&str]) -> Vec<(usize, usize)> {
    let flat = &row.flat;
    let mut out = Vec::new();
    let Some(head) = label.first() else {
        return out;
    };
    if flat.len() < label.len() {
        return out;
    }
    for i in 0..=(flat.len() - label.len()) {
        if flat.get(i).is_none_or(|f| f.0 != *head) {
            continue;
        }
        let Some(window) = flat.get(i..i + label.len()) else {
            continue;
        };
        let matches = window.iter().zip(label).all(|(f, l)| f.0 == *l);
        let (Some(first), Some(last)) = (window.first(), window.last()) else {
            continue;
        };
        if matches && first.2 && last.3 {
            out.push((first.1, last.1 + 1));
        }
    }
    out
}

/// Splits glued label/value words: `Customer:2` -> `Customer:` `2`; `n°562044387` ->
/// `n°` `562044387`; `#123` -> `#` `123`. Boxes are divided by character count.
fn split_word(text: &str, bbox: BBox, confidence: f32) -> Vec<Tok> {
    let mut cut: Option<usize> = None;
    if let Some(i) = text.find(':') {
        let after = &text[i + 1..];
        if i > 0
            && !after.is_empty()
            && !after.starts_with(|c: char| {
                c.is_ascii_digit() && text[..i].chars().all(|c| c.is_ascii_digit())
            })
        {
            cut = Some(i + 1);
        }
    }
    for prefix in ["n°", "N°", "nº", "Nº", "#"] {
        if let Some(rest) = text.strip_prefix(prefix)
            && !rest.is_empty()
        {
            cut = Some(prefix.len());
        }
    }
    // "Käufer/Leistungsempfänger": two words.
    if cut.is_none()
        && let Some(i) = text.find('/')
    {
        let (a, b) = (&text[..i], &text[i + 1..]);
        let wordy = |s: &str| {
            s.chars().filter(|c| c.is_alphabetic()).count() >= 3
                && !s.chars().any(|c| c.is_ascii_digit())
        };
        if wordy(a) && wordy(b) {
            cut = Some(i + 1);
        }
    }
    let make = |t: &str, b: BBox| Tok {
        text: t.to_owned(),
        bbox: b,
        confidence,
        norm: tokens(t),
    };
    match cut {
        Some(i) if i < text.len() => {
            let (a, b) = text.split_at(i);
            let total = text.chars().count().max(1) as f32;
            let frac = a.chars().count() as f32 / total;
            let xm = bbox.x0 + bbox.width() * frac;
            vec![
                make(a, BBox::new(bbox.x0, bbox.y0, xm, bbox.y1)),
                make(b, BBox::new(xm, bbox.y0, bbox.x1, bbox.y1)),
            ]
        }
        _ => vec![make(text, bbox)],
    }
}

#[cfg(test)]
pub(crate) mod testdoc {
    //! Small hand-built documents for unit tests.
    use docpipe_core::{BBox, Document, Line, Page, TextSource, Word};

    /// Builds a one-page A4 document from `(x, y, text)` words, where x and y are in
    /// points; each word is 6 pt wide per character and 10 pt high.
    pub(crate) fn doc(words: &[(f32, f32, &str)]) -> Document {
        let (w, h) = (595.0_f32, 842.0_f32);
        let lines = words
            .iter()
            .filter_map(|(x, y, t)| {
                let width = 6.0 * t.chars().count() as f32;
                Line::from_words(vec![Word {
                    text: (*t).to_owned(),
                    bbox: BBox::new(x / w, y / h, (x + width) / w, (y + 10.0) / h),
                    confidence: 1.0,
                }])
            })
            .collect();
        Document {
            source: TextSource::PdfText,
            pages: vec![Page {
                number: 1,
                width: w,
                height: h,
                lines,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testdoc::doc;
    use super::*;

    #[test]
    fn rows_regroup_words_and_cells_split_at_gaps() {
        let d = doc(&[
            (50.0, 100.0, "Invoice"),
            (100.0, 100.0, "number:"),
            (300.0, 101.0, "A-17"),
            (50.0, 130.0, "Total"),
        ]);
        let l = Layout::new(&d);
        assert_eq!(l.rows.len(), 2);
        let r = &l.rows[0];
        assert_eq!(r.text(), "Invoice number: A-17");
        assert_eq!(r.cells(), vec![(0, 2), (2, 3)]);
        let hits = l.find(&["invoice", "number"]);
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].start, hits[0].end), (0, 2));
    }

    #[test]
    fn labels_match_on_word_boundaries_only() {
        let d = doc(&[(50.0, 100.0, "USt.-Id.-Nr.:"), (200.0, 100.0, "DE123")]);
        let l = Layout::new(&d);
        assert!(l.find(&["ust"]).is_empty());
        assert_eq!(l.find(&["ust", "id", "nr"]).len(), 1);
    }

    #[test]
    fn glued_words_are_split() {
        let d = doc(&[(50.0, 100.0, "Facture"), (110.0, 100.0, "n°562044387")]);
        let l = Layout::new(&d);
        assert_eq!(l.rows[0].words.len(), 3);
        assert_eq!(l.rows[0].words[2].text, "562044387");
    }

    #[test]
    fn below_finds_the_aligned_cell() {
        let d = doc(&[
            (50.0, 100.0, "Invoice"),
            (300.0, 100.0, "Due"),
            (50.0, 114.0, "03/20/2023"),
            (300.0, 114.0, "04/04/2023"),
        ]);
        let l = Layout::new(&d);
        let hit = l.find(&["due"]);
        let span = l.rows[0]
            .span_box(hit[0].start, hit[0].end)
            .unwrap_or_default();
        let (r, s, e) = l.below(0, span, 3).unwrap_or((0, 0, 0));
        assert_eq!(l.rows[r].text_range(s, e), "04/04/2023");
    }
}
