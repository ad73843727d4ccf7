//! How an AWS SDK failure becomes a [`StageError`]: the one place that decides which AWS
//! errors are worth a retry (`DocPipe.Transient`) and which are not.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use docpipe_core::{ErrorCode, StageError};

/// Error codes AWS services use for "slow down": surfaced as `RATE_LIMITED`.
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "LimitExceededException",
    "TransactionInProgressException",
];

/// Error codes for a service that is briefly unwell: surfaced as `SERVICE_UNAVAILABLE`.
const UNAVAILABLE: &[&str] = &[
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServiceException",
    "ModelNotReadyException",
    "ModelTimeoutException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// The error code of an SDK failure, if the service sent one.
pub fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, Response>) -> Option<&str> {
    err.code()
}

/// Classifies an SDK failure. `what` names the operation for the message, e.g.
/// `"DynamoDB UpdateItem"`. The full error chain is logged here, once; the message keeps
/// the operation and the service's code only, so no internals reach a job record.
pub fn sdk_error<E>(what: &str, err: SdkError<E, Response>) -> StageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let status = err.raw_response().map(|r| r.status().as_u16());
    let detail = DisplayErrorContext(&err).to_string();
    let (error_code, summary) = match (&err, code.as_deref(), status) {
        (SdkError::TimeoutError(_), _, _) => {
            (ErrorCode::ServiceUnavailable, "timed out".to_owned())
        }
        (SdkError::DispatchFailure(_), _, _) => (
            ErrorCode::ServiceUnavailable,
            "could not be sent".to_owned(),
        ),
        (_, Some(c), _) if THROTTLING.contains(&c) => (ErrorCode::RateLimited, c.to_owned()),
        (_, Some(c), _) if UNAVAILABLE.contains(&c) => {
            (ErrorCode::ServiceUnavailable, c.to_owned())
        }
        (_, _, Some(429)) => (ErrorCode::RateLimited, "HTTP 429".to_owned()),
        (_, c, Some(s)) if s >= 500 => (
            ErrorCode::ServiceUnavailable,
            c.map_or_else(|| format!("HTTP {s}"), str::to_owned),
        ),
        (SdkError::ResponseError(_), _, _) => (
            ErrorCode::ServiceUnavailable,
            "unreadable response".to_owned(),
        ),
        (_, Some(c), _) => (ErrorCode::InternalError, c.to_owned()),
        (_, None, _) => (ErrorCode::InternalError, "failed".to_owned()),
    };
    tracing::warn!(operation = what, code = ?code, http_status = ?status, error = %detail, "AWS call failed");
    StageError::new(error_code, format!("{what}: {summary}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;
    use docpipe_core::ErrorName;

    #[derive(Debug)]
    struct Fake(ErrorMetadata);
    impl std::fmt::Display for Fake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fake")
        }
    }
    impl std::error::Error for Fake {}
    impl ProvideErrorMetadata for Fake {
        fn meta(&self) -> &ErrorMetadata {
            &self.0
        }
    }

    fn service(code: &str, status: u16) -> SdkError<Fake, Response> {
        let raw = Response::new(
            StatusCode::try_from(status).expect("valid status"),
            SdkBody::empty(),
        );
        SdkError::service_error(Fake(ErrorMetadata::builder().code(code).build()), raw)
    }

    #[test]
    fn throttling_is_transient() {
        for code in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
        ] {
            let e = sdk_error("Textract DetectDocumentText", service(code, 400));
            assert_eq!(e.code, ErrorCode::RateLimited);
            assert_eq!(e.name(), ErrorName::Transient);
        }
    }

    #[test]
    fn server_errors_are_transient_client_errors_are_not() {
        assert_eq!(
            sdk_error("S3 GetObject", service("Whatever", 503)).code,
            ErrorCode::ServiceUnavailable
        );
        let e = sdk_error("S3 GetObject", service("AccessDenied", 403));
        assert_eq!(e.code, ErrorCode::InternalError);
        assert_eq!(e.message, "S3 GetObject: AccessDenied");
    }
}
