//! Safe XML parsing for e-invoices, and the few lookups the mappings need. roxmltree
//! refuses any DTD (so no entity expansion and no external entities); on top of that the
//! document must be UTF-8, at most `max_nodes` nodes and `max_depth` elements deep.

use roxmltree::{Document, Node, ParsingOptions};
use rust_decimal::Decimal;

use super::{EinvoiceError, EinvoiceLimits};

/// Decodes and parses the attachment's bytes.
pub(super) fn parse<'a>(
    text: &'a str,
    limits: &EinvoiceLimits,
) -> Result<Document<'a>, EinvoiceError> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_xml_nodes,
        entity_resolver: None,
    };
    let doc = Document::parse_with_options(text, options)
        .map_err(|e| EinvoiceError::Xml(e.to_string()))?;
    // Depth of every node, computed in one pass (parents come before children).
    let mut depth: Vec<u32> = vec![0; doc.descendants().count()];
    for node in doc.descendants() {
        let d = node
            .parent()
            .and_then(|p| depth.get(p.id().get_usize()).copied())
            .map_or(0, |d| d + 1);
        if d as usize > limits.max_depth {
            return Err(EinvoiceError::TooDeep {
                max: limits.max_depth,
            });
        }
        if let Some(slot) = depth.get_mut(node.id().get_usize()) {
            *slot = d;
        }
    }
    Ok(doc)
}

/// The bytes as UTF-8 text: a byte-order mark is dropped, a declared encoding other than
/// UTF-8 is refused (the XML is then not what it says it is).
pub(super) fn decode(bytes: &[u8]) -> Result<&str, EinvoiceError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| EinvoiceError::Xml(format!("not UTF-8 text: {e}")))?;
    if let Some(decl) = declaration(text)
        && let Some(enc) = pseudo_attribute(decl, "encoding")
        && !enc.eq_ignore_ascii_case("utf-8")
        && !enc.eq_ignore_ascii_case("utf8")
    {
        return Err(EinvoiceError::Xml(format!(
            "declared encoding {enc:?} is not UTF-8"
        )));
    }
    Ok(text)
}

/// The `<?xml ...?>` declaration's content, if the text starts with one.
fn declaration(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("<?xml")?;
    let end = rest.find("?>")?;
    Some(&rest[..end])
}

fn pseudo_attribute<'a>(decl: &'a str, name: &str) -> Option<&'a str> {
    let at = decl.find(name)?;
    let rest = decl[at + name.len()..].trim_start().strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    let end = rest.find(quote)?;
    Some(&rest[..end])
}

/// The local name of an element.
pub(super) fn local<'a>(n: Node<'a, '_>) -> &'a str {
    n.tag_name().name()
}

/// Element children with a local name.
pub(super) fn children<'a, 'i>(
    n: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children()
        .filter(move |c| c.is_element() && local(*c) == name)
}

/// The first element child with a local name.
pub(super) fn child<'a, 'i>(n: Node<'a, 'i>, name: &'a str) -> Option<Node<'a, 'i>> {
    children(n, name).next()
}

/// The first of several alternative children.
pub(super) fn child_of<'a, 'i>(n: Option<Node<'a, 'i>>, names: &[&'a str]) -> Option<Node<'a, 'i>> {
    let n = n?;
    names.iter().find_map(|name| child(n, name))
}

/// A path of local names separated by `/`; a part starting with `*` matches descendants
/// at any depth. Like the truth tool's `find`: each step keeps every match, in document
/// order, and the first node that completes the path wins.
pub(super) fn find<'a, 'i>(n: Option<Node<'a, 'i>>, path: &str) -> Option<Node<'a, 'i>> {
    let mut cur = vec![n?];
    for part in path.split('/') {
        let mut next = Vec::new();
        for c in &cur {
            if let Some(name) = part.strip_prefix('*') {
                next.extend(
                    c.descendants()
                        .skip(1)
                        .filter(|d| d.is_element() && local(*d) == name),
                );
            } else {
                next.extend(c.children().filter(|d| d.is_element() && local(*d) == part));
            }
        }
        if next.is_empty() {
            return None;
        }
        cur = next;
    }
    cur.into_iter().next()
}

/// The trimmed text of the node at `path`; `None` if absent or empty.
pub(super) fn text(n: Option<Node<'_, '_>>, path: &str) -> Option<String> {
    node_text(find(n, path)?)
}

/// A node's own trimmed text; `None` if empty.
pub(super) fn node_text(n: Node<'_, '_>) -> Option<String> {
    let t = n.text()?.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// A decimal from the node at `path`: `Ok(None)` if absent, an error if not a number.
pub(super) fn decimal(
    n: Option<Node<'_, '_>>,
    path: &str,
) -> Result<Option<Decimal>, EinvoiceError> {
    match text(n, path) {
        None => Ok(None),
        Some(t) => parse_decimal(&t, path).map(Some),
    }
}

pub(super) fn parse_decimal(t: &str, what: &str) -> Result<Decimal, EinvoiceError> {
    let t = t.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Err(EinvoiceError::BadValue {
            what: what.to_owned(),
            value: t.to_owned(),
        });
    }
    t.parse::<Decimal>().map_err(|_| EinvoiceError::BadValue {
        what: what.to_owned(),
        value: t.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> EinvoiceLimits {
        EinvoiceLimits::default()
    }

    #[test]
    fn dtds_and_entities_are_refused() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<a>&lol2;</a>"#;
        assert!(matches!(parse(bomb, &limits()), Err(EinvoiceError::Xml(_))));
        let external = r#"<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#;
        assert!(matches!(
            parse(external, &limits()),
            Err(EinvoiceError::Xml(_))
        ));
    }

    #[test]
    fn depth_and_size_are_capped() {
        let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
        assert!(matches!(
            parse(&deep, &limits()),
            Err(EinvoiceError::TooDeep { .. })
        ));
        let wide = format!("<a>{}</a>", "<b/>".repeat(1000));
        let small = EinvoiceLimits {
            max_xml_nodes: 100,
            ..limits()
        };
        assert!(matches!(parse(&wide, &small), Err(EinvoiceError::Xml(_))));
        assert!(parse(&wide, &limits()).is_ok());
    }

    #[test]
    fn declared_encodings_other_than_utf8_are_refused() {
        assert!(decode(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>").is_ok());
        assert!(decode(b"\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8'?><a/>").is_ok());
        assert!(decode(b"<a/>").is_ok());
        assert!(decode(b"<?xml version=\"1.0\" encoding=\"UTF-8-W/O-BOM\"?><a/>").is_err());
        assert!(decode(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>").is_err());
        assert!(decode(b"<a>\xFF</a>").is_err());
    }

    #[test]
    fn find_follows_the_truth_tools_paths() {
        let x = "<r><t><p><x>1</x></p><q><x> 2 </x></q></t><d><n><x>3</x></n></d></r>";
        let doc = parse(x, &limits()).expect("parses");
        let root = Some(doc.root_element());
        assert_eq!(text(root, "t/q/x").as_deref(), Some("2"));
        assert_eq!(text(root, "*x").as_deref(), Some("1"));
        assert_eq!(text(root, "*n/x").as_deref(), Some("3"));
        assert_eq!(text(root, "t/z"), None);
    }

    #[test]
    fn decimals_are_strict() {
        assert_eq!(parse_decimal("-220.00", "x").ok(), "-220.00".parse().ok());
        assert_eq!(parse_decimal("850", "x").ok(), Some(Decimal::from(850)));
        assert!(parse_decimal("1,5", "x").is_err());
        assert!(parse_decimal("1e5", "x").is_err());
        assert!(parse_decimal("", "x").is_err());
    }
}
