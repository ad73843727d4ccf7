//! `GET /health`: each dependency's status; 503 when one is down. No auth.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use docpipe_core::{JobFilter, ObjectKey};
use serde::Serialize;
use utoipa::ToSchema;

use crate::envelope::success;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// ok or degraded
    pub status: String,
    /// Each dependency: ok, or the error.
    pub checks: std::collections::BTreeMap<String, String>,
    /// What was checked, for the dependencies that say (e.g. the model a setting names).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub details: std::collections::BTreeMap<String, String>,
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses(
        (status = 200, description = "All dependencies up", body = Health),
        (status = 503, description = "A dependency is down", body = Health)
    )
)]
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let mut checks = std::collections::BTreeMap::new();
    let store = state
        .jobs
        .list(&JobFilter {
            limit: Some(1),
            ..JobFilter::default()
        })
        .await
        .map(|_| ());
    let objects = match ObjectKey::parse("health/probe") {
        Ok(k) => state.objects.size(&k).await.map(|_| ()),
        Err(e) => Err(e),
    };
    let orchestrator = state.orchestrator.health().await;
    let mut ok = true;
    let mut details = std::collections::BTreeMap::new();
    let mut results: Vec<(String, docpipe_core::ports::Result<String>)> = vec![
        ("store".into(), store.map(|_| String::new())),
        ("object_store".into(), objects.map(|_| String::new())),
        ("orchestrator".into(), orchestrator.map(|_| String::new())),
    ];
    if let Some(probe) = &state.health_probe {
        results.extend(probe.check().await);
    }
    for (name, r) in results {
        ok &= r.is_ok();
        match r {
            Ok(detail) => {
                if !detail.is_empty() {
                    details.insert(name.clone(), detail);
                }
                checks.insert(name, "ok".to_owned());
            }
            Err(e) => {
                checks.insert(name, e.code.as_str().to_owned());
            }
        }
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    success(
        Health {
            status: if ok { "ok" } else { "degraded" }.into(),
            checks,
            details,
        },
        status,
    )
}
