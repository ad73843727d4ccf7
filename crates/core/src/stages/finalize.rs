use tracing::{debug, info, warn};

use super::{
    FinalizeInput, FinalizeOutput, RecordFailureInput, Stage, VerifyOutput, dedupe_key, elapsed_ms,
    read_json, write_json,
};
use crate::error::{ErrorCode, StageError};
use crate::ids::ObjectKey;
use crate::job::{DocumentKind, Job, JobStatus};
use crate::ports::{CachedResult, JobPatch, ObjectStore, Ports};
use crate::result::{InvoiceResult, RoomsResult, result_kind};

/// Writes the result JSON to `results/{job}/result.json` and sets the final status
/// (`completed` or `needs_review`) with the cost counters.
pub async fn finalize(ports: &Ports, input: FinalizeInput) -> Result<FinalizeOutput, StageError> {
    let start = ports.clock.now();
    if !matches!(input.outcome, JobStatus::Completed | JobStatus::NeedsReview) {
        return Err(StageError::new(
            ErrorCode::ValidationError,
            format!(
                "finalize outcome must be completed or needs_review, not {}",
                input.outcome
            ),
        ));
    }
    let verified: serde_json::Value = read_json(ports, &input.verification.key).await?;
    let key = ObjectKey::for_job("results", &input.job_id, "result.json");
    write_result(ports, &key, &input.verification.key, verified).await?;
    let moved = ports
        .jobs
        .transition(
            &input.job_id,
            input.outcome,
            JobPatch {
                result_key: Some(key.clone()),
                stage_ms: Some((Stage::Finalize, elapsed_ms(ports, start))),
                ..JobPatch::default()
            },
            ports.clock.now(),
        )
        .await;
    let job = match moved {
        Ok(job) => job,
        // Invoked again after it finished the job (at-least-once: the process died before
        // the result was journaled): the job is as this call would leave it, and this call
        // changes nothing (the first one finished the job, remembered its result and
        // dropped its document, or left that to the sweeper).
        Err(e) if e.code == ErrorCode::JobAlreadyCompleted => {
            let job = ports.jobs.get(&input.job_id).await?;
            if job.status != input.outcome || job.keys.result.as_ref() != Some(&key) {
                return Err(e);
            }
            debug!(job_id = %job.id, stage = "finalize", status = %job.status,
                   "finalize repeated after the job had finished: nothing to do");
            return Ok(FinalizeOutput {
                job_id: job.id,
                status: job.status,
                result_key: Some(key),
            });
        }
        Err(e) => return Err(e),
    };
    remember(ports, &job, &input.verification).await;
    drop_document(&*ports.objects, &job).await;
    info!(job_id = %job.id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "finalize",
          status = %job.status, pages = job.cost.pages, "job finished");
    Ok(FinalizeOutput {
        job_id: job.id,
        status: job.status,
        result_key: Some(key),
    })
}

/// Offers a finished job's result to the dedupe cache (a job that reused one does not
/// renew it). Best effort: a cache that cannot be written costs a later duplicate its
/// shortcut, never this job its result.
async fn remember(ports: &Ports, job: &Job, verification: &VerifyOutput) {
    let (Some(cache), Some(sha256)) = (ports.results.as_ref(), job.content_sha256.as_deref())
    else {
        return;
    };
    let ttl = ports.settings.dedupe_ttl_secs;
    if ttl == 0 || job.deduplicated_from.is_some() {
        return;
    }
    let key = dedupe_key(sha256, job.kind, &ports.settings.dedupe_profile);
    let entry = CachedResult {
        job_id: job.id.clone(),
        verification: verification.clone(),
    };
    let now = ports.clock.now();
    let Some(expires_at) = i64::try_from(ttl)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .and_then(|d| now.checked_add_signed(d))
    else {
        return;
    };
    if let Err(e) = cache.put(&key, &entry, now, expires_at).await {
        warn!(job_id = %job.id, error = %e, "dedupe cache not written");
    }
}

/// Deletes a final job's uploaded document and the text read from it (its `upload`,
/// `document` and `ocr` objects) when the job asks for it, keeping its result. Best
/// effort: an object that cannot be deleted is logged and left to the host's sweeper
/// (the embedded host's) or the bucket's expiry (AWS); the job's outcome stands.
pub async fn drop_document(objects: &dyn ObjectStore, job: &Job) {
    if !job.delete_document_when_final || !job.status.is_final() {
        return;
    }
    for key in [&job.keys.upload, &job.keys.document, &job.keys.ocr]
        .into_iter()
        .flatten()
    {
        if let Err(e) = objects.delete(key).await {
            warn!(job_id = %job.id, key = %key, error = %e, "document not deleted after the job ended");
        }
    }
}

/// Writes the verified result, checked against its model: rooms for a blueprint
/// (`kind: "blueprint"`), else an invoice.
async fn write_result(
    ports: &Ports,
    key: &ObjectKey,
    verified_key: &ObjectKey,
    verified: serde_json::Value,
) -> Result<(), StageError> {
    let invalid = |e: serde_json::Error| {
        StageError::internal(format!("object {verified_key} is not valid: {e}"))
    };
    if result_kind(&verified) == Some(DocumentKind::Blueprint) {
        let result: RoomsResult = serde_json::from_value(verified).map_err(invalid)?;
        write_json(ports, key, &result).await
    } else {
        let result: InvoiceResult = serde_json::from_value(verified).map_err(invalid)?;
        write_json(ports, key, &result).await
    }
}

/// Marks the job failed with the caught error's code and message. A job that is already
/// final (cancelled meanwhile) keeps its status: recording is idempotent.
pub async fn record_failure(
    ports: &Ports,
    input: RecordFailureInput,
) -> Result<FinalizeOutput, StageError> {
    let error = StageError::from_cause(&input.error.error, &input.error.cause);
    // Invoked again after it failed the job (the process died before the result was
    // journaled): the first call did everything, this one changes nothing.
    let before = ports.jobs.get(&input.job_id).await?;
    if before.status == JobStatus::Failed {
        debug!(job_id = %before.id, stage = "record_failure",
               "record_failure repeated after the job had failed: nothing to do");
        return Ok(FinalizeOutput {
            result_key: before.keys.result.clone(),
            job_id: before.id,
            status: before.status,
        });
    }
    let job = crate::lifecycle::fail(&*ports.jobs, &*ports.clock, &input.job_id, &error).await?;
    if job.status == JobStatus::Failed {
        warn!(job_id = %job.id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "record_failure",
              code = %error.code, error = %input.error.error, "job failed");
    }
    drop_document(&*ports.objects, &job).await;
    Ok(FinalizeOutput {
        result_key: job.keys.result.clone(),
        job_id: job.id,
        status: job.status,
    })
}
