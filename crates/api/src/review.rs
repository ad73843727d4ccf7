//! Human review and retry: the queue of jobs in review, a reviewer's decision (approve,
//! correct, reject; or a dry run of it for live checks), and the retry of a failed job.
//! The rules live in `docpipe_core::review` and `docpipe_core::lifecycle`; these handlers
//! only read the request and shape the answer.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use docpipe_core::review::{self, ReviewDecision, ReviewError, ReviewPorts};
use docpipe_core::{ErrorCode, JobFilter, JobStatus, lifecycle};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::envelope::success;
use crate::error::ApiError;
use crate::jobs::{owned_job, read_body};
use crate::state::AppState;
use crate::views::JobView;

/// The most jobs the review queue lists.
const MAX_QUEUE: usize = 500;

/// One job waiting for a reviewer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuedReview {
    pub job: JobView,
    /// Why verify sent it to review (from its result).
    pub review_reasons: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReviewQueue {
    /// Oldest first.
    pub reviews: Vec<QueuedReview>,
}

#[utoipa::path(
    get,
    path = "/api/v1/reviews",
    tag = "review",
    responses(
        (status = 200, description = "The caller's jobs in needs_review, oldest first", body = ReviewQueue)
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn queue(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let mut jobs = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .jobs
            .list(&JobFilter {
                status: Some(JobStatus::NeedsReview),
                owner: Some(caller.key_name.clone()),
                limit: Some(100),
                cursor,
                ..JobFilter::default()
            })
            .await?;
        jobs.extend(page.jobs);
        cursor = page.next_cursor;
        if cursor.is_none() || jobs.len() >= MAX_QUEUE {
            break;
        }
    }
    // Pages come newest first.
    jobs.reverse();
    let mut reviews = Vec::with_capacity(jobs.len());
    for job in &jobs {
        reviews.push(QueuedReview {
            job: JobView::new(job, None, &state.settings.pricing),
            review_reasons: reasons(&state, job).await,
        });
    }
    Ok(success(ReviewQueue { reviews }, StatusCode::OK))
}

/// The review reasons in a job's result; none when it cannot be read (the queue still
/// lists the job).
async fn reasons(state: &AppState, job: &docpipe_core::Job) -> Vec<String> {
    let Some(key) = &job.keys.result else {
        return Vec::new();
    };
    let Ok(Some(bytes)) = state.objects.get(key).await else {
        return Vec::new();
    };
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| serde_json::from_value(v.get("review_reasons")?.clone()).ok())
        .unwrap_or_default()
}

/// `POST /api/v1/jobs/{id}/review`: a decision, or with `dry_run` its checks only.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ReviewRequest {
    /// approve, correct (with fields, lines, force, comment) or reject (with reason).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub decision: ReviewDecision,
    /// Check the decision without recording it (the console's live checks).
    #[serde(default)]
    pub dry_run: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{job_id}/review",
    tag = "review",
    params(("job_id" = String, Path, description = "job id")),
    request_body = ReviewRequest,
    responses(
        (status = 200, description = "Recorded: the job (completed or failed) and its result version; or, with dry_run, the checks"),
        (status = 400, description = "Bad decision (VALIDATION_ERROR)"),
        (status = 404, description = "No such job (JOB_NOT_FOUND)"),
        (status = 409, description = "Not in review: another reviewer decided first (JOB_STATE_CONFLICT)"),
        (status = 422, description = "The correction breaks checks (CHECKS_FAILED, details.checks)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let job = owned_job(&state, &caller, &job_id).await?;
    let bytes = read_body(body, 4 * 1024 * 1024).await?;
    let request: ReviewRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::validation(format!("invalid review: {e}"), None))?;
    let ports = ReviewPorts {
        jobs: &*state.jobs,
        objects: &*state.objects,
        clock: &*state.clock,
        confidence_threshold: state.settings.review_confidence_threshold,
    };
    if request.dry_run {
        let checked = review::check(ports, &job.id, &request.decision)
            .await
            .map_err(review_error)?;
        return Ok(success(checked, StatusCode::OK));
    }
    let reviewed = review::review(ports, &job.id, &caller.key_name, &request.decision)
        .await
        .map_err(review_error)?;
    let history = state.jobs.history(&job.id).await?;
    Ok(success(
        json!({
            "job": JobView::new(&reviewed.job, Some(&history), &state.settings.pricing),
            "result": reviewed.result.unwrap_or(Value::Null),
        }),
        StatusCode::OK,
    ))
}

fn review_error(e: ReviewError) -> ApiError {
    match e {
        ReviewError::ChecksFailed(checks) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ChecksFailed,
            format!(
                "the correction breaks {}; fix it, or send force with a comment",
                checks
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with_details(json!({ "checks": checks })),
        ReviewError::Stage(e) if e.code == ErrorCode::ValidationError => {
            ApiError::validation(e.message, None)
        }
        ReviewError::Stage(e) => e.into(),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{job_id}/retry",
    tag = "review",
    params(("job_id" = String, Path, description = "job id")),
    responses(
        (status = 202, description = "The failed job runs again as execution {job_id}-r{n}", body = JobView),
        (status = 404, description = "No such job (JOB_NOT_FOUND)"),
        (status = 409, description = "Not failed (JOB_STATE_CONFLICT) or cancelled (JOB_CANCELLED)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let job = owned_job(&state, &caller, &job_id).await?;
    let job = lifecycle::retry(
        &*state.jobs,
        &*state.orchestrator,
        &*state.executions,
        &*state.clock,
        &job.id,
        &caller.key_name,
    )
    .await?;
    Ok(success(
        JobView::new(&job, None, &state.settings.pricing),
        StatusCode::ACCEPTED,
    ))
}
