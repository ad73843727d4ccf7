use tracing::info;

use super::{ExtractInput, ExtractOutput, elapsed_ms, enter, read_json, write_json};
use crate::document::Document;
use crate::error::{ErrorCode, StageError};
use crate::ids::ObjectKey;
use crate::job::{DocumentKind, JobStatus};
use crate::ports::{JobPatch, Ports};

/// Finds the invoice's fields in the document model and stores the unverified result at
/// `results/{job}/extraction.json`. Blueprints take this stage on their own branch.
pub async fn extract(ports: &Ports, input: ExtractInput) -> Result<ExtractOutput, StageError> {
    let start = ports.clock.now();
    enter(ports, &input.job_id, JobStatus::Extracting).await?;
    let ocr = match (input.kind, &input.ocr) {
        (DocumentKind::Blueprint, _) => {
            return Err(StageError::new(
                ErrorCode::UnsupportedDocument,
                "room detection for blueprints is not available in this build yet",
            ));
        }
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
    ports
        .jobs
        .update(
            &input.job_id,
            JobPatch {
                extraction_key: Some(key.clone()),
                stage_ms: Some(("extract".into(), elapsed_ms(ports, start))),
                ..JobPatch::default()
            },
            ports.clock.now(),
        )
        .await?;
    let fields = result.fields.len() as u32;
    let lines = result.lines.len() as u32;
    info!(job_id = %input.job_id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "extract",
          fields, lines, source = ?result.source, "fields extracted");
    Ok(ExtractOutput { key, fields, lines })
}
