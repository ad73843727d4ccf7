//! Presigned uploads for documents too large for a request body (API Gateway caps bodies at
//! 10 MB, Lambda at 6 MB). `POST /api/v1/uploads` returns a URL to PUT the document to (S3
//! on AWS; locally a signed, expiring URL to this server), then `POST /api/v1/jobs` with
//! `{"upload_id"}` creates the job.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use docpipe_core::ports::Result;
use docpipe_core::{ErrorCode, ObjectKey, StageError, UploadId};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::envelope::success;
use crate::error::ApiError;
use crate::state::{AppState, Presigner, UploadLink};

/// Stored beside an upload: who may use it and until when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UploadMeta {
    pub owner: String,
    pub filename: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// Where an upload's metadata is stored.
pub(crate) fn upload_meta_key(upload_id: &UploadId) -> ObjectKey {
    ObjectKey::for_upload(upload_id, "meta.json")
}

/// Where an upload's document is stored.
pub(crate) fn upload_document_key(upload_id: &UploadId) -> ObjectKey {
    ObjectKey::for_upload(upload_id, "document")
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUploadRequest {
    /// The document's name, used for the job.
    pub filename: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    tag = "uploads",
    request_body(content = Option<CreateUploadRequest>, description = "Optional filename"),
    responses(
        (status = 201, description = "Where to PUT the document (up to 50 MiB) and until when", body = UploadLink),
        (status = 401, description = "Missing or invalid API key")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> std::result::Result<Response, ApiError> {
    let req: CreateUploadRequest = if body.is_empty() {
        CreateUploadRequest::default()
    } else {
        let de = &mut serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ApiError::validation(
                format!("invalid JSON body: {}", e.into_inner()),
                Some(&path),
            )
        })?
    };
    let upload_id = UploadId::generate()?;
    let expires_at = state.clock.now()
        + chrono::Duration::from_std(state.settings.upload_ttl)
            .unwrap_or_else(|_| chrono::Duration::minutes(15));
    let meta = UploadMeta {
        owner: caller.key_name.clone(),
        filename: req.filename,
        expires_at,
    };
    let meta_bytes =
        serde_json::to_vec(&meta).map_err(|e| StageError::internal(format!("upload meta: {e}")))?;
    state
        .objects
        .put(&upload_meta_key(&upload_id), meta_bytes)
        .await?;
    let max = state.settings.max_document_bytes;
    let url = state
        .presigner
        .presign_put(
            &upload_id,
            &upload_document_key(&upload_id),
            expires_at,
            max,
        )
        .await?;
    let link = UploadLink {
        upload_id,
        url,
        method: "PUT".into(),
        expires_at,
        max_bytes: max,
    };
    Ok(success(link, StatusCode::CREATED))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignedQuery {
    pub expires: i64,
    pub signature: String,
}

/// The receiving end of a local presigned URL.
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(upload_id): Path<String>,
    query: std::result::Result<Query<SignedQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> std::result::Result<Response, ApiError> {
    let denied = |m: &str| ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Unauthorized, m);
    let Query(q) = query.map_err(|_| denied("the upload URL is not signed"))?;
    let Some(secret) = &state.upload_secret else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "uploads go to the URL returned by POST /api/v1/uploads",
        ));
    };
    let upload_id = UploadId::parse(&upload_id)
        .map_err(|_| denied("the upload URL's signature is not valid"))?;
    if !verify_local_signature(secret, &upload_id, q.expires, &q.signature) {
        return Err(denied("the upload URL's signature is not valid"));
    }
    if state.clock.now().timestamp() > q.expires {
        return Err(denied("the upload URL has expired"));
    }
    let max = state.settings.max_document_bytes as usize;
    let _intake = state.intake().await?;
    let bytes = crate::jobs::read_body(body, max).await?;
    let size = bytes.len() as u64;
    state
        .objects
        .put(&upload_document_key(&upload_id), bytes.to_vec())
        .await?;
    Ok(success(
        serde_json::json!({ "upload_id": upload_id, "size_bytes": size }),
        StatusCode::OK,
    ))
}

fn sign(secret: &[u8], upload_id: &UploadId, expires: i64) -> String {
    // HMAC accepts keys of any length; the error case cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(upload_id.as_str().as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a local upload URL's signature in constant time.
pub fn verify_local_signature(
    secret: &[u8],
    upload_id: &UploadId,
    expires: i64,
    signature: &str,
) -> bool {
    let expected = sign(secret, upload_id, expires);
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
}

/// Signs URLs to this server's `PUT /api/v1/uploads/{upload_id}`.
#[derive(Clone)]
pub struct LocalPresigner {
    base_url: String,
    secret: Arc<[u8]>,
}

impl LocalPresigner {
    /// `base_url` is how clients reach the server, e.g. `http://127.0.0.1:8080`.
    pub fn new(base_url: impl Into<String>, secret: Arc<[u8]>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            secret,
        }
    }

    /// The secret it signs with, which the receiving end checks.
    pub(crate) fn secret(&self) -> Arc<[u8]> {
        Arc::clone(&self.secret)
    }
}

#[async_trait]
impl Presigner for LocalPresigner {
    async fn presign_put(
        &self,
        upload_id: &UploadId,
        _key: &ObjectKey,
        expires_at: DateTime<Utc>,
        _max_bytes: u64,
    ) -> Result<String> {
        let expires = expires_at.timestamp();
        Ok(format!(
            "{}/api/v1/uploads/{upload_id}?expires={expires}&signature={}",
            self.base_url,
            sign(&self.secret, upload_id, expires)
        ))
    }
}
