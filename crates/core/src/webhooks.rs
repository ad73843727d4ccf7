//! Webhooks: a tenant's subscriptions to events, delivered by the Standard Webhooks rules
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, secrets `whsec_<base64>`), at least once, in order per
//! job, retried with exponential backoff and jitter for a day, then kept as failures the
//! tenant can read and replay. The signing, the retry schedule and one delivery attempt
//! live here so both hosts deliver alike; the stores and the HTTP client are ports.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{ErrorCode, StageError};
use crate::ports::Result;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The prefix of a webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook's signing secret: `whsec_` and the base64 of its key bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// A fresh secret of 24 random bytes.
    pub fn generate() -> Result<Self> {
        let mut key = [0u8; 24];
        getrandom::fill(&mut key)
            .map_err(|e| StageError::internal(format!("no randomness for a secret: {e}")))?;
        Ok(Self(format!("{SECRET_PREFIX}{}", B64.encode(key))))
    }

    /// Checks the shape `whsec_<base64 of 24 to 64 bytes>`.
    pub fn parse(s: &str) -> Result<Self> {
        let key = Self::decode(s)?;
        if !(24..=64).contains(&key.len()) {
            return Err(StageError::new(
                ErrorCode::ValidationError,
                "a webhook secret holds 24 to 64 bytes",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    fn decode(s: &str) -> Result<Vec<u8>> {
        let b64 = s.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
            StageError::new(ErrorCode::ValidationError, "a webhook secret starts whsec_")
        })?;
        B64.decode(b64)
            .map_err(|_| StageError::new(ErrorCode::ValidationError, "a webhook secret is base64"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>> {
        let key = Self::decode(&self.0)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|e| StageError::internal(format!("webhook key: {e}")))?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        Ok(mac)
    }

    /// The `webhook-signature` value for a message: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
        let tag = self.mac(id, timestamp, body)?.finalize().into_bytes();
        Ok(format!("v1,{}", B64.encode(tag)))
    }

    /// Whether any of the space-separated signatures in `header` is this secret's `v1`
    /// signature of the message (compared in constant time).
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header.split(' ').any(|sig| {
            let Some(b64) = sig.strip_prefix("v1,") else {
                return false;
            };
            let Ok(tag) = B64.decode(b64) else {
                return false;
            };
            self.mac(id, timestamp, body)
                .is_ok_and(|mac| mac.verify_slice(&tag).is_ok())
        })
    }
}

/// A tenant's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// `wh_<32 hex>`.
    pub id: String,
    /// The API key name that owns it.
    pub owner: String,
    pub url: String,
    /// Event types it receives ([`crate::events::EVENT_TYPES`]).
    pub event_types: Vec<String>,
    pub secret: WebhookSecret,
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    /// A fresh id.
    pub fn new_id() -> Result<String> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw)
            .map_err(|e| StageError::internal(format!("no randomness for an id: {e}")))?;
        Ok(format!("wh_{}", hex::encode(raw)))
    }

    /// Checks the shape of a webhook id (`NOT_FOUND` otherwise: ids come from paths).
    pub fn check_id(id: &str) -> Result<()> {
        let ok = id.len() == 35
            && id
                .strip_prefix("wh_")
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(())
        } else {
            Err(StageError::new(ErrorCode::NotFound, "no such webhook"))
        }
    }

    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == event_type)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Retried for the whole [`RetryPolicy::give_up_after`]: on the failure list.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `msg_...`: the `webhook-id`, the same on every attempt, so receivers can drop
    /// duplicates. It is the event's id.
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub job_id: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// When it was queued (or replayed): the day of retries counts from here.
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The CloudEvents JSON that is the request body.
    #[serde(skip_serializing)]
    pub body: String,
}

/// When to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay after the first failure; doubled after each further one.
    pub first_delay: Duration,
    /// No delay is longer.
    pub max_delay: Duration,
    /// A delivery still failing this long after it was queued goes to the failure list.
    pub give_up_after: Duration,
    /// The longest wait for a receiver's answer.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60 * 60),
            give_up_after: Duration::from_secs(24 * 60 * 60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (1 for the first): the exponential delay,
    /// capped, scaled by a jitter factor in [0.5, 1.0) drawn from `jitter` (0..=u32::MAX),
    /// so receivers that fail together are not all retried at the same moment.
    pub fn delay(&self, failures: u32, jitter: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let base = self
            .first_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let factor = 0.5 + 0.5 * (f64::from(jitter) / (f64::from(u32::MAX) + 1.0));
        base.mul_f64(factor)
    }

    /// What becomes of a delivery after a failed attempt at `now`: its next attempt, or
    /// `None` when its day is over.
    pub fn after_failure(&self, delivery: &Delivery, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let failures = delivery.attempts.saturating_add(1);
        let delay = self.delay(failures, jitter_of(&delivery.id, failures));
        let next = now + chrono::Duration::from_std(delay).ok()?;
        let deadline = delivery.created_at + chrono::Duration::from_std(self.give_up_after).ok()?;
        (now < deadline).then_some(next.min(deadline))
    }
}

/// A jitter draw for an attempt: random where the platform has randomness, else derived
/// from the delivery and attempt (still spreads receivers apart).
fn jitter_of(id: &str, attempt: u32) -> u32 {
    let mut raw = [0u8; 4];
    if getrandom::fill(&mut raw).is_ok() {
        return u32::from_le_bytes(raw);
    }
    id.bytes()
        .fold(attempt.wrapping_mul(2_654_435_761), |h, b| {
            h.rotate_left(5) ^ u32::from(b)
        })
}

/// The headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Signs a delivery for sending at `now`.
pub fn sign_request(
    webhook: &Webhook,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Result<SignedRequest> {
    let timestamp = now.timestamp();
    let signature = webhook
        .secret
        .sign(&delivery.id, timestamp, delivery.body.as_bytes())?;
    Ok(SignedRequest {
        url: webhook.url.clone(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), delivery.id.clone()),
            ("webhook-timestamp".into(), timestamp.to_string()),
            ("webhook-signature".into(), signature),
        ],
        body: delivery.body.clone(),
    })
}

/// Sends signed requests: the SSRF-guarded HTTP client (`docpipe-fetch`).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Checks a receiver URL as [`crate::Fetcher::check`] does (`URL_NOT_ALLOWED`).
    async fn check(&self, url: &str) -> Result<()>;
    /// POSTs the request; `Ok` only for a 2xx answer, within `timeout`.
    async fn send(&self, request: &SignedRequest, timeout: Duration) -> Result<()>;
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; tried again at that time.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Failed for the last time.
    Dead {
        error: String,
    },
}

/// One attempt of a delivery at `now`: sign, send, and decide what follows.
pub async fn attempt(
    sender: &dyn WebhookSender,
    policy: &RetryPolicy,
    webhook: &Webhook,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> AttemptOutcome {
    let sent = match sign_request(webhook, delivery, now) {
        Ok(request) => sender.send(&request, policy.request_timeout).await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(()) => AttemptOutcome::Delivered,
        Err(e) => {
            let error = format!("{}: {}", e.code, e.message);
            match policy.after_failure(delivery, now) {
                Some(at) => AttemptOutcome::Retry { at, error },
                None => AttemptOutcome::Dead { error },
            }
        }
    }
}

/// Webhook subscriptions and their failure lists, per tenant: what the API needs.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(&self, webhook: &Webhook) -> Result<()>;
    /// The owner's webhooks, oldest first.
    async fn list_webhooks(&self, owner: &str) -> Result<Vec<Webhook>>;
    /// `NOT_FOUND` unless the owner has it.
    async fn get_webhook(&self, owner: &str, id: &str) -> Result<Webhook>;
    /// Deletes it and its deliveries; `NOT_FOUND` unless the owner has it.
    async fn delete_webhook(&self, owner: &str, id: &str) -> Result<()>;
    /// Its dead deliveries, oldest first, at most `limit`.
    async fn failures(&self, owner: &str, id: &str, limit: u32) -> Result<Vec<Delivery>>;
    /// Queues its dead deliveries again (a new day of retries from `now`); how many.
    async fn replay(&self, owner: &str, id: &str, now: DateTime<Utc>) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let body = br#"{"test": 2432232314}"#;
        let sig = secret
            .sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
            .expect("signs");
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &sig));
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, &sig));
        assert!(!secret.verify("msg_other", 1614265330, body, &sig));
    }

    #[test]
    fn fresh_secrets_parse_and_differ() {
        let a = WebhookSecret::generate().expect("secret");
        let b = WebhookSecret::generate().expect("secret");
        assert_ne!(a, b);
        WebhookSecret::parse(a.as_str()).expect("parses");
        assert!(WebhookSecret::parse("whsec_short").is_err());
        assert!(WebhookSecret::parse("secret").is_err());
    }

    #[test]
    fn delays_double_with_jitter_and_stop_after_a_day() {
        let p = RetryPolicy::default();
        for failures in 1..12 {
            let full = p
                .first_delay
                .saturating_mul(1 << (failures - 1))
                .min(p.max_delay);
            let low = p.delay(failures, 0);
            let high = p.delay(failures, u32::MAX);
            assert_eq!(low, full / 2);
            assert!(
                high < full && high > full.mul_f64(0.99),
                "{failures}: {high:?}"
            );
        }
        let created: DateTime<Utc> = "2025-03-01T10:00:00Z".parse().expect("time");
        let d = Delivery {
            id: "x".into(),
            webhook_id: "w".into(),
            event_id: "e".into(),
            event_type: "job.status.v1".into(),
            job_id: "j".into(),
            state: DeliveryState::Pending,
            attempts: 3,
            created_at: created,
            next_attempt_at: created,
            last_error: None,
            body: "{}".into(),
        };
        let soon = created + chrono::Duration::hours(1);
        let next = p.after_failure(&d, soon).expect("retried");
        assert!(next > soon);
        assert!(
            p.after_failure(&d, created + chrono::Duration::hours(24))
                .is_none()
        );
        // The last retry is never scheduled past the deadline.
        let late = created + chrono::Duration::hours(23) + chrono::Duration::minutes(59);
        let next = p.after_failure(&d, late).expect("one more");
        assert!(next <= created + chrono::Duration::hours(24));
    }
}
