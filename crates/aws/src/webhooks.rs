//! Webhooks on AWS: subscriptions in the `webhooks` table (partition key `owner`, sort key
//! `webhook_id`), and the deliverer fed by the webhook queue (an EventBridge rule on the
//! bus sends every `job.status.v1` event there). Each event goes to the job owner's
//! webhooks that want its type, signed by the core's Standard Webhooks code
//! ([`docpipe_core::webhooks::attempt`]) through the SSRF-guarded sender. The retry
//! schedule is the core's too: a failed attempt keeps the message hidden for the next
//! delay (exponential, with jitter) counted from when it was first sent; after a day of
//! failures it goes to the webhook's failure list (this table), which the tenant reads and replays through the
//! API; an unreadable message goes to the dead-letter queue (an alarm watches its depth). A
//! receiver that answered gets the event again when another of the owner's receivers
//! failed: deliveries are at least once, deduplicated by `webhook-id`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use docpipe_core::events::JobStatusEvent;
use docpipe_core::ports::Result;
use docpipe_core::retention::Retention;
use docpipe_core::webhooks::{
    AttemptOutcome, Delivery, DeliveryState, RetryPolicy, Webhook, WebhookSecret, WebhookSender,
    WebhookStore, attempt,
};
use docpipe_core::{Clock, ErrorCode, JobStore, StageError};
use serde_json::Value;

use crate::error::sdk_error;
use crate::jobs::TTL_ATTRIBUTE;
use crate::sqs::{BatchResponse, Queue, SqsBatch, SqsMessage};

/// Webhook subscriptions in DynamoDB, and each webhook's failure list: deliveries that
/// failed for a day, under the sort key `{webhook_id}#dead#{event_id}`, kept as long as
/// final jobs (TTL).
#[derive(Clone, Debug)]
pub struct DynamoWebhookStore {
    client: Client,
    table: String,
    /// How long a failure is kept.
    keep_failures: chrono::Duration,
    /// Where a replay sends a webhook's failures (the webhook queue).
    replay_queue: Option<Queue>,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

impl DynamoWebhookStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_retention(client, table, &Retention::default())
    }

    pub fn with_retention(client: Client, table: impl Into<String>, retention: &Retention) -> Self {
        Self {
            client,
            table: table.into(),
            keep_failures: chrono::Duration::seconds(
                i64::try_from(retention.final_jobs_secs).unwrap_or(i64::MAX / 1000),
            ),
            replay_queue: None,
        }
    }

    /// Replays go to `queue` (the webhook queue).
    pub fn with_replay_queue(mut self, queue: Queue) -> Self {
        self.replay_queue = Some(queue);
        self
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
        for item in self.query(owner, None, None).await? {
            let is_webhook = item
                .get("webhook_id")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|id| !id.contains('#'));
            if is_webhook {
                out.push(decode(&item)?);
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The owner's items, those whose sort key starts with `prefix` if given, at most
    /// `limit`.
    async fn query(
        &self,
        owner: &str,
        prefix: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>> {
        let mut out = Vec::new();
        let mut start = None;
        let mut condition = "#owner = :owner".to_owned();
        let mut values = HashMap::from([(":owner".to_owned(), s(owner))]);
        let mut names = HashMap::from([("#owner".to_owned(), "owner".to_owned())]);
        if let Some(prefix) = prefix {
            condition.push_str(" AND begins_with(#id, :prefix)");
            values.insert(":prefix".into(), s(prefix));
            names.insert("#id".into(), "webhook_id".into());
        }
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("DynamoDB Query", e))?;
            out.extend(page.items().iter().cloned());
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or(usize::MAX));
                break;
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// A webhook's failures, oldest first.
    async fn dead(&self, owner: &str, id: &str, limit: Option<usize>) -> Result<Vec<Delivery>> {
        let mut out = self
            .query(owner, Some(&format!("{id}{DEAD}")), None)
            .await?
            .iter()
            .map(decode_dead)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        if let Some(l) = limit {
            out.truncate(l);
        }
        Ok(out)
    }

    /// Puts a delivery that failed for a day on its webhook's failure list.
    pub async fn record_dead(
        &self,
        owner: &str,
        delivery: &Delivery,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let item = HashMap::from([
            ("owner".to_owned(), s(owner)),
            (
                "webhook_id".to_owned(),
                s(&dead_key(&delivery.webhook_id, &delivery.event_id)),
            ),
            ("event_type".to_owned(), s(&delivery.event_type)),
            ("job_id".to_owned(), s(&delivery.job_id)),
            (
                "attempts".to_owned(),
                AttributeValue::N(delivery.attempts.saturating_add(1).to_string()),
            ),
            ("queued_at".to_owned(), s(&ts(delivery.created_at))),
            ("last_attempt_at".to_owned(), s(&ts(now))),
            ("last_error".to_owned(), s(error)),
            ("body".to_owned(), s(&delivery.body)),
            (
                TTL_ATTRIBUTE.to_owned(),
                AttributeValue::N((now + self.keep_failures).timestamp().to_string()),
            ),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("DynamoDB PutItem", e))
    }

    async fn remove(&self, owner: &str, sort_key: &str, must_exist: bool) -> Result<bool> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("owner", s(owner))
            .key("webhook_id", s(sort_key));
        if must_exist {
            request = request.condition_expression("attribute_exists(webhook_id)");
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("DynamoDB DeleteItem", e)),
        }
    }
}

#[async_trait]
impl WebhookStore for DynamoWebhookStore {
    async fn create_webhook(&self, webhook: &Webhook) -> Result<()> {
        self.create(webhook).await
    }

    async fn list_webhooks(&self, owner: &str) -> Result<Vec<Webhook>> {
        self.list(owner).await
    }

    async fn get_webhook(&self, owner: &str, id: &str) -> Result<Webhook> {
        Webhook::check_id(id)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("owner", s(owner))
            .key("webhook_id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB GetItem", e))?;
        out.item
            .as_ref()
            .map(decode)
            .transpose()?
            .ok_or_else(not_found)
    }

    async fn delete_webhook(&self, owner: &str, id: &str) -> Result<()> {
        Webhook::check_id(id)?;
        if !self.remove(owner, id, true).await? {
            return Err(not_found());
        }
        for d in self.dead(owner, id, None).await? {
            self.remove(owner, &dead_key(id, &d.event_id), false)
                .await?;
        }
        Ok(())
    }

    async fn failures(&self, owner: &str, id: &str, limit: u32) -> Result<Vec<Delivery>> {
        self.get_webhook(owner, id).await?;
        self.dead(owner, id, Some(limit as usize)).await
    }

    /// Sends each failure to the webhook queue again, for this webhook alone (a new day of
    /// retries counts from the new message), and takes it off the list.
    async fn replay(&self, owner: &str, id: &str, _now: DateTime<Utc>) -> Result<u64> {
        self.get_webhook(owner, id).await?;
        let queue = self
            .replay_queue
            .as_ref()
            .ok_or_else(|| StageError::unavailable("no webhook queue to replay to"))?;
        let dead = self.dead(owner, id, None).await?;
        for d in &dead {
            let detail: Value = serde_json::from_str(&d.body)
                .map_err(|e| StageError::internal(format!("stored dead delivery: {e}")))?;
            let body = serde_json::json!({ "detail": detail, REPLAY_TARGET: id }).to_string();
            queue.send(&body).await?;
            self.remove(owner, &dead_key(id, &d.event_id), false)
                .await?;
        }
        Ok(dead.len() as u64)
    }
}

/// The field of a replayed message naming the one webhook it is for.
pub const REPLAY_TARGET: &str = "webhook_id";

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

/// The sort key of a webhook's dead delivery: `{webhook_id}#dead#{event_id}`.
fn dead_key(webhook_id: &str, event_id: &str) -> String {
    format!("{webhook_id}{DEAD}{event_id}")
}

const DEAD: &str = "#dead#";

fn not_found() -> StageError {
    StageError::new(ErrorCode::NotFound, "no such webhook")
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn decode_dead(item: &HashMap<String, AttributeValue>) -> Result<Delivery> {
    let text = |name: &str| -> Result<String> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StageError::internal(format!("stored dead delivery: {name}")))
    };
    let time = |name: &str| -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&text(name)?)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| StageError::internal(format!("stored dead delivery: {name}")))
    };
    let (webhook_id, event_id) = text("webhook_id")?
        .split_once(DEAD)
        .map(|(w, e)| (w.to_owned(), e.to_owned()))
        .ok_or_else(|| StageError::internal("stored dead delivery: key"))?;
    Ok(Delivery {
        id: event_id.clone(),
        webhook_id,
        event_id,
        event_type: text("event_type")?,
        job_id: text("job_id")?,
        state: DeliveryState::Dead,
        attempts: item
            .get("attempts")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        created_at: time("queued_at")?,
        next_attempt_at: time("last_attempt_at")?,
        last_error: item.get("last_error").and_then(|v| v.as_s().ok()).cloned(),
        body: text("body")?,
    })
}

/// The event in a webhook queue message: an EventBridge envelope whose `detail` is the
/// CloudEvents JSON (or a replay, which names its one webhook). Returns the event, its JSON
/// (the request body, as put) and the replay's webhook.
pub fn event_of_envelope(body: &str) -> Result<(JobStatusEvent, String, Option<String>)> {
    let bad = |why: String| StageError::new(ErrorCode::ValidationError, why);
    let envelope: Value =
        serde_json::from_str(body).map_err(|e| bad(format!("not an EventBridge event: {e}")))?;
    let detail = envelope
        .get("detail")
        .ok_or_else(|| bad("an EventBridge event without detail".to_owned()))?;
    let event: JobStatusEvent = serde_json::from_value(detail.clone())
        .map_err(|e| bad(format!("detail is not a job.status.v1 event: {e}")))?;
    let target = envelope
        .get(REPLAY_TARGET)
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((event, detail.to_string(), target))
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
    /// Every webhook that wants it answered 2xx (`delivered`), or failed for a day and is
    /// on its failure list (`dead`).
    Done { delivered: usize, dead: usize },
    /// Some failed: received again at this time.
    Retry { at: DateTime<Utc>, error: String },
    /// Unreadable: in the dead-letter queue with the reason.
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
        let (event, body, target) = match event_of_envelope(&message.body) {
            Ok(x) => x,
            Err(e) => return self.dead_letter(message, &e.message).await,
        };
        let job = match self.jobs.get(&event.data.job_id).await {
            Ok(job) => job,
            // Expired or removed: nobody to deliver to.
            Err(e) if e.code == ErrorCode::JobNotFound => {
                return Ok(Delivered::Done {
                    delivered: 0,
                    dead: 0,
                });
            }
            Err(e) => return Err(e),
        };
        let Some(owner) = job.owner else {
            return Ok(Delivered::Done {
                delivered: 0,
                dead: 0,
            });
        };
        let now = self.clock.now();
        let hooks: Vec<Webhook> = self
            .webhooks
            .list(&owner)
            .await?
            .into_iter()
            .filter(|w| w.wants(&event.event_type))
            .filter(|w| target.as_deref().is_none_or(|t| t == w.id))
            .collect();
        let mut retry: Option<(DateTime<Utc>, String)> = None;
        let mut dead = 0;
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
                // A day of failures: on the webhook's failure list, for the tenant to read
                // and replay.
                AttemptOutcome::Dead { error } => {
                    self.webhooks
                        .record_dead(&owner, &delivery, &error, now)
                        .await?;
                    dead += 1;
                }
            }
        }
        if let Some((at, error)) = retry {
            return Ok(Delivered::Retry { at, error });
        }
        Ok(Delivered::Done {
            delivered: hooks.len() - dead,
            dead,
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
