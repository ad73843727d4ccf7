//! Blueprint PDFs that are drawings, not scans: a vector floor plan (walls as filled
//! rectangles, labels as text, as CAD exports them) goes through the same extractor the
//! pipeline uses, rendered by `pdftoppm`, labelled from its text layer. Skips, saying so, where poppler is absent.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use docpipe_core::{ErrorCode, Extractor, MediaType};
use docpipe_invoice::RuleExtractor;
use docpipe_ocr::PdfRenderer;
use docpipe_pdf::worker::{PdfTextOcr, WORKER_ARGS, WorkerCommand};
use docpipe_rooms::WithRooms;
use lopdf::{Dictionary, Document as PdfDoc, Object, Stream, dictionary};

/// An 800 x 600 pt sheet: an outer wall, a wall splitting it in two, and one splitting
/// the right half: three closed rooms, each labelled.
fn vector_plan() -> Vec<u8> {
    let walls = [
        (40, 40, 720, 10),  // bottom
        (40, 550, 720, 10), // top
        (40, 40, 10, 520),  // left
        (750, 40, 10, 520), // right
        (395, 40, 10, 520), // middle
        (395, 295, 365, 10),
    ];
    let mut content = String::from("0 g\n");
    for (x, y, w, h) in walls {
        content.push_str(&format!("{x} {y} {w} {h} re f\n"));
    }
    for (x, y, label) in [
        (180, 300, "Living"),
        (540, 420, "Kitchen"),
        (540, 160, "Bath"),
    ] {
        content.push_str(&format!("BT /F1 14 Tf {x} {y} Td ({label}) Tj ET\n"));
    }
    let mut doc = PdfDoc::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let contents = doc.add_object(Stream::new(Dictionary::new(), content.into_bytes()));
    let page = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => contents,
        "Resources" => Object::Reference(resources),
        "MediaBox" => vec![0.into(), 0.into(), 800.into(), 600.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1 },
        ),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

fn pdftoppm_runs() -> bool {
    let ok = Command::new("pdftoppm")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: pdftoppm is not installed");
    }
    ok
}

#[tokio::test]
async fn a_vector_pdf_plan_is_rendered_and_its_rooms_found() {
    if !pdftoppm_runs() {
        return;
    }
    // Labels come from the drawing's text layer, read by the PDF text worker.
    let text = PdfTextOcr::new(WorkerCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_docpipe")),
        args: WORKER_ARGS.iter().map(Into::into).collect(),
    });
    let extractor = WithRooms::new(RuleExtractor::default())
        .with_pdf_renderer(PdfRenderer::new("pdftoppm"))
        .with_label_ocr(Arc::new(text));
    let result = extractor
        .extract_rooms(&vector_plan(), MediaType::Pdf)
        .await
        .expect("rooms");
    assert_eq!(result.page, Some(1));
    assert_eq!(result.rooms.len(), 3, "{:?}", result.rooms);
    let mut labels: Vec<_> = result
        .rooms
        .iter()
        .filter_map(|r| r.label.clone())
        .collect();
    labels.sort();
    assert_eq!(labels, ["Bath", "Kitchen", "Living"]);
    // The rooms, in page fractions (y down): left half, right top, right bottom.
    let mut boxes: Vec<[f64; 4]> = result
        .rooms
        .iter()
        .map(|r| {
            let xs = r.polygon_normalised.iter().map(|p| p[0]);
            let ys = r.polygon_normalised.iter().map(|p| p[1]);
            [
                xs.clone().fold(f64::MAX, f64::min),
                ys.clone().fold(f64::MAX, f64::min),
                xs.fold(f64::MIN, f64::max),
                ys.fold(f64::MIN, f64::max),
            ]
        })
        .collect();
    boxes.sort_by(|a, b| (a[0], a[1]).partial_cmp(&(b[0], b[1])).expect("finite"));
    let expected = [
        [50.0 / 800.0, 40.0 / 600.0, 395.0 / 800.0, 550.0 / 600.0],
        [405.0 / 800.0, 40.0 / 600.0, 750.0 / 800.0, 295.0 / 600.0],
        [405.0 / 800.0, 305.0 / 600.0, 750.0 / 800.0, 550.0 / 600.0],
    ];
    for (got, want) in boxes.iter().zip(expected) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 0.02, "room box {got:?}, expected {want:?}");
        }
    }
}

#[tokio::test]
async fn without_a_renderer_a_vector_pdf_is_refused_clearly() {
    let extractor = WithRooms::new(RuleExtractor::default());
    let err = extractor
        .extract_rooms(&vector_plan(), MediaType::Pdf)
        .await
        .expect_err("no renderer, no scan");
    assert_eq!(err.code, ErrorCode::UnsupportedDocument);
}
