//! Tesseract's `tsv` output -> the document model's lines and words.
//!
//! Columns: `level page_num block_num par_num line_num word_num left top width height conf
//! text`. Level 1 is the page (its box is the whole image), level 5 a word; confidence is
//! 0..100 for words and -1 for structural rows. Boxes are pixels, origin top-left.
//!
//! A page scanned a little crooked comes back with Tesseract's lines right (its layout
//! analysis follows the skew) but with boxes in the tilted image: a label on the left and
//! its amount on the right of one printed row sit at different heights, and anything that
//! regroups words into rows by height splits them. So the skew is measured from the lines
//! themselves and every word box is turned back about the page centre (see [`deskew`]).

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
    let mut px_lines: Vec<Vec<PxWord>> = Vec::new();
    let mut current: Option<LineKey> = None;
    for r in rows.iter().filter(|r| r.level == 5 && r.conf >= 0.0) {
        let text = r.text.trim();
        if text.is_empty() {
            continue;
        }
        let word = PxWord {
            // Tesseract splits on spaces, but keep the model's "no spaces" promise anyway.
            text: text.split_whitespace().collect::<Vec<_>>().join(""),
            x0: r.left,
            y0: r.top,
            x1: r.left + r.width.max(0.0),
            y1: r.top + r.height.max(0.0),
            confidence: (r.conf / 100.0).clamp(0.0, 1.0),
        };
        match px_lines.last_mut() {
            Some(words) if current == Some(r.line_key) => words.push(word),
            _ => {
                px_lines.push(vec![word]);
                current = Some(r.line_key);
            }
        }
    }
    deskew(&mut px_lines, w, h);
    let lines = px_lines
        .into_iter()
        .filter_map(|words| {
            Line::from_words(
                words
                    .into_iter()
                    .map(|p| Word {
                        text: p.text,
                        bbox: BBox::new(p.x0 / w, p.y0 / h, p.x1 / w, p.y1 / h),
                        confidence: p.confidence,
                    })
                    .collect(),
            )
        })
        .collect();
    Ok(RecognisedImage {
        width_px: w as u32,
        height_px: h as u32,
        lines,
    })
}

/// A recognised word with its box in image pixels.
#[derive(Debug, Clone, PartialEq)]
struct PxWord {
    text: String,
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    confidence: f32,
}

impl PxWord {
    fn centre(&self) -> (f32, f32) {
        ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)
    }
}

/// Skew below this (radians, ~0.15 degree) is left alone: it moves a row's ends by less
/// than a third of a line on an A4 page, and a straight page stays exactly as read.
const MIN_SKEW: f32 = 0.0026;
/// Skew above this (~8 degrees) is no crooked scan but a page turned on purpose or a
/// misreading; Tesseract's orientation handling is the place for those.
const MAX_SKEW: f32 = 0.14;

/// The page's skew as the slope (dy/dx) of its text lines: the median over lines that
/// span a fair width with several words, each line's slope fitted through its words'
/// centres. `None` with fewer than three such lines.
fn skew_slope(lines: &[Vec<PxWord>], page_width: f32) -> Option<f32> {
    let mut slopes: Vec<f32> = lines
        .iter()
        .filter(|l| l.len() >= 3)
        .filter_map(|l| {
            let pts: Vec<(f32, f32)> = l.iter().map(PxWord::centre).collect();
            let n = pts.len() as f32;
            let mx = pts.iter().map(|p| p.0).sum::<f32>() / n;
            let my = pts.iter().map(|p| p.1).sum::<f32>() / n;
            let sxx: f32 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
            let sxy: f32 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
            let span = l.last()?.x1 - l.first()?.x0;
            (span >= 0.15 * page_width && sxx > 0.0).then(|| sxy / sxx)
        })
        .filter(|s| s.is_finite() && s.abs() < 0.5)
        .collect();
    if slopes.len() < 3 {
        return None;
    }
    slopes.sort_by(f32::total_cmp);
    slopes.get(slopes.len() / 2).copied()
}

/// Turns every word box back by the page's measured skew, about the page centre: each
/// box keeps its size and moves its centre, so the words of one printed row end at one
/// height. Pages with no measurable or a negligible skew are left untouched.
fn deskew(lines: &mut [Vec<PxWord>], w: f32, h: f32) {
    let Some(slope) = skew_slope(lines, w) else {
        return;
    };
    let angle = slope.atan();
    if !(MIN_SKEW..=MAX_SKEW).contains(&angle.abs()) {
        return;
    }
    tracing::debug!(degrees = angle.to_degrees(), "OCR page de-skewed");
    let (sin, cos) = angle.sin_cos();
    let (ox, oy) = (w / 2.0, h / 2.0);
    for word in lines.iter_mut().flatten() {
        let (cx, cy) = word.centre();
        let (dx, dy) = (cx - ox, cy - oy);
        // A row y = y0 + x tan(a) maps to the constant y' = y0 cos(a).
        let nx = ox + dx * cos + dy * sin;
        let ny = oy - dx * sin + dy * cos;
        let (hw, hh) = ((word.x1 - word.x0) / 2.0, (word.y1 - word.y0) / 2.0);
        word.x0 = nx - hw;
        word.x1 = nx + hw;
        word.y0 = ny - hh;
        word.y1 = ny + hh;
    }
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

    /// A TSV page of `rows` printed rows of five words across the page, turned by `slope`
    /// (dy/dx) about the page centre.
    fn skewed_page(rows: usize, slope: f32) -> String {
        let (w, h) = (1700.0f32, 2200.0f32);
        let mut tsv = format!("{HEADER}\n1\t1\t0\t0\t0\t0\t0\t0\t{w}\t{h}\t-1\t\n");
        for row in 0..rows {
            let y = 300.0 + 100.0 * row as f32;
            for word in 0..5 {
                let x = 150.0 + 300.0 * word as f32;
                let (cx, cy) = (x + 60.0, y + 12.0);
                let cy = cy + (cx - w / 2.0) * slope;
                tsv.push_str(&format!(
                    "5\t1\t1\t1\t{}\t{}\t{:.0}\t{:.0}\t120\t24\t90\tw{row}_{word}\n",
                    row + 1,
                    word + 1,
                    cx - 60.0,
                    cy - 12.0
                ));
            }
        }
        tsv
    }

    #[test]
    fn a_crooked_page_comes_back_straight() {
        // 1.5 degrees: the row's ends are 35 px apart in height, more than a word is tall.
        let slope = 1.5f32.to_radians().tan();
        let r = parse_tsv(&skewed_page(6, slope)).expect("parses");
        assert_eq!(r.lines.len(), 6);
        let straight = parse_tsv(&skewed_page(6, 0.0)).expect("parses");
        for (line, flat) in r.lines.iter().zip(&straight.lines) {
            assert_eq!(line.text(), flat.text());
            let ys: Vec<f32> = line.words.iter().map(|w| w.bbox.center_y()).collect();
            let spread = ys.iter().copied().fold(f32::MIN, f32::max)
                - ys.iter().copied().fold(f32::MAX, f32::min);
            // Within a pixel or two of 2200: the words of a row overlap in height again.
            assert!(spread * 2200.0 < 2.0, "{ys:?}");
            let first = &line.words[0].bbox;
            assert!(first.height() > 0.0 && (first.height() * 2200.0 - 24.0).abs() < 1.0);
        }
        // Words keep their size and the page keeps its rows apart.
        assert!(r.lines[1].bbox.y0 > r.lines[0].bbox.y1);
    }

    #[test]
    fn a_straight_page_is_untouched() {
        let tsv = skewed_page(6, 0.0);
        let r = parse_tsv(&tsv).expect("parses");
        let w = &r.lines[2].words[3];
        assert_eq!(
            w.bbox,
            BBox::new(
                1050.0 / 1700.0,
                500.0 / 2200.0,
                1170.0 / 1700.0,
                524.0 / 2200.0
            )
        );
        // A tiny tilt (0.05 degree) is left as read, and so is a page with too few lines.
        let slope = 0.05f32.to_radians().tan();
        let tiny = parse_tsv(&skewed_page(6, slope)).expect("parses");
        // The last word of the first row, centre x 1410 (560 right of the page centre).
        let top_px = (300.0 + 560.0 * slope).round();
        assert!((tiny.lines[0].words[4].bbox.y0 - top_px / 2200.0).abs() < 1e-6);
        let few = parse_tsv(&skewed_page(2, 0.03)).expect("parses");
        let ys: Vec<f32> = few.lines[0].words.iter().map(|w| w.bbox.y0).collect();
        assert!(ys[4] > ys[0] + 0.01, "{ys:?}");
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
