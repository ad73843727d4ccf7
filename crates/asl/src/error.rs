//! The crate's one error type. Definition problems name the state and the field; runtime
//! failures inside an execution are not `Error`s but [`crate::StatesError`]s that Retry and
//! Catch can match.

/// Why a definition could not be loaded, or why the harness could not run a case.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not JSON.
    #[error("definition is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A field at the top level of the definition (or of a branch) is wrong.
    #[error("{0}")]
    Definition(String),
    /// A field of one state is wrong.
    #[error("state \"{state}\": {message}")]
    State { state: String, message: String },
    /// A JSONPath, reference path or intrinsic function does not parse.
    #[error("invalid path {path:?}: {message}")]
    Path { path: String, message: String },
    /// Reading a conformance case failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn state(state: &str, message: impl Into<String>) -> Self {
        Error::State {
            state: state.to_owned(),
            message: message.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A runtime error inside an execution: the `Error` and `Cause` that Retry, Catch and the
/// execution outcome see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesError {
    pub error: String,
    pub cause: String,
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }

    /// `States.Runtime`: never retried or caught.
    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new(names::RUNTIME, cause)
    }
}

/// The predefined `States.*` error names.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const RUNTIME: &str = "States.Runtime";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    pub const EXCEED_TOLERATED_FAILURE: &str = "States.ExceedToleratedFailureThreshold";
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
}
