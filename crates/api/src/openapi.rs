//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::health::Health;
use crate::jobs::{CreateJobRequest, DocumentInput};
use crate::state::UploadLink;
use crate::uploads::CreateUploadRequest;
use crate::views::{JobErrorView, JobListView, JobView, StatusChangeView};

#[derive(OpenApi)]
#[openapi(
    info(title = "docpipe", description = "Verified data from invoices and blueprints. Every response is an envelope: {\"status\": \"success\", \"data\", \"meta\": {\"request_id\"}} or {\"status\": \"error\", \"error\": {\"code\", \"message\", \"details\"}, \"meta\"}."),
    paths(
        crate::jobs::create,
        crate::jobs::list,
        crate::jobs::show,
        crate::jobs::result,
        crate::jobs::cancel,
        crate::review::queue,
        crate::review::decide,
        crate::review::retry,
        crate::executions::list,
        crate::executions::page,
        crate::uploads::create,
        crate::webhooks::create,
        crate::webhooks::list,
        crate::webhooks::delete,
        crate::webhooks::failures,
        crate::webhooks::replay,
        crate::health::health,
        crate::console::statemachine,
    ),
    components(schemas(
        CreateJobRequest, DocumentInput, CreateUploadRequest, UploadLink, JobView, JobListView,
        JobErrorView, StatusChangeView, Health, crate::review::ReviewQueue,
        crate::review::QueuedReview, crate::review::ReviewRequest,
        crate::console::StateMachineView, crate::webhooks::CreateWebhookRequest,
        crate::webhooks::WebhookView, crate::webhooks::FailureView,
    )),
    modifiers(&Security),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
