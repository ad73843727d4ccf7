//! API-key authentication: `x-api-key` or `Authorization: Bearer`. Keys are looked up by
//! their sha256 and compared in constant time; then the key's rate limit applies.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use docpipe_core::ErrorCode;
use docpipe_core::keys::hash_key;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller: the key's name owns the jobs it creates.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_name: String,
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

fn presented_key(req: &Request) -> Option<String> {
    if let Some(v) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(secret) = presented_key(&req).filter(|k| !k.is_empty()) else {
        return unauthorized("an API key is required (x-api-key or Authorization: Bearer)");
    };
    let hash = hash_key(&secret);
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
            Ok(None) => return unauthorized("the API key is not valid"),
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    // The lookup was by hash; compare again in constant time so a store that matches
    // loosely cannot let a different key through.
    if !bool::from(key.key_hash.as_bytes().ct_eq(hash.as_bytes())) || !key.active {
        return unauthorized("the API key is not valid");
    }
    let limit = if key.rate_limit_per_minute == 0 {
        state.settings.default_rate_limit_per_minute
    } else {
        key.rate_limit_per_minute
    };
    if let Err(wait) = state.limiters.check(&key.name, limit) {
        let secs = wait.as_secs_f64().ceil() as u64;
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!("rate limit of {limit} requests per minute exceeded"),
        )
        .retry_after(secs)
        .into_response();
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
    req.extensions_mut().insert(Caller {
        key_name: key.name.clone(),
    });
    next.run(req).await
}
