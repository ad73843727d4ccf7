//! Format detection by magic bytes. The filename extension and the client's content type
//! are never trusted.

use crate::job::MediaType;

/// The format of `bytes` by its leading signature, or `None`.
///
/// A PDF's `%PDF` marker may start anywhere in its first 1025 bytes, after junk and
/// without the version's dash, as readers accept (pdfium looks exactly there); PNG and
/// JPEG must start with their signature.
pub fn detect_media_type(bytes: &[u8]) -> Option<MediaType> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) {
        return Some(MediaType::Png);
    }
    if bytes.len() >= 3 && bytes[..3] == [0xFF, 0xD8, 0xFF] {
        return Some(MediaType::Jpeg);
    }
    let head = &bytes[..bytes.len().min(1024 + 4)];
    if head.windows(4).any(|w| w == b"%PDF") {
        return Some(MediaType::Pdf);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(detect_media_type(b"%PDF-1.7\n..."), Some(MediaType::Pdf));
        assert_eq!(detect_media_type(b"\n\n%PDF-1.4"), Some(MediaType::Pdf));
        assert_eq!(detect_media_type(b"%PDF1.4\n"), Some(MediaType::Pdf));
        let late = [vec![b' '; 1024], b"%PDF-1.4".to_vec()].concat();
        assert_eq!(detect_media_type(&late), Some(MediaType::Pdf));
        assert_eq!(detect_media_type(&late[1..]), Some(MediaType::Pdf));
        let too_late = [vec![b' '; 1025], b"%PDF-1.4".to_vec()].concat();
        assert_eq!(detect_media_type(&too_late), None);
        assert_eq!(
            detect_media_type(b"\x89PNG\r\n\x1a\n\0\0"),
            Some(MediaType::Png)
        );
        assert_eq!(
            detect_media_type(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(MediaType::Jpeg)
        );
        assert_eq!(detect_media_type(b""), None);
        assert_eq!(detect_media_type(b"PK\x03\x04"), None);
        assert_eq!(detect_media_type(b"GIF89a"), None);
    }
}
