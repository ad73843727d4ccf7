//! Webhooks on AWS: subscriptions in the `webhooks` table (partition key `owner`, sort key
//! `webhook_id`), and the deliverer fed by the webhook queue (an EventBridge rule on the
//! bus sends every `job.status.v1` event there). Each event goes to the job owner's
//! webhooks that want its type, signed by the core's Standard Webhooks code
//! ([`docpipe_core::webhooks::attempt`]) through the SSRF-guarded sender. The retry
//! schedule is the core's too: a failed attempt keeps the message hidden for the next
//! delay (exponential, with jitter) counted from when it was first sent; after a day of
//! failures it goes to the dead-letter queue with the last error (an alarm watches its
//! depth). A receiver that answered gets the event again when another of the owner's
//! receivers failed: deliveries are at least once, deduplicated by `webhook-id`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use docpipe_core::events::JobStatusEvent;
use docpipe_core::ports::Result;
use docpipe_core::webhooks::{
    AttemptOutcome, Delivery, DeliveryState, RetryPolicy, Webhook, WebhookSecret, WebhookSender,
    attempt,
};
use docpipe_core::{Clock, ErrorCode, JobStore, StageError};
use serde_json::Value;

use crate::error::sdk_error;
use crate::sqs::{BatchResponse, Queue, SqsBatch, SqsMessage};

/// Webhook subscriptions in DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoWebhookStore {
    client: Client,
    table: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

impl DynamoWebhookStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Stores a subscription (its id is fresh: an existing one is never overwritten).
    pub async fn create(&self, webhook: &Webhook) -> Result<()> {
        let item = HashMap::from([
            ("owner".to_owned(), s(&webhook.owner)),
            ("webhook_id".to_owned(), s(&webhook.id)),
            ("url".to_owned(), s(&webhook.url)),
            (
                "event_types".to_owned(),
                AttributeValue::L(webhook.event_types.iter().map(|t| s(t)).collect()),
            ),
            ("secret".to_owned(), s(webhook.secret.as_str())),
            (
                "created_at".to_owned(),
                s(&webhook
                    .created_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true)),
            ),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(webhook_id)")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("DynamoDB PutItem", e))
    }

    /// The owner's webhooks, oldest first.
    pub async fn list(&self, owner: &str) -> Result<Vec<Webhook>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", s(owner))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("DynamoDB Query", e))?;
            for item in page.items() {
                out.push(decode(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<Webhook> {
    let text = |name: &str| -> Result<String> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StageError::internal(format!("stored webhook: {name}")))
    };
    let event_types = match item.get("event_types") {
        Some(AttributeValue::L(list)) => {
            list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
        }
        _ => return Err(StageError::internal("stored webhook: event_types")),
    };
    Ok(Webhook {
        id: text("webhook_id")?,
        owner: text("owner")?,
        url: text("url")?,
        event_types,
        secret: WebhookSecret::parse(&text("secret")?)?,
        created_at: DateTime::parse_from_rfc3339(&text("created_at")?)
            .map_err(|_| StageError::internal("stored webhook: created_at"))?
            .with_timezone(&Utc),
    })
}

/// The event in a webhook queue message: an EventBridge envelope whose `detail` is the
/// CloudEvents JSON. Returns the event and its JSON (the request body, as put).
pub fn event_of_envelope(body: &str) -> Result<(JobStatusEvent, String)> {
    let bad = |why: String| StageError::new(ErrorCode::ValidationError, why);
    let envelope: Value =
        serde_json::from_str(body).map_err(|e| bad(format!("not an EventBridge event: {e}")))?;
    let detail = envelope
        .get("detail")
        .ok_or_else(|| bad("an EventBridge event without detail".to_owned()))?;
    let event: JobStatusEvent = serde_json::from_value(detail.clone())
        .map_err(|e| bad(format!("detail is not a job.status.v1 event: {e}")))?;
    Ok((event, detail.to_string()))
}

/// The deliverer: where subscriptions and owners are read, how requests are sent, and the
/// queues it writes to.
pub struct Deliverer<'a> {
    pub webhooks: &'a DynamoWebhookStore,
    pub jobs: &'a dyn JobStore,
    pub sender: &'a dyn WebhookSender,
    pub clock: &'a dyn Clock,
    pub policy: RetryPolicy,
    /// Its own queue (to delay a retry), from the messages' source ARN.
    pub queue: &'a dyn Fn(&SqsMessage) -> Option<Queue>,
    pub dead_letters: &'a Queue,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// Every webhook that wants it answered 2xx (or the owner has none).
    Done { webhooks: usize },
    /// Some failed: received again at this time.
    Retry { at: DateTime<Utc>, error: String },
    /// Failed for a day (or unreadable): in the dead-letter queue with the reason.
    DeadLettered { reason: String },
}

impl Deliverer<'_> {
    pub async fn handle(&self, batch: &SqsBatch) -> BatchResponse {
        let mut answer = BatchResponse::default();
        for message in &batch.records {
            match self.deliver(message).await {
                Ok(Delivered::Retry { at, error }) => {
                    tracing::warn!(message_id = %message.message_id, %at, error, "webhook delivery retried");
                    let delay = (at - self.clock.now()).to_std().unwrap_or_default();
                    if let Some(queue) = (self.queue)(message)
                        && let Err(e) = queue.delay(&message.receipt_handle, delay).await
                    {
                        tracing::warn!(error = %e, "retry delay not set; the queue's visibility timeout applies");
                    }
                    answer.retry(message);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(message_id = %message.message_id, error = %e, "webhook delivery not attempted");
                    answer.retry(message);
                }
            }
        }
        answer
    }

    /// Delivers one message to every webhook of the job's owner that wants it.
    pub async fn deliver(&self, message: &SqsMessage) -> Result<Delivered> {
        let (event, body) = match event_of_envelope(&message.body) {
            Ok(x) => x,
            Err(e) => return self.dead_letter(message, &e.message).await,
        };
        let job = match self.jobs.get(&event.data.job_id).await {
            Ok(job) => job,
            // Expired or removed: nobody to deliver to.
            Err(e) if e.code == ErrorCode::JobNotFound => {
                return Ok(Delivered::Done { webhooks: 0 });
            }
            Err(e) => return Err(e),
        };
        let Some(owner) = job.owner else {
            return Ok(Delivered::Done { webhooks: 0 });
        };
        let now = self.clock.now();
        let hooks: Vec<Webhook> = self
            .webhooks
            .list(&owner)
            .await?
            .into_iter()
            .filter(|w| w.wants(&event.event_type))
            .collect();
        let mut retry: Option<(DateTime<Utc>, String)> = None;
        let mut dead = Vec::new();
        for hook in &hooks {
            let delivery = Delivery {
                id: event.id.clone(),
                webhook_id: hook.id.clone(),
                event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                job_id: event.subject.clone(),
                state: DeliveryState::Pending,
                attempts: message.earlier_receives(),
                created_at: message.sent_at(now),
                next_attempt_at: now,
                last_error: None,
                body: body.clone(),
            };
            match attempt(self.sender, &self.policy, hook, &delivery, now).await {
                AttemptOutcome::Delivered => {}
                AttemptOutcome::Retry { at, error } => {
                    let error = format!("{}: {error}", hook.id);
                    retry = Some(match retry {
                        Some((earliest, e)) if earliest <= at => (earliest, e),
                        _ => (at, error),
                    });
                }
                AttemptOutcome::Dead { error } => dead.push(format!("{}: {error}", hook.id)),
            }
        }
        if let Some((at, error)) = retry {
            return Ok(Delivered::Retry { at, error });
        }
        if !dead.is_empty() {
            return self
                .dead_letter(
                    message,
                    &format!("undelivered for a day: {}", dead.join("; ")),
                )
                .await;
        }
        Ok(Delivered::Done {
            webhooks: hooks.len(),
        })
    }

    async fn dead_letter(&self, message: &SqsMessage, reason: &str) -> Result<Delivered> {
        self.dead_letters
            .dead_letter(&message.body, reason, &message.message_id)
            .await?;
        Ok(Delivered::DeadLettered {
            reason: reason.to_owned(),
        })
    }
}
