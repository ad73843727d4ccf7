//! Content-hash dedupe for blueprint previews: the `preview_cache` table, partition key
//! `blueprint_hash` (the document's sha256), items expiring an hour after they were put.
//!
//! DynamoDB deletes expired items lazily (often within minutes, sometimes days later), so
//! a read checks `expires_at` itself: an expired entry is a miss.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use docpipe_core::ports::Result;
use docpipe_core::{ErrorCode, ObjectKey, StageError};

use crate::error::sdk_error;
use crate::jobs::TTL_ATTRIBUTE;

/// How long a cached preview is reused.
pub const PREVIEW_TTL_SECS: i64 = 3600;

/// A cached result for one content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPreview {
    pub blueprint_hash: String,
    /// Where the earlier result is stored.
    pub result_key: ObjectKey,
    pub expires_at: DateTime<Utc>,
}

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

    /// The unexpired entry for `hash`, if any.
    pub async fn get(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<CachedPreview>> {
        check_hash(hash)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("blueprint_hash", AttributeValue::S(hash.to_owned()))
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
        let key = item
            .get("result_key")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StageError::internal("preview cache item without result key"))?;
        Ok(Some(CachedPreview {
            blueprint_hash: hash.to_owned(),
            result_key: ObjectKey::parse(key)?,
            expires_at: expires,
        }))
    }

    /// Records `result_key` for `hash`, valid for an hour from `now`.
    pub async fn put(
        &self,
        hash: &str,
        result_key: &ObjectKey,
        now: DateTime<Utc>,
    ) -> Result<CachedPreview> {
        check_hash(hash)?;
        let expires_at = now + Duration::seconds(PREVIEW_TTL_SECS);
        let item = HashMap::from([
            (
                "blueprint_hash".to_owned(),
                AttributeValue::S(hash.to_owned()),
            ),
            (
                "result_key".to_owned(),
                AttributeValue::S(result_key.as_str().to_owned()),
            ),
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
        Ok(CachedPreview {
            blueprint_hash: hash.to_owned(),
            result_key: result_key.clone(),
            expires_at,
        })
    }
}

fn check_hash(hash: &str) -> Result<()> {
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(StageError::new(
            ErrorCode::ValidationError,
            "a content hash is 64 hex digits (sha256)",
        ))
    }
}
