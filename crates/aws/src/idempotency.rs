//! `Idempotency-Key` records in the `idempotency` table: partition key `owner_key`
//! (`{owner}#{key}`), kept for the core's idempotency retention (24 hours; TTL `expires_at`), written with a conditional put
//! so the first request with a key wins and every retry sees its job.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use docpipe_core::ports::Result;
use docpipe_core::retention::Retention;
use docpipe_core::{IdempotencyRecord, IdempotencyStore, JobId, StageError};

use crate::error::sdk_error;
use crate::jobs::TTL_ATTRIBUTE;

#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    client: Client,
    table: String,
    /// How long a record is remembered (the core's retention: 24 hours by default).
    ttl: Duration,
}

impl DynamoIdempotencyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_retention(client, table, &Retention::default())
    }

    pub fn with_retention(client: Client, table: impl Into<String>, retention: &Retention) -> Self {
        Self {
            client,
            table: table.into(),
            ttl: Duration::seconds(
                i64::try_from(retention.idempotency_secs).unwrap_or(i64::MAX / 1000),
            ),
        }
    }
}

fn pk(owner: &str, key: &str) -> AttributeValue {
    AttributeValue::S(format!("{owner}#{key}"))
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<IdempotencyRecord> {
    let text = |name: &str| -> Result<String> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StageError::internal(format!("stored idempotency record: {name}")))
    };
    Ok(IdempotencyRecord {
        owner: text("owner")?,
        key: text("key")?,
        request_hash: text("request_hash")?,
        job_id: JobId::parse(&text("job_id")?)?,
        created_at: DateTime::parse_from_rfc3339(&text("created_at")?)
            .map_err(|_| StageError::internal("stored idempotency record: created_at"))?
            .with_timezone(&Utc),
    })
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn get(&self, owner: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("owner_key", pk(owner, key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB GetItem", e))?;
        out.item.as_ref().map(decode).transpose()
    }

    async fn put_if_absent(&self, record: &IdempotencyRecord) -> Result<Option<IdempotencyRecord>> {
        let expires = record.created_at + self.ttl;
        let item = HashMap::from([
            ("owner_key".to_owned(), pk(&record.owner, &record.key)),
            ("owner".to_owned(), s(&record.owner)),
            ("key".to_owned(), s(&record.key)),
            ("request_hash".to_owned(), s(&record.request_hash)),
            ("job_id".to_owned(), s(record.job_id.as_str())),
            (
                "created_at".to_owned(),
                s(&record
                    .created_at
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            ),
            (
                TTL_ATTRIBUTE.to_owned(),
                AttributeValue::N(expires.timestamp().to_string()),
            ),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(owner_key)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                self.get(&record.owner, &record.key).await
            }
            Err(e) => Err(sdk_error("DynamoDB PutItem", e)),
        }
    }
}
