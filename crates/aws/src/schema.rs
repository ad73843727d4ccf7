//! The tables as code, for emulators and tests. `infra/template.yaml` declares the same
//! tables for AWS; a test in `docpipe-aws-mock-tests` checks that the two agree on names,
//! keys, indexes and TTL attributes.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use docpipe_core::StageError;
use docpipe_core::ports::Result;

use crate::api_keys::INDEX_BY_HASH;
use crate::config::AwsSettings;
use crate::error::sdk_error;
use crate::jobs::{INDEX_BY_CREATED, INDEX_BY_OWNER, TTL_ATTRIBUTE};

/// Creates the jobs, API key, webhook, idempotency and preview cache tables (on-demand,
/// TTL where records expire).
pub async fn create_tables(client: &Client, settings: &AwsSettings) -> Result<()> {
    let attr = |name: &str| -> Result<AttributeDefinition> {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_error)
    };
    let key = |name: &str, kind: KeyType| -> Result<KeySchemaElement> {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(build_error)
    };
    let index = |name: &str, pk: &str, sk: Option<&str>| -> Result<GlobalSecondaryIndex> {
        let mut b = GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?);
        if let Some(sk) = sk {
            b = b.key_schema(key(sk, KeyType::Range)?);
        }
        b.projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)
    };
    client
        .create_table()
        .table_name(&settings.jobs_table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("job_id")?)
        .attribute_definitions(attr("owner")?)
        .attribute_definitions(attr("list_pk")?)
        .attribute_definitions(attr("created_key")?)
        .key_schema(key("job_id", KeyType::Hash)?)
        .global_secondary_indexes(index(INDEX_BY_OWNER, "owner", Some("created_key"))?)
        .global_secondary_indexes(index(INDEX_BY_CREATED, "list_pk", Some("created_key"))?)
        .send()
        .await
        .map_err(|e| sdk_error("DynamoDB CreateTable", e))?;
    client
        .create_table()
        .table_name(&settings.api_keys_table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("name")?)
        .attribute_definitions(attr("key_hash")?)
        .key_schema(key("name", KeyType::Hash)?)
        .global_secondary_indexes(index(INDEX_BY_HASH, "key_hash", None)?)
        .send()
        .await
        .map_err(|e| sdk_error("DynamoDB CreateTable", e))?;
    client
        .create_table()
        .table_name(&settings.webhooks_table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("owner")?)
        .attribute_definitions(attr("webhook_id")?)
        .key_schema(key("owner", KeyType::Hash)?)
        .key_schema(key("webhook_id", KeyType::Range)?)
        .send()
        .await
        .map_err(|e| sdk_error("DynamoDB CreateTable", e))?;
    for (table, pk) in [
        (&settings.preview_cache_table, "blueprint_hash"),
        (&settings.idempotency_table, "owner_key"),
    ] {
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(pk)?)
            .key_schema(key(pk, KeyType::Hash)?)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB CreateTable", e))?;
    }
    for table in [
        &settings.jobs_table,
        &settings.preview_cache_table,
        &settings.idempotency_table,
        &settings.webhooks_table,
    ] {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB UpdateTimeToLive", e))?;
    }
    Ok(())
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StageError {
    StageError::internal(format!("DynamoDB request: {e}"))
}
