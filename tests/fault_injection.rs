//! Fault injection through the real definition on virtual time: transient faults are
//! retried to completion, permanent ones fail the job with their code, and the execution
//! histories show exactly the faults the seed predicts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{Harness, fixture};
use docpipe_asl::clock::VirtualClock;
use docpipe_core::ports::Result;
use docpipe_core::stages::Stage;
use docpipe_core::{Clock, Document, DocumentKind, ErrorCode, JobStatus, MediaType, Ocr};
use docpipe_invoice::RuleExtractor;
use docpipe_local::embedded::Embedded;
use docpipe_local::faults::{FaultInjection, FaultMode, TRANSIENT_MAX_CONSECUTIVE};
use docpipe_local::sqlite::ExecutionState;
use docpipe_pdf::{PdfLimits, extract_document};
use serde_json::Value;

const BATCH: usize = 30;
const INVOICE_STAGES: [Stage; 5] = [
    Stage::Ingest,
    Stage::Ocr,
    Stage::Extract,
    Stage::Verify,
    Stage::Finalize,
];

/// The PDF text layer in-process (a trusted fixture), so no child process lets the paused
/// runtime jump its timers.
struct InProcessOcr;

#[async_trait::async_trait]
impl Ocr for InProcessOcr {
    async fn recognize(&self, bytes: Vec<u8>, _: MediaType) -> Result<Document> {
        extract_document(&bytes, &PdfLimits::default()).map_err(|e| {
            docpipe_core::StageError::new(ErrorCode::DocumentUnreadable, e.to_string())
        })
    }
}

fn harness(clock: Arc<VirtualClock>) -> Harness {
    // Dedupe off (the default settings): every job runs every stage.
    Harness::with(
        Arc::new(InProcessOcr),
        Arc::new(RuleExtractor::default()),
        clock,
    )
}

fn virtual_clock() -> Arc<VirtualClock> {
    Arc::new(VirtualClock::new(
        Utc.with_ymd_and_hms(2026, 2, 1, 8, 0, 0)
            .single()
            .expect("valid"),
    ))
}

/// Submits and runs `BATCH` jobs at once; their ids with execution histories.
async fn run_batch(pipeline: &Embedded) -> Vec<(docpipe_core::JobId, ExecutionState, Value)> {
    let mut ids = Vec::new();
    for _ in 0..BATCH {
        let job = pipeline
            .submit_file(
                &fixture("invoices/EN16931_Einfach.pdf"),
                DocumentKind::Invoice,
            )
            .await
            .expect("submitted");
        ids.push(job.id);
    }
    let mut set = tokio::task::JoinSet::new();
    for id in ids {
        let p = pipeline.clone();
        set.spawn(async move {
            let rec = p.execute(&id).await.expect("executes");
            (id, rec.status, rec.history)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("joined"));
    }
    out
}

fn events<'a>(history: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    history
        .as_array()
        .expect("events")
        .iter()
        .filter(move |e| e["type"] == kind)
}

/// Faults the seed puts in front of one stage of one job: the leading tries that draw a
/// fault, at most the transient cap.
fn predicted_transient(f: &FaultInjection, job: &str, stage: Stage) -> u32 {
    (0..TRANSIENT_MAX_CONSECUTIVE)
        .take_while(|a| f.strikes(job, stage, *a))
        .count() as u32
}

#[tokio::test(start_paused = true)]
async fn transient_faults_at_p_0_3_are_all_retried_to_completion() {
    let clock = virtual_clock();
    let faults = FaultInjection {
        probability: 0.3,
        mode: FaultMode::Transient,
        seed: 20260201,
    };
    let h = harness(clock.clone());
    let pipeline = h.pipeline.clone().with_fault_injection(faults);
    let started = clock.now();
    let wall = std::time::Instant::now();
    let runs = run_batch(&pipeline).await;

    let mut injected = 0;
    let mut retried_jobs = 0;
    for (id, status, history) in &runs {
        assert_eq!(*status, ExecutionState::Succeeded, "{id}: {history:#}");
        let job = pipeline.job(id).await.expect("job");
        assert!(
            matches!(job.status, JobStatus::Completed | JobStatus::NeedsReview),
            "{id} ended {}",
            job.status
        );
        let failed: Vec<&Value> = events(history, "LambdaFunctionFailed").collect();
        for e in &failed {
            let d = &e["lambdaFunctionFailedEventDetails"];
            assert_eq!(d["error"], "DocPipe.Transient", "{e:#}");
            assert!(
                d["cause"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("injected transient fault"),
                "{e:#}"
            );
        }
        let predicted: u32 = INVOICE_STAGES
            .iter()
            .map(|s| predicted_transient(&faults, id.as_str(), *s))
            .sum();
        assert_eq!(failed.len() as u32, predicted, "{id}: the seed's faults");
        // Every fault is followed by one more try of the same Task.
        let scheduled = events(history, "LambdaFunctionScheduled").count();
        assert_eq!(scheduled, INVOICE_STAGES.len() + failed.len(), "{id}");
        injected += failed.len();
        retried_jobs += usize::from(!failed.is_empty());
    }
    // About 30% of 150 stage calls meet a first fault: the batch really was exercised.
    assert!(injected >= 20, "only {injected} faults injected");
    assert!(retried_jobs >= BATCH / 2, "{retried_jobs} jobs retried");
    // Backoff ran on the virtual clock (1 s at least for any retry), not the wall clock.
    assert!(clock.now() - started >= chrono::Duration::seconds(1));
    assert!(wall.elapsed() < Duration::from_secs(60));
    eprintln!(
        "transient p=0.3: {BATCH}/{BATCH} jobs finished, {injected} faults retried in {retried_jobs} jobs, \
         {} s of virtual backoff",
        (clock.now() - started).num_seconds()
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_fault_fails_every_job_with_its_code_and_no_retry() {
    let clock = virtual_clock();
    let faults = FaultInjection {
        probability: 1.0,
        mode: FaultMode::Permanent,
        seed: 1,
    };
    let h = harness(clock.clone());
    let pipeline = h.pipeline.clone().with_fault_injection(faults);
    let runs = run_batch(&pipeline).await;
    for (id, status, history) in &runs {
        assert_eq!(*status, ExecutionState::Failed, "{id}");
        let job = pipeline.job(id).await.expect("job");
        assert_eq!(job.status, JobStatus::Failed);
        let error = job.error.expect("an error");
        assert_eq!(error.code, ErrorCode::InternalError);
        assert!(error.message.contains("injected permanent fault in ingest"));
        // Ingest tried once, then record_failure: no retry of a permanent fault.
        let scheduled = events(history, "LambdaFunctionScheduled").count();
        assert_eq!(scheduled, 2, "{history:#}");
        let failed: Vec<&Value> = events(history, "LambdaFunctionFailed").collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(
            failed[0]["lambdaFunctionFailedEventDetails"]["error"],
            "DocPipe.Internal"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn permanent_faults_at_p_0_3_fail_exactly_the_jobs_the_seed_picks() {
    let clock = virtual_clock();
    let faults = FaultInjection {
        probability: 0.3,
        mode: FaultMode::Permanent,
        seed: 99,
    };
    let h = harness(clock.clone());
    let pipeline = h.pipeline.clone().with_fault_injection(faults);
    let runs = run_batch(&pipeline).await;
    let mut failed_jobs = 0;
    for (id, _, _) in &runs {
        let job = pipeline.job(id).await.expect("job");
        let first = INVOICE_STAGES
            .iter()
            .find(|s| faults.strikes(id.as_str(), **s, 0));
        match first {
            Some(stage) => {
                failed_jobs += 1;
                assert_eq!(job.status, JobStatus::Failed, "{id}");
                let error = job.error.expect("an error");
                assert_eq!(error.code, ErrorCode::InternalError);
                assert!(
                    error.message.contains(&format!("in {stage}")),
                    "{}",
                    error.message
                );
            }
            None => assert!(
                matches!(job.status, JobStatus::Completed | JobStatus::NeedsReview),
                "{id} ended {}",
                job.status
            ),
        }
    }
    assert!(failed_jobs > 0 && failed_jobs < BATCH, "{failed_jobs}");
}
