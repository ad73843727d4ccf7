//! The API's error: a stable code, an HTTP status that fits it, a message safe to show,
//! optional details. Internal errors are logged once here and shown as a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docpipe_core::{ErrorCode, StageError};
use serde_json::{Value, json};

use crate::envelope::Enveloped;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn validation(message: impl Into<String>, field: Option<&str>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, ErrorCode::ValidationError, message);
        if let Some(f) = field {
            e.details = Some(json!({ "field": f }));
        }
        e
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn not_found_job() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::JobNotFound, "no such job")
    }
}

/// The HTTP status for each code.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidFileFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::FileTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::DocumentUnreadable
        | ErrorCode::DocumentEncrypted
        | ErrorCode::UnsupportedDocument => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::UrlNotAllowed | ErrorCode::UrlFetchFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::JobNotFound | ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::JobAlreadyCompleted
        | ErrorCode::InvalidTransition
        | ErrorCode::JobCancelled
        | ErrorCode::IdempotencyConflict
        | ErrorCode::UploadAlreadyUsed
        | ErrorCode::JobStateConflict => StatusCode::CONFLICT,
        ErrorCode::ChecksFailed => StatusCode::UNPROCESSABLE_ENTITY,
        // A job's error, never a request's.
        ErrorCode::RejectedInReview
        | ErrorCode::ExecutionTimedOut
        | ErrorCode::ExecutionAborted
        | ErrorCode::ExecutionFailed => StatusCode::CONFLICT,
        ErrorCode::ServiceUnavailable | ErrorCode::StageTimeout => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ValidationError => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::ExtractionFailed => StatusCode::BAD_GATEWAY,
        ErrorCode::ExtractionRefused => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<StageError> for ApiError {
    fn from(e: StageError) -> Self {
        if e.code == ErrorCode::InternalError {
            tracing::error!(error = %e.message, "internal error");
            return Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                "an internal error occurred; it has been logged",
            );
        }
        let mut err = Self::new(status_of(e.code), e.code, e.message);
        if e.code == ErrorCode::ServiceUnavailable {
            err.retry_after = Some(5);
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(d) = self.details {
            error["details"] = d;
        }
        let mut resp =
            Enveloped(json!({ "status": "error", "error": error }), self.status).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::ValidationError,
        "method not allowed on this route",
    )
}
