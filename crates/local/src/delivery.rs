//! The webhook delivery worker of the embedded host: fans the outbox's new events out to
//! deliveries, then sends every delivery that is due (at most one per webhook and job at
//! a time, so each job's events arrive in order), concurrently and each with a deadline.
//! It runs beside the pipeline and shares nothing with it but the database, so a slow or
//! dead receiver holds up only its own deliveries. Time comes from the [`Clock`] port.

use std::sync::Arc;
use std::time::Duration;

use docpipe_core::Clock;
use docpipe_core::ports::Result;
use docpipe_core::webhooks::{self, AttemptOutcome, DeliveryState, RetryPolicy, WebhookSender};

use crate::sqlite::SqliteJobStore;

/// Events read from the outbox per pass.
const DISPATCH_BATCH: u32 = 500;

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Deliveries made from new events.
    pub queued: u64,
    pub delivered: u64,
    /// Attempts that failed and will be tried again.
    pub retried: u64,
    /// Deliveries that went to the failure list.
    pub dead: u64,
}

impl Pass {
    fn add(&mut self, other: Pass) {
        self.queued += other.queued;
        self.delivered += other.delivered;
        self.retried += other.retried;
        self.dead += other.dead;
    }

    /// Whether the pass may have made more work due right away (a delivered event lets
    /// the job's next one go; new deliveries are due at once).
    fn progressed(&self) -> bool {
        self.queued > 0 || self.delivered > 0 || self.dead > 0
    }
}

/// Sends webhook deliveries.
#[derive(Clone)]
pub struct DeliveryWorker {
    store: SqliteJobStore,
    sender: Arc<dyn WebhookSender>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    /// Attempts in flight at once.
    concurrency: u32,
}

impl DeliveryWorker {
    pub fn new(
        store: SqliteJobStore,
        sender: Arc<dyn WebhookSender>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            store,
            sender,
            clock,
            policy,
            concurrency: 32,
        }
    }

    /// One pass at the clock's current time: dispatch new events, send what is due, wait
    /// for those attempts and record them.
    pub async fn run_once(&self) -> Result<Pass> {
        let now = self.clock.now();
        let mut pass = Pass {
            queued: self.store.dispatch_events(now, DISPATCH_BATCH).await?,
            ..Pass::default()
        };
        let due = self.store.due_deliveries(now, self.concurrency).await?;
        let mut attempts = tokio::task::JoinSet::new();
        for (hook, delivery) in due {
            let sender = Arc::clone(&self.sender);
            let policy = self.policy;
            attempts.spawn(async move {
                // The sender has the deadline; this one only guards against a sender
                // that ignores it.
                let outcome = tokio::time::timeout(
                    policy.request_timeout + Duration::from_secs(5),
                    webhooks::attempt(&*sender, &policy, &hook, &delivery, now),
                )
                .await
                .unwrap_or_else(|_| match policy.after_failure(&delivery, now) {
                    Some(at) => AttemptOutcome::Retry {
                        at,
                        error: "no answer in time".into(),
                    },
                    None => AttemptOutcome::Dead {
                        error: "no answer in time".into(),
                    },
                });
                (delivery, outcome)
            });
        }
        while let Some(joined) = attempts.join_next().await {
            let Ok((delivery, outcome)) = joined else {
                continue;
            };
            match outcome {
                AttemptOutcome::Delivered => {
                    pass.delivered += 1;
                    self.store
                        .record_attempt(&delivery, DeliveryState::Delivered, now, None)
                        .await?;
                }
                AttemptOutcome::Retry { at, error } => {
                    pass.retried += 1;
                    tracing::info!(webhook = %delivery.webhook_id, event = %delivery.event_id, %error, "webhook delivery failed; retrying");
                    self.store
                        .record_attempt(&delivery, DeliveryState::Pending, at, Some(error))
                        .await?;
                }
                AttemptOutcome::Dead { error } => {
                    pass.dead += 1;
                    tracing::warn!(webhook = %delivery.webhook_id, event = %delivery.event_id, %error, "webhook delivery failed for good");
                    self.store
                        .record_attempt(&delivery, DeliveryState::Dead, now, Some(error))
                        .await?;
                }
            }
        }
        Ok(pass)
    }

    /// Passes at the current time until one makes no progress (bounded): every event
    /// written so far whose delivery is due has had its attempt.
    pub async fn run_until_idle(&self) -> Result<Pass> {
        let mut total = Pass::default();
        for _ in 0..10_000 {
            let pass = self.run_once().await?;
            total.add(pass);
            if !pass.progressed() {
                break;
            }
        }
        Ok(total)
    }

    /// Runs until `stop` resolves: passes until idle, then a pause of `idle` on the clock.
    pub async fn run(self, idle: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.run_until_idle().await {
                tracing::warn!(error = %e, "webhook delivery pass");
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = self.clock.sleep(idle) => {}
            }
        }
    }
}
