//! A result as CSV, for spreadsheets: one `section,name,value,...` table holding the
//! fields, then the line items (invoices) or the rooms (blueprints).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docpipe_core::Job;
use serde_json::Value;

/// Quotes a cell when it holds a separator, a quote or a line break; a cell that a
/// spreadsheet would run as a formula gets a leading quote.
fn cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) && v.parse::<f64>().is_err() {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn row(out: &mut String, cells: &[String]) {
    let line: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// The CSV text of a result.
pub(crate) fn to_csv(result: &Value) -> String {
    let mut out = String::new();
    row(
        &mut out,
        &[
            "section",
            "name",
            "value",
            "confidence",
            "quantity",
            "unit_price",
            "tax_rate",
        ]
        .map(String::from),
    );
    if let Some(Value::Object(fields)) = result.get("fields") {
        for (name, field) in fields {
            row(
                &mut out,
                &[
                    "field".into(),
                    name.clone(),
                    text(field.get("value")),
                    text(field.get("confidence")),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
            );
        }
    }
    if let Some(Value::Array(lines)) = result.get("lines") {
        for line in lines {
            row(
                &mut out,
                &[
                    "line".into(),
                    text(line.get("description")),
                    text(line.get("net_amount")),
                    text(line.get("confidence")),
                    text(line.get("quantity")),
                    text(line.get("unit_price")),
                    text(line.get("tax_rate")),
                ],
            );
        }
    }
    if let Some(Value::Array(rooms)) = result.get("rooms") {
        for room in rooms {
            row(
                &mut out,
                &[
                    "room".into(),
                    text(
                        room.get("label")
                            .filter(|l| !l.is_null())
                            .or(room.get("id")),
                    ),
                    text(room.get("area_px")),
                    text(room.get("confidence")),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
            );
        }
    }
    out
}

/// The CSV as a download named after the job.
pub(crate) fn csv_response(job: &Job, result: &Value) -> Response {
    let mut resp = (StatusCode::OK, to_csv(result)).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.csv\"", job.id)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(cell("-12.50"), "-12.50");
    }

    #[test]
    fn fields_then_lines() {
        let r = serde_json::json!({
            "fields": {"gross_total": {"value": "119.00", "confidence": 0.9}},
            "lines": [{"description": "Widget, large", "net_amount": "100.00", "confidence": 0.8}]
        });
        let csv = to_csv(&r);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[1], "field,gross_total,119.00,0.9,,,");
        assert_eq!(rows[2], "line,\"Widget, large\",100.00,0.8,,,");
    }
}
