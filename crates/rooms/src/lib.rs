//! Room detection on floor plans (blueprint jobs): PNG and JPEG images, and PDFs whose page
//! is a JPEG scan. Work is bounded by image size: decoding refuses oversized and
//! decompression-bomb images, and big sheets are box-averaged down to at most
//! [`RoomOptions::max_working_pixels`] before detection; coordinates come back in the
//! original image's pixels and normalised to 0..1.
//!
//! - [`decode`]: bytes to a bounded grayscale image.
//! - [`detect`]: walls, door gaps, enclosed regions, outlines.
//! - [`deskew`]: a sheet scanned askew turned straight first.
//! - [`outline`]: walls drawn as outline pairs filled solid.
//! - [`r2v`]: r2v annotations rendered to images with their ground-truth rooms.
//! - [`distort`]: rotation, noise and JPEG applied to a rendered plan (scan variants).
//! - [`eval`]: detected vs ground-truth rooms (count, IoU).
//! - [`mlstruct`]: detected walls vs MLSTRUCT-FP's wall rectangles (pixel IoU).

pub mod decode;
pub mod deskew;
pub mod detect;
pub mod distort;
pub mod eval;
pub mod labels;
pub mod mlstruct;
pub mod outline;
pub mod r2v;

use docpipe_core::{
    Document, ErrorCode, Extractor, ImageSize, InvoiceResult, MediaType, Room, RoomsResult,
    StageError,
};

use std::sync::Arc;

use docpipe_core::Ocr;

use docpipe_ocr::PdfRenderer;
use image::GrayImage;

pub use decode::DecodeLimits;
pub use detect::DetectParams;

/// Bounds and tunables of room detection.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomOptions {
    pub decode: DecodeLimits,
    /// Sheets with more pixels are downscaled by an integer factor to fit (4 MP: a
    /// 9600x6784 sheet is worked on at 1/4 scale, where a 15 cm wall is still 6 px).
    pub max_working_pixels: u64,
    pub params: DetectParams,
    /// Image pixels per metre of the building, when the plan's scale is known.
    pub pixels_per_metre: Option<f64>,
}

impl RoomOptions {
    /// Longer side to render a PDF blueprint at: the detector would box-average anything
    /// bigger down to `max_working_pixels`, so the page is drawn at that size directly
    /// (for an ISO sheet, sides 1.414:1). 4 MP gives 2378 pixels: an A1 sheet at 72 dpi.
    pub fn pdf_render_side(&self) -> u32 {
        ((self.max_working_pixels as f64 * std::f64::consts::SQRT_2).sqrt() as u32).max(100)
    }
}

impl Default for RoomOptions {
    fn default() -> Self {
        Self {
            decode: DecodeLimits::default(),
            max_working_pixels: 4_000_000,
            params: DetectParams::default(),
            pixels_per_metre: None,
        }
    }
}

/// Decodes a blueprint and detects its rooms. Blocking and CPU-bound (up to a few
/// seconds on a 65 MP sheet): async callers use [`extract_rooms`].
pub fn detect_rooms(
    bytes: &[u8],
    media_type: MediaType,
    opts: &RoomOptions,
) -> Result<RoomsResult, StageError> {
    let decoded = decode::decode_plan(bytes, media_type, &opts.decode)?;
    let mut result = rooms_in_image(decoded.gray, opts);
    result.page = decoded.page;
    Ok(result)
}

/// The image the detector works on (decoded, flattened, downscaled), as PNG: for looking
/// at why a sheet gave the rooms it gave.
pub fn working_png(
    bytes: &[u8],
    media_type: MediaType,
    opts: &RoomOptions,
) -> Result<Vec<u8>, StageError> {
    let decoded = decode::decode_plan(bytes, media_type, &opts.decode)?;
    let (work, _) = decode::downscale(decoded.gray, opts.max_working_pixels);
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(work)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| StageError::internal(format!("encoding PNG: {e}")))?;
    Ok(out)
}

/// The image a blueprint's rooms are read from.
pub struct PlanRaster<'a> {
    pub bytes: std::borrow::Cow<'a, [u8]>,
    pub media_type: MediaType,
    /// The PDF page that was rendered, when one was.
    pub rendered_page: Option<u32>,
}

/// A PNG or JPEG, or a PDF that is a JPEG scan, as it is (the decoder reads the scan); any
/// other PDF (a vector drawing, a scan in another encoding) with `renderer`: page 1 drawn
/// at the detector's working size. Without a renderer such a PDF is refused by the decoder
/// (`UNSUPPORTED_DOCUMENT`).
pub async fn plan_raster<'a>(
    bytes: &'a [u8],
    media_type: MediaType,
    renderer: Option<&PdfRenderer>,
    options: &RoomOptions,
) -> Result<PlanRaster<'a>, StageError> {
    let as_is = PlanRaster {
        bytes: std::borrow::Cow::Borrowed(bytes),
        media_type,
        rendered_page: None,
    };
    let Some(renderer) = renderer.filter(|_| media_type == MediaType::Pdf) else {
        return Ok(as_is);
    };
    match decode::pdf_scan(bytes) {
        Ok(_) => Ok(as_is),
        Err(e) if e.code != ErrorCode::UnsupportedDocument => Err(e),
        Err(_) => {
            let page = renderer
                .render_page_fit(bytes, 1, options.pdf_render_side())
                .await?;
            Ok(PlanRaster {
                bytes: std::borrow::Cow::Owned(page.bytes),
                media_type: page.media_type,
                rendered_page: Some(1),
            })
        }
    }
}

/// Detects rooms on the blocking thread pool, so the pipeline's runtime keeps serving.
pub async fn extract_rooms(
    bytes: &[u8],
    media_type: MediaType,
    opts: RoomOptions,
) -> Result<RoomsResult, StageError> {
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || detect_rooms(&bytes, media_type, &opts))
        .await
        .map_err(|e| StageError::internal(format!("room detection task: {e}")))?
}

/// Detects rooms on a decoded grayscale image (unverified: no checks yet).
pub fn rooms_in_image(gray: GrayImage, opts: &RoomOptions) -> RoomsResult {
    let (width, height) = gray.dimensions();
    let (work, factor) = decode::downscale(gray, opts.max_working_pixels);
    let detection = detect::detect(&work, &opts.params);
    drop(work);
    let f = f64::from(factor);
    let (wf, hf) = (f64::from(width), f64::from(height));
    let ppm = opts.pixels_per_metre.filter(|p| p.is_finite() && *p > 0.0);
    let mut result = RoomsResult::new(ImageSize { width, height });
    result.pixels_per_metre = ppm;
    result.rooms = detection
        .rooms
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // A working pixel covers `factor` original pixels per side; outline points are
            // working-pixel centres.
            let polygon: Vec<[f64; 2]> = r
                .polygon
                .iter()
                .map(|p| {
                    [
                        round2(((p[0] + 0.5) * f).clamp(0.0, wf)),
                        round2(((p[1] + 0.5) * f).clamp(0.0, hf)),
                    ]
                })
                .collect();
            let polygon_normalised = polygon
                .iter()
                .map(|p| [round6(p[0] / wf), round6(p[1] / hf)])
                .collect();
            let area_px = r.area as f64 * f * f;
            Room {
                id: format!("room_{}", i + 1),
                label: None,
                polygon,
                polygon_normalised,
                area_px,
                area_m2: ppm.map(|p| round2(area_px / (p * p))),
                confidence: r.confidence,
            }
        })
        .collect();
    result
}

/// Adds local room detection to any extractor: invoices go to the wrapped extractor,
/// blueprints to the detector (on the blocking pool). The CLI wires
/// `WithRooms::new(RuleExtractor).with_pdf_renderer(PdfRenderer::new("pdftoppm"))`.
///
/// A PDF blueprint is read from its embedded JPEG when it is a scan (the scanner's own
/// pixels); any other PDF (a vector drawing from CAD, a scan in another encoding) has its
/// first page rendered by the renderer at the detector's working size
/// ([`RoomOptions::pdf_render_side`]).
#[derive(Clone, Default)]
pub struct WithRooms<E> {
    pub invoices: E,
    pub options: RoomOptions,
    pub pdf_renderer: Option<PdfRenderer>,
    /// Reads the plan's text for room labels ([`labels`]); without it, or when it fails
    /// (no OCR engine installed), rooms have no labels.
    pub label_ocr: Option<Arc<dyn Ocr>>,
}

impl<E: std::fmt::Debug> std::fmt::Debug for WithRooms<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithRooms")
            .field("invoices", &self.invoices)
            .field("options", &self.options)
            .field("pdf_renderer", &self.pdf_renderer)
            .field("label_ocr", &self.label_ocr.is_some())
            .finish()
    }
}

impl<E> WithRooms<E> {
    pub fn new(invoices: E) -> Self {
        Self {
            invoices,
            options: RoomOptions::default(),
            pdf_renderer: None,
            label_ocr: None,
        }
    }

    /// Labels rooms with the text `ocr` reads inside them.
    pub fn with_label_ocr(mut self, ocr: Arc<dyn Ocr>) -> Self {
        self.label_ocr = Some(ocr);
        self
    }

    /// Renders PDF blueprints that are not single-JPEG scans.
    pub fn with_pdf_renderer(mut self, renderer: PdfRenderer) -> Self {
        self.pdf_renderer = Some(renderer);
        self
    }
}

#[async_trait::async_trait]
impl<E: Extractor> Extractor for WithRooms<E> {
    async fn extract_invoice(
        &self,
        document: &Document,
        original: Option<&[u8]>,
    ) -> Result<InvoiceResult, StageError> {
        self.invoices.extract_invoice(document, original).await
    }

    async fn extract_rooms(
        &self,
        bytes: &[u8],
        media_type: MediaType,
    ) -> Result<RoomsResult, StageError> {
        let plan =
            plan_raster(bytes, media_type, self.pdf_renderer.as_ref(), &self.options).await?;
        let mut result = extract_rooms(&plan.bytes, plan.media_type, self.options.clone()).await?;
        if plan.rendered_page.is_some() {
            result.page = plan.rendered_page;
        }
        if let Some(ocr) = &self.label_ocr
            && !result.rooms.is_empty()
        {
            // A PDF's own text layer when it has one (a vector drawing's labels are
            // text), else OCR of the page; the coordinates are the page's either way.
            match ocr.recognize(bytes.to_vec(), media_type).await {
                Ok(document) => labels::assign_labels(&mut result.rooms, &document, result.page),
                Err(e) => tracing::debug!(error = %e, "room labels: the plan's text was not read"),
            }
        }
        Ok(result)
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests;
