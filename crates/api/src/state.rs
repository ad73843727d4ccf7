//! What the router needs: the ports, the presigner and the settings.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use docpipe_core::execution::ExecutionLog;
use docpipe_core::ports::Result;
use docpipe_core::webhooks::WebhookStore;
use docpipe_core::{
    ApiKey, Clock, Fetcher, IdempotencyStore, JobStore, KeyStore, ObjectKey, ObjectStore,
    Orchestrator, PageImages, UploadId,
};
use serde::Serialize;

use crate::kept::Kept;
use crate::rate::{RateLimiters, UsageCounter};
use crate::uploads::LocalPresigner;

/// Settings of the API (part of the host's settings).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest document, in bytes (50 MiB).
    pub max_document_bytes: u64,
    /// Requests per minute for keys that do not set their own.
    pub default_rate_limit_per_minute: u32,
    /// Origins allowed by CORS; `*` for any; empty for none.
    pub cors_origins: Vec<String>,
    /// Lifetime of a presigned upload URL.
    pub upload_ttl: Duration,
    /// The longest wait for the next piece of a request body (then 408).
    pub body_timeout: Duration,
    /// Document bodies read into memory at once (job creations and uploads); more wait
    /// their turn unread, so memory stays bounded however many clients send at once.
    pub max_concurrent_intake: usize,
    /// The verify stage's confidence threshold, applied again to reviewers' corrections.
    pub review_confidence_threshold: f32,
    /// How jobs are priced in dollars (`cost_usd` of the job views): the host and model.
    pub pricing: docpipe_core::pricing::PricingProfile,
    /// Every job created here drops its uploaded document once final (keys can ask
    /// for it on their own: [`docpipe_core::ApiKey::delete_document_when_final`]).
    pub delete_document_when_final: bool,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_document_bytes: 50 * 1024 * 1024,
            default_rate_limit_per_minute: 60,
            cors_origins: Vec::new(),
            upload_ttl: Duration::from_secs(15 * 60),
            body_timeout: Duration::from_secs(30),
            max_concurrent_intake: 8,
            review_confidence_threshold: docpipe_core::ports::StageSettings::default()
                .review_confidence_threshold,
            pricing: docpipe_core::pricing::PricingProfile::local(None),
            delete_document_when_final: false,
        }
    }
}

impl ApiSettings {
    /// The largest request body: a document in base64 inside JSON, with room for the rest.
    pub fn max_request_bytes(&self) -> usize {
        (self.max_document_bytes as usize / 3 + 1) * 4 + 64 * 1024
    }
}

/// A presigned upload: where to PUT the document and until when.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UploadLink {
    #[schema(value_type = String)]
    pub upload_id: UploadId,
    pub url: String,
    pub method: String,
    pub expires_at: DateTime<Utc>,
    pub max_bytes: u64,
}

/// Makes upload URLs: S3 presigned PUTs on AWS, signed expiring URLs to this server
/// locally.
#[async_trait]
pub trait Presigner: Send + Sync {
    async fn presign_put(
        &self,
        upload_id: &UploadId,
        key: &ObjectKey,
        expires_at: DateTime<Utc>,
        max_bytes: u64,
    ) -> Result<String>;
}

/// Everything the handlers use, shared: cloning it (once per request and layer) is one
/// reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an [`AppState`] holds.
pub struct Shared {
    pub jobs: Arc<dyn JobStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub keys: Arc<dyn KeyStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub orchestrator: Arc<dyn Orchestrator>,
    pub fetcher: Arc<dyn Fetcher>,
    pub(crate) presigner: Arc<dyn Presigner>,
    pub clock: Arc<dyn Clock>,
    pub executions: Arc<dyn ExecutionLog>,
    pub pages: Arc<dyn PageImages>,
    /// Webhook subscriptions; `None` where the host has none (the routes answer 404).
    pub webhooks: Option<Arc<dyn WebhookStore>>,
    pub settings: ApiSettings,
    /// What `GET /health` checks besides the ports (see [`AppState::with_health_probe`]).
    pub health_probe: Option<Arc<dyn docpipe_core::HealthProbe>>,
    /// The secret that signs local upload URLs (`docpipe serve`); `None` on AWS.
    pub(crate) upload_secret: Option<Arc<[u8]>>,
    pub(crate) limiters: Arc<RateLimiters>,
    pub(crate) usage: Arc<UsageCounter>,
    /// Keys by hash, while the key store is unchanged (see [`Kept`]).
    pub(crate) kept_keys: Kept<String, Arc<ApiKey>>,
    /// Serialised job views (with the owner) by job id, while the job store is unchanged.
    pub(crate) kept_views: Kept<String, KeptView>,
    /// Permits to read a document body (see [`ApiSettings::max_concurrent_intake`]).
    pub(crate) intake: tokio::sync::Semaphore,
}

impl Shared {
    /// Waits for a turn to read a document body into memory.
    pub(crate) async fn intake(
        &self,
    ) -> std::result::Result<tokio::sync::SemaphorePermit<'_>, crate::ApiError> {
        self.intake.acquire().await.map_err(|_| {
            docpipe_core::StageError::unavailable("the server is shutting down").into()
        })
    }
}

/// A job's view as `GET /api/v1/jobs/{id}` serialises it, and who owns the job.
#[derive(Clone)]
pub(crate) struct KeptView {
    pub owner: Option<String>,
    pub data: axum::body::Bytes,
}

/// The ports the API talks through, wired once per host: `docpipe serve` over the
/// embedded host's adapters, the API Lambda over the AWS ones, tests over either.
pub struct ApiPorts {
    pub jobs: Arc<dyn JobStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub keys: Arc<dyn KeyStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub orchestrator: Arc<dyn Orchestrator>,
    pub fetcher: Arc<dyn Fetcher>,
    pub uploads: Uploads,
    pub clock: Arc<dyn Clock>,
    /// Where the executions of a job are recorded (the console's execution pages).
    pub executions: Arc<dyn ExecutionLog>,
    /// Document pages as images (the review page).
    pub pages: Arc<dyn PageImages>,
}

/// Where presigned uploads go.
pub enum Uploads {
    /// To an object store the API never sees (S3 presigned PUTs).
    Presigned(Arc<dyn Presigner>),
    /// To this server's `PUT /api/v1/uploads/{upload_id}`, which checks the signature.
    Local(LocalPresigner),
}

impl AppState {
    pub fn new(ports: ApiPorts, settings: ApiSettings) -> Self {
        let ApiPorts {
            jobs,
            objects,
            keys,
            idempotency,
            orchestrator,
            fetcher,
            uploads,
            clock,
            executions,
            pages,
        } = ports;
        let (presigner, upload_secret): (Arc<dyn Presigner>, _) = match uploads {
            Uploads::Presigned(presigner) => (presigner, None),
            Uploads::Local(local) => {
                let secret = local.secret();
                (Arc::new(local), Some(secret))
            }
        };
        let settings_intake = settings.max_concurrent_intake.max(1);
        Self(Arc::new(Shared {
            jobs,
            objects,
            keys,
            idempotency,
            orchestrator,
            fetcher,
            presigner,
            clock,
            executions,
            pages,
            webhooks: None,
            settings,
            health_probe: None,
            upload_secret,
            limiters: Arc::new(RateLimiters::default()),
            usage: Arc::new(UsageCounter::default()),
            kept_keys: Kept::new(1024),
            kept_views: Kept::new(4096),
            intake: tokio::sync::Semaphore::new(settings_intake),
        }))
    }

    /// Adds host-specific dependencies to `GET /health`. Call it on the state `new` made,
    /// before it is shared (a shared state is returned unchanged, with a warning).
    pub fn with_health_probe(mut self, probe: Arc<dyn docpipe_core::HealthProbe>) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(shared) => shared.health_probe = Some(probe),
            None => tracing::warn!("health probe not added: the state is already shared"),
        }
        self
    }
}

impl AppState {
    /// The same state with webhook subscriptions served from `store`. Call it on a fresh
    /// state, before it is shared (a shared one is returned unchanged).
    pub fn with_webhooks(mut self, store: Arc<dyn WebhookStore>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.0) {
            shared.webhooks = Some(store);
        } else {
            tracing::warn!("webhooks added to a state already shared; not served");
        }
        self
    }
}
