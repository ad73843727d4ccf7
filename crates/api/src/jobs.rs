//! `/api/v1/jobs`: create (JSON base64, multipart, URL, presigned upload), read, result,
//! cancel, list.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use base64::Engine;
use docpipe_core::detect::detect_media_type;
use docpipe_core::ids::sanitize_filename;
use docpipe_core::lifecycle::{self, JobSubmission, NewDocument, Start, SubmitError, Submitted};
use docpipe_core::{
    DocumentKind, ErrorCode, IdempotencyRecord, Job, JobFilter, JobId, JobPatch, JobStatus,
    ObjectKey, StageError, UploadId,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::envelope::{RequestId, data_bytes, success, success_bytes};
use crate::error::ApiError;
use crate::state::{AppState, KeptView};
use crate::uploads::{UploadMeta, upload_document_key, upload_meta_key};
use crate::views::{JobListView, JobView};

/// `POST /api/v1/jobs` with a JSON body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateJobRequest {
    /// The document, inline or by URL. Absent when `upload_id` is given.
    pub document: Option<DocumentInput>,
    /// A presigned upload's id (`POST /api/v1/uploads`).
    pub upload_id: Option<String>,
    /// invoice (default) or blueprint, when `document` does not say.
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentInput {
    /// The document's bytes, base64 (standard alphabet).
    pub content_base64: Option<String>,
    /// An http(s) URL that ingest fetches.
    pub url: Option<String>,
    pub filename: Option<String>,
    /// invoice (default) or blueprint.
    pub kind: Option<String>,
}

/// The document of a creation, once parsed and checked.
enum Source {
    Bytes(Vec<u8>),
    Url(String),
    Upload(String),
}

struct NewJob {
    source: Source,
    filename: String,
    kind: DocumentKind,
}

fn parse_kind(kind: Option<&str>, field: &str) -> Result<DocumentKind, ApiError> {
    match kind {
        None => Ok(DocumentKind::Invoice),
        Some(k) => DocumentKind::parse(k).ok_or_else(|| {
            ApiError::validation(
                format!("unknown kind {k:?}: expected invoice or blueprint"),
                Some(field),
            )
        }),
    }
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let field = (path != ".").then_some(path.as_str());
    ApiError::validation(format!("invalid JSON body: {inner}"), field)
}

fn check_bytes(bytes: &[u8], kind: DocumentKind, max: u64) -> Result<(), ApiError> {
    if bytes.len() as u64 > max {
        return Err(StageError::new(
            ErrorCode::FileTooLarge,
            format!("the document is {} bytes; the limit is {max}", bytes.len()),
        )
        .into());
    }
    if bytes.is_empty() {
        return Err(StageError::new(ErrorCode::InvalidFileFormat, "the document is empty").into());
    }
    let Some(media) = detect_media_type(bytes) else {
        return Err(StageError::new(
            ErrorCode::InvalidFileFormat,
            "the content is not a PDF, PNG or JPEG (checked by its leading bytes)",
        )
        .into());
    };
    if !kind.accepts(media) {
        return Err(StageError::new(
            ErrorCode::InvalidFileFormat,
            format!("a {kind} cannot be processed from {}", media.as_str()),
        )
        .into());
    }
    Ok(())
}

async fn parse_json(body: &[u8], max: u64) -> Result<NewJob, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let req: CreateJobRequest = serde_path_to_error::deserialize(de).map_err(json_error)?;
    match (req.document, req.upload_id) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "give either document or upload_id, not both",
            Some("upload_id"),
        )),
        (None, None) => Err(ApiError::validation(
            "a document or an upload_id is required",
            Some("document"),
        )),
        (None, Some(upload_id)) => Ok(NewJob {
            source: Source::Upload(upload_id),
            filename: "document".into(),
            kind: parse_kind(req.kind.as_deref(), "kind")?,
        }),
        (Some(doc), None) => {
            let kind = parse_kind(doc.kind.as_deref().or(req.kind.as_deref()), "document.kind")?;
            match (doc.content_base64, doc.url) {
                (Some(_), Some(_)) => Err(ApiError::validation(
                    "give either document.content_base64 or document.url, not both",
                    Some("document.url"),
                )),
                (None, None) => Err(ApiError::validation(
                    "document needs content_base64 or url",
                    Some("document.content_base64"),
                )),
                (Some(b64), None) => {
                    // Base64 is a third larger than the bytes: refuse before decoding.
                    if (b64.len() as u64 / 4) * 3 > max + 3 {
                        return Err(StageError::new(
                            ErrorCode::FileTooLarge,
                            format!("the document is over the {max}-byte limit"),
                        )
                        .into());
                    }
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|e| {
                            ApiError::validation(
                                format!("content_base64 is not valid base64: {e}"),
                                Some("document.content_base64"),
                            )
                        })?;
                    check_bytes(&bytes, kind, max)?;
                    Ok(NewJob {
                        source: Source::Bytes(bytes),
                        filename: sanitize_filename(doc.filename.as_deref().unwrap_or("document")),
                        kind,
                    })
                }
                (None, Some(url)) => Ok(NewJob {
                    filename: sanitize_filename(
                        doc.filename
                            .as_deref()
                            .or_else(|| url.rsplit('/').next().filter(|s| !s.is_empty()))
                            .unwrap_or("document"),
                    ),
                    source: Source::Url(url),
                    kind,
                }),
            }
        }
    }
}

async fn parse_multipart(mut mp: Multipart, max: u64) -> Result<NewJob, ApiError> {
    let mut file: Option<(Vec<u8>, String)> = None;
    let mut kind: Option<String> = None;
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| ApiError::validation(format!("invalid multipart body: {e}"), None))?
    {
        match field.name() {
            Some("file") | Some("document") => {
                let name = field.file_name().unwrap_or("document").to_owned();
                let bytes = field.bytes().await.map_err(|e| {
                    ApiError::validation(format!("reading the file part: {e}"), Some("file"))
                })?;
                file = Some((bytes.to_vec(), name));
            }
            Some("kind") => {
                kind = Some(field.text().await.map_err(|e| {
                    ApiError::validation(format!("reading kind: {e}"), Some("kind"))
                })?);
            }
            other => {
                return Err(ApiError::validation(
                    format!("unexpected multipart field {:?}", other.unwrap_or("")),
                    other,
                ));
            }
        }
    }
    let kind = parse_kind(kind.as_deref().map(str::trim), "kind")?;
    let (bytes, name) =
        file.ok_or_else(|| ApiError::validation("a `file` part is required", Some("file")))?;
    check_bytes(&bytes, kind, max)?;
    Ok(NewJob {
        source: Source::Bytes(bytes),
        filename: sanitize_filename(&name),
        kind,
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    tag = "jobs",
    request_body(content = CreateJobRequest, description = "JSON (base64 content, URL or upload_id) or multipart/form-data with a `file` part and an optional `kind` part"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body returns the same job; same key, other body is 409")),
    responses(
        (status = 202, description = "Job created and its execution started", body = JobView),
        (status = 400, description = "Malformed request (VALIDATION_ERROR)"),
        (status = 401, description = "Missing or invalid API key (UNAUTHORIZED)"),
        (status = 409, description = "Idempotency-Key reused with another body (IDEMPOTENCY_CONFLICT), or the upload already used by another job (UPLOAD_ALREADY_USED)"),
        (status = 413, description = "Over 50 MiB (FILE_TOO_LARGE)"),
        (status = 415, description = "Not a PDF, PNG or JPEG (INVALID_FILE_FORMAT)"),
        (status = 422, description = "URL not allowed (URL_NOT_ALLOWED)"),
        (status = 429, description = "Rate limited (RATE_LIMITED)"),
        (status = 503, description = "Queue full (SERVICE_UNAVAILABLE)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    req: Request,
) -> Result<Response, ApiError> {
    let max = state.settings.max_document_bytes;
    let idem_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(k) = &idem_key
        && (k.is_empty() || k.len() > 255)
    {
        return Err(ApiError::validation(
            "Idempotency-Key must be 1..=255 characters",
            Some("Idempotency-Key"),
        ));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // Room in the execution queue comes first, before the body is read: a full queue
    // refuses (503) at once and stores nothing, so a retry after `Retry-After` starts
    // the job afresh, and an overloaded server spends no memory on bodies it could not
    // run anyway.
    let body_limit = state.settings.max_request_bytes();
    let admission = match state.orchestrator.admit().await {
        Ok(admission) => admission,
        Err(e) => {
            // Read the body to its end (keeping none of it), so the client gets the
            // answer instead of a connection reset in the middle of its upload.
            let (_, body) = req.into_parts();
            drain(body, body_limit.saturating_mul(4)).await;
            return Err(ApiError::from(e).retry_after(5));
        }
    };
    let _intake = state.intake().await?;
    let (new_job, request_hash) = if content_type.starts_with("multipart/form-data") {
        let (parts, body) = req.into_parts();
        let bytes = read_body(body, body_limit).await?;
        let hash = hex::encode(Sha256::digest(&bytes));
        // The request's own parts: they carry the router's body limit, which multipart
        // parsing obeys (without it, axum's 2 MB default refuses a larger file as
        // malformed). The document's own limit is checked after.
        let rebuilt = Request::from_parts(parts, Body::from(bytes));
        let mp = Multipart::from_request(rebuilt, &state)
            .await
            .map_err(|e| ApiError::validation(format!("invalid multipart body: {e}"), None))?;
        (parse_multipart(mp, max).await?, hash)
    } else if content_type.starts_with("application/json") || content_type.is_empty() {
        let bytes = read_body(req.into_body(), body_limit).await?;
        let hash = hex::encode(Sha256::digest(&bytes));
        (parse_json(&bytes, max).await?, hash)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::ValidationError,
            "send application/json or multipart/form-data",
        ));
    };

    // An Idempotency-Key names one job. Its record is written before the job, and the
    // job is created under the recorded id, so a request that finds the record but not
    // (yet) the job creates that same job itself: whichever request creates it first
    // wins, the others answer with it. A record whose writer died before the job existed
    // is resolved the same way by the next retry.
    let now = state.clock.now();
    let mut job_id = None;
    if let Some(key) = &idem_key
        && let Some(prev) = state.idempotency.get(&caller.key_name, key).await?
    {
        match resolve(&state, &prev, &request_hash).await? {
            Resolved::Job(answer) => return Ok(answer),
            Resolved::Pending(id) => job_id = Some(id),
        }
    }
    if let Source::Url(url) = &new_job.source {
        state.fetcher.check(url).await?;
    }
    let job_id = match (job_id, &idem_key) {
        (Some(id), _) => id,
        (None, None) => JobId::generate(now),
        (None, Some(key)) => {
            let record = IdempotencyRecord {
                owner: caller.key_name.clone(),
                key: key.clone(),
                request_hash: request_hash.clone(),
                job_id: JobId::generate(now),
                created_at: now,
            };
            match state.idempotency.put_if_absent(&record).await? {
                None => record.job_id,
                Some(prev) => match resolve(&state, &prev, &request_hash).await? {
                    Resolved::Job(answer) => return Ok(answer),
                    Resolved::Pending(id) => id,
                },
            }
        }
    };
    let mut job = Job::new(job_id, new_job.kind, &new_job.filename, now);
    job.owner = Some(caller.key_name.clone());
    // Decided now, so a key changed later does not change what happens to this job.
    job.delete_document_when_final =
        caller.delete_document_when_final || state.settings.delete_document_when_final;
    job.correlation_id = Some(request_id.0.clone());
    let document = match new_job.source {
        Source::Bytes(bytes) => NewDocument::Inline(bytes),
        Source::Url(url) => NewDocument::Url(url),
        Source::Upload(upload_id) => {
            let (key, meta, size) = claim_upload(&state, &caller, &upload_id, &job.id).await?;
            if let Some(name) = meta.filename {
                job.filename = sanitize_filename(&name);
            }
            NewDocument::Stored { key, size }
        }
    };
    // `submit` stores inline bytes before the job exists: a job that a client was told
    // about always has its document, whenever the server dies.
    let submitted = lifecycle::submit(
        &*state.jobs,
        &*state.objects,
        &*state.clock,
        JobSubmission {
            job,
            document,
            idempotent: idem_key.is_some(),
            start: Start::Orchestrator(&*state.orchestrator, admission),
        },
    )
    .await
    .map_err(|e| match e {
        SubmitError::NotStored(e) => ApiError::from(e),
        // Nothing runs the job (the server is shutting down); it is failed with the reason.
        SubmitError::NotStarted(e) => ApiError::from(e).retry_after(5),
    })?;
    let job = match submitted {
        Submitted::Existing(job) => {
            return Ok(success(
                JobView::new(&job, None, &state.settings.pricing),
                StatusCode::ACCEPTED,
            ));
        }
        Submitted::Created(job) => job,
    };
    tracing::info!(job_id = %job.id, correlation_id = %request_id.0, owner = %caller.key_name,
                   kind = %job.kind, "job created");
    Ok(success(
        JobView::new(&job, None, &state.settings.pricing),
        StatusCode::ACCEPTED,
    ))
}

/// What an existing idempotency record stands for.
enum Resolved {
    /// The answer: its job, or a conflict.
    Job(Response),
    /// The job it names does not exist yet (its request is still creating it, or died
    /// first): this request may create it under that id.
    Pending(JobId),
}

async fn resolve(
    state: &AppState,
    prev: &IdempotencyRecord,
    request_hash: &str,
) -> Result<Resolved, ApiError> {
    if prev.request_hash != request_hash {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::IdempotencyConflict,
            "this Idempotency-Key was used with a different request",
        ));
    }
    match state.jobs.get(&prev.job_id).await {
        Ok(job) => Ok(Resolved::Job(success(
            JobView::new(&job, None, &state.settings.pricing),
            StatusCode::ACCEPTED,
        ))),
        Err(e) if e.code == ErrorCode::JobNotFound => Ok(Resolved::Pending(prev.job_id.clone())),
        Err(e) => Err(e.into()),
    }
}

/// A body that could not be read: 408 when the client stopped sending (the body
/// timeout), else 400.
fn body_error(e: axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::ValidationError,
                "the request body did not arrive in time",
            );
        }
        source = err.source();
    }
    ApiError::validation(format!("reading the request body: {e}"), None)
}

/// Reads a body up to `limit` bytes. An oversized body is read on (and dropped) up to a
/// few times the limit before answering 413, so the client sees the answer and the
/// connection stays usable instead of being reset mid-upload.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let drain_cap = limit.saturating_mul(4).max(16 * 1024 * 1024);
    let mut body = body;
    // Sized from what the client announced rather than grown by doubling (which leaves
    // up to twice the body allocated); at most 8 MiB up front, so an announcement alone
    // reserves little.
    let announced = axum::body::HttpBody::size_hint(&body).upper().unwrap_or(0);
    let upfront = usize::try_from(announced)
        .unwrap_or(0)
        .min(limit)
        .min(8 << 20);
    let mut buf = Vec::with_capacity(upfront);
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(body_error)?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > drain_cap {
                break;
            }
        }
    }
    if seen > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::FileTooLarge,
            format!("the request body is over {limit} bytes"),
        ));
    }
    Ok(Bytes::from(buf))
}

/// Reads and drops a body, up to `cap` bytes.
async fn drain(mut body: Body, cap: usize) {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen > cap {
                break;
            }
        }
    }
}

/// The key under which an upload's one job is recorded, in the idempotency store of the
/// upload's owner. It holds a newline, which no `Idempotency-Key` header can, so a client's
/// own keys never collide with it.
fn upload_claim_key(upload_id: &UploadId) -> String {
    format!("upload\n{upload_id}")
}

/// Takes the upload for `job_id`. The claim is a conditional write (the idempotency
/// store's `put_if_absent`), so of any number of requests racing for one upload exactly
/// one job gets it; the others are refused with `UPLOAD_ALREADY_USED` (the same job
/// claiming again, a retry, is fine).
async fn claim_upload(
    state: &AppState,
    caller: &Caller,
    upload_id: &str,
    job_id: &JobId,
) -> Result<(ObjectKey, UploadMeta, u64), ApiError> {
    let gone = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no upload {upload_id:?}"),
        )
        .with_details(serde_json::json!({ "field": "upload_id" }))
    };
    let used = |by: &JobId| {
        ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::UploadAlreadyUsed,
            format!("upload {upload_id} was already used by job {by}"),
        )
        .with_details(serde_json::json!({ "field": "upload_id", "job_id": by }))
    };
    let upload_id = UploadId::parse(upload_id).map_err(|_| gone())?;
    let meta_key = upload_meta_key(&upload_id);
    let bytes = state.objects.get(&meta_key).await?.ok_or_else(gone)?;
    let meta: UploadMeta = serde_json::from_slice(&bytes).map_err(|_| gone())?;
    if meta.owner != caller.key_name {
        return Err(gone());
    }
    let claim_key = upload_claim_key(&upload_id);
    if let Some(prev) = state.idempotency.get(&caller.key_name, &claim_key).await?
        && prev.job_id != *job_id
    {
        return Err(used(&prev.job_id));
    }
    let key = upload_document_key(&upload_id);
    let size = state.objects.size(&key).await?.ok_or_else(|| {
        ApiError::validation(
            "nothing was uploaded to this upload URL yet",
            Some("upload_id"),
        )
    })?;
    let claim = IdempotencyRecord {
        owner: caller.key_name.clone(),
        key: claim_key,
        request_hash: String::new(),
        job_id: job_id.clone(),
        created_at: state.clock.now(),
    };
    if let Some(prev) = state.idempotency.put_if_absent(&claim).await?
        && prev.job_id != *job_id
    {
        return Err(used(&prev.job_id));
    }
    Ok((key, meta, size))
}

pub(crate) async fn owned_job(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Job, ApiError> {
    let id = JobId::parse(id).map_err(|_| ApiError::not_found_job())?;
    let job = match state.jobs.get(&id).await {
        Ok(j) => j,
        Err(e) if e.code == ErrorCode::JobNotFound => return Err(ApiError::not_found_job()),
        Err(e) => return Err(e.into()),
    };
    check_owner(job.owner.as_deref(), caller)?;
    Ok(job)
}

/// Another key's job does not exist for this caller.
fn check_owner(owner: Option<&str>, caller: &Caller) -> Result<(), ApiError> {
    if owner == Some(caller.key_name.as_str()) {
        Ok(())
    } else {
        Err(ApiError::not_found_job())
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = String, Path, description = "job_<yyyymmddHHMMSS>_<random>")),
    responses(
        (status = 200, description = "The job with its status history and stage timings", body = JobView),
        (status = 404, description = "No such job for this key (JOB_NOT_FOUND)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = JobId::parse(&job_id).map_err(|_| ApiError::not_found_job())?;
    // Read before the job, so a kept view is never newer than its token (see `kept`).
    let token = state.jobs.change_token();
    let view = match state.kept_views.get(token, job_id.as_str()) {
        Some(view) => view,
        None => {
            let (job, history) = match state.jobs.get_with_history(&id).await {
                Ok(found) => found,
                Err(e) if e.code == ErrorCode::JobNotFound => {
                    return Err(ApiError::not_found_job());
                }
                Err(e) => return Err(e.into()),
            };
            let view = KeptView {
                owner: job.owner.clone(),
                data: data_bytes(&JobView::new(&job, Some(&history), &state.settings.pricing))?,
            };
            state.kept_views.put(token, job_id, view.clone());
            view
        }
    };
    check_owner(view.owner.as_deref(), &caller)?;
    Ok(success_bytes(view.data, StatusCode::OK))
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs/{job_id}/result",
    tag = "jobs",
    params(("job_id" = String, Path, description = "job id"), ResultQuery),
    responses(
        (status = 200, description = "The extracted, verified result (see the result model), or CSV with format=csv", body = Object),
        (status = 404, description = "No such job, or no result yet (JOB_NOT_FOUND, NOT_FOUND)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn result(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
    query: Result<Query<ResultQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::validation(e.body_text(), None))?;
    let job = owned_job(&state, &caller, &job_id).await?;
    let not_ready = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("job {} has no result (status {})", job.id, job.status),
        )
    };
    if !matches!(job.status, JobStatus::Completed | JobStatus::NeedsReview) {
        return Err(not_ready());
    }
    let key = match q.version.as_deref() {
        None | Some("current") => job.keys.result.as_ref(),
        // The pipeline's own version: the same as the current one until a review.
        Some("machine") => job
            .keys
            .machine_result
            .as_ref()
            .or(job.keys.result.as_ref()),
        Some(v) => {
            return Err(ApiError::validation(
                format!("unknown version {v:?}; current or machine"),
                Some("version"),
            ));
        }
    };
    let key = key.ok_or_else(not_ready)?;
    let bytes = state.objects.get(key).await?.ok_or_else(not_ready)?;
    let mut value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| StageError::internal(format!("result {key}: {e}")))?;
    match q.format.as_deref() {
        None | Some("json") => {
            // What the job cost, beside what it found (not stored in the result object).
            if let Some(obj) = value.as_object_mut() {
                let cost = docpipe_core::pricing::price_job(
                    docpipe_core::pricing::PriceTable::builtin(),
                    &state.settings.pricing,
                    &job,
                );
                obj.insert(
                    "cost_usd".into(),
                    serde_json::to_value(cost)
                        .map_err(|e| StageError::internal(format!("cost of {}: {e}", job.id)))?,
                );
            }
            Ok(success(value, StatusCode::OK))
        }
        Some("csv") => Ok(crate::export::csv_response(&job, &value)),
        Some(f) => Err(ApiError::validation(
            format!("unknown format {f:?}; json or csv"),
            Some("format"),
        )),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResultQuery {
    /// json (the default, in the envelope) or csv (a file: fields, then line items or rooms).
    pub format: Option<String>,
    /// current (the default: the reviewed version after a review) or machine (the
    /// pipeline's own).
    pub version: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/api/v1/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = String, Path, description = "job id")),
    responses(
        (status = 200, description = "Cancelled (or already cancelled); the execution is stopped", body = JobView),
        (status = 404, description = "No such job (JOB_NOT_FOUND)"),
        (status = 409, description = "Already completed, failed or in review (JOB_ALREADY_COMPLETED)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let job = owned_job(&state, &caller, &job_id).await?;
    if job.status == JobStatus::Cancelled {
        return Ok(success(
            JobView::new(&job, None, &state.settings.pricing),
            StatusCode::OK,
        ));
    }
    if job.status.is_final() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::JobAlreadyCompleted,
            format!("job {} is already {}", job.id, job.status),
        ));
    }
    let job = match state
        .jobs
        .transition(
            &job.id,
            JobStatus::Cancelled,
            JobPatch::default(),
            state.clock.now(),
        )
        .await
    {
        Ok(j) => j,
        // It finished while we looked.
        Err(e) if e.code == ErrorCode::JobAlreadyCompleted => {
            return Err(ApiError::new(StatusCode::CONFLICT, e.code, e.message));
        }
        Err(e) => return Err(e.into()),
    };
    state
        .orchestrator
        .stop(&job, "cancelled through the API")
        .await?;
    Ok(success(
        JobView::new(&job, None, &state.settings.pricing),
        StatusCode::OK,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Filter by status.
    pub status: Option<String>,
    /// Filter by kind.
    pub kind: Option<String>,
    /// Page size, 1..=100 (default 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "The caller's jobs, newest first", body = JobListView),
        (status = 400, description = "Bad filter or cursor (VALIDATION_ERROR)")
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::validation(e.body_text(), None))?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            ApiError::validation(format!("unknown status {s:?}"), Some("status"))
        })?),
    };
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k) => Some(parse_kind(Some(k), "kind")?),
    };
    if let Some(l) = q.limit
        && !(1..=100).contains(&l)
    {
        return Err(ApiError::validation("limit must be 1..=100", Some("limit")));
    }
    let page = state
        .jobs
        .list(&JobFilter {
            status,
            kind,
            owner: Some(caller.key_name.clone()),
            limit: q.limit,
            cursor: q.cursor,
        })
        .await
        .map_err(|e| match e.code {
            ErrorCode::ValidationError => ApiError::validation(e.message, Some("cursor")),
            _ => e.into(),
        })?;
    let view = JobListView {
        jobs: page
            .jobs
            .iter()
            .map(|j| JobView::new(j, None, &state.settings.pricing))
            .collect(),
        next_cursor: page.next_cursor,
    };
    Ok(success(view, StatusCode::OK))
}
