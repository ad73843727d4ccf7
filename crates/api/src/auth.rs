//! API-key authentication: `x-api-key` or `Authorization: Bearer`. Keys are looked up by
//! their sha256 and compared in constant time; then the key's rate limit applies.
//!
//! It is an extractor, [`Caller`], first among every protected handler's arguments, so
//! it runs before any other extractor reads the request (an unauthenticated body is
//! refused with 401 before it is parsed), at the cost of no middleware layer.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use docpipe_core::ErrorCode;
use docpipe_core::keys::hash_key;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller: the key's name owns the jobs it creates.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub key_name: String,
    /// The key asks that its jobs' documents be deleted once the jobs are final.
    pub delete_document_when_final: bool,
}

fn unauthorized(msg: &str) -> Response {
    let mut r =
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, msg).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    r
}

fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await.map(|key| Caller {
            key_name: key.name.clone(),
            delete_document_when_final: key.delete_document_when_final,
        })
    }
}

/// The key the request presents, once it is valid and within its limit.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
) -> Result<std::sync::Arc<docpipe_core::ApiKey>, Response> {
    let Some(secret) = presented_key(parts).filter(|k| !k.is_empty()) else {
        return Err(unauthorized(
            "an API key is required (x-api-key or Authorization: Bearer)",
        ));
    };
    let hash = hash_key(secret);
    // Read before the key, so a kept key is never newer than its token (see `kept`).
    let token = state.keys.change_token();
    let key = match state.kept_keys.get(token, hash.as_str()) {
        Some(k) => k,
        None => match state.keys.find_by_hash(&hash).await {
            Ok(Some(k)) => {
                let k = std::sync::Arc::new(k);
                state
                    .kept_keys
                    .put(token, hash.clone(), std::sync::Arc::clone(&k));
                k
            }
            // Unknown keys are not kept: whatever a caller invents must not fill memory.
            Ok(None) => return Err(unauthorized("the API key is not valid")),
            Err(e) => return Err(ApiError::from(e).into_response()),
        },
    };
    // The lookup was by hash; compare again in constant time so a store that matches
    // loosely cannot let a different key through.
    if !bool::from(key.key_hash.as_bytes().ct_eq(hash.as_bytes())) || !key.active {
        return Err(unauthorized("the API key is not valid"));
    }
    let limit = if key.rate_limit_per_minute == 0 {
        state.settings.default_rate_limit_per_minute
    } else {
        key.rate_limit_per_minute
    };
    if let Err(wait) = state.limiters.check(&key.name, limit) {
        let secs = wait.as_secs_f64().ceil() as u64;
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!("rate limit of {limit} requests per minute exceeded"),
        )
        .retry_after(secs)
        .into_response());
    }
    if let Some(batch) = state.usage.note(&key.name, state.clock.now()) {
        let keys = state.keys.clone();
        tokio::spawn(async move {
            for (name, count, at) in batch {
                if let Err(e) = keys.record_use(&name, count, at).await {
                    tracing::warn!(error = %e, "recording key usage");
                }
            }
        });
    }
    Ok(key)
}
