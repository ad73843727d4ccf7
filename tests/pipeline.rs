//! The embedded pipeline through the real state machine, with faults injected at the OCR
//! port: retries and timeouts on virtual time, cancellation, and the definition in use.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use common::{Harness, fixture, pdf_ocr};
use docpipe_asl::clock::VirtualClock;
use docpipe_core::ports::Result;
use docpipe_core::stages::Stage;
use docpipe_core::{
    Clock, Document, ErrorCode, JobId, JobPatch, JobStatus, JobStore, MediaType, Ocr, StageError,
};
use docpipe_local::embedded::{Content, PIPELINE_DEFINITION, Submission};
use docpipe_local::sqlite::ExecutionState;
use docpipe_pdf::{PdfLimits, extract_document};
use serde_json::Value;

fn virtual_clock() -> Arc<VirtualClock> {
    Arc::new(VirtualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 31, 9, 0, 0)
            .single()
            .expect("valid"),
    ))
}

/// The PDF text layer in-process (trusted fixtures only), so no child process I/O lets
/// the paused runtime jump its timers.
fn parse(bytes: &[u8]) -> Result<Document> {
    extract_document(bytes, &PdfLimits::default())
        .map_err(|e| StageError::new(ErrorCode::DocumentUnreadable, e.to_string()))
}

/// Fails with a transient error `failures` times, then reads the text layer.
struct FlakyOcr {
    failures: u32,
    calls: AtomicU32,
}

#[async_trait]
impl Ocr for FlakyOcr {
    async fn recognize(&self, bytes: Vec<u8>, _: MediaType) -> Result<Document> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return Err(StageError::unavailable("OCR engine busy"));
        }
        parse(&bytes)
    }
}

/// Takes `delay` of clock time before answering.
struct SlowOcr {
    clock: Arc<dyn Clock>,
    delay: Duration,
}

#[async_trait]
impl Ocr for SlowOcr {
    async fn recognize(&self, bytes: Vec<u8>, _: MediaType) -> Result<Document> {
        self.clock.sleep(self.delay).await;
        parse(&bytes)
    }
}

/// Cancels the job (as a client's DELETE would) while its OCR runs.
struct CancellingOcr {
    jobs: std::sync::Mutex<Option<(Arc<dyn JobStore>, JobId)>>,
}

#[async_trait]
impl Ocr for CancellingOcr {
    async fn recognize(&self, bytes: Vec<u8>, _: MediaType) -> Result<Document> {
        let target = self.jobs.lock().expect("lock").clone();
        if let Some((store, id)) = target {
            store
                .transition(&id, JobStatus::Cancelled, JobPatch::default(), Utc::now())
                .await?;
        }
        parse(&bytes)
    }
}

async fn submit_fixture(h: &Harness, rel: &str) -> JobId {
    h.pipeline
        .submit_file(&fixture(rel), docpipe_core::DocumentKind::Invoice)
        .await
        .expect("submitted")
        .id
}

fn event_types(history: &Value) -> Vec<String> {
    history
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_embedded_definition_is_the_shipped_file() {
    let file = std::fs::read_to_string(common::repo_root().join("statemachine/pipeline.asl.json"))
        .expect("definition");
    assert_eq!(PIPELINE_DEFINITION, file);
}

#[tokio::test(start_paused = true)]
async fn transient_ocr_errors_are_retried_with_backoff_on_virtual_time() {
    let clock = virtual_clock();
    let ocr = Arc::new(FlakyOcr {
        failures: 3,
        calls: AtomicU32::new(0),
    });
    let h = Harness::new(ocr.clone(), clock.clone());
    let id = submit_fixture(&h, "invoices/EN16931_Einfach.pdf").await;
    let started = clock.now();
    let wall = std::time::Instant::now();
    let rec = h.pipeline.execute(&id).await.expect("executes");
    assert_eq!(rec.status, ExecutionState::Succeeded, "{rec:#?}");
    assert_eq!(ocr.calls.load(Ordering::SeqCst), 4);
    // 1 + 2 + 4 seconds of backoff, on the virtual clock.
    let waited = clock.now() - started;
    assert!(waited >= chrono::Duration::seconds(7), "{waited}");
    assert!(wall.elapsed() < Duration::from_secs(5));
    let types = event_types(&rec.history);
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "LambdaFunctionFailed")
            .count(),
        3
    );
    let job = h.pipeline.job(&id).await.expect("job");
    assert!(job.status == JobStatus::Completed || job.status == JobStatus::NeedsReview);
}

#[tokio::test(start_paused = true)]
async fn a_dependency_that_stays_down_fails_the_job_after_four_retries() {
    let clock = virtual_clock();
    let ocr = Arc::new(FlakyOcr {
        failures: u32::MAX,
        calls: AtomicU32::new(0),
    });
    let h = Harness::new(ocr.clone(), clock.clone());
    let id = submit_fixture(&h, "invoices/EN16931_Einfach.pdf").await;
    let started = clock.now();
    let rec = h.pipeline.execute(&id).await.expect("executes");
    assert_eq!(rec.status, ExecutionState::Failed);
    assert_eq!(rec.error.as_deref(), Some("DocPipe.Transient"));
    assert_eq!(ocr.calls.load(Ordering::SeqCst), 5, "1 try + 4 retries");
    assert!(clock.now() - started >= chrono::Duration::seconds(15));
    let job = h.pipeline.job(&id).await.expect("job");
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.error.expect("error").code,
        ErrorCode::ServiceUnavailable
    );
}

#[tokio::test(start_paused = true)]
async fn a_stage_past_its_timeout_fails_the_job() {
    let clock = virtual_clock();
    let ocr = Arc::new(SlowOcr {
        clock: clock.clone(),
        delay: Duration::from_secs(3600),
    });
    let h = Harness::new(ocr, clock.clone());
    let id = submit_fixture(&h, "invoices/EN16931_Einfach.pdf").await;
    let rec = h.pipeline.execute(&id).await.expect("executes");
    assert_eq!(rec.status, ExecutionState::Failed);
    assert_eq!(rec.error.as_deref(), Some("States.Timeout"));
    assert!(event_types(&rec.history).contains(&"LambdaFunctionTimedOut".to_owned()));
    let job = h.pipeline.job(&id).await.expect("job");
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.expect("error").code, ErrorCode::StageTimeout);
}

#[tokio::test]
async fn a_job_cancelled_mid_pipeline_stops_and_is_never_resumed() {
    let ocr = Arc::new(CancellingOcr {
        jobs: std::sync::Mutex::new(None),
    });
    let h = Harness::new(ocr.clone(), Arc::new(docpipe_asl::clock::SystemClock));
    let id = submit_fixture(&h, "invoices/EN16931_Einfach.pdf").await;
    *ocr.jobs.lock().expect("lock") = Some((h.pipeline.ports().jobs.clone(), id.clone()));
    let rec = h.pipeline.execute(&id).await.expect("executes");
    assert_eq!(rec.status, ExecutionState::Failed);
    assert_eq!(rec.error.as_deref(), Some("DocPipe.Cancelled"));
    let job = h.pipeline.job(&id).await.expect("job");
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(
        job.error.is_none(),
        "a cancellation is not recorded as a failure"
    );
    assert!(job.keys.result.is_none());
    // Running it again does not resume it: the execution name is taken.
    assert!(h.pipeline.execute(&id).await.is_err());
    assert_eq!(
        h.pipeline.job(&id).await.expect("job").status,
        JobStatus::Cancelled
    );
}

#[tokio::test]
async fn a_job_runs_through_every_stage_with_the_real_worker() {
    let h = Harness::new(pdf_ocr(), Arc::new(docpipe_asl::clock::SystemClock));
    let id = submit_fixture(&h, "invoices/EN16931_Einfach.pdf").await;
    let rec = h.pipeline.execute(&id).await.expect("executes");
    assert_eq!(rec.status, ExecutionState::Succeeded);
    let job = h.pipeline.job(&id).await.expect("job");
    let keys = &job.keys;
    let upload = keys.upload.as_ref().expect("upload key");
    assert_eq!(
        docpipe_core::ObjectStore::size(h.pipeline.objects(), upload)
            .await
            .expect("size"),
        None,
        "the upload moved into documents/"
    );
    let doc = keys.document.as_ref().expect("document key");
    assert!(doc.as_str().starts_with(&format!("documents/{id}/")));
    assert!(keys.ocr.is_some() && keys.extraction.is_some() && keys.result.is_some());
    assert_eq!(job.media_type, Some(MediaType::Pdf));
    assert!(job.cost.pages >= 1);
    for stage in [
        Stage::Ingest,
        Stage::Ocr,
        Stage::Extract,
        Stage::Verify,
        Stage::Finalize,
    ] {
        assert!(job.cost.stage_ms.contains_key(&stage), "{stage:?} timed");
    }
    let result = h
        .pipeline
        .result(&job)
        .await
        .expect("read")
        .expect("result");
    assert_eq!(result.value("invoice_number"), Some("471102"));
    // The execution's output is finalize's: small, pointers only.
    let output = rec.output.expect("output");
    assert_eq!(output["job_id"], id.as_str());
    assert!(output.to_string().len() < 1024);
}

#[tokio::test]
async fn an_oversized_submission_is_never_stored() {
    let h = Harness::new(pdf_ocr(), Arc::new(docpipe_asl::clock::SystemClock));
    let job = h
        .pipeline
        .submit(Submission {
            filename: "../../huge.pdf".into(),
            kind: docpipe_core::DocumentKind::Invoice,
            content: Content::Oversize(60 * 1024 * 1024),
            owner: None,
            correlation_id: Some("req-1".into()),
        })
        .await
        .expect("submitted");
    assert_eq!(job.filename, "huge.pdf", "no path traversal in names");
    assert!(job.keys.upload.is_none());
    h.pipeline.execute(&job.id).await.expect("executes");
    let job = h.pipeline.job(&job.id).await.expect("job");
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.expect("error").code, ErrorCode::FileTooLarge);
}

#[tokio::test(start_paused = true)]
async fn identical_content_reuses_a_finished_jobs_result_within_its_ttl() {
    let clock = virtual_clock();
    let ocr = Arc::new(FlakyOcr {
        failures: 0,
        calls: AtomicU32::new(0),
    });
    let h = Harness::with_settings(
        ocr.clone(),
        Arc::new(docpipe_invoice::RuleExtractor::default()),
        clock.clone(),
        docpipe_core::ports::StageSettings {
            dedupe_ttl_secs: 3600,
            dedupe_profile: "test profile".into(),
            ..docpipe_core::ports::StageSettings::default()
        },
    );
    let run = |rel: &'static str| {
        let h = &h;
        async move {
            let id = submit_fixture(h, rel).await;
            let rec = h.pipeline.execute(&id).await.expect("executes");
            assert_eq!(rec.status, ExecutionState::Succeeded, "{rec:#?}");
            let job = h.pipeline.job(&id).await.expect("job");
            let result = h.pipeline.result_json(&job).await.expect("read");
            (job, result.expect("a result"), rec)
        }
    };
    let (first, first_result, _) = run("invoices/EN16931_Einfach.pdf").await;
    assert_eq!(first.deduplicated_from, None);
    assert_eq!(ocr.calls.load(Ordering::SeqCst), 1);

    // The same bytes again: no OCR, no extraction, the first job's result and verdict.
    let (second, second_result, rec) = run("invoices/EN16931_Einfach.pdf").await;
    assert_eq!(ocr.calls.load(Ordering::SeqCst), 1, "OCR skipped");
    assert_eq!(second.deduplicated_from.as_ref(), Some(&first.id));
    assert_eq!(second.status, first.status);
    assert_eq!(second_result, first_result);
    assert_ne!(second.keys.result, first.keys.result, "its own copy");
    let history = h
        .pipeline
        .store()
        .history(&second.id)
        .await
        .expect("history");
    let statuses: Vec<_> = history.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        vec![JobStatus::Queued, JobStatus::Ingesting, second.status]
    );
    let types = event_types(&rec.history);
    let tasks = rec.history.as_array().expect("events").iter().filter(|e| {
        e["type"] == "TaskStateEntered"
            && e["stateEnteredEventDetails"]["name"]
                .as_str()
                .is_some_and(|n| ["Ocr", "Extract", "Verify"].contains(&n))
    });
    assert_eq!(tasks.count(), 0, "{types:?}");

    // Other bytes are never given that result.
    let (other, _, _) = run("invoices/EN16931_Gutschrift.pdf").await;
    assert_eq!(other.deduplicated_from, None);
    assert_eq!(ocr.calls.load(Ordering::SeqCst), 2);

    // Past the TTL the same bytes are processed in full again.
    tokio::time::advance(Duration::from_secs(3601)).await;
    let (late, _, _) = run("invoices/EN16931_Einfach.pdf").await;
    assert_eq!(late.deduplicated_from, None);
    assert_eq!(ocr.calls.load(Ordering::SeqCst), 3);
}

/// Never answers, and says when it was asked: the process "dies" with the OCR in flight.
struct HangingOcr {
    entered: tokio::sync::mpsc::UnboundedSender<()>,
}

#[async_trait]
impl Ocr for HangingOcr {
    async fn recognize(&self, _: Vec<u8>, _: MediaType) -> Result<Document> {
        let _ = self.entered.send(());
        std::future::pending().await
    }
}

/// Reads the text layer and counts the documents it was given.
#[derive(Default)]
struct CountingOcr {
    calls: AtomicU32,
}

#[async_trait]
impl Ocr for CountingOcr {
    async fn recognize(&self, bytes: Vec<u8>, _: MediaType) -> Result<Document> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        parse(&bytes)
    }
}

fn open_home(home: &std::path::Path, ocr: Arc<dyn Ocr>) -> docpipe_local::embedded::Embedded {
    docpipe_local::embedded::Embedded::open(docpipe_local::embedded::EmbeddedOptions {
        home: home.to_path_buf(),
        settings: docpipe_core::ports::StageSettings::default(),
        ocr,
        extractor: Arc::new(docpipe_invoice::RuleExtractor::default()),
        fetcher: Arc::new(docpipe_fetch::HttpFetcher::default()),
        clock: Arc::new(docpipe_asl::clock::SystemClock),
    })
    .expect("pipeline opens")
}

/// After a crash, recovery is one ordered pass: executions the journal holds resume,
/// queued jobs start, a job that was running without a journal fails with the reason, and
/// no job ever has two executions at once (each ends with one execution whose status
/// matches the job's).
#[tokio::test]
async fn recovery_runs_each_job_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let pdf = fixture("invoices/EN16931_Einfach.pdf");
    let (entered, mut entered_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut journaled = Vec::new();
    let mut queued = Vec::new();
    let orphan;
    {
        let crashed = open_home(&home, Arc::new(HangingOcr { entered }));
        let mut running = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let job = crashed
                .submit_file(&pdf, docpipe_core::DocumentKind::Invoice)
                .await
                .expect("submitted");
            journaled.push(job.id.clone());
            let p = crashed.clone();
            running.spawn(async move { p.execute(&job.id).await });
        }
        for _ in 0..3 {
            entered_rx.recv().await.expect("an OCR call");
        }
        for _ in 0..3 {
            let job = crashed
                .submit_file(&pdf, docpipe_core::DocumentKind::Invoice)
                .await
                .expect("submitted");
            queued.push(job.id);
        }
        // Running by the store's account, with no journal (an edited database).
        let job = crashed
            .submit_file(&pdf, docpipe_core::DocumentKind::Invoice)
            .await
            .expect("submitted");
        crashed
            .store()
            .transition(
                &job.id,
                JobStatus::Ingesting,
                JobPatch::default(),
                Utc::now(),
            )
            .await
            .expect("moved");
        orphan = job.id;
        // The crash: every execution stops where it is.
        running.abort_all();
        while running.join_next().await.is_some() {}
    }

    let ocr = Arc::new(CountingOcr::default());
    let pipeline = open_home(&home, ocr.clone());
    let pool = docpipe_local::orchestrator::EmbeddedOrchestrator::start(
        pipeline.clone(),
        docpipe_local::orchestrator::PoolOptions {
            workers: 4,
            queue: 2,
        },
    );
    let found = pool.recover().await.expect("recovers");
    assert_eq!(found, 7, "three journaled, three queued, one orphan");
    let all: Vec<JobId> = journaled
        .iter()
        .chain(&queued)
        .chain([&orphan])
        .cloned()
        .collect();
    for _ in 0..3000 {
        let mut done = true;
        for id in &all {
            done &= pipeline.job(id).await.expect("job").status.is_final();
        }
        if done && pool.running() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A second start of a finished job is refused, and changes nothing.
    assert!(pipeline.execute(&journaled[0]).await.is_err());

    for id in journaled.iter().chain(&queued) {
        let job = pipeline.job(id).await.expect("job");
        assert_eq!(job.status, JobStatus::Completed, "{id}: {:?}", job.error);
        let rec = pipeline
            .store()
            .execution(id.as_str())
            .await
            .expect("read")
            .expect("an execution record");
        assert_eq!(
            rec.status,
            ExecutionState::Succeeded,
            "{id}: {:?}",
            rec.cause
        );
        let history = pipeline.store().history(id).await.expect("history");
        let finals = history.iter().filter(|c| c.status.is_final()).count();
        assert_eq!(finals, 1, "{id}: {history:?}");
        let ocr_entries = history
            .iter()
            .filter(|c| c.status == JobStatus::Ocr)
            .count();
        assert_eq!(ocr_entries, 1, "{id}: {history:?}");
    }
    assert_eq!(
        ocr.calls.load(Ordering::SeqCst),
        6,
        "each document read once after the restart"
    );
    let job = pipeline.job(&orphan).await.expect("job");
    assert_eq!(job.status, JobStatus::Failed);
    let error = job.error.expect("a reason");
    assert!(error.message.contains("no execution journal"), "{error:?}");
    assert!(
        pipeline.unfinished().await.expect("journal").is_empty(),
        "nothing left to resume"
    );
}

/// A process that died after journaling an execution's end but before recording it left
/// the record RUNNING; the next start records the outcome from the journal, runs nothing
/// again, and only then prunes the journal.
#[tokio::test]
async fn an_outcome_journaled_but_not_recorded_is_recorded_on_restart() {
    let h = Harness::new(pdf_ocr(), Arc::new(docpipe_asl::clock::SystemClock));
    let id = submit_fixture(&h, "invoices/EN16931_Einfach.pdf").await;
    let done = h.pipeline.execute(&id).await.expect("executes");
    assert_eq!(done.status, ExecutionState::Succeeded);
    let mut crashed = done.clone();
    crashed.status = ExecutionState::Running;
    crashed.stopped_at = None;
    crashed.output = None;
    crashed.history = Value::Array(Vec::new());
    h.pipeline
        .store()
        .put_execution(&crashed)
        .await
        .expect("stored");

    let pool = docpipe_local::orchestrator::EmbeddedOrchestrator::start(
        h.pipeline.clone(),
        docpipe_local::orchestrator::PoolOptions {
            workers: 1,
            queue: 1,
        },
    );
    assert_eq!(
        pool.recover().await.expect("recovers"),
        0,
        "nothing runs again"
    );
    let rec = h
        .pipeline
        .store()
        .execution(&done.name)
        .await
        .expect("read")
        .expect("record");
    assert_eq!(rec.status, ExecutionState::Succeeded);
    assert_eq!(rec.output, done.output);
    assert_eq!(
        event_types(&rec.history),
        event_types(&done.history),
        "the history comes back from the journal"
    );
}

/// Finalize invoked again after it finished the job (a process that died before the
/// task's result was journaled) answers as the first call did; a finalize that would
/// change a finished job is still refused.
#[tokio::test]
async fn finalize_invoked_again_after_it_finished_the_job_is_a_no_op() {
    let h = Harness::new(pdf_ocr(), Arc::new(docpipe_asl::clock::SystemClock));
    let id = submit_fixture(&h, "invoices/EN16931_Einfach.pdf").await;
    let rec = h.pipeline.execute(&id).await.expect("executes");
    assert_eq!(rec.status, ExecutionState::Succeeded);
    let job = h.pipeline.job(&id).await.expect("job");
    let input = |outcome: JobStatus| {
        serde_json::json!({
            "job_id": id.as_str(),
            "verification": {
                "key": format!("results/{id}/verified.json"),
                "needs_review": outcome == JobStatus::NeedsReview,
                "review_reasons": []
            },
            "outcome": outcome,
        })
    };
    let ports = h.pipeline.ports();
    let again = docpipe_core::stages::invoke(ports, Stage::Finalize, input(job.status))
        .await
        .expect("a repeat is answered");
    assert_eq!(again["status"], serde_json::json!(job.status));
    let other = match job.status {
        JobStatus::Completed => JobStatus::NeedsReview,
        _ => JobStatus::Completed,
    };
    let err = docpipe_core::stages::invoke(ports, Stage::Finalize, input(other))
        .await
        .expect_err("a finished job keeps its outcome");
    assert_eq!(err.code, docpipe_core::ErrorCode::JobAlreadyCompleted);
    assert_eq!(h.pipeline.job(&id).await.expect("job").status, job.status);
}

/// An ingest that moved the upload to the document's key and stopped before recording it
/// (a process killed between the two) is repeated from the moved document: the job runs
/// to its end with the same document.
#[tokio::test]
async fn an_ingest_repeated_after_the_upload_moved_finds_the_document() {
    use docpipe_core::ObjectStore;
    let h = Harness::new(pdf_ocr(), Arc::new(docpipe_asl::clock::SystemClock));
    let id = submit_fixture(&h, "invoices/EN16931_Einfach.pdf").await;
    let job = h.pipeline.job(&id).await.expect("job");
    let upload = job.keys.upload.clone().expect("upload key");
    let objects = h.pipeline.objects();
    let bytes = objects.get(&upload).await.expect("read").expect("uploaded");
    let document = docpipe_core::ObjectKey::for_job("documents", &id, &job.filename);
    objects
        .relocate(&upload, &document, bytes.clone())
        .await
        .expect("moved");

    let rec = h.pipeline.execute(&id).await.expect("executes");
    assert_eq!(rec.status, ExecutionState::Succeeded);
    let job = h.pipeline.job(&id).await.expect("job");
    assert!(
        job.status.is_final() && job.status != JobStatus::Failed,
        "{job:?}"
    );
    assert_eq!(job.keys.document.as_ref(), Some(&document));
    assert_eq!(job.size_bytes, Some(bytes.len() as u64));
    assert_eq!(objects.get(&document).await.expect("read"), Some(bytes));
}
