//! A small CMap reader: code space ranges, `bfchar`/`bfrange` (ToUnicode, including ranges
//! with arrays of targets) and `cidchar`/`cidrange` (embedded encoding CMaps). Bounded: a
//! hostile CMap cannot expand into more than [`MAX_ENTRIES`] mappings.

use std::collections::HashMap;

use super::font::glyph_char;

const MAX_ENTRIES: usize = 131_072;

/// What a code maps to: a string, or a range target plus the code's offset in the range
/// (added to the last UTF-16 unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mapped<'a> {
    Str(&'a str),
    Units { base: &'a [u16], delta: u16 },
}

impl Mapped<'_> {
    pub(crate) fn for_each_char(self, mut f: impl FnMut(char)) {
        match self {
            Mapped::Str(s) => s.chars().for_each(f),
            Mapped::Units { base, delta } => {
                let n = base.len();
                let units = base
                    .iter()
                    .enumerate()
                    .map(|(i, &u)| if i + 1 == n { u.wrapping_add(delta) } else { u });
                for c in char::decode_utf16(units).flatten() {
                    f(c);
                }
            }
        }
    }

    #[cfg(test)]
    fn text(self) -> String {
        let mut s = String::new();
        self.for_each_char(|c| s.push(c));
        s
    }
}

#[derive(Debug, Default)]
pub(crate) struct CMap {
    /// (byte length, low, high).
    code_space: Vec<(usize, u32, u32)>,
    unicode: HashMap<u32, String>,
    /// `bfrange` with one target, kept as ranges (a CMap may cover all 65536 codes):
    /// (low, high, UTF-16 of the first target), sorted by low after parsing.
    unicode_ranges: Vec<(u32, u32, Vec<u16>)>,
    /// (low, high, first CID).
    cid_ranges: Vec<(u32, u32, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    Hex(Vec<u8>),
    Name(&'a [u8]),
    Int(i64),
    ArrayStart,
    ArrayEnd,
    Keyword(&'a [u8]),
}

fn tokens(data: &[u8]) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    let is_delim = |b: u8| b"()<>[]{}/%".contains(&b) || b.is_ascii_whitespace();
    while i < data.len() {
        let b = data[i];
        match b {
            b'%' => {
                while i < data.len() && data[i] != b'\n' && data[i] != b'\r' {
                    i += 1;
                }
            }
            b'<' if data.get(i + 1) == Some(&b'<') => i += 2,
            b'>' if data.get(i + 1) == Some(&b'>') => i += 2,
            b'<' => {
                let mut digits = Vec::new();
                i += 1;
                while i < data.len() && data[i] != b'>' {
                    if let Some(d) = (data[i] as char).to_digit(16) {
                        digits.push(d as u8);
                    }
                    i += 1;
                }
                i += 1;
                if digits.len() % 2 == 1 {
                    digits.push(0);
                }
                out.push(Token::Hex(
                    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect(),
                ));
            }
            b'(' => {
                // Literal strings are not used by the parts we read: skip, nesting-aware.
                let mut depth = 0usize;
                while i < data.len() {
                    match data[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            b'[' => {
                out.push(Token::ArrayStart);
                i += 1;
            }
            b']' => {
                out.push(Token::ArrayEnd);
                i += 1;
            }
            b'/' => {
                let start = i + 1;
                i += 1;
                while i < data.len() && !is_delim(data[i]) {
                    i += 1;
                }
                out.push(Token::Name(&data[start..i]));
            }
            _ if b.is_ascii_whitespace() || b"{}>)".contains(&b) => i += 1,
            _ => {
                let start = i;
                while i < data.len() && !is_delim(data[i]) {
                    i += 1;
                }
                let word = &data[start..i];
                match std::str::from_utf8(word)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(n) => out.push(Token::Int(n)),
                    None => out.push(Token::Keyword(word)),
                }
            }
        }
    }
    out
}

fn be(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

fn utf16(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks(2)
        .map(|p| match p {
            [a, b] => u16::from(*a) << 8 | u16::from(*b),
            [a] => u16::from(*a),
            _ => 0,
        })
        .collect()
}

/// At most this many UTF-16 units per mapped code (real ligatures need 3 or 4).
const MAX_TARGET_UNITS: usize = 32;

fn units_to_string(units: &[u16]) -> String {
    char::decode_utf16(units.iter().take(MAX_TARGET_UNITS).copied())
        .filter_map(Result::ok)
        .collect()
}

impl CMap {
    pub(crate) fn parse(data: &[u8]) -> CMap {
        let toks = tokens(data);
        let mut map = CMap::default();
        let mut i = 0;
        let mut mode: &[u8] = b"";
        while i < toks.len() {
            match &toks[i] {
                Token::Keyword(k) if k.starts_with(b"begin") => {
                    mode = k;
                    i += 1;
                    continue;
                }
                Token::Keyword(k) if k.starts_with(b"end") => {
                    mode = b"";
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let full = map.unicode.len() >= MAX_ENTRIES || map.cid_ranges.len() >= MAX_ENTRIES;
            match mode {
                b"begincodespacerange" => {
                    if let (Some(Token::Hex(lo)), Some(Token::Hex(hi))) =
                        (toks.get(i), toks.get(i + 1))
                    {
                        if !lo.is_empty() && lo.len() <= 4 {
                            map.code_space.push((lo.len(), be(lo), be(hi)));
                        }
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                b"beginbfchar" => {
                    match (toks.get(i), toks.get(i + 1)) {
                        (Some(Token::Hex(src)), Some(Token::Hex(dst))) if !full => {
                            map.unicode.insert(be(src), units_to_string(&utf16(dst)));
                        }
                        (Some(Token::Hex(src)), Some(Token::Name(n))) if !full => {
                            if let Some(c) = glyph_char(n) {
                                map.unicode.insert(be(src), c.to_string());
                            }
                        }
                        _ => {
                            i += 1;
                            continue;
                        }
                    }
                    i += 2;
                }
                b"beginbfrange" => {
                    let (Some(Token::Hex(lo)), Some(Token::Hex(hi))) =
                        (toks.get(i), toks.get(i + 1))
                    else {
                        i += 1;
                        continue;
                    };
                    let (lo, hi) = (be(lo), be(hi));
                    i += 2;
                    match toks.get(i) {
                        Some(Token::Hex(dst)) => {
                            if hi >= lo && map.unicode_ranges.len() < MAX_ENTRIES {
                                let mut base = utf16(dst);
                                base.truncate(MAX_TARGET_UNITS);
                                map.unicode_ranges.push((lo, hi, base));
                            }
                            i += 1;
                        }
                        Some(Token::ArrayStart) => {
                            i += 1;
                            let mut code = lo;
                            while let Some(t) = toks.get(i) {
                                i += 1;
                                match t {
                                    Token::Hex(dst) => {
                                        if code <= hi && !full {
                                            map.unicode.insert(code, units_to_string(&utf16(dst)));
                                        }
                                        code = code.saturating_add(1);
                                    }
                                    Token::ArrayEnd => break,
                                    _ => {}
                                }
                            }
                        }
                        _ => i += 1,
                    }
                }
                b"begincidchar" => {
                    if let (Some(Token::Hex(src)), Some(Token::Int(cid))) =
                        (toks.get(i), toks.get(i + 1))
                    {
                        let (c, cid) = (be(src), u32::try_from(*cid).unwrap_or(0));
                        if !full {
                            map.cid_ranges.push((c, c, cid));
                        }
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                b"begincidrange" => {
                    if let (Some(Token::Hex(lo)), Some(Token::Hex(hi)), Some(Token::Int(cid))) =
                        (toks.get(i), toks.get(i + 1), toks.get(i + 2))
                    {
                        if !full {
                            map.cid_ranges
                                .push((be(lo), be(hi), u32::try_from(*cid).unwrap_or(0)));
                        }
                        i += 3;
                    } else {
                        i += 1;
                    }
                }
                _ => i += 1,
            }
        }
        map.unicode_ranges.sort_by_key(|r| r.0);
        map
    }

    /// The Unicode text of a code, if mapped.
    pub(crate) fn lookup(&self, code: u32) -> Option<Mapped<'_>> {
        if let Some(s) = self.unicode.get(&code) {
            return Some(Mapped::Str(s));
        }
        let i = self.unicode_ranges.partition_point(|r| r.0 <= code);
        let (lo, hi, base) = self.unicode_ranges.get(i.checked_sub(1)?)?;
        (code <= *hi).then(|| Mapped::Units {
            base,
            delta: (code - lo) as u16,
        })
    }

    /// The CID of a code (encoding CMaps); codes outside every range map to CID 0.
    pub(crate) fn cid(&self, code: u32) -> Option<u32> {
        if self.cid_ranges.is_empty() {
            return Some(code);
        }
        self.cid_ranges
            .iter()
            .rev()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&code))
            .map(|(lo, _, cid)| cid.saturating_add(code - lo))
            .or(Some(0))
    }

    /// How many bytes the next code takes, from the code space ranges.
    pub(crate) fn code_length(&self, bytes: &[u8]) -> Option<usize> {
        if self.code_space.is_empty() {
            return None;
        }
        for len in 1..=4usize {
            let Some(prefix) = bytes.get(..len) else {
                break;
            };
            let v = be(prefix);
            if self
                .code_space
                .iter()
                .any(|(l, lo, hi)| *l == len && (*lo..=*hi).contains(&v))
            {
                return Some(len);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bfchar_bfrange_and_arrays() {
        let cmap = CMap::parse(
            b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
              1 begincodespacerange <0000> <FFFF> endcodespacerange\n\
              2 beginbfchar <0003> <0020> <0024> <00660069> endbfchar\n\
              2 beginbfrange <0010> <0012> <0041> <0020> <0021> [<00E4> <00DF>] endbfrange\n\
              endcmap CMapName currentdict /CMap defineresource pop end end",
        );
        let text = |c| cmap.lookup(c).map(Mapped::text);
        assert_eq!(text(3).as_deref(), Some(" "));
        assert_eq!(text(0x24).as_deref(), Some("fi"));
        assert_eq!(text(0x10).as_deref(), Some("A"));
        assert_eq!(text(0x12).as_deref(), Some("C"));
        assert_eq!(text(0x13), None);
        assert_eq!(text(0x21).as_deref(), Some("ß"));
        assert_eq!(cmap.code_length(&[0, 3]), Some(2));
        assert_eq!(cmap.lookup(0x99), None);
    }

    #[test]
    fn hostile_range_is_bounded() {
        let mut big = b"beginbfrange <00000000> <FFFFFFFF> <0041> ".to_vec();
        big.extend(b"<0000> <FFFF> [<0041> <0042>] ".repeat(10));
        big.extend(b"endbfrange");
        let cmap = CMap::parse(&big);
        assert!(cmap.unicode.len() <= MAX_ENTRIES + 1);
        assert_eq!(cmap.unicode_ranges.len(), 1);
        assert!(cmap.lookup(0xFFFF_FFFF).is_some());
    }
}
