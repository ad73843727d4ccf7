//! The one end-to-end harness: the embedded pipeline over a temp dir, running the real
//! `statemachine/pipeline.asl.json` with the real SQLite store, filesystem object store,
//! PDF worker process (this build's `docpipe` binary) and rule extractor.

#![allow(dead_code)]

#[path = "../support/skipping.rs"]
mod skipping;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use docpipe_core::ports::StageSettings;
use docpipe_core::{Clock, Extractor, Ocr};
use docpipe_invoice::RuleExtractor;
use docpipe_local::embedded::{Embedded, EmbeddedOptions};
use docpipe_pdf::worker::{PdfTextOcr, WORKER_ARGS, WorkerCommand};

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// `../shared` beside the clone, where the team's data lives; `None` (and the caller
/// skips) when it is absent.
pub(crate) fn shared() -> Option<PathBuf> {
    let p = repo_root().join("../shared");
    if p.is_dir() {
        Some(p)
    } else {
        skipping::skip(&format!("{} is absent", p.display()));
        None
    }
}

/// The `docpipe` binary of this build.
pub(crate) fn docpipe(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_docpipe"));
    c.arg("--home").arg(home);
    c.env_remove("DOCPIPE_HOME");
    c
}

/// The parsing worker: this build's binary re-executed with `__worker`.
pub(crate) fn pdf_ocr() -> Arc<dyn Ocr> {
    let worker = WorkerCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_docpipe")),
        args: WORKER_ARGS.iter().map(Into::into).collect(),
    };
    Arc::new(PdfTextOcr::new(worker).with_timeout(Duration::from_secs(20)))
}

pub(crate) struct Harness {
    pub dir: tempfile::TempDir,
    pub pipeline: Embedded,
}

impl Harness {
    pub(crate) fn new(ocr: Arc<dyn Ocr>, clock: Arc<dyn Clock>) -> Self {
        Self::with(ocr, Arc::new(RuleExtractor::default()), clock)
    }

    pub(crate) fn with(
        ocr: Arc<dyn Ocr>,
        extractor: Arc<dyn Extractor>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_settings(ocr, extractor, clock, StageSettings::default())
    }

    pub(crate) fn with_settings(
        ocr: Arc<dyn Ocr>,
        extractor: Arc<dyn Extractor>,
        clock: Arc<dyn Clock>,
        settings: StageSettings,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = Embedded::open(EmbeddedOptions {
            home: dir.path().join("home"),
            settings,
            ocr,
            extractor,
            fetcher: Arc::new(docpipe_fetch::HttpFetcher::default()),
            clock,
        })
        .expect("pipeline opens");
        Self { dir, pipeline }
    }
}

/// Reads a `*.truth.json` gross total.
pub(crate) fn truth_gross(pdf: &Path) -> Option<String> {
    let truth = PathBuf::from(format!("{}.truth.json", pdf.display()));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(truth).ok()?).ok()?;
    v["totals"]["GrandTotalAmount"].as_str().map(str::to_owned)
}

/// Decimal equality of two amount strings ("529.87" == "529.870").
pub(crate) fn same_amount(a: &str, b: &str) -> bool {
    match (
        a.parse::<rust_decimal::Decimal>(),
        b.parse::<rust_decimal::Decimal>(),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// `docpipe keys create NAME` on a data folder, as an operator does; the new key.
pub(crate) fn create_key(home: &Path, name: &str) -> String {
    let out = docpipe(home)
        .args(["keys", "create", name])
        .output()
        .expect("keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
