//! Wall-clock time for the Lambda functions (tokio's timers for sleeping).

use std::time::Duration;

use chrono::{DateTime, Utc};
use docpipe_core::{BoxFuture, Clock};

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
