//! SQS as the queue-fed functions see it: the batch Lambda hands them (`{"Records": [...]}`),
//! the partial-batch answer (`batchItemFailures`: only those messages come back), and the
//! dead-letter queue a function sends a message to itself, with the reason it was refused
//! as a message attribute, before letting it go from its own queue.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use chrono::{DateTime, Utc};
use docpipe_core::StageError;
use docpipe_core::ports::Result;
use serde::{Deserialize, Serialize};

use crate::error::sdk_error;

/// The message attribute that carries why a message was dead-lettered.
pub const REASON_ATTRIBUTE: &str = "reason";
/// SQS's longest visibility timeout.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// A batch of messages as Lambda's SQS event source delivers it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SqsBatch {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsMessage>,
}

/// One message of a batch.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessage {
    pub message_id: String,
    #[serde(default)]
    pub receipt_handle: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub attributes: SqsAttributes,
    #[serde(default)]
    pub message_attributes: std::collections::HashMap<String, SqsMessageAttribute>,
    /// `arn:aws:sqs:{region}:{account}:{name}`.
    #[serde(default, rename = "eventSourceARN")]
    pub event_source_arn: String,
}

/// The system attributes Lambda passes along.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SqsAttributes {
    /// How often the message was received, this time included.
    #[serde(default)]
    pub approximate_receive_count: Option<String>,
    /// When it was first sent, epoch milliseconds.
    #[serde(default)]
    pub sent_timestamp: Option<String>,
}

/// A message attribute (string values only are read).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessageAttribute {
    #[serde(default)]
    pub string_value: Option<String>,
}

impl SqsMessage {
    /// A string message attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.message_attributes
            .get(name)
            .and_then(|a| a.string_value.as_deref())
    }

    /// How many times it was received before this one.
    pub fn earlier_receives(&self) -> u32 {
        self.attributes
            .approximate_receive_count
            .as_deref()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(1)
            .saturating_sub(1)
    }

    /// When it was first sent (now, if SQS did not say).
    pub fn sent_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.attributes
            .sent_timestamp
            .as_deref()
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(now)
    }
}

/// The partial-batch answer: the messages to be received again (the event source mapping
/// has `ReportBatchItemFailures`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: String,
}

impl BatchResponse {
    pub fn retry(&mut self, message: &SqsMessage) {
        self.batch_item_failures.push(BatchItemFailure {
            item_identifier: message.message_id.clone(),
        });
    }
}

/// A queue a function writes to: a dead-letter queue, or its own (to delay a retry).
#[derive(Clone, Debug)]
pub struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `body` (the refused message, unchanged) with the reason as its `reason`
    /// attribute and the original message id as `source_message_id`.
    pub async fn dead_letter(
        &self,
        body: &str,
        reason: &str,
        source_message_id: &str,
    ) -> Result<()> {
        let text = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| StageError::internal(format!("SQS attribute: {e}")))
        };
        // SQS refuses an empty attribute value; a reason is never empty, an id may be.
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes(REASON_ATTRIBUTE, text(&truncate(reason, 1024))?);
        if !source_message_id.is_empty() {
            request = request.message_attributes("source_message_id", text(source_message_id)?);
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("SQS SendMessage", e))
    }

    /// Sends a message.
    pub async fn send(&self, body: &str) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("SQS SendMessage", e))
    }

    /// Keeps a received message hidden for `delay` (capped at 12 hours) before it is
    /// received again: the retry schedule of a queue-fed function.
    pub async fn delay(&self, receipt_handle: &str, delay: Duration) -> Result<()> {
        let secs = delay.min(MAX_VISIBILITY).as_secs().max(1);
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("SQS ChangeMessageVisibility", e))
    }
}

/// The queue URL of a queue ARN (`arn:aws:sqs:{region}:{account}:{name}`), on AWS's
/// standard endpoint or an emulator's.
pub fn queue_url_of_arn(arn: &str, endpoint: Option<&str>) -> Option<String> {
    let mut parts = arn.split(':');
    let (_, _, service, region, account, name) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if service != "sqs" || name.is_empty() {
        return None;
    }
    Some(match endpoint {
        Some(base) => format!("{}/{account}/{name}", base.trim_end_matches('/')),
        None => format!("https://sqs.{region}.amazonaws.com/{account}/{name}"),
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_batch_reads_and_answers_partially() {
        let batch: SqsBatch = serde_json::from_str(
            r#"{"Records": [{"messageId": "m1", "receiptHandle": "r1", "body": "{}",
                "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1772366400000"},
                "messageAttributes": {"tenant": {"stringValue": "acme", "dataType": "String"}},
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:docpipe-dev-intake"}]}"#,
        )
        .expect("batch");
        let m = &batch.records[0];
        assert_eq!(m.attribute("tenant"), Some("acme"));
        assert_eq!(m.earlier_receives(), 2);
        assert_eq!(m.sent_at(Utc::now()).timestamp(), 1_772_366_400);
        let mut answer = BatchResponse::default();
        answer.retry(m);
        assert_eq!(
            serde_json::to_value(&answer).expect("json"),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
        );
        assert_eq!(
            queue_url_of_arn(&m.event_source_arn, None).as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/docpipe-dev-intake")
        );
        assert_eq!(truncate("ab\u{e9}", 3), "ab");
    }
}
