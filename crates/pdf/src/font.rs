//! Fonts as the text interpreter needs them: how a shown string splits into codes, each
//! code's advance width (in thousandths of the font size) and its Unicode text.

use std::collections::HashMap;

use lopdf::{Dictionary, Document as PdfDoc, Object};

use super::cmap::{CMap, Mapped};
use super::tables;

/// Everything we need from a font dictionary, resolved once.
#[derive(Debug)]
pub(crate) struct Font {
    kind: Kind,
    to_unicode: Option<CMap>,
    /// Ascent and descent in thousandths of the font size (descent negative).
    pub(crate) ascent: f32,
    pub(crate) descent: f32,
}

#[derive(Debug)]
enum Kind {
    Simple {
        widths: Box<[f32; 256]>,
        /// Code -> text from the encoding (before ToUnicode).
        text: Box<[Option<char>; 256]>,
    },
    Cid {
        /// The encoding CMap when embedded: code space and code -> CID.
        encoding: Option<CMap>,
        /// Predefined UCS-2/UTF-16 CMaps: the code is the character.
        unicode_codes: bool,
        widths: HashMap<u32, f32>,
        default_width: f32,
    },
}

/// One decoded code.
pub(crate) struct Glyph<'a> {
    /// Advance in thousandths of the font size.
    pub width: f32,
    /// Word spacing applies (single-byte code 32).
    pub is_space_code: bool,
    pub text: GlyphText<'a>,
}

pub(crate) enum GlyphText<'a> {
    None,
    Char(char),
    Mapped(Mapped<'a>),
}

const MAX_WIDTH_ENTRIES: usize = 65_536;

fn num(o: &Object) -> Option<f32> {
    o.as_float().ok().filter(|v| v.is_finite())
}

fn deref<'a>(doc: &'a PdfDoc, o: &'a Object) -> &'a Object {
    doc.dereference(o).map(|(_, o)| o).unwrap_or(o)
}

fn get<'a>(doc: &'a PdfDoc, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    dict.get(key).ok().map(|o| deref(doc, o))
}

fn stream_bytes(doc: &PdfDoc, o: &Object, limit: usize) -> Option<Vec<u8>> {
    let s = deref(doc, o).as_stream().ok()?;
    s.get_plain_content_with_limit(limit).ok()
}

/// Standard 14 widths for ASCII 32..=126, thousandths of an em.
#[rustfmt::skip]
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
#[rustfmt::skip]
const TIMES: [u16; 95] = [
    250, 333, 408, 500, 500, 833, 778, 180, 333, 333, 500, 564, 250, 333, 250, 278,
    500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 278, 278, 564, 564, 564, 444,
    921, 722, 667, 667, 722, 611, 556, 722, 722, 333, 389, 722, 611, 889, 722, 722,
    556, 722, 667, 556, 611, 722, 722, 944, 722, 722, 611, 333, 278, 333, 469, 500,
    333, 444, 500, 444, 500, 444, 333, 500, 500, 278, 278, 500, 278, 778, 500, 500,
    500, 500, 333, 389, 278, 500, 500, 722, 500, 500, 444, 480, 200, 480, 541,
];

fn base14_width(base_font: &[u8], ch: Option<char>) -> f32 {
    let name = String::from_utf8_lossy(base_font).to_ascii_lowercase();
    if name.contains("courier") || name.contains("mono") {
        return 600.0;
    }
    let table = if name.contains("times") || name.contains("serif") && !name.contains("sans") {
        &TIMES
    } else {
        &HELVETICA
    };
    match ch {
        Some(c) if (' '..='~').contains(&c) => f32::from(table[c as usize - 32]),
        Some(_) => 556.0,
        None => 500.0,
    }
}

/// Glyph name -> character (Adobe Glyph List, `uniXXXX`, `uXXXX`, suffixes).
pub(crate) fn glyph_char(name: &[u8]) -> Option<char> {
    let name = std::str::from_utf8(name).ok()?;
    let base = name.split('.').next().unwrap_or(name);
    if let Ok(i) = tables::GLYPH_NAMES.binary_search_by(|(n, _)| n.as_bytes().cmp(base.as_bytes()))
    {
        return tables::GLYPH_NAMES
            .get(i)
            .and_then(|(_, c)| char::from_u32(u32::from(*c)));
    }
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().and_then(char::from_u32);
    if let Some(h) = base.strip_prefix("uni")
        && h.len() >= 4
    {
        return h.get(..4).and_then(hex);
    }
    if let Some(h) = base.strip_prefix('u')
        && (4..=6).contains(&h.len())
    {
        return hex(h);
    }
    None
}

fn base_table(name: &[u8]) -> Option<&'static [u16; 256]> {
    match name {
        b"WinAnsiEncoding" => Some(&tables::WIN_ANSI_ENCODING),
        b"MacRomanEncoding" => Some(&tables::MAC_ROMAN_ENCODING),
        b"StandardEncoding" => Some(&tables::STANDARD_ENCODING),
        b"MacExpertEncoding" => Some(&tables::MAC_EXPERT_ENCODING),
        _ => None,
    }
}

impl Font {
    /// Resolves a font dictionary. `stream_limit` caps decompressed CMap sizes.
    pub(crate) fn load(doc: &PdfDoc, dict: &Dictionary, stream_limit: usize) -> Font {
        let to_unicode = get(doc, dict, b"ToUnicode")
            .and_then(|o| stream_bytes(doc, o, stream_limit))
            .map(|b| CMap::parse(&b));
        let subtype = get(doc, dict, b"Subtype").and_then(|o| o.as_name().ok());
        let base_font = get(doc, dict, b"BaseFont")
            .and_then(|o| o.as_name().ok())
            .unwrap_or(b"");
        let base_font = match base_font.iter().position(|&b| b == b'+') {
            Some(6) => base_font.get(7..).unwrap_or(base_font),
            _ => base_font,
        };

        if subtype == Some(b"Type0") {
            let descendant = get(doc, dict, b"DescendantFonts")
                .and_then(|o| o.as_array().ok())
                .and_then(|a| a.first())
                .map(|o| deref(doc, o))
                .and_then(|o| o.as_dict().ok());
            let (mut encoding, mut unicode_codes) = (None, false);
            match get(doc, dict, b"Encoding") {
                Some(Object::Name(n)) => {
                    let n = String::from_utf8_lossy(n);
                    unicode_codes =
                        n.starts_with("Uni") && (n.contains("UCS2") || n.contains("UTF16"));
                }
                Some(o @ Object::Stream(_)) => {
                    encoding = stream_bytes(doc, o, stream_limit).map(|b| CMap::parse(&b));
                }
                _ => {}
            }
            let mut widths = HashMap::new();
            let mut default_width = 1000.0;
            let (mut ascent, mut descent) = (None, None);
            if let Some(d) = descendant {
                if let Some(dw) = get(doc, d, b"DW").and_then(num) {
                    default_width = dw;
                }
                if let Some(w) = get(doc, d, b"W").and_then(|o| o.as_array().ok()) {
                    parse_cid_widths(doc, w, &mut widths);
                }
                (ascent, descent) = descriptor_metrics(doc, d);
            }
            return Font {
                kind: Kind::Cid {
                    encoding,
                    unicode_codes,
                    widths,
                    default_width,
                },
                to_unicode,
                ascent: ascent.unwrap_or(880.0),
                descent: descent.unwrap_or(-220.0),
            };
        }

        // Simple font: encoding table, then Differences.
        let is_symbolic_name = {
            let n = String::from_utf8_lossy(base_font).to_ascii_lowercase();
            n.contains("symbol") || n.contains("dingbats")
        };
        let mut text: Box<[Option<char>; 256]> = Box::new([None; 256]);
        let mut base: Option<&[u16; 256]> = None;
        let mut differences: Option<&Vec<Object>> = None;
        match get(doc, dict, b"Encoding") {
            Some(Object::Name(n)) => base = base_table(n),
            Some(Object::Dictionary(e)) => {
                base = get(doc, e, b"BaseEncoding")
                    .and_then(|o| o.as_name().ok())
                    .and_then(base_table);
                differences = get(doc, e, b"Differences").and_then(|o| o.as_array().ok());
            }
            _ => {}
        }
        // An embedded Type 1 program's own encoding is the base when the dictionary names none.
        let builtin = if base.is_none() && subtype == Some(b"Type1") {
            type1_builtin_encoding(doc, dict, stream_limit)
        } else {
            None
        };
        let base = base.unwrap_or(if is_symbolic_name {
            &tables::SYMBOL_ENCODING
        } else if subtype == Some(b"TrueType") {
            &tables::WIN_ANSI_ENCODING
        } else {
            &tables::STANDARD_ENCODING
        });
        for (slot, &u) in text.iter_mut().zip(base.iter()) {
            *slot = if u == 0 {
                None
            } else {
                char::from_u32(u32::from(u))
            };
        }
        if let Some(builtin) = builtin {
            for (slot, c) in text.iter_mut().zip(builtin.iter()) {
                if c.is_some() {
                    *slot = *c;
                }
            }
        }
        if let Some(diffs) = differences {
            let mut code: usize = 0;
            for o in diffs {
                match deref(doc, o) {
                    Object::Integer(i) => code = usize::try_from(*i).unwrap_or(256),
                    Object::Name(n) => {
                        if let Some(slot) = text.get_mut(code) {
                            *slot = glyph_char(n);
                        }
                        code = code.saturating_add(1);
                    }
                    _ => {}
                }
            }
        }
        // Codes nothing maps: symbolic fonts often use ASCII codes directly.
        for (code, slot) in text.iter_mut().enumerate() {
            if slot.is_none() && (33..127).contains(&code) {
                *slot = char::from_u32(code as u32);
            }
        }

        let mut widths: Box<[f32; 256]> = Box::new([f32::NAN; 256]);
        let first = get(doc, dict, b"FirstChar")
            .and_then(|o| o.as_i64().ok())
            .unwrap_or(0);
        let mut any_width = false;
        if let Some(w) = get(doc, dict, b"Widths").and_then(|o| o.as_array().ok()) {
            for (i, o) in w.iter().enumerate() {
                let code = first.saturating_add(i as i64);
                if let (Ok(code), Some(v)) = (usize::try_from(code), num(deref(doc, o)))
                    && let Some(slot) = widths.get_mut(code)
                {
                    *slot = v;
                    any_width = true;
                }
            }
        }
        let descriptor = get(doc, dict, b"FontDescriptor").and_then(|o| o.as_dict().ok());
        let missing = descriptor
            .and_then(|d| get(doc, d, b"MissingWidth"))
            .and_then(num)
            .filter(|w| *w > 0.0);
        for (code, w) in widths.iter_mut().enumerate() {
            if w.is_nan() {
                *w = match (any_width, missing) {
                    (true, Some(m)) => m,
                    _ => base14_width(base_font, text.get(code).copied().flatten()),
                };
            }
        }
        // Type 3 widths are in glyph space, scaled to text space by the FontMatrix.
        if subtype == Some(b"Type3") {
            let scale = get(doc, dict, b"FontMatrix")
                .and_then(|o| o.as_array().ok())
                .and_then(|m| m.first())
                .and_then(num)
                .map(|a| a * 1000.0)
                .filter(|a| *a != 0.0 && a.abs() < 1e6)
                .unwrap_or(1.0);
            for w in widths.iter_mut() {
                *w *= scale;
            }
        }
        let (ascent, descent) = descriptor_metrics(doc, dict);
        Font {
            kind: Kind::Simple { widths, text },
            to_unicode,
            ascent: ascent.unwrap_or(880.0),
            descent: descent.unwrap_or(-220.0),
        }
    }

    /// Calls `f` for every code of `bytes`, in order.
    pub(crate) fn decode(&self, bytes: &[u8], mut f: impl FnMut(Glyph<'_>)) {
        match &self.kind {
            Kind::Simple { widths, text } => {
                for &b in bytes {
                    let code = u32::from(b);
                    let t = match self.to_unicode.as_ref().and_then(|m| m.lookup(code)) {
                        Some(m) => GlyphText::Mapped(m),
                        None => text[usize::from(b)].map_or(GlyphText::None, GlyphText::Char),
                    };
                    f(Glyph {
                        width: widths[usize::from(b)],
                        is_space_code: b == 32,
                        text: t,
                    });
                }
            }
            Kind::Cid {
                encoding,
                unicode_codes,
                widths,
                default_width,
            } => {
                let mut i = 0;
                while i < bytes.len() {
                    let rest = &bytes[i..];
                    let len = encoding
                        .as_ref()
                        .and_then(|e| e.code_length(rest))
                        .or_else(|| self.to_unicode.as_ref().and_then(|m| m.code_length(rest)))
                        .unwrap_or(2)
                        .clamp(1, 4)
                        .min(rest.len());
                    let code = rest[..len]
                        .iter()
                        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
                    i += len;
                    let cid = encoding.as_ref().map_or(Some(code), |e| e.cid(code));
                    let width = cid
                        .and_then(|c| widths.get(&c).copied())
                        .unwrap_or(*default_width);
                    let t = match self.to_unicode.as_ref().and_then(|m| m.lookup(code)) {
                        Some(m) => GlyphText::Mapped(m),
                        None if *unicode_codes => {
                            char::from_u32(code).map_or(GlyphText::None, GlyphText::Char)
                        }
                        None => GlyphText::None,
                    };
                    f(Glyph {
                        width,
                        is_space_code: len == 1 && code == 32,
                        text: t,
                    });
                }
            }
        }
    }
}

/// The `/Encoding` of an embedded Type 1 font program (`dup 32 /space put` entries in its
/// clear-text part), for fonts whose dictionary relies on the built-in encoding.
fn type1_builtin_encoding(
    doc: &PdfDoc,
    font: &Dictionary,
    limit: usize,
) -> Option<Box<[Option<char>; 256]>> {
    let descriptor = get(doc, font, b"FontDescriptor").and_then(|o| o.as_dict().ok())?;
    let program = stream_bytes(doc, get(doc, descriptor, b"FontFile")?, limit)?;
    let clear = match program.windows(5).position(|w| w == b"eexec") {
        Some(end) => &program[..end],
        None => &program[..program.len().min(64 * 1024)],
    };
    let start = clear.windows(9).position(|w| w == b"/Encoding")?;
    let rest = &clear[start + 9..];
    if rest.trim_ascii_start().starts_with(b"StandardEncoding") {
        return None;
    }
    let mut table: Box<[Option<char>; 256]> = Box::new([None; 256]);
    let words: Vec<&[u8]> = rest
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .take(4096)
        .collect();
    let mut any = false;
    for (i, w) in words.iter().enumerate() {
        if *w == b"readonly" || *w == b"def" {
            break;
        }
        if *w != b"dup" {
            continue;
        }
        let (Some(code), Some(name)) = (words.get(i + 1), words.get(i + 2)) else {
            break;
        };
        let code = std::str::from_utf8(code)
            .ok()
            .and_then(|c| c.parse::<usize>().ok());
        if let (Some(code), Some(name)) = (code, name.strip_prefix(b"/"))
            && let Some(slot) = table.get_mut(code)
        {
            *slot = glyph_char(name);
            any = true;
        }
    }
    any.then_some(table)
}

fn descriptor_metrics(doc: &PdfDoc, font: &Dictionary) -> (Option<f32>, Option<f32>) {
    let Some(d) = get(doc, font, b"FontDescriptor").and_then(|o| o.as_dict().ok()) else {
        return (None, None);
    };
    let ascent = get(doc, d, b"Ascent")
        .and_then(num)
        .filter(|a| (300.0..=1500.0).contains(a));
    let descent = get(doc, d, b"Descent")
        .and_then(num)
        .filter(|a| (-800.0..=0.0).contains(a))
        .map(|d| d.min(-50.0));
    (ascent, descent)
}

/// `/W [c [w1 w2 ...] c1 c2 w ...]`.
fn parse_cid_widths(doc: &PdfDoc, w: &[Object], out: &mut HashMap<u32, f32>) {
    let mut i = 0;
    while i < w.len() && out.len() < MAX_WIDTH_ENTRIES {
        let Some(first) = num(deref(doc, &w[i])).map(|v| v as u32) else {
            i += 1;
            continue;
        };
        match w.get(i + 1).map(|o| deref(doc, o)) {
            Some(Object::Array(list)) => {
                for (k, o) in list.iter().enumerate().take(MAX_WIDTH_ENTRIES) {
                    if let Some(v) = num(deref(doc, o)) {
                        out.insert(first.saturating_add(k as u32), v);
                    }
                }
                i += 2;
            }
            Some(o) => {
                let last = num(o).map(|v| v as u32).unwrap_or(first);
                let v = w.get(i + 2).and_then(|o| num(deref(doc, o)));
                if let Some(v) = v {
                    let span = last.saturating_sub(first).min(MAX_WIDTH_ENTRIES as u32);
                    for c in first..=first.saturating_add(span) {
                        out.insert(c, v);
                    }
                }
                i += 3;
            }
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyph_names_resolve() {
        assert_eq!(glyph_char(b"A"), Some('A'));
        assert_eq!(glyph_char(b"adieresis"), Some('ä'));
        assert_eq!(glyph_char(b"uni20AC"), Some('€'));
        assert_eq!(glyph_char(b"u1F600"), Some('😀'));
        assert_eq!(glyph_char(b"a.sc"), Some('a'));
        assert_eq!(glyph_char(b"g123"), None);
    }
}
