//! Clocks for the runner: real time, and virtual time that follows tokio's (pausable)
//! clock so that retries, waits and timeouts run instantly and deterministically in tests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use docpipe_core::{BoxFuture, Clock};

/// Wall-clock time and real sleeping.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A fixed start time plus the elapsed `tokio::time::Instant`. Under a paused runtime
/// (`#[tokio::test(start_paused = true)]`) tokio advances time whenever every task is
/// idle, so sleeping costs no wall time.
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl VirtualClock {
    /// A clock reading `start` now.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            start,
            origin: tokio::time::Instant::now(),
        }
    }

    /// Virtual time elapsed since creation.
    pub fn elapsed(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.origin)
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.elapsed()).unwrap_or(chrono::Duration::MAX);
        self.start.checked_add_signed(elapsed).unwrap_or(self.start)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
