//! Webhook subscriptions per key: create (the secret is shown once), list, delete, the
//! failure list and its replay. Delivery itself is the host's (`docpipe-core::webhooks`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use docpipe_core::ErrorCode;
use docpipe_core::events::{EVENT_TYPES, JOB_STATUS_V1};
use docpipe_core::webhooks::{Delivery, Webhook, WebhookSecret, WebhookStore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::envelope::success;
use crate::error::ApiError;
use crate::jobs::read_body;
use crate::state::AppState;

/// Webhooks per key.
const MAX_WEBHOOKS: usize = 20;
/// The longest receiver URL.
const MAX_URL: usize = 2048;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWebhookRequest {
    /// Where events are POSTed (http or https, a public address).
    pub url: String,
    /// Event types to receive; default `["job.status.v1"]`.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
}

/// A webhook as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookView {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookView {
    fn of(w: &Webhook, with_secret: bool) -> Self {
        Self {
            id: w.id.clone(),
            url: w.url.clone(),
            event_types: w.event_types.clone(),
            created_at: w.created_at,
            secret: with_secret.then(|| w.secret.as_str().to_owned()),
        }
    }
}

/// A delivery that failed for good.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FailureView {
    /// The `webhook-id` it was sent with (the event's id).
    pub id: String,
    pub event_type: String,
    pub job_id: String,
    pub attempts: u32,
    pub queued_at: DateTime<Utc>,
    pub last_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The event, as it was sent.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

impl FailureView {
    fn of(d: Delivery) -> Self {
        Self {
            event: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::Null),
            id: d.id,
            event_type: d.event_type,
            job_id: d.job_id,
            attempts: d.attempts,
            queued_at: d.created_at,
            last_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
        }
    }
}

fn store(state: &AppState) -> Result<Arc<dyn WebhookStore>, ApiError> {
    state.webhooks.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "this host has no webhooks",
        )
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Created; the secret (whsec_...) is shown this once", body = WebhookView),
        (status = 422, description = "URL_NOT_ALLOWED: not http(s) or not a public address"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let bytes = read_body(body, 16 * 1024).await?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let req: CreateWebhookRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::validation(
            format!("invalid request: {}", e.inner()),
            (path != ".").then_some(path.as_str()),
        )
    })?;
    if req.url.len() > MAX_URL {
        return Err(ApiError::validation("the URL is too long", Some("url")));
    }
    let event_types = req
        .event_types
        .unwrap_or_else(|| vec![JOB_STATUS_V1.to_owned()]);
    if event_types.is_empty() {
        return Err(ApiError::validation(
            "name at least one event type",
            Some("event_types"),
        ));
    }
    if let Some(bad) = event_types
        .iter()
        .find(|t| !EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(ApiError::validation(
            format!(
                "unknown event type {bad:?}; known: {}",
                EVENT_TYPES.join(", ")
            ),
            Some("event_types"),
        ));
    }
    // The same guard as URL ingest, now and again on every delivery.
    state.fetcher.check(&req.url).await?;
    if store.list_webhooks(&caller.key_name).await?.len() >= MAX_WEBHOOKS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::ValidationError,
            format!("a key has at most {MAX_WEBHOOKS} webhooks"),
        ));
    }
    let webhook = Webhook {
        id: Webhook::new_id()?,
        owner: caller.key_name,
        url: req.url,
        event_types,
        secret: WebhookSecret::generate()?,
        created_at: state.clock.now(),
    };
    store.create_webhook(&webhook).await?;
    Ok(success(
        WebhookView::of(&webhook, true),
        StatusCode::CREATED,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses((status = 200, description = "The key's webhooks, without secrets")),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let hooks = store(&state)?.list_webhooks(&caller.key_name).await?;
    let views: Vec<WebhookView> = hooks.iter().map(|w| WebhookView::of(w, false)).collect();
    Ok(success(json!({ "webhooks": views }), StatusCode::OK))
}

#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = String, Path)),
    responses((status = 200, description = "Deleted, with its pending deliveries"), (status = 404)),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Webhook::check_id(&id)?;
    store(&state)?.delete_webhook(&caller.key_name, &id).await?;
    Ok(success(
        json!({ "id": id, "deleted": true }),
        StatusCode::OK,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook_id}/failures",
    tag = "webhooks",
    params(("webhook_id" = String, Path)),
    responses((status = 200, description = "Deliveries that failed for a day, oldest first"), (status = 404)),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn failures(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Webhook::check_id(&id)?;
    let failed = store(&state)?.failures(&caller.key_name, &id, 500).await?;
    let views: Vec<FailureView> = failed.into_iter().map(FailureView::of).collect();
    Ok(success(json!({ "failures": views }), StatusCode::OK))
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhook_id}/replay",
    tag = "webhooks",
    params(("webhook_id" = String, Path)),
    responses((status = 202, description = "The failures are queued again, each with a new day of retries"), (status = 404)),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Webhook::check_id(&id)?;
    let now = state.clock.now();
    let n = store(&state)?.replay(&caller.key_name, &id, now).await?;
    Ok(success(
        json!({ "id": id, "replayed": n }),
        StatusCode::ACCEPTED,
    ))
}
