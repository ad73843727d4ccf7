use tracing::info;

use super::{OcrInput, OcrOutput, Stage, elapsed_ms, enter, write_json};
use crate::error::StageError;
use crate::ids::ObjectKey;
use crate::job::JobStatus;
use crate::ports::{JobPatch, Ports};

/// Turns the document into the normalised document model and stores it as JSON at
/// `ocr/{job}/document.json`.
pub async fn ocr(ports: &Ports, input: OcrInput) -> Result<OcrOutput, StageError> {
    let start = ports.clock.now();
    enter(ports, &input.job_id, JobStatus::Ocr).await?;
    let bytes = ports
        .objects
        .get(&input.document.key)
        .await?
        .ok_or_else(|| {
            StageError::internal(format!("document {} is missing", input.document.key))
        })?;
    let document = ports
        .ocr
        .recognize(bytes, input.document.media_type)
        .await?;
    let key = ObjectKey::for_job("ocr", &input.job_id, "document.json");
    write_json(ports, &key, &document).await?;
    let pages = document.pages.len() as u32;
    let words = document.word_count() as u64;
    let ocr_pages = match document.source {
        crate::document::TextSource::PdfText => 0,
        _ => pages,
    };
    ports
        .jobs
        .update(
            &input.job_id,
            JobPatch {
                ocr_key: Some(key.clone()),
                pages: Some(pages),
                ocr_pages: Some(ocr_pages),
                stage_ms: Some((Stage::Ocr, elapsed_ms(ports, start))),
                ..JobPatch::default()
            },
            ports.clock.now(),
        )
        .await?;
    info!(job_id = %input.job_id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "ocr",
          pages, words, "document model stored");
    Ok(OcrOutput { key, pages, words })
}
