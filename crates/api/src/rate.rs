//! Per-key rate limits, in memory (GCRA via governor). On Lambda each instance holds its
//! own limiter; the deployment adds API Gateway throttling in front (see infra).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

#[derive(Default)]
pub(crate) struct RateLimiters {
    by_key: Mutex<HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>>,
}

impl RateLimiters {
    /// `Ok` if the key may make a request now, else how long to wait.
    pub(crate) fn check(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let limiter = {
            let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(key) {
                // The common case allocates nothing.
                Some((limit, limiter)) if *limit == per_minute.get() => Arc::clone(limiter),
                _ => {
                    let limiter = Arc::new(RateLimiter::direct(Quota::per_minute(per_minute)));
                    map.insert(key.to_owned(), (per_minute.get(), Arc::clone(&limiter)));
                    limiter
                }
            }
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Request counts per key, written to the key store in batches (at most once a second)
/// instead of once per request.
#[derive(Default)]
pub(crate) struct UsageCounter {
    inner: Mutex<UsageInner>,
}

#[derive(Default)]
struct UsageInner {
    pending: HashMap<String, (u64, chrono::DateTime<chrono::Utc>)>,
    last_flush: Option<std::time::Instant>,
}

/// A batch to write: key name, requests, last request time.
pub(crate) type UsageBatch = Vec<(String, u64, chrono::DateTime<chrono::Utc>)>;

impl UsageCounter {
    /// Counts a request; returns a batch when one is due.
    pub(crate) fn note(&self, key: &str, at: chrono::DateTime<chrono::Utc>) -> Option<UsageBatch> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.pending.get_mut(key) {
            Some(e) => *e = (e.0 + 1, at),
            None => {
                inner.pending.insert(key.to_owned(), (1, at));
            }
        }
        let now = std::time::Instant::now();
        let due = inner
            .last_flush
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if !due {
            return None;
        }
        inner.last_flush = Some(now);
        Some(
            inner
                .pending
                .drain()
                .map(|(k, (n, at))| (k, n, at))
                .collect(),
        )
    }
}
