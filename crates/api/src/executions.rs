//! What a job's executions did (the console's execution page) and its document pages as
//! images (the review page).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docpipe_core::ErrorCode;
use serde_json::json;

use crate::auth::Caller;
use crate::envelope::success;
use crate::error::ApiError;
use crate::jobs::owned_job;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/v1/jobs/{job_id}/executions",
    tag = "executions",
    params(("job_id" = String, Path, description = "job id")),
    responses(
        (status = 200, description = "The job's executions, oldest first, each with its GetExecutionHistory-shaped events"),
        (status = 404, description = "No such job (JOB_NOT_FOUND)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let job = owned_job(&state, &caller, &job_id).await?;
    let executions = state.executions.executions(&job).await?;
    let executions: Vec<_> = executions
        .into_iter()
        .map(|e| {
            json!({
                "name": e.name,
                "status": e.status.as_str(),
                "started_at": e.started_at,
                "stopped_at": e.stopped_at,
                "input": e.input,
                "output": e.output,
                "error": e.error,
                "cause": e.cause,
                "events": e.history,
            })
        })
        .collect();
    Ok(success(json!({ "executions": executions }), StatusCode::OK))
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs/{job_id}/pages/{page}",
    tag = "executions",
    params(
        ("job_id" = String, Path, description = "job id"),
        ("page" = u32, Path, description = "page number, from 1")
    ),
    responses(
        (status = 200, description = "The page as a PNG or JPEG image", content_type = "image/png"),
        (status = 404, description = "No such job or page, or no image of it on this host (NOT_FOUND)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn page(
    State(state): State<AppState>,
    caller: Caller,
    Path((job_id, page)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let job = owned_job(&state, &caller, &job_id).await?;
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("job {} has no image of page {page}", job.id),
        )
    };
    let number: u32 = page.parse().map_err(|_| missing())?;
    let image = state
        .pages
        .page_image(&job, number)
        .await?
        .ok_or_else(missing)?;
    let mut resp = (StatusCode::OK, image.bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(image.media_type.as_str()),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    Ok(resp)
}
