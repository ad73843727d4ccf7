//! The invoice record a language model fills in: the JSON schema of the invoice part of
//! the result model (fields, lines, tax breakdown; boxes and checks are not the model's
//! business), the document text it reads, and the check of its answer. Shared by every
//! model-backed extractor (Bedrock's forced tool `record_invoice`, an OpenAI-compatible
//! chat server's structured output), so they ask the same thing and map the answer to
//! [`InvoiceResult`] the same way.
//!
//! An answer that does not fit is an error (`EXTRACTION_FAILED`), never a half result.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::document::Document;
use crate::error::{ErrorCode, StageError};
use crate::result::{
    AMOUNT_FIELDS, DATE_FIELDS, Field, INVOICE_FIELDS, InvoiceResult, LineItem, ResultSource,
    TaxSubtotal,
};

/// The record's name: Bedrock's tool name, the chat server's `json_schema.name`.
pub const RECORD_NAME: &str = "record_invoice";

/// The largest document text sent to a model (characters); longer text is cut, and the
/// text says so.
pub const MAX_PROMPT_CHARS: usize = 100_000;

/// How values are written, for every prompt that asks for the record.
pub const VALUE_RULES: &str = "Amounts are decimal strings with a dot and no thousands \
separators (\"1234.50\"), dates are YYYY-MM-DD, currency is an ISO 4217 code. Leave out a \
field you cannot find; never invent one, and never fill a total the invoice does not print.";

/// Who judges the values the model gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The model rates each value (`confidence` 0..1) and names its page.
    Model,
    /// The model gives values only; the caller rates them against the document (a
    /// confidence of 0 and no page until it does).
    Caller,
}

/// The record's JSON schema. Optional properties are left out of `required`; see
/// [`strict_schema`] for the form that lists every property.
pub fn schema(judgement: Judgement) -> Value {
    let decimal = json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"});
    let unit = json!({"type": "number", "minimum": 0, "maximum": 1});
    let page = json!({"type": "integer", "minimum": 1});
    let judged = judgement == Judgement::Model;
    let mut field = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["value"],
        "properties": {"value": {"type": "string"}}
    });
    let mut line = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["description", "net_amount"],
        "properties": {
            "line_id": {"type": "string"},
            "description": {"type": "string"},
            "quantity": decimal,
            "unit_price": decimal,
            "net_amount": decimal,
            "tax_rate": decimal
        }
    });
    if judged {
        for item in [&mut field, &mut line] {
            item["properties"]["confidence"] = unit.clone();
            item["properties"]["page"] = page.clone();
            if let Some(required) = item["required"].as_array_mut() {
                required.push(json!("confidence"));
            }
        }
    }
    let fields: Map<String, Value> = INVOICE_FIELDS
        .iter()
        .map(|name| ((*name).to_owned(), field.clone()))
        .collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["fields", "lines", "tax_breakdown"],
        "properties": {
            "fields": {"type": "object", "additionalProperties": false, "properties": fields},
            "lines": {"type": "array", "items": line},
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

/// The schema in the form strict structured output demands (OpenAI's `strict: true`):
/// every object lists all its properties as required, and a property that was optional
/// may be `null` instead. [`parse`] reads a `null` as absent.
pub fn strict_schema(schema: &Value) -> Value {
    let mut out = schema.clone();
    make_strict(&mut out);
    out
}

fn make_strict(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    if let Some(items) = obj.get_mut("items") {
        make_strict(items);
    }
    let Some(Value::Object(props)) = obj.get_mut("properties") else {
        return;
    };
    let names: Vec<String> = props.keys().cloned().collect();
    let required: Vec<String> = match obj.get("required") {
        Some(Value::Array(r)) => r
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            make_strict(prop);
            if !required.contains(name)
                && let Some(Value::String(t)) = prop.get("type").cloned()
            {
                prop["type"] = json!([t, "null"]);
            }
        }
    }
    obj.insert("required".to_owned(), json!(names));
}

/// The text a model reads: every page's lines in reading order, each page opened by a
/// `--- page N ---` mark; cut at [`MAX_PROMPT_CHARS`] with a mark saying so.
pub fn document_text(document: &Document) -> String {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    fields: BTreeMap<String, Option<RecordField>>,
    lines: Vec<RecordLine>,
    tax_breakdown: Vec<RecordTax>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordField {
    value: String,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    page: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine {
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
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    page: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordTax {
    rate: String,
    basis: String,
    tax: String,
}

/// Checks a record against the schema's rules (known field names, decimal strings, ISO
/// dates, ISO 4217 currency, confidences in 0..1, pages from 1) and builds the result.
pub fn parse(
    input: &Value,
    judgement: Judgement,
    source: ResultSource,
) -> Result<InvoiceResult, StageError> {
    let record: Record =
        serde_json::from_value(input.clone()).map_err(|e| misfit(e.to_string()))?;
    let judge = |what: &str, c: Option<f64>| -> Result<f32, StageError> {
        match (judgement, c) {
            (Judgement::Caller, _) => Ok(0.0),
            (Judgement::Model, Some(c)) if (0.0..=1.0).contains(&c) => Ok(c as f32),
            (Judgement::Model, Some(c)) => {
                Err(misfit(format!("{what} confidence {c} is outside 0..1")))
            }
            (Judgement::Model, None) => Err(misfit(format!("{what} has no confidence"))),
        }
    };
    let mut result = InvoiceResult::new(source);
    for (name, f) in record.fields {
        if !INVOICE_FIELDS.contains(&name.as_str()) {
            return Err(misfit(format!("unknown field {name:?}")));
        }
        let Some(f) = f else { continue };
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
        let mut field = Field::new(value, judge(&name, f.confidence)?);
        field.page = page(&name, f.page)?;
        result.set(&name, field);
    }
    for (i, l) in record.lines.into_iter().enumerate() {
        let what = format!("line {}", i + 1);
        let opt = |v: Option<String>, part: &str| -> Result<Option<Decimal>, StageError> {
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
            confidence: judge(&what, l.confidence)?,
            page: page(&what, l.page)?,
            bbox: None,
        });
    }
    for (i, t) in record.tax_breakdown.into_iter().enumerate() {
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
        ErrorCode::ExtractionFailed,
        format!("the model's reply does not fit the invoice schema: {why}"),
    )
}

fn decimal(what: &str, v: &str) -> Result<Decimal, StageError> {
    let plain = !v.is_empty()
        && v.trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
    match Decimal::from_str(v) {
        Ok(d) if plain => Ok(d),
        _ => Err(misfit(format!("{what} {v:?} is not a decimal string"))),
    }
}

fn page(what: &str, p: Option<u32>) -> Result<Option<u32>, StageError> {
    match p {
        Some(0) => Err(misfit(format!("{what} page 0 (pages start at 1)"))),
        p => Ok(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged() -> Value {
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

    fn parse_judged(v: &Value) -> Result<InvoiceResult, StageError> {
        parse(v, Judgement::Model, ResultSource::Bedrock)
    }

    #[test]
    fn a_fitting_record_becomes_a_result() {
        let r = parse_judged(&judged()).expect("fits");
        assert_eq!(r.source, ResultSource::Bedrock);
        assert_eq!(r.value("invoice_number"), Some("R-2024-001"));
        assert_eq!(r.fields["invoice_number"].page, Some(1));
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
            ("/lines/0/page", json!(0)),
            ("/tax_breakdown", json!(null)),
        ];
        for (path, value) in cases {
            let mut v = judged();
            *v.pointer_mut(path).expect("path exists") = value;
            let err = parse_judged(&v).expect_err(path);
            assert_eq!(err.code, ErrorCode::ExtractionFailed, "{path}");
            assert!(err.message.contains("does not fit"), "{path}: {err}");
        }
        let mut v = judged();
        v["fields"]["iban"] = json!({"value": "DE00", "confidence": 0.9});
        assert!(parse_judged(&v).is_err());
        let mut v = judged();
        v["extra"] = json!(1);
        assert!(parse_judged(&v).is_err());
        let mut v = judged();
        v["fields"]["currency"] = json!({"value": "EUR"});
        assert!(
            parse_judged(&v).is_err(),
            "a judged record rates every value"
        );
    }

    #[test]
    fn the_caller_judges_values_given_without_confidence() {
        let v = json!({
            "fields": {"invoice_number": {"value": " R-1 "}, "due_date": null},
            "lines": [{"line_id": null, "description": "Widgets", "quantity": null,
                       "unit_price": null, "net_amount": "10.00", "tax_rate": null}],
            "tax_breakdown": []
        });
        let r = parse(&v, Judgement::Caller, ResultSource::Llm).expect("fits");
        assert_eq!(r.source, ResultSource::Llm);
        assert_eq!(r.value("invoice_number"), Some("R-1"));
        assert_eq!(r.fields["invoice_number"].confidence, 0.0);
        assert!(!r.fields.contains_key("due_date"), "null is absent");
        assert_eq!(r.lines[0].quantity, None);
    }

    #[test]
    fn the_strict_form_requires_every_property_and_lets_optional_ones_be_null() {
        let s = strict_schema(&schema(Judgement::Caller));
        let fields = &s["properties"]["fields"];
        assert_eq!(
            fields["required"].as_array().map(Vec::len),
            Some(INVOICE_FIELDS.len())
        );
        assert_eq!(
            fields["properties"]["gross_total"]["type"],
            json!(["object", "null"])
        );
        assert_eq!(
            fields["properties"]["gross_total"]["properties"]["value"]["type"],
            json!("string"),
            "a required property stays as it was"
        );
        let line = &s["properties"]["lines"]["items"];
        assert_eq!(
            line["properties"]["quantity"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(line["properties"]["net_amount"]["type"], json!("string"));
        assert_eq!(
            line["required"].as_array().map(Vec::len),
            Some(6),
            "line_id, description, quantity, unit_price, net_amount, tax_rate"
        );
        // The judged schema asks for confidences; the caller's does not.
        let judged = schema(Judgement::Model);
        assert!(judged["properties"]["lines"]["items"]["properties"]["confidence"].is_object());
        assert!(s["properties"]["lines"]["items"]["properties"]["confidence"].is_null());
    }

    #[test]
    fn long_text_is_cut_with_a_mark() {
        let word = crate::document::Word {
            text: "x".repeat(1000),
            bbox: crate::document::BBox::default(),
            confidence: 1.0,
        };
        let line = crate::document::Line::from_words(vec![word]).expect("line");
        let doc = Document {
            source: crate::document::TextSource::PdfText,
            pages: vec![crate::document::Page {
                number: 1,
                width: 1.0,
                height: 1.0,
                lines: vec![line; 200],
            }],
        };
        let text = document_text(&doc);
        assert!(text.starts_with("--- page 1 ---\n"));
        assert!(text.ends_with("--- the text was cut here ---\n"));
        assert!(text.chars().count() < MAX_PROMPT_CHARS + 100);
    }
}
