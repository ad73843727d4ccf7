//! The PDF text layer through its worker subprocess: hostile and broken files end as a
//! document or a `DOCUMENT_UNREADABLE` error, within the timeout, never as a panic here;
//! valid files open unless they need a password (`DOCUMENT_ENCRYPTED`).

#[path = "../../../tests/support/skipping.rs"]
mod skipping;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docpipe_core::{ErrorCode, MediaType, Ocr};
use docpipe_pdf::worker::{PdfTextOcr, WorkerCommand};

const TIMEOUT: Duration = Duration::from_secs(10);

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if dir.join("data").is_dir() {
        Some(dir)
    } else {
        skipping::skip(&format!("the shared data set at {}", dir.display()));
        None
    }
}

fn ocr() -> PdfTextOcr {
    PdfTextOcr::new(WorkerCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_docpipe-worker")),
        args: Vec::new(),
    })
    .with_timeout(TIMEOUT)
}

fn pdfs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "pdf"));
    v.sort();
    v
}

struct Outcome {
    name: String,
    result: Result<usize, (ErrorCode, String)>,
    elapsed: Duration,
}

/// Runs every file through the worker, concurrently (the port bounds the workers).
async fn run_all(ocr: Arc<PdfTextOcr>, files: Vec<PathBuf>) -> Vec<Outcome> {
    let mut tasks = tokio::task::JoinSet::new();
    for f in files {
        let ocr = ocr.clone();
        tasks.spawn(async move {
            let bytes = std::fs::read(&f).unwrap_or_default();
            let start = Instant::now();
            let result = ocr
                .recognize(bytes, MediaType::Pdf)
                .await
                .map(|d| d.word_count())
                .map_err(|e| (e.code, e.message));
            Outcome {
                name: f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                result,
                elapsed: start.elapsed(),
            }
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r.expect("no panic in the parent"));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn report(outcomes: &[Outcome]) {
    for o in outcomes {
        match &o.result {
            Ok(words) => println!("{:<45} ok, {words} words, {:?}", o.name, o.elapsed),
            Err((code, m)) => println!("{:<45} {code}: {m} ({:?})", o.name, o.elapsed),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_end_cleanly() {
    let Some(shared) = shared() else { return };
    let mut files = pdfs(&shared.join("data/robustness/qpdf/qtest"));
    files.extend(pdfs(&shared.join("data/invoices/zugferd/fail")));
    assert!(!files.is_empty());
    let outcomes = run_all(Arc::new(ocr()), files).await;
    report(&outcomes);
    for o in &outcomes {
        if let Err((code, _)) = &o.result {
            assert_eq!(*code, ErrorCode::DocumentUnreadable, "{}", o.name);
        }
        assert!(
            o.elapsed < TIMEOUT + Duration::from_secs(5),
            "{} took {:?}",
            o.name,
            o.elapsed
        );
    }
    let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
    println!(
        "{ok}/{} hostile or broken files gave a document",
        outcomes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_pdfs_open_unless_they_need_a_password() {
    let Some(shared) = shared() else { return };
    let root = shared.join("data/robustness/valid-pdfs");
    let mut files = Vec::new();
    for d in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        files.extend(pdfs(&d.path()));
    }
    files.sort();
    assert!(!files.is_empty());
    let outcomes = run_all(Arc::new(ocr()), files).await;
    report(&outcomes);
    let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
    println!("{ok}/{} valid PDFs extracted", outcomes.len());
    // Every file opens but the one whose user password is not empty.
    for o in &outcomes {
        match &o.result {
            Ok(_) => {}
            Err((code, m)) if o.name == "libreoffice-writer-password.pdf" => {
                assert_eq!(*code, ErrorCode::DocumentEncrypted, "{}: {m}", o.name);
            }
            Err((code, m)) => panic!("{}: {code}: {m}", o.name),
        }
    }
}

#[tokio::test]
async fn failures_map_to_error_codes() {
    // Raster images are not this engine's job.
    let err = ocr()
        .recognize(vec![0x89, b'P'], MediaType::Png)
        .await
        .expect_err("png");
    assert_eq!(err.code, ErrorCode::UnsupportedDocument);
    // Garbage: the worker answers with an error reply.
    let err = ocr()
        .recognize(b"not a pdf".to_vec(), MediaType::Pdf)
        .await
        .expect_err("garbage");
    assert_eq!(err.code, ErrorCode::DocumentUnreadable);
    // A worker that cannot start is a service problem, retried by the state machine.
    let missing = PdfTextOcr::new(WorkerCommand {
        program: PathBuf::from("/nonexistent/docpipe-worker"),
        args: Vec::new(),
    });
    let err = missing
        .recognize(b"%PDF-1.4".to_vec(), MediaType::Pdf)
        .await
        .expect_err("spawn");
    assert_eq!(err.code, ErrorCode::ServiceUnavailable);
    // A worker that hangs is stopped at the timeout.
    let hang = PdfTextOcr::new(WorkerCommand {
        program: PathBuf::from("/bin/sleep"),
        args: vec!["30".into()],
    })
    .with_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let err = hang
        .recognize(b"%PDF-1.4".to_vec(), MediaType::Pdf)
        .await
        .expect_err("timeout");
    assert_eq!(err.code, ErrorCode::DocumentUnreadable);
    assert!(err.message.contains("longer than"), "{}", err.message);
    assert!(start.elapsed() < Duration::from_secs(5));
    // A worker that prints nonsense gives a malformed-reply error.
    let echo = PdfTextOcr::new(WorkerCommand {
        program: PathBuf::from("/bin/echo"),
        args: vec!["{nonsense".into()],
    });
    let err = echo
        .recognize(b"%PDF-1.4".to_vec(), MediaType::Pdf)
        .await
        .expect_err("malformed");
    assert_eq!(err.code, ErrorCode::DocumentUnreadable);
    // A worker that floods stdout with something that is not a reply frame.
    let flood = PdfTextOcr::new(WorkerCommand {
        program: PathBuf::from("/usr/bin/yes"),
        args: Vec::new(),
    });
    let err = flood
        .recognize(b"%PDF-1.4".to_vec(), MediaType::Pdf)
        .await
        .expect_err("flood");
    assert_eq!(err.code, ErrorCode::DocumentUnreadable);
    assert!(err.message.contains("malformed"), "{}", err.message);
    // A reply frame announcing more than the output cap is refused at once, not read to
    // the end or waited out.
    let oversized = PdfTextOcr::new(WorkerCommand {
        program: PathBuf::from("/bin/sh"),
        args: vec![
            "-c".into(),
            r"printf 'dpw1\377\377\377\177'; exec cat /dev/zero".into(),
        ],
    })
    .with_max_output_bytes(1024 * 1024);
    let start = Instant::now();
    let err = oversized
        .recognize(b"%PDF-1.4".to_vec(), MediaType::Pdf)
        .await
        .expect_err("oversized");
    assert_eq!(err.code, ErrorCode::DocumentUnreadable);
    assert!(err.message.contains("larger than"), "{}", err.message);
    assert!(start.elapsed() < Duration::from_secs(5));
    // A worker killed by a signal.
    let killed = PdfTextOcr::new(WorkerCommand {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), "kill -9 $$".into()],
    });
    let err = killed
        .recognize(b"%PDF-1.4".to_vec(), MediaType::Pdf)
        .await
        .expect_err("killed");
    assert_eq!(err.code, ErrorCode::DocumentUnreadable);
    assert!(err.message.contains("killed"), "{}", err.message);
}

#[tokio::test]
async fn a_real_invoice_round_trips_through_the_worker() {
    let Some(shared) = shared() else { return };
    let bytes =
        std::fs::read(shared.join("data/invoices/zugferd/fx/EN16931_Einfach.pdf")).expect("read");
    let doc = ocr()
        .recognize(bytes.clone(), MediaType::Pdf)
        .await
        .expect("document");
    let direct = docpipe_pdf::extract_document(&bytes, &Default::default()).expect("direct");
    assert_eq!(doc, direct);
    assert!(doc.text().contains("Zahlbetrag 529,87"));
}
