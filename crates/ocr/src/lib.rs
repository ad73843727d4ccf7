//! Local OCR for scanned documents. [`LayeredOcr`] is the pipeline's `Ocr` port: a PDF's
//! text layer comes from [`PdfTextOcr`] (the bounded worker process), pages without one are
//! rendered with poppler's `pdftoppm` and read by [`TesseractOcr`]; PNG and JPEG go
//! straight to Tesseract. Both tools run as subprocesses with a timeout, an output cap and
//! memory/CPU limits, so a hostile image ends as a job error, never as a dead pipeline.
//!
//! Without Tesseract the pipeline still runs: text PDFs are read as before, and an image or
//! a PDF with no text layer fails its job with `UNSUPPORTED_DOCUMENT` and a message naming
//! the packages to install.

mod process;
mod render;
mod scan;
mod tesseract;
mod tsv;

use async_trait::async_trait;
use docpipe_core::{Document, ErrorCode, MediaType, Ocr, StageError, TextSource};

use docpipe_pdf::worker::PdfTextOcr;

pub use docpipe_core::image_info::{ImageInfo, image_info};
pub use render::{PageImage, PdfRenderer};
pub use scan::{ScannedPage, Scanner, image_pdf};
pub use tesseract::{INSTALL_HINT, ImageLimits, TesseractOcr};
pub use tsv::{RecognisedImage, TsvError, parse_tsv};

/// The text layer where a PDF has one, raster OCR where it has not.
#[derive(Debug, Clone)]
pub struct LayeredOcr {
    text: PdfTextOcr,
    raster: Option<TesseractOcr>,
    renderer: PdfRenderer,
    /// Pages without a text layer OCRed per document; the rest stay empty (and are logged).
    max_ocr_pages: usize,
}

impl LayeredOcr {
    /// `raster: None` builds a text-layer-only pipeline (scans fail with
    /// `UNSUPPORTED_DOCUMENT`).
    pub fn new(text: PdfTextOcr, raster: Option<TesseractOcr>) -> Self {
        Self {
            text,
            raster,
            renderer: PdfRenderer::new("pdftoppm"),
            max_ocr_pages: 50,
        }
    }

    /// The standard wiring: the text worker, `tesseract` and `pdftoppm` from `PATH`.
    pub fn with_tesseract(text: PdfTextOcr) -> Self {
        Self::new(text, Some(TesseractOcr::new("tesseract")))
    }

    pub fn with_renderer(mut self, renderer: PdfRenderer) -> Self {
        self.renderer = renderer;
        self
    }

    pub fn with_max_ocr_pages(mut self, n: usize) -> Self {
        self.max_ocr_pages = n;
        self
    }

    fn no_engine(what: &str) -> StageError {
        StageError::new(
            ErrorCode::UnsupportedDocument,
            format!("{what} needs raster OCR and no OCR engine is configured; {INSTALL_HINT}"),
        )
    }

    async fn recognize_pdf(&self, bytes: Vec<u8>) -> Result<Document, StageError> {
        // The worker parses the bytes in its own process; keep a copy for rendering.
        let mut doc = self.text.recognize(bytes.clone(), MediaType::Pdf).await?;
        let blank: Vec<usize> = doc
            .pages
            .iter()
            .enumerate()
            .filter(|(_, p)| p.lines.is_empty())
            .map(|(i, _)| i)
            .collect();
        if blank.is_empty() {
            return Ok(doc);
        }
        let all_blank = blank.len() == doc.pages.len();
        let Some(raster) = &self.raster else {
            if all_blank {
                return Err(Self::no_engine("a PDF without a text layer (a scan)"));
            }
            tracing::warn!(
                pages = blank.len(),
                "PDF pages without a text layer left empty: no OCR engine configured"
            );
            return Ok(doc);
        };
        if blank.len() > self.max_ocr_pages {
            tracing::warn!(
                pages = blank.len(),
                max = self.max_ocr_pages,
                "more PDF pages without a text layer than are OCRed; the rest stay empty"
            );
        }
        let mut recognised = 0usize;
        for &i in blank.iter().take(self.max_ocr_pages) {
            let Some(page) = doc.pages.get(i) else {
                continue;
            };
            let (number, width, height) = (page.number, page.width, page.height);
            let dpi = self.renderer.dpi_for(width, height);
            let image = self.renderer.render_page(&bytes, number, dpi).await?;
            let r = raster
                .recognize_image(image.bytes, image.media_type, image.dpi)
                .await?;
            recognised += 1;
            if let Some(page) = doc.pages.get_mut(i) {
                page.lines = r.lines;
            }
        }
        if recognised > 0 {
            // The document now holds engine-read words (confidences below 1), and the ocr
            // stage bills its pages as OCR pages.
            doc.source = TextSource::Ocr;
        }
        Ok(doc)
    }
}

#[async_trait]
impl Ocr for LayeredOcr {
    async fn recognize(
        &self,
        bytes: Vec<u8>,
        media_type: MediaType,
    ) -> Result<Document, StageError> {
        match media_type {
            MediaType::Pdf => self.recognize_pdf(bytes).await,
            MediaType::Png | MediaType::Jpeg => match &self.raster {
                Some(raster) => raster.recognize_page(bytes, media_type).await,
                None => Err(Self::no_engine(&format!("a {} image", media_type.as_str()))),
            },
        }
    }
}
