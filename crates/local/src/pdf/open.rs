//! Opening a PDF the way mature readers do: read it as written, and when that fails or
//! leaves damage behind (objects the cross-reference table lists but that did not load,
//! pages whose content is missing, no page at all, an encryption dictionary the security
//! handler could not use), read it again from a rebuilt copy ([`super::rebuild`]) and keep
//! whichever reading has more of the document. Encrypted files are decrypted with the
//! empty user password (lopdf's Standard security handler: RC4 and AES-128, V1-V4 R2-R4,
//! and AES-256, V5 R5/R6); a file that needs a real password is [`PdfError::Encrypted`].

use lopdf::{Document as PdfDoc, LoadOptions, Object, ObjectId, ObjectStream};

use super::pages::page_ids;
use super::rebuild::{RebuildOptions, rebuild};
use super::{PdfError, PdfLimits, Result};

/// A readable document and its pages.
pub(crate) struct Opened {
    pub doc: PdfDoc,
    pub pages: Vec<ObjectId>,
}

/// How much of the document a reading recovered; more is better, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    unlocked: bool,
    pages_with_content: usize,
    pages: usize,
    /// Fewer objects lost to parse errors.
    intact: std::cmp::Reverse<usize>,
    objects: usize,
}

struct Reading {
    doc: PdfDoc,
    pages: Vec<ObjectId>,
    score: Score,
    damaged: bool,
}

/// The document still carries an `/Encrypt` entry that was not applied.
fn locked(doc: &PdfDoc) -> bool {
    doc.trailer.get(b"Encrypt").is_ok() && !doc.was_encrypted()
}

fn load(bytes: &[u8], limits: &PdfLimits, force_reconstruct: bool) -> Result<PdfDoc> {
    let options = LoadOptions {
        max_decompressed_size: Some(limits.max_stream_bytes),
        force_reconstruct,
        ..LoadOptions::default()
    };
    PdfDoc::load_mem_with_options(bytes, options).map_err(|e| PdfError::Parse(e.to_string()))
}

/// Objects of object streams that the loader left out (it expands an encrypted file's
/// object streams only through cross-reference stream entries, which a rebuilt table
/// does not have). Existing objects are kept.
fn expand_object_streams(doc: &mut PdfDoc, limits: &PdfLimits) {
    let containers: Vec<ObjectId> = doc
        .objects
        .iter()
        .filter(|(_, o)| o.as_stream().is_ok_and(|s| s.dict.has_type(b"ObjStm")))
        .map(|(id, _)| *id)
        .collect();
    for id in containers {
        let Some(Ok(stream)) = doc.objects.get(&id).map(Object::as_stream) else {
            continue;
        };
        let Ok(objects) = ObjectStream::new_with_limit(stream, Some(limits.max_stream_bytes))
        else {
            continue;
        };
        for (oid, o) in objects.objects {
            doc.objects.entry(oid).or_insert(o);
        }
    }
}

/// Whether a page's `/Contents` names something that is not there: a missing object, or
/// a stream with no data although its dictionary does not say it is empty.
fn content_missing(doc: &PdfDoc, page: ObjectId) -> bool {
    let Ok(dict) = doc.get_dictionary(page) else {
        return true;
    };
    let Ok(contents) = dict.get(b"Contents") else {
        return false;
    };
    let missing = |o: &Object| -> bool {
        match o {
            Object::Reference(id) => match doc.objects.get(id) {
                None => true,
                Some(Object::Stream(s)) => {
                    s.content.is_empty()
                        && s.dict.get(b"Length").and_then(Object::as_i64).ok() != Some(0)
                }
                Some(Object::Array(_)) | Some(Object::Null) => false,
                Some(_) => true,
            },
            _ => false,
        }
    };
    match contents {
        Object::Array(items) => items.iter().any(missing),
        Object::Reference(id) => match doc.objects.get(id) {
            Some(Object::Array(items)) => items.iter().any(missing),
            _ => missing(contents),
        },
        _ => false,
    }
}

fn read(mut doc: PdfDoc, limits: &PdfLimits) -> Reading {
    if doc.was_encrypted() {
        expand_object_streams(&mut doc, limits);
    }
    let max = limits.max_pages.saturating_add(1);
    let pages = page_ids(&doc, max);
    let missing_pages = pages.iter().filter(|&&p| content_missing(&doc, p)).count();
    let encrypt_id = doc
        .encryption_state
        .as_ref()
        .and_then(|s| s.encrypt_object_id());
    // Objects the cross-reference table says are there but that did not load.
    let lost = doc
        .reference_table
        .entries
        .iter()
        .filter(|&(&n, e)| {
            matches!(e, lopdf::xref::XrefEntry::Normal { .. })
                && Some(n) != encrypt_id.map(|id| id.0)
                && doc.objects.range((n, 0)..=(n, u16::MAX)).next().is_none()
        })
        .count();
    let unlocked = !locked(&doc);
    let damaged = !unlocked || pages.is_empty() || missing_pages > 0 || lost > 0;
    let score = Score {
        unlocked,
        pages_with_content: pages.len() - missing_pages,
        pages: pages.len(),
        intact: std::cmp::Reverse(lost),
        objects: doc.objects.len(),
    };
    Reading {
        doc,
        pages,
        score,
        damaged,
    }
}

/// Opens `bytes`, recovering what a damaged file still holds.
pub(crate) fn open(bytes: &[u8], limits: &PdfLimits) -> Result<Opened> {
    let (mut best, first_error) = match load(bytes, limits, false).map(|d| read(d, limits)) {
        Ok(r) if !r.damaged => {
            return Ok(Opened {
                doc: r.doc,
                pages: r.pages,
            });
        }
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    let consider = |r: Reading, best: &mut Option<Reading>| {
        if best.as_ref().is_none_or(|b| r.score > b.score) {
            *best = Some(r);
        }
    };
    // The loader's own reconstruction, then ours.
    if let Ok(doc) = load(bytes, limits, true) {
        consider(read(doc, limits), &mut best);
    }
    if let Some(rebuilt) = rebuild(bytes, RebuildOptions::default()) {
        if let Ok(doc) = load(&rebuilt.bytes, limits, false) {
            consider(read(doc, limits), &mut best);
        }
        if rebuilt.encrypt_without_length && best.as_ref().is_none_or(|b| !b.score.unlocked) {
            let options = RebuildOptions {
                encrypt_key_bits: Some(128),
            };
            if let Some(again) = rebuild(bytes, options)
                && let Ok(doc) = load(&again.bytes, limits, false)
            {
                consider(read(doc, limits), &mut best);
            }
        }
    }
    match best {
        Some(r) if !r.score.unlocked => Err(PdfError::Encrypted),
        Some(r) => Ok(Opened {
            doc: r.doc,
            pages: r.pages,
        }),
        None => Err(first_error.unwrap_or_else(|| PdfError::Parse("no PDF objects found".into()))),
    }
}
