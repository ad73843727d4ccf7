//! The PDF text layer against poppler's `pdftotext -bbox` on the Factur-X invoices of the
//! shared data set: word recall, box agreement and reading order. Skipped (with a message)
//! when the data set or pdftotext is absent.

#[path = "../../../tests/support/skipping.rs"]
mod skipping;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use docpipe_core::Document;
use docpipe_pdf::{PdfLimits, extract_document};

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if dir.join("data").is_dir() {
        Some(dir)
    } else {
        skipping::skip(&format!("the shared data set at {}", dir.display()));
        None
    }
}

/// A reference word: page index, text, normalised centre.
struct RefWord {
    page: usize,
    text: String,
    cx: f32,
    cy: f32,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<f32> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = tag.get(start..)?;
    rest.get(..rest.find('"')?)?.parse().ok()
}

/// Words from `pdftotext -bbox`, or `None` when pdftotext is not installed.
fn poppler_words(pdf: &Path) -> Option<Vec<RefWord>> {
    let out = Command::new("pdftotext")
        .arg("-bbox")
        .arg(pdf)
        .arg("-")
        .output()
        .ok()?;
    let html = String::from_utf8_lossy(&out.stdout);
    let mut words = Vec::new();
    let (mut page, mut w, mut h) = (0usize, 1.0f32, 1.0f32);
    for line in html.lines() {
        let line = line.trim();
        if line.starts_with("<page ") {
            page += 1;
            w = attr(line, "width").unwrap_or(1.0);
            h = attr(line, "height").unwrap_or(1.0);
        } else if line.starts_with("<word ") {
            let (Some(x0), Some(y0), Some(x1), Some(y1)) = (
                attr(line, "xMin"),
                attr(line, "yMin"),
                attr(line, "xMax"),
                attr(line, "yMax"),
            ) else {
                continue;
            };
            let text = line
                .split_once('>')
                .and_then(|(_, r)| r.rsplit_once("</word>"))
                .map(|(t, _)| unescape(t))
                .unwrap_or_default();
            words.push(RefWord {
                page: page.saturating_sub(1),
                text,
                cx: (x0 + x1) / 2.0 / w,
                cy: (y0 + y1) / 2.0 / h,
            });
        }
    }
    Some(words)
}

type Centre = (f32, f32);

struct Score {
    reference: usize,
    matched: usize,
    boxes_close: usize,
}

/// Matches reference words to ours by page and text, nearest centre first.
fn score(doc: &Document, reference: &[RefWord]) -> Score {
    // (page, text) -> our centres, each usable once.
    let mut ours: HashMap<(usize, &str), Vec<Option<Centre>>> = HashMap::new();
    for (p, page) in doc.pages.iter().enumerate() {
        for l in &page.lines {
            for w in &l.words {
                ours.entry((p, w.text.as_str()))
                    .or_default()
                    .push(Some((w.bbox.center_x(), w.bbox.center_y())));
            }
        }
    }
    let (mut matched, mut close) = (0, 0);
    for r in reference {
        let Some(cands) = ours.get_mut(&(r.page, r.text.as_str())) else {
            continue;
        };
        let best = cands
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|(x, y)| (i, (x - r.cx).abs().max((y - r.cy).abs()))))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, d)) = best {
            cands[i] = None;
            matched += 1;
            if d < 0.03 {
                close += 1;
            }
        }
    }
    Score {
        reference: reference.len(),
        matched,
        boxes_close: close,
    }
}

fn pdfs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "pdf"));
    v.sort();
    v
}

/// Prints recall and box agreement per file; returns (average recall, close boxes, matched).
fn recall_over(files: &[PathBuf]) -> Option<(f64, usize, usize)> {
    let limits = PdfLimits::default();
    let (mut recall_sum, mut n, mut close, mut matched) = (0.0, 0, 0, 0);
    for f in files {
        let Some(reference) = poppler_words(f) else {
            skipping::skip("pdftotext is not installed");
            return None;
        };
        let bytes = std::fs::read(f).expect("read fixture");
        let doc = extract_document(&bytes, &limits).expect("extract");
        let s = score(&doc, &reference);
        let recall = s.matched as f64 / s.reference.max(1) as f64;
        println!(
            "{:<50} recall {:.3} ({}/{}), boxes within 3%: {}/{}",
            f.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            recall,
            s.matched,
            s.reference,
            s.boxes_close,
            s.matched
        );
        recall_sum += recall;
        n += 1;
        close += s.boxes_close;
        matched += s.matched;
    }
    let avg = recall_sum / f64::from(n.max(1));
    println!("average recall {avg:.3}; boxes within 3%: {close}/{matched}");
    Some((avg, close, matched))
}

#[test]
fn factur_x_invoices_match_pdftotext() {
    let Some(shared) = shared() else { return };
    let files = pdfs(&shared.join("data/invoices/zugferd/fx"));
    assert!(!files.is_empty());
    let Some((avg, close, matched)) = recall_over(&files) else {
        return;
    };
    assert!(avg >= 0.99, "average recall {avg:.3}");
    assert!(
        close as f64 >= 0.97 * matched as f64,
        "boxes disagree: {close}/{matched}"
    );
}

#[test]
fn other_invoices_match_pdftotext() {
    let Some(shared) = shared() else { return };
    let mut files = Vec::new();
    for dir in [
        "zugferd/zugferd1",
        "zugferd/zugferd2",
        "zugferd/fail",
        "zugferd/unstructured",
        "invoice2data",
    ] {
        files.extend(pdfs(&shared.join("data/invoices").join(dir)));
    }
    assert!(!files.is_empty());
    let Some((avg, close, matched)) = recall_over(&files) else {
        return;
    };
    assert!(avg >= 0.98, "average recall {avg:.3}");
    assert!(
        close as f64 >= 0.95 * matched as f64,
        "boxes disagree: {close}/{matched}"
    );
}

#[test]
fn reading_order_puts_the_invoice_number_before_the_totals() {
    let Some(shared) = shared() else { return };
    let bytes =
        std::fs::read(shared.join("data/invoices/zugferd/fx/EN16931_Einfach.pdf")).expect("read");
    let doc = extract_document(&bytes, &PdfLimits::default()).expect("extract");
    let text = doc.text();
    let number = text.find("Nr. 471102").expect("invoice number line");
    let seller = text.find("Verkäufer").expect("seller");
    let total = text
        .find("Zahlbetrag 529,87")
        .expect("amount due on one line");
    assert!(number < seller && seller < total, "{text}");
    // Table rows stay rows: a position's description and net price share a line.
    assert!(
        text.contains("1 TB100A4 Trennblätter A4 9,9000 20 Stk 19 %"),
        "{text}"
    );
}

#[test]
fn every_page_has_the_reported_size_and_boxes_inside_it() {
    let Some(shared) = shared() else { return };
    for f in pdfs(&shared.join("data/invoices/zugferd/fx")) {
        let bytes = std::fs::read(&f).expect("read");
        let doc = extract_document(&bytes, &PdfLimits::default()).expect("extract");
        for (i, p) in doc.pages.iter().enumerate() {
            assert_eq!(p.number as usize, i + 1);
            assert!(p.width > 100.0 && p.height > 100.0);
            for l in &p.lines {
                for w in &l.words {
                    assert!(!w.text.is_empty() && !w.text.contains(' '));
                    let b = w.bbox;
                    assert!(b.x0 <= b.x1 && b.y0 <= b.y1 && b.x1 <= 1.0 && b.y1 <= 1.0);
                }
            }
        }
    }
}

#[test]
fn limits_turn_big_documents_into_errors() {
    let Some(shared) = shared() else { return };
    let bytes =
        std::fs::read(shared.join("data/invoices/zugferd/fx/EN16931_Einfach.pdf")).expect("read");
    let limits = PdfLimits {
        max_pages: 1,
        ..PdfLimits::default()
    };
    let err = extract_document(&bytes, &limits).expect_err("two pages");
    assert!(err.to_string().contains("pages"), "{err}");
    let limits = PdfLimits {
        max_words: 10,
        ..PdfLimits::default()
    };
    assert!(extract_document(&bytes, &limits).is_err());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let limits = PdfLimits::default();
    assert!(extract_document(b"", &limits).is_err());
    assert!(extract_document(b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF", &limits).is_err());
}

#[test]
fn filled_form_fields_without_appearances_are_read() {
    let Some(shared) = shared() else { return };
    let path = shared.join("data/robustness/valid-pdfs/012-libreoffice-form/libreoffice-form.pdf");
    let bytes = std::fs::read(path).expect("read");
    let text = extract_document(&bytes, &PdfLimits::default())
        .expect("extract")
        .text();
    assert!(text.contains("First Name Alice"), "{text}");
    assert!(text.contains("Bob"), "{text}");
}

#[test]
fn two_column_text_reads_column_by_column() {
    let Some(shared) = shared() else { return };
    let path = shared.join("data/robustness/valid-pdfs/026-latex-multicolumn/multicolumn.pdf");
    let bytes = std::fs::read(path).expect("read");
    let text = extract_document(&bytes, &PdfLimits::default())
        .expect("extract")
        .text();
    // The left column's first paragraph continues on the next line, not with the right column.
    assert!(
        text.contains("This is a sample document with two columns filled\nwith Lorem Ipsum text."),
        "{text}"
    );
    let left_end = text
        .find("nissim rutrum.")
        .expect("end of a left paragraph");
    let right = text
        .find("pellentesque ante. Phasellus")
        .expect("right column");
    assert!(left_end < right, "{text}");
}
