//! Subcommands and the wiring they share.

pub mod asl;
pub mod eval;
pub mod floorplan;
mod http;
pub mod jobs;
pub mod keys;
pub mod run;
pub mod serve;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use docpipe_asl::clock::SystemClock;
use docpipe_core::ports::StageSettings;
use docpipe_local::embedded::{Embedded, EmbeddedOptions};
use docpipe_local::fetch::{FetchPolicy, HttpFetcher};
use docpipe_local::invoice::RuleExtractor;
use docpipe_local::ocr::{LayeredOcr, PdfRenderer};
use docpipe_local::rooms::WithRooms;
use docpipe_local::worker::{PdfTextOcr, WorkerCommand};

use crate::settings::Settings;

/// `println!` that returns the error instead of panicking: when the reader of a pipe
/// goes away (`docpipe executions history ID | head`), the write fails with a broken
/// pipe, which `main` turns into a quiet exit.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

/// Whether `e` is a write to a pipe whose reader is gone.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The worker process, when the arguments select it: parses one document from stdin
/// under its own resource limits.
pub fn worker_main() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    docpipe_local::worker::dispatch(&args)
}

pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// This binary's identity for the dedupe profile: its modification time, so a rebuilt
/// binary (changed extraction rules under the same version) never reuses an older one's
/// results.
fn build_identity() -> String {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()))
        .unwrap_or_default()
}

/// The embedded pipeline over the settings' data folder, with this binary as its
/// document-parsing worker.
pub fn open_pipeline(settings: &Settings) -> Result<Embedded> {
    let worker = WorkerCommand::current_exe()?;
    let text =
        PdfTextOcr::new(worker).with_timeout(Duration::from_secs(settings.worker_timeout_secs));
    // Scans (images, PDF pages without text) go to Tesseract when it is installed; without
    // it they fail their job with UNSUPPORTED_DOCUMENT naming what to install.
    let ocr: Arc<dyn docpipe_core::Ocr> = Arc::new(LayeredOcr::with_tesseract(text));
    let pipeline = Embedded::open(EmbeddedOptions {
        home: settings.home.clone(),
        settings: StageSettings {
            max_document_bytes: settings.max_document_mib * 1024 * 1024,
            review_confidence_threshold: settings.review_confidence_threshold,
            dedupe_ttl_secs: settings.dedupe_ttl_secs,
            // Everything besides the bytes that shapes a result: a run with other
            // settings (or another build) never reuses this one's results.
            dedupe_profile: format!(
                "docpipe {} ({}) local; embedded_xml={}; review<{}",
                env!("CARGO_PKG_VERSION"),
                build_identity(),
                settings.embedded_xml,
                settings.review_confidence_threshold,
            ),
        },
        ocr: Arc::clone(&ocr),
        extractor: Arc::new(
            WithRooms::new(RuleExtractor {
                embedded_xml: settings.embedded_xml,
            })
            .with_pdf_renderer(PdfRenderer::new("pdftoppm"))
            .with_label_ocr(ocr),
        ),
        fetcher: Arc::new(HttpFetcher::new(FetchPolicy {
            allowed_hosts: settings.url_allowed_hosts.clone(),
            ..FetchPolicy::default()
        })),
        clock: Arc::new(SystemClock),
    })?
    .with_fault_injection(settings.fault_injection);
    if settings.fault_injection.is_active() {
        let f = settings.fault_injection;
        eprintln!(
            "docpipe: fault injection is on: {} faults, probability {}, seed {}",
            f.mode.as_str(),
            f.probability,
            f.seed
        );
    }
    Ok(pipeline)
}
