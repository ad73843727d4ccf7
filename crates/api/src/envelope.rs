//! The uniform envelope. Handlers and errors produce the body without `meta`; the
//! outermost middleware adds `meta.request_id` (honouring a valid `x-request-id`, else a new
//! one) and echoes the id in the response header.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A JSON body still waiting for its `meta`.
#[derive(Clone)]
pub struct Enveloped(pub Value, pub StatusCode);

/// What a handler left for the middleware to wrap.
#[derive(Clone)]
enum PendingBody {
    /// A whole body (errors), `meta` still to add.
    Value(Value),
    /// A success's `data`, already serialised (the hot path: no intermediate `Value`).
    Data(Vec<u8>),
}

/// The request id of the current request, for handlers that pass it on (the correlation
/// id of an execution).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl IntoResponse for Enveloped {
    fn into_response(self) -> Response {
        let mut resp = self.1.into_response();
        resp.extensions_mut().insert(PendingBody::Value(self.0));
        resp
    }
}

/// `{"status": "success", "data": ...}` with a status code.
pub fn success(data: impl serde::Serialize, status: StatusCode) -> Response {
    match serde_json::to_vec(&data) {
        Ok(bytes) => {
            let mut resp = status.into_response();
            resp.extensions_mut().insert(PendingBody::Data(bytes));
            resp
        }
        Err(e) => crate::ApiError::from(docpipe_core::StageError::internal(format!(
            "serialising a response: {e}"
        )))
        .into_response(),
    }
}

fn valid_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn new_request_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        b = n.to_le_bytes();
    }
    format!("req_{}", hex::encode(b))
}

pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    tracing::info!(request_id = %id, %method, %path, status = resp.status().as_u16(), "request");
    if let Some(pending) = resp.extensions_mut().remove::<PendingBody>() {
        let bytes = match pending {
            PendingBody::Value(mut body) => {
                body["meta"] = json!({ "request_id": id });
                serde_json::to_vec(&body).unwrap_or_default()
            }
            PendingBody::Data(data) => {
                let id_json = Value::String(id.clone()).to_string();
                let mut out = Vec::with_capacity(data.len() + id_json.len() + 64);
                out.extend_from_slice(br#"{"status":"success","data":"#);
                out.extend_from_slice(&data);
                out.extend_from_slice(br#","meta":{"request_id":"#);
                out.extend_from_slice(id_json.as_bytes());
                out.extend_from_slice(b"}}");
                out
            }
        };
        let (mut parts, _) = resp.into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        resp = Response::from_parts(parts, Body::from(bytes));
    } else if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        || resp.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE
    {
        // A rejection produced below us by a layer (body limit) rather than a handler.
        let body = json!({
            "status": "error",
            "error": {
                "code": if resp.status() == StatusCode::PAYLOAD_TOO_LARGE { "FILE_TOO_LARGE" } else { "INVALID_FILE_FORMAT" },
                "message": "the request body was refused",
            },
            "meta": { "request_id": id },
        });
        let (mut parts, _) = resp.into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        resp = Response::from_parts(parts, Body::from(body.to_string()));
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
