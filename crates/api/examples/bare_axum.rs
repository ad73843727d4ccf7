//! The baseline for `bench/api.sh`: a bare axum handler that returns a small JSON object,
//! with no store, auth or envelope behind it.

use axum::Json;
use axum::routing::get;
use serde_json::json;

// The allocator `docpipe serve` runs with, so the baseline differs from it only in the work.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/api/v1/jobs/{job_id}",
        get(
            |axum::extract::Path(id): axum::extract::Path<String>| async move {
                Json(json!({"job_id": id, "status": "completed"}))
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
