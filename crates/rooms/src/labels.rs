//! Room labels from the text on a plan: the words an OCR engine read (or a PDF's text
//! layer holds), each given to the room whose outline contains the word's centre, joined
//! in reading order. Words the engine was unsure of, and words with no letter or digit
//! (hatching read as `|||`), are left out.

use docpipe_core::{Document, Room};

/// Words below this confidence are not used.
const MIN_CONFIDENCE: f32 = 0.5;
/// Longest label kept, in characters.
const MAX_LABEL_CHARS: usize = 80;

/// Sets each room's label from the words of `document`'s page `page` (1-based; the
/// first page when `None`) inside it. Both use coordinates normalised to the image.
pub fn assign_labels(rooms: &mut [Room], document: &Document, page: Option<u32>) {
    let page = match page {
        Some(n) => document.pages.iter().find(|p| p.number == n),
        None => document.pages.first(),
    };
    let Some(page) = page else { return };
    let mut texts: Vec<String> = vec![String::new(); rooms.len()];
    for word in page.lines.iter().flat_map(|l| &l.words) {
        if word.confidence < MIN_CONFIDENCE || !word.text.chars().any(char::is_alphanumeric) {
            continue;
        }
        let (x, y) = (
            f64::from(word.bbox.center_x()),
            f64::from(word.bbox.center_y()),
        );
        if let Some(i) = rooms
            .iter()
            .position(|r| contains(&r.polygon_normalised, x, y))
        {
            let text = &mut texts[i];
            if text.chars().count() + word.text.chars().count() < MAX_LABEL_CHARS {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(word.text.trim());
            }
        }
    }
    for (room, text) in rooms.iter_mut().zip(texts) {
        if text.chars().any(char::is_alphabetic) {
            room.label = Some(text);
        }
    }
}

/// Whether `(x, y)` lies inside `polygon` (even-odd rule).
fn contains(polygon: &[[f64; 2]], x: f64, y: f64) -> bool {
    let n = polygon.len();
    if n < 3 {
        return false;
    }
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let ([xi, yi], [xj, yj]) = (polygon[i], polygon[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use docpipe_core::{BBox, Line, Page, TextSource, Word};

    use super::*;

    fn room(x0: f64, y0: f64, x1: f64, y1: f64) -> Room {
        Room {
            id: String::new(),
            label: None,
            polygon: Vec::new(),
            polygon_normalised: vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
            area_px: 1.0,
            area_m2: None,
            confidence: 1.0,
        }
    }

    fn word(text: &str, x: f32, y: f32, confidence: f32) -> Word {
        Word {
            text: text.into(),
            bbox: BBox::new(x - 0.02, y - 0.01, x + 0.02, y + 0.01),
            confidence,
        }
    }

    #[test]
    fn words_go_to_the_room_around_them_in_reading_order() {
        let mut rooms = vec![room(0.0, 0.0, 0.5, 1.0), room(0.5, 0.0, 1.0, 1.0)];
        let lines = vec![
            Line::from_words(vec![
                word("Living", 0.2, 0.4, 0.9),
                word("room", 0.3, 0.4, 0.9),
            ]),
            Line::from_words(vec![
                word("12.5", 0.25, 0.45, 0.9),
                word("m2", 0.3, 0.45, 0.9),
            ]),
            // Hatching read as text, and a word the engine barely saw: both left out.
            Line::from_words(vec![
                word("|||", 0.7, 0.2, 0.9),
                word("Kltchn", 0.8, 0.2, 0.3),
            ]),
        ];
        let document = Document {
            source: TextSource::Ocr,
            pages: vec![Page {
                number: 1,
                width: 100.0,
                height: 100.0,
                lines: lines.into_iter().flatten().collect(),
            }],
        };
        assign_labels(&mut rooms, &document, None);
        assert_eq!(rooms[0].label.as_deref(), Some("Living room 12.5 m2"));
        assert_eq!(rooms[1].label, None);
    }

    #[test]
    fn the_even_odd_rule_handles_concave_outlines() {
        // An L: the notch at the top right is outside.
        let l = [
            [0.0, 0.0],
            [0.5, 0.0],
            [0.5, 0.5],
            [1.0, 0.5],
            [1.0, 1.0],
            [0.0, 1.0],
        ];
        assert!(contains(&l, 0.25, 0.25));
        assert!(contains(&l, 0.75, 0.75));
        assert!(!contains(&l, 0.75, 0.25));
        assert!(!contains(&l[..2], 0.1, 0.0));
    }
}
