//! The operator console: one HTML page, one script and one stylesheet, compiled into the
//! binary and served at `/console`, plus `GET /api/v1/statemachine` (the definition and its
//! layered drawing) for the execution graph.
//!
//! The page holds no secret and sets no cookie: it asks for an API key, keeps it in the
//! tab's `sessionStorage` and sends it as `x-api-key` on each call, so the API's own
//! per-key scoping is the console's, and a forged cross-site request carries no key. The
//! assets are static; every answer forbids framing, inline script and other origins.

mod graph;

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use docpipe_core::StageError;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::envelope::{data_bytes, success_bytes};
use crate::error::ApiError;
use crate::state::AppState;

use graph::Graph;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Same origin only; no inline script or style; images also from `blob:` (page images
/// fetched with the key) and `data:`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(index))
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route("/console/app.js", get(script))
        .route("/console/app.css", get(stylesheet))
        .route("/api/v1/statemachine", get(statemachine))
}

async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

async fn script() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn stylesheet() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    // Small, and changed only with the binary: revalidating each load keeps an upgraded
    // server's page and script in step.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `GET /api/v1/statemachine`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StateMachineView {
    /// The Amazon States Language definition the pipeline runs.
    #[schema(value_type = Object)]
    pub definition: Value,
    pub graph: Graph,
}

/// The answer's `data`, serialised once: the definition is compiled in.
fn statemachine_data() -> Result<&'static axum::body::Bytes, ApiError> {
    static DATA: OnceLock<Result<axum::body::Bytes, String>> = OnceLock::new();
    DATA.get_or_init(|| {
        let definition: Value = serde_json::from_str(docpipe_core::PIPELINE_DEFINITION)
            .map_err(|e| format!("the pipeline definition is not JSON: {e}"))?;
        let graph = graph::layout(&definition)
            .map_err(|e| format!("the pipeline definition cannot be drawn: {e}"))?;
        data_bytes(&StateMachineView { definition, graph })
            .map_err(|e| format!("serialising the state machine: {}", e.message))
    })
    .as_ref()
    .map_err(|e| ApiError::from(StageError::internal(e.clone())))
}

#[utoipa::path(
    get,
    path = "/api/v1/statemachine",
    tag = "console",
    responses(
        (status = 200, description = "The pipeline's definition and a layered drawing of it: boxes (x, y, width, height in pixels) and transitions (next, choice, default, catch)", body = StateMachineView),
        (status = 401, description = "Missing or invalid API key (UNAUTHORIZED)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn statemachine(_caller: Caller) -> Response {
    match statemachine_data() {
        Ok(bytes) => success_bytes(bytes.clone(), StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_is_served_with_its_drawing() {
        let bytes = statemachine_data().expect("the shipped definition draws");
        let v: Value = serde_json::from_slice(bytes).expect("JSON");
        assert_eq!(v["definition"]["StartAt"], "Ingest");
        assert!(
            v["graph"]["nodes"]
                .as_array()
                .is_some_and(|n| !n.is_empty())
        );
        assert!(
            v["graph"]["edges"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "catch"))
        );
    }

    #[test]
    fn the_page_loads_no_inline_script_and_nothing_from_elsewhere() {
        assert!(INDEX_HTML.contains(r#"<script src="/console/app.js""#));
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains(" style="));
        assert!(!INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"));
        let script = APP_JS.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(!script.contains("http://") && !script.contains("https://"));
        // The key travels in a header only.
        assert!(APP_JS.contains("x-api-key"));
        assert!(!APP_JS.contains("api_key="));
    }
}
