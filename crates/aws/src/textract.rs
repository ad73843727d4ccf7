//! Textract OCR. Images and single-page PDFs go through `DetectDocumentText` (bytes in
//! the request, 10 MB at most); a PDF that Textract refuses there as multi-page (or one
//! over 10 MB) is staged in S3 and read with `StartDocumentTextDetection` +
//! `GetDocumentTextDetection`, polled on the clock port and paginated.
//!
//! Textract's blocks map onto the core model directly: PAGE -> [`Page`], LINE ->
//! [`Line`], WORD -> [`Word`]; its boxes are already 0..1 from the top left, its
//! confidences 0..100. Throttling reaches the state machine as `DocPipe.Transient`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_textract::Client;
use aws_sdk_textract::error::SdkError;
use aws_sdk_textract::primitives::Blob;
use aws_sdk_textract::types::{
    Block, BlockType, Document as TextractDocument, DocumentLocation, JobStatus, RelationshipType,
    S3Object,
};
use docpipe_core::ports::Result;
use docpipe_core::{
    BBox, Clock, Document, ErrorCode, Line, MediaType, Ocr, Page, StageError, TextSource, Word,
};
use sha2::{Digest, Sha256};

use crate::error::sdk_error;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The largest document `DetectDocumentText` takes in the request.
pub const SYNC_MAX_BYTES: usize = 10 * 1024 * 1024;
/// How long an asynchronous job may take before the stage gives up (the state's
/// `TimeoutSeconds` is 600).
const ASYNC_DEADLINE: Duration = Duration::from_secs(540);
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Textract reports no page size; US Letter in points keeps size-relative heuristics sane.
const PAGE_WIDTH_PT: f32 = 612.0;
const PAGE_HEIGHT_PT: f32 = 792.0;

/// Where multi-page documents are put for the asynchronous API.
#[derive(Clone, Debug)]
pub struct Staging {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
}

#[derive(Clone)]
pub struct TextractOcr {
    client: Client,
    staging: Option<Staging>,
    clock: Arc<dyn Clock>,
    poll_interval: Duration,
}

impl TextractOcr {
    /// `staging: None` limits this engine to single-page documents.
    pub fn new(
        client: Client,
        staging: Option<Staging>,
        clock: Arc<dyn Clock>,
        poll_interval: Duration,
    ) -> Self {
        Self {
            client,
            staging,
            clock,
            poll_interval,
        }
    }

    async fn detect(&self, bytes: Vec<u8>) -> Result<Document, Refusal> {
        let out = self
            .client
            .detect_document_text()
            .document(TextractDocument::builder().bytes(Blob::new(bytes)).build())
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(se) if se.err().is_unsupported_document_exception() => {
                    Refusal::Unsupported
                }
                _ => Refusal::Error(textract_error("Textract DetectDocumentText", e)),
            })?;
        Ok(blocks_to_document(out.blocks()))
    }

    async fn detect_async(&self, bytes: Vec<u8>, media_type: MediaType) -> Result<Document> {
        let Some(staging) = &self.staging else {
            return Err(StageError::new(
                ErrorCode::UnsupportedDocument,
                "multi-page documents need an S3 staging bucket for Textract",
            ));
        };
        let ext = match media_type {
            MediaType::Pdf => "pdf",
            MediaType::Png => "png",
            MediaType::Jpeg => "jpg",
        };
        let key = format!("textract/{}.{ext}", hex::encode(Sha256::digest(&bytes)));
        staging
            .s3
            .put_object()
            .bucket(&staging.bucket)
            .key(&key)
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| sdk_error("S3 PutObject (Textract staging)", e))?;
        let result = self.run_job(&staging.bucket, &key).await;
        // The staged copy is only for Textract; the bucket's lifecycle rule is the backstop.
        if let Err(e) = staging
            .s3
            .delete_object()
            .bucket(&staging.bucket)
            .key(&key)
            .send()
            .await
        {
            tracing::warn!(key, error = %e, "could not delete the Textract staging object");
        }
        result
    }

    async fn run_job(&self, bucket: &str, key: &str) -> Result<Document> {
        let job_id = self
            .client
            .start_document_text_detection()
            .document_location(
                DocumentLocation::builder()
                    .s3_object(S3Object::builder().bucket(bucket).name(key).build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| textract_error("Textract StartDocumentTextDetection", e))?
            .job_id
            .ok_or_else(|| StageError::unavailable("Textract returned no job id"))?;
        let mut waited = Duration::ZERO;
        let mut interval = self.poll_interval;
        let mut blocks: Vec<Block> = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_document_text_detection()
                .job_id(&job_id)
                .max_results(1000)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| textract_error("Textract GetDocumentTextDetection", e))?;
            match out.job_status() {
                Some(JobStatus::InProgress) | None => {
                    if waited >= ASYNC_DEADLINE {
                        return Err(StageError::unavailable(format!(
                            "Textract job {job_id} still running after {}s",
                            waited.as_secs()
                        )));
                    }
                    self.clock.sleep(interval).await;
                    waited += interval;
                    interval = (interval * 2).clamp(Duration::from_millis(1), MAX_POLL_INTERVAL);
                    continue;
                }
                Some(JobStatus::Failed) => {
                    return Err(StageError::new(
                        ErrorCode::DocumentUnreadable,
                        format!(
                            "Textract could not read the document: {}",
                            out.status_message().unwrap_or("no reason given")
                        ),
                    ));
                }
                Some(JobStatus::PartialSuccess) => {
                    tracing::warn!(
                        job_id,
                        warnings = out.warnings().len(),
                        "Textract read part of the document"
                    );
                }
                Some(_) => {}
            }
            blocks.extend_from_slice(out.blocks());
            match out.next_token() {
                Some(t) if !t.is_empty() => next_token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(blocks_to_document(&blocks))
    }
}

/// Why the synchronous call did not produce a document.
enum Refusal {
    /// A format the synchronous API refuses (a multi-page PDF): try asynchronously.
    Unsupported,
    Error(StageError),
}

/// Textract's document errors are the document's fault (`DocPipe.InvalidDocument`);
/// everything else is classified like any AWS error.
fn textract_error<E>(
    what: &str,
    err: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> StageError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    match err.code() {
        Some("BadDocumentException" | "UnsupportedDocumentException") => StageError::new(
            ErrorCode::DocumentUnreadable,
            format!("{what}: Textract cannot read this document"),
        ),
        Some("DocumentTooLargeException") => StageError::new(
            ErrorCode::FileTooLarge,
            format!("{what}: the document is too large for Textract"),
        ),
        _ => sdk_error(what, err),
    }
}

#[async_trait]
impl Ocr for TextractOcr {
    async fn recognize(&self, bytes: Vec<u8>, media_type: MediaType) -> Result<Document> {
        if bytes.len() <= SYNC_MAX_BYTES {
            // The bytes are needed again only if the synchronous call refuses them.
            let retry = (media_type == MediaType::Pdf).then(|| bytes.clone());
            match (self.detect(bytes).await, retry) {
                (Ok(doc), _) => return Ok(doc),
                (Err(Refusal::Error(e)), _) => return Err(e),
                (Err(Refusal::Unsupported), Some(bytes)) => {
                    return self.detect_async(bytes, media_type).await;
                }
                (Err(Refusal::Unsupported), None) => {
                    return Err(StageError::new(
                        ErrorCode::DocumentUnreadable,
                        "Textract does not support this image",
                    ));
                }
            }
        }
        self.detect_async(bytes, media_type).await
    }
}

/// Maps Textract blocks (any order, any number of pages) to the document model: lines in
/// Textract's reading order, each line's words from its CHILD relationships.
pub fn blocks_to_document(blocks: &[Block]) -> Document {
    let by_id: HashMap<&str, &Block> = blocks
        .iter()
        .filter_map(|b| b.id().map(|id| (id, b)))
        .collect();
    let mut pages: BTreeMap<u32, Vec<Line>> = BTreeMap::new();
    for block in blocks {
        let page = block.page().map_or(1, |p| p.max(1) as u32);
        match block.block_type() {
            Some(BlockType::Page) => {
                pages.entry(page).or_default();
            }
            Some(BlockType::Line) => {
                let mut words: Vec<Word> = block
                    .relationships()
                    .iter()
                    .filter(|r| r.r#type() == Some(&RelationshipType::Child))
                    .flat_map(|r| r.ids())
                    .filter_map(|id| by_id.get(id.as_str()))
                    .filter(|b| b.block_type() == Some(&BlockType::Word))
                    .filter_map(|b| word(b))
                    .collect();
                if words.is_empty() {
                    // A line without word children: split its text over its box.
                    words = split_line(block);
                }
                if let Some(line) = Line::from_words(words) {
                    pages.entry(page).or_default().push(line);
                }
            }
            _ => {}
        }
    }
    Document {
        source: TextSource::Textract,
        pages: pages
            .into_iter()
            .map(|(number, lines)| Page {
                number,
                width: PAGE_WIDTH_PT,
                height: PAGE_HEIGHT_PT,
                lines,
            })
            .collect(),
    }
}

fn bbox(block: &Block) -> BBox {
    match block.geometry().and_then(|g| g.bounding_box()) {
        Some(b) => BBox::new(b.left, b.top, b.left + b.width, b.top + b.height),
        None => BBox::default(),
    }
}

fn confidence(block: &Block) -> f32 {
    (block.confidence().unwrap_or(0.0) / 100.0).clamp(0.0, 1.0)
}

fn word(block: &Block) -> Option<Word> {
    let text = block.text()?.trim();
    if text.is_empty() {
        return None;
    }
    Some(Word {
        text: text.to_owned(),
        bbox: bbox(block),
        confidence: confidence(block),
    })
}

fn split_line(block: &Block) -> Vec<Word> {
    let text = block.text().unwrap_or_default();
    let parts: Vec<&str> = text.split_whitespace().collect();
    let b = bbox(block);
    let total: usize = parts.iter().map(|p| p.chars().count() + 1).sum();
    let mut offset = 0usize;
    parts
        .iter()
        .map(|p| {
            let len = p.chars().count();
            let x0 = b.x0 + b.width() * offset as f32 / total.max(1) as f32;
            let x1 = b.x0 + b.width() * (offset + len) as f32 / total.max(1) as f32;
            offset += len + 1;
            Word {
                text: (*p).to_owned(),
                bbox: BBox::new(x0, b.y0, x1, b.y1),
                confidence: confidence(block),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_textract::types::{BoundingBox, Geometry, Relationship};

    fn block(id: &str, kind: BlockType, text: Option<&str>, page: i32, children: &[&str]) -> Block {
        let mut b = Block::builder()
            .id(id)
            .block_type(kind)
            .page(page)
            .confidence(99.0)
            .geometry(
                Geometry::builder()
                    .bounding_box(
                        BoundingBox::builder()
                            .left(0.1)
                            .top(0.2)
                            .width(0.3)
                            .height(0.05)
                            .build(),
                    )
                    .build(),
            );
        if let Some(t) = text {
            b = b.text(t);
        }
        if !children.is_empty() {
            b = b.relationships(
                Relationship::builder()
                    .r#type(RelationshipType::Child)
                    .set_ids(Some(children.iter().map(|c| (*c).to_owned()).collect()))
                    .build(),
            );
        }
        b.build()
    }

    #[test]
    fn pages_lines_and_words_map_onto_the_model() {
        let blocks = vec![
            block("p1", BlockType::Page, None, 1, &["l1"]),
            block("l1", BlockType::Line, Some("Invoice 42"), 1, &["w1", "w2"]),
            block("w1", BlockType::Word, Some("Invoice"), 1, &[]),
            block("w2", BlockType::Word, Some("42"), 1, &[]),
            block("p2", BlockType::Page, None, 2, &[]),
            block("l2", BlockType::Line, Some("Total 9.90"), 2, &[]),
        ];
        let doc = blocks_to_document(&blocks);
        assert_eq!(doc.source, TextSource::Textract);
        assert_eq!(doc.pages.len(), 2);
        assert_eq!(doc.pages[0].lines[0].text(), "Invoice 42");
        let w = &doc.pages[0].lines[0].words[0];
        assert!((w.confidence - 0.99).abs() < 1e-6);
        assert!((w.bbox.x1 - 0.4).abs() < 1e-6 && (w.bbox.y1 - 0.25).abs() < 1e-6);
        // The line without word children is split over its box.
        assert_eq!(doc.pages[1].lines[0].words.len(), 2);
        assert_eq!(doc.word_count(), 4);
    }
}
