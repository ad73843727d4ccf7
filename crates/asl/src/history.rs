//! Execution history events with the names and shapes of Step Functions'
//! `GetExecutionHistory` (inputs and outputs are JSON text, as the API returns them).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The `type` of a history event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    ExecutionStarted,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionTimedOut,
    ExecutionAborted,
    PassStateEntered,
    PassStateExited,
    TaskStateEntered,
    TaskStateExited,
    ChoiceStateEntered,
    ChoiceStateExited,
    WaitStateEntered,
    WaitStateExited,
    SucceedStateEntered,
    SucceedStateExited,
    FailStateEntered,
    ParallelStateEntered,
    ParallelStateExited,
    ParallelStateStarted,
    ParallelStateSucceeded,
    ParallelStateFailed,
    MapStateEntered,
    MapStateExited,
    MapStateStarted,
    MapStateSucceeded,
    MapStateFailed,
    MapIterationStarted,
    MapIterationSucceeded,
    MapIterationFailed,
    TaskScheduled,
    TaskStarted,
    TaskSucceeded,
    TaskFailed,
    TaskTimedOut,
    LambdaFunctionScheduled,
    LambdaFunctionStarted,
    LambdaFunctionSucceeded,
    LambdaFunctionFailed,
    LambdaFunctionTimedOut,
}

impl EventType {
    /// The `{Type}StateEntered` event of a state type.
    pub fn entered(state_type: &str) -> EventType {
        match state_type {
            "Pass" => EventType::PassStateEntered,
            "Task" => EventType::TaskStateEntered,
            "Choice" => EventType::ChoiceStateEntered,
            "Wait" => EventType::WaitStateEntered,
            "Succeed" => EventType::SucceedStateEntered,
            "Fail" => EventType::FailStateEntered,
            "Parallel" => EventType::ParallelStateEntered,
            _ => EventType::MapStateEntered,
        }
    }

    /// The `{Type}StateExited` event of a state type (Fail has none).
    pub fn exited(state_type: &str) -> Option<EventType> {
        Some(match state_type {
            "Pass" => EventType::PassStateExited,
            "Task" => EventType::TaskStateExited,
            "Choice" => EventType::ChoiceStateExited,
            "Wait" => EventType::WaitStateExited,
            "Succeed" => EventType::SucceedStateExited,
            "Parallel" => EventType::ParallelStateExited,
            "Map" => EventType::MapStateExited,
            _ => return None,
        })
    }
}

/// A payload's JSON text. Shared, because one text is shown by several events (a state's
/// output is the next state's input, and the last one the execution's output).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload(Arc<String>);

impl Payload {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Payload {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Payload {
    /// Takes the text over without copying it.
    fn from(s: String) -> Self {
        Self(Arc::new(s))
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Self(Arc::new(s.to_owned()))
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// `inputDetails` / `outputDetails`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct PayloadDetails {
    pub truncated: bool,
}

/// The `...EventDetails` object of an event; serialised under its own key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EventDetails {
    #[serde(rename_all = "camelCase")]
    ExecutionStartedEventDetails {
        input: Payload,
        input_details: PayloadDetails,
        role_arn: String,
    },
    #[serde(rename_all = "camelCase")]
    ExecutionSucceededEventDetails {
        output: Payload,
        output_details: PayloadDetails,
    },
    ExecutionFailedEventDetails(ErrorDetails),
    ExecutionTimedOutEventDetails(ErrorDetails),
    ExecutionAbortedEventDetails(ErrorDetails),
    #[serde(rename_all = "camelCase")]
    StateEnteredEventDetails {
        name: String,
        input: Payload,
        input_details: PayloadDetails,
    },
    #[serde(rename_all = "camelCase")]
    StateExitedEventDetails {
        name: String,
        output: Payload,
        output_details: PayloadDetails,
    },
    #[serde(rename_all = "camelCase")]
    TaskScheduledEventDetails {
        resource_type: String,
        resource: String,
        region: String,
        parameters: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout_in_seconds: Option<u64>,
    },
    #[serde(rename_all = "camelCase")]
    TaskStartedEventDetails {
        resource_type: String,
        resource: String,
    },
    #[serde(rename_all = "camelCase")]
    TaskSucceededEventDetails {
        resource_type: String,
        resource: String,
        output: String,
        output_details: PayloadDetails,
    },
    #[serde(rename_all = "camelCase")]
    TaskFailedEventDetails {
        resource_type: String,
        resource: String,
        error: String,
        cause: String,
    },
    #[serde(rename_all = "camelCase")]
    TaskTimedOutEventDetails {
        resource_type: String,
        resource: String,
        error: String,
        cause: String,
    },
    #[serde(rename_all = "camelCase")]
    LambdaFunctionScheduledEventDetails {
        resource: String,
        input: String,
        input_details: PayloadDetails,
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout_in_seconds: Option<u64>,
    },
    #[serde(rename_all = "camelCase")]
    LambdaFunctionSucceededEventDetails {
        output: String,
        output_details: PayloadDetails,
    },
    LambdaFunctionFailedEventDetails(ErrorDetails),
    LambdaFunctionTimedOutEventDetails(ErrorDetails),
    MapStateStartedEventDetails {
        length: usize,
    },
    MapIterationStartedEventDetails(IterationDetails),
    MapIterationSucceededEventDetails(IterationDetails),
    MapIterationFailedEventDetails(IterationDetails),
}

/// `error` and `cause` of failure events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// `name` and `index` of a Map iteration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IterationDetails {
    pub name: String,
    pub index: usize,
}

/// One history event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<EventDetails>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn serialises_like_get_execution_history() {
        let e = HistoryEvent {
            id: 2,
            previous_event_id: 1,
            timestamp: Utc
                .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
                .single()
                .expect("valid"),
            event_type: EventType::PassStateEntered,
            details: Some(EventDetails::StateEnteredEventDetails {
                name: "A".into(),
                input: "{}".into(),
                input_details: PayloadDetails::default(),
            }),
        };
        let v = serde_json::to_value(&e).expect("serialises");
        assert_eq!(
            v,
            serde_json::json!({"id": 2, "previousEventId": 1, "timestamp": "2024-01-01T00:00:00Z",
                "type": "PassStateEntered",
                "stateEnteredEventDetails": {"name": "A", "input": "{}", "inputDetails": {"truncated": false}}})
        );
    }
}
