//! API keys in the `api_keys` table: partition key `name` (so names are unique by a
//! conditional put), a GSI `by_hash` on `key_hash` (the sha256 of the secret; the secret
//! itself is never stored) for authenticating a request.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use docpipe_core::ports::Result;
use docpipe_core::{ApiKey, ErrorCode, KeyStore, StageError};

use crate::error::sdk_error;

/// GSI from a key's hash to its item.
pub const INDEX_BY_HASH: &str = "by_hash";

#[derive(Clone, Debug)]
pub struct DynamoKeyStore {
    client: Client,
    table: String,
}

impl DynamoKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The key named `name`, if there is one (the intake starter checks a tenant by it).
    pub async fn get(&self, name: &str) -> Result<Option<ApiKey>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("name", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB GetItem", e))?;
        out.item.as_ref().map(decode).transpose()
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn encode(key: &ApiKey) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("name".to_owned(), s(&key.name)),
        ("key_hash".to_owned(), s(&key.key_hash)),
        ("active".to_owned(), AttributeValue::Bool(key.active)),
        (
            "rate_limit_per_minute".to_owned(),
            AttributeValue::N(key.rate_limit_per_minute.to_string()),
        ),
        ("created_at".to_owned(), s(&ts(key.created_at))),
        (
            "request_count".to_owned(),
            AttributeValue::N(key.request_count.to_string()),
        ),
    ]);
    if let Some(at) = key.last_used_at {
        item.insert("last_used_at".into(), s(&ts(at)));
    }
    if key.delete_document_when_final {
        item.insert(
            "delete_document_when_final".into(),
            AttributeValue::Bool(true),
        );
    }
    item
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<ApiKey> {
    let corrupt = |what: &str| StageError::internal(format!("stored API key: {what}"));
    let text = |name: &str| -> Result<String> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| corrupt(name))
    };
    let time = |v: &str| -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(v)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| corrupt("time"))
    };
    let number = |name: &str| -> Result<u64> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt(name))
    };
    Ok(ApiKey {
        name: text("name")?,
        key_hash: text("key_hash")?,
        active: item
            .get("active")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .ok_or_else(|| corrupt("active"))?,
        rate_limit_per_minute: u32::try_from(number("rate_limit_per_minute")?)
            .map_err(|_| corrupt("rate_limit_per_minute"))?,
        created_at: time(&text("created_at")?)?,
        last_used_at: match item.get("last_used_at").and_then(|v| v.as_s().ok()) {
            Some(v) => Some(time(v)?),
            None => None,
        },
        request_count: number("request_count")?,
        // Absent on keys made before it existed.
        delete_document_when_final: item
            .get("delete_document_when_final")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

#[async_trait]
impl KeyStore for DynamoKeyStore {
    async fn create(&self, key: &ApiKey) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(key)))
            .condition_expression("attribute_not_exists(#n)")
            .expression_attribute_names("#n", "name")
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
                    format!("an API key named {:?} exists", key.name),
                ))
            }
            Err(e) => Err(sdk_error("DynamoDB PutItem", e)),
        }
    }

    async fn find_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX_BY_HASH)
            .key_condition_expression("key_hash = :h")
            .expression_attribute_values(":h", s(key_hash))
            .limit(2)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB Query", e))?;
        out.items().first().map(decode).transpose()
    }

    async fn list(&self) -> Result<Vec<ApiKey>> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            keys.push(decode(&item.map_err(|e| sdk_error("DynamoDB Scan", e))?)?);
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    async fn revoke(&self, name: &str) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("name", s(name))
            .update_expression("SET active = :f")
            .condition_expression("attribute_exists(#n)")
            .expression_attribute_names("#n", "name")
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Err(StageError::new(
                    ErrorCode::NotFound,
                    format!("no API key named {name:?}"),
                ))
            }
            Err(e) => Err(sdk_error("DynamoDB UpdateItem", e)),
        }
    }

    async fn record_use(&self, name: &str, count: u64, at: DateTime<Utc>) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("name", s(name))
            .update_expression("ADD request_count :count SET last_used_at = :at")
            .condition_expression("attribute_exists(#n)")
            .expression_attribute_names("#n", "name")
            .expression_attribute_values(":count", AttributeValue::N(count.to_string()))
            .expression_attribute_values(":at", s(&ts(at)))
            .send()
            .await;
        match result {
            // A key deleted meanwhile: nothing to count.
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("DynamoDB UpdateItem", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_items() {
        let key = ApiKey {
            name: "acme".into(),
            key_hash: docpipe_core::keys::hash_key("dp_secret"),
            active: true,
            rate_limit_per_minute: 60,
            created_at: Utc::now(),
            last_used_at: Some(Utc::now()),
            request_count: 7,
            delete_document_when_final: false,
        };
        assert_eq!(decode(&encode(&key)).expect("decodes"), key);
        let dropping = ApiKey {
            delete_document_when_final: true,
            ..key
        };
        assert_eq!(decode(&encode(&dropping)).expect("decodes"), dropping);
    }
}
