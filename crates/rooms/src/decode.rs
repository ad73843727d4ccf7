//! From untrusted bytes to a bounded grayscale image: PNG and JPEG decoded under
//! `image`'s limits (a decompression bomb is refused before its pixels are allocated), a
//! PDF's embedded JPEG scan found by a plain byte scan (no PDF parser runs in-process),
//! alpha flattened onto white, and huge sheets box-averaged down to a working size.

use std::io::Cursor;

use docpipe_core::{ErrorCode, MediaType, StageError};
use image::{DynamicImage, GrayImage, ImageReader, Limits};

/// Bounds on what is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Widest and tallest accepted image, pixels.
    pub max_side: u32,
    /// Most pixels accepted (width x height).
    pub max_pixels: u64,
    /// Most bytes the decoder may allocate at once.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_side: 20_000,
            max_pixels: 120_000_000,
            max_alloc: 1024 * 1024 * 1024,
        }
    }
}

/// A decoded plan: grayscale pixels, and the PDF page it came from, if any.
#[derive(Debug)]
pub struct Decoded {
    pub gray: GrayImage,
    pub page: Option<u32>,
}

/// Decodes a blueprint: PNG or JPEG directly, a PDF through its embedded JPEG scan.
pub fn decode_plan(
    bytes: &[u8],
    media_type: MediaType,
    limits: &DecodeLimits,
) -> Result<Decoded, StageError> {
    match media_type {
        MediaType::Png | MediaType::Jpeg => Ok(Decoded {
            gray: decode_gray(bytes, limits)?,
            page: None,
        }),
        MediaType::Pdf => {
            let scan = pdf_scan(bytes)?;
            Ok(Decoded {
                gray: decode_gray(scan, limits)?,
                page: None,
            })
        }
    }
}

/// Decodes PNG or JPEG bytes to grayscale under `limits`.
pub fn decode_gray(bytes: &[u8], limits: &DecodeLimits) -> Result<GrayImage, StageError> {
    let unreadable = |e: image::ImageError| {
        StageError::new(ErrorCode::DocumentUnreadable, format!("image: {e}"))
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| StageError::new(ErrorCode::DocumentUnreadable, format!("image: {e}")))?;
    let (w, h) = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| StageError::new(ErrorCode::DocumentUnreadable, format!("image: {e}")))?
        .into_dimensions()
        .map_err(unreadable)?;
    if w == 0 || h == 0 {
        return Err(StageError::new(
            ErrorCode::DocumentUnreadable,
            "the image has no pixels",
        ));
    }
    if w > limits.max_side || h > limits.max_side || u64::from(w) * u64::from(h) > limits.max_pixels
    {
        return Err(StageError::new(
            ErrorCode::FileTooLarge,
            format!(
                "the image is {w}x{h} pixels; at most {} per side and {} megapixels are accepted",
                limits.max_side,
                limits.max_pixels / 1_000_000
            ),
        ));
    }
    let mut l = Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(limits.max_alloc);
    reader.limits(l);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => StageError::new(
            ErrorCode::FileTooLarge,
            format!("the image exceeds the decoding limits: {e}"),
        ),
        e => unreadable(e),
    })?;
    Ok(flatten(image))
}

/// Grayscale with any transparency composited onto white paper.
fn flatten(image: DynamicImage) -> GrayImage {
    if !image.color().has_alpha() {
        return image.into_luma8();
    }
    let rgba = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = GrayImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = p.0;
        let luma = (u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000;
        let a = u32::from(a);
        o.0[0] = ((luma * a + 255 * (255 - a)) / 255) as u8;
    }
    out
}

/// Box-averages `gray` by the smallest integer factor that brings it to at most
/// `max_pixels`. Averaging (not sampling) keeps thick walls dark and fades hairlines.
pub fn downscale(gray: GrayImage, max_pixels: u64) -> (GrayImage, u32) {
    let (w, h) = gray.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels <= max_pixels.max(1) {
        return (gray, 1);
    }
    let mut f = ((pixels as f64 / max_pixels.max(1) as f64).sqrt().ceil() as u32).max(2);
    while u64::from(w.div_ceil(f)) * u64::from(h.div_ceil(f)) > max_pixels.max(1) {
        f += 1;
    }
    let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
    let mut sums = vec![0u32; ow as usize];
    let mut counts = vec![0u32; ow as usize];
    let mut out = GrayImage::new(ow, oh);
    let src = gray.as_raw();
    for oy in 0..oh {
        sums.fill(0);
        counts.fill(0);
        for y in oy * f..((oy + 1) * f).min(h) {
            let row = &src[(y as usize) * (w as usize)..(y as usize + 1) * (w as usize)];
            for (x, &v) in row.iter().enumerate() {
                let ox = x / f as usize;
                sums[ox] += u32::from(v);
                counts[ox] += 1;
            }
        }
        for ox in 0..ow {
            let c = counts[ox as usize].max(1);
            out.put_pixel(ox, oy, image::Luma([(sums[ox as usize] / c) as u8]));
        }
    }
    (out, f)
}

/// The largest embedded JPEG image of a PDF, found by scanning for image streams with a
/// lone `/DCTDecode` filter (a scanned page's usual encoding; the stream is a JPEG file).
/// A PDF without one is a vector drawing or a scan in another encoding: both are refused
/// as unsupported for now, saying which.
pub fn pdf_scan(bytes: &[u8]) -> Result<&[u8], StageError> {
    use regex::bytes::Regex;
    // Dictionary of an image XObject followed by its stream; bounded lookbehind window.
    let stream_kw = Regex::new(r"stream\r?\n").map_err(|e| StageError::internal(e.to_string()))?;
    let width =
        Regex::new(r"/Width\s+(\d{1,6})").map_err(|e| StageError::internal(e.to_string()))?;
    let height =
        Regex::new(r"/Height\s+(\d{1,6})").map_err(|e| StageError::internal(e.to_string()))?;
    let mut best: Option<(u64, &[u8])> = None;
    let mut other_images = 0usize;
    for m in stream_kw.find_iter(bytes) {
        if m.start() >= 3 && &bytes[m.start() - 3..m.start()] == b"end" {
            continue;
        }
        let dict_start = m.start().saturating_sub(4096);
        let window = &bytes[dict_start..m.start()];
        // The dictionary is the text after the last "obj" keyword.
        let dict = match find_last(window, b"obj") {
            Some(i) => &window[i..],
            None => window,
        };
        if !contains(dict, b"/Image") {
            continue;
        }
        let filters = [
            &b"/FlateDecode"[..],
            b"/CCITTFaxDecode",
            b"/JBIG2Decode",
            b"/JPXDecode",
            b"/LZWDecode",
            b"/RunLengthDecode",
        ];
        if !contains(dict, b"/DCTDecode") || filters.iter().any(|f| contains(dict, f)) {
            other_images += 1;
            continue;
        }
        let num = |re: &Regex| -> u64 {
            re.captures(dict)
                .and_then(|c| c.get(1))
                .and_then(|g| std::str::from_utf8(g.as_bytes()).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        let (w, h) = (num(&width), num(&height));
        let data_start = m.end();
        let rest = &bytes[data_start..];
        let Some(end) = find_first(rest, b"endstream") else {
            continue;
        };
        let data = &rest[..end];
        if w * h > best.map_or(0, |b| b.0) {
            best = Some((w * h, data));
        }
    }
    match best {
        Some((pixels, data)) if pixels >= 300 * 300 => Ok(data),
        _ if other_images > 0 => Err(StageError::new(
            ErrorCode::UnsupportedDocument,
            "this PDF blueprint's scan is not JPEG-encoded (Flate, CCITT, JBIG2 or JPEG 2000); \
             room detection reads PNG, JPEG, or PDFs whose page is a JPEG scan for now",
        )),
        _ => Err(StageError::new(
            ErrorCode::UnsupportedDocument,
            "this PDF blueprint has no embedded raster scan (a vector drawing): room detection \
             on vector PDFs is not supported yet; submit the plan as PNG or JPEG",
        )),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find_first(hay, needle).is_some()
}

fn find_first(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = GrayImage::from_pixel(w, h, image::Luma([255]));
        let mut out = Vec::new();
        DynamicImage::ImageLuma8(img)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .map(|_| out)
            .unwrap_or_default()
    }

    #[test]
    fn a_png_claiming_huge_dimensions_is_refused_before_decoding() {
        let mut bytes = png(8, 8);
        assert!(bytes.len() > 24);
        // Rewrite the IHDR's width and height to 60000 x 60000 (the CRC no longer matches,
        // which decoders may report instead: either way it is refused, never allocated).
        bytes[16..20].copy_from_slice(&60_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&60_000u32.to_be_bytes());
        let err = decode_gray(&bytes, &DecodeLimits::default()).expect_err("refused");
        assert!(
            matches!(
                err.code,
                ErrorCode::FileTooLarge | ErrorCode::DocumentUnreadable
            ),
            "{err:?}"
        );
        // Within the side limit but over the pixel cap.
        let small = DecodeLimits {
            max_pixels: 32,
            ..DecodeLimits::default()
        };
        let err = decode_gray(&png(8, 8), &small).expect_err("refused");
        assert_eq!(err.code, ErrorCode::FileTooLarge);
    }

    #[test]
    fn downscale_averages_by_an_integer_factor() {
        let img = GrayImage::from_fn(100, 50, |x, _| image::Luma([if x < 50 { 0 } else { 255 }]));
        let (small, f) = downscale(img, 1_000);
        assert_eq!(f, 3);
        assert_eq!(small.dimensions(), (34, 17));
        assert_eq!(small.get_pixel(0, 0).0[0], 0);
        assert_eq!(small.get_pixel(33, 0).0[0], 255);
    }

    #[test]
    fn a_vector_pdf_is_unsupported_with_a_clear_message() {
        let pdf = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n2 0 obj << /Length 5 >>\nstream\n0 0 m\nendstream\nendobj\n%%EOF";
        let err = pdf_scan(pdf).expect_err("unsupported");
        assert_eq!(err.code, ErrorCode::UnsupportedDocument);
        assert!(err.message.contains("vector"));
    }
}
