//! The text-state interpreter: walks a page's content stream (and the Form XObjects it
//! draws) and emits every shown glyph with its position in user space. Only what text
//! placement needs is modelled: the CTM, the text matrices and the text state.

use std::collections::HashMap;
use std::rc::Rc;

use lopdf::content::Content;
use lopdf::{Dictionary, Document as PdfDoc, Object, ObjectId, Stream};

use super::PdfLimits;
use super::font::{Font, GlyphText};

/// Text bytes per page; past it the page is cut (a hostile ToUnicode can map each code
/// to a long string).
const MAX_PAGE_TEXT_BYTES: usize = 16 * 1024 * 1024;

/// A row-vector affine matrix `[a b c d e f]`, as PDF writes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Matrix([f32; 6]);

impl Matrix {
    pub(crate) const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    /// `self` then `other`: p * self * other.
    fn then(self, o: Matrix) -> Matrix {
        let [a, b, c, d, e, f] = self.0;
        let [oa, ob, oc, od, oe, of] = o.0;
        Matrix([
            a * oa + b * oc,
            a * ob + b * od,
            c * oa + d * oc,
            c * ob + d * od,
            e * oa + f * oc + oe,
            e * ob + f * od + of,
        ])
    }

    fn translate(tx: f32, ty: f32) -> Matrix {
        Matrix([1.0, 0.0, 0.0, 1.0, tx, ty])
    }

    pub(crate) fn apply(self, x: f32, y: f32) -> (f32, f32) {
        let [a, b, c, d, e, f] = self.0;
        (x * a + y * c + e, x * b + y * d + f)
    }

    fn from_operands(ops: &[Object]) -> Option<Matrix> {
        if ops.len() < 6 {
            return None;
        }
        let mut m = [0.0; 6];
        for (slot, o) in m.iter_mut().zip(ops) {
            *slot = o.as_float().ok().filter(|v| v.is_finite())?;
        }
        Some(Matrix(m))
    }
}

/// One shown glyph, in the page's user space (before /Rotate).
#[derive(Debug, Clone)]
pub(crate) struct RawGlyph {
    /// Where the glyph starts and where its advance (without spacing) ends, on the baseline.
    pub origin: (f32, f32),
    pub end: (f32, f32),
    /// Axis-aligned box from descent to ascent.
    pub bbox: [f32; 4],
    /// Font size in user space units.
    pub size: f32,
    /// Byte range of the glyph's text in [`PageText::text`]; empty for unmapped codes.
    pub text: (u32, u32),
    /// Whitespace-only text (or a code-32 space): a word boundary.
    pub space: bool,
}

/// The glyphs of a page and the text they point into.
#[derive(Debug, Default)]
pub(crate) struct PageText {
    pub glyphs: Vec<RawGlyph>,
    pub text: String,
    /// Set when the page hit the operation or glyph cap.
    pub truncated: bool,
}

#[derive(Clone)]
struct GState {
    ctm: Matrix,
    font: Option<Rc<Font>>,
    size: f32,
    char_spacing: f32,
    word_spacing: f32,
    hscale: f32,
    leading: f32,
    rise: f32,
}

/// Fonts by object id, shared across pages.
pub(crate) type FontCache = HashMap<ObjectId, Rc<Font>>;

pub(crate) struct Interpreter<'a> {
    doc: &'a PdfDoc,
    limits: &'a PdfLimits,
    fonts: &'a mut FontCache,
    out: PageText,
    ops: usize,
    /// Operations this page may run: the per-page cap or what is left of the document's.
    max_ops: usize,
    /// Form XObjects being drawn (cycle guard).
    forms: Vec<ObjectId>,
}

fn deref<'a>(doc: &'a PdfDoc, o: &'a Object) -> &'a Object {
    doc.dereference(o).map(|(_, o)| o).unwrap_or(o)
}

/// A rectangle `[x0 y0 x1 y1]` (direct numbers), corners ordered.
fn rect4(a: &[Object]) -> Option<[f32; 4]> {
    let n = |i: usize| a.get(i)?.as_float().ok().filter(|v| v.is_finite());
    let (x0, y0, x1, y1) = (n(0)?, n(1)?, n(2)?, n(3)?);
    Some([x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)])
}

fn f(ops: &[Object], i: usize) -> Option<f32> {
    ops.get(i)
        .and_then(|o| o.as_float().ok())
        .filter(|v| v.is_finite())
}

impl<'a> Interpreter<'a> {
    /// `ops_left`: what remains of the document's operation budget.
    pub(crate) fn new(
        doc: &'a PdfDoc,
        limits: &'a PdfLimits,
        fonts: &'a mut FontCache,
        ops_left: usize,
    ) -> Self {
        Self {
            doc,
            limits,
            fonts,
            out: PageText::default(),
            ops: 0,
            max_ops: limits.max_operations_per_page.min(ops_left),
            forms: Vec::new(),
        }
    }

    /// The page's glyphs and the operations spent on them.
    pub(crate) fn finish(self) -> (PageText, usize) {
        (self.out, self.ops)
    }

    /// Runs one content stream with its resources under `ctm`.
    pub(crate) fn run(&mut self, content: &[u8], resources: Option<&'a Dictionary>, ctm: Matrix) {
        let mut gs = GState {
            ctm,
            font: None,
            size: 0.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            hscale: 1.0,
            leading: 0.0,
            rise: 0.0,
        };
        let mut stack: Vec<GState> = Vec::new();
        let mut tm = Matrix::IDENTITY;
        let mut tlm = Matrix::IDENTITY;
        let mut local_fonts: HashMap<Vec<u8>, Option<Rc<Font>>> = HashMap::new();

        for op in Content::decode_iter(content) {
            let Ok(op) = op else { break };
            self.ops += 1;
            if self.ops > self.max_ops
                || self.out.glyphs.len() >= self.limits.max_glyphs_per_page
                || self.out.text.len() >= MAX_PAGE_TEXT_BYTES
            {
                self.out.truncated = true;
                return;
            }
            let o = op.operands.as_slice();
            match op.operator.as_str() {
                "q" if stack.len() < 256 => stack.push(gs.clone()),
                "Q" => {
                    if let Some(s) = stack.pop() {
                        gs = s;
                    }
                }
                "cm" => {
                    if let Some(m) = Matrix::from_operands(o) {
                        gs.ctm = m.then(gs.ctm);
                    }
                }
                "BT" => {
                    tm = Matrix::IDENTITY;
                    tlm = Matrix::IDENTITY;
                }
                "Tf" => {
                    let name = o.first().and_then(|n| n.as_name().ok());
                    if let Some(size) = f(o, 1) {
                        gs.size = size;
                    }
                    if let Some(name) = name {
                        let font = match local_fonts.get(name) {
                            Some(font) => font.clone(),
                            None => {
                                let font = self.font(resources, name);
                                local_fonts.insert(name.to_vec(), font.clone());
                                font
                            }
                        };
                        gs.font = font;
                    }
                }
                "Tc" => gs.char_spacing = f(o, 0).unwrap_or(gs.char_spacing),
                "Tw" => gs.word_spacing = f(o, 0).unwrap_or(gs.word_spacing),
                "Tz" => gs.hscale = f(o, 0).map_or(gs.hscale, |v| v / 100.0),
                "TL" => gs.leading = f(o, 0).unwrap_or(gs.leading),
                "Ts" => gs.rise = f(o, 0).unwrap_or(gs.rise),
                "Td" | "TD" => {
                    if let (Some(tx), Some(ty)) = (f(o, 0), f(o, 1)) {
                        if op.operator == "TD" {
                            gs.leading = -ty;
                        }
                        tlm = Matrix::translate(tx, ty).then(tlm);
                        tm = tlm;
                    }
                }
                "Tm" => {
                    if let Some(m) = Matrix::from_operands(o) {
                        tlm = m;
                        tm = m;
                    }
                }
                "T*" => {
                    tlm = Matrix::translate(0.0, -gs.leading).then(tlm);
                    tm = tlm;
                }
                "Tj" => {
                    if let Some(Ok(s)) = o.first().map(Object::as_str) {
                        self.show(&gs, &mut tm, s);
                    }
                }
                "'" | "\"" => {
                    if op.operator == "\"" {
                        gs.word_spacing = f(o, 0).unwrap_or(gs.word_spacing);
                        gs.char_spacing = f(o, 1).unwrap_or(gs.char_spacing);
                    }
                    tlm = Matrix::translate(0.0, -gs.leading).then(tlm);
                    tm = tlm;
                    if let Some(Ok(s)) = o.last().map(Object::as_str) {
                        self.show(&gs, &mut tm, s);
                    }
                }
                "TJ" => {
                    if let Some(Ok(items)) = o.first().map(Object::as_array) {
                        for item in items {
                            match item {
                                Object::String(s, _) => self.show(&gs, &mut tm, s),
                                other => {
                                    if let Ok(adj) = other.as_float()
                                        && adj.is_finite()
                                    {
                                        let tx = -adj / 1000.0 * gs.size * gs.hscale;
                                        tm = Matrix::translate(tx, 0.0).then(tm);
                                    }
                                }
                            }
                        }
                    }
                }
                "Do" => {
                    if let Some(name) = o.first().and_then(|n| n.as_name().ok()) {
                        self.form(resources, name, gs.ctm);
                    }
                }
                _ => {}
            }
        }
    }

    fn resource<'r>(
        &self,
        resources: Option<&'r Dictionary>,
        kind: &[u8],
        name: &[u8],
    ) -> Option<&'r Object>
    where
        'a: 'r,
    {
        let doc: &'r PdfDoc = self.doc;
        let res = resources?;
        let group = deref(doc, res.get(kind).ok()?).as_dict().ok()?;
        group.get(name).ok()
    }

    fn font(&mut self, resources: Option<&'a Dictionary>, name: &[u8]) -> Option<Rc<Font>> {
        let obj = self.resource(resources, b"Font", name)?;
        let (id, obj) = self.doc.dereference(obj).ok()?;
        let dict = obj.as_dict().ok()?;
        if let Some(id) = id
            && let Some(font) = self.fonts.get(&id)
        {
            return Some(font.clone());
        }
        let font = Rc::new(Font::load(self.doc, dict, self.limits.max_stream_bytes));
        if let Some(id) = id {
            self.fonts.insert(id, font.clone());
        }
        Some(font)
    }

    fn form(&mut self, resources: Option<&'a Dictionary>, name: &[u8], ctm: Matrix) {
        let Some(obj) = self.resource(resources, b"XObject", name) else {
            return;
        };
        let Ok((Some(id), obj)) = self.doc.dereference(obj) else {
            return;
        };
        let Ok(stream) = obj.as_stream() else { return };
        if stream.dict.get(b"Subtype").and_then(Object::as_name).ok() != Some(b"Form".as_slice()) {
            return;
        }
        let matrix = self.form_matrix(stream);
        self.run_form(id, stream, resources, matrix.then(ctm));
    }

    fn form_matrix(&self, stream: &Stream) -> Matrix {
        stream
            .dict
            .get(b"Matrix")
            .ok()
            .map(|m| deref(self.doc, m))
            .and_then(|m| m.as_array().ok())
            .and_then(|a| Matrix::from_operands(a))
            .unwrap_or(Matrix::IDENTITY)
    }

    /// Draws a form's content under `ctm` (which already includes the form's matrix).
    fn run_form(
        &mut self,
        id: ObjectId,
        stream: &'a Stream,
        resources: Option<&'a Dictionary>,
        ctm: Matrix,
    ) {
        if self.forms.contains(&id) || self.forms.len() >= self.limits.max_form_depth {
            return;
        }
        let Ok(content) = stream.get_plain_content_with_limit(self.limits.max_stream_bytes) else {
            return;
        };
        let form_resources = stream
            .dict
            .get(b"Resources")
            .ok()
            .map(|r| deref(self.doc, r))
            .and_then(|r| r.as_dict().ok())
            .or(resources);
        self.forms.push(id);
        self.run(&content, form_resources, ctm);
        self.forms.pop();
    }

    /// Draws the normal appearance of the page's annotations (filled-in form fields,
    /// stamps, free text), as viewers and pdftotext do. Links, popups and hidden
    /// annotations draw nothing.
    pub(crate) fn annotations(&mut self, page: &'a Dictionary, resources: Option<&'a Dictionary>) {
        let Some(annots) = page
            .get(b"Annots")
            .ok()
            .map(|a| deref(self.doc, a))
            .and_then(|a| a.as_array().ok())
        else {
            return;
        };
        let acroform_dr = self
            .doc
            .catalog()
            .ok()
            .and_then(|c| c.get(b"AcroForm").ok())
            .map(|f| deref(self.doc, f))
            .and_then(|f| f.as_dict().ok())
            .and_then(|f| f.get(b"DR").ok())
            .map(|r| deref(self.doc, r))
            .and_then(|r| r.as_dict().ok());
        for annot in annots.iter().take(10_000) {
            let Ok(a) = deref(self.doc, annot).as_dict() else {
                continue;
            };
            let subtype = a.get(b"Subtype").and_then(Object::as_name).unwrap_or(b"");
            let flags = a.get(b"F").and_then(Object::as_i64).unwrap_or(0);
            if matches!(subtype, b"Link" | b"Popup") || flags & 2 != 0 {
                continue;
            }
            let Some(rect) = a
                .get(b"Rect")
                .ok()
                .map(|r| deref(self.doc, r))
                .and_then(|r| r.as_array().ok())
                .and_then(|r| rect4(r))
            else {
                continue;
            };
            let before = self.out.glyphs.len();
            self.appearance(a, rect, acroform_dr.or(resources));
            if self.out.glyphs.len() == before && subtype == b"Widget" {
                // Forms saved with /NeedAppearances often carry the value without an
                // appearance; viewers draw it, so it is part of the page's text.
                self.field_value(a, rect);
            }
        }
    }

    /// Draws an annotation's normal appearance stream, if it has one.
    fn appearance(&mut self, a: &'a Dictionary, rect: [f32; 4], fallback: Option<&'a Dictionary>) {
        let Some(normal) = a
            .get(b"AP")
            .ok()
            .map(|ap| deref(self.doc, ap))
            .and_then(|ap| ap.as_dict().ok())
            .and_then(|ap| ap.get(b"N").ok())
        else {
            return;
        };
        let Ok((mut id, mut n)) = self.doc.dereference(normal) else {
            return;
        };
        if let Ok(states) = n.as_dict() {
            let Some(state) = a.get(b"AS").and_then(Object::as_name).ok() else {
                return;
            };
            match states.get(state).map(|s| self.doc.dereference(s)) {
                Ok(Ok(v)) => (id, n) = v,
                _ => return,
            }
        }
        let (Some(id), Ok(stream)) = (id, n.as_stream()) else {
            return;
        };
        let Some(bbox) = stream
            .dict
            .get(b"BBox")
            .ok()
            .map(|r| deref(self.doc, r))
            .and_then(|r| r.as_array().ok())
            .and_then(|r| rect4(r))
        else {
            return;
        };
        // PDF 12.5.5: map the form's transformed bounding box onto the annotation's rectangle.
        let matrix = self.form_matrix(stream);
        let corners = [
            matrix.apply(bbox[0], bbox[1]),
            matrix.apply(bbox[2], bbox[1]),
            matrix.apply(bbox[0], bbox[3]),
            matrix.apply(bbox[2], bbox[3]),
        ];
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for (x, y) in corners {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        if x1 - x0 <= 1e-3 || y1 - y0 <= 1e-3 {
            return;
        }
        let (sx, sy) = (
            (rect[2] - rect[0]) / (x1 - x0),
            (rect[3] - rect[1]) / (y1 - y0),
        );
        let fit = Matrix([sx, 0.0, 0.0, sy, rect[0] - x0 * sx, rect[1] - y0 * sy]);
        // Field appearances often name fonts of the form's default resources.
        let dr = a
            .get(b"DR")
            .ok()
            .map(|r| deref(self.doc, r))
            .and_then(|r| r.as_dict().ok())
            .or(fallback);
        self.run_form(id, stream, dr, matrix.then(fit));
    }

    /// A text field's value (`/V`, inherited from parent fields) laid out in its rectangle
    /// as a viewer would: left-aligned, vertically centred, at the `/DA` size.
    fn field_value(&mut self, a: &Dictionary, rect: [f32; 4]) {
        let mut node = a;
        let (mut ft, mut value, mut da) = (None, None, None);
        for _ in 0..16 {
            ft = ft.or_else(|| node.get(b"FT").and_then(Object::as_name).ok());
            value = value.or_else(|| node.get(b"V").ok().map(|v| deref(self.doc, v)));
            da = da.or_else(|| node.get(b"DA").and_then(Object::as_str).ok());
            match node
                .get(b"Parent")
                .ok()
                .map(|p| deref(self.doc, p))
                .and_then(|p| p.as_dict().ok())
            {
                Some(parent) => node = parent,
                None => break,
            }
        }
        if ft != Some(b"Tx".as_slice()) {
            return;
        }
        let Some(text) = value.and_then(|v| lopdf::decode_text_string(v).ok()) else {
            return;
        };
        let height = rect[3] - rect[1];
        // `/DA (... /F1 11 Tf ...)`: the number before Tf; 0 means auto-size.
        let size = da
            .and_then(|da| {
                let da = String::from_utf8_lossy(da);
                let words: Vec<&str> = da.split_whitespace().collect();
                let tf = words.iter().position(|w| *w == "Tf")?;
                words.get(tf.checked_sub(1)?)?.parse::<f32>().ok()
            })
            .filter(|s| *s > 0.0 && s.is_finite())
            .unwrap_or(height * 0.7)
            .min(height.max(1.0));
        let advance = 0.5 * size;
        let lines: Vec<&str> = text.lines().take(1000).collect();
        for (i, line) in lines.iter().enumerate() {
            // One line is centred vertically; several start at the top.
            let base = if lines.len() == 1 {
                rect[1] + (height - size) / 2.0 + 0.2 * size
            } else {
                rect[3] - 2.0 - 0.8 * size - i as f32 * 1.15 * size
            };
            let mut x = rect[0] + 2.0;
            for c in line.chars().take(10_000) {
                if self.out.glyphs.len() >= self.limits.max_glyphs_per_page {
                    return;
                }
                let start = self.out.text.len() as u32;
                push_char(&mut self.out.text, c);
                let end = self.out.text.len() as u32;
                self.out.glyphs.push(RawGlyph {
                    origin: (x, base),
                    end: (x + advance, base),
                    bbox: [x, base - 0.2 * size, x + advance, base + 0.8 * size],
                    size,
                    text: (start, end),
                    space: c.is_whitespace(),
                });
                x += advance;
            }
        }
    }

    fn show(&mut self, gs: &GState, tm: &mut Matrix, bytes: &[u8]) {
        let Some(font) = gs.font.clone() else { return };
        let (size, hscale) = (gs.size, gs.hscale);
        let (ascent, descent) = (font.ascent / 1000.0, font.descent / 1000.0);
        let max = self.limits.max_glyphs_per_page;
        font.decode(bytes, |g| {
            let w = g.width / 1000.0;
            let m = tm.then(gs.ctm);
            if self.out.glyphs.len() < max {
                let start = self.out.text.len() as u32;
                let mut space = g.is_space_code;
                match g.text {
                    GlyphText::None => {}
                    GlyphText::Char(c) => push_char(&mut self.out.text, c),
                    GlyphText::Mapped(m) => m.for_each_char(|c| push_char(&mut self.out.text, c)),
                }
                let end = self.out.text.len() as u32;
                let text = self.out.text.get(start as usize..).unwrap_or("");
                if !text.is_empty() {
                    space = text.chars().all(char::is_whitespace);
                }
                let gw = w * size * hscale;
                let y0 = descent * size + gs.rise;
                let y1 = ascent * size + gs.rise;
                let corners = [
                    m.apply(0.0, y0),
                    m.apply(gw, y0),
                    m.apply(0.0, y1),
                    m.apply(gw, y1),
                ];
                let mut bbox = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
                for (x, y) in corners {
                    bbox = [
                        bbox[0].min(x),
                        bbox[1].min(y),
                        bbox[2].max(x),
                        bbox[3].max(y),
                    ];
                }
                let origin = m.apply(0.0, gs.rise);
                let end_pt = m.apply(gw, gs.rise);
                let (ux, uy) = m.apply(0.0, gs.rise + 1.0);
                let dev_size = (ux - origin.0).hypot(uy - origin.1) * size.abs();
                if bbox.iter().all(|v| v.is_finite()) && dev_size.is_finite() {
                    self.out.glyphs.push(RawGlyph {
                        origin,
                        end: end_pt,
                        bbox,
                        size: dev_size.max(0.1),
                        text: (start, end),
                        space,
                    });
                } else {
                    self.out.text.truncate(start as usize);
                }
            }
            let spacing = gs.char_spacing
                + if g.is_space_code {
                    gs.word_spacing
                } else {
                    0.0
                };
            let tx = (w * size + spacing) * hscale;
            *tm = Matrix::translate(tx, 0.0).then(*tm);
        });
    }
}

/// Appends a glyph's character, expanding ligatures and dropping controls.
fn push_char(out: &mut String, c: char) {
    match c {
        '\u{FB00}' => out.push_str("ff"),
        '\u{FB01}' => out.push_str("fi"),
        '\u{FB02}' => out.push_str("fl"),
        '\u{FB03}' => out.push_str("ffi"),
        '\u{FB04}' => out.push_str("ffl"),
        '\u{FB05}' | '\u{FB06}' => out.push_str("st"),
        '\u{00A0}' | '\t' | '\n' | '\r' => out.push(' '),
        '\u{00AD}' => out.push('-'),
        c if c.is_control() || c == '\u{FEFF}' || c == '\u{200B}' => {}
        c => out.push(c),
    }
}
