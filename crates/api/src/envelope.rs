//! The uniform envelope. Handlers and errors produce the body without `meta`; the
//! outermost middleware adds `meta.request_id` (honouring a valid `x-request-id`, else a new
//! one) and echoes the id in the response header.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tower::{Layer, Service};

/// A JSON body still waiting for its `meta`.
#[derive(Clone)]
pub(crate) struct Enveloped(pub Value, pub StatusCode);

/// What a handler left for the middleware to wrap.
#[derive(Clone)]
enum PendingBody {
    /// A whole body (errors), `meta` still to add.
    Value(Value),
    /// A success's `data`, already serialised (the hot path: no intermediate `Value`).
    Data(axum::body::Bytes),
}

/// The request id of the current request, for handlers that pass it on (the correlation
/// id of an execution).
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub String);

impl IntoResponse for Enveloped {
    fn into_response(self) -> Response {
        let mut resp = self.1.into_response();
        resp.extensions_mut().insert(PendingBody::Value(self.0));
        resp
    }
}

/// `{"status": "success", "data": ...}` with a status code.
pub(crate) fn success(data: impl serde::Serialize, status: StatusCode) -> Response {
    match data_bytes(&data) {
        Ok(bytes) => success_bytes(bytes, status),
        Err(e) => e.into_response(),
    }
}

/// A success's `data`, serialised, for handlers that keep it.
pub(crate) fn data_bytes(
    data: &impl serde::Serialize,
) -> Result<axum::body::Bytes, crate::ApiError> {
    serde_json::to_vec(data).map(Into::into).map_err(|e| {
        crate::ApiError::from(docpipe_core::StageError::internal(format!(
            "serialising a response: {e}"
        )))
    })
}

/// `{"status": "success", "data": ...}` around `data`, already serialised.
pub(crate) fn success_bytes(data: axum::body::Bytes, status: StatusCode) -> Response {
    let mut resp = status.into_response();
    resp.extensions_mut().insert(PendingBody::Data(data));
    resp
}

fn valid_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A new request id: 16 random bytes chosen once per process, then one per request from
/// a counter through a bijective mix (so ids never repeat within a process, and look
/// unrelated). A system call for fresh randomness on every request cost more than the
/// whole rest of the id.
fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<[u64; 2]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(|| {
        let mut b = [0u8; 16];
        if getrandom::fill(&mut b).is_err() {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
                ^ u128::from(std::process::id());
            b = n.to_le_bytes();
        }
        let (lo, hi) = b.split_at(8);
        [
            u64::from_le_bytes(lo.try_into().unwrap_or_default()),
            u64::from_le_bytes(hi.try_into().unwrap_or_default()),
        ]
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // splitmix64's finaliser: a bijection on u64.
    let mut z = n.wrapping_add(seed[1]);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("req_{:016x}{:016x}", seed[0], z)
}

/// The outermost layer: gives each request its id, logs it, and wraps what the handler
/// left into the envelope. Written as a plain [`Service`] rather than with
/// `middleware::from_fn`, which clones and boxes the rest of the stack on every request.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EnvelopeLayer;

impl<S> Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Envelope<S> {
        Envelope { inner }
    }
}

/// See [`EnvelopeLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Envelope<S> {
    inner: S,
}

impl<S> Service<Request> for Envelope<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| valid_request_id(v))
            .map(str::to_owned)
            .unwrap_or_else(new_request_id);
        req.extensions_mut().insert(RequestId(id.clone()));
        // The request line is only copied when the access log is on.
        let line = tracing::enabled!(tracing::Level::INFO)
            .then(|| (req.method().clone(), req.uri().path().to_owned()));
        let response = self.inner.call(req);
        Box::pin(async move {
            let mut resp = response.await?;
            if let Some((method, path)) = line {
                tracing::info!(request_id = %id, %method, %path, status = resp.status().as_u16(), "request");
            }
            if resp.extensions().get::<PendingBody>().is_none() && is_bare_rejection(&resp) {
                resp = envelop_rejection(resp).await;
            }
            Ok(finish(resp, id))
        })
    }
}

/// An error answer that no handler made: an extractor's or a layer's rejection (a path
/// segment that is not UTF-8, a body over the limit), plain text by default.
fn is_bare_rejection(resp: &Response) -> bool {
    (resp.status().is_client_error() || resp.status().is_server_error())
        && !resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
}

/// The code for a rejection's status.
fn rejection_code(status: StatusCode) -> docpipe_core::ErrorCode {
    use docpipe_core::ErrorCode;
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::FileTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::InvalidFileFormat,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::ServiceUnavailable,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::ValidationError,
    }
}

/// Puts a bare rejection in the envelope, with its text (axum's rejections say what was
/// wrong, and nothing internal) as the message.
async fn envelop_rejection(resp: Response) -> Response {
    use http_body_util::BodyExt;
    let (parts, body) = resp.into_parts();
    let text = match http_body_util::Limited::new(body, 4096).collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_owned(),
        Err(_) => String::new(),
    };
    let code = rejection_code(parts.status);
    let message = if text.is_empty() || code == docpipe_core::ErrorCode::InternalError {
        "the request was refused".to_owned()
    } else {
        text
    };
    let body = json!({
        "status": "error",
        "error": { "code": code.as_str(), "message": message },
    });
    let mut resp = Response::from_parts(parts, Body::empty());
    resp.extensions_mut().insert(PendingBody::Value(body));
    resp
}

/// Puts the body a handler left (or a layer's bare rejection) in the envelope with its
/// request id.
fn finish(mut resp: Response, id: String) -> Response {
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
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
