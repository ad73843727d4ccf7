//! API keys, idempotency records and the dedupe cache in the same SQLite database as the
//! jobs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use docpipe_core::ports::Result;
use docpipe_core::{
    ApiKey, CachedResult, ErrorCode, IdempotencyRecord, IdempotencyStore, JobId, KeyStore,
    ResultCache, StageError,
};
use rusqlite::{OptionalExtension, Row, params};

use crate::sqlite::{SqliteJobStore, db_error, ts};

fn time(t: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StageError::internal(format!("stored time {t:?}: {e}")))
}

type KeyRow = (String, String, bool, u32, String, Option<String>, i64, bool);

fn key_row(r: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get::<_, i64>(2)? != 0,
        r.get::<_, i64>(3)?.clamp(0, i64::from(u32::MAX)) as u32,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get::<_, i64>(7)? != 0,
    ))
}

fn to_key(row: KeyRow) -> Result<ApiKey> {
    let (name, key_hash, active, rate_limit_per_minute, created, last, count, drop_documents) = row;
    Ok(ApiKey {
        name,
        key_hash,
        active,
        rate_limit_per_minute,
        created_at: time(&created)?,
        last_used_at: last.as_deref().map(time).transpose()?,
        request_count: count.max(0) as u64,
        delete_document_when_final: drop_documents,
    })
}

const KEY_COLUMNS: &str = "name, key_hash, active, rate_limit_per_minute, created_at, \
     last_used_at, request_count, delete_document_when_final";

#[async_trait]
impl KeyStore for SqliteJobStore {
    fn change_token(&self) -> Option<docpipe_core::ChangeToken> {
        self.watch_token()
    }

    async fn create(&self, key: &ApiKey) -> Result<()> {
        let key = key.clone();
        self.with(move |conn| {
            let n = conn
                .execute(
                    &format!(
                        "INSERT OR IGNORE INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ),
                    params![
                        key.name,
                        key.key_hash,
                        i64::from(key.active),
                        i64::from(key.rate_limit_per_minute),
                        ts(key.created_at),
                        key.last_used_at.map(ts),
                        key.request_count as i64,
                        i64::from(key.delete_document_when_final),
                    ],
                )
                .map_err(db_error)?;
            if n == 0 {
                return Err(StageError::new(
                    ErrorCode::ValidationError,
                    format!("an API key named {:?} exists", key.name),
                ));
            }
            Ok(())
        })
        .await
    }

    async fn find_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let key_hash = key_hash.to_owned();
        self.with_read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"
            ))
            .map_err(db_error)?
            .query_row(params![key_hash], key_row)
            .optional()
            .map_err(db_error)?
            .map(to_key)
            .transpose()
        })
        .await
    }

    async fn list(&self) -> Result<Vec<ApiKey>> {
        self.with_read(|conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY name"))
                .map_err(db_error)?;
            let rows = stmt.query_map([], key_row).map_err(db_error)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(to_key(r.map_err(db_error)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn revoke(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.with(move |conn| {
            let n = conn
                .execute(
                    "UPDATE api_keys SET active = 0 WHERE name = ?1",
                    params![name],
                )
                .map_err(db_error)?;
            if n == 0 {
                return Err(StageError::new(
                    ErrorCode::NotFound,
                    format!("no API key named {name:?}"),
                ));
            }
            Ok(())
        })
        .await
    }

    async fn record_use(&self, name: &str, count: u64, at: DateTime<Utc>) -> Result<()> {
        let name = name.to_owned();
        self.with(move |conn| {
            conn.execute(
                "UPDATE api_keys SET request_count = request_count + ?3, last_used_at = ?2 WHERE name = ?1",
                params![name, ts(at), count as i64],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl IdempotencyStore for SqliteJobStore {
    async fn get(&self, owner: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        let (owner, key) = (owner.to_owned(), key.to_owned());
        self.with_read(move |conn| {
            let row: Option<(String, String, String)> = conn
                .query_row(
                    "SELECT request_hash, job_id, created_at FROM idempotency WHERE owner = ?1 AND key = ?2",
                    params![owner, key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db_error)?;
            row.map(|(request_hash, job_id, created)| {
                Ok(IdempotencyRecord {
                    owner: owner.clone(),
                    key: key.clone(),
                    request_hash,
                    job_id: JobId::parse(&job_id)?,
                    created_at: time(&created)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn put_if_absent(&self, record: &IdempotencyRecord) -> Result<Option<IdempotencyRecord>> {
        let rec = record.clone();
        let inserted = self
            .with(move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO idempotency (owner, key, request_hash, job_id, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![rec.owner, rec.key, rec.request_hash, rec.job_id.as_str(), ts(rec.created_at)],
                )
                .map_err(db_error)
            })
            .await?;
        if inserted == 1 {
            Ok(None)
        } else {
            IdempotencyStore::get(self, &record.owner, &record.key).await
        }
    }
}

#[async_trait]
impl ResultCache for SqliteJobStore {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<CachedResult>> {
        let key = key.to_owned();
        let row: Option<(String, String, String)> = self
            .with_read(move |conn| {
                conn.prepare_cached(
                    "SELECT job_id, verification, expires_at FROM result_cache WHERE key = ?1",
                )
                .map_err(db_error)?
                .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(db_error)
            })
            .await?;
        let Some((job_id, verification, expires_at)) = row else {
            return Ok(None);
        };
        if time(&expires_at)? <= now {
            return Ok(None);
        }
        Ok(Some(CachedResult {
            job_id: JobId::parse(&job_id)
                .map_err(|_| StageError::internal(format!("stored job id {job_id:?}")))?,
            verification: serde_json::from_str(&verification)
                .map_err(|e| StageError::internal(format!("stored verification: {e}")))?,
        }))
    }

    async fn put(
        &self,
        key: &str,
        entry: &CachedResult,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let key = key.to_owned();
        let job_id = entry.job_id.to_string();
        let verification = serde_json::to_string(&entry.verification)
            .map_err(|e| StageError::internal(format!("verification: {e}")))?;
        let expires_at = ts(expires_at);
        let now = ts(now);
        self.with(move |conn| {
            // Expired entries go as new ones come, so the table stays as small as the TTL.
            conn.prepare_cached("DELETE FROM result_cache WHERE expires_at <= ?1")
                .map_err(db_error)?
                .execute(params![now])
                .map_err(db_error)?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO result_cache (key, job_id, verification, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db_error)?
            .execute(params![key, job_id, verification, expires_at])
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }
}
