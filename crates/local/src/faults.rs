//! Fault injection for reliability tests: a [`TaskInvoker`] decorator that makes each
//! stage invocation fail with a set probability before the stage runs, so Retry, Catch and
//! the failure path are exercised through the real definition without touching a stage.
//!
//! Off unless configured (and the `docpipe` settings refuse it without an explicit
//! `allow_fault_injection`); it exists on the embedded host only. Decisions are
//! deterministic: a hash of the seed, the job, the stage and the try number, so the same
//! job meets the same faults in every run with the same seed.
//!
//! - `transient`: the stage answers `SERVICE_UNAVAILABLE` (`DocPipe.Transient`), which the
//!   definition retries. A transient fault clears after at most
//!   [`TRANSIENT_MAX_CONSECUTIVE`] failed tries of one stage in one execution (the
//!   definition retries four times), so it costs a job time, never its result.
//! - `permanent`: the stage answers `INTERNAL_ERROR` (`DocPipe.Internal`), which is not
//!   retried: the job fails with that code.
//!
//! `record_failure` is never faulted: it is how a failed job gets its code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use docpipe_asl::{TaskFailure, TaskInvoker};
use docpipe_core::stages::Stage;
use docpipe_core::{ErrorCode, StageError};
use serde::Deserialize;
use serde_json::Value;

/// Most transient faults in a row for one stage of one execution.
pub const TRANSIENT_MAX_CONSECUTIVE: u32 = 3;

/// How an injected fault fails a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultMode {
    /// `SERVICE_UNAVAILABLE`: retried by the definition.
    #[default]
    Transient,
    /// `INTERNAL_ERROR`: not retried; the job fails.
    Permanent,
}

impl FaultMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "transient" => Some(Self::Transient),
            "permanent" => Some(Self::Permanent),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }
}

/// What to inject: each stage try fails with `probability` (0 turns injection off).
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultInjection {
    pub probability: f64,
    pub mode: FaultMode,
    pub seed: u64,
}

impl FaultInjection {
    /// Whether any fault can be injected.
    pub fn is_active(&self) -> bool {
        self.probability > 0.0
    }

    /// Whether the `attempt`-th try (from 0) of `stage` for `job` meets a fault: a
    /// uniform draw in 0..1 from the seed, job, stage and try, under the probability.
    pub fn strikes(&self, job: &str, stage: Stage, attempt: u32) -> bool {
        if !self.is_active() {
            return false;
        }
        let mut h = Fnv::new();
        h.write(&self.seed.to_le_bytes());
        h.write(job.as_bytes());
        h.write(&[0]);
        h.write(stage.as_str().as_bytes());
        h.write(&attempt.to_le_bytes());
        let draw = (mix(h.finish()) >> 11) as f64 / (1u64 << 53) as f64;
        draw < self.probability
    }
}

/// 64-bit FNV-1a: a stable hash (std's `DefaultHasher` may change between releases).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// SplitMix64's finaliser, so nearby inputs give unrelated draws.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The decorator: consults [`FaultInjection`] before handing a stage task to `inner`.
pub struct FaultInjectingInvoker {
    inner: Arc<dyn TaskInvoker>,
    faults: FaultInjection,
    /// Tries so far and faults in a row, per (job, stage) with a try in progress; an
    /// entry goes when the stage answers for itself.
    tries: Mutex<HashMap<(String, Stage), (u32, u32)>>,
}

impl FaultInjectingInvoker {
    pub fn new(inner: Arc<dyn TaskInvoker>, faults: FaultInjection) -> Self {
        Self {
            inner,
            faults,
            tries: Mutex::new(HashMap::new()),
        }
    }

    fn tries(&self) -> MutexGuard<'_, HashMap<(String, Stage), (u32, u32)>> {
        self.tries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fault for this try, if one strikes.
    fn fault(&self, job: &str, stage: Stage) -> Option<StageError> {
        let mut tries = self.tries();
        let entry = tries.entry((job.to_owned(), stage)).or_insert((0, 0));
        let (attempt, in_a_row) = *entry;
        entry.0 += 1;
        let strikes = self.faults.strikes(job, stage, attempt);
        match self.faults.mode {
            FaultMode::Transient if strikes && in_a_row < TRANSIENT_MAX_CONSECUTIVE => {
                entry.1 += 1;
                Some(StageError::unavailable(format!(
                    "injected transient fault in {stage} (try {})",
                    attempt + 1
                )))
            }
            FaultMode::Permanent if strikes => {
                tries.remove(&(job.to_owned(), stage));
                Some(StageError::new(
                    ErrorCode::InternalError,
                    format!("injected permanent fault in {stage}"),
                ))
            }
            _ => {
                entry.1 = 0;
                None
            }
        }
    }
}

#[async_trait]
impl TaskInvoker for FaultInjectingInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure> {
        let stage = Stage::from_resource(resource).filter(|s| *s != Stage::RecordFailure);
        let job = input
            .get("job_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (Some(stage), Some(job)) = (stage, job) else {
            return self.inner.invoke(resource, input).await;
        };
        if let Some(e) = self.fault(&job, stage) {
            tracing::info!(job_id = %job, stage = %stage, code = %e.code, "injected fault");
            return Err(TaskFailure::new(e.name().as_str(), e.to_cause()));
        }
        let out = self.inner.invoke(resource, input).await;
        self.tries().remove(&(job, stage));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::ErrorName;

    struct Echo;

    #[async_trait]
    impl TaskInvoker for Echo {
        async fn invoke(&self, _: &str, input: Value) -> Result<Value, TaskFailure> {
            Ok(input)
        }
    }

    fn faults(probability: f64, mode: FaultMode, seed: u64) -> FaultInjection {
        FaultInjection {
            probability,
            mode,
            seed,
        }
    }

    #[test]
    fn draws_are_deterministic_and_follow_the_probability() {
        let f = faults(0.3, FaultMode::Transient, 7);
        let hits: Vec<bool> = (0..10_000)
            .map(|i| f.strikes(&format!("job_{i}"), Stage::Ocr, 0))
            .collect();
        let again: Vec<bool> = (0..10_000)
            .map(|i| f.strikes(&format!("job_{i}"), Stage::Ocr, 0))
            .collect();
        assert_eq!(hits, again, "same seed, same faults");
        let rate = hits.iter().filter(|h| **h).count() as f64 / hits.len() as f64;
        assert!((0.28..0.32).contains(&rate), "{rate}");
        let other = faults(0.3, FaultMode::Transient, 8);
        let differ = (0..1000)
            .filter(|i| other.strikes(&format!("job_{i}"), Stage::Ocr, 0) != hits[*i])
            .count();
        assert!(differ > 100, "another seed, other faults ({differ})");
        assert!(!faults(0.0, FaultMode::Permanent, 1).strikes("job", Stage::Ingest, 0));
        assert!(faults(1.0, FaultMode::Permanent, 1).strikes("job", Stage::Ingest, 0));
    }

    #[tokio::test]
    async fn transient_faults_clear_within_the_retry_budget() {
        let inv = FaultInjectingInvoker::new(Arc::new(Echo), faults(1.0, FaultMode::Transient, 1));
        let input = serde_json::json!({"job_id": "job_1"});
        for _ in 0..TRANSIENT_MAX_CONSECUTIVE {
            let e = inv
                .invoke("${OcrFunctionArn}", input.clone())
                .await
                .expect_err("fault");
            assert_eq!(e.error, ErrorName::Transient.as_str());
            assert!(e.cause.contains("SERVICE_UNAVAILABLE"), "{}", e.cause);
        }
        assert!(inv.invoke("${OcrFunctionArn}", input.clone()).await.is_ok());
        assert!(inv.tries().is_empty(), "nothing kept after an answer");
    }

    #[tokio::test]
    async fn permanent_faults_are_not_retryable_and_record_failure_is_spared() {
        let inv = FaultInjectingInvoker::new(Arc::new(Echo), faults(1.0, FaultMode::Permanent, 1));
        let input = serde_json::json!({"job_id": "job_1"});
        let e = inv
            .invoke("${ExtractFunctionArn}", input.clone())
            .await
            .expect_err("fault");
        assert_eq!(e.error, ErrorName::Internal.as_str());
        assert!(e.cause.contains("INTERNAL_ERROR"), "{}", e.cause);
        assert!(
            inv.invoke("${RecordFailureFunctionArn}", input)
                .await
                .is_ok()
        );
    }
}
