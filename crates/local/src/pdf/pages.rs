//! The page list, walked from the catalog's page tree the way lenient readers walk it: a
//! kid that is not a dictionary, an empty or typeless intermediate node, a node reached a
//! second time (a cycle through an ancestor or a node listed twice) and anything deeper
//! than [`MAX_DEPTH`] are skipped, so one bad branch costs only its own pages. When the
//! tree yields no page at all, the page dictionaries are collected from the objects
//! themselves, in object-number order.

use std::collections::HashSet;

use lopdf::{Dictionary, Document as PdfDoc, Object, ObjectId};

/// Deepest page-tree node visited; real trees are a handful of levels deep.
const MAX_DEPTH: usize = 128;

/// Page dictionaries in reading order, at most `max` of them (a caller that wants to know
/// whether there are more asks for one more than it reads).
pub(crate) fn page_ids(doc: &PdfDoc, max: usize) -> Vec<ObjectId> {
    let mut pages = walk_tree(doc, max);
    if pages.is_empty() {
        pages = scan_objects(doc, max);
    }
    pages
}

fn dict_of<'a>(doc: &'a PdfDoc, o: &'a Object) -> Option<&'a Dictionary> {
    let o = doc.dereference(o).map(|(_, o)| o).unwrap_or(o);
    o.as_dict().ok()
}

fn type_of(dict: &Dictionary) -> Option<&[u8]> {
    dict.get(b"Type").and_then(Object::as_name).ok()
}

fn kids<'a>(doc: &'a PdfDoc, node: &'a Dictionary) -> Option<&'a [Object]> {
    let kids = node.get(b"Kids").ok()?;
    let kids = doc.dereference(kids).map(|(_, o)| o).unwrap_or(kids);
    kids.as_array().ok().map(Vec::as_slice)
}

/// What a page-tree entry is, judged as readers do when `/Type` is missing or wrong: a
/// node has `/Kids`; a leaf is a page if it says so or carries what a page carries.
enum Node<'a> {
    Pages(&'a [Object]),
    Page,
    Skip,
}

fn classify<'a>(doc: &'a PdfDoc, dict: &'a Dictionary) -> Node<'a> {
    match (type_of(dict), kids(doc, dict)) {
        (Some(b"Page"), _) => Node::Page,
        (_, Some(kids)) => Node::Pages(kids),
        (Some(b"Pages"), None) => Node::Skip,
        _ if dict.has(b"Contents") || dict.has(b"MediaBox") => Node::Page,
        _ => Node::Skip,
    }
}

fn walk_tree(doc: &PdfDoc, max: usize) -> Vec<ObjectId> {
    let mut pages = Vec::new();
    let Some(root) = doc
        .catalog()
        .ok()
        .and_then(|c| c.get(b"Pages").ok())
        .and_then(|p| p.as_reference().ok())
    else {
        return pages;
    };
    let Some(Node::Pages(root_kids)) = doc.get_dictionary(root).ok().map(|d| classify(doc, d))
    else {
        // A catalog whose /Pages is a single page.
        if let Ok(d) = doc.get_dictionary(root)
            && matches!(classify(doc, d), Node::Page)
        {
            pages.push(root);
        }
        return pages;
    };
    let mut visited: HashSet<ObjectId> = HashSet::from([root]);
    // Each frame: the kids still to visit at one level. The stack is as deep as the tree,
    // bounded by MAX_DEPTH; the walk visits each node once, so its work is bounded by the
    // number of objects.
    let mut stack: Vec<&[Object]> = vec![root_kids];
    while let Some(level) = stack.last_mut() {
        let Some((kid, rest)) = level.split_first() else {
            stack.pop();
            continue;
        };
        *level = rest;
        let Ok(id) = kid.as_reference() else {
            continue;
        };
        let Some(dict) = doc.get_dictionary(id).ok() else {
            continue;
        };
        match classify(doc, dict) {
            Node::Page => {
                pages.push(id);
                if pages.len() >= max {
                    break;
                }
            }
            Node::Pages(kids) => {
                if stack.len() < MAX_DEPTH && visited.insert(id) {
                    stack.push(kids);
                }
            }
            Node::Skip => {}
        }
    }
    pages
}

/// Every `/Type /Page` dictionary, for a document whose page tree leads to none.
fn scan_objects(doc: &PdfDoc, max: usize) -> Vec<ObjectId> {
    doc.objects
        .iter()
        .filter(|(_, o)| {
            dict_of(doc, o)
                .and_then(type_of)
                .is_some_and(|t| t == b"Page")
        })
        .map(|(id, _)| *id)
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::dictionary;

    fn doc_with(kids_of_root: Vec<Object>, extra: Vec<(ObjectId, Object)>) -> PdfDoc {
        let mut doc = PdfDoc::with_version("1.7");
        let root = (2, 0);
        doc.objects.insert(
            root,
            Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids_of_root }),
        );
        for (id, o) in extra {
            doc.objects.insert(id, o);
        }
        doc.objects.insert(
            (1, 0),
            Object::Dictionary(dictionary! { "Type" => "Catalog", "Pages" => root }),
        );
        doc.trailer.set("Root", (1, 0));
        doc
    }

    fn page() -> Object {
        Object::Dictionary(dictionary! { "Type" => "Page" })
    }

    #[test]
    fn cycles_and_bad_kids_are_skipped() {
        let doc = doc_with(
            vec![
                (2, 0).into(),
                (3, 0).into(),
                (10, 0).into(),
                (11, 0).into(),
                (12, 0).into(),
                Object::Integer(7),
            ],
            vec![
                ((3, 0), page()),
                (
                    (10, 0),
                    Object::Dictionary(
                        dictionary! { "Kids" => vec![(4, 0).into(), (2, 0).into(), (10, 0).into()] },
                    ),
                ),
                ((4, 0), page()),
                ((11, 0), Object::Integer(42)),
                (
                    (12, 0),
                    Object::Dictionary(dictionary! { "Type" => "Pages" }),
                ),
            ],
        );
        assert_eq!(page_ids(&doc, 100), vec![(3, 0), (4, 0)]);
        assert_eq!(page_ids(&doc, 1), vec![(3, 0)]);
    }

    #[test]
    fn an_empty_tree_falls_back_to_the_page_objects() {
        let doc = doc_with(vec![], vec![((5, 0), page()), ((3, 0), page())]);
        assert_eq!(page_ids(&doc, 100), vec![(3, 0), (5, 0)]);
    }

    #[test]
    fn depth_is_bounded() {
        // A chain of 1000 nested nodes: no stack growth past MAX_DEPTH, no page past it.
        let mut extra = Vec::new();
        for i in 0..1000u32 {
            extra.push((
                (100 + i, 0),
                Object::Dictionary(dictionary! { "Kids" => vec![(101 + i, 0).into()] }),
            ));
        }
        extra.push(((1100, 0), page()));
        let doc = doc_with(vec![(100, 0).into(), (3, 0).into()], {
            extra.push(((3, 0), page()));
            extra
        });
        assert_eq!(page_ids(&doc, 100), vec![(3, 0)]);
    }
}
