//! Every AWS adapter, built once from one [`SdkConfig`]: what a Lambda's `main` makes at
//! cold start and keeps for every invocation.

use std::sync::Arc;

use aws_config::SdkConfig;
use docpipe_core::ports::Result;
use docpipe_core::ports::StageSettings;
use docpipe_core::{Clock, ErrorCode, StageError};
use docpipe_core::{Fetcher, Ports};

use crate::api_keys::DynamoKeyStore;
use crate::bedrock::BedrockExtractor;
use crate::clock::SystemClock;
use crate::config::AwsSettings;
use crate::events::EventBridgePublisher;
use crate::idempotency::DynamoIdempotencyStore;
use crate::jobs::DynamoJobStore;
use crate::params::{ParameterStore, SecretCache};
use crate::preview_cache::PreviewCache;
use crate::s3::S3ObjectStore;
use crate::sfn::SfnOrchestrator;
use crate::textract::{Staging, TextractOcr};
use crate::webhooks::DynamoWebhookStore;

pub use crate::params::PARAMETER_TTL;

/// The deployed settings as of now: defaults, then Parameter Store (read again once the
/// cached parameters are older than [`PARAMETER_TTL`]), then the `DOCPIPE_*` variables
/// the function started with (they take precedence).
pub struct SettingsSource {
    env: String,
    params: ParameterStore,
    vars: Vec<(String, String)>,
}

impl SettingsSource {
    /// `vars` are the process's `DOCPIPE_*` variables (name without the prefix, lowercase).
    pub fn new(
        first: &AwsSettings,
        ssm: aws_sdk_ssm::Client,
        clock: Arc<dyn Clock>,
        vars: Vec<(String, String)>,
    ) -> Self {
        Self {
            env: first.env.clone(),
            params: ParameterStore::new(ssm, first.parameter_prefix.clone(), PARAMETER_TTL, clock),
            vars,
        }
    }

    /// The settings now (Parameter Store read only when its cache has expired).
    pub async fn current(&self) -> Result<AwsSettings> {
        let mut settings = AwsSettings::for_env(&self.env);
        self.params.apply(&mut settings).await?;
        for (name, value) in &self.vars {
            settings
                .set(name, value)
                .map_err(|e| StageError::new(ErrorCode::ValidationError, e.to_string()))?;
        }
        Ok(settings)
    }
}

/// The process's `DOCPIPE_*` variables, as setting names.
fn docpipe_vars() -> Vec<(String, String)> {
    std::env::vars()
        .filter_map(|(name, value)| {
            name.strip_prefix("DOCPIPE_")
                .map(|n| (n.to_ascii_lowercase(), value))
        })
        .collect()
}

/// The adapters of one deployment.
#[derive(Clone)]
pub struct AwsAdapters {
    pub settings: AwsSettings,
    pub sdk: SdkConfig,
    pub jobs: DynamoJobStore,
    pub keys: DynamoKeyStore,
    pub idempotency: DynamoIdempotencyStore,
    /// The dedupe cache (`preview_cache` table).
    pub results: PreviewCache,
    pub objects: S3ObjectStore,
    pub ocr: TextractOcr,
    pub extractor: BedrockExtractor,
    /// `None` unless the settings name a state machine (only the API starts executions).
    pub orchestrator: Option<SfnOrchestrator>,
    pub secrets: Arc<SecretCache>,
    /// `None` unless the settings name an event bus (only the event publisher puts events).
    pub events: Option<EventBridgePublisher>,
    pub webhooks: DynamoWebhookStore,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsAdapters {
    /// Loads the settings the deployed way: environment, then Parameter Store under the
    /// prefix, then the environment again (variables take precedence), then builds every
    /// client from one shared SDK configuration.
    pub async fn load() -> Result<Self> {
        Ok(Self::load_with_source().await?.0)
    }

    /// As [`AwsAdapters::load`], with the source to read the settings again from (a warm
    /// function rebuilds its adapters when they changed).
    pub async fn load_with_source() -> Result<(Self, SettingsSource)> {
        let first = AwsSettings::from_env()
            .map_err(|e| StageError::new(ErrorCode::ValidationError, e.to_string()))?;
        let sdk = first.sdk_config().await;
        let source = SettingsSource::new(
            &first,
            aws_sdk_ssm::Client::new(&sdk),
            Arc::new(SystemClock),
            docpipe_vars(),
        );
        let settings = source.current().await?;
        Ok((Self::new(settings, sdk), source))
    }

    /// Builds every adapter over `sdk` (an emulator's in tests).
    pub fn new(settings: AwsSettings, sdk: SdkConfig) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        // Emulators serve every bucket on one host: path-style addressing.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(settings.endpoint_url.is_some() || sdk.endpoint_url().is_some())
                .build(),
        );
        // Derived JSON is far smaller than the document it came from; twice the document
        // limit is a generous cap for every object the stages read.
        let objects = S3ObjectStore::new(
            s3.clone(),
            &settings.documents_bucket,
            &settings.results_bucket,
            settings.stage.max_document_bytes.saturating_mul(2),
        );
        let ocr = TextractOcr::new(
            aws_sdk_textract::Client::new(&sdk),
            Some(Staging {
                s3: s3.clone(),
                bucket: settings.documents_bucket.clone(),
            }),
            Arc::new(SystemClock),
            settings.textract_poll,
        );
        let extractor = BedrockExtractor::new(
            aws_sdk_bedrockruntime::Client::new(&sdk),
            &settings.bedrock_model_id,
            settings.bedrock_max_tokens,
        );
        let orchestrator = settings
            .state_machine_arn
            .as_ref()
            .map(|arn| SfnOrchestrator::new(aws_sdk_sfn::Client::new(&sdk), arn));
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let mut webhooks = DynamoWebhookStore::with_retention(
            dynamodb.clone(),
            &settings.webhooks_table,
            &settings.retention,
        );
        if let Some(url) = &settings.webhook_queue_url {
            webhooks = webhooks.with_replay_queue(crate::sqs::Queue::new(sqs.clone(), url));
        }
        let events = settings
            .event_bus
            .as_ref()
            .map(|bus| EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), bus));
        Self {
            jobs: DynamoJobStore::with_retention(
                dynamodb.clone(),
                &settings.jobs_table,
                &settings.retention,
            ),
            keys: DynamoKeyStore::new(dynamodb.clone(), &settings.api_keys_table),
            idempotency: DynamoIdempotencyStore::with_retention(
                dynamodb.clone(),
                &settings.idempotency_table,
                &settings.retention,
            ),
            webhooks,
            events,
            sqs,
            results: PreviewCache::new(dynamodb.clone(), &settings.preview_cache_table),
            objects,
            ocr,
            extractor,
            orchestrator,
            secrets: Arc::new(SecretCache::new(
                aws_sdk_secretsmanager::Client::new(&sdk),
                Arc::new(SystemClock),
            )),
            dynamodb,
            s3,
            settings,
            sdk,
        }
    }

    /// What `GET /health` checks besides the ports: tables, buckets, model and region.
    pub fn health(&self) -> crate::health::AwsHealth {
        crate::health::AwsHealth::new(
            &self.settings,
            self.dynamodb.clone(),
            self.s3.clone(),
            self.secrets.clone(),
            self.sdk.region().map(ToString::to_string),
        )
    }

    /// The core's ports over these adapters; `fetcher` reads documents from URLs (the
    /// SSRF-safe one of docpipe-local in the functions).
    pub fn ports(&self, fetcher: Arc<dyn Fetcher>) -> Ports {
        Ports {
            jobs: Arc::new(self.jobs.clone()),
            objects: Arc::new(self.objects.clone()),
            ocr: Arc::new(self.ocr.clone()),
            extractor: Arc::new(self.extractor.clone()),
            fetcher,
            clock: Arc::new(SystemClock),
            settings: StageSettings {
                // What besides the bytes shapes a result here: a deployment with another
                // model or threshold (or build) never reuses this one's results.
                dedupe_profile: format!(
                    "docpipe {} aws; model={}; review<{}",
                    env!("CARGO_PKG_VERSION"),
                    self.settings.bedrock_model_id,
                    self.settings.stage.review_confidence_threshold
                ),
                ..self.settings.stage.clone()
            },
            results: Some(Arc::new(self.results.clone())),
        }
    }
}
