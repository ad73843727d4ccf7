//! Rebuilding a damaged PDF from its objects, as reconstructing readers do when the
//! cross-reference data is broken, missing or points at the wrong bytes.
//!
//! One forward pass over the file finds every `N G obj` header (stream data is stepped
//! over, so headers inside a payload do not count), measures each stream by its
//! `endstream` keyword when its `/Length` is missing, indirect or wrong, and collects the
//! trailers (classic `trailer` dictionaries and cross-reference stream dictionaries). The
//! result is a clean file: the last copy of each object (incremental updates append), each
//! stream with a `/Length` that fits, a fresh cross-reference table, and a trailer whose
//! `/Root` is the trailer's own if it names an object that exists, else the catalog found
//! among the objects. A direct `/Encrypt` dictionary becomes an indirect object, the form
//! the security handler expects. The pass is linear in the file size: every search moves
//! forward, and the `endstream` search remembers where the next keyword is.

use std::collections::BTreeMap;
use std::ops::Range;

/// Most objects kept; past it the rest of the file is ignored.
const MAX_OBJECTS: usize = 1_000_000;
/// Highest object number accepted (a forged header cannot blow up the table).
const MAX_OBJECT_NUMBER: u64 = 8_388_607;
/// Nesting of dictionaries and arrays the value scanner follows.
const MAX_NESTING: usize = 64;
/// Largest trailer dictionary read.
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// What [`rebuild`] can be asked to do beyond the plain rebuild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RebuildOptions {
    /// A key length (bits) to put in an `/Encrypt` dictionary of version 2 or 3 that has
    /// none: the specification's default is 40, but writers that omit it mostly meant 128.
    pub encrypt_key_bits: Option<u32>,
}

/// What the scan learned: enough to judge whether a retry could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rebuilt {
    pub bytes: Vec<u8>,
    pub objects: usize,
    /// The encryption dictionary is version 2 or 3 without `/Length`.
    pub encrypt_without_length: bool,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0')
}

fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn ends_token(buf: &[u8], at: usize) -> bool {
    buf.get(at).is_none_or(|&b| is_ws(b) || is_delim(b))
}

fn starts_token(buf: &[u8], at: usize, start: usize) -> bool {
    at == start || buf.get(at.wrapping_sub(1)).is_some_and(|&b| is_ws(b))
}

fn digits(buf: &[u8], at: usize, max: usize) -> Option<(u64, usize)> {
    let n = buf
        .get(at..)?
        .iter()
        .take(max + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 || n > max {
        return None;
    }
    let v = buf[at..at + n]
        .iter()
        .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
    Some((v, at + n))
}

fn skip_ws(buf: &[u8], mut at: usize) -> usize {
    while buf.get(at).is_some_and(|&b| is_ws(b)) {
        at += 1;
    }
    at
}

/// Skips white space and comments.
fn skip_blank(buf: &[u8], mut at: usize) -> usize {
    loop {
        at = skip_ws(buf, at);
        if buf.get(at) == Some(&b'%') {
            while buf.get(at).is_some_and(|&b| b != b'\n' && b != b'\r') {
                at += 1;
            }
        } else {
            return at;
        }
    }
}

/// `N G obj` at `at`: the object id and where its body starts.
fn object_header(buf: &[u8], at: usize) -> Option<((u32, u16), usize)> {
    let (num, p) = digits(buf, at, 10)?;
    let q = skip_ws(buf, p);
    if q == p || q - p > 16 {
        return None;
    }
    let (generation, p) = digits(buf, q, 5)?;
    let q = skip_ws(buf, p);
    if q == p || q - p > 16 || !buf.get(q..)?.starts_with(b"obj") || !ends_token(buf, q + 3) {
        return None;
    }
    if num > MAX_OBJECT_NUMBER || generation > 65_535 {
        return None;
    }
    Some(((num as u32, generation as u16), q + 3))
}

fn find(buf: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    buf.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|i| from + i)
}

/// The next match of one search at or after a position. The scan only moves forward, so
/// the answer of the last search stands until the scan passes it, and the searches of
/// the whole file add up to one pass.
#[derive(Default)]
struct Next {
    /// `(searched from, found at)`.
    last: Option<(usize, Option<usize>)>,
}

impl Next {
    fn find(&mut self, from: usize, search: impl FnOnce(usize) -> Option<usize>) -> Option<usize> {
        if let Some((searched, found)) = self.last
            && searched <= from
        {
            match found {
                None => return None,
                Some(at) if at >= from => return Some(at),
                Some(_) => {}
            }
        }
        let found = search(from);
        self.last = Some((from, found));
        found
    }
}

/// Where stream data may end: the next `endstream`, `endobj` and object header.
#[derive(Default)]
struct StreamEnds {
    endstream: Next,
    endobj: Next,
    header: Next,
}

/// The next `N G obj` header that starts a token at or after `from`.
fn next_header(buf: &[u8], from: usize, start: usize) -> Option<usize> {
    (from..buf.len()).find(|&p| {
        buf[p].is_ascii_digit() && starts_token(buf, p, start) && object_header(buf, p).is_some()
    })
}

/// One parsed PDF value: where it ends. Strings, names, numbers, keywords, arrays and
/// dictionaries; nesting past [`MAX_NESTING`] or a value cut off by the end of the buffer
/// gives `None`.
fn value_end(buf: &[u8], at: usize, depth: usize) -> Option<usize> {
    let b = *buf.get(at)?;
    match b {
        b'<' if buf.get(at + 1) == Some(&b'<') => {
            if depth == 0 {
                return None;
            }
            let mut p = at + 2;
            loop {
                p = skip_blank(buf, p);
                if buf.get(p..)?.starts_with(b">>") {
                    return Some(p + 2);
                }
                p = value_end(buf, p, depth - 1)?;
            }
        }
        b'<' => Some(find(buf, at, b">")? + 1),
        b'(' => {
            let mut level = 0usize;
            let mut p = at;
            loop {
                match *buf.get(p)? {
                    b'\\' => p += 1,
                    b'(' => level += 1,
                    b')' => {
                        level -= 1;
                        if level == 0 {
                            return Some(p + 1);
                        }
                    }
                    _ => {}
                }
                p += 1;
            }
        }
        b'[' => {
            if depth == 0 {
                return None;
            }
            let mut p = at + 1;
            loop {
                p = skip_blank(buf, p);
                if *buf.get(p)? == b']' {
                    return Some(p + 1);
                }
                p = value_end(buf, p, depth - 1)?;
            }
        }
        b'/' => {
            let mut p = at + 1;
            while !ends_token(buf, p) {
                p += 1;
            }
            Some(p)
        }
        b')' | b'>' | b']' | b'{' | b'}' => None,
        _ => {
            // A number, possibly the start of `N G R`, or a keyword.
            let mut p = at;
            while !ends_token(buf, p) {
                p += 1;
            }
            if p == at {
                return None;
            }
            if let Some((_, a)) = digits(buf, at, 10)
                && a == p
            {
                let q = skip_ws(buf, p);
                if let Some((_, r)) = digits(buf, q, 5) {
                    let s = skip_ws(buf, r);
                    if q > p && s > r && buf.get(s) == Some(&b'R') && ends_token(buf, s + 1) {
                        return Some(s + 1);
                    }
                }
            }
            Some(p)
        }
    }
}

/// A dictionary's top-level entries: `(key without the slash, value range)`.
type Entries<'a> = Vec<(&'a [u8], Range<usize>)>;

/// The top-level entries of the dictionary that starts at `at`, and where it ends.
fn entries(buf: &[u8], at: usize) -> Option<(Entries<'_>, usize)> {
    let mut p = skip_blank(buf, at);
    if !buf.get(p..)?.starts_with(b"<<") {
        return None;
    }
    p += 2;
    let mut out = Vec::new();
    loop {
        p = skip_blank(buf, p);
        if buf.get(p..)?.starts_with(b">>") {
            return Some((out, p + 2));
        }
        if *buf.get(p)? != b'/' {
            return None;
        }
        let key_end = value_end(buf, p, 0)?;
        let v = skip_blank(buf, key_end);
        let v_end = value_end(buf, v, MAX_NESTING)?;
        out.push((&buf[p + 1..key_end], v..v_end));
        p = v_end;
    }
}

fn entry<'a>(list: &Entries<'_>, buf: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    list.iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, r)| &buf[r.clone()])
}

/// `N G R` as an object id.
fn reference(v: &[u8]) -> Option<(u32, u16)> {
    let (n, p) = digits(v, 0, 10)?;
    let q = skip_ws(v, p);
    let (g, r) = digits(v, q, 5)?;
    let s = skip_ws(v, r);
    (q > p && s > r && v.get(s) == Some(&b'R') && n <= MAX_OBJECT_NUMBER && g <= 65_535)
        .then_some((n as u32, g as u16))
}

fn integer(v: &[u8]) -> Option<u64> {
    let (n, p) = digits(v, 0, 15)?;
    (p == v.len()).then_some(n)
}

#[derive(Debug, Clone)]
enum Body {
    /// A value: the bytes between `obj` and `endobj`.
    Value(Range<usize>),
    /// A stream: its dictionary and its data.
    Stream {
        dict: Range<usize>,
        data: Range<usize>,
    },
}

#[derive(Debug, Clone)]
struct Found {
    generation: u16,
    /// Where the header was: later copies replace earlier ones.
    at: usize,
    body: Body,
}

impl Found {
    fn dict_range(&self) -> Range<usize> {
        match &self.body {
            Body::Value(r) => r.clone(),
            Body::Stream { dict, .. } => dict.clone(),
        }
    }
}

/// Reads the object whose body starts at `at`: where it ends and what it is.
fn read_object(buf: &[u8], at: usize, start: usize, ends: &mut StreamEnds) -> (Body, usize) {
    let mut p = at;
    while p < buf.len() {
        let b = buf[p];
        if b == b'e' && buf[p..].starts_with(b"endobj") && ends_token(buf, p + 6) {
            return (Body::Value(at..p), p + 6);
        }
        if b == b's'
            && buf[p..].starts_with(b"stream")
            && !buf[p..].starts_with(b"startxref")
            && (p == at || is_ws(buf[p - 1]) || buf[p - 1] == b'>')
        {
            let mut d = p + 6;
            while buf.get(d).is_some_and(|&c| c == b' ' || c == b'\t') {
                d += 1;
            }
            match (buf.get(d), buf.get(d + 1)) {
                (Some(b'\r'), Some(b'\n')) => d += 2,
                (Some(b'\r' | b'\n'), _) => d += 1,
                _ => {
                    p += 1;
                    continue;
                }
            }
            return read_stream(buf, at..p, d, start, ends);
        }
        if b.is_ascii_digit() && starts_token(buf, p, start) && object_header(buf, p).is_some() {
            // A missing `endobj`: the next object begins.
            return (Body::Value(at..p), p);
        }
        if (b == b'x' || b == b't')
            && starts_token(buf, p, start)
            && (buf[p..].starts_with(b"xref") || buf[p..].starts_with(b"trailer"))
        {
            return (Body::Value(at..p), p);
        }
        p += 1;
    }
    (Body::Value(at..buf.len()), buf.len())
}

/// `end` less one end-of-line marker before it, not before `floor`.
fn before_eol(buf: &[u8], floor: usize, mut end: usize) -> usize {
    if end > floor && buf[end - 1] == b'\n' {
        end -= 1;
    }
    if end > floor && buf[end - 1] == b'\r' {
        end -= 1;
    }
    end
}

/// A stream whose dictionary is `dict` and whose data starts at `data`: the declared
/// length when `endstream` follows it; else up to the next `endstream` if no `endobj`
/// comes first; else (the keyword is damaged) the declared length if it stays inside the
/// object, or everything up to the object's end.
fn read_stream(
    buf: &[u8],
    dict: Range<usize>,
    data: usize,
    start: usize,
    ends: &mut StreamEnds,
) -> (Body, usize) {
    let declared = entries(&buf[..dict.end], dict.start)
        .and_then(|(list, _)| entry(&list, buf, b"Length").and_then(integer))
        .and_then(|n| usize::try_from(n).ok())
        .and_then(|n| data.checked_add(n))
        .filter(|&end| end <= buf.len());
    let (data_end, after) = if let Some(end) =
        declared.filter(|&end| buf[skip_ws(buf, end)..].starts_with(b"endstream"))
    {
        (end, skip_ws(buf, end) + 9)
    } else {
        let endstream = ends.endstream.find(data, |f| find(buf, f, b"endstream"));
        let endobj = ends.endobj.find(data, |f| find(buf, f, b"endobj"));
        match (endstream, endobj) {
            (Some(kw), o) if o.is_none_or(|o| kw < o) => (before_eol(buf, data, kw), kw + 9),
            _ => {
                let header = ends.header.find(data, |f| next_header(buf, f, start));
                let limit = match (endobj, header) {
                    (Some(o), Some(h)) => o.min(h),
                    (Some(o), None) => o,
                    (None, Some(h)) => h,
                    (None, None) => buf.len(),
                };
                match declared.filter(|&end| end <= limit) {
                    Some(end) => (end, end),
                    None => (before_eol(buf, data, limit), limit),
                }
            }
        }
    };
    let mut next = skip_ws(buf, after);
    if buf[next..].starts_with(b"endobj") {
        next += 6;
    }
    (
        Body::Stream {
            dict,
            data: data..data_end,
        },
        next,
    )
}

fn trim(buf: &[u8]) -> &[u8] {
    let s = buf.iter().position(|&b| !is_ws(b)).unwrap_or(buf.len());
    let e = buf.iter().rposition(|&b| !is_ws(b)).map_or(s, |e| e + 1);
    &buf[s..e]
}

/// The dictionary text of `range` with `extra` entries added before its closing `>>`
/// (a later key wins when the file is parsed).
fn with_entries(buf: &[u8], range: Range<usize>, extra: &[u8]) -> Vec<u8> {
    let t = trim(&buf[range]);
    let mut out = Vec::with_capacity(t.len() + extra.len() + 2);
    match t.strip_suffix(b">>") {
        Some(head) if t.starts_with(b"<<") => {
            out.extend_from_slice(head.trim_ascii_end());
            out.push(b' ');
            out.extend_from_slice(extra);
            out.extend_from_slice(b" >>");
        }
        _ => out.extend_from_slice(t),
    }
    out
}

/// A stream with the entries of an object stream but another type.
fn looks_like_object_stream(buf: &[u8], dict: &Range<usize>) -> bool {
    entries(&buf[..dict.end], dict.start).is_some_and(|(list, _)| {
        entry(&list, buf, b"N").and_then(integer).is_some()
            && entry(&list, buf, b"First").and_then(integer).is_some()
            && entry(&list, buf, b"Type") != Some(b"/ObjStm".as_slice())
            && entry(&list, buf, b"Type") != Some(b"/XRef".as_slice())
    })
}

fn has_type(buf: &[u8], range: &Range<usize>, ty: &[u8]) -> bool {
    entries(&buf[..range.end], range.start)
        .and_then(|(list, _)| entry(&list, buf, b"Type").map(|v| v == [b"/", ty].concat()))
        .unwrap_or(false)
}

fn encrypt_without_length(dict: &[u8]) -> bool {
    let Some((list, _)) = entries(dict, 0) else {
        return false;
    };
    let v = entry(&list, dict, b"V").and_then(integer);
    matches!(v, Some(2 | 3)) && entry(&list, dict, b"Length").is_none()
}

/// Rebuilds `bytes` into a well-formed file, or `None` when no object was found.
pub(crate) fn rebuild(bytes: &[u8], options: RebuildOptions) -> Option<Rebuilt> {
    let head = &bytes[..bytes.len().min(1028)];
    let start = head.windows(4).position(|w| w == b"%PDF").unwrap_or(0);
    let version = bytes
        .get(start..)
        .and_then(|b| b.strip_prefix(b"%PDF-"))
        .map(|b| {
            b.iter()
                .take(8)
                .take_while(|c| c.is_ascii_digit() || **c == b'.')
                .copied()
                .collect::<Vec<u8>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| b"1.7".to_vec());

    let mut objects: BTreeMap<u32, Found> = BTreeMap::new();
    let mut trailers: Vec<(usize, Range<usize>)> = Vec::new();
    let mut ends = StreamEnds::default();
    let mut headers = 0usize;
    let mut p = start;
    while p < bytes.len() {
        let b = bytes[p];
        if b.is_ascii_digit()
            && starts_token(bytes, p, start)
            && let Some(((num, generation), body)) = object_header(bytes, p)
        {
            headers += 1;
            if headers > MAX_OBJECTS {
                break;
            }
            let (obj, next) = read_object(bytes, body, start, &mut ends);
            if num == 0 {
                // Object 0 heads the free list; a header numbered 0 is bogus.
                p = next.max(p + 1);
                continue;
            }
            if let Body::Stream { dict, .. } = &obj
                && has_type(bytes, dict, b"XRef")
            {
                trailers.push((p, dict.clone()));
            }
            objects.insert(
                num,
                Found {
                    generation,
                    at: p,
                    body: obj,
                },
            );
            p = next.max(p + 1);
            continue;
        }
        if b == b't' && bytes[p..].starts_with(b"trailer") && ends_token(bytes, p + 7) {
            let d = skip_blank(bytes, p + 7);
            // A trailer dictionary is small; bounding the window keeps a file full of
            // broken `trailer` keywords linear.
            let window = &bytes[..bytes.len().min(d.saturating_add(MAX_TRAILER_BYTES))];
            if let Some((_, end)) = entries(window, d) {
                trailers.push((p, d..end));
                p = end;
                continue;
            }
        }
        p += 1;
    }
    if objects.is_empty() {
        return None;
    }

    // The trailer entries that matter, the latest of each across all trailers.
    let mut root: Option<(u32, u16)> = None;
    // A root that is no top-level object may still be inside an object stream.
    let mut unseen_root: Option<(u32, u16)> = None;
    let mut encrypt: Option<&[u8]> = None;
    let mut id: Option<&[u8]> = None;
    let mut info: Option<(u32, u16)> = None;
    for (_, range) in &trailers {
        let Some((list, _)) = entries(&bytes[..range.end], range.start) else {
            continue;
        };
        if let Some(r) = entry(&list, bytes, b"Root").and_then(reference) {
            if objects.contains_key(&r.0) {
                root = Some(r);
            } else {
                unseen_root = Some(r);
            }
        }
        if let Some(e) = entry(&list, bytes, b"Encrypt") {
            encrypt = Some(e);
        }
        if let Some(i) = entry(&list, bytes, b"ID") {
            id = Some(i);
        }
        if let Some(i) = entry(&list, bytes, b"Info").and_then(reference) {
            info = Some(i);
        }
    }
    if root.is_none() {
        // The catalog by its type, else the last object that names a page tree.
        let catalogs = objects.iter().filter(|(_, f)| {
            let r = f.dict_range();
            has_type(bytes, &r, b"Catalog")
        });
        root = catalogs
            .max_by_key(|(_, f)| f.at)
            .map(|(n, f)| (*n, f.generation));
    }
    if root.is_none() {
        root = objects
            .iter()
            .filter(|(_, f)| {
                let r = f.dict_range();
                entries(&bytes[..r.end], r.start)
                    .and_then(|(list, _)| entry(&list, bytes, b"Pages").and_then(reference))
                    .is_some()
            })
            .max_by_key(|(_, f)| f.at)
            .map(|(n, f)| (*n, f.generation));
    }
    let root = root.or(unseen_root)?;

    // A direct encryption dictionary becomes an object of its own.
    let max_num = objects.keys().next_back().copied().unwrap_or(0);
    let mut lifted: Option<(u32, Vec<u8>)> = None;
    let mut encrypt_ref: Option<(u32, u16)> = None;
    let mut encrypt_dict: Option<Vec<u8>> = None;
    if let Some(e) = encrypt {
        if let Some(r) = reference(e) {
            encrypt_ref = Some(r);
            if let Some(f) = objects.get(&r.0) {
                encrypt_dict = Some(trim(&bytes[f.dict_range()]).to_vec());
            }
        } else if e.starts_with(b"<<") {
            let n = max_num.saturating_add(1);
            lifted = Some((n, e.to_vec()));
            encrypt_ref = Some((n, 0));
            encrypt_dict = Some(e.to_vec());
        }
    }
    let no_length = encrypt_dict.as_deref().is_some_and(encrypt_without_length);
    let length_fix = match (no_length, options.encrypt_key_bits) {
        (true, Some(bits)) => Some(format!("/Length {bits}").into_bytes()),
        _ => None,
    };

    let mut out = Vec::with_capacity(bytes.len() + objects.len() * 24 + 256);
    out.extend_from_slice(b"%PDF-");
    out.extend_from_slice(&version);
    out.extend_from_slice(b"\n%\xe2\xe3\xcf\xd3\n");
    let mut offsets: Vec<(u32, u16, usize)> = Vec::with_capacity(objects.len() + 1);
    let mut write_value = |out: &mut Vec<u8>, num: u32, generation: u16, value: &[u8]| {
        offsets.push((num, generation, out.len()));
        out.extend_from_slice(format!("{num} {generation} obj\n").as_bytes());
        out.extend_from_slice(value);
        out.extend_from_slice(b"\nendobj\n");
    };
    for (&num, f) in &objects {
        let is_encrypt = encrypt_ref.is_some_and(|r| r.0 == num);
        match &f.body {
            Body::Value(r) => {
                let value = match (&length_fix, is_encrypt) {
                    (Some(fix), true) => with_entries(bytes, r.clone(), fix),
                    _ => trim(&bytes[r.clone()]).to_vec(),
                };
                write_value(&mut out, num, f.generation, &value);
            }
            Body::Stream { dict, data } => {
                let mut len = format!("/Length {}", data.len());
                if looks_like_object_stream(bytes, dict) {
                    // Its /Type is wrong: the loader expands only a typed object stream.
                    len.push_str(" /Type /ObjStm");
                }
                let mut value = with_entries(bytes, dict.clone(), len.as_bytes());
                value.extend_from_slice(b"\nstream\n");
                value.extend_from_slice(&bytes[data.clone()]);
                value.extend_from_slice(b"\nendstream");
                write_value(&mut out, num, f.generation, &value);
            }
        }
    }
    if let Some((n, dict)) = &lifted {
        let value = match &length_fix {
            Some(fix) => with_entries(dict, 0..dict.len(), fix),
            None => dict.clone(),
        };
        write_value(&mut out, *n, 0, &value);
    }

    // The cross-reference table: one subsection per run of consecutive numbers.
    let xref_at = out.len();
    out.extend_from_slice(b"xref\n0 1\n0000000000 65535 f \n");
    let mut i = 0;
    while i < offsets.len() {
        let mut j = i + 1;
        while j < offsets.len() && offsets[j].0 == offsets[j - 1].0 + 1 {
            j += 1;
        }
        let first = offsets[i].0;
        out.extend_from_slice(format!("{first} {}\n", j - i).as_bytes());
        for &(_, generation, offset) in &offsets[i..j] {
            out.extend_from_slice(format!("{offset:010} {generation:05} n \n").as_bytes());
        }
        i = j;
    }
    let size = offsets
        .iter()
        .map(|o| o.0)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    out.extend_from_slice(
        format!("trailer\n<< /Size {size} /Root {} {} R", root.0, root.1).as_bytes(),
    );
    if let Some((n, g)) = encrypt_ref {
        out.extend_from_slice(format!(" /Encrypt {n} {g} R").as_bytes());
    }
    if let Some(id) = id {
        out.extend_from_slice(b" /ID ");
        out.extend_from_slice(id);
    }
    if let Some((n, g)) = info {
        out.extend_from_slice(format!(" /Info {n} {g} R").as_bytes());
    }
    out.extend_from_slice(format!(" >>\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    Some(Rebuilt {
        bytes: out,
        objects: offsets.len(),
        encrypt_without_length: no_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_entries_scan() {
        let d = b"<< /Type /Catalog /Pages 2 0 R /A [1 (a\\)b (c)) <41> << /X 1 >>] /L 12 >>";
        let (list, end) = entries(d, 0).expect("dict");
        assert_eq!(end, d.len());
        assert_eq!(entry(&list, d, b"Pages").and_then(reference), Some((2, 0)));
        assert_eq!(entry(&list, d, b"L").and_then(integer), Some(12));
        assert_eq!(entry(&list, d, b"Type"), Some(&b"/Catalog"[..]));
        // Unbalanced and over-deep input ends cleanly.
        assert!(entries(b"<< /A [[[", 0).is_none());
        let deep = [b"<< /A ".as_slice(), &b"[".repeat(10_000)].concat();
        assert!(entries(&deep, 0).is_none());
    }

    #[test]
    fn headers_need_a_token_boundary() {
        assert_eq!(object_header(b"12 0 obj<<", 0).map(|h| h.0), Some((12, 0)));
        assert!(object_header(b"12 0 objx", 0).is_none());
        assert!(object_header(b"12 0 R", 0).is_none());
        assert!(object_header(b"99999999999 0 obj", 0).is_none());
    }

    #[test]
    fn streams_are_measured_by_endstream_when_their_length_is_wrong() {
        let pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
            2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n\
            3 0 obj\n<< /Length 999 >>\nstream\nabc\nendstream\nendobj\n\
            4 0 obj\n<< /Length 5 0 R >>\nstream\r\nxy\r\nendstream\nendobj\n";
        let r = rebuild(pdf, RebuildOptions::default()).expect("rebuilt");
        let text = String::from_utf8_lossy(&r.bytes);
        assert!(
            text.contains("<< /Length 999 /Length 3 >>\nstream\nabc\nendstream"),
            "{text}"
        );
        assert!(
            text.contains("<< /Length 5 0 R /Length 2 >>\nstream\nxy\nendstream"),
            "{text}"
        );
        assert!(text.contains("/Root 1 0 R"), "{text}");
        assert_eq!(r.objects, 4);
    }

    #[test]
    fn no_objects_no_rebuild() {
        assert!(rebuild(b"%PDF-1.4\nnothing here", RebuildOptions::default()).is_none());
        assert!(rebuild(b"", RebuildOptions::default()).is_none());
    }
}
