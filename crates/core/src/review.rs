//! Human review of a job in `needs_review`, written once for every host: approve the
//! machine's reading, correct fields or lines (verified again by the verify stage's own
//! checks), or reject. A decision is stored as a new result version beside the
//! machine's, and the job's status change records who decided what.
//!
//! Decisions are race-safe: the status change is the store's atomic, table-checked
//! transition, so of two reviewers one wins and the other gets `JOB_STATE_CONFLICT`.
//! They are idempotent: the same request by the same reviewer, repeated after it won, is
//! answered again instead of refused.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::{ErrorCode, StageError};
use crate::ids::{JobId, ObjectKey};
use crate::job::{DocumentKind, Job, JobError, JobStatus, OperatorAction, OperatorChange};
use crate::ports::{JobPatch, JobStore, ObjectStore};
use crate::result::{Check, Field, INVOICE_FIELDS, InvoiceResult, LineItem};
use crate::stages::verify::{VERIFY_CHECKS, apply_checks};

/// What a reviewer decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReviewDecision {
    /// The machine read it right.
    Approve {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// Some fields or lines are wrong: these are the right ones. A field set to `null` is
    /// removed; `lines`, when given, replaces every line item.
    Correct {
        #[serde(default)]
        fields: BTreeMap<String, Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<Vec<LineItem>>,
        /// Store the correction although checks fail (a comment is then required).
        #[serde(default)]
        force: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// The document cannot be used: the job fails with `REJECTED_IN_REVIEW`.
    Reject { reason: String },
}

impl ReviewDecision {
    pub fn action(&self) -> OperatorAction {
        match self {
            Self::Approve { .. } => OperatorAction::Approve,
            Self::Correct { .. } => OperatorAction::Correct,
            Self::Reject { .. } => OperatorAction::Reject,
        }
    }

    fn comment(&self) -> Option<String> {
        match self {
            Self::Approve { comment } | Self::Correct { comment, .. } => comment.clone(),
            Self::Reject { reason } => Some(reason.clone()),
        }
    }

    /// A digest of the decision and who made it: the same request twice has the same.
    fn digest(&self, reviewer: &str) -> String {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(reviewer.as_bytes());
        h.update([0]);
        h.update(&body);
        hex::encode(h.finalize())
    }
}

/// Written into a reviewed result version: who decided, when, and what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewStamp {
    pub by: String,
    pub action: OperatorAction,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Stored although these checks failed (`force`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<String>,
}

/// A decision checked against the job's result, before anything is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckedDecision {
    /// The verify checks of the result as it would be stored.
    pub checks: Vec<Check>,
    /// `false` when a verify check failed: a correction is then refused unless forced.
    pub passed: bool,
    /// The fields the decision changes (`lines` when the line items change).
    pub changed: Vec<String>,
    /// The result version the decision would store (`None` for a rejection).
    #[serde(skip)]
    result: Option<Value>,
}

/// Why a review was not recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum ReviewError {
    /// A correction that breaks these verify checks (and was not forced).
    ChecksFailed(Vec<Check>),
    /// Anything else, with its code (`JOB_STATE_CONFLICT`, `VALIDATION_ERROR`, ...).
    Stage(StageError),
}

impl From<StageError> for ReviewError {
    fn from(e: StageError) -> Self {
        Self::Stage(e)
    }
}

/// What review reads and writes.
#[derive(Clone, Copy)]
pub struct ReviewPorts<'a> {
    pub jobs: &'a dyn JobStore,
    pub objects: &'a dyn ObjectStore,
    pub clock: &'a dyn Clock,
    /// The verify stage's confidence threshold (its checks run again on corrections).
    pub confidence_threshold: f32,
}

/// A recorded decision: the job as it now is and its current result (`None` after a
/// rejection).
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewed {
    pub job: Job,
    pub result: Option<Value>,
}

fn invalid(message: impl Into<String>) -> ReviewError {
    ReviewError::Stage(StageError::new(ErrorCode::ValidationError, message))
}

fn not_in_review(job: &Job) -> ReviewError {
    ReviewError::Stage(StageError::new(
        ErrorCode::JobStateConflict,
        format!("job {} is {}, not in review", job.id, job.status),
    ))
}

async fn read_result(ports: ReviewPorts<'_>, job: &Job) -> Result<Value, StageError> {
    let key = job
        .keys
        .result
        .as_ref()
        .ok_or_else(|| StageError::internal(format!("job {} has no result", job.id)))?;
    crate::stages::read_object_json(ports.objects, key).await
}

/// Checks a decision against the job's current result without storing anything: the
/// checks the stored version would carry and what it changes (the console's live check).
pub async fn check(
    ports: ReviewPorts<'_>,
    id: &JobId,
    decision: &ReviewDecision,
) -> Result<CheckedDecision, ReviewError> {
    let job = ports.jobs.get(id).await?;
    if job.status != JobStatus::NeedsReview {
        return Err(not_in_review(&job));
    }
    let current = read_result(ports, &job).await?;
    checked(&job, current, decision, ports.confidence_threshold)
}

fn checked(
    job: &Job,
    current: Value,
    decision: &ReviewDecision,
    threshold: f32,
) -> Result<CheckedDecision, ReviewError> {
    let (fields, lines) = match decision {
        ReviewDecision::Reject { reason } => {
            if reason.trim().is_empty() {
                return Err(invalid("a rejection needs a reason"));
            }
            return Ok(CheckedDecision {
                checks: Vec::new(),
                passed: true,
                changed: Vec::new(),
                result: None,
            });
        }
        ReviewDecision::Approve { .. } => (&BTreeMap::new(), &None),
        ReviewDecision::Correct {
            fields,
            lines,
            force,
            comment,
        } => {
            if *force && comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
                return Err(invalid("a forced correction needs a comment saying why"));
            }
            if job.kind == DocumentKind::Blueprint {
                return Err(invalid(
                    "a blueprint's rooms are approved or rejected, not corrected field by field",
                ));
            }
            (fields, lines)
        }
    };
    if job.kind == DocumentKind::Blueprint {
        let checks = current
            .get("checks")
            .cloned()
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default();
        return Ok(CheckedDecision {
            checks,
            passed: true,
            changed: Vec::new(),
            result: Some(current),
        });
    }
    let mut result: InvoiceResult = serde_json::from_value(current)
        .map_err(|e| StageError::internal(format!("stored result of {}: {e}", job.id)))?;
    let mut changed = Vec::new();
    for (name, value) in fields {
        if !INVOICE_FIELDS.contains(&name.as_str()) {
            return Err(invalid(format!(
                "unknown field {name:?}; fields are {}",
                INVOICE_FIELDS.join(", ")
            )));
        }
        let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
        match (result.fields.get_mut(name), value) {
            (Some(field), Some(v)) if field.value == v => {}
            (Some(field), Some(v)) => {
                field.value = v.to_owned();
                field.confidence = 1.0;
                changed.push(name.clone());
            }
            (None, Some(v)) => {
                result.set(name, Field::new(v, 1.0));
                changed.push(name.clone());
            }
            (Some(_), None) => {
                result.fields.remove(name);
                changed.push(name.clone());
            }
            (None, None) => {}
        }
    }
    if let Some(lines) = lines
        && *lines != result.lines
    {
        result.lines = lines
            .iter()
            .cloned()
            .map(|mut l| {
                l.confidence = 1.0;
                l
            })
            .collect();
        changed.push("lines".to_owned());
    }
    apply_checks(&mut result, threshold);
    let checks: Vec<Check> = result
        .checks
        .iter()
        .filter(|c| VERIFY_CHECKS.contains(&c.name.as_str()))
        .cloned()
        .collect();
    let passed = checks.iter().all(|c| c.passed);
    let value = serde_json::to_value(&result)
        .map_err(|e| StageError::internal(format!("serialising a result: {e}")))?;
    Ok(CheckedDecision {
        checks,
        passed,
        changed,
        result: Some(value),
    })
}

/// Records a reviewer's decision on a job in review.
pub async fn review(
    ports: ReviewPorts<'_>,
    id: &JobId,
    reviewer: &str,
    decision: &ReviewDecision,
) -> Result<Reviewed, ReviewError> {
    let digest = decision.digest(reviewer);
    let job = ports.jobs.get(id).await?;
    if job.status != JobStatus::NeedsReview {
        return replay(ports, &job, &digest).await;
    }
    let current = read_result(ports, &job).await?;
    let outcome = checked(&job, current, decision, ports.confidence_threshold)?;
    let forced = matches!(decision, ReviewDecision::Correct { force: true, .. });
    if !outcome.passed && !forced {
        return Err(ReviewError::ChecksFailed(
            outcome.checks.into_iter().filter(|c| !c.passed).collect(),
        ));
    }
    let now = ports.clock.now();
    let operator = OperatorChange {
        by: reviewer.to_owned(),
        action: decision.action(),
        fields: outcome.changed.clone(),
        comment: decision.comment(),
        request: Some(digest.clone()),
    };
    let Some(mut result) = outcome.result else {
        // A rejection.
        let reason = decision.comment().unwrap_or_default();
        let patch = JobPatch {
            error: Some(JobError {
                code: ErrorCode::RejectedInReview,
                message: reason,
            }),
            operator: Some(operator),
            ..JobPatch::default()
        };
        return match ports
            .jobs
            .transition(id, JobStatus::Failed, patch, now)
            .await
        {
            Ok(job) => Ok(Reviewed { job, result: None }),
            Err(_) => lost_race(ports, id, &digest).await,
        };
    };
    let stamp = ReviewStamp {
        by: reviewer.to_owned(),
        action: decision.action(),
        at: now,
        changed: outcome.changed,
        comment: decision.comment(),
        failed_checks: outcome
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.clone())
            .collect(),
    };
    if let Value::Object(map) = &mut result {
        map.insert("needs_review".into(), Value::Bool(false));
        map.insert("review_reasons".into(), Value::Array(Vec::new()));
        map.insert(
            "review".into(),
            serde_json::to_value(&stamp)
                .map_err(|e| StageError::internal(format!("review stamp: {e}")))?,
        );
    }
    // One key per decision, so a losing reviewer never overwrites the winner's version.
    let key = ObjectKey::for_job("results", id, &format!("reviewed-{}.json", &digest[..16]));
    let bytes = serde_json::to_vec(&result)
        .map_err(|e| StageError::internal(format!("serialising {key}: {e}")))?;
    ports.objects.put(&key, bytes).await?;
    let patch = JobPatch {
        result_key: Some(key.clone()),
        // The machine's version stays where it is, named once.
        machine_result_key: match &job.keys.machine_result {
            Some(_) => None,
            None => job.keys.result.clone(),
        },
        operator: Some(operator),
        ..JobPatch::default()
    };
    match ports
        .jobs
        .transition(id, JobStatus::Completed, patch, now)
        .await
    {
        Ok(job) => Ok(Reviewed {
            job,
            result: Some(result),
        }),
        Err(_) => {
            let answer = lost_race(ports, id, &digest).await;
            if answer.is_err() {
                // Nothing refers to the version this request stored.
                let _ = ports.objects.delete(&key).await;
            }
            answer
        }
    }
}

/// The status change failed: someone else decided first. The same request (a retry of
/// one that won) is answered again; another is a conflict.
async fn lost_race(
    ports: ReviewPorts<'_>,
    id: &JobId,
    digest: &str,
) -> Result<Reviewed, ReviewError> {
    let job = ports.jobs.get(id).await?;
    replay(ports, &job, digest).await
}

/// The answer to a decision on a job no longer in review: the recorded outcome if this
/// very request made it, else `JOB_STATE_CONFLICT`.
async fn replay(ports: ReviewPorts<'_>, job: &Job, digest: &str) -> Result<Reviewed, ReviewError> {
    let history = ports.jobs.history(&job.id).await?;
    let decided_by_this = history
        .iter()
        .rev()
        .find_map(|c| c.operator.as_ref())
        .is_some_and(|op| op.request.as_deref() == Some(digest));
    if !decided_by_this {
        return Err(not_in_review(job));
    }
    let result = match job.status {
        JobStatus::Completed => Some(read_result(ports, job).await?),
        _ => None,
    };
    Ok(Reviewed {
        job: job.clone(),
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_parse_from_the_api_shape() {
        let d: ReviewDecision = serde_json::from_value(serde_json::json!({
            "action": "correct", "fields": {"gross_total": "119.00", "due_date": null}
        }))
        .expect("parses");
        assert_eq!(d.action(), OperatorAction::Correct);
        let d: ReviewDecision =
            serde_json::from_value(serde_json::json!({"action": "approve"})).expect("parses");
        assert_eq!(d, ReviewDecision::Approve { comment: None });
        assert!(
            serde_json::from_value::<ReviewDecision>(serde_json::json!({"action": "bless"}))
                .is_err()
        );
    }

    #[test]
    fn the_same_request_by_another_reviewer_is_another_request() {
        let d = ReviewDecision::Approve { comment: None };
        assert_eq!(d.digest("alice"), d.digest("alice"));
        assert_ne!(d.digest("alice"), d.digest("bob"));
    }
}
