//! `GET /health` on AWS: every table the API uses answers a read, both buckets answer
//! HeadBucket, the signing secrets the settings name can be read (through the 5-minute
//! cache; their values are never shown), and the Textract and Bedrock settings are named
//! (neither service has a free call to probe). The state machine is checked by the orchestrator (DescribeStateMachine).
//! Each call is one the API's role grants (see [`crate::permissions`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use docpipe_core::ports::Result;
use docpipe_core::{ErrorCode, HealthProbe, StageError};

use crate::config::AwsSettings;
use crate::error::sdk_error;
use crate::params::SecretCache;

/// The deployment's dependencies, checked with the API role's own permissions.
#[derive(Clone)]
pub struct AwsHealth {
    dynamodb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    /// (check name, table, its partition key attribute).
    tables: Vec<(String, String, &'static str)>,
    buckets: Vec<(String, String)>,
    /// (check name, secret id) for the secrets the settings name.
    secret_ids: Vec<(String, String)>,
    secrets: Arc<SecretCache>,
    model_id: String,
    region: Option<String>,
}

impl AwsHealth {
    pub fn new(
        settings: &AwsSettings,
        dynamodb: aws_sdk_dynamodb::Client,
        s3: aws_sdk_s3::Client,
        secrets: Arc<SecretCache>,
        region: Option<String>,
    ) -> Self {
        Self {
            dynamodb,
            s3,
            tables: vec![
                ("jobs_table".into(), settings.jobs_table.clone(), "job_id"),
                (
                    "api_keys_table".into(),
                    settings.api_keys_table.clone(),
                    "name",
                ),
                (
                    "idempotency_table".into(),
                    settings.idempotency_table.clone(),
                    "owner_key",
                ),
                (
                    "preview_cache_table".into(),
                    settings.preview_cache_table.clone(),
                    "blueprint_hash",
                ),
            ],
            buckets: vec![
                ("documents_bucket".into(), settings.documents_bucket.clone()),
                ("results_bucket".into(), settings.results_bucket.clone()),
            ],
            secret_ids: [
                ("upload_signing_secret", &settings.upload_signing_secret),
                ("webhook_secret", &settings.webhook_secret),
            ]
            .into_iter()
            .filter_map(|(name, id)| id.clone().map(|id| (name.to_owned(), id)))
            .collect(),
            secrets,
            model_id: settings.bedrock_model_id.clone(),
            region,
        }
    }

    async fn table(&self, table: &str, key: &str) -> Result<String> {
        // A key no item has: the read proves the table exists and the role may read it.
        self.dynamodb
            .get_item()
            .table_name(table)
            .set_key(Some(HashMap::from([(
                key.to_owned(),
                AttributeValue::S("health-probe".into()),
            )])))
            .projection_expression("#k")
            .expression_attribute_names("#k", key)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDB GetItem (health)", e))?;
        Ok(table.to_owned())
    }

    async fn bucket(&self, bucket: &str) -> Result<String> {
        self.s3
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| sdk_error("S3 HeadBucket (health)", e))?;
        Ok(bucket.to_owned())
    }

    async fn secret(&self, id: &str) -> Result<String> {
        let value = self.secrets.get(id).await?;
        if value.is_empty() {
            return Err(StageError::new(
                ErrorCode::ValidationError,
                format!("secret {id} is empty"),
            ));
        }
        Ok("readable".to_owned())
    }

    fn bedrock(&self) -> Result<String> {
        if self.model_id.trim().is_empty() {
            return Err(StageError::new(
                ErrorCode::ValidationError,
                "bedrock_model_id is empty",
            ));
        }
        let priced = docpipe_core::pricing::PriceTable::builtin()
            .model(&self.model_id)
            .is_some();
        Ok(format!(
            "model {}{}",
            self.model_id,
            if priced {
                ""
            } else {
                " (not in the price table: its tokens are not priced)"
            }
        ))
    }

    fn textract(&self) -> Result<String> {
        match &self.region {
            Some(r) => Ok(format!("DetectDocumentText in {r}")),
            None => Err(StageError::new(
                ErrorCode::ValidationError,
                "no AWS region configured for Textract",
            )),
        }
    }
}

#[async_trait]
impl HealthProbe for AwsHealth {
    async fn check(&self) -> Vec<(String, Result<String>)> {
        let mut out = Vec::new();
        for (name, table, key) in &self.tables {
            out.push((name.clone(), self.table(table, key).await));
        }
        for (name, bucket) in &self.buckets {
            out.push((name.clone(), self.bucket(bucket).await));
        }
        for (name, id) in &self.secret_ids {
            out.push((name.clone(), self.secret(id).await));
        }
        out.push(("bedrock".into(), self.bedrock()));
        out.push(("textract".into(), self.textract()));
        out
    }
}
