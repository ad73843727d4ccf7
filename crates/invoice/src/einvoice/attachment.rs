//! Finds the e-invoice XML attached to a PDF: the `/EmbeddedFiles` name tree of the
//! catalog's `/Names` and the catalog's `/AF` (associated files) array, each file
//! specification's `/EF` stream decoded with a size cap. Every walk is bounded (depth,
//! entries, visited objects), so a hostile file ends in an error, not a loop.

use std::collections::HashSet;

use lopdf::{Dictionary, Document as PdfDoc, LoadOptions, Object, ObjectId};

use super::{EinvoiceError, EinvoiceLimits};

/// One attached file that may be the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name (`/UF`, else `/F`, else the name-tree key).
    pub name: String,
    /// The decoded bytes.
    pub bytes: Vec<u8>,
}

/// Attachment names used by Factur-X, ZUGFeRD 1 and 2, and XRechnung, best first.
const KNOWN_NAMES: [&str; 4] = [
    "factur-x.xml",
    "zugferd-invoice.xml",
    "xrechnung.xml",
    "order-x.xml",
];

/// Entries of a name tree (or `/AF` array) looked at, at most.
const MAX_ENTRIES: usize = 10_000;

/// A file specification found in the document, not yet decoded.
struct Spec<'a> {
    name: String,
    stream: &'a lopdf::Stream,
}

fn deref<'a>(doc: &'a PdfDoc, o: &'a Object) -> &'a Object {
    doc.dereference(o).map(|(_, o)| o).unwrap_or(o)
}

fn text(doc: &PdfDoc, o: &Object) -> Option<String> {
    lopdf::decode_text_string(deref(doc, o)).ok()
}

/// Whether the PDF could carry an attachment at all: a quick check before parsing.
pub fn looks_like_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    head.windows(5).any(|w| w == b"%PDF-")
}

/// The invoice XML attached to a PDF: `Ok(None)` when the PDF has no XML attachment.
pub fn find_invoice_xml(
    bytes: &[u8],
    limits: &EinvoiceLimits,
) -> Result<Option<Attachment>, EinvoiceError> {
    let options = LoadOptions {
        max_decompressed_size: Some(limits.max_stream_bytes),
        ..LoadOptions::default()
    };
    let doc = PdfDoc::load_mem_with_options(bytes, options)
        .map_err(|e| EinvoiceError::Pdf(e.to_string()))?;
    if doc.trailer.get(b"Encrypt").is_ok() && !doc.was_encrypted() {
        return Err(EinvoiceError::Pdf("the PDF is encrypted".into()));
    }
    let catalog = doc
        .catalog()
        .map_err(|e| EinvoiceError::Pdf(format!("no catalog: {e}")))?;

    let mut specs: Vec<Spec<'_>> = Vec::new();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    if let Ok(names) = catalog.get(b"Names")
        && let Ok(names) = deref(&doc, names).as_dict()
        && let Ok(tree) = names.get(b"EmbeddedFiles")
    {
        let mut budget = MAX_ENTRIES;
        walk_name_tree(
            &doc,
            tree,
            0,
            limits.max_depth,
            &mut budget,
            &mut seen,
            &mut specs,
        );
    }
    if let Ok(af) = catalog.get(b"AF")
        && let Ok(af) = deref(&doc, af).as_array()
    {
        for spec in af.iter().take(MAX_ENTRIES) {
            if let Some(s) = file_spec(&doc, spec, None) {
                specs.push(s);
            }
        }
    }

    let Some(best) = choose(&specs) else {
        return Ok(None);
    };
    let spec = &specs[best];
    let declared = spec
        .stream
        .dict
        .get(b"Params")
        .ok()
        .map(|p| deref(&doc, p))
        .and_then(|p| p.as_dict().ok())
        .and_then(|p| p.get(b"Size").ok())
        .and_then(|s| deref(&doc, s).as_i64().ok());
    if let Some(size) = declared
        && size > limits.max_attachment_bytes as i64
    {
        return Err(EinvoiceError::TooLarge {
            name: spec.name.clone(),
            max: limits.max_attachment_bytes,
        });
    }
    let content = spec
        .stream
        .get_plain_content_with_limit(limits.max_attachment_bytes)
        .map_err(|e| match e {
            lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
                EinvoiceError::TooLarge {
                    name: spec.name.clone(),
                    max: limits.max_attachment_bytes,
                }
            }
            e => EinvoiceError::Attachment(format!("{}: {e}", spec.name)),
        })?;
    if content.len() > limits.max_attachment_bytes {
        return Err(EinvoiceError::TooLarge {
            name: spec.name.clone(),
            max: limits.max_attachment_bytes,
        });
    }
    Ok(Some(Attachment {
        name: spec.name.clone(),
        bytes: content,
    }))
}

/// The index of the spec to read: a known e-invoice name first, then any `.xml`.
fn choose(specs: &[Spec<'_>]) -> Option<usize> {
    let lower: Vec<String> = specs.iter().map(|s| s.name.to_lowercase()).collect();
    for known in KNOWN_NAMES {
        if let Some(i) = lower.iter().position(|n| n == known) {
            return Some(i);
        }
    }
    lower.iter().position(|n| n.ends_with(".xml"))
}

fn walk_name_tree<'a>(
    doc: &'a PdfDoc,
    node: &'a Object,
    depth: usize,
    max_depth: usize,
    budget: &mut usize,
    seen: &mut HashSet<ObjectId>,
    out: &mut Vec<Spec<'a>>,
) {
    if depth > max_depth || *budget == 0 {
        return;
    }
    if let Object::Reference(id) = node
        && !seen.insert(*id)
    {
        return;
    }
    let Ok(dict) = deref(doc, node).as_dict() else {
        return;
    };
    if let Ok(names) = dict.get(b"Names")
        && let Ok(names) = deref(doc, names).as_array()
    {
        for pair in names.chunks(2) {
            if *budget == 0 {
                return;
            }
            *budget -= 1;
            if let [key, value] = pair {
                let key = text(doc, key);
                if let Some(s) = file_spec(doc, value, key) {
                    out.push(s);
                }
            }
        }
    }
    if let Ok(kids) = dict.get(b"Kids")
        && let Ok(kids) = deref(doc, kids).as_array()
    {
        for kid in kids {
            if *budget == 0 {
                return;
            }
            *budget -= 1;
            walk_name_tree(doc, kid, depth + 1, max_depth, budget, seen, out);
        }
    }
}

/// A file specification dictionary with an embedded stream.
fn file_spec<'a>(doc: &'a PdfDoc, o: &'a Object, key: Option<String>) -> Option<Spec<'a>> {
    let dict: &Dictionary = deref(doc, o).as_dict().ok()?;
    let name = [b"UF".as_slice(), b"F".as_slice()]
        .iter()
        .find_map(|k| dict.get(k).ok().and_then(|v| text(doc, v)))
        .filter(|n| !n.trim().is_empty())
        .or(key)?;
    let ef = deref(doc, dict.get(b"EF").ok()?).as_dict().ok()?;
    let stream = [b"F".as_slice(), b"UF".as_slice()]
        .iter()
        .find_map(|k| ef.get(k).ok().and_then(|v| deref(doc, v).as_stream().ok()))?;
    // A path in the name is not part of the file's name.
    let name = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(&name)
        .trim()
        .to_owned();
    Some(Spec { name, stream })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_beat_other_xml() {
        let stream = lopdf::Stream::new(Dictionary::new(), Vec::new());
        let specs = vec![
            Spec {
                name: "readme.txt".into(),
                stream: &stream,
            },
            Spec {
                name: "other.xml".into(),
                stream: &stream,
            },
            Spec {
                name: "ZUGFeRD-invoice.xml".into(),
                stream: &stream,
            },
        ];
        assert_eq!(choose(&specs), Some(2));
        assert_eq!(choose(&specs[..2]), Some(1));
        assert_eq!(choose(&specs[..1]), None);
    }
}
