use tracing::info;

use super::{ExtractInput, ExtractOutput, Stage, elapsed_ms, enter, read_json, write_json};
use crate::document::Document;
use crate::error::{ErrorCode, StageError};
use crate::ids::{JobId, ObjectKey};
use crate::job::{DocumentKind, JobStatus};
use crate::ports::{JobPatch, Ports};

/// Finds the invoice's fields in the document model, or a blueprint's rooms in its image,
/// and stores the unverified result at `results/{job}/extraction.json`. Blueprints come
/// straight from ingest (no text OCR).
pub async fn extract(ports: &Ports, input: ExtractInput) -> Result<ExtractOutput, StageError> {
    let start = ports.clock.now();
    enter(ports, &input.job_id, JobStatus::Extracting).await?;
    let ocr = match (input.kind, &input.ocr) {
        (DocumentKind::Blueprint, _) => return extract_blueprint(ports, input, start).await,
        (DocumentKind::Invoice, None) => {
            return Err(StageError::new(
                ErrorCode::ValidationError,
                "an invoice needs the ocr stage's output",
            ));
        }
        (DocumentKind::Invoice, Some(ocr)) => ocr,
    };
    let document: Document = read_json(ports, &ocr.key).await?;
    let original = ports.objects.get(&input.document.key).await?;
    let result = ports
        .extractor
        .extract_invoice(&document, original.as_deref())
        .await?;
    let key = ObjectKey::for_job("results", &input.job_id, "extraction.json");
    write_json(ports, &key, &result).await?;
    record_extraction(ports, &input.job_id, &key, start).await?;
    let fields = result.fields.len() as u32;
    let lines = result.lines.len() as u32;
    info!(job_id = %input.job_id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "extract",
          fields, lines, source = ?result.source, "fields extracted");
    Ok(ExtractOutput { key, fields, lines })
}

/// The blueprint branch: rooms from the stored image (or scanned PDF page). The output's
/// `fields` counts rooms; `lines` is zero.
async fn extract_blueprint(
    ports: &Ports,
    input: ExtractInput,
    start: chrono::DateTime<chrono::Utc>,
) -> Result<ExtractOutput, StageError> {
    let bytes = ports
        .objects
        .get(&input.document.key)
        .await?
        .ok_or_else(|| StageError::internal(format!("object {} is missing", input.document.key)))?;
    let result = ports
        .extractor
        .extract_rooms(&bytes, input.document.media_type)
        .await?;
    drop(bytes);
    let key = ObjectKey::for_job("results", &input.job_id, "extraction.json");
    write_json(ports, &key, &result).await?;
    record_extraction(ports, &input.job_id, &key, start).await?;
    let rooms = result.rooms.len() as u32;
    info!(job_id = %input.job_id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "extract",
          rooms, width = result.image.width, height = result.image.height, "rooms detected");
    Ok(ExtractOutput {
        key,
        fields: rooms,
        lines: 0,
    })
}

async fn record_extraction(
    ports: &Ports,
    job_id: &JobId,
    key: &ObjectKey,
    start: chrono::DateTime<chrono::Utc>,
) -> Result<(), StageError> {
    ports
        .jobs
        .update(
            job_id,
            JobPatch {
                extraction_key: Some(key.clone()),
                stage_ms: Some((Stage::Extract, elapsed_ms(ports, start))),
                ..JobPatch::default()
            },
            ports.clock.now(),
        )
        .await
        .map(|_| ())
}
