use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::{IngestOutput, JobRef, Stage, dedupe_key, elapsed_ms, enter};
use crate::detect::detect_media_type;
use crate::error::{ErrorCode, StageError};
use crate::ids::ObjectKey;
use crate::job::{DocumentKind, Job, JobStatus};
use crate::ports::{CachedResult, JobPatch, Ports};

/// Checks the submitted bytes (magic bytes, size), hashes them and stores them under
/// `documents/{job}/{file}` or `blueprints/{job}/{file}`.
pub async fn ingest(ports: &Ports, input: JobRef) -> Result<IngestOutput, StageError> {
    let start = ports.clock.now();
    let job = enter(ports, &input.job_id, JobStatus::Ingesting).await?;

    // A retried ingest after the upload was moved: the accepted document stands.
    if let (Some(key), Some(media_type), Some(size_bytes), Some(sha256)) = (
        &job.keys.document,
        job.media_type,
        job.size_bytes,
        &job.content_sha256,
    ) && ports.objects.size(key).await?.is_some()
    {
        // Asked again, the cache gives the same answer the first attempt recorded.
        let deduplicated = match &job.deduplicated_from {
            Some(_) => earlier_result(ports, &job, sha256).await,
            None => None,
        };
        return Ok(IngestOutput {
            key: key.clone(),
            media_type,
            size_bytes,
            sha256: sha256.clone(),
            deduplicated,
        });
    }

    let max = ports.settings.max_document_bytes;
    // A submitter that saw the size first (a file on disk, a Content-Length) records it
    // and stores nothing over the limit.
    if let Some(declared) = job.size_bytes
        && declared > max
    {
        return Err(too_large(declared, max));
    }
    let prefix = match job.kind {
        DocumentKind::Invoice => "documents",
        DocumentKind::Blueprint => "blueprints",
    };
    let key = ObjectKey::for_job(prefix, &job.id, &job.filename);
    let (bytes, source) = match (&job.keys.upload, &job.source_url) {
        (Some(upload), _) => match ports.objects.size(upload).await? {
            Some(size) => {
                if size > max {
                    return Err(too_large(size, max));
                }
                let bytes =
                    ports.objects.get(upload).await?.ok_or_else(|| {
                        StageError::internal(format!("upload {upload} is missing"))
                    })?;
                (bytes, Source::Upload(upload.clone()))
            }
            // An earlier attempt moved the upload and stopped before recording it.
            None => match ports.objects.get(&key).await? {
                Some(bytes) => (bytes, Source::Stored),
                None => {
                    return Err(StageError::internal(format!("upload {upload} is missing")));
                }
            },
        },
        (None, Some(url)) => (ports.fetcher.fetch(url, max).await?.bytes, Source::Fetched),
        (None, None) => {
            return Err(StageError::internal(format!(
                "job {} has neither an upload nor a URL",
                job.id
            )));
        }
    };
    if bytes.is_empty() {
        return Err(StageError::new(
            ErrorCode::InvalidFileFormat,
            "the document is empty",
        ));
    }
    let media_type = detect_media_type(&bytes).ok_or_else(|| {
        StageError::new(
            ErrorCode::InvalidFileFormat,
            "the content is not a PDF, PNG or JPEG (checked by its leading bytes, not its name)",
        )
    })?;
    if !job.kind.accepts(media_type) {
        return Err(StageError::new(
            ErrorCode::InvalidFileFormat,
            format!(
                "a {} cannot be processed from {} (checked by its leading bytes, not its name)",
                job.kind,
                media_type.as_str()
            ),
        ));
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size_bytes = bytes.len() as u64;
    match &source {
        // The upload becomes the document (a store that can, moves it without a copy).
        Source::Upload(upload) => ports.objects.relocate(upload, &key, bytes).await?,
        Source::Fetched => ports.objects.put(&key, bytes).await?,
        Source::Stored => {}
    }
    let deduplicated = earlier_result(ports, &job, &sha256).await;
    ports
        .jobs
        .update(
            &job.id,
            JobPatch {
                media_type: Some(media_type),
                size_bytes: Some(size_bytes),
                content_sha256: Some(sha256.clone()),
                document_key: Some(key.clone()),
                stage_ms: Some((Stage::Ingest, elapsed_ms(ports, start))),
                deduplicated_from: deduplicated.as_ref().map(|d| d.job_id.clone()),
                ..JobPatch::default()
            },
            ports.clock.now(),
        )
        .await?;
    info!(job_id = %job.id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "ingest",
          media_type = media_type.as_str(), size_bytes, "document accepted");
    if let Some(d) = &deduplicated {
        info!(job_id = %job.id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "ingest",
              deduplicated_from = %d.job_id, "same content as a finished job: its result is reused");
    }
    Ok(IngestOutput {
        key,
        media_type,
        size_bytes,
        sha256,
        deduplicated,
    })
}

/// Where the document's bytes came from.
enum Source {
    /// The job's upload, moved to the document's key once accepted.
    Upload(ObjectKey),
    /// Fetched from the job's URL.
    Fetched,
    /// Already under the document's key: an earlier attempt moved the upload there.
    Stored,
}

/// A finished job's result for the same content, if dedupe is on and the cache has one
/// that still holds: the earlier job exists with the same hash and kind, finished, and its
/// verified result is still stored. Anything else (including a cache that cannot be read)
/// is a miss: dedupe saves work, it never decides an outcome.
async fn earlier_result(ports: &Ports, job: &Job, sha256: &str) -> Option<CachedResult> {
    let cache = ports.results.as_ref()?;
    if ports.settings.dedupe_ttl_secs == 0 {
        return None;
    }
    let key = dedupe_key(sha256, job.kind, &ports.settings.dedupe_profile);
    let entry = match cache.get(&key, ports.clock.now()).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return None,
        Err(e) => {
            warn!(job_id = %job.id, error = %e, "dedupe cache unreadable; processing in full");
            return None;
        }
    };
    if entry.job_id == job.id {
        return None;
    }
    let earlier = ports.jobs.get(&entry.job_id).await.ok()?;
    let same = earlier.content_sha256.as_deref() == Some(sha256)
        && earlier.kind == job.kind
        && matches!(
            earlier.status,
            JobStatus::Completed | JobStatus::NeedsReview
        );
    let stored = matches!(
        ports.objects.size(&entry.verification.key).await,
        Ok(Some(_))
    );
    (same && stored).then_some(entry)
}

fn too_large(size: u64, max: u64) -> StageError {
    StageError::new(
        ErrorCode::FileTooLarge,
        format!(
            "the document is {size} bytes; the limit is {max} bytes ({} MiB)",
            max / (1024 * 1024)
        ),
    )
}
