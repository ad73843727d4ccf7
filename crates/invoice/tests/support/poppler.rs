//! Test-only: a `Document` from poppler's `pdftotext -bbox-layout`, so extractor tests can
//! run on real PDFs independently of our own PDF text layer.

use std::path::Path;
use std::process::Command;

use docpipe_core::{BBox, Document, Line, Page, TextSource, Word};
use regex::Regex;

pub(crate) const PDFTOTEXT: &str = "/usr/bin/pdftotext";

pub(crate) fn available() -> bool {
    Path::new(PDFTOTEXT).exists()
}

fn attr(re: &Regex, s: &str) -> Option<f32> {
    re.captures(s)?.get(1)?.as_str().parse().ok()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Runs pdftotext on `pdf` and converts its XHTML into the document model.
pub(crate) fn document(pdf: &Path) -> Option<Document> {
    let out = Command::new(PDFTOTEXT)
        .arg("-bbox-layout")
        .arg(pdf)
        .arg("-")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// Converts pdftotext's `-bbox-layout` XHTML.
pub(crate) fn parse(xhtml: &str) -> Option<Document> {
    let tag = Regex::new(r"<(page|line|word)\b([^>]*)>|</(page|line)>").ok()?;
    let word_text = Regex::new(r"^([^<]*)</word>").ok()?;
    let (w_re, h_re) = (
        Regex::new(r#"width="([\d.]+)""#).ok()?,
        Regex::new(r#"height="([\d.]+)""#).ok()?,
    );
    let coords: Vec<Regex> = ["xMin", "yMin", "xMax", "yMax"]
        .iter()
        .map(|n| Regex::new(&format!(r#"{n}="([-\d.]+)""#)))
        .collect::<Result<_, _>>()
        .ok()?;
    let mut pages = Vec::new();
    let mut page: Option<Page> = None;
    let mut words: Vec<Word> = Vec::new();
    for c in tag.captures_iter(xhtml) {
        let m = c.get(0)?;
        match (c.get(1).map(|x| x.as_str()), c.get(3).map(|x| x.as_str())) {
            (Some("page"), _) => {
                let a = c.get(2)?.as_str();
                page = Some(Page {
                    number: pages.len() as u32 + 1,
                    width: attr(&w_re, a)?,
                    height: attr(&h_re, a)?,
                    lines: Vec::new(),
                });
            }
            (Some("line"), _) => words.clear(),
            (Some("word"), _) => {
                let p = page.as_ref()?;
                let a = c.get(2)?.as_str();
                let v: Vec<f32> = coords.iter().filter_map(|r| attr(r, a)).collect();
                let [x0, y0, x1, y1] = v[..] else { continue };
                let text = word_text
                    .captures(&xhtml[m.end()..])
                    .and_then(|t| t.get(1))
                    .map(|t| unescape(t.as_str()))
                    .unwrap_or_default();
                if text.trim().is_empty() {
                    continue;
                }
                words.push(Word {
                    text,
                    bbox: BBox::new(x0 / p.width, y0 / p.height, x1 / p.width, y1 / p.height),
                    confidence: 1.0,
                });
            }
            (_, Some("line")) => {
                if let (Some(p), Some(l)) =
                    (page.as_mut(), Line::from_words(std::mem::take(&mut words)))
                {
                    p.lines.push(l);
                }
            }
            (_, Some("page")) => {
                if let Some(p) = page.take() {
                    pages.push(p);
                }
            }
            _ => {}
        }
    }
    Some(Document {
        source: TextSource::PdfText,
        pages,
    })
}
