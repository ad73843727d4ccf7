//! Bedrock extraction: one `Converse` call with a single tool, `record_invoice`, whose
//! input schema is the invoice record of `docpipe_core::invoice_record` (the invoice part
//! of the result model, with the model's confidences), and a tool choice that forces the
//! model to answer through it. Blueprints the same way: the plan image and the tool
//! `record_rooms` (outlines normalised to the image, labels, confidences, scale). The
//! reply is checked against the same rules the schema states (known field names, decimal
//! strings, ISO dates, ISO 4217 currency, confidences in 0..1); a reply that does not fit
//! is an error (`EXTRACTION_FAILED`), never a half result.
//!
//! Token usage is added to [`TokenUsage`] counters the host reads after each call (the
//! extract Lambda writes them as CloudWatch metrics) and logged with the model id.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput, ImageBlock, ImageFormat, ImageSource,
    InferenceConfiguration, Message, SpecificToolChoice, StopReason, SystemContentBlock, Tool,
    ToolChoice, ToolConfiguration, ToolInputSchema, ToolSpecification,
};
use aws_smithy_types::{Document as SmithyDocument, Number};
use docpipe_core::image_info::image_info;
use docpipe_core::invoice_record::{self, Judgement, VALUE_RULES};
use docpipe_core::ports::Result;
use docpipe_core::result::{ImageSize, Room, RoomsResult};
use docpipe_core::{
    Document, ErrorCode, Extractor, InvoiceResult, MediaType, ResultSource, StageError,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::sdk_error;

pub const TOOL_NAME: &str = invoice_record::RECORD_NAME;
pub const ROOMS_TOOL_NAME: &str = "record_rooms";

/// What Converse accepts in one image block.
const MAX_IMAGE_BYTES: usize = 3_750_000;
const MAX_IMAGE_SIDE: u32 = 8_000;

const ROOMS_PROMPT: &str = "You read architectural floor plans. Call the record_rooms tool \
exactly once with every room on the plan: a room is the floor space enclosed by walls, and a \
door or an opening in a wall does not join two rooms. Outline each room along the inside face \
of its walls with at least 3 corner points in coordinates normalised to the image: x from 0 \
(left edge) to 1 (right edge), y from 0 (top edge) to 1 (bottom edge). Give the label printed \
inside a room (e.g. \"Kitchen\") when there is one; never invent one. Confidence is 0..1: how \
sure you are the outline is right. Give image_width_m, the real width the whole image spans in \
metres, only when the plan states its scale or dimensions.";

/// What the model is told besides the document text: the tool to call and how values and
/// confidences are written.
fn system_prompt() -> String {
    format!(
        "You read invoices. Call the {TOOL_NAME} tool exactly once with the fields you find \
         in the document text. {VALUE_RULES} Confidence is 0..1: how sure you are the value \
         is right. Pages are numbered from 1 as marked in the text."
    )
}

/// Tokens consumed, summed over calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Clone)]
pub struct BedrockExtractor {
    client: Client,
    model_id: String,
    max_tokens: i32,
    usage: Arc<Mutex<TokenUsage>>,
}

impl BedrockExtractor {
    pub fn new(client: Client, model_id: impl Into<String>, max_tokens: i32) -> Self {
        Self {
            client,
            model_id: model_id.into(),
            max_tokens,
            usage: Arc::default(),
        }
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The counters so far.
    pub fn usage(&self) -> TokenUsage {
        *self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counters so far, reset to zero (a Lambda reports per invocation).
    pub fn take_usage(&self) -> TokenUsage {
        std::mem::take(&mut *self.usage.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn record(&self, input: i32, output: i32) {
        let mut u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        u.calls += 1;
        u.input_tokens += input.max(0) as u64;
        u.output_tokens += output.max(0) as u64;
    }
}

/// The tool's input schema: the invoice record (`docpipe_core::invoice_record`), with the
/// model's own confidences and pages.
pub fn invoice_schema() -> Value {
    invoice_record::schema(Judgement::Model)
}

fn build_error(e: impl std::fmt::Display) -> StageError {
    StageError::internal(format!("Bedrock request: {e}"))
}

impl BedrockExtractor {
    /// One Converse call that must answer through the tool `tool` (forced tool choice);
    /// returns the tool's input. Token usage is recorded whatever the reply.
    async fn converse_tool(
        &self,
        system: &str,
        content: Vec<ContentBlock>,
        tool: &str,
        description: &str,
        schema: &Value,
    ) -> Result<Value> {
        let spec = ToolSpecification::builder()
            .name(tool)
            .description(description)
            .input_schema(ToolInputSchema::Json(to_document(schema)))
            .build()
            .map_err(build_error)?;
        let tools = ToolConfiguration::builder()
            .tools(Tool::ToolSpec(spec))
            .tool_choice(ToolChoice::Tool(
                SpecificToolChoice::builder()
                    .name(tool)
                    .build()
                    .map_err(build_error)?,
            ))
            .build()
            .map_err(build_error)?;
        let message = Message::builder()
            .role(ConversationRole::User)
            .set_content(Some(content))
            .build()
            .map_err(build_error)?;
        let out = self
            .client
            .converse()
            .model_id(&self.model_id)
            .system(SystemContentBlock::Text(system.to_owned()))
            .messages(message)
            .tool_config(tools)
            .inference_config(
                InferenceConfiguration::builder()
                    .max_tokens(self.max_tokens)
                    .temperature(0.0)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_error("Bedrock Converse", e))?;
        if let Some(u) = out.usage() {
            self.record(u.input_tokens(), u.output_tokens());
            tracing::info!(model_id = %self.model_id, tool, input_tokens = u.input_tokens(),
                output_tokens = u.output_tokens(), "bedrock usage");
        }
        if out.stop_reason() == &StopReason::MaxTokens {
            return Err(StageError::new(
                ErrorCode::ExtractionFailed,
                "the model's reply was cut at max_tokens; no partial result is kept",
            ));
        }
        let input = match out.output() {
            Some(ConverseOutput::Message(m)) => m.content().iter().find_map(|c| match c {
                ContentBlock::ToolUse(t) if t.name() == tool => Some(t.input()),
                _ => None,
            }),
            _ => None,
        }
        .ok_or_else(|| {
            StageError::new(
                ErrorCode::ExtractionFailed,
                format!("the model did not call {tool}"),
            )
        })?;
        Ok(from_document(input))
    }
}

#[async_trait]
impl Extractor for BedrockExtractor {
    async fn extract_invoice(
        &self,
        document: &Document,
        _original: Option<&[u8]>,
    ) -> Result<InvoiceResult> {
        let input = self
            .converse_tool(
                &system_prompt(),
                vec![ContentBlock::Text(invoice_record::document_text(document))],
                TOOL_NAME,
                "Record the invoice's fields, lines and tax breakdown.",
                &invoice_schema(),
            )
            .await?;
        parse_reply(&input)
    }

    /// The plan image itself goes to the model (Converse image block) with the rooms tool;
    /// coordinates come back normalised to the image and are checked like any reply.
    async fn extract_rooms(&self, bytes: &[u8], media_type: MediaType) -> Result<RoomsResult> {
        let format = match media_type {
            MediaType::Png => ImageFormat::Png,
            MediaType::Jpeg => ImageFormat::Jpeg,
            MediaType::Pdf => {
                return Err(StageError::new(
                    ErrorCode::UnsupportedDocument,
                    "room detection on Bedrock reads PNG or JPEG plans; send the PDF page \
                     as an image, or run the local detector",
                ));
            }
        };
        let info = image_info(bytes, media_type).ok_or_else(|| {
            StageError::new(
                ErrorCode::DocumentUnreadable,
                format!("the {} header is unreadable", media_type.as_str()),
            )
        })?;
        if bytes.len() > MAX_IMAGE_BYTES
            || info.width > MAX_IMAGE_SIDE
            || info.height > MAX_IMAGE_SIDE
        {
            return Err(StageError::new(
                ErrorCode::FileTooLarge,
                format!(
                    "a {}x{} plan of {} bytes exceeds what Bedrock accepts in one image \
                     ({MAX_IMAGE_SIDE} px a side, {MAX_IMAGE_BYTES} bytes)",
                    info.width,
                    info.height,
                    bytes.len()
                ),
            ));
        }
        let image = ImageBlock::builder()
            .format(format)
            .source(ImageSource::Bytes(Blob::new(bytes)))
            .build()
            .map_err(build_error)?;
        let input = self
            .converse_tool(
                ROOMS_PROMPT,
                vec![
                    ContentBlock::Image(image),
                    ContentBlock::Text(format!(
                        "The plan is {} x {} pixels. Record its rooms.",
                        info.width, info.height
                    )),
                ],
                ROOMS_TOOL_NAME,
                "Record the rooms of the floor plan: outline, label, confidence.",
                &rooms_schema(),
            )
            .await?;
        parse_rooms_reply(
            &input,
            ImageSize {
                width: info.width,
                height: info.height,
            },
        )
    }
}

/// The rooms tool's input schema: outlines in coordinates normalised to the image (models
/// place relative positions more reliably than pixel ones), an optional label and
/// confidence per room, and the plan's scale when it states one.
pub fn rooms_schema() -> Value {
    let unit = json!({"type": "number", "minimum": 0, "maximum": 1});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["rooms"],
        "properties": {
            "rooms": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["polygon", "confidence"],
                    "properties": {
                        "label": {"type": "string"},
                        "polygon": {
                            "type": "array",
                            "minItems": 3,
                            "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": unit}
                        },
                        "confidence": unit
                    }
                }
            },
            "image_width_m": {"type": "number", "exclusiveMinimum": 0}
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomsReply {
    rooms: Vec<ReplyRoom>,
    #[serde(default)]
    image_width_m: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyRoom {
    #[serde(default)]
    label: Option<String>,
    polygon: Vec<[f64; 2]>,
    confidence: f64,
}

/// Checks a `record_rooms` input and builds the result: pixel and normalised outlines,
/// areas from the outline (shoelace), square metres when the reply gives a scale, ids in
/// reading order (top to bottom, then left to right, by the outline's centre).
pub fn parse_rooms_reply(input: &Value, image: ImageSize) -> Result<RoomsResult> {
    let reply: RoomsReply =
        serde_json::from_value(input.clone()).map_err(|e| rooms_misfit(e.to_string()))?;
    let (w, h) = (f64::from(image.width), f64::from(image.height));
    let pixels_per_metre = match reply.image_width_m {
        Some(m) if m.is_finite() && m > 0.0 => Some(w / m),
        Some(m) => return Err(rooms_misfit(format!("image_width_m {m} is not positive"))),
        None => None,
    };
    let mut rooms = Vec::with_capacity(reply.rooms.len());
    for (i, r) in reply.rooms.into_iter().enumerate() {
        let what = format!("room {}", i + 1);
        if r.polygon.len() < 3 {
            return Err(rooms_misfit(format!("{what} has fewer than 3 corners")));
        }
        if let Some(p) = r
            .polygon
            .iter()
            .find(|p| !p.iter().all(|c| c.is_finite() && (0.0..=1.0).contains(c)))
        {
            return Err(rooms_misfit(format!(
                "{what} corner {p:?} is outside the image (0..1)"
            )));
        }
        let polygon: Vec<[f64; 2]> = r.polygon.iter().map(|[x, y]| [x * w, y * h]).collect();
        let area_px = shoelace(&polygon);
        if area_px <= 0.0 {
            return Err(rooms_misfit(format!("{what} encloses no area")));
        }
        let conf = if (0.0..=1.0).contains(&r.confidence) {
            r.confidence as f32
        } else {
            return Err(rooms_misfit(format!(
                "{what} confidence {} is outside 0..1",
                r.confidence
            )));
        };
        rooms.push(Room {
            id: String::new(),
            label: r
                .label
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty()),
            polygon_normalised: r.polygon,
            polygon,
            area_px,
            area_m2: pixels_per_metre.map(|ppm| area_px / (ppm * ppm)),
            confidence: conf,
        });
    }
    let centre = |r: &Room| {
        let n = r.polygon.len() as f64;
        let (sx, sy) = r
            .polygon
            .iter()
            .fold((0.0, 0.0), |(sx, sy), [x, y]| (sx + x, sy + y));
        (sy / n, sx / n)
    };
    rooms.sort_by(|a, b| {
        centre(a)
            .partial_cmp(&centre(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for (i, r) in rooms.iter_mut().enumerate() {
        r.id = format!("room_{}", i + 1);
    }
    let mut result = RoomsResult::new(image);
    result.source = ResultSource::Bedrock;
    result.pixels_per_metre = pixels_per_metre;
    result.rooms = rooms;
    Ok(result)
}

/// Twice-signed area halved, made positive: the outline's area whichever way it winds.
fn shoelace(p: &[[f64; 2]]) -> f64 {
    let n = p.len();
    let twice: f64 = (0..n)
        .map(|i| {
            let (a, b) = (p[i], p[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum();
    (twice / 2.0).abs()
}

fn rooms_misfit(why: String) -> StageError {
    StageError::new(
        ErrorCode::ExtractionFailed,
        format!("the model's reply does not fit the rooms schema: {why}"),
    )
}

/// Checks a `record_invoice` input against the schema's rules and builds the result.
pub fn parse_reply(input: &Value) -> Result<InvoiceResult> {
    invoice_record::parse(input, Judgement::Model, ResultSource::Bedrock)
}

/// serde_json -> smithy Document (tool schemas and inputs).
pub fn to_document(v: &Value) -> SmithyDocument {
    match v {
        Value::Null => SmithyDocument::Null,
        Value::Bool(b) => SmithyDocument::Bool(*b),
        Value::Number(n) => SmithyDocument::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or_default())
        }),
        Value::String(s) => SmithyDocument::String(s.clone()),
        Value::Array(a) => SmithyDocument::Array(a.iter().map(to_document).collect()),
        Value::Object(o) => SmithyDocument::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), to_document(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// smithy Document -> serde_json (tool-use inputs).
pub fn from_document(d: &SmithyDocument) -> Value {
    match d {
        SmithyDocument::Null => Value::Null,
        SmithyDocument::Bool(b) => Value::Bool(*b),
        SmithyDocument::Number(Number::PosInt(u)) => json!(u),
        SmithyDocument::Number(Number::NegInt(i)) => json!(i),
        SmithyDocument::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        SmithyDocument::String(s) => Value::String(s.clone()),
        SmithyDocument::Array(a) => Value::Array(a.iter().map(from_document).collect()),
        SmithyDocument::Object(o) => {
            // Sorted keys: a deterministic JSON for logs and fixtures.
            let sorted: BTreeMap<&String, &SmithyDocument> = o.iter().collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), from_document(v)))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip() {
        let schema = invoice_schema();
        assert_eq!(from_document(&to_document(&schema)), schema);
    }
}
