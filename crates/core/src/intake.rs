//! Queue intake: the message a client (or a bucket notification turned into one) puts on
//! the intake queue, `schemas/intake.v1.schema.json`. A message is taken whole or rejected
//! whole with a reason (for the dead-letter queue); nothing is created from half of one.

use serde::{Deserialize, Serialize};

use crate::job::DocumentKind;

/// The JSON Schema of intake messages, as shipped in `schemas/`.
pub const INTAKE_V1_SCHEMA: &str = include_str!("../../../schemas/intake.v1.schema.json");

/// The largest message read (SQS's own limit).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Where the document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeDocument {
    /// Fetched through the SSRF guard, as URL ingest is.
    Url(String),
    /// An object in the deployment's own bucket.
    S3 { bucket: String, key: String },
}

/// A valid intake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeMessage {
    pub document: IntakeDocument,
    pub kind: DocumentKind,
    /// One job per key (per tenant): a message delivered twice makes one job.
    pub idempotency_key: String,
    /// A URL notified of the job's status changes (a webhook for this job alone).
    pub callback: Option<String>,
}

/// Why a message was refused: stored with it in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntakeRejection {
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    url: Option<String>,
    s3_uri: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    document: RawDocument,
    #[serde(default)]
    kind: Option<String>,
    idempotency_key: String,
    #[serde(default)]
    callback: Option<String>,
}

fn reject(reason: impl Into<String>) -> IntakeRejection {
    IntakeRejection {
        reason: reason.into(),
    }
}

fn http_url(field: &str, url: &str) -> Result<(), IntakeRejection> {
    if url.len() > 2048 {
        return Err(reject(format!("{field} is longer than 2048 characters")));
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(reject(format!("{field} is not an http(s) URL")));
    }
    Ok(())
}

/// `s3://bucket/key` split, with the bucket name checked.
pub fn parse_s3_uri(uri: &str) -> Result<(String, String), IntakeRejection> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| reject("document.s3_uri does not start with s3://"))?;
    let (bucket, key) = rest
        .split_once('/')
        .ok_or_else(|| reject("document.s3_uri has no key"))?;
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !bucket.starts_with(['.', '-'])
        && !bucket.ends_with(['.', '-']);
    if !bucket_ok {
        return Err(reject(format!(
            "document.s3_uri: {bucket:?} is not a bucket name"
        )));
    }
    if key.is_empty() || key.len() > 1024 {
        return Err(reject("document.s3_uri: the key is empty or too long"));
    }
    Ok((bucket.to_owned(), key.to_owned()))
}

impl IntakeMessage {
    /// Reads and checks a message body.
    pub fn parse(body: &[u8]) -> Result<Self, IntakeRejection> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(reject(format!(
                "the message is {} bytes; at most {MAX_MESSAGE_BYTES}",
                body.len()
            )));
        }
        let raw: RawMessage = serde_json::from_slice(body)
            .map_err(|e| reject(format!("not an intake message: {e}")))?;
        let document = match (raw.document.url, raw.document.s3_uri) {
            (Some(url), None) => {
                http_url("document.url", &url)?;
                IntakeDocument::Url(url)
            }
            (None, Some(uri)) => {
                let (bucket, key) = parse_s3_uri(&uri)?;
                IntakeDocument::S3 { bucket, key }
            }
            _ => return Err(reject("document needs exactly one of url and s3_uri")),
        };
        let kind = match raw.kind.as_deref() {
            None => DocumentKind::Invoice,
            Some(k) => DocumentKind::parse(k)
                .ok_or_else(|| reject(format!("kind {k:?} is not invoice or blueprint")))?,
        };
        let key = raw.idempotency_key;
        if key.is_empty() || key.len() > 255 {
            return Err(reject("idempotency_key must be 1 to 255 characters"));
        }
        if let Some(cb) = &raw.callback {
            http_url("callback", cb)?;
        }
        Ok(Self {
            document,
            kind,
            idempotency_key: key,
            callback: raw.callback,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_messages_are_taken() {
        let m = IntakeMessage::parse(
            br#"{"document": {"s3_uri": "s3://docs-bucket/incoming/acme/a.pdf"}, "kind": "blueprint", "idempotency_key": "k1", "callback": "https://example.com/cb"}"#,
        )
        .expect("valid");
        assert_eq!(
            m.document,
            IntakeDocument::S3 {
                bucket: "docs-bucket".into(),
                key: "incoming/acme/a.pdf".into()
            }
        );
        assert_eq!(m.kind, DocumentKind::Blueprint);
        let m = IntakeMessage::parse(
            br#"{"document": {"url": "https://example.com/a.pdf"}, "idempotency_key": "k"}"#,
        )
        .expect("valid");
        assert_eq!(m.kind, DocumentKind::Invoice);
        assert_eq!(m.callback, None);
    }

    #[test]
    fn malformed_messages_are_rejected_with_a_reason() {
        for (body, why) in [
            (&b"not json"[..], "not an intake message"),
            (br#"{"document": {}, "idempotency_key": "k"}"#, "exactly one"),
            (
                br#"{"document": {"url": "https://a/b", "s3_uri": "s3://bbb/k"}, "idempotency_key": "k"}"#,
                "exactly one",
            ),
            (br#"{"document": {"url": "file:///etc/passwd"}, "idempotency_key": "k"}"#, "http(s)"),
            (br#"{"document": {"s3_uri": "s3://Bad_Bucket/k"}, "idempotency_key": "k"}"#, "bucket"),
            (br#"{"document": {"url": "https://a/b"}}"#, "idempotency_key"),
            (br#"{"document": {"url": "https://a/b"}, "idempotency_key": ""}"#, "1 to 255"),
            (br#"{"document": {"url": "https://a/b"}, "idempotency_key": "k", "kind": "menu"}"#, "kind"),
            (br#"{"document": {"url": "https://a/b"}, "idempotency_key": "k", "extra": 1}"#, "unknown field"),
        ] {
            let err = IntakeMessage::parse(body).expect_err("rejected");
            assert!(err.reason.contains(why), "{}: {}", String::from_utf8_lossy(body), err.reason);
        }
    }

    #[test]
    fn the_schema_is_json_with_the_same_required_fields() {
        let schema: serde_json::Value = serde_json::from_str(INTAKE_V1_SCHEMA).expect("JSON");
        assert_eq!(
            schema["required"],
            serde_json::json!(["document", "idempotency_key"])
        );
        assert_eq!(schema["additionalProperties"], false);
    }
}
