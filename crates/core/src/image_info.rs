//! Image dimensions and resolution read from PNG and JPEG headers, without decoding a
//! pixel: enough to refuse a decompression bomb before any decoder allocates for it, and
//! to size the page in points.

use crate::job::MediaType;

/// What the header says about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    /// Horizontal resolution, when the file records a plausible one (50..=2400 dpi).
    pub dpi: Option<u32>,
}

/// Reads the header of a PNG or JPEG; `None` if it is malformed or not an image.
pub fn image_info(bytes: &[u8], media_type: MediaType) -> Option<ImageInfo> {
    match media_type {
        MediaType::Png => png_info(bytes),
        MediaType::Jpeg => jpeg_info(bytes),
        MediaType::Pdf => None,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn plausible_dpi(dpi: f64) -> Option<u32> {
    (50.0..=2400.0).contains(&dpi).then_some(dpi.round() as u32)
}

fn png_info(b: &[u8]) -> Option<ImageInfo> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !b.starts_with(SIG) || b.get(12..16)? != b"IHDR" {
        return None;
    }
    let width = be32(b, 16)?;
    let height = be32(b, 20)?;
    let mut dpi = None;
    // Walk the chunks up to the image data for pHYs (pixels per unit; unit 1 = metre).
    let mut at = SIG.len();
    // A truncated chunk list just ends the walk: the size is what matters.
    for _ in 0..64 {
        let (Some(len), Some(kind)) = (be32(b, at), b.get(at + 4..at + 8)) else {
            break;
        };
        if kind == b"IDAT" || kind == b"IEND" {
            break;
        }
        if kind == b"pHYs" && len >= 9 && b.get(at + 16) == Some(&1) {
            dpi = be32(b, at + 8).and_then(|ppm| plausible_dpi(f64::from(ppm) * 0.0254));
        }
        let Some(next) = at.checked_add(12).and_then(|a| a.checked_add(len as usize)) else {
            break;
        };
        at = next;
    }
    (width > 0 && height > 0).then_some(ImageInfo { width, height, dpi })
}

fn jpeg_info(b: &[u8]) -> Option<ImageInfo> {
    if b.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    let mut dpi = None;
    for _ in 0..4096 {
        // Markers may be padded with 0xFF fill bytes.
        while b.get(at) == Some(&0xFF) && b.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if *b.get(at)? != 0xFF {
            return None;
        }
        let marker = *b.get(at + 1)?;
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            at += 2;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        let len = usize::from(be16(b, at + 2)?);
        let seg = at + 4;
        match marker {
            0xE0 if b.get(seg..seg + 5) == Some(b"JFIF\0") => {
                let units = *b.get(seg + 7)?;
                let x = f64::from(be16(b, seg + 8)?);
                dpi = match units {
                    1 => plausible_dpi(x),
                    2 => plausible_dpi(x * 2.54),
                    _ => None,
                };
            }
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                let height = u32::from(be16(b, seg + 1)?);
                let width = u32::from(be16(b, seg + 3)?);
                return (width > 0 && height > 0).then_some(ImageInfo { width, height, dpi });
            }
            _ => {}
        }
        at = at.checked_add(2)?.checked_add(len)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, phys_ppm: Option<u32>) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        b.extend(13u32.to_be_bytes());
        b.extend(b"IHDR");
        b.extend(width.to_be_bytes());
        b.extend(height.to_be_bytes());
        b.extend([8, 0, 0, 0, 0]);
        b.extend([0; 4]);
        if let Some(ppm) = phys_ppm {
            b.extend(9u32.to_be_bytes());
            b.extend(b"pHYs");
            b.extend(ppm.to_be_bytes());
            b.extend(ppm.to_be_bytes());
            b.push(1);
            b.extend([0; 4]);
        }
        b.extend(0u32.to_be_bytes());
        b.extend(b"IDAT");
        b
    }

    #[test]
    fn png_size_and_resolution() {
        let i = image_info(&png(1240, 1754, Some(5906)), MediaType::Png).expect("png");
        assert_eq!((i.width, i.height, i.dpi), (1240, 1754, Some(150)));
        let i = image_info(&png(10, 20, None), MediaType::Png).expect("png");
        assert_eq!((i.width, i.height, i.dpi), (10, 20, None));
        assert_eq!(image_info(&png(0, 20, None), MediaType::Png), None);
        assert_eq!(image_info(b"\x89PNG\r\n\x1a\n", MediaType::Png), None);
    }

    #[test]
    fn jpeg_size_and_resolution() {
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        b.extend(b"JFIF\0");
        b.extend([1, 1, 1, 0, 200, 0, 200, 0, 0]);
        b.extend([0xFF, 0xC0, 0, 11, 8, 0x03, 0xE8, 0x02, 0x58, 1, 0, 0, 0]);
        let i = image_info(&b, MediaType::Jpeg).expect("jpeg");
        assert_eq!((i.width, i.height, i.dpi), (600, 1000, Some(200)));
        // Truncated before the frame header.
        assert_eq!(image_info(&b[..10], MediaType::Jpeg), None);
        assert_eq!(image_info(&[0xFF, 0xD8, 0xFF, 0xDA], MediaType::Jpeg), None);
    }
}
