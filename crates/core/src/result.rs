//! The result model: the contract shared by the API, `docpipe run --json`, `docpipe eval`
//! and the record models fill in (`invoice_record`). Amounts are `rust_decimal` (decimal
//! strings on the wire), dates `YYYY-MM-DD` strings.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::document::BBox;
use crate::job::DocumentKind;

/// Field names of an invoice result, in the order they are documented.
pub const INVOICE_FIELDS: [&str; 15] = [
    "invoice_number",
    "type_code",
    "issue_date",
    "due_date",
    "seller_name",
    "buyer_name",
    "currency",
    "net_total",
    "charge_total",
    "allowance_total",
    "tax_basis_total",
    "tax_total",
    "gross_total",
    "prepaid_total",
    "due_total",
];

/// Fields whose value is a decimal amount.
pub const AMOUNT_FIELDS: [&str; 8] = [
    "net_total",
    "charge_total",
    "allowance_total",
    "tax_basis_total",
    "tax_total",
    "gross_total",
    "prepaid_total",
    "due_total",
];

/// Fields whose value is a `YYYY-MM-DD` date.
pub const DATE_FIELDS: [&str; 2] = ["issue_date", "due_date"];

/// Where the answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultSource {
    /// Read from the document's visible text (PDF text layer or OCR).
    Visual,
    /// Read from an embedded e-invoice (Factur-X / ZUGFeRD / XRechnung XML).
    EmbeddedXml,
    /// Returned by a model on Amazon Bedrock.
    Bedrock,
    /// Returned by a language model behind an OpenAI-compatible chat-completions server.
    Llm,
}

/// One extracted field: its value as a string (decimal amount, ISO date, ISO 4217 code or
/// text), how sure the extractor is, and where on which page it was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub value: String,
    pub confidence: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(rename = "box", default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<BBox>,
}

impl Field {
    pub fn new(value: impl Into<String>, confidence: f32) -> Self {
        Self {
            value: value.into(),
            confidence,
            page: None,
            bbox: None,
        }
    }

    pub fn at(mut self, page: u32, bbox: BBox) -> Self {
        self.page = Some(page);
        self.bbox = Some(bbox);
        self
    }
}

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LineItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_id: Option<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Decimal>,
    /// The line's net amount.
    pub net_amount: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_rate: Option<Decimal>,
    pub confidence: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(rename = "box", default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<BBox>,
}

/// One VAT rate's subtotal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxSubtotal {
    /// Percent, e.g. `19.00`.
    pub rate: Decimal,
    pub basis: Decimal,
    pub tax: Decimal,
}

/// One verification check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// The extracted (and, after verify, checked) invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceResult {
    /// Always [`DocumentKind::Invoice`].
    pub kind: DocumentKind,
    pub source: ResultSource,
    pub fields: BTreeMap<String, Field>,
    pub lines: Vec<LineItem>,
    pub tax_breakdown: Vec<TaxSubtotal>,
    pub checks: Vec<Check>,
    pub needs_review: bool,
    pub review_reasons: Vec<String>,
    /// Present on a version a person reviewed (see [`crate::review`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<crate::review::ReviewStamp>,
}

impl InvoiceResult {
    pub fn new(source: ResultSource) -> Self {
        Self {
            kind: DocumentKind::Invoice,
            source,
            fields: BTreeMap::new(),
            lines: Vec::new(),
            tax_breakdown: Vec::new(),
            checks: Vec::new(),
            needs_review: false,
            review_reasons: Vec::new(),
            review: None,
        }
    }

    /// The value of a field, if extracted.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(|f| f.value.as_str())
    }

    /// The value of an amount field, if extracted and a valid decimal.
    pub fn amount(&self, name: &str) -> Option<Decimal> {
        self.value(name).and_then(|v| v.parse().ok())
    }

    pub fn set(&mut self, name: &str, field: Field) {
        self.fields.insert(name.to_owned(), field);
    }
}

/// The width and height of the image rooms were detected on, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

/// One detected room: the free space enclosed by walls (door gaps bridged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    /// `room_1`, `room_2`, ... in reading order (top to bottom, left to right).
    pub id: String,
    /// Text found inside the room (e.g. "Kitchen"), when the plan carries text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Outline in image pixels, origin top left, clockwise or counter-clockwise, not closed
    /// (the last point does not repeat the first).
    pub polygon: Vec<[f64; 2]>,
    /// The same outline divided by the image's width and height (0..1).
    pub polygon_normalised: Vec<[f64; 2]>,
    /// Floor area in image pixels (free pixels, not the polygon's area).
    pub area_px: f64,
    /// Floor area in square metres, when the plan's scale is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_m2: Option<f64>,
    pub confidence: f32,
}

/// Rooms detected on a floor plan (a blueprint job's result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomsResult {
    /// Always [`DocumentKind::Blueprint`].
    pub kind: DocumentKind,
    pub source: ResultSource,
    /// The image the coordinates refer to (for a PDF, the page's embedded scan).
    pub image: ImageSize,
    /// The PDF page the scan came from (1-based); absent for PNG and JPEG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// Image pixels per metre of the building, when the plan's scale is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixels_per_metre: Option<f64>,
    pub rooms: Vec<Room>,
    pub checks: Vec<Check>,
    pub needs_review: bool,
    pub review_reasons: Vec<String>,
    /// Present on a version a person reviewed (see [`crate::review`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<crate::review::ReviewStamp>,
}

impl RoomsResult {
    pub fn new(image: ImageSize) -> Self {
        Self {
            kind: DocumentKind::Blueprint,
            source: ResultSource::Visual,
            image,
            page: None,
            pixels_per_metre: None,
            rooms: Vec::new(),
            checks: Vec::new(),
            needs_review: false,
            review_reasons: Vec::new(),
            review: None,
        }
    }
}

/// The `kind` a stored result (an extraction or a verified result) declares: which model
/// it is read into. `None` when it declares none the models know.
pub fn result_kind(value: &serde_json::Value) -> Option<DocumentKind> {
    #[derive(Deserialize)]
    struct Declared {
        kind: DocumentKind,
    }
    Declared::deserialize(value).ok().map(|d| d.kind)
}
