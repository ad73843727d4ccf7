//! Identifiers and object keys: newtypes with a `parse` constructor, so an id or key that
//! exists has already been checked.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, StageError};

/// A job id: `job_<yyyymmddHHMMSS>_<random>`, where random is 12 lowercase base32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const RANDOM_LEN: usize = 12;

impl JobId {
    /// A fresh id stamped with `at`.
    pub fn generate(at: DateTime<Utc>) -> Self {
        let mut bytes = [0u8; RANDOM_LEN];
        // getrandom only fails on platforms with no entropy source; fall back to the clock's
        // nanoseconds mixed per position rather than refusing to create jobs.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = at.timestamp_subsec_nanos();
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (nanos.rotate_left(i as u32 * 3) & 0xff) as u8;
            }
        }
        let random: String = bytes
            .iter()
            .map(|b| ID_ALPHABET[(*b as usize) % 32] as char)
            .collect();
        Self(format!("job_{}_{random}", at.format("%Y%m%d%H%M%S")))
    }

    /// Checks the shape `job_<14 digits>_<1..=32 of [a-z0-9]>`.
    pub fn parse(s: &str) -> Result<Self, StageError> {
        let bad = || {
            StageError::new(
                ErrorCode::ValidationError,
                format!("malformed job id {s:?}"),
            )
        };
        let rest = s.strip_prefix("job_").ok_or_else(bad)?;
        let (stamp, random) = rest.split_once('_').ok_or_else(bad)?;
        if stamp.len() != 14 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if random.is_empty()
            || random.len() > 32
            || !random
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for JobId {
    type Error = StageError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

/// A presigned upload's id: `upl_` and 32 lowercase hex digits (16 random bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UploadId(String);

impl UploadId {
    /// A fresh id; `INTERNAL_ERROR` when the platform has no randomness (an upload id is
    /// a capability, so there is no clock fallback as for job ids).
    pub fn generate() -> Result<Self, StageError> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw)
            .map_err(|e| StageError::internal(format!("no randomness for an upload id: {e}")))?;
        Ok(Self(format!("upl_{}", hex::encode(raw))))
    }

    /// Checks the shape `upl_<32 hex digits>`.
    pub fn parse(s: &str) -> Result<Self, StageError> {
        let valid = s.len() == 36
            && s.strip_prefix("upl_")
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if !valid {
            return Err(StageError::new(
                ErrorCode::ValidationError,
                format!("malformed upload id {s:?}"),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for UploadId {
    type Error = StageError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<UploadId> for String {
    fn from(id: UploadId) -> Self {
        id.0
    }
}

/// A key in the object store: `/`-separated segments of safe characters, no `..`, no empty
/// segment, no leading slash. Both the filesystem store and S3 accept every valid key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(s: &str) -> Result<Self, StageError> {
        let bad = |why: &str| {
            StageError::new(
                ErrorCode::ValidationError,
                format!("invalid object key {s:?}: {why}"),
            )
        };
        if s.is_empty() || s.len() > 1024 {
            return Err(bad("length must be 1..=1024"));
        }
        for seg in s.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(bad("empty, '.' or '..' segment"));
            }
            if !seg.bytes().all(is_key_byte) {
                return Err(bad("characters outside [A-Za-z0-9._-]"));
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// `{prefix}/{job_id}/{name}` with `name` sanitised by [`sanitize_filename`].
    pub fn for_job(prefix: &str, job: &JobId, name: &str) -> Self {
        Self(format!("{prefix}/{job}/{}", sanitize_filename(name)))
    }

    /// `incoming/{upload_id}/{name}` with `name` sanitised by [`sanitize_filename`]: where
    /// a presigned upload and its metadata wait for their job.
    pub fn for_upload(upload: &UploadId, name: &str) -> Self {
        Self(format!("incoming/{upload}/{}", sanitize_filename(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = StageError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> Self {
        k.0
    }
}

/// Reduces a client-supplied filename to one safe path segment: the last component of any
/// path, characters outside `[A-Za-z0-9._-]` replaced by `_`, no leading dot, at most 128
/// bytes, never empty.
pub fn sanitize_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mut out: String = last
        .chars()
        .map(|c| {
            if c.is_ascii() && is_key_byte(c as u8) {
                c
            } else {
                '_'
            }
        })
        .collect();
    while out.starts_with('.') {
        out.remove(0);
    }
    if out.len() > 128 {
        // Keep the extension, which is the informative end of a long name.
        let cut = out.len() - 128;
        out.drain(..cut);
    }
    if out.is_empty() || out.bytes().all(|b| b == b'_') {
        out = "document".to_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_carry_the_timestamp() {
        let at = DateTime::parse_from_rfc3339("2026-01-31T12:34:56Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("valid time");
        let id = JobId::generate(at);
        assert!(id.as_str().starts_with("job_20260131123456_"), "{id}");
        assert_eq!(JobId::parse(id.as_str()).expect("parses"), id);
        assert_ne!(JobId::generate(at), id, "random part differs");
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "job_",
            "job_2026_abc",
            "job_20260131123456_",
            "job_20260131123456_ABC",
            "job_20260131123456_../x",
            "task_20260131123456_abc",
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn filenames_cannot_escape_their_folder() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitize_filename(".."), "document");
        assert_eq!(sanitize_filename(".hidden"), "hidden");
        assert_eq!(
            sanitize_filename("Rechnung Nr 1 (ä).pdf"),
            "Rechnung_Nr_1____.pdf"
        );
        assert_eq!(sanitize_filename(""), "document");
        assert!(sanitize_filename(&"a".repeat(500)).len() <= 128);
    }

    #[test]
    fn upload_ids_are_checked() {
        let id = UploadId::generate().expect("randomness");
        assert_eq!(UploadId::parse(id.as_str()).expect("parses"), id);
        for bad in [
            "",
            "upl_",
            "upl_../../etc/passwd",
            "upl_0123456789abcdef0123456789abcdeg",
            "job_0123456789abcdef0123456789abcdef",
        ] {
            assert!(UploadId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn object_keys_refuse_traversal() {
        assert!(ObjectKey::parse("documents/job_1/a.pdf").is_ok());
        for bad in ["", "/abs", "a//b", "a/../b", "a/./b", "a/b c", "a/b/"] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
