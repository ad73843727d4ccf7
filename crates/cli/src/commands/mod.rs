//! Subcommands and the wiring they share.

pub(crate) mod asl;
pub(crate) mod cost;
pub(crate) mod eval;
pub(crate) mod events;
pub(crate) mod floorplan;
pub(crate) mod gc;
mod http;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod watch;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use docpipe_asl::clock::SystemClock;
use docpipe_core::ports::StageSettings;
use docpipe_core::{Clock, Extractor};
use docpipe_fetch::{FetchPolicy, HttpFetcher};
use docpipe_invoice::RuleExtractor;
use docpipe_local::chat_extractor::{ChatConfig, ChatExtractor};
use docpipe_local::embedded::{Embedded, EmbeddedOptions};
use docpipe_ocr::{LayeredOcr, PdfRenderer};
use docpipe_pdf::worker::{DOCUMENTS_PER_WORKER, PdfTextOcr, WorkerCommand, WorkerLimits};
use docpipe_rooms::WithRooms;

use crate::settings::{ExtractorChoice, Settings};

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
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The worker process, when the arguments select it: parses documents from stdin under
/// its own resource limits.
pub(crate) fn worker_main() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    docpipe_pdf::worker::dispatch(&args)
}

pub(crate) fn init_logging(filter: &str) {
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
pub(crate) fn open_pipeline(settings: &Settings) -> Result<Embedded> {
    let limits = WorkerLimits {
        memory_bytes: settings.worker_memory_mib * 1024 * 1024,
        cpu_seconds: settings.worker_cpu_secs,
        ..WorkerLimits::default()
    };
    let worker = WorkerCommand::current_exe()?.with_limits(&limits);
    let text = PdfTextOcr::new(worker)
        .with_timeout(Duration::from_secs(settings.worker_timeout_secs))
        .with_documents_per_worker(DOCUMENTS_PER_WORKER);
    // Scans (images, PDF pages without text) go to Tesseract when it is installed; without
    // it they fail their job with UNSUPPORTED_DOCUMENT naming what to install.
    let ocr: Arc<dyn docpipe_core::Ocr> = Arc::new(LayeredOcr::with_tesseract(text));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (extractor, extractor_profile) = extractor(settings, &ocr, &clock)?;
    let pipeline = Embedded::open(EmbeddedOptions {
        home: settings.home.clone(),
        settings: StageSettings {
            max_document_bytes: settings.max_document_mib * 1024 * 1024,
            review_confidence_threshold: settings.review_confidence_threshold,
            dedupe_ttl_secs: settings.dedupe_ttl_secs,
            // Everything besides the bytes that shapes a result: a run with other
            // settings (or another build) never reuses this one's results.
            dedupe_profile: format!(
                "docpipe {} ({}) local; embedded_xml={}; {extractor_profile}; review<{}",
                env!("CARGO_PKG_VERSION"),
                build_identity(),
                settings.embedded_xml,
                settings.review_confidence_threshold,
            ),
        },
        ocr,
        extractor,
        fetcher: Arc::new(HttpFetcher::new(FetchPolicy {
            allowed_hosts: settings.url_allowed_hosts.clone(),
            ..FetchPolicy::default()
        })),
        clock,
    })?
    .with_fault_injection(settings.fault_injection)
    .with_document_deletion(settings.retention.delete_document_when_final);
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

/// How this host's jobs are priced: vCPU time, and the chat model's tokens when the
/// price table knows the model.
pub(crate) fn pricing_profile(settings: &Settings) -> docpipe_core::pricing::PricingProfile {
    docpipe_core::pricing::PricingProfile::local(match settings.extractor {
        ExtractorChoice::Rules => None,
        ExtractorChoice::Openai => Some(settings.llm_model.clone()),
    })
}

/// The extractor: the invoice extractor the settings choose, with the room detector for
/// blueprints whichever it is; and what of it shapes a result (for the dedupe profile;
/// never the API key).
fn extractor(
    settings: &Settings,
    ocr: &Arc<dyn docpipe_core::Ocr>,
    clock: &Arc<dyn Clock>,
) -> Result<(Arc<dyn Extractor>, String)> {
    fn with_rooms<E: Extractor + 'static>(
        invoices: E,
        ocr: &Arc<dyn docpipe_core::Ocr>,
    ) -> Arc<dyn Extractor> {
        Arc::new(
            WithRooms::new(invoices)
                .with_pdf_renderer(PdfRenderer::new("pdftoppm"))
                .with_label_ocr(Arc::clone(ocr)),
        )
    }
    Ok(match settings.extractor {
        ExtractorChoice::Rules => (
            with_rooms(
                RuleExtractor {
                    embedded_xml: settings.embedded_xml,
                },
                ocr,
            ),
            "extractor=rules".to_owned(),
        ),
        ExtractorChoice::Openai => {
            let chat = ChatExtractor::new(
                ChatConfig {
                    base_url: settings.llm_base_url.clone(),
                    model: settings.llm_model.clone(),
                    api_key: settings.llm_api_key.clone(),
                    timeout: Duration::from_secs(settings.llm_timeout_secs),
                    max_tokens: settings.llm_max_tokens,
                    embedded_xml: settings.embedded_xml,
                },
                Arc::clone(clock),
            )?;
            let profile = format!(
                "extractor=openai {} at {} max_tokens={}",
                settings.llm_model,
                chat.url(),
                settings.llm_max_tokens
            );
            (with_rooms(chat, ocr), profile)
        }
    })
}
