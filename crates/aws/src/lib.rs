//! docpipe-aws: the AWS adapters of docpipe's ports (DynamoDB job store, S3 object store,
//! Textract OCR, Bedrock extractor), the Step Functions orchestrator, settings from
//! Parameter Store and secrets from Secrets Manager, status events to EventBridge, the
//! intake starter, the execution reconciler and webhook delivery from SQS, all over one
//! shared `SdkConfig`.

pub mod adapters;
pub mod api_keys;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod intake;
pub mod jobs;
pub mod permissions;
pub mod preview_cache;
pub mod reconcile;
pub mod schema;
pub mod sqs;
pub mod webhooks;

pub use adapters::{AwsAdapters, SettingsSource};
pub use api_keys::DynamoKeyStore;
pub use clock::SystemClock;
pub use config::{AwsSettings, SettingsError};
pub use health::AwsHealth;
pub use idempotency::DynamoIdempotencyStore;
pub use jobs::DynamoJobStore;
pub use preview_cache::PreviewCache;
pub mod bedrock;
pub mod params;
pub mod s3;
pub mod sfn;
pub mod textract;

pub use bedrock::{BedrockExtractor, TokenUsage};
pub use params::{ParameterStore, SecretCache};
pub use s3::{PresignedRequest, Presigner, S3ObjectStore};
pub use sfn::{ExecutionInfo, SfnOrchestrator, Started};
pub use textract::TextractOcr;
