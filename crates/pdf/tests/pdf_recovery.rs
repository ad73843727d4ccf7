//! Damaged and encrypted PDFs that reconstructing readers open: broken cross-reference
//! data, damaged streams, bad page-tree nodes, cycles, and files encrypted with an empty
//! user password. Each is built here byte by byte (or is a small encrypted fixture made by
//! qpdf, see `fixtures/README.md`); the text of the real pages must come out, once.

use std::path::PathBuf;

use docpipe_core::Document;
use docpipe_pdf::{PdfError, PdfLimits, extract_document};

/// A PDF written by hand: `objects` as `(number, body)`, a classic cross-reference table
/// (offsets passed through `offset`), a trailer with `trailer` entries, and `startxref`.
struct Pdf<'a> {
    objects: Vec<(u32, Vec<u8>)>,
    trailer: &'a str,
    xref: bool,
    offset: fn(u32, usize) -> usize,
}

impl<'a> Pdf<'a> {
    fn new(objects: Vec<(u32, Vec<u8>)>) -> Self {
        Self {
            objects,
            trailer: "/Root 1 0 R",
            xref: true,
            offset: |_, o| o,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = std::collections::BTreeMap::new();
        for (n, body) in &self.objects {
            offsets.insert(*n, out.len());
            out.extend(format!("{n} 0 obj\n").as_bytes());
            out.extend(body);
            out.extend(b"\nendobj\n");
        }
        let size = offsets.keys().max().copied().unwrap_or(0) + 1;
        let xref_at = out.len();
        if self.xref {
            out.extend(format!("xref\n0 {size}\n0000000000 65535 f \n").as_bytes());
            for n in 1..size {
                match offsets.get(&n) {
                    Some(&o) => {
                        out.extend(format!("{:010} 00000 n \n", (self.offset)(n, o)).as_bytes())
                    }
                    None => out.extend(b"0000000000 65535 f \n"),
                }
            }
        }
        if !self.trailer.is_empty() {
            out.extend(format!("trailer\n<< /Size {size} {} >>\n", self.trailer).as_bytes());
        }
        out.extend(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
        out
    }
}

fn stream(content: &[u8]) -> Vec<u8> {
    [
        format!("<< /Length {} >>\nstream\n", content.len()).as_bytes(),
        content,
        b"\nendstream",
    ]
    .concat()
}

fn text(s: &str) -> Vec<u8> {
    stream(format!("BT /F1 18 Tf 72 720 Td ({s}) Tj ET").as_bytes())
}

fn page(parent: u32, contents: u32) -> Vec<u8> {
    format!(
        "<< /Type /Page /Parent {parent} 0 R /MediaBox [0 0 612 792] \
         /Resources << /Font << /F1 9 0 R >> >> /Contents {contents} 0 R >>"
    )
    .into_bytes()
}

const FONT: &[u8] =
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";

/// Catalog 1, page tree 2 with `kids`, pages 3 and 5 ("First page", "Second page"), font 9.
fn two_pages(kids: &str, extra: Vec<(u32, Vec<u8>)>) -> Vec<(u32, Vec<u8>)> {
    let mut objects = vec![
        (1, b"<< /Type /Catalog /Pages 2 0 R >>".to_vec()),
        (
            2,
            format!("<< /Type /Pages /Kids [{kids}] /Count 2 >>").into_bytes(),
        ),
        (3, page(2, 4)),
        (4, text("First page")),
        (5, page(2, 6)),
        (6, text("Second page")),
        (9, FONT.to_vec()),
    ];
    objects.extend(extra);
    objects
}

fn read(pdf: &[u8]) -> Result<Document, PdfError> {
    extract_document(pdf, &PdfLimits::default())
}

fn page_texts(doc: &Document) -> Vec<String> {
    doc.pages
        .iter()
        .map(|p| {
            p.lines
                .iter()
                .map(|l| l.text())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(from)));
    [&haystack[..at], to, &haystack[at + from.len()..]].concat()
}

#[test]
fn broken_cross_reference_data_is_rebuilt_by_scanning() {
    let healthy = two_pages("3 0 R 5 0 R", vec![]);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut p = Pdf::new(healthy.clone());
    p.offset = |_, o| o + 13;
    cases.push(("every offset wrong", p.bytes()));
    let mut p = Pdf::new(healthy.clone());
    p.offset = |n, o| if n == 4 { o + 9 } else { o };
    cases.push(("the content stream's offset wrong", p.bytes()));
    let mut p = Pdf::new(healthy.clone());
    p.xref = false;
    cases.push(("no cross-reference table", p.bytes()));
    let mut p = Pdf::new(healthy.clone());
    p.trailer = "";
    cases.push(("no trailer: the catalog is found by its type", p.bytes()));
    let mut p = Pdf::new(healthy.clone());
    p.trailer = "/Root 77 0 R";
    cases.push(("a trailer naming no object", p.bytes()));
    let whole = Pdf::new(healthy.clone()).bytes();
    let cut = whole.windows(4).position(|w| w == b"xref").expect("xref");
    cases.push(("cut off before the table", whole[..cut].to_vec()));
    // An incremental update with an empty section and /Size 0.
    let mut update = whole.clone();
    let prev = cut;
    let at = update.len();
    update.extend(
        format!(
            "xref\n0 0\ntrailer << /Root 1 0 R /Size 0 /Prev {prev} >>\nstartxref\n{at}\n%%EOF\n"
        )
        .as_bytes(),
    );
    cases.push(("an empty update section", update));
    // A missing `endobj` shifts every object after it.
    cases.push((
        "a lost endobj",
        replace(&whole, b"endstream\nendobj\n5 0 obj", b"endstream\n5 0 obj"),
    ));
    for (name, pdf) in cases {
        let doc = read(&pdf).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(page_texts(&doc), ["First page", "Second page"], "{name}");
    }
}

#[test]
fn damaged_streams_are_measured_by_their_keywords() {
    let content = b"BT /F1 18 Tf 72 720 Td (First page) Tj ET";
    let with = |body: Vec<u8>| {
        Pdf::new(vec![
            (1, b"<< /Type /Catalog /Pages 2 0 R >>".to_vec()),
            (2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec()),
            (3, page(2, 4)),
            (4, body),
            (9, FONT.to_vec()),
        ])
        .bytes()
    };
    let cases = [
        (
            "no /Length",
            [b"<< >>\nstream\n".as_slice(), content, b"\nendstream"].concat(),
        ),
        (
            "/Length too long",
            [
                b"<< /Length 9999 >>\nstream\n".as_slice(),
                content,
                b"\nendstream",
            ]
            .concat(),
        ),
        (
            "/Length names a missing object",
            [
                b"<< /Length 77 0 R >>\nstream\n".as_slice(),
                content,
                b"\nendstream",
            ]
            .concat(),
        ),
        (
            "/Length not a number",
            [
                b"<< /Length /Big >>\nstream\n".as_slice(),
                content,
                b"\nendstream",
            ]
            .concat(),
        ),
        (
            "no endstream",
            [
                format!("<< /Length {} >>\nstream\n", content.len()).as_bytes(),
                content,
                b"\nenxstream",
            ]
            .concat(),
        ),
    ];
    for (name, body) in cases {
        let doc = read(&with(body)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(page_texts(&doc), ["First page"], "{name}");
    }
}

#[test]
fn bad_page_tree_nodes_are_skipped_and_the_other_pages_read() {
    let cases = [
        // An empty node, a kid that is a number, a node with no /Kids, a direct integer.
        (
            "empty and non-dictionary kids",
            two_pages(
                "10 0 R 3 0 R 11 0 R 12 0 R 42 5 0 R",
                vec![
                    (10, b"<< /Type /Pages /Kids [] /Count 0 >>".to_vec()),
                    (11, b"42".to_vec()),
                    (12, b"<< /Type /Pages /Count 0 >>".to_vec()),
                ],
            ),
        ),
        // Nodes and pages without /Type.
        ("typeless nodes", {
            let mut o = two_pages("13 0 R", vec![(13, b"<< /Kids [3 0 R 5 0 R] >>".to_vec())]);
            o[2].1 = replace(&o[2].1, b"/Type /Page ", b"");
            o
        }),
        // A tree that lists no page although the pages are there.
        ("an empty root", {
            let mut o = two_pages("", vec![]);
            o[1].1 = b"<< /Type /Pages /Kids [] /Count 0 >>".to_vec();
            o
        }),
    ];
    for (name, objects) in cases {
        let doc = read(&Pdf::new(objects).bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            page_texts(&doc),
            ["First page", "Second page"],
            "{name}: no phantom pages for the bad kids"
        );
    }
}

#[test]
fn cycles_in_the_page_tree_and_in_resources_stop() {
    let cases = [
        // The second level lists its ancestor again.
        (
            "a kid that is an ancestor",
            two_pages(
                "3 0 R 7 0 R",
                vec![(
                    7,
                    b"<< /Type /Pages /Parent 2 0 R /Kids [5 0 R 2 0 R] /Count 1 >>".to_vec(),
                )],
            ),
        ),
        (
            "a node that is its own kid",
            two_pages("2 0 R 3 0 R 2 0 R 5 0 R", vec![]),
        ),
        // Resources that reference themselves, a font dictionary in a loop, a form that
        // draws itself, and a page whose /Parent chain loops.
        ("reference cycles in resources", {
            let mut o = two_pages(
                    "3 0 R 5 0 R",
                    vec![
                        (8, b"<< /Font 10 0 R /Self 8 0 R /XObject << /X1 11 0 R >> >>".to_vec()),
                        (10, b"<< /F1 9 0 R /Loop 10 0 R >>".to_vec()),
                        (
                            11,
                            [
                                b"<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources 8 0 R /Length 6 >>\nstream\n".as_slice(),
                                b"/X1 Do",
                                b"\nendstream",
                            ]
                            .concat(),
                        ),
                        (12, b"<< /Type /Pages /Parent 12 0 R >>".to_vec()),
                    ],
                );
            o[2].1 = b"<< /Type /Page /Parent 12 0 R /Resources 8 0 R /Contents 4 0 R >>".to_vec();
            o[3].1 = stream(b"BT /F1 18 Tf 72 720 Td (First) Tj ET /X1 Do");
            o[5].1 = text("Second page");
            o[4].1 = b"<< /Type /Page /Parent 2 0 R /Resources 8 0 R /Contents 6 0 R >>".to_vec();
            o
        }),
    ];
    for (name, objects) in cases {
        let start = std::time::Instant::now();
        let doc = read(&Pdf::new(objects).bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let texts = page_texts(&doc);
        assert_eq!(texts.len(), 2, "{name}: {texts:?}");
        assert!(texts[0].starts_with("First"), "{name}: {texts:?}");
        assert_eq!(texts[1], "Second page", "{name}");
        assert!(start.elapsed().as_secs() < 5, "{name}");
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/pdf/encrypted")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const SECRET: &str = "Invoice 4711 total 99.50 EUR";

#[test]
fn an_empty_user_password_opens_every_standard_cipher() {
    let mut cases: Vec<(String, Vec<u8>)> = [
        "rc4-40.pdf",
        "rc4-128.pdf",
        "rc4-128-v4.pdf",
        "aes-128.pdf",
        "aes-128-objstm.pdf",
        "aes-256-r5.pdf",
        "aes-256.pdf",
    ]
    .iter()
    .map(|n| (n.to_string(), fixture(n)))
    .collect();
    // The same files as broken writers leave them. The encryption dictionary written
    // directly into the trailer (the handler expects a reference):
    for n in ["rc4-128.pdf", "aes-128.pdf", "aes-256.pdf"] {
        let pdf = fixture(n);
        let start = pdf
            .windows(8)
            .position(|w| w == b"7 0 obj\n")
            .expect("obj 7")
            + 8;
        let end = start
            + pdf[start..]
                .windows(6)
                .position(|w| w == b"endobj")
                .expect("end");
        let dict = pdf[start..end].trim_ascii().to_vec();
        cases.push((
            format!("{n} with a direct /Encrypt"),
            replace(
                &pdf,
                b"/Encrypt 7 0 R",
                &[b"/Encrypt ", dict.as_slice()].concat(),
            ),
        ));
    }
    // An RC4-128 dictionary without its /Length (the default, 40, is wrong for it):
    cases.push((
        "rc4-128.pdf without /Length".into(),
        replace(
            &fixture("rc4-128.pdf"),
            b"/Length 128 /O",
            b"/Wength 128 /O",
        ),
    ));
    // Every cross-reference offset off by a few bytes:
    for n in ["rc4-128.pdf", "aes-128.pdf", "aes-256.pdf"] {
        let pdf = fixture(n);
        let at = pdf.windows(5).position(|w| w == b"\nxref").expect("xref") + 1;
        let table = String::from_utf8_lossy(&pdf[at..]).to_string();
        let shifted: String = table
            .lines()
            .map(|l| {
                match l
                    .strip_suffix(" 00000 n ")
                    .and_then(|o| o.parse::<usize>().ok())
                {
                    Some(o) => format!("{:010} 00000 n \n", o + 7),
                    None => format!("{l}\n"),
                }
            })
            .collect();
        cases.push((
            format!("{n} with its offsets wrong"),
            [&pdf[..at], shifted.as_bytes()].concat(),
        ));
    }
    for (name, pdf) in cases {
        let doc = read(&pdf).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(page_texts(&doc), [SECRET], "{name}");
    }
}

#[test]
fn a_real_user_password_is_its_own_error() {
    assert_eq!(
        read(&fixture("user-password.pdf")).expect_err("needs a password"),
        PdfError::Encrypted
    );
    assert_eq!(
        PdfError::Encrypted.code(),
        docpipe_core::ErrorCode::DocumentEncrypted
    );
}

/// Through the worker process: the code survives the process boundary.
#[tokio::test]
async fn the_worker_reports_a_password_as_document_encrypted() {
    use docpipe_core::{ErrorCode, MediaType, Ocr};
    use docpipe_pdf::worker::{PdfTextOcr, WorkerCommand};
    let ocr = PdfTextOcr::new(WorkerCommand {
        program: env!("CARGO_BIN_EXE_docpipe-worker").into(),
        args: Vec::new(),
    });
    let err = ocr
        .recognize(fixture("user-password.pdf"), MediaType::Pdf)
        .await
        .expect_err("needs a password");
    assert_eq!(err.code, ErrorCode::DocumentEncrypted, "{err}");
    let doc = ocr
        .recognize(fixture("aes-256.pdf"), MediaType::Pdf)
        .await
        .expect("empty password");
    assert_eq!(doc.text(), format!("{SECRET}\n"));
}
