//! Content-hash dedupe on DynamoDB: the `preview_cache` table, partition key
//! `blueprint_hash` holding the dedupe key (the document's sha256, its kind and the
//! pipeline's profile: [`docpipe_core::stages::dedupe_key`]), the earlier job and its
//! verification, and a TTL attribute (an hour after the put by default).
//!
//! DynamoDB deletes expired items lazily (often within minutes, sometimes days later), so
//! a read checks the expiry itself: an expired entry is a miss.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use docpipe_core::ports::Result;
use docpipe_core::{CachedResult, ErrorCode, JobId, ResultCache, StageError};

use crate::error::sdk_error;
use crate::jobs::TTL_ATTRIBUTE;

/// How long a result is reused unless the settings say otherwise.
pub const PREVIEW_TTL_SECS: u64 = 3600;

#[derive(Clone, Debug)]
pub struct PreviewCache {
    client: Client,
    table: String,
}

impl PreviewCache {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StageError::internal(format!("preview cache item without {name}")))
}

#[async_trait]
impl ResultCache for PreviewCache {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<CachedResult>> {
        check_key(key)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("blueprint_hash", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let expires = item
            .get(TTL_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or_else(|| StageError::internal("preview cache item without expiry"))?;
        if expires <= now {
            return Ok(None);
        }
        let job_id = text(&item, "job_id")?;
        Ok(Some(CachedResult {
            job_id: JobId::parse(job_id)
                .map_err(|_| StageError::internal(format!("stored job id {job_id:?}")))?,
            verification: serde_json::from_str(text(&item, "verification")?)
                .map_err(|e| StageError::internal(format!("stored verification: {e}")))?,
        }))
    }

    async fn put(
        &self,
        key: &str,
        entry: &CachedResult,
        _now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        check_key(key)?;
        let verification = serde_json::to_string(&entry.verification)
            .map_err(|e| StageError::internal(format!("verification: {e}")))?;
        // Expired items are DynamoDB's to sweep (the TTL attribute).
        let item = HashMap::from([
            (
                "blueprint_hash".to_owned(),
                AttributeValue::S(key.to_owned()),
            ),
            (
                "job_id".to_owned(),
                AttributeValue::S(entry.job_id.to_string()),
            ),
            ("verification".to_owned(), AttributeValue::S(verification)),
            (
                TTL_ATTRIBUTE.to_owned(),
                AttributeValue::N(expires_at.timestamp().to_string()),
            ),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB PutItem", e))?;
        Ok(())
    }
}

/// A dedupe key starts with the content's sha256 (64 hex digits).
fn check_key(key: &str) -> Result<()> {
    let hash = key.split(':').next().unwrap_or_default();
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && key.len() <= 256 {
        Ok(())
    } else {
        Err(StageError::new(
            ErrorCode::ValidationError,
            "a dedupe key starts with the content's sha256 (64 hex digits)",
        ))
    }
}
