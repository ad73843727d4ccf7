//! The normalised document model every OCR engine produces: pages -> lines -> words, each
//! word with a box normalised to 0..1 (origin top-left) and a confidence. Extractors read
//! only this model, so a PDF text layer, a raster OCR engine and Textract are
//! interchangeable.

use serde::{Deserialize, Serialize};

/// An axis-aligned box in page coordinates normalised to 0..1, origin at the top left:
/// `x0 <= x1`, `y0 <= y1`. Serialised as `[x0, y0, x1, y1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(from = "[f32; 4]", into = "[f32; 4]")]
pub struct BBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl BBox {
    /// A box from two corners in any order, clamped to 0..1.
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        let c = |v: f32| {
            if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        Self {
            x0: c(x0.min(x1)),
            y0: c(y0.min(y1)),
            x1: c(x0.max(x1)),
            y1: c(y0.max(y1)),
        }
    }

    /// The smallest box holding both.
    pub fn union(self, other: BBox) -> BBox {
        BBox {
            x0: self.x0.min(other.x0),
            y0: self.y0.min(other.y0),
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
        }
    }

    pub fn width(self) -> f32 {
        self.x1 - self.x0
    }

    pub fn height(self) -> f32 {
        self.y1 - self.y0
    }

    pub fn center_y(self) -> f32 {
        (self.y0 + self.y1) / 2.0
    }

    pub fn center_x(self) -> f32 {
        (self.x0 + self.x1) / 2.0
    }
}

impl From<[f32; 4]> for BBox {
    fn from(a: [f32; 4]) -> Self {
        BBox::new(a[0], a[1], a[2], a[3])
    }
}

impl From<BBox> for [f32; 4] {
    fn from(b: BBox) -> Self {
        [b.x0, b.y0, b.x1, b.y1]
    }
}

/// One word: text with no spaces, its box and the engine's confidence in 0..1 (1.0 for a
/// PDF text layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub confidence: f32,
}

/// A line of words in reading order (left to right).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub words: Vec<Word>,
    #[serde(rename = "box")]
    pub bbox: BBox,
}

impl Line {
    /// Builds a line from words and computes its box. `None` for no words.
    pub fn from_words(words: Vec<Word>) -> Option<Self> {
        let first = words.first()?.bbox;
        let bbox = words.iter().fold(first, |b, w| b.union(w.bbox));
        Some(Self { words, bbox })
    }

    /// The words joined with single spaces.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (i, w) in self.words.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&w.text);
        }
        s
    }

    /// The lowest word confidence on the line.
    pub fn confidence(&self) -> f32 {
        self.words
            .iter()
            .map(|w| w.confidence)
            .fold(1.0_f32, f32::min)
    }
}

/// One page: its size in points (1/72 inch) and its lines in reading order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// 1-based page number.
    pub number: u32,
    pub width: f32,
    pub height: f32,
    pub lines: Vec<Line>,
}

/// Where the text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextSource {
    PdfText,
    Ocr,
    Textract,
}

/// A whole recognised document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub source: TextSource,
    pub pages: Vec<Page>,
}

impl Document {
    /// All text, lines separated by newlines and pages by form feeds.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (i, p) in self.pages.iter().enumerate() {
            if i > 0 {
                s.push('\u{c}');
            }
            for l in &p.lines {
                s.push_str(&l.text());
                s.push('\n');
            }
        }
        s
    }

    pub fn word_count(&self) -> usize {
        self.pages
            .iter()
            .flat_map(|p| &p.lines)
            .map(|l| l.words.len())
            .sum()
    }
}
