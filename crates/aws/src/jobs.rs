//! The DynamoDB job store.
//!
//! One item per job in the `jobs` table (partition key `job_id`). The job itself is kept
//! as JSON in `data` (the one serialisation the SQLite store uses too); the attributes
//! that queries and conditions need sit beside it: `status`, `version`, `owner`,
//! `created_key`, `list_pk`, `expires_at` (TTL: the core's retention of final jobs, 7
//! days after a final status unless configured) and
//! `history` (the status changes, appended in the same write as the change).
//!
//! Every write is conditional on the `version` read before it (and a status change also
//! on the `status`), so two writers can never both move a job out of the same status: the
//! loser gets `INVALID_TRANSITION` and nothing of its change is stored.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use docpipe_core::job::StatusChange;
use docpipe_core::ports::Result;
use docpipe_core::retention::Retention;
use docpipe_core::{
    ErrorCode, Job, JobFilter, JobId, JobPage, JobPatch, JobStatus, JobStore, StageError,
};

use crate::error::sdk_error;

/// GSI listing one owner's (API key's) jobs, newest first: `owner` + `created_key`.
pub const INDEX_BY_OWNER: &str = "by_owner";
/// GSI listing every job, newest first: `list_pk` (always `"job"`) + `created_key`.
pub const INDEX_BY_CREATED: &str = "by_created";
/// The TTL attribute (epoch seconds) of every docpipe table.
pub const TTL_ATTRIBUTE: &str = "expires_at";

const LIST_PK: &str = "job";
const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;
/// An `update` re-reads and retries this often when another writer got in between.
const UPDATE_ATTEMPTS: usize = 5;

/// Jobs in DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
    /// How long a job stays after reaching a final status (the core's retention).
    final_ttl: ChronoDuration,
}

/// A job as read, with the version its next write must be conditional on.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub job: Job,
    pub version: u64,
    history: Vec<StatusChange>,
}

impl DynamoJobStore {
    /// A store whose final jobs expire after the default retention (7 days).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_retention(client, table, &Retention::default())
    }

    /// A store whose final jobs expire `retention.final_jobs_secs` after their last change.
    pub fn with_retention(client: Client, table: impl Into<String>, retention: &Retention) -> Self {
        Self {
            client,
            table: table.into(),
            final_ttl: ChronoDuration::seconds(
                i64::try_from(retention.final_jobs_secs).unwrap_or(i64::MAX / 1000),
            ),
        }
    }

    /// The TTL (epoch seconds) of a job that became final at `at`.
    pub fn expiry(&self, at: DateTime<Utc>) -> i64 {
        (at + self.final_ttl).timestamp()
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The job with its version, read consistently: the first half of a transition.
    pub async fn read(&self, id: &JobId) -> Result<Versioned> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB GetItem", e))?;
        let item = out
            .item
            .ok_or_else(|| StageError::new(ErrorCode::JobNotFound, format!("no job {id}")))?;
        decode(&item)
    }

    /// The second half of a transition: checks `read.job.status -> to` against the table
    /// and writes the change on condition that status and version are still the ones
    /// read. If another writer got in between, nothing is written and the result is
    /// `INVALID_TRANSITION`: a status change is never retried blindly, since the table
    /// decided on a status that is gone.
    pub async fn transition_from(
        &self,
        read: Versioned,
        to: JobStatus,
        patch: JobPatch,
        at: DateTime<Utc>,
    ) -> Result<Job> {
        let Versioned {
            mut job, version, ..
        } = read;
        let from = job.status;
        from.check_move(to, patch.actor())?;
        let change = patch.status_change(to, at);
        patch.apply(&mut job);
        job.status = to;
        job.updated_at = at;
        if self.write(&job, version, Some((from, change))).await? {
            return Ok(job);
        }
        let now = self.read(&job.id).await.map(|v| v.job.status).ok();
        Err(StageError::new(
            ErrorCode::InvalidTransition,
            format!(
                "job {} changed while moving from {from} to {to}{}",
                job.id,
                now.map(|s| format!(" (it is now {s})")).unwrap_or_default()
            ),
        ))
    }

    /// Writes `job` over version `version`: a status change from a status (and its
    /// history entry) if `change` is given. `Ok(false)` if the condition failed (someone
    /// else wrote first).
    async fn write(
        &self,
        job: &Job,
        version: u64,
        change: Option<(JobStatus, StatusChange)>,
    ) -> Result<bool> {
        let at = job.updated_at;
        let data = encode_job(job)?;
        let mut set = vec![
            "#data = :data",
            "#status = :status",
            "#version = :next",
            "#updated = :updated",
        ];
        let mut values = HashMap::from([
            (":data".to_owned(), s(&data)),
            (":status".to_owned(), s(job.status.as_str())),
            (":next".to_owned(), n(version + 1)),
            (":updated".to_owned(), s(&ts(job.updated_at))),
            (":version".to_owned(), n(version)),
        ]);
        let mut names = HashMap::from([
            ("#data".to_owned(), "data".to_owned()),
            ("#status".to_owned(), "status".to_owned()),
            ("#version".to_owned(), "version".to_owned()),
            ("#updated".to_owned(), "updated_at".to_owned()),
        ]);
        let mut condition = "#version = :version".to_owned();
        let mut remove = "";
        if let Some((from, change)) = change {
            condition.push_str(" AND #status = :from");
            values.insert(":from".into(), s(from.as_str()));
            if from != job.status {
                set.push("#history = list_append(if_not_exists(#history, :empty), :entry)");
                names.insert("#history".into(), "history".into());
                values.insert(":empty".into(), AttributeValue::L(Vec::new()));
                values.insert(
                    ":entry".into(),
                    AttributeValue::L(vec![history_entry(&change)?]),
                );
            }
            // A retried job runs again: it must not expire as a finished one would.
            if from.is_final() && !job.status.is_final() {
                remove = " REMOVE #expires";
                names.insert("#expires".into(), TTL_ATTRIBUTE.into());
            }
        }
        if job.status.is_final() {
            set.push("#expires = :expires");
            names.insert("#expires".into(), TTL_ATTRIBUTE.into());
            values.insert(":expires".into(), n(self.expiry(at)));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job.id.as_str()))
            .update_expression(format!("SET {}{remove}", set.join(", ")))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("DynamoDB UpdateItem", e)),
        }
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, job: &Job) -> Result<()> {
        let mut item = HashMap::from([
            ("job_id".to_owned(), s(job.id.as_str())),
            ("status".to_owned(), s(job.status.as_str())),
            ("kind".to_owned(), s(job.kind.as_str())),
            ("version".to_owned(), n(1)),
            ("list_pk".to_owned(), s(LIST_PK)),
            ("created_key".to_owned(), s(&created_key(job))),
            ("updated_at".to_owned(), s(&ts(job.updated_at))),
            ("data".to_owned(), s(&encode_job(job)?)),
            (
                "history".to_owned(),
                AttributeValue::L(vec![history_entry(&StatusChange::new(
                    job.status,
                    job.created_at,
                ))?]),
            ),
        ]);
        if let Some(owner) = &job.owner {
            item.insert("owner".into(), s(owner));
        }
        if job.status.is_final() {
            item.insert(TTL_ATTRIBUTE.into(), n(self.expiry(job.updated_at)));
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(job_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Err(StageError::new(
                    ErrorCode::ValidationError,
                    format!("job {} already exists", job.id),
                ))
            }
            Err(e) => Err(sdk_error("DynamoDB PutItem", e)),
        }
    }

    async fn get(&self, id: &JobId) -> Result<Job> {
        Ok(self.read(id).await?.job)
    }

    async fn transition(
        &self,
        id: &JobId,
        to: JobStatus,
        patch: JobPatch,
        at: DateTime<Utc>,
    ) -> Result<Job> {
        let read = self.read(id).await?;
        self.transition_from(read, to, patch, at).await
    }

    async fn update(&self, id: &JobId, patch: JobPatch, at: DateTime<Utc>) -> Result<Job> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Versioned {
                mut job, version, ..
            } = self.read(id).await?;
            patch.apply(&mut job);
            job.updated_at = at;
            // No status change: a concurrent writer only means "re-read and apply again".
            if self.write(&job, version, None).await? {
                return Ok(job);
            }
        }
        Err(StageError::unavailable(format!(
            "job {id} kept changing; gave up after {UPDATE_ATTEMPTS} attempts"
        )))
    }

    async fn history(&self, id: &JobId) -> Result<Vec<StatusChange>> {
        Ok(self.read(id).await?.history)
    }

    async fn list(&self, filter: &JobFilter) -> Result<JobPage> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let (index, key_condition, partition) = match &filter.owner {
            Some(owner) => {
                names.insert("#pk".into(), "owner".into());
                values.insert(":pk".to_owned(), s(owner));
                (INDEX_BY_OWNER, "#pk = :pk", ("owner", owner.as_str()))
            }
            None => {
                names.insert("#pk".into(), "list_pk".into());
                values.insert(":pk".to_owned(), s(LIST_PK));
                (INDEX_BY_CREATED, "#pk = :pk", ("list_pk", LIST_PK))
            }
        };
        let mut filters = Vec::new();
        if let Some(status) = filter.status {
            names.insert("#status".into(), "status".into());
            values.insert(":status".into(), s(status.as_str()));
            filters.push("#status = :status");
        }
        if let Some(kind) = filter.kind {
            names.insert("#kind".into(), "kind".into());
            values.insert(":kind".into(), s(kind.as_str()));
            filters.push("#kind = :kind");
        }
        let mut start = match &filter.cursor {
            Some(cursor) => Some(start_key(cursor, partition)?),
            None => None,
        };
        let mut jobs = Vec::new();
        // A FilterExpression applies after Limit, so keep reading pages until one more
        // job than asked for has matched (that one only proves there is a next page).
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(key_condition)
                .set_filter_expression((!filters.is_empty()).then(|| filters.join(" AND ")))
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit((limit as i32 + 1) * 2)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("DynamoDB Query", e))?;
            for item in out.items() {
                jobs.push(decode(item)?.job);
            }
            if jobs.len() > limit {
                break;
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let next_cursor = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last().map(created_key)
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Sorts newest first and is unique: creation time, then the id.
fn created_key(job: &Job) -> String {
    format!("{}#{}", ts(job.created_at), job.id)
}

fn history_entry(change: &StatusChange) -> Result<AttributeValue> {
    let mut entry = HashMap::from([
        ("status".to_owned(), s(change.status.as_str())),
        ("at".to_owned(), s(&ts(change.at))),
    ]);
    if let Some(operator) = &change.operator {
        let json = serde_json::to_string(operator)
            .map_err(|e| StageError::internal(format!("operator change: {e}")))?;
        entry.insert("operator".to_owned(), s(&json));
    }
    Ok(AttributeValue::M(entry))
}

fn encode_job(job: &Job) -> Result<String> {
    serde_json::to_string(job).map_err(|e| StageError::internal(format!("job: {e}")))
}

/// The `ExclusiveStartKey` a cursor (a `created_key`) stands for on an index.
fn start_key(
    cursor: &str,
    (partition_name, partition_value): (&str, &str),
) -> Result<HashMap<String, AttributeValue>> {
    let bad = || StageError::new(ErrorCode::ValidationError, "invalid cursor");
    let (stamp, id) = cursor.split_once('#').ok_or_else(bad)?;
    DateTime::parse_from_rfc3339(stamp).map_err(|_| bad())?;
    let id = JobId::parse(id).map_err(|_| bad())?;
    Ok(HashMap::from([
        ("job_id".to_owned(), s(id.as_str())),
        (partition_name.to_owned(), s(partition_value)),
        ("created_key".to_owned(), s(cursor)),
    ]))
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<Versioned> {
    let corrupt = |what: &str| StageError::internal(format!("stored job item: {what}"));
    let data = item
        .get("data")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| corrupt("no data"))?;
    let job: Job =
        serde_json::from_str(data).map_err(|e| StageError::internal(format!("stored job: {e}")))?;
    let version = item
        .get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| corrupt("no version"))?;
    let mut history = Vec::new();
    if let Some(AttributeValue::L(entries)) = item.get("history") {
        for entry in entries {
            let m = entry.as_m().map_err(|_| corrupt("history entry"))?;
            let status = m
                .get("status")
                .and_then(|v| v.as_s().ok())
                .and_then(|v| JobStatus::parse(v))
                .ok_or_else(|| corrupt("history status"))?;
            let at = m
                .get("at")
                .and_then(|v| v.as_s().ok())
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .ok_or_else(|| corrupt("history time"))?
                .with_timezone(&Utc);
            let operator = match m.get("operator").and_then(|v| v.as_s().ok()) {
                Some(json) => {
                    Some(serde_json::from_str(json).map_err(|_| corrupt("history operator"))?)
                }
                None => None,
            };
            history.push(StatusChange {
                status,
                at,
                operator,
            });
        }
    }
    Ok(Versioned {
        job,
        version,
        history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::DocumentKind;

    #[test]
    fn an_item_decodes_back_into_its_job() {
        let at = Utc::now();
        let job = Job::new(JobId::generate(at), DocumentKind::Invoice, "a.pdf", at);
        let item = HashMap::from([
            ("data".to_owned(), s(&encode_job(&job).expect("encodes"))),
            ("version".to_owned(), n(3)),
            (
                "history".to_owned(),
                AttributeValue::L(vec![
                    history_entry(&StatusChange::new(JobStatus::Queued, at)).expect("entry"),
                ]),
            ),
        ]);
        let v = decode(&item).expect("decodes");
        assert_eq!(v.job, job);
        assert_eq!(v.version, 3);
        assert_eq!(v.history.len(), 1);
    }

    #[test]
    fn cursors_are_checked() {
        let at = Utc::now();
        let job = Job::new(JobId::generate(at), DocumentKind::Invoice, "a.pdf", at);
        let key = start_key(&created_key(&job), ("list_pk", LIST_PK)).expect("valid");
        assert_eq!(key["job_id"], s(job.id.as_str()));
        assert!(start_key("garbage", ("list_pk", LIST_PK)).is_err());
        assert!(start_key("2024-01-01T00:00:00Z#../x", ("list_pk", LIST_PK)).is_err());
    }
}
