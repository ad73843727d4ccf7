//! Bedrock extraction: one `Converse` call with a single tool, `record_invoice`, whose
//! input schema is the invoice part of the result model, and a tool choice that forces
//! the model to answer through it. The reply is checked against the same rules the schema
//! states (known field names, decimal strings, ISO dates, ISO 4217 currency, confidences
//! in 0..1); a reply that does not fit is an error, never a half result.
//!
//! Token usage is added to [`TokenUsage`] counters the host reads after each call (the
//! extract Lambda writes them as CloudWatch metrics) and logged with the model id.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput, InferenceConfiguration, Message,
    SpecificToolChoice, StopReason, SystemContentBlock, Tool, ToolChoice, ToolConfiguration,
    ToolInputSchema, ToolSpecification,
};
use aws_smithy_types::{Document as SmithyDocument, Number};
use docpipe_core::ports::Result;
use docpipe_core::result::{AMOUNT_FIELDS, DATE_FIELDS, INVOICE_FIELDS};
use docpipe_core::{
    Document, ErrorCode, Extractor, Field, InvoiceResult, LineItem, ResultSource, StageError,
    TaxSubtotal,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::sdk_error;

pub const TOOL_NAME: &str = "record_invoice";

/// The largest document text sent to the model (characters); longer text is cut, which
/// the prompt says, so the model lowers its confidences rather than guesses.
const MAX_PROMPT_CHARS: usize = 100_000;

const SYSTEM_PROMPT: &str = "You read invoices. Call the record_invoice tool exactly once \
with the fields you find in the document text. Amounts are decimal strings with a dot and \
no thousands separators (\"1234.50\"), dates are YYYY-MM-DD, currency is an ISO 4217 code. \
Leave out a field you cannot find; never invent one. Confidence is 0..1: how sure you are \
the value is right. Pages are numbered from 1 as marked in the text.";

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

/// The tool's input schema: the invoice fields, lines and tax breakdown of the result
/// model (boxes and checks are not the model's business).
pub fn invoice_schema() -> Value {
    let field = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["value", "confidence"],
        "properties": {
            "value": {"type": "string"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "page": {"type": "integer", "minimum": 1}
        }
    });
    let decimal = json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"});
    let fields: serde_json::Map<String, Value> = INVOICE_FIELDS
        .iter()
        .map(|name| ((*name).to_owned(), field.clone()))
        .collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["fields", "lines", "tax_breakdown"],
        "properties": {
            "fields": {"type": "object", "additionalProperties": false, "properties": fields},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["description", "net_amount", "confidence"],
                    "properties": {
                        "line_id": {"type": "string"},
                        "description": {"type": "string"},
                        "quantity": decimal,
                        "unit_price": decimal,
                        "net_amount": decimal,
                        "tax_rate": decimal,
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "page": {"type": "integer", "minimum": 1}
                    }
                }
            },
            "tax_breakdown": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["rate", "basis", "tax"],
                    "properties": {"rate": decimal, "basis": decimal, "tax": decimal}
                }
            }
        }
    })
}

/// The prompt text: every page's lines, marked with page numbers.
fn document_text(document: &Document) -> String {
    let mut text = String::new();
    for page in &document.pages {
        text.push_str(&format!("--- page {} ---\n", page.number));
        for line in &page.lines {
            text.push_str(&line.text());
            text.push('\n');
        }
    }
    if text.chars().count() > MAX_PROMPT_CHARS {
        let cut: String = text.chars().take(MAX_PROMPT_CHARS).collect();
        return format!("{cut}\n--- the text was cut here ---\n");
    }
    text
}

fn build_error(e: impl std::fmt::Display) -> StageError {
    StageError::internal(format!("Bedrock request: {e}"))
}

#[async_trait]
impl Extractor for BedrockExtractor {
    async fn extract_invoice(
        &self,
        document: &Document,
        _original: Option<&[u8]>,
    ) -> Result<InvoiceResult> {
        let tool = ToolSpecification::builder()
            .name(TOOL_NAME)
            .description("Record the invoice's fields, lines and tax breakdown.")
            .input_schema(ToolInputSchema::Json(to_document(&invoice_schema())))
            .build()
            .map_err(build_error)?;
        let tools = ToolConfiguration::builder()
            .tools(Tool::ToolSpec(tool))
            .tool_choice(ToolChoice::Tool(
                SpecificToolChoice::builder()
                    .name(TOOL_NAME)
                    .build()
                    .map_err(build_error)?,
            ))
            .build()
            .map_err(build_error)?;
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(document_text(document)))
            .build()
            .map_err(build_error)?;
        let out = self
            .client
            .converse()
            .model_id(&self.model_id)
            .system(SystemContentBlock::Text(SYSTEM_PROMPT.to_owned()))
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
            tracing::info!(model_id = %self.model_id, input_tokens = u.input_tokens(),
                output_tokens = u.output_tokens(), "bedrock usage");
        }
        if out.stop_reason() == &StopReason::MaxTokens {
            return Err(StageError::internal(
                "the model's reply was cut at max_tokens; no partial result is kept",
            ));
        }
        let input = match out.output() {
            Some(ConverseOutput::Message(m)) => m.content().iter().find_map(|c| match c {
                ContentBlock::ToolUse(t) if t.name() == TOOL_NAME => Some(t.input()),
                _ => None,
            }),
            _ => None,
        }
        .ok_or_else(|| StageError::internal(format!("the model did not call {TOOL_NAME}")))?;
        parse_reply(&from_document(input))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    fields: BTreeMap<String, ReplyField>,
    lines: Vec<ReplyLine>,
    tax_breakdown: Vec<ReplyTax>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyField {
    value: String,
    confidence: f64,
    #[serde(default)]
    page: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyLine {
    #[serde(default)]
    line_id: Option<String>,
    description: String,
    #[serde(default)]
    quantity: Option<String>,
    #[serde(default)]
    unit_price: Option<String>,
    net_amount: String,
    #[serde(default)]
    tax_rate: Option<String>,
    confidence: f64,
    #[serde(default)]
    page: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyTax {
    rate: String,
    basis: String,
    tax: String,
}

/// Checks a `record_invoice` input against the schema's rules and builds the result.
pub fn parse_reply(input: &Value) -> Result<InvoiceResult> {
    let reply: Reply = serde_json::from_value(input.clone()).map_err(|e| misfit(e.to_string()))?;
    let mut result = InvoiceResult::new(ResultSource::Bedrock);
    for (name, f) in reply.fields {
        if !INVOICE_FIELDS.contains(&name.as_str()) {
            return Err(misfit(format!("unknown field {name:?}")));
        }
        let value = f.value.trim().to_owned();
        if AMOUNT_FIELDS.contains(&name.as_str()) {
            decimal(&name, &value)?;
        }
        if DATE_FIELDS.contains(&name.as_str())
            && chrono::NaiveDate::parse_from_str(&value, "%Y-%m-%d").is_err()
        {
            return Err(misfit(format!("{name} {value:?} is not a YYYY-MM-DD date")));
        }
        if name == "currency"
            && !(value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(misfit(format!(
                "currency {value:?} is not an ISO 4217 code"
            )));
        }
        let mut field = Field::new(value, confidence(&name, f.confidence)?);
        field.page = page(&name, f.page)?;
        result.set(&name, field);
    }
    for (i, l) in reply.lines.into_iter().enumerate() {
        let what = format!("line {}", i + 1);
        let opt = |v: Option<String>, part: &str| -> Result<Option<Decimal>> {
            v.map(|v| decimal(&format!("{what} {part}"), v.trim()))
                .transpose()
        };
        result.lines.push(LineItem {
            line_id: l.line_id,
            description: l.description,
            quantity: opt(l.quantity, "quantity")?,
            unit_price: opt(l.unit_price, "unit_price")?,
            net_amount: decimal(&format!("{what} net_amount"), l.net_amount.trim())?,
            tax_rate: opt(l.tax_rate, "tax_rate")?,
            confidence: confidence(&what, l.confidence)?,
            page: page(&what, l.page)?,
            bbox: None,
        });
    }
    for (i, t) in reply.tax_breakdown.into_iter().enumerate() {
        let what = format!("tax subtotal {}", i + 1);
        result.tax_breakdown.push(TaxSubtotal {
            rate: decimal(&format!("{what} rate"), t.rate.trim())?,
            basis: decimal(&format!("{what} basis"), t.basis.trim())?,
            tax: decimal(&format!("{what} tax"), t.tax.trim())?,
        });
    }
    Ok(result)
}

fn misfit(why: String) -> StageError {
    StageError::new(
        ErrorCode::InternalError,
        format!("the model's reply does not fit the invoice schema: {why}"),
    )
}

fn decimal(what: &str, v: &str) -> Result<Decimal> {
    let plain = !v.is_empty()
        && v.trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
    match Decimal::from_str(v) {
        Ok(d) if plain => Ok(d),
        _ => Err(misfit(format!("{what} {v:?} is not a decimal string"))),
    }
}

fn confidence(what: &str, c: f64) -> Result<f32> {
    if (0.0..=1.0).contains(&c) {
        Ok(c as f32)
    } else {
        Err(misfit(format!("{what} confidence {c} is outside 0..1")))
    }
}

fn page(what: &str, p: Option<u32>) -> Result<Option<u32>> {
    match p {
        Some(0) => Err(misfit(format!("{what} page 0 (pages start at 1)"))),
        p => Ok(p),
    }
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

    fn good() -> Value {
        json!({
            "fields": {
                "invoice_number": {"value": "R-2024-001", "confidence": 0.97, "page": 1},
                "issue_date": {"value": "2024-03-01", "confidence": 0.95},
                "currency": {"value": "EUR", "confidence": 0.99},
                "gross_total": {"value": "235.62", "confidence": 0.93}
            },
            "lines": [{"description": "Widgets", "quantity": "20", "unit_price": "9.90",
                       "net_amount": "198.00", "tax_rate": "19", "confidence": 0.9, "page": 1}],
            "tax_breakdown": [{"rate": "19.00", "basis": "198.00", "tax": "37.62"}]
        })
    }

    #[test]
    fn a_fitting_reply_becomes_a_result() {
        let r = parse_reply(&good()).expect("fits");
        assert_eq!(r.source, ResultSource::Bedrock);
        assert_eq!(r.value("invoice_number"), Some("R-2024-001"));
        assert_eq!(r.amount("gross_total"), Decimal::from_str("235.62").ok());
        assert_eq!(r.lines.len(), 1);
        assert_eq!(
            r.tax_breakdown[0].tax,
            Decimal::from_str("37.62").expect("dec")
        );
    }

    #[test]
    fn a_misfit_is_an_error_not_a_half_result() {
        let cases = [
            ("/fields/gross_total/value", json!("1.234,50")),
            ("/fields/issue_date/value", json!("01.03.2024")),
            ("/fields/currency/value", json!("euro")),
            ("/fields/currency/confidence", json!(1.5)),
            ("/lines/0/net_amount", json!(198.0)),
            ("/tax_breakdown", json!(null)),
        ];
        for (path, value) in cases {
            let mut v = good();
            *v.pointer_mut(path).expect("path exists") = value;
            let err = parse_reply(&v).expect_err(path);
            assert!(err.message.contains("does not fit"), "{path}: {err}");
        }
        let mut v = good();
        v["fields"]["iban"] = json!({"value": "DE00", "confidence": 0.9});
        assert!(parse_reply(&v).is_err());
        let mut v = good();
        v["extra"] = json!(1);
        assert!(parse_reply(&v).is_err());
    }

    #[test]
    fn documents_round_trip() {
        let schema = invoice_schema();
        assert_eq!(from_document(&to_document(&schema)), schema);
    }
}
