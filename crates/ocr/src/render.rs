//! A PDF page as an image for OCR: rendered by poppler's `pdftoppm` (a bounded
//! subprocess), or, where poppler is not installed, the page's embedded JPEG (an image
//! XObject with `/DCTDecode`, which is what most scanners write) taken out with lopdf.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use docpipe_core::{ErrorCode, MediaType, StageError};
use lopdf::{Document as PdfDoc, LoadOptions};

use super::process::{Invocation, RunError, run};

/// A page image ready for the engine.
#[derive(Debug, Clone)]
pub struct PageImage {
    pub bytes: Vec<u8>,
    pub media_type: MediaType,
    /// Its resolution on the page, when known.
    pub dpi: Option<u32>,
}

/// Renders PDF pages for OCR.
#[derive(Debug, Clone)]
pub struct PdfRenderer {
    program: PathBuf,
    /// Resolution pages are rendered at (300: Tesseract's sweet spot; measured +4 points of
    /// word recall over 150 dpi on invoices, for 1.5x the time).
    dpi: u32,
    /// Longest side of a rendered page in pixels; large pages get a lower resolution.
    max_side: u32,
    timeout: Duration,
    max_output_bytes: usize,
    memory_bytes: u64,
    /// Largest decompressed stream when reading an embedded image with lopdf.
    max_stream_bytes: usize,
}

impl PdfRenderer {
    /// `program` is the `pdftoppm` executable (`"pdftoppm"` searches `PATH`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            dpi: 300,
            max_side: 5000,
            timeout: Duration::from_secs(60),
            max_output_bytes: 128 * 1024 * 1024,
            memory_bytes: 2 * 1024 * 1024 * 1024,
            max_stream_bytes: 64 * 1024 * 1024,
        }
    }

    pub fn with_dpi(mut self, dpi: u32) -> Self {
        self.dpi = dpi.clamp(50, 600);
        self
    }

    /// The resolution for a page of `width` x `height` points: the configured one, lowered
    /// so the longest side stays within `max_side` pixels.
    pub fn dpi_for(&self, width: f32, height: f32) -> u32 {
        let longest = width.max(height);
        if !longest.is_finite() || longest <= 0.0 {
            return self.dpi;
        }
        let cap = (self.max_side as f32 * 72.0 / longest).floor();
        (self.dpi as f32).min(cap).max(10.0) as u32
    }

    /// Page `number` (1-based) of `pdf` as an image.
    pub async fn render_page(
        &self,
        pdf: &[u8],
        number: u32,
        dpi: u32,
    ) -> Result<PageImage, StageError> {
        let size = vec!["-r".into(), dpi.to_string().into()];
        self.render(pdf, number, size, Some(dpi)).await
    }

    /// Page `number` (1-based) of `pdf` scaled so its longer side is `longest` pixels (at
    /// most the renderer's cap): for drawings, whose detail does not follow the sheet's
    /// size in points.
    pub async fn render_page_fit(
        &self,
        pdf: &[u8],
        number: u32,
        longest: u32,
    ) -> Result<PageImage, StageError> {
        let longest = longest.clamp(100, self.max_side);
        let size = vec!["-scale-to".into(), longest.to_string().into()];
        self.render(pdf, number, size, None).await
    }

    async fn render(
        &self,
        pdf: &[u8],
        number: u32,
        size: Vec<OsString>,
        dpi: Option<u32>,
    ) -> Result<PageImage, StageError> {
        let n: OsString = number.to_string().into();
        let mut args: Vec<OsString> = vec!["-f".into(), n.clone(), "-l".into(), n];
        args.extend(size);
        args.extend(["-png".into(), "-q".into(), "-".into()]);
        let inv = Invocation {
            program: &self.program,
            args,
            env: Vec::new(),
            timeout: self.timeout,
            max_output_bytes: self.max_output_bytes,
            memory_bytes: self.memory_bytes,
            cpu_seconds: self.timeout.as_secs().max(1),
        };
        match run(&inv, pdf.to_vec()).await {
            Ok(bytes) if !bytes.is_empty() => Ok(PageImage {
                bytes,
                media_type: MediaType::Png,
                dpi,
            }),
            Ok(_) => Err(StageError::new(
                ErrorCode::DocumentUnreadable,
                format!("page {number} of the PDF could not be rendered"),
            )),
            Err(RunError::NotFound) => self.embedded_jpeg(pdf, number).await,
            Err(e) => Err(StageError::new(
                ErrorCode::DocumentUnreadable,
                format!(
                    "page {number} of the PDF could not be rendered: {}",
                    e.describe("pdftoppm", self.timeout, self.max_output_bytes)
                ),
            )),
        }
    }

    /// The largest JPEG image on the page. The PDF already went through the text worker,
    /// so it loads; the parse still runs on its own thread with a large stack and capped
    /// decompression, like the worker's.
    async fn embedded_jpeg(&self, pdf: &[u8], number: u32) -> Result<PageImage, StageError> {
        let bytes = pdf.to_vec();
        let max_stream = self.max_stream_bytes;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("pdf-image".into())
            .stack_size(64 * 1024 * 1024)
            .spawn(move || {
                let _ = tx.send(largest_jpeg(&bytes, number, max_stream));
            });
        if let Err(e) = spawned {
            return Err(StageError::unavailable(format!(
                "cannot start the PDF image reader: {e}"
            )));
        }
        let found = match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(found)) => found,
            Ok(Err(_)) => None,
            Err(_) => {
                return Err(StageError::new(
                    ErrorCode::DocumentUnreadable,
                    "reading the PDF's page image took too long",
                ));
            }
        };
        found.ok_or_else(|| {
            StageError::new(
                ErrorCode::UnsupportedDocument,
                format!(
                    "page {number} of the PDF is no JPEG scan (a vector drawing, or no \
                     image at all); rendering it needs poppler: apt-get install poppler-utils"
                ),
            )
        })
    }
}

fn largest_jpeg(pdf: &[u8], number: u32, max_stream_bytes: usize) -> Option<PageImage> {
    let options = LoadOptions {
        max_decompressed_size: Some(max_stream_bytes),
        ..LoadOptions::default()
    };
    let doc = PdfDoc::load_mem_with_options(pdf, options).ok()?;
    let page_id = doc.page_iter().nth(number.checked_sub(1)? as usize)?;
    let page_width = doc
        .get_dictionary(page_id)
        .ok()
        .and_then(|d| d.get(b"MediaBox").ok())
        .and_then(|o| o.as_array().ok())
        .and_then(|a| {
            let x0 = a.first()?.as_float().ok()?;
            let x1 = a.get(2)?.as_float().ok()?;
            Some((x1 - x0).abs())
        });
    let images = doc.get_page_images(page_id).ok()?;
    let best = images
        .into_iter()
        .filter(|i| {
            i.filters
                .as_deref()
                .is_some_and(|f| f.len() == 1 && f[0] == "DCTDecode")
                && i.width > 0
                && i.height > 0
        })
        .max_by_key(|i| i.width.saturating_mul(i.height))?;
    let dpi = page_width
        .filter(|w| *w > 1.0)
        .map(|w| (best.width as f32 * 72.0 / w).round() as u32)
        .filter(|d| (50..=1200).contains(d));
    Some(PageImage {
        bytes: best.content.to_vec(),
        media_type: MediaType::Jpeg,
        dpi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_is_capped_for_large_pages() {
        let r = PdfRenderer::new("pdftoppm");
        assert_eq!(r.dpi_for(595.0, 842.0), 300);
        // An A0 poster: 3370 pt tall -> at most 5000 px.
        assert_eq!(r.dpi_for(2384.0, 3370.0), 106);
        assert_eq!(r.dpi_for(14400.0, 14400.0), 25);
        assert_eq!(r.dpi_for(f32::NAN, 0.0), 300);
        assert_eq!(r.with_dpi(150).dpi_for(595.0, 842.0), 150);
    }
}
