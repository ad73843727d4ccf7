//! A PDF as a scanner delivers it: every page rendered by poppler's `pdftoppm` to a
//! grayscale JPEG at a scanner's resolution and wrapped, one image per page, in a PDF with
//! no text layer. `docpipe eval --scan` runs the pipeline on such PDFs to measure the OCR
//! path on documents whose answers are known.
//!
//! The wrapper embeds each JPEG as it is (`/DCTDecode`, as scanners write them), so the
//! pixels the engine reads are exactly the rendered ones. A skew can be asked for: the
//! page is then turned by that angle before it is encoded, like a sheet fed in crooked.

use std::ffi::OsString;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use docpipe_core::{ErrorCode, StageError};
use image::ImageDecoder;
use image::codecs::jpeg::JpegDecoder;
use lopdf::{Dictionary, Document as PdfDoc, Object, Stream, dictionary};

use super::process::{Invocation, RunError, run};

/// One page image: a baseline or progressive JPEG.
#[derive(Debug, Clone)]
pub struct ScannedPage {
    pub jpeg: Vec<u8>,
    /// The resolution it was made at, which sets the page size in the PDF.
    pub dpi: u32,
}

/// Renders PDFs into image-only PDFs.
#[derive(Debug, Clone)]
pub struct Scanner {
    pdftoppm: PathBuf,
    pdfinfo: PathBuf,
    dpi: u32,
    quality: u8,
    /// Degrees the pages are turned by (clockwise); 0 for a straight scan.
    skew_degrees: f32,
    max_pages: u32,
    timeout: Duration,
    max_output_bytes: usize,
    memory_bytes: u64,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    /// `pdftoppm` and `pdfinfo` (poppler-utils) from `PATH`; 200 dpi, JPEG quality 85
    /// (a common office-scanner setting), at most 20 pages.
    pub fn new() -> Self {
        Self {
            pdftoppm: "pdftoppm".into(),
            pdfinfo: "pdfinfo".into(),
            dpi: 200,
            quality: 85,
            skew_degrees: 0.0,
            max_pages: 20,
            timeout: Duration::from_secs(60),
            max_output_bytes: 64 * 1024 * 1024,
            memory_bytes: 2 * 1024 * 1024 * 1024,
        }
    }

    pub fn with_dpi(mut self, dpi: u32) -> Self {
        self.dpi = dpi.clamp(50, 600);
        self
    }

    pub fn dpi(&self) -> u32 {
        self.dpi
    }

    /// Pages come out turned by `degrees` clockwise (at most 45 either way).
    pub fn with_skew(mut self, degrees: f32) -> Self {
        self.skew_degrees = if degrees.is_finite() {
            degrees.clamp(-45.0, 45.0)
        } else {
            0.0
        };
        self
    }

    pub fn skew_degrees(&self) -> f32 {
        self.skew_degrees
    }

    fn invocation<'a>(&'a self, program: &'a Path, args: Vec<OsString>) -> Invocation<'a> {
        Invocation {
            program,
            args,
            env: Vec::new(),
            timeout: self.timeout,
            max_output_bytes: self.max_output_bytes,
            memory_bytes: self.memory_bytes,
            cpu_seconds: self.timeout.as_secs().max(1),
        }
    }

    fn failed(&self, tool: &str, e: &RunError) -> StageError {
        let code = match e {
            RunError::NotFound => ErrorCode::UnsupportedDocument,
            _ => ErrorCode::DocumentUnreadable,
        };
        let mut message = e.describe(tool, self.timeout, self.max_output_bytes);
        if matches!(e, RunError::NotFound) {
            message.push_str("; apt-get install poppler-utils");
        }
        StageError::new(code, message)
    }

    /// Whether poppler's tools run here.
    pub async fn available(&self) -> bool {
        let inv = self.invocation(&self.pdftoppm, vec!["-v".into()]);
        run(&inv, Vec::new()).await.is_ok()
    }

    /// The number of pages of `pdf`, as poppler counts them.
    pub async fn page_count(&self, pdf: &[u8]) -> Result<u32, StageError> {
        let inv = self.invocation(&self.pdfinfo, vec!["-".into()]);
        let out = run(&inv, pdf.to_vec())
            .await
            .map_err(|e| self.failed("pdfinfo", &e))?;
        String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .and_then(|n| n.trim().parse().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                StageError::new(ErrorCode::DocumentUnreadable, "pdfinfo gives no page count")
            })
    }

    /// Page `number` (1-based) as a grayscale JPEG.
    pub async fn render_page(&self, pdf: &[u8], number: u32) -> Result<ScannedPage, StageError> {
        let n: OsString = number.to_string().into();
        let turned = self.skew_degrees != 0.0;
        let mut args: Vec<OsString> = vec![
            "-f".into(),
            n.clone(),
            "-l".into(),
            n,
            "-r".into(),
            self.dpi.to_string().into(),
            "-gray".into(),
        ];
        if turned {
            // Turned here, then encoded once: no JPEG artefacts from a second encoding.
            args.push("-png".into());
        } else {
            args.push("-jpeg".into());
            args.push("-jpegopt".into());
            args.push(format!("quality={}", self.quality).into());
        }
        args.extend([
            "-q".into(),
            // The PDF on stdin; with no output root, the one page goes to stdout.
            "-".into(),
        ]);
        let inv = self.invocation(&self.pdftoppm, args);
        let rendered = run(&inv, pdf.to_vec())
            .await
            .map_err(|e| self.failed("pdftoppm", &e))?;
        if rendered.is_empty() {
            return Err(StageError::new(
                ErrorCode::DocumentUnreadable,
                format!("page {number} of the PDF could not be rendered"),
            ));
        }
        let jpeg = if turned {
            let (degrees, quality) = (self.skew_degrees, self.quality);
            tokio::task::spawn_blocking(move || turn(&rendered, degrees, quality))
                .await
                .map_err(|e| StageError::internal(format!("turning a page: {e}")))??
        } else {
            rendered
        };
        Ok(ScannedPage {
            jpeg,
            dpi: self.dpi,
        })
    }

    /// `pdf` as an image-only PDF: each page (up to the page cap) rendered and wrapped.
    pub async fn scan(&self, pdf: &[u8]) -> Result<Vec<u8>, StageError> {
        let pages = self.page_count(pdf).await?.min(self.max_pages);
        let mut images = Vec::with_capacity(pages as usize);
        for number in 1..=pages {
            images.push(self.render_page(pdf, number).await?);
        }
        image_pdf(&images)
    }
}

/// A grayscale PNG turned by `degrees` clockwise about its centre (corners filled white,
/// the canvas kept), as a JPEG.
fn turn(png: &[u8], degrees: f32, quality: u8) -> Result<Vec<u8>, StageError> {
    use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};
    let page = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .map_err(|e| StageError::new(ErrorCode::DocumentUnreadable, format!("{e}")))?
        .to_luma8();
    let turned = rotate_about_center(
        &page,
        degrees.to_radians(),
        Interpolation::Bilinear,
        Border::Constant(image::Luma([255u8])),
    );
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&turned)
        .map_err(|e| StageError::internal(format!("encoding a page: {e}")))?;
    Ok(out)
}

/// A PDF with one page per JPEG, each page exactly its image (sized from the image's
/// pixels and resolution) and nothing else: no text, no fonts.
pub fn image_pdf(pages: &[ScannedPage]) -> Result<Vec<u8>, StageError> {
    let bad = |m: String| StageError::new(ErrorCode::InvalidFileFormat, m);
    if pages.is_empty() {
        return Err(bad("no page to wrap".into()));
    }
    let mut doc = PdfDoc::with_version("1.5");
    let pages_id = doc.new_object_id();
    let mut kids = Vec::with_capacity(pages.len());
    for (i, page) in pages.iter().enumerate() {
        let decoder = JpegDecoder::new(Cursor::new(&page.jpeg))
            .map_err(|e| bad(format!("page {} is no JPEG: {e}", i + 1)))?;
        let (width, height) = decoder.dimensions();
        let colour_space = match decoder.color_type().channel_count() {
            1 => "DeviceGray",
            3 => "DeviceRGB",
            4 => "DeviceCMYK",
            n => return Err(bad(format!("page {} has {n} colour channels", i + 1))),
        };
        let mut image = Stream::new(
            dictionary! {
                "Type" => "XObject",
                "Subtype" => "Image",
                "Width" => i64::from(width),
                "Height" => i64::from(height),
                "ColorSpace" => colour_space,
                "BitsPerComponent" => 8,
                "Filter" => "DCTDecode",
            },
            page.jpeg.clone(),
        );
        // Already compressed; lopdf must not deflate it again.
        image.allows_compression = false;
        let image_id = doc.add_object(image);
        let dpi = page.dpi.max(1) as f32;
        let (w_pt, h_pt) = (width as f32 * 72.0 / dpi, height as f32 * 72.0 / dpi);
        let content = format!("q {w_pt:.3} 0 0 {h_pt:.3} 0 0 cm /Scan Do Q\n");
        let content_id = doc.add_object(Stream::new(Dictionary::new(), content.into_bytes()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), Object::Real(w_pt), Object::Real(h_pt)],
            "Contents" => content_id,
            "Resources" => dictionary! {
                "XObject" => dictionary! { "Scan" => image_id },
            },
        });
        kids.push(Object::Reference(page_id));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out)
        .map_err(|e| StageError::internal(format!("writing the scanned PDF: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = image::GrayImage::from_fn(width, height, |x, y| {
            image::Luma([if (x / 8 + y / 8) % 2 == 0 { 0 } else { 255 }])
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .expect("encodes");
        out
    }

    #[test]
    fn pages_wrap_their_jpeg_untouched_and_carry_no_text() {
        let pages = [
            ScannedPage {
                jpeg: jpeg(400, 200),
                dpi: 200,
            },
            ScannedPage {
                jpeg: jpeg(100, 100),
                dpi: 100,
            },
        ];
        let pdf = image_pdf(&pages).expect("wraps");
        let doc = PdfDoc::load_mem(&pdf).expect("a valid PDF");
        let ids: Vec<_> = doc.page_iter().collect();
        assert_eq!(ids.len(), 2);
        for (id, page) in ids.iter().zip(&pages) {
            let images = doc.get_page_images(*id).expect("images");
            assert_eq!(images.len(), 1);
            assert_eq!(images[0].content, page.jpeg.as_slice());
            assert_eq!(
                images[0].filters.as_deref(),
                Some(&["DCTDecode".to_owned()][..])
            );
            assert!(doc.get_page_fonts(*id).expect("fonts").is_empty());
        }
        // 400 px at 200 dpi is 2 inches: 144 points.
        let media = doc
            .get_dictionary(ids[0])
            .and_then(|d| d.get(b"MediaBox"))
            .and_then(Object::as_array)
            .expect("a media box");
        let width = media[2].as_float().expect("a number");
        assert!((width - 144.0).abs() < 0.01, "{width}");
    }

    #[test]
    fn a_turned_page_keeps_its_size_and_white_corners() {
        let mut png = Vec::new();
        image::GrayImage::from_pixel(300, 200, image::Luma([0u8]))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encodes");
        let jpeg = turn(&png, 10.0, 90).expect("turns");
        let page = image::load_from_memory(&jpeg).expect("a JPEG").to_luma8();
        assert_eq!(page.dimensions(), (300, 200));
        assert!(
            page.get_pixel(0, 0).0[0] > 200,
            "corner {:?}",
            page.get_pixel(0, 0)
        );
        assert!(page.get_pixel(150, 100).0[0] < 50);
    }

    #[test]
    fn nothing_or_no_jpeg_is_refused() {
        assert!(image_pdf(&[]).is_err());
        let e = image_pdf(&[ScannedPage {
            jpeg: b"not a jpeg".to_vec(),
            dpi: 200,
        }])
        .expect_err("refused");
        assert_eq!(e.code, ErrorCode::InvalidFileFormat);
    }
}
