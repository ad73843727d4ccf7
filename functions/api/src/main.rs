//! The docpipe HTTP API on AWS Lambda: settings and SDK clients once, then docpipe-api's
//! router (the same one `docpipe serve` runs) under `lambda_http`, over the AWS adapters:
//! DynamoDB jobs, keys and idempotency, S3 objects and presigned uploads, Step Functions.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use docpipe_api::{ApiPorts, ApiSettings, AppState, Presigner, Uploads};
use docpipe_aws::{AwsAdapters, S3ObjectStore, SystemClock};
use docpipe_core::ports::Result;
use docpipe_core::{Clock, ErrorCode, ObjectKey, StageError, StoredImagePages, UploadId};
use docpipe_fetch::HttpFetcher;

/// Upload links are S3 presigned PUTs straight into the documents bucket; the API never
/// sees the bytes (API Gateway and Lambda cap bodies at 10 and 6 MB).
struct S3Uploads {
    objects: S3ObjectStore,
    clock: SystemClock,
}

#[async_trait]
impl Presigner for S3Uploads {
    async fn presign_put(
        &self,
        _upload_id: &UploadId,
        key: &ObjectKey,
        expires_at: DateTime<Utc>,
        _max_bytes: u64,
    ) -> Result<String> {
        // A presigned PUT cannot cap the size; ingest checks it before reading the bytes.
        let ttl = (expires_at - self.clock.now()).to_std().map_err(|_| {
            StageError::new(ErrorCode::ValidationError, "upload link already expired")
        })?;
        let req = docpipe_aws::Presigner::presign_put(&self.objects, key, None, ttl).await?;
        Ok(req.url)
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), lambda_http::Error> {
    let adapters = AwsAdapters::load().await.map_err(|e| e.to_string())?;
    docpipe_functions::init_tracing(&adapters.settings.log);
    let orchestrator = Arc::new(
        adapters
            .orchestrator
            .clone()
            .ok_or("DOCPIPE_STATE_MACHINE_ARN is not set")?,
    );
    let settings = ApiSettings {
        max_document_bytes: adapters.settings.stage.max_document_bytes,
        // CORS is answered by API Gateway (the template's CorsConfiguration).
        cors_origins: Vec::new(),
        upload_ttl: Duration::from_secs(15 * 60),
        review_confidence_threshold: adapters.settings.stage.review_confidence_threshold,
        pricing: docpipe_core::pricing::PricingProfile::aws(&adapters.settings.bedrock_model_id),
        delete_document_when_final: adapters.settings.retention.delete_document_when_final,
        ..ApiSettings::default()
    };
    let state = AppState::new(
        ApiPorts {
            jobs: Arc::new(adapters.jobs.clone()),
            objects: Arc::new(adapters.objects.clone()),
            keys: Arc::new(adapters.keys.clone()),
            idempotency: Arc::new(adapters.idempotency.clone()),
            orchestrator: orchestrator.clone(),
            fetcher: Arc::new(HttpFetcher::default()),
            uploads: Uploads::Presigned(Arc::new(S3Uploads {
                objects: adapters.objects.clone(),
                clock: SystemClock,
            })),
            clock: Arc::new(SystemClock),
            executions: orchestrator,
            pages: Arc::new(StoredImagePages(Arc::new(adapters.objects.clone()))),
        },
        settings,
    )
    .with_health_probe(Arc::new(adapters.health()))
    .with_webhooks(Arc::new(adapters.webhooks.clone()));
    lambda_http::run(docpipe_api::router(state)).await
}
