//! Intake without the API: the intake queue's starter. Two kinds of message arrive on the
//! queue: S3 object-created notifications for `incoming/{tenant}/{file}` in the documents
//! bucket (a drop), and intake messages (`schemas/intake.v1.schema.json`, read by
//! [`docpipe_core::intake`]). Each becomes one job through [`lifecycle::submit`], the one way
//! a job comes to exist, and its execution is started.
//!
//! Idempotent: a drop is claimed under its key and ETag, a message under its
//! `idempotency_key`, in the idempotency table before the job exists; a message delivered
//! twice (or retried after a crash between the claim and the job) makes the one job and
//! starts its one execution (executions are named by the job). A message that cannot be
//! taken is refused whole, before anything is written, and sent to the dead-letter queue
//! with its reason; a transient failure leaves it on the queue to be received again.

use docpipe_core::intake::{IntakeDocument, IntakeMessage, IntakeRejection};
use docpipe_core::lifecycle::{self, JobSubmission, NewDocument, Start, SubmitError, Submitted};
use docpipe_core::ports::{Admission, Result};
use docpipe_core::{
    Clock, DocumentKind, ErrorName, IdempotencyRecord, IdempotencyStore, Job, JobId, JobStatus,
    JobStore, ObjectKey, ObjectStore, Orchestrator, StageError,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api_keys::DynamoKeyStore;
use crate::sqs::{BatchResponse, Queue, SqsBatch, SqsMessage};

/// The key prefix of the drop: `incoming/{tenant}/{file}`.
pub const DROP_PREFIX: &str = "incoming/";
/// Where intake messages' `s3_uri` documents are put (no notification: the message is
/// the request).
pub const MESSAGE_PREFIX: &str = "intake/";
/// The message attribute naming the tenant of an intake message.
pub const TENANT_ATTRIBUTE: &str = "tenant";
/// The idempotency owner of messages that name no tenant.
const NO_TENANT: &str = "-";

/// One document to submit, read from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    /// The API key name the job belongs to.
    pub tenant: Option<String>,
    pub kind: DocumentKind,
    pub filename: String,
    pub source: Source,
    /// The idempotency key, and what it stands for (a second use with another document is
    /// refused).
    pub key: String,
    pub request_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// In the documents bucket; its size if the notification said.
    Object {
        key: ObjectKey,
        size: Option<u64>,
    },
    Url(String),
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Documents to submit (a notification can hold several).
    Submit(Vec<Intake>),
    /// Nothing to do (S3's test event, a presigned upload the API claims itself).
    Nothing,
}

fn reject(reason: impl Into<String>) -> IntakeRejection {
    IntakeRejection {
        reason: reason.into(),
    }
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

fn check_tenant(tenant: &str) -> Result<(), IntakeRejection> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 128
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(reject(format!("{tenant:?} is not a tenant name")))
    }
}

/// The kind a file's name suggests: images are blueprints, the rest invoices.
fn kind_of(name: &str) -> DocumentKind {
    let lower = name.to_ascii_lowercase();
    if [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        DocumentKind::Blueprint
    } else {
        DocumentKind::Invoice
    }
}

/// Notifications carry keys form-encoded (`+` for a space, `%XX` for other bytes).
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

/// Reads a dropped object's notification record.
fn drop_of(record: &Value, documents_bucket: &str) -> Result<Option<Intake>, IntakeRejection> {
    let event = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !event.starts_with("ObjectCreated:") {
        return Err(reject(format!("{event:?} is not an object-created event")));
    }
    let bucket = record
        .pointer("/s3/bucket/name")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("the notification names no bucket"))?;
    if bucket != documents_bucket {
        return Err(reject(format!(
            "bucket {bucket:?} is not the documents bucket"
        )));
    }
    let encoded = record
        .pointer("/s3/object/key")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("the notification names no key"))?;
    let raw_key = &form_decode(encoded)
        .ok_or_else(|| reject(format!("{encoded:?} is not a URL-encoded key")))?;
    let etag = record
        .pointer("/s3/object/eTag")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("the notification has no eTag"))?;
    let size = record.pointer("/s3/object/size").and_then(Value::as_u64);
    let key = ObjectKey::parse(raw_key).map_err(|_| {
        reject(format!(
            "{raw_key:?}: file names in the drop use only A-Z a-z 0-9 . _ -"
        ))
    })?;
    let rest = raw_key
        .strip_prefix(DROP_PREFIX)
        .ok_or_else(|| reject(format!("{raw_key:?} is outside {DROP_PREFIX}")))?;
    let Some((tenant, file)) = rest.split_once('/') else {
        return Err(reject(format!(
            "{raw_key:?}: drop files under {DROP_PREFIX}{{tenant}}/"
        )));
    };
    // `incoming/upl_.../` holds presigned uploads: the API makes their jobs.
    if docpipe_core::UploadId::parse(tenant).is_ok() {
        return Ok(None);
    }
    check_tenant(tenant)?;
    if file.contains('/') {
        return Err(reject(format!(
            "{raw_key:?}: one file name after the tenant, no folders"
        )));
    }
    Ok(Some(Intake {
        tenant: Some(tenant.to_owned()),
        kind: kind_of(file),
        filename: file.to_owned(),
        source: Source::Object { key, size },
        key: format!("s3:{raw_key}#{etag}"),
        request_hash: sha256_hex(&[raw_key, etag]),
    }))
}

/// Reads a message body: an S3 notification, S3's test event, or an intake message (whose
/// tenant is the message's `tenant` attribute).
pub fn read_message(
    body: &str,
    tenant: Option<&str>,
    documents_bucket: &str,
) -> Result<Request, IntakeRejection> {
    let value: Value = serde_json::from_str(body).map_err(|e| reject(format!("not JSON: {e}")))?;
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Request::Nothing);
    }
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        let mut out = Vec::new();
        for record in records {
            if let Some(intake) = drop_of(record, documents_bucket)? {
                out.push(intake);
            }
        }
        return Ok(if out.is_empty() {
            Request::Nothing
        } else {
            Request::Submit(out)
        });
    }
    let message = IntakeMessage::parse(body.as_bytes())?;
    let Some(tenant) = tenant else {
        return Err(reject(format!(
            "the message has no {TENANT_ATTRIBUTE} attribute (the API key name its job belongs to)"
        )));
    };
    check_tenant(tenant)?;
    if message.callback.is_some() {
        // Per-job callbacks are delivered by the embedded host only so far; a message
        // that asks for one is refused rather than taken without it.
        return Err(reject(
            "callback is not supported on the AWS host: subscribe a webhook instead",
        ));
    }
    let (source, filename, identity) = match &message.document {
        IntakeDocument::Url(url) => {
            let name = url
                .split(['?', '#'])
                .next()
                .and_then(|u| u.rsplit('/').next())
                .filter(|n| !n.is_empty())
                .unwrap_or("document");
            (Source::Url(url.clone()), name.to_owned(), url.clone())
        }
        IntakeDocument::S3 { bucket, key } => {
            if bucket != documents_bucket {
                return Err(reject(format!(
                    "document.s3_uri: bucket {bucket:?} is not the documents bucket"
                )));
            }
            if !key.starts_with(MESSAGE_PREFIX) {
                return Err(reject(format!(
                    "document.s3_uri: documents for intake messages go under {MESSAGE_PREFIX}"
                )));
            }
            let object = ObjectKey::parse(key)
                .map_err(|e| reject(format!("document.s3_uri: {}", e.message)))?;
            let name = key.rsplit('/').next().unwrap_or(key).to_owned();
            (
                Source::Object {
                    key: object,
                    size: None,
                },
                name,
                format!("s3://{bucket}/{key}"),
            )
        }
    };
    Ok(Request::Submit(vec![Intake {
        tenant: Some(tenant.to_owned()),
        kind: message.kind,
        filename,
        source,
        request_hash: sha256_hex(&[&identity, message.kind.as_str()]),
        key: message.idempotency_key,
    }]))
}

/// What became of one document.
#[derive(Debug)]
pub enum Outcome {
    /// Its job (new, or the one an earlier delivery made), execution started.
    Started(Box<Job>),
    /// Refused whole: nothing was written.
    Refused(IntakeRejection),
    /// Try again later (a service was unavailable); what was written is reused then.
    Retry(StageError),
}

/// The starter: what it writes to, and where refusals go.
pub struct Starter<'a> {
    pub jobs: &'a dyn JobStore,
    pub objects: &'a dyn ObjectStore,
    pub idempotency: &'a dyn IdempotencyStore,
    /// A tenant is an active API key.
    pub keys: &'a DynamoKeyStore,
    pub orchestrator: &'a dyn Orchestrator,
    pub clock: &'a dyn Clock,
    pub documents_bucket: &'a str,
    pub dead_letters: &'a Queue,
    /// Every job drops its document once final (the deployment's
    /// `DOCPIPE_DELETE_DOCUMENT_WHEN_FINAL`); a tenant's key can ask for it on its own.
    pub delete_document_when_final: bool,
}

fn transient(e: &StageError) -> bool {
    matches!(e.name(), ErrorName::Transient)
}

impl Starter<'_> {
    /// Takes a batch: each message's documents submitted, refused messages sent to the
    /// dead-letter queue with their reason, the rest answered for another try.
    pub async fn handle(&self, batch: &SqsBatch) -> BatchResponse {
        let mut answer = BatchResponse::default();
        for message in &batch.records {
            if !self.handle_message(message).await {
                answer.retry(message);
            }
        }
        answer
    }

    /// `true` when the message is done with (taken, or dead-lettered with its reason).
    async fn handle_message(&self, message: &SqsMessage) -> bool {
        let request = read_message(
            &message.body,
            message.attribute(TENANT_ATTRIBUTE),
            self.documents_bucket,
        );
        let refusal = match request {
            Ok(Request::Nothing) => return true,
            Ok(Request::Submit(intakes)) => {
                let mut refusal = None;
                for intake in intakes {
                    match self.submit(intake).await {
                        Outcome::Started(job) => {
                            tracing::info!(job_id = %job.id, message_id = %message.message_id, "intake: job started");
                        }
                        Outcome::Refused(r) => refusal = Some(r),
                        Outcome::Retry(e) => {
                            tracing::warn!(message_id = %message.message_id, error = %e, "intake: retried later");
                            return false;
                        }
                    }
                }
                match refusal {
                    Some(r) => r,
                    None => return true,
                }
            }
            Err(r) => r,
        };
        tracing::warn!(message_id = %message.message_id, reason = %refusal.reason, "intake: refused");
        match self
            .dead_letters
            .dead_letter(&message.body, &refusal.reason, &message.message_id)
            .await
        {
            Ok(()) => true,
            // Not recorded: leave it on the queue (its redrive policy ends in the same
            // dead-letter queue).
            Err(e) => {
                tracing::warn!(message_id = %message.message_id, error = %e, "intake: dead-letter queue unavailable");
                false
            }
        }
    }

    /// Submits one document: everything checked first, then the claim, the job, the
    /// execution.
    pub async fn submit(&self, intake: Intake) -> Outcome {
        let mut delete_document_when_final = self.delete_document_when_final;
        if let Some(tenant) = &intake.tenant {
            match self.keys.get(tenant).await {
                Ok(Some(key)) if key.active => {
                    delete_document_when_final |= key.delete_document_when_final;
                }
                Ok(_) => {
                    return Outcome::Refused(reject(format!("{tenant:?} is no active API key")));
                }
                Err(e) => return Outcome::Retry(e),
            }
        }
        let document = match &intake.source {
            Source::Url(url) => NewDocument::Url(url.clone()),
            Source::Object { key, size } => {
                let size = match size {
                    Some(s) => *s,
                    None => match self.objects.size(key).await {
                        Ok(Some(s)) => s,
                        Ok(None) => {
                            return Outcome::Refused(reject(format!(
                                "no object {} in the documents bucket",
                                key.as_str()
                            )));
                        }
                        Err(e) if transient(&e) => return Outcome::Retry(e),
                        Err(e) => return Outcome::Refused(reject(e.message)),
                    },
                };
                NewDocument::Stored {
                    key: key.clone(),
                    size,
                }
            }
        };
        let now = self.clock.now();
        let claim = IdempotencyRecord {
            owner: intake
                .tenant
                .clone()
                .unwrap_or_else(|| NO_TENANT.to_owned()),
            key: intake.key.clone(),
            request_hash: intake.request_hash.clone(),
            job_id: JobId::generate(now),
            created_at: now,
        };
        let id = match self.idempotency.put_if_absent(&claim).await {
            Ok(None) => claim.job_id,
            Ok(Some(earlier)) if earlier.request_hash == claim.request_hash => earlier.job_id,
            Ok(Some(_)) => {
                return Outcome::Refused(reject(format!(
                    "idempotency_key {:?} was used for another document",
                    intake.key
                )));
            }
            Err(e) => return Outcome::Retry(e),
        };
        let mut job = Job::new(id.clone(), intake.kind, &intake.filename, now);
        job.owner = intake.tenant.clone();
        job.delete_document_when_final = delete_document_when_final;
        let submitted = lifecycle::submit(
            self.jobs,
            self.objects,
            self.clock,
            JobSubmission {
                job,
                document,
                // The id came from the claim: an earlier delivery may have made the job.
                idempotent: true,
                start: Start::Orchestrator(self.orchestrator, Admission::unlimited()),
            },
        )
        .await;
        match submitted {
            Ok(Submitted::Created(job)) => Outcome::Started(Box::new(job)),
            Ok(Submitted::Existing(job)) => {
                // An earlier delivery made the job; its execution may not have started
                // (it stopped in between). Starting it again is a no-op when it did.
                if job.status == JobStatus::Queued
                    && let Err(e) = self.orchestrator.start(&job).await
                {
                    return Outcome::Retry(e);
                }
                Outcome::Started(Box::new(job))
            }
            Err(SubmitError::NotStored(e)) if transient(&e) => Outcome::Retry(e),
            Err(SubmitError::NotStored(e)) => Outcome::Refused(reject(e.message)),
            // The job exists and was failed with the reason: nothing runs it, and the
            // client reads why on the job.
            Err(SubmitError::NotStarted(e)) => {
                tracing::warn!(error = %e, "intake: execution not started; the job is failed");
                match self.jobs.get(&id).await {
                    Ok(job) => Outcome::Started(Box::new(job)),
                    Err(_) => Outcome::Retry(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: &str = "docpipe-test-documents";

    fn notification(key: &str) -> String {
        serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 10, "eTag": "abc"}}}]})
        .to_string()
    }

    #[test]
    fn drops_are_read_by_tenant_and_uploads_left_to_the_api() {
        let Ok(Request::Submit(items)) =
            read_message(&notification("incoming/acme/plan.png"), None, BUCKET)
        else {
            panic!("a drop");
        };
        assert_eq!(items[0].tenant.as_deref(), Some("acme"));
        assert_eq!(items[0].kind, DocumentKind::Blueprint);
        assert_eq!(items[0].key, "s3:incoming/acme/plan.png#abc");
        // Keys arrive form-encoded.
        let Ok(Request::Submit(items)) =
            read_message(&notification("incoming%2Facme%2Fplan-2.png"), None, BUCKET)
        else {
            panic!("a drop");
        };
        assert_eq!(items[0].filename, "plan-2.png");
        assert_eq!(
            read_message(
                &notification("incoming/upl_0123456789abcdef0123456789abcdef/a.pdf"),
                None,
                BUCKET
            ),
            Ok(Request::Nothing)
        );
        assert_eq!(
            read_message(
                r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#,
                None,
                BUCKET
            ),
            Ok(Request::Nothing)
        );
        for (key, why) in [
            ("incoming/a.pdf", "under incoming/{tenant}/"),
            ("incoming/acme/sub/a.pdf", "no folders"),
            ("incoming/acme/my+invoice.pdf", "A-Z a-z"),
            ("incoming/acme/%zz.pdf", "URL-encoded"),
        ] {
            let err = read_message(&notification(key), None, BUCKET).expect_err(key);
            assert!(err.reason.contains(why), "{key}: {}", err.reason);
        }
    }

    #[test]
    fn intake_messages_are_read_with_the_core_parser() {
        let Ok(Request::Submit(items)) = read_message(
            &format!(
                r#"{{"document": {{"s3_uri": "s3://{BUCKET}/intake/a.pdf"}}, "idempotency_key": "k1"}}"#
            ),
            Some("acme"),
            BUCKET,
        ) else {
            panic!("a message");
        };
        assert_eq!(items[0].key, "k1");
        assert_eq!(items[0].filename, "a.pdf");
        assert!(
            read_message(
                r#"{"document": {"url": "https://example.com/a.pdf"}, "idempotency_key": "k"}"#,
                None,
                BUCKET
            )
            .expect_err("no tenant")
            .reason
            .contains("tenant")
        );
        for (body, why) in [
            ("{", "not JSON"),
            (r#"{"document": {}, "idempotency_key": "k"}"#, "exactly one"),
            (
                r#"{"document": {"s3_uri": "s3://other-bucket/a.pdf"}, "idempotency_key": "k"}"#,
                "not the documents bucket",
            ),
            (
                r#"{"document": {"s3_uri": "s3://docpipe-test-documents/results/a.pdf"}, "idempotency_key": "k"}"#,
                "go under intake/",
            ),
            (
                r#"{"document": {"url": "https://example.com/a.pdf"}, "idempotency_key": "k", "callback": "https://example.com/cb"}"#,
                "callback",
            ),
        ] {
            let err = read_message(body, Some("acme"), BUCKET).expect_err(body);
            assert!(err.reason.contains(why), "{body}: {}", err.reason);
        }
    }
}
