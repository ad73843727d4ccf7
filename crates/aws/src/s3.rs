//! The S3 object store. Keys are the core's (`uploads/{job}/...`, `documents/...`,
//! `blueprints/...`, `ocr/...`, `results/...`); the first segment picks the bucket:
//! what clients send lives in `docpipe-{env}-documents`, what the pipeline derives
//! (`ocr/`, `results/`) in `docpipe-{env}-results`. Every object is written with SSE.
//!
//! Reads stream the body and stop at a size cap, so a Lambda never buffers more than it
//! is allowed to process; uploads can be streamed through [`S3ObjectStore::put_stream`]
//! or go straight to S3 by a presigned PUT ([`Presigner`]).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use docpipe_core::ports::Result;
use docpipe_core::{ErrorCode, ObjectKey, ObjectStore, StageError};

use crate::error::sdk_error;

/// A presigned request: what a client must send, with no AWS credentials of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    /// Headers the client must send exactly as given (they are part of the signature).
    pub headers: Vec<(String, String)>,
}

/// Direct, time-limited client access to objects. Not a core port (the embedded pipeline
/// has no use for it); the API's AWS host uses it for uploads and result downloads.
#[async_trait]
pub trait Presigner: Send + Sync {
    /// A PUT to `key`; of exactly `content_length` bytes if given (S3 refuses others).
    async fn presign_put(
        &self,
        key: &ObjectKey,
        content_length: Option<u64>,
        expires_in: Duration,
    ) -> Result<PresignedRequest>;
    /// A GET of `key`.
    async fn presign_get(&self, key: &ObjectKey, expires_in: Duration) -> Result<PresignedRequest>;
}

/// Objects in the two docpipe buckets.
#[derive(Clone, Debug)]
pub struct S3ObjectStore {
    client: Client,
    documents_bucket: String,
    results_bucket: String,
    max_object_bytes: u64,
}

impl S3ObjectStore {
    /// `max_object_bytes` caps every read and streamed write (a document is at most the
    /// stage limit; derived JSON stays far below it).
    pub fn new(
        client: Client,
        documents_bucket: impl Into<String>,
        results_bucket: impl Into<String>,
        max_object_bytes: u64,
    ) -> Self {
        Self {
            client,
            documents_bucket: documents_bucket.into(),
            results_bucket: results_bucket.into(),
            max_object_bytes,
        }
    }

    /// The bucket a key lives in.
    pub fn bucket_for(&self, key: &ObjectKey) -> &str {
        match key.as_str().split('/').next() {
            Some("ocr" | "results") => &self.results_bucket,
            _ => &self.documents_bucket,
        }
    }

    /// Streams `body` of `content_length` bytes to `key` without holding it in memory.
    pub async fn put_stream(
        &self,
        key: &ObjectKey,
        body: ByteStream,
        content_length: u64,
    ) -> Result<()> {
        self.check_size(content_length)?;
        self.client
            .put_object()
            .bucket(self.bucket_for(key))
            .key(key.as_str())
            .content_length(content_length as i64)
            .set_content_type(content_type(key).map(str::to_owned))
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(body)
            .send()
            .await
            .map_err(|e| sdk_error("S3 PutObject", e))?;
        Ok(())
    }

    /// The object's body as a stream and its length; `None` if absent.
    pub async fn get_stream(&self, key: &ObjectKey) -> Result<Option<(ByteStream, u64)>> {
        let result = self
            .client
            .get_object()
            .bucket(self.bucket_for(key))
            .key(key.as_str())
            .send()
            .await;
        match result {
            Ok(out) => {
                let len = out.content_length.unwrap_or_default().max(0) as u64;
                Ok(Some((out.body, len)))
            }
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => Ok(None),
            Err(e) => Err(sdk_error("S3 GetObject", e)),
        }
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.max_object_bytes {
            return Err(StageError::new(
                ErrorCode::FileTooLarge,
                format!(
                    "the object is {size} bytes; the limit is {} bytes",
                    self.max_object_bytes
                ),
            ));
        }
        Ok(())
    }
}

fn content_type(key: &ObjectKey) -> Option<&'static str> {
    let name = key.as_str().rsplit('/').next()?;
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => return None,
    })
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<()> {
        let len = bytes.len() as u64;
        self.put_stream(key, ByteStream::from(bytes), len).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>> {
        let Some((mut body, len)) = self.get_stream(key).await? else {
            return Ok(None);
        };
        self.check_size(len)?;
        let mut out = Vec::with_capacity(len as usize);
        // Counted as it arrives: the declared length is checked above, the bytes here.
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| StageError::unavailable(format!("S3 GetObject body of {key}: {e}")))?
        {
            self.check_size((out.len() + chunk.len()) as u64)?;
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    async fn size(&self, key: &ObjectKey) -> Result<Option<u64>> {
        let result = self
            .client
            .head_object()
            .bucket(self.bucket_for(key))
            .key(key.as_str())
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out.content_length.unwrap_or_default().max(0) as u64)),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => Ok(None),
            Err(e) => Err(sdk_error("S3 HeadObject", e)),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.client
            .delete_object()
            .bucket(self.bucket_for(key))
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| sdk_error("S3 DeleteObject", e))?;
        Ok(())
    }
}

fn presigning(expires_in: Duration) -> Result<PresigningConfig> {
    PresigningConfig::expires_in(expires_in).map_err(|e| {
        StageError::new(
            ErrorCode::ValidationError,
            format!("presigned URL lifetime: {e}"),
        )
    })
}

fn presigned(req: aws_sdk_s3::presigning::PresignedRequest) -> PresignedRequest {
    PresignedRequest {
        method: req.method().to_owned(),
        url: req.uri().to_owned(),
        headers: req
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

#[async_trait]
impl Presigner for S3ObjectStore {
    async fn presign_put(
        &self,
        key: &ObjectKey,
        content_length: Option<u64>,
        expires_in: Duration,
    ) -> Result<PresignedRequest> {
        if let Some(len) = content_length {
            self.check_size(len)?;
        }
        // The bucket's default encryption applies: signing an SSE header would make every
        // client send it too.
        let req = self
            .client
            .put_object()
            .bucket(self.bucket_for(key))
            .key(key.as_str())
            .set_content_length(content_length.map(|l| l as i64))
            .presigned(presigning(expires_in)?)
            .await
            .map_err(|e| sdk_error("S3 presign PutObject", e))?;
        Ok(presigned(req))
    }

    async fn presign_get(&self, key: &ObjectKey, expires_in: Duration) -> Result<PresignedRequest> {
        let req = self
            .client
            .get_object()
            .bucket(self.bucket_for(key))
            .key(key.as_str())
            .presigned(presigning(expires_in)?)
            .await
            .map_err(|e| sdk_error("S3 presign GetObject", e))?;
        Ok(presigned(req))
    }
}
