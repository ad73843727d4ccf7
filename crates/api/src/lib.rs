//! docpipe-api: the HTTP API as one axum [`Router`], hosted by `docpipe serve` (axum on a
//! local port), by Lambda (`lambda_http::run`) and by tests (`tower::ServiceExt::oneshot`).
//! Every response is a JSON envelope; every error has a stable code.

mod auth;
mod console;
mod envelope;
mod error;
mod executions;
mod export;
mod health;
mod jobs;
mod kept;
pub mod openapi;
mod rate;
mod review;
mod state;
mod uploads;
mod views;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;
pub use state::{ApiPorts, ApiSettings, AppState, Presigner, UploadLink, Uploads};
pub use uploads::{LocalPresigner, verify_local_signature};
pub use views::JobView;

/// The whole API.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.max_request_bytes();
    // Full paths rather than `nest("/api/v1", ..)`: a nested router costs every request a
    // prefix strip and a second routing step.
    let api = Router::new()
        .route("/api/v1/jobs", post(jobs::create).get(jobs::list))
        .route(
            "/api/v1/jobs/{job_id}",
            get(jobs::show).delete(jobs::cancel),
        )
        .route("/api/v1/jobs/{job_id}/result", get(jobs::result))
        .route("/api/v1/jobs/{job_id}/review", post(review::decide))
        .route("/api/v1/jobs/{job_id}/retry", post(review::retry))
        .route("/api/v1/jobs/{job_id}/executions", get(executions::list))
        .route("/api/v1/jobs/{job_id}/pages/{page}", get(executions::page))
        .route("/api/v1/reviews", get(review::queue))
        .route("/api/v1/uploads", post(uploads::create))
        .route(
            "/api/v1/webhooks",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/api/v1/webhooks/{webhook_id}",
            axum::routing::delete(webhooks::delete),
        )
        .route(
            "/api/v1/webhooks/{webhook_id}/failures",
            get(webhooks::failures),
        )
        .route(
            "/api/v1/webhooks/{webhook_id}/replay",
            post(webhooks::replay),
        )
        // Handlers above take a [`auth::Caller`]: that is the authentication. The
        // presigned PUT carries its own signature instead of an API key.
        .route("/api/v1/uploads/{upload_id}", put(uploads::receive));
    let cors = cors_layer(&state.settings.cors_origins);
    Router::new()
        .merge(api)
        .merge(console::routes())
        .route("/health", get(health::health))
        .route("/openapi.json", get(openapi::serve))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        // A client that stops sending its body mid-way gets 408 instead of holding a
        // connection and a buffer for as long as it likes.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.settings.body_timeout,
        ))
        .layer(tower::util::option_layer(cors))
        .layer(envelope::EnvelopeLayer)
        .with_state(state)
}

/// `None` when no origin is allowed: then no CORS headers are ever sent, and requests skip
/// the layer.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let parsed: Vec<axum::http::HeaderValue> =
        origins.iter().filter_map(|o| o.parse().ok()).collect();
    if origins.iter().any(|o| o == "*") {
        Some(CorsLayer::permissive())
    } else if parsed.is_empty() {
        None
    } else {
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(parsed))
                .allow_methods(tower_http::cors::Any)
                .allow_headers(tower_http::cors::Any),
        )
    }
}
