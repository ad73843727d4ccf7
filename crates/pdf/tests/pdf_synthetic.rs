//! The text interpreter on small PDFs built here: one feature each (fonts, operators,
//! page geometry, columns) and the work bounds on hostile constructions.

use docpipe_core::Document;
use docpipe_pdf::{PdfLimits, extract_document};
use lopdf::{Dictionary, Document as PdfDoc, Object, Stream, dictionary};

/// A one-page PDF: `content` drawn with `/F1` = Helvetica (no Widths) and `/F2` = a Type0
/// Identity-H font whose ToUnicode maps <0001>.. to "Hallo" letters; `xobjects` named
/// `/X0`, `/X1`...; `page` adds entries to the page dictionary.
fn build(content: &[u8], xobjects: Vec<Vec<u8>>, page: Vec<(&str, Object)>) -> Vec<u8> {
    let mut doc = PdfDoc::with_version("1.7");
    let pages_id = doc.new_object_id();
    let helvetica = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let cmap = b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
        1 begincodespacerange <0000> <FFFF> endcodespacerange\n\
        1 beginbfchar <0001> <0048> endbfchar\n\
        1 beginbfrange <0002> <0004> [<0061> <006C> <006C>] endbfrange\n\
        1 beginbfrange <0005> <0006> <006F> endbfrange\n\
        endcmap end end";
    let to_unicode = doc.add_object(Stream::new(Dictionary::new(), cmap.to_vec()));
    let cid = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "CIDFontType2", "BaseFont" => "Test",
        "CIDSystemInfo" => dictionary! { "Registry" => Object::string_literal("Adobe"),
            "Ordering" => Object::string_literal("Identity"), "Supplement" => 0 },
        "DW" => 600,
        "W" => vec![Object::Integer(1), Object::Array(vec![700.into(), 500.into()])],
    });
    let type0 = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type0", "BaseFont" => "Test", "Encoding" => "Identity-H",
        "DescendantFonts" => vec![Object::Reference(cid)], "ToUnicode" => Object::Reference(to_unicode),
    });
    let mut xdict = Dictionary::new();
    let ids: Vec<_> = xobjects.iter().map(|_| doc.new_object_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        xdict.set(format!("X{i}"), Object::Reference(*id));
    }
    let resources = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => helvetica, "F2" => type0 },
        "XObject" => xdict,
    });
    for (id, body) in ids.iter().zip(xobjects) {
        let dict = dictionary! {
            "Type" => "XObject", "Subtype" => "Form", "BBox" => vec![0.into(), 0.into(), 600.into(), 800.into()],
            "Resources" => Object::Reference(resources),
        };
        doc.objects
            .insert(*id, Object::Stream(Stream::new(dict, body)));
    }
    let contents = doc.add_object(Stream::new(Dictionary::new(), content.to_vec()));
    let mut page_dict = dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => contents,
        "Resources" => Object::Reference(resources),
        "MediaBox" => vec![0.into(), 0.into(), 600.into(), 800.into()],
    };
    for (k, v) in page {
        page_dict.set(k, v);
    }
    let page_id = doc.add_object(page_dict);
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

fn extract(pdf: &[u8]) -> Document {
    extract_document(pdf, &PdfLimits::default()).expect("extract")
}

fn lines(doc: &Document) -> Vec<String> {
    doc.pages[0].lines.iter().map(|l| l.text()).collect()
}

#[test]
fn simple_font_words_lines_and_boxes() {
    let doc = extract(&build(
        b"BT /F1 20 Tf 100 700 Td (Hello world) Tj 0 -40 Td [(Sec) 20 (ond) -1000 (line)] TJ ET",
        vec![],
        vec![],
    ));
    assert_eq!(lines(&doc), ["Hello world", "Second line"]);
    let page = &doc.pages[0];
    assert_eq!((page.width, page.height), (600.0, 800.0));
    let hello = &page.lines[0].words[0];
    // Helvetica "Hello" at 20 pt: 20 * (722 + 556 + 222 + 222 + 556) / 1000 = 45.56 pt wide.
    assert!(
        (hello.bbox.x0 - 100.0 / 600.0).abs() < 1e-3,
        "{:?}",
        hello.bbox
    );
    assert!(
        (hello.bbox.x1 - 145.56 / 600.0).abs() < 2e-3,
        "{:?}",
        hello.bbox
    );
    assert!(hello.bbox.y0 < 1.0 - 700.0 / 800.0 && hello.bbox.y1 > 1.0 - 700.0 / 800.0);
}

#[test]
fn text_operators_move_as_specified() {
    // TL + T*, ' and ", Tc/Tw spacing, Tz scaling, Ts rise, Tm, cm and q/Q.
    let doc = extract(&build(
        b"q 1 0 0 1 50 0 cm BT /F1 10 Tf 14 TL 50 700 Td (one) Tj T* (two) ' 5 1 (three four) \" ET Q \
          BT /F1 10 Tf 1 0 0 1 100 500 Tm 200 Tz (wide) Tj 100 Tz 3 Ts 0 -20 Td (up) Tj ET",
        vec![],
        vec![],
    ));
    assert_eq!(lines(&doc), ["one", "two", "three four", "wide", "up"]);
    let words: Vec<_> = doc.pages[0].lines.iter().flat_map(|l| &l.words).collect();
    // cm shifted the first block by 50 pt.
    assert!((words[0].bbox.x0 - 100.0 / 600.0).abs() < 1e-3);
    // " set a 5 pt word spacing and 1 pt character spacing, so "four" starts further right.
    let three = words[2].bbox;
    let four = words[3].bbox;
    assert!(four.x0 - three.x1 > 9.0 / 600.0, "{three:?} {four:?}");
    // Tz 200 doubles the width: "wide" is 2 * 10 * (722 + 222 + 556 + 556) / 1000 = 41.12 pt.
    assert!(
        (words[4].bbox.width() - 41.12 / 600.0).abs() < 2e-3,
        "{:?}",
        words[4].bbox
    );
}

#[test]
fn type0_identity_h_with_tounicode_ranges_and_widths() {
    let doc = extract(&build(
        b"BT /F2 10 Tf 100 700 Td <00010002000300040005> Tj ET",
        vec![],
        vec![],
    ));
    assert_eq!(lines(&doc), ["Hallo"]);
    // Widths: CID 1 = 700, CID 2 = 500, the rest DW 600: 10 * 3000 / 1000 = 30 pt.
    let w = doc.pages[0].lines[0].words[0].bbox;
    assert!((w.width() - 30.0 / 600.0).abs() < 1e-3, "{w:?}");
}

#[test]
fn kerning_gaps_split_words() {
    let doc = extract(&build(
        b"BT /F1 10 Tf 100 700 Td [(Net) -30 (to) -400 (Betrag)] TJ ET",
        vec![],
        vec![],
    ));
    assert_eq!(lines(&doc), ["Netto Betrag"]);
}

#[test]
fn rotated_pages_are_normalised_upright() {
    let doc = extract(&build(
        b"BT /F1 10 Tf 100 700 Td (top) Tj ET",
        vec![],
        vec![("Rotate", 90.into())],
    ));
    let page = &doc.pages[0];
    assert_eq!((page.width, page.height), (800.0, 600.0));
    let b = page.lines[0].words[0].bbox;
    // User-space (100, 700) is displayed at x = 700/800 from the left, y = 100/600 from the top.
    assert!(
        (b.x0 - 0.862).abs() < 0.03 && (b.y0 - 100.0 / 600.0).abs() < 0.03,
        "{b:?}"
    );
}

#[test]
fn crop_box_defines_the_page() {
    let doc = extract(&build(
        b"BT /F1 10 Tf 150 650 Td (inside) Tj ET",
        vec![],
        vec![(
            "CropBox",
            vec![100.into(), 100.into(), 400.into(), 700.into()].into(),
        )],
    ));
    let page = &doc.pages[0];
    assert_eq!((page.width, page.height), (300.0, 600.0));
    let b = page.lines[0].words[0].bbox;
    assert!((b.x0 - 50.0 / 300.0).abs() < 1e-3, "{b:?}");
}

#[test]
fn form_xobjects_draw_and_cycles_stop() {
    let doc = extract(&build(
        b"q 1 0 0 1 0 -100 cm /X0 Do Q BT /F1 10 Tf 100 700 Td (page) Tj ET",
        vec![
            b"BT /F1 10 Tf 100 700 Td (form) Tj ET /X1 Do".to_vec(),
            b"/X0 Do BT /F1 10 Tf 300 700 Td (nested) Tj ET".to_vec(),
        ],
        vec![],
    ));
    assert_eq!(lines(&doc), ["page", "form nested"]);
}

#[test]
fn columns_read_one_after_the_other_but_table_rows_stay_together() {
    let mut content = b"BT /F1 10 Tf ".to_vec();
    // Two text columns with different line pitch.
    for i in 0..6 {
        content
            .extend(format!("1 0 0 1 50 {} Tm (left{i} text here) Tj ", 700 - i * 12).as_bytes());
    }
    for i in 0..4 {
        content.extend(
            format!("1 0 0 1 350 {} Tm (right{i} more words) Tj ", 697 - i * 17).as_bytes(),
        );
    }
    // A table: three aligned columns.
    for i in 0..3 {
        let y = 500 - i * 14;
        content.extend(format!("1 0 0 1 50 {y} Tm (item{i}) Tj 1 0 0 1 300 {y} Tm (qty{i}) Tj 1 0 0 1 500 {y} Tm (sum{i}) Tj ").as_bytes());
    }
    content.extend(b"ET");
    let doc = extract(&build(&content, vec![], vec![]));
    let lines = lines(&doc);
    let pos = |s: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(s))
            .unwrap_or(usize::MAX)
    };
    assert!(pos("left5") < pos("right0"), "{lines:?}");
    assert!(pos("right3") < pos("item0"), "{lines:?}");
    assert!(lines.contains(&"item1 qty1 sum1".to_string()), "{lines:?}");
}

#[test]
fn operation_cap_cuts_a_page_short() {
    let mut content = b"BT /F1 10 Tf 100 700 Td (start) Tj ".to_vec();
    content.extend(b"0 0 Td ".repeat(5000));
    content.extend(b"(late) Tj ET");
    let pdf = build(&content, vec![], vec![]);
    let limits = PdfLimits {
        max_operations_per_page: 1000,
        ..PdfLimits::default()
    };
    let doc = extract_document(&pdf, &limits).expect("extract");
    assert_eq!(doc.text(), "start\n");
}

#[test]
fn deeply_nested_operands_do_not_hang() {
    // Many q without Q and a long array; bounded work, no panic.
    let mut content = b"q ".repeat(10_000);
    content.extend(b"BT /F1 10 Tf 100 700 Td [");
    content.extend(b"(a) -10 ".repeat(20_000));
    content.extend(b"] TJ ET");
    let doc = extract(&build(&content, vec![], vec![]));
    assert_eq!(doc.word_count(), 1);
}

/// Hostile constructions through the worker process: whatever happens inside, the parent
/// sees a document or `DOCUMENT_UNREADABLE`, quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_constructions_through_the_worker() {
    use docpipe_core::{ErrorCode, MediaType, Ocr};
    use docpipe_pdf::worker::{PdfTextOcr, WorkerCommand};
    use std::time::{Duration, Instant};

    let ocr = PdfTextOcr::new(WorkerCommand {
        program: env!("CARGO_BIN_EXE_docpipe-worker").into(),
        args: Vec::new(),
    })
    .with_timeout(Duration::from_secs(20));

    // Operands nested a million arrays deep: the content parser recurses.
    let mut deep = b"BT /F1 10 Tf 100 700 Td (ok) Tj ET ".to_vec();
    deep.extend(b"[".repeat(1_000_000));
    deep.extend(b"]".repeat(1_000_000));
    deep.extend(b" TJ");
    // A Flate bomb: 96 MiB of spaces in a few hundred KiB, above the 64 MiB stream cap.
    let bomb = {
        let mut doc = PdfDoc::load_mem(&build(b"", vec![], vec![])).expect("reload");
        let mut s = Stream::new(Dictionary::new(), vec![b' '; 96 * 1024 * 1024]);
        s.compress().expect("compress");
        let id = doc.add_object(s);
        let page = doc.page_iter().next().expect("page");
        if let Ok(Object::Dictionary(p)) = doc.get_object_mut(page) {
            p.set("Contents", Object::Reference(id));
        }
        let mut out = Vec::new();
        doc.save_to(&mut out).expect("save");
        out
    };
    for (name, pdf) in [
        ("deep nesting", build(&deep, vec![], vec![])),
        ("flate bomb", bomb),
    ] {
        let size = pdf.len();
        let start = Instant::now();
        let result = ocr.recognize(pdf, MediaType::Pdf).await;
        println!(
            "{name} ({size} bytes): {:?} in {:?}",
            result.as_ref().map(Document::word_count),
            start.elapsed()
        );
        if let Err(e) = result {
            assert_eq!(e.code, ErrorCode::DocumentUnreadable, "{name}: {e}");
        }
        assert!(start.elapsed() < Duration::from_secs(25), "{name}");
    }
}

fn encrypted(user_password: &str) -> Vec<u8> {
    use lopdf::{EncryptionState, EncryptionVersion, Permissions};
    let mut doc = PdfDoc::load_mem(&build(
        b"BT /F1 10 Tf 100 700 Td (secret text) Tj ET",
        vec![],
        vec![],
    ))
    .expect("reload");
    let id = Object::String(
        b"0123456789abcdef".to_vec(),
        lopdf::StringFormat::Hexadecimal,
    );
    doc.trailer.set("ID", vec![id.clone(), id]);
    let state = EncryptionState::try_from(EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password,
        key_length: 128,
        permissions: Permissions::all(),
    })
    .expect("encryption state");
    doc.encrypt(&state).expect("encrypt");
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

#[test]
fn encrypted_with_an_empty_user_password_reads() {
    assert_eq!(extract(&encrypted("")).text(), "secret text\n");
    let err =
        extract_document(&encrypted("user"), &PdfLimits::default()).expect_err("needs a password");
    assert_eq!(err, docpipe_pdf::PdfError::Encrypted);
}
