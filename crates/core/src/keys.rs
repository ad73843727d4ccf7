//! API keys and idempotency records: what the HTTP API persists besides jobs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::JobId;
use crate::ports::Result;

/// An API key as stored: never the key itself, only its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Unique, human-chosen; owns the jobs created with the key.
    pub name: String,
    /// Lowercase hex sha256 of the secret.
    pub key_hash: String,
    pub active: bool,
    pub rate_limit_per_minute: u32,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub request_count: u64,
    /// The key's jobs drop their uploaded document (and its text) as soon as they are
    /// final, keeping the result, whatever the host's own setting.
    #[serde(default)]
    pub delete_document_when_final: bool,
}

/// The stored hash of a presented key.
pub fn hash_key(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    // Into a buffer rather than `hex::encode`, which builds the string a char at a time
    // (this runs on every API request).
    let mut out = [0u8; 64];
    match hex::encode_to_slice(digest, &mut out)
        .ok()
        .and_then(|()| std::str::from_utf8(&out).ok())
    {
        Some(text) => text.to_owned(),
        None => hex::encode(digest),
    }
}

/// A new random secret: `dp_` and 43 base64url characters (256 bits).
pub fn generate_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| crate::error::StageError::internal(format!("no randomness for a key: {e}")))?;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::from("dp_");
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            s.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        s.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    Ok(s)
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// As [`crate::JobStore::change_token`]: equal tokens mean no key changed in between.
    fn change_token(&self) -> Option<crate::ports::ChangeToken> {
        None
    }
    /// Fails with `VALIDATION_ERROR` if the name is taken.
    async fn create(&self, key: &ApiKey) -> Result<()>;
    async fn find_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>>;
    async fn list(&self) -> Result<Vec<ApiKey>>;
    /// Deactivates the key; `NOT_FOUND` if there is none of that name.
    async fn revoke(&self, name: &str) -> Result<()>;
    /// Counts `count` requests, the last at `at` (callers batch their counts).
    async fn record_use(&self, name: &str, count: u64, at: DateTime<Utc>) -> Result<()>;
}

/// What an `Idempotency-Key` produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub owner: String,
    pub key: String,
    /// sha256 of the request that first used the key.
    pub request_hash: String,
    pub job_id: JobId,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn get(&self, owner: &str, key: &str) -> Result<Option<IdempotencyRecord>>;
    /// Stores the record unless one exists for (owner, key); returns the existing one.
    async fn put_if_absent(&self, record: &IdempotencyRecord) -> Result<Option<IdempotencyRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hash_stably() {
        let a = generate_secret().expect("secret");
        let b = generate_secret().expect("secret");
        assert_ne!(a, b);
        assert!(a.starts_with("dp_") && a.len() == 3 + 43, "{a}");
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_eq!(hash_key(&a).len(), 64);
        // The stored form is lowercase hex sha256 (keys made by earlier builds still match).
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
