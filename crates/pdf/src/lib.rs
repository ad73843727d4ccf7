//! The PDF text layer: words with positions, read in-process with lopdf and our own
//! text-state interpreter, then ordered into lines from the word boxes.
//!
//! This parses untrusted bytes; production calls it through [`crate::worker`], which runs
//! it in a resource-limited child process. The limits here bound the work per document
//! so that even in-process a hostile file ends in an error rather than running forever.

pub mod child;
mod cmap;
mod font;
mod interp;
mod layout;
mod open;
mod pages;
mod rebuild;
mod tables;
pub mod worker;

use std::collections::HashSet;

use docpipe_core::{Document, Page, TextSource};
use lopdf::{Dictionary, Document as PdfDoc, Object, ObjectId};

use interp::{FontCache, Interpreter, Matrix};

/// Work bounds for one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfLimits {
    /// More pages than this is an error.
    pub max_pages: usize,
    /// Content-stream operations per page (Form XObjects included); past it the page is cut.
    pub max_operations_per_page: usize,
    /// Content-stream operations in the whole document; past it the remaining pages are cut.
    pub max_operations: usize,
    /// Glyphs per page; past it the page is cut.
    pub max_glyphs_per_page: usize,
    /// Words in the whole document; more is an error.
    pub max_words: usize,
    /// Largest decompressed size of any one stream (content, font CMap, object stream).
    pub max_stream_bytes: usize,
    /// Nesting of Form XObjects.
    pub max_form_depth: usize,
}

impl Default for PdfLimits {
    fn default() -> Self {
        Self {
            max_pages: 500,
            max_operations_per_page: 2_000_000,
            max_operations: 20_000_000,
            max_glyphs_per_page: 500_000,
            max_words: 2_000_000,
            max_stream_bytes: 64 * 1024 * 1024,
            max_form_depth: 12,
        }
    }
}

/// Why a PDF yields no document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("not a readable PDF: {0}")]
    Parse(String),
    #[error("the PDF is encrypted and needs a password to open")]
    Encrypted,
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the PDF has {pages} pages; at most {max} are read")]
    TooManyPages { pages: usize, max: usize },
    #[error("the PDF has more than {max} words")]
    TooManyWords { max: usize },
}

pub type Result<T, E = PdfError> = std::result::Result<T, E>;

impl PdfError {
    /// The stable code a job fails with.
    pub fn code(&self) -> docpipe_core::ErrorCode {
        match self {
            Self::Encrypted => docpipe_core::ErrorCode::DocumentEncrypted,
            _ => docpipe_core::ErrorCode::DocumentUnreadable,
        }
    }
}

impl From<PdfError> for docpipe_core::StageError {
    fn from(e: PdfError) -> Self {
        docpipe_core::StageError::new(e.code(), e.to_string())
    }
}

/// Extracts every page's words with boxes (normalised, origin top-left) in reading order.
///
/// A damaged file is read from a rebuilt copy and an encrypted one with the empty user
/// password ([`open`]); one that needs a real password is [`PdfError::Encrypted`].
pub fn extract_document(bytes: &[u8], limits: &PdfLimits) -> Result<Document> {
    let open::Opened {
        doc,
        pages: page_ids,
    } = open::open(bytes, limits)?;
    if page_ids.len() > limits.max_pages {
        return Err(PdfError::TooManyPages {
            pages: pages::page_ids(&doc, 1_000_000).len(),
            max: limits.max_pages,
        });
    }
    if page_ids.is_empty() {
        return Err(PdfError::NoPages);
    }
    let mut fonts = FontCache::new();
    let mut pages = Vec::with_capacity(page_ids.len());
    let mut words = 0usize;
    let mut ops_left = limits.max_operations;
    for (i, id) in page_ids.into_iter().enumerate() {
        let (page, ops) = extract_page(&doc, id, (i + 1) as u32, limits, &mut fonts, ops_left);
        ops_left = ops_left.saturating_sub(ops);
        words += page.lines.iter().map(|l| l.words.len()).sum::<usize>();
        if words > limits.max_words {
            return Err(PdfError::TooManyWords {
                max: limits.max_words,
            });
        }
        pages.push(page);
    }
    Ok(Document {
        source: TextSource::PdfText,
        pages,
    })
}

fn deref<'a>(doc: &'a PdfDoc, o: &'a Object) -> &'a Object {
    doc.dereference(o).map(|(_, o)| o).unwrap_or(o)
}

/// A page attribute, looked up the page tree (`/Parent`) as PDF inheritance requires.
fn inherited<'a>(doc: &'a PdfDoc, page: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    let mut node = page;
    let mut seen = HashSet::new();
    for _ in 0..64 {
        if let Ok(v) = node.get(key) {
            return Some(deref(doc, v));
        }
        let parent = node.get(b"Parent").ok()?.as_reference().ok()?;
        if !seen.insert(parent) {
            return None;
        }
        node = doc.get_dictionary(parent).ok()?;
    }
    None
}

fn rect(doc: &PdfDoc, o: Option<&Object>) -> Option<[f32; 4]> {
    let a = o?.as_array().ok()?;
    if a.len() != 4 {
        return None;
    }
    let mut r = [0.0f32; 4];
    for (slot, v) in r.iter_mut().zip(a) {
        *slot = deref(doc, v).as_float().ok().filter(|v| v.is_finite())?;
    }
    let r = [
        r[0].min(r[2]),
        r[1].min(r[3]),
        r[0].max(r[2]),
        r[1].max(r[3]),
    ];
    (r[2] - r[0] > 1.0 && r[3] - r[1] > 1.0).then_some(r)
}

/// Maps user-space points to the displayed page, normalised with origin top-left.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageFrame {
    crop: [f32; 4],
    /// 0, 90, 180 or 270, clockwise.
    rotate: i64,
}

impl PageFrame {
    /// Displayed width and height in points.
    fn size(self) -> (f32, f32) {
        let (w, h) = (self.crop[2] - self.crop[0], self.crop[3] - self.crop[1]);
        if self.rotate % 180 == 0 {
            (w, h)
        } else {
            (h, w)
        }
    }

    pub(crate) fn normalise(self, x: f32, y: f32) -> (f32, f32) {
        let (w, h) = (self.crop[2] - self.crop[0], self.crop[3] - self.crop[1]);
        let (u, v) = ((x - self.crop[0]) / w, (y - self.crop[1]) / h);
        match self.rotate {
            90 => (v, u),
            180 => (1.0 - u, v),
            270 => (1.0 - v, 1.0 - u),
            _ => (u, 1.0 - v),
        }
    }
}

fn extract_page(
    doc: &PdfDoc,
    id: ObjectId,
    number: u32,
    limits: &PdfLimits,
    fonts: &mut FontCache,
    ops_left: usize,
) -> (Page, usize) {
    let empty = Dictionary::new();
    let dict = doc.get_dictionary(id).unwrap_or(&empty);
    let media = rect(doc, inherited(doc, dict, b"MediaBox")).unwrap_or([0.0, 0.0, 612.0, 792.0]);
    let crop = rect(doc, inherited(doc, dict, b"CropBox"))
        .and_then(|c| {
            // The crop box is clipped to the media box.
            let r = [
                c[0].max(media[0]),
                c[1].max(media[1]),
                c[2].min(media[2]),
                c[3].min(media[3]),
            ];
            (r[2] - r[0] > 1.0 && r[3] - r[1] > 1.0).then_some(r)
        })
        .unwrap_or(media);
    let rotate = inherited(doc, dict, b"Rotate")
        .and_then(|o| o.as_i64().ok())
        .map(|r| r.rem_euclid(360) / 90 * 90)
        .unwrap_or(0);
    let frame = PageFrame { crop, rotate };
    let (width, height) = frame.size();

    let resources = inherited(doc, dict, b"Resources").and_then(|r| r.as_dict().ok());
    let content = doc
        .get_page_content_with_limit(id, limits.max_stream_bytes)
        .unwrap_or_default();
    let mut interp = Interpreter::new(doc, limits, fonts, ops_left);
    interp.run(&content, resources, Matrix::IDENTITY);
    interp.annotations(dict, resources);
    let (text, ops) = interp.finish();
    if text.truncated {
        tracing::warn!(page = number, ops, "PDF page cut short at the work limit");
    }
    let words = layout::words(&text, frame);
    let lines = layout::lines(words);
    let page = Page {
        number,
        width,
        height,
        lines,
    };
    (page, ops)
}
