//! Error names. Every failure a stage can report carries a stable [`ErrorCode`] (what the
//! user sees on the job and in the API) and maps, here and nowhere else, to an
//! [`ErrorName`]: the string the state machine matches in `Retry`/`Catch` `ErrorEquals`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Stable, user-facing error codes (SCREAMING_SNAKE_CASE on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The bytes are not a PDF, PNG or JPEG (by magic bytes), or are empty.
    InvalidFileFormat,
    /// Larger than the configured maximum (50 MiB by default).
    FileTooLarge,
    /// A supported format that could not be parsed within the size, time and memory bounds.
    DocumentUnreadable,
    /// An encrypted document that needs a password (or a certificate) to open; one
    /// encrypted with an empty user password is read without asking.
    DocumentEncrypted,
    /// The document kind or format is valid but this build cannot process it yet.
    UnsupportedDocument,
    JobNotFound,
    JobAlreadyCompleted,
    InvalidTransition,
    /// The job was cancelled; stages stop at the next status change.
    JobCancelled,
    /// A dependency (store, OCR engine, model) is unavailable; retried by the state machine.
    ServiceUnavailable,
    /// A stage ran past its `TimeoutSeconds`.
    StageTimeout,
    /// A request or payload that does not have the expected shape.
    ValidationError,
    Unauthorized,
    RateLimited,
    /// A document URL that is not http(s) or resolves to a private, loopback, link-local,
    /// unique-local or multicast address.
    UrlNotAllowed,
    /// A document URL that answered with an error, too much data, or too late.
    UrlFetchFailed,
    /// The same `Idempotency-Key` was used with a different request.
    IdempotencyConflict,
    /// A presigned upload that another job already took.
    UploadAlreadyUsed,
    /// No such resource (route, upload).
    NotFound,
    /// A bug or an unexpected condition; details are logged, not shown.
    InternalError,
    /// The extractor's model gave no usable answer: a reply that does not fit the schema
    /// it was asked to fill, a reply cut at its token limit, or a request the model server
    /// refused.
    /// Retrying the same request cannot help.
    ExtractionFailed,
    /// The extractor's model declined to answer (a refusal or its content filter).
    ExtractionRefused,
    /// A reviewer rejected the job's result: the reason is the reviewer's.
    RejectedInReview,
    /// A correction that breaks the verify checks (arithmetic, dates, currency, required
    /// fields); the failed checks are in the error's details.
    ChecksFailed,
    /// The job is not in the status the action needs: not in review (another reviewer
    /// decided it first) or not failed (for a retry).
    JobStateConflict,
    /// The job's execution ran past its time limit before the job reached a final status.
    ExecutionTimedOut,
    /// The job's execution was stopped before the job reached a final status.
    ExecutionAborted,
    /// The job's execution failed without recording why on the job.
    ExecutionFailed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 28] = [
        Self::InvalidFileFormat,
        Self::FileTooLarge,
        Self::DocumentUnreadable,
        Self::DocumentEncrypted,
        Self::UnsupportedDocument,
        Self::JobNotFound,
        Self::JobAlreadyCompleted,
        Self::InvalidTransition,
        Self::JobCancelled,
        Self::ServiceUnavailable,
        Self::StageTimeout,
        Self::ValidationError,
        Self::Unauthorized,
        Self::RateLimited,
        Self::UrlNotAllowed,
        Self::UrlFetchFailed,
        Self::IdempotencyConflict,
        Self::UploadAlreadyUsed,
        Self::NotFound,
        Self::InternalError,
        Self::ExtractionFailed,
        Self::ExtractionRefused,
        Self::RejectedInReview,
        Self::ChecksFailed,
        Self::JobStateConflict,
        Self::ExecutionTimedOut,
        Self::ExecutionAborted,
        Self::ExecutionFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFileFormat => "INVALID_FILE_FORMAT",
            Self::FileTooLarge => "FILE_TOO_LARGE",
            Self::DocumentUnreadable => "DOCUMENT_UNREADABLE",
            Self::DocumentEncrypted => "DOCUMENT_ENCRYPTED",
            Self::UnsupportedDocument => "UNSUPPORTED_DOCUMENT",
            Self::JobNotFound => "JOB_NOT_FOUND",
            Self::JobAlreadyCompleted => "JOB_ALREADY_COMPLETED",
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::JobCancelled => "JOB_CANCELLED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::StageTimeout => "STAGE_TIMEOUT",
            Self::ValidationError => "VALIDATION_ERROR",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::RateLimited => "RATE_LIMITED",
            Self::UrlNotAllowed => "URL_NOT_ALLOWED",
            Self::UrlFetchFailed => "URL_FETCH_FAILED",
            Self::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            Self::UploadAlreadyUsed => "UPLOAD_ALREADY_USED",
            Self::NotFound => "NOT_FOUND",
            Self::InternalError => "INTERNAL_ERROR",
            Self::ExtractionFailed => "EXTRACTION_FAILED",
            Self::ExtractionRefused => "EXTRACTION_REFUSED",
            Self::RejectedInReview => "REJECTED_IN_REVIEW",
            Self::ChecksFailed => "CHECKS_FAILED",
            Self::JobStateConflict => "JOB_STATE_CONFLICT",
            Self::ExecutionTimedOut => "EXECUTION_TIMED_OUT",
            Self::ExecutionAborted => "EXECUTION_ABORTED",
            Self::ExecutionFailed => "EXECUTION_FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The state-machine error name for this code: the one mapping from codes to
    /// `ErrorEquals` names.
    pub fn error_name(self) -> ErrorName {
        match self {
            Self::InvalidFileFormat
            | Self::FileTooLarge
            | Self::DocumentUnreadable
            | Self::DocumentEncrypted
            | Self::UrlNotAllowed
            | Self::UrlFetchFailed => ErrorName::InvalidDocument,
            Self::UnsupportedDocument => ErrorName::Unsupported,
            Self::JobCancelled | Self::JobAlreadyCompleted | Self::InvalidTransition => {
                ErrorName::Cancelled
            }
            Self::ServiceUnavailable | Self::RateLimited => ErrorName::Transient,
            Self::JobNotFound
            | Self::StageTimeout
            | Self::ValidationError
            | Self::Unauthorized
            | Self::IdempotencyConflict
            | Self::UploadAlreadyUsed
            | Self::NotFound
            | Self::InternalError
            | Self::ExtractionFailed
            | Self::ExtractionRefused
            | Self::RejectedInReview
            | Self::ChecksFailed
            | Self::JobStateConflict
            | Self::ExecutionTimedOut
            | Self::ExecutionAborted
            | Self::ExecutionFailed => ErrorName::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the state machine sees as a Task's `Error`: `DocPipe.<Name>`. On Lambda this is the
/// function error's `errorType`; in the embedded interpreter it is the same string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorName {
    /// Worth retrying: a dependency hiccup.
    Transient,
    /// The document itself is bad; retrying cannot help. Caught and recorded on the job.
    InvalidDocument,
    /// Valid input this build cannot process.
    Unsupported,
    /// The job left the pipeline (cancelled, or already final): stop without recording.
    Cancelled,
    /// Anything else.
    Internal,
    /// The host stopped the execution because it shut down: an abort reason, never a
    /// Task's error (the job resumes from the journal on the next start).
    Shutdown,
}

impl ErrorName {
    pub const ALL: [Self; 6] = [
        Self::Transient,
        Self::InvalidDocument,
        Self::Unsupported,
        Self::Cancelled,
        Self::Internal,
        Self::Shutdown,
    ];

    /// The name a state-machine error string stands for; `None` for names that are not
    /// ours (`States.*`, `Lambda.*`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|name| name.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "DocPipe.Transient",
            Self::InvalidDocument => "DocPipe.InvalidDocument",
            Self::Unsupported => "DocPipe.Unsupported",
            Self::Cancelled => "DocPipe.Cancelled",
            Self::Internal => "DocPipe.Internal",
            Self::Shutdown => "DocPipe.Shutdown",
        }
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error type of stages and ports: a code and a message safe to show a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{code}: {message}")]
pub struct StageError {
    pub code: ErrorCode,
    pub message: String,
}

impl StageError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn name(&self) -> ErrorName {
        self.code.error_name()
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceUnavailable, message)
    }

    /// The `Cause` text a Task failure carries: Lambda's error JSON shape, with the code in
    /// front of the message so [`StageError::from_cause`] can read it back anywhere.
    pub fn to_cause(&self) -> String {
        serde_json::json!({
            "errorType": self.name().as_str(),
            "errorMessage": self.to_string(),
        })
        .to_string()
    }

    /// Reads a state-machine error back into a job error. `error` is the ASL error name
    /// (`DocPipe.*`, `States.Timeout`, `Lambda.*`), `cause` its cause text, which may be
    /// Lambda's error JSON, our own, or free text.
    pub fn from_cause(error: &str, cause: &str) -> Self {
        let message = serde_json::from_str::<serde_json::Value>(cause)
            .ok()
            .and_then(|v| {
                v.get("errorMessage")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| cause.to_owned());
        if let Some((code, rest)) = message.split_once(": ")
            && let Some(code) = ErrorCode::parse(code)
        {
            return Self::new(code, rest);
        }
        let code = match (ErrorName::parse(error), error) {
            (_, "States.Timeout" | "States.HeartbeatTimeout") => ErrorCode::StageTimeout,
            (Some(ErrorName::Transient), _) => ErrorCode::ServiceUnavailable,
            (_, e) if e.starts_with("Lambda.") => ErrorCode::ServiceUnavailable,
            (Some(ErrorName::Cancelled), _) => ErrorCode::JobCancelled,
            _ => ErrorCode::InternalError,
        };
        let message = if message.is_empty() {
            error.to_owned()
        } else {
            message
        };
        Self::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn every_error_name_parses_back_and_foreign_names_do_not() {
        for name in ErrorName::ALL {
            assert_eq!(ErrorName::parse(name.as_str()), Some(name));
            assert!(name.as_str().starts_with("DocPipe."), "{name}");
        }
        for foreign in [
            "States.ALL",
            "States.Timeout",
            "Lambda.Unknown",
            "DocPipe.",
            "",
        ] {
            assert_eq!(ErrorName::parse(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn a_cause_reads_back_into_the_same_error() {
        let e = StageError::new(ErrorCode::FileTooLarge, "51 MiB is over the 50 MiB limit");
        assert_eq!(StageError::from_cause(e.name().as_str(), &e.to_cause()), e);
    }

    #[test]
    fn foreign_errors_get_a_code() {
        assert_eq!(
            StageError::from_cause("States.Timeout", "").code,
            ErrorCode::StageTimeout
        );
        assert_eq!(
            StageError::from_cause("Lambda.ServiceException", "boom").code,
            ErrorCode::ServiceUnavailable
        );
        assert_eq!(
            StageError::from_cause("States.TaskFailed", "boom").code,
            ErrorCode::InternalError
        );
    }
}
