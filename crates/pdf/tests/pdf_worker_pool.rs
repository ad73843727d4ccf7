//! The warm worker pool: workers serve many documents; one killed in the middle of a
//! document fails that document alone, its neighbours finish, and the pool replaces it;
//! workers are recycled after their allowance of documents.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docpipe_core::{ErrorCode, MediaType, Ocr};
use docpipe_pdf::worker::{PdfTextOcr, WorkerCommand};
use lopdf::{Document as PdfDoc, Object, Stream, dictionary};

fn worker() -> WorkerCommand {
    WorkerCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_docpipe-worker")),
        args: Vec::new(),
    }
}

/// A text PDF of `pages` pages, 40 lines each.
fn pdf(pages: usize, tag: &str) -> Vec<u8> {
    let mut doc = PdfDoc::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let mut kids = Vec::new();
    for p in 0..pages {
        let mut content = String::from("BT /F1 10 Tf 72 760 Td 12 TL\n");
        for l in 0..40 {
            content.push_str(&format!("({tag} page {p} line {l} total 1,234.56 EUR) '\n"));
        }
        content.push_str("ET");
        let c = doc.add_object(Stream::new(dictionary! {}, content.into_bytes()));
        kids.push(Object::Reference(doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => c,
            "Resources" => resources, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        })));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

/// Bytes `pid` has read so far (`rchar` of /proc/PID/io).
fn bytes_read(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_document_fails_only_that_document_and_the_pool_recovers() {
    let ocr = Arc::new(
        PdfTextOcr::new(worker())
            .with_concurrency(2)
            .with_timeout(Duration::from_secs(120)),
    );
    let small = pdf(1, "small");
    // Warm one worker: it stays, waiting.
    ocr.recognize(small.clone(), MediaType::Pdf)
        .await
        .expect("a small document");
    let idle = ocr.idle_workers();
    assert_eq!(idle.len(), 1, "one warm worker after one document");
    let victim = idle[0];

    // A long document goes to the warm worker (the pool hands out its idle workers first);
    // small ones run beside it on a second worker.
    let big = pdf(3000, "big");
    let big_len = big.len() as u64;
    let long = {
        let ocr = Arc::clone(&ocr);
        tokio::spawn(async move { ocr.recognize(big, MediaType::Pdf).await })
    };
    // Kill the worker once it has read the whole document, while it parses.
    let deadline = Instant::now() + Duration::from_secs(60);
    while bytes_read(victim).is_some_and(|n| n < big_len) {
        assert!(
            Instant::now() < deadline,
            "the worker never read the document"
        );
        tokio::task::yield_now().await;
    }
    let killed = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut neighbours = Vec::new();
    for i in 0..6 {
        let ocr = Arc::clone(&ocr);
        let doc = pdf(2, &format!("neighbour{i}"));
        neighbours.push(tokio::spawn(async move {
            ocr.recognize(doc, MediaType::Pdf).await
        }));
    }

    let err = long
        .await
        .expect("no panic")
        .expect_err("the killed worker's document fails");
    assert_eq!(err.code, ErrorCode::DocumentUnreadable);
    assert!(err.message.contains("killed"), "{}", err.message);
    for (i, n) in neighbours.into_iter().enumerate() {
        let doc = n.await.expect("no panic").expect("a neighbour succeeds");
        assert!(
            doc.text().contains(&format!("neighbour{i} page 1 line 39")),
            "neighbour {i}"
        );
    }
    // The pool recovered: the dead worker is gone, documents keep going through.
    let after = ocr
        .recognize(small, MediaType::Pdf)
        .await
        .expect("the pool serves documents after the crash");
    assert!(after.text().contains("small page 0 line 0"));
    let idle = ocr.idle_workers();
    assert!(
        !idle.contains(&victim),
        "{idle:?} still lists the killed worker"
    );
    assert!(!idle.is_empty() && idle.len() <= 2, "{idle:?}");
}

#[tokio::test]
async fn workers_are_recycled_after_their_allowance() {
    let ocr = PdfTextOcr::new(worker())
        .with_concurrency(1)
        .with_documents_per_worker(3);
    let mut seen = Vec::new();
    for i in 0..7 {
        let doc = ocr
            .recognize(pdf(1, &format!("doc{i}")), MediaType::Pdf)
            .await
            .expect("document");
        assert!(doc.text().contains(&format!("doc{i} page 0")));
        seen.extend(ocr.idle_workers());
    }
    seen.dedup();
    // Documents 1-3 on the first worker, 4-6 on the second, 7 on a third.
    assert_eq!(seen.len(), 3, "{seen:?}");
}

#[tokio::test]
async fn a_worker_that_ended_on_its_own_is_replaced_without_failing_the_next_document() {
    // The worker's own allowance (2) is below the pool's (5): it exits after its second
    // document, and the third goes to a fresh worker instead of failing.
    let mut command = worker();
    command.args.push("max_documents=2".into());
    let ocr = PdfTextOcr::new(command)
        .with_concurrency(1)
        .with_documents_per_worker(5);
    for i in 0..5 {
        ocr.recognize(pdf(1, &format!("doc{i}")), MediaType::Pdf)
            .await
            .unwrap_or_else(|e| panic!("document {i}: {e:?}"));
    }
}
