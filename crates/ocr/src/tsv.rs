//! Tesseract's `tsv` output -> the document model's lines and words.
//!
//! Columns: `level page_num block_num par_num line_num word_num left top width height conf
//! text`. Level 1 is the page (its box is the whole image), level 5 a word; confidence is
//! 0..100 for words and -1 for structural rows. Boxes are pixels, origin top-left.

use docpipe_core::{BBox, Line, Word};

/// One recognised image: its size in pixels and its lines in Tesseract's reading order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecognisedImage {
    pub width_px: u32,
    pub height_px: u32,
    pub lines: Vec<Line>,
}

/// Why a TSV reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsvError {
    #[error("tesseract's output has no TSV header")]
    NoHeader,
    #[error("tesseract's output gives no page size")]
    NoPageSize,
}

const HEADER: &str =
    "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext";

/// Which line a word is on: page, block, paragraph, line.
type LineKey = (u32, u32, u32, u32);

struct Row<'a> {
    level: u32,
    line_key: LineKey,
    left: f32,
    top: f32,
    width: f32,
    height: f32,
    conf: f32,
    text: &'a str,
}

fn row(line: &str) -> Option<Row<'_>> {
    // The text is the last column and never holds a tab; split the 11 numbers off first.
    let mut cols = line.splitn(12, '\t');
    let mut num = || cols.next().and_then(|c| c.trim().parse::<f64>().ok());
    let level = num()? as u32;
    let page = num()? as u32;
    let block = num()? as u32;
    let par = num()? as u32;
    let line_num = num()? as u32;
    let _word = num()?;
    let (left, top, width, height, conf) = (num()?, num()?, num()?, num()?, num()?);
    let text = cols.next().unwrap_or("");
    let finite = [left, top, width, height, conf]
        .iter()
        .all(|v| v.is_finite());
    finite.then_some(Row {
        level,
        line_key: (page, block, par, line_num),
        left: left as f32,
        top: top as f32,
        width: width as f32,
        height: height as f32,
        conf: conf as f32,
        text: text.trim_end_matches(['\r', '\n']),
    })
}

/// Parses one page of TSV. Words come out with boxes normalised to the image (0..1,
/// origin top-left) and confidence in 0..1; rows that are not words, words with no text
/// and malformed rows are skipped.
pub fn parse_tsv(tsv: &str) -> Result<RecognisedImage, TsvError> {
    let mut lines_in = tsv.lines();
    let header = lines_in.next().ok_or(TsvError::NoHeader)?;
    if header.trim_end() != HEADER {
        return Err(TsvError::NoHeader);
    }
    let rows: Vec<Row<'_>> = lines_in.filter_map(row).collect();
    let page = rows
        .iter()
        .find(|r| r.level == 1 && r.width >= 1.0 && r.height >= 1.0)
        .ok_or(TsvError::NoPageSize)?;
    let (w, h) = (page.width, page.height);
    let mut lines: Vec<Line> = Vec::new();
    let mut current: Option<(LineKey, Vec<Word>)> = None;
    for r in rows.iter().filter(|r| r.level == 5 && r.conf >= 0.0) {
        let text = r.text.trim();
        if text.is_empty() {
            continue;
        }
        let word = Word {
            // Tesseract splits on spaces, but keep the model's "no spaces" promise anyway.
            text: text.split_whitespace().collect::<Vec<_>>().join(""),
            bbox: BBox::new(
                r.left / w,
                r.top / h,
                (r.left + r.width) / w,
                (r.top + r.height) / h,
            ),
            confidence: (r.conf / 100.0).clamp(0.0, 1.0),
        };
        match current.as_mut() {
            Some((key, words)) if *key == r.line_key => words.push(word),
            _ => {
                if let Some((_, words)) = current.take() {
                    lines.extend(Line::from_words(words));
                }
                current = Some((r.line_key, vec![word]));
            }
        }
    }
    if let Some((_, words)) = current {
        lines.extend(Line::from_words(words));
    }
    Ok(RecognisedImage {
        width_px: w as u32,
        height_px: h as u32,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t1000\t2000\t-1\t
2\t1\t1\t0\t0\t0\t100\t200\t400\t60\t-1\t
3\t1\t1\t1\t0\t0\t100\t200\t400\t60\t-1\t
4\t1\t1\t1\t1\t0\t100\t200\t400\t20\t-1\t
5\t1\t1\t1\t1\t1\t100\t200\t150\t20\t96.5\tRechnung
5\t1\t1\t1\t1\t2\t260\t200\t240\t20\t91.25\tNr.
4\t1\t1\t1\t2\t0\t100\t240\t400\t20\t-1\t
5\t1\t1\t1\t2\t1\t100\t240\t100\t20\t-1\t 
5\t1\t1\t1\t2\t2\t300\t240\t200\t20\t45\t235,62
5\t1\t1\t1\t2\t3\t520\t240\t30\t20\t88\t 
garbage line
2\t1\t2\t0\t0\t0\t600\t1800\t300\t40\t-1\t
5\t1\t2\t1\t1\t1\t600\t1800\t300\t40\t130\tEUR
";

    #[test]
    fn words_lines_boxes_and_confidences() {
        let r = parse_tsv(SAMPLE).expect("parses");
        assert_eq!((r.width_px, r.height_px), (1000, 2000));
        let texts: Vec<String> = r.lines.iter().map(|l| l.text()).collect();
        assert_eq!(texts, ["Rechnung Nr.", "235,62", "EUR"]);
        let w = &r.lines[0].words[0];
        assert_eq!(w.bbox, BBox::new(0.1, 0.1, 0.25, 0.11));
        assert!((w.confidence - 0.965).abs() < 1e-6);
        assert!((r.lines[1].words[0].confidence - 0.45).abs() < 1e-6);
        // Confidences over 100 are clamped; boxes stay inside the page.
        assert_eq!(r.lines[2].words[0].confidence, 1.0);
        assert!(r.lines[2].bbox.y1 <= 1.0);
        assert_eq!(r.lines[0].bbox, BBox::new(0.1, 0.1, 0.5, 0.11));
    }

    #[test]
    fn empty_page_and_bad_output() {
        let empty = format!("{HEADER}\n1\t1\t0\t0\t0\t0\t0\t0\t640\t480\t-1\t\n");
        let r = parse_tsv(&empty).expect("parses");
        assert!(r.lines.is_empty());
        assert_eq!((r.width_px, r.height_px), (640, 480));
        assert_eq!(parse_tsv(""), Err(TsvError::NoHeader));
        assert_eq!(parse_tsv("hello\n"), Err(TsvError::NoHeader));
        assert_eq!(parse_tsv(&format!("{HEADER}\n")), Err(TsvError::NoPageSize));
    }

    #[test]
    fn box_past_the_page_is_clamped() {
        let tsv = format!(
            "{HEADER}\n1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n5\t1\t1\t1\t1\t1\t90\t95\t50\t50\t80\tx\n"
        );
        let r = parse_tsv(&tsv).expect("parses");
        assert_eq!(r.lines[0].words[0].bbox, BBox::new(0.9, 0.95, 1.0, 1.0));
    }
}
