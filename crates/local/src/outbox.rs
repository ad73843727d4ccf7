//! The transactional outbox and the webhook tables in the job store's SQLite database:
//! each status change's event is inserted by the transaction that makes the change
//! ([`append`]), the dispatcher turns events into deliveries (one per matching webhook),
//! and the delivery worker ([`crate::delivery`]) works those off.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use docpipe_core::events::{EventSink, JobStatusEvent, StoredEvent};
use docpipe_core::ports::Result;
use docpipe_core::webhooks::{Delivery, DeliveryState, Webhook, WebhookSecret, WebhookStore};
use docpipe_core::{ErrorCode, Job, JobId, JobStatus, StageError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::sqlite::{SqliteJobStore, db_error, ts};

/// The `source` of events from the embedded host.
pub const SOURCE: &str = "urn:docpipe:embedded";

/// The outbox reader that fans events out to webhooks.
const DISPATCH_CURSOR: &str = "webhooks";

/// Writes the event of `job` having just entered its status, inside the caller's
/// transaction (after the history row of the change).
pub(crate) fn append(
    conn: &Connection,
    job: &Job,
    previous: Option<JobStatus>,
    at: DateTime<Utc>,
) -> Result<()> {
    let n: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM job_history WHERE job_id = ?1")
        .map_err(db_error)?
        .query_row(params![job.id.as_str()], |r| r.get(0))
        .map_err(db_error)?;
    let event = JobStatusEvent::for_change(job, previous, n.max(1) as u64, SOURCE, at);
    conn.prepare_cached(
        "INSERT OR IGNORE INTO outbox (event_id, type, job_id, owner, at, event)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .map_err(db_error)?
    .execute(params![
        event.id,
        event.event_type,
        job.id.as_str(),
        job.owner,
        ts(at),
        event.to_json()?
    ])
    .map_err(db_error)?;
    Ok(())
}

fn time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StageError::internal(format!("stored time {s:?}: {e}")))
}

/// An outbox row: seq, event id, type, job id, owner, time, JSON.
type EventRow = (i64, String, String, String, Option<String>, String, String);

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn read_events(conn: &Connection, after: u64, limit: u32) -> Result<Vec<StoredEvent>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, event_id, type, job_id, owner, at, event FROM outbox
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .map_err(db_error)?;
    let rows = stmt
        .query_map(params![after as i64, limit], event_row)
        .map_err(db_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, id, event_type, job_id, owner, at, json) = row.map_err(db_error)?;
        out.push(StoredEvent {
            seq: seq as u64,
            id,
            event_type,
            job_id: JobId::parse(&job_id)?,
            owner,
            at: time(&at)?,
            json,
        });
    }
    Ok(out)
}

#[async_trait]
impl EventSink for SqliteJobStore {
    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.with_read(move |conn| read_events(conn, after, limit))
            .await
    }

    async fn last_seq(&self) -> Result<u64> {
        self.with_read(|conn| {
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM outbox", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(db_error)
        })
        .await
    }
}

const WEBHOOK_COLUMNS: &str =
    "SELECT id, owner, url, event_types, secret, created_at FROM webhooks";

fn webhook_row(r: &rusqlite::Row<'_>) -> Result<Webhook> {
    let get = |i: usize| r.get::<_, String>(i).map_err(db_error);
    let types = get(3)?;
    Ok(Webhook {
        id: get(0)?,
        owner: get(1)?,
        url: get(2)?,
        event_types: serde_json::from_str(&types)
            .map_err(|e| StageError::internal(format!("stored event types: {e}")))?,
        secret: WebhookSecret::parse(&get(4)?)?,
        created_at: time(&get(5)?)?,
    })
}

fn webhooks(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Webhook>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
    let mut rows = stmt.query(args).map_err(db_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        out.push(webhook_row(row)?);
    }
    Ok(out)
}

const DELIVERY_COLUMNS: &str = "SELECT id, webhook_id, event_id, type, job_id, state, attempts, \
     created_at, next_attempt_at, last_error, body FROM webhook_deliveries";

fn delivery_row(r: &rusqlite::Row<'_>) -> Result<Delivery> {
    let get = |i: usize| r.get::<_, String>(i).map_err(db_error);
    let state = get(5)?;
    Ok(Delivery {
        id: get(0)?,
        webhook_id: get(1)?,
        event_id: get(2)?,
        event_type: get(3)?,
        job_id: get(4)?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| StageError::internal(format!("stored delivery state {state:?}")))?,
        attempts: r.get::<_, i64>(6).map_err(db_error)? as u32,
        created_at: time(&get(7)?)?,
        next_attempt_at: time(&get(8)?)?,
        last_error: r.get(9).map_err(db_error)?,
        body: get(10)?,
    })
}

fn deliveries(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
    let mut rows = stmt.query(args).map_err(db_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        out.push(delivery_row(row)?);
    }
    Ok(out)
}

fn no_webhook() -> StageError {
    StageError::new(ErrorCode::NotFound, "no such webhook")
}

#[async_trait]
impl WebhookStore for SqliteJobStore {
    async fn create_webhook(&self, webhook: &Webhook) -> Result<()> {
        let w = webhook.clone();
        self.with(move |conn| {
            let types = serde_json::to_string(&w.event_types)
                .map_err(|e| StageError::internal(format!("event types: {e}")))?;
            conn.execute(
                "INSERT INTO webhooks (id, owner, url, event_types, secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    w.id,
                    w.owner,
                    w.url,
                    types,
                    w.secret.as_str(),
                    ts(w.created_at)
                ],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn list_webhooks(&self, owner: &str) -> Result<Vec<Webhook>> {
        let owner = owner.to_owned();
        self.with_read(move |conn| {
            webhooks(
                conn,
                &format!("{WEBHOOK_COLUMNS} WHERE owner = ?1 ORDER BY created_at, id"),
                params![owner],
            )
        })
        .await
    }

    async fn get_webhook(&self, owner: &str, id: &str) -> Result<Webhook> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.with_read(move |conn| {
            webhooks(
                conn,
                &format!("{WEBHOOK_COLUMNS} WHERE owner = ?1 AND id = ?2"),
                params![owner, id],
            )?
            .pop()
            .ok_or_else(no_webhook)
        })
        .await
    }

    async fn delete_webhook(&self, owner: &str, id: &str) -> Result<()> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.with(move |conn| {
            let tx = conn
                .savepoint()
                .map_err(db_error)?;
            tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?1 AND EXISTS (SELECT 1 FROM webhooks WHERE id = ?1 AND owner = ?2)", params![id, owner])
                .map_err(db_error)?;
            let n = tx
                .execute(
                    "DELETE FROM webhooks WHERE id = ?1 AND owner = ?2",
                    params![id, owner],
                )
                .map_err(db_error)?;
            if n == 0 {
                return Err(no_webhook());
            }
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn failures(&self, owner: &str, id: &str, limit: u32) -> Result<Vec<Delivery>> {
        self.get_webhook(owner, id).await?;
        let id = id.to_owned();
        self.with_read(move |conn| {
            deliveries(
                conn,
                &format!("{DELIVERY_COLUMNS} WHERE webhook_id = ?1 AND state = 'dead' ORDER BY seq LIMIT ?2"),
                params![id, limit.clamp(1, 1000)],
            )
        })
        .await
    }

    async fn replay(&self, owner: &str, id: &str, now: DateTime<Utc>) -> Result<u64> {
        self.get_webhook(owner, id).await?;
        let id = id.to_owned();
        self.with(move |conn| {
            conn.execute(
                "UPDATE webhook_deliveries SET state = 'pending', attempts = 0,
                 created_at = ?2, next_attempt_at = ?2 WHERE webhook_id = ?1 AND state = 'dead'",
                params![id, ts(now)],
            )
            .map(|n| n as u64)
            .map_err(db_error)
        })
        .await
    }
}

/// Deliveries due now: for each webhook and job, only the oldest undelivered one (so a
/// job's events arrive in order), and only if its time has come.
const DUE: &str = "SELECT d.id, d.webhook_id, d.event_id, d.type, d.job_id, d.state, d.attempts, \
     d.created_at, d.next_attempt_at, d.last_error, d.body FROM webhook_deliveries d \
     WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
       AND e.job_id = d.job_id AND e.state = 'pending' AND e.seq < d.seq) \
     ORDER BY d.next_attempt_at, d.seq LIMIT ?2";

impl SqliteJobStore {
    /// Turns the events written since the last call into deliveries, one per webhook of
    /// the event's owner that wants its type (and existed when it happened); the outbox
    /// cursor moves in the same transaction. Returns how many deliveries it queued.
    pub async fn dispatch_events(&self, now: DateTime<Utc>, batch: u32) -> Result<u64> {
        self.with(move |conn| {
            let tx = conn.savepoint().map_err(db_error)?;
            let after: i64 = tx
                .query_row(
                    "SELECT seq FROM outbox_cursors WHERE name = ?1",
                    params![DISPATCH_CURSOR],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_error)?
                .unwrap_or(0);
            let events = read_events(&tx, after as u64, batch)?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(0);
            };
            let mut queued = 0;
            for event in &events {
                let Some(owner) = &event.owner else {
                    continue;
                };
                let hooks = webhooks(
                    &tx,
                    &format!("{WEBHOOK_COLUMNS} WHERE owner = ?1 AND created_at <= ?2"),
                    params![owner, ts(event.at)],
                )?;
                for hook in hooks.iter().filter(|h| h.wants(&event.event_type)) {
                    queued += tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO webhook_deliveries
                             (id, webhook_id, event_id, type, job_id, state, attempts, created_at,
                              next_attempt_at, body)
                             VALUES (?1, ?2, ?1, ?3, ?4, 'pending', 0, ?5, ?5, ?6)",
                        )
                        .map_err(db_error)?
                        .execute(params![
                            event.id,
                            hook.id,
                            event.event_type,
                            event.job_id.as_str(),
                            ts(now),
                            event.json
                        ])
                        .map_err(db_error)? as u64;
                }
            }
            tx.execute(
                "INSERT INTO outbox_cursors (name, seq) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                params![DISPATCH_CURSOR, last as i64],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(queued)
        })
        .await
    }

    /// Deliveries due at `now` with their webhooks, at most `limit`.
    pub async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Webhook, Delivery)>> {
        self.with_read(move |conn| {
            let due = deliveries(conn, DUE, params![ts(now), limit])?;
            let mut out = Vec::with_capacity(due.len());
            for d in due {
                let hook = webhooks(
                    conn,
                    &format!("{WEBHOOK_COLUMNS} WHERE id = ?1"),
                    params![d.webhook_id],
                )?
                .pop();
                if let Some(hook) = hook {
                    out.push((hook, d));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Records an attempt's outcome.
    pub async fn record_attempt(
        &self,
        delivery: &Delivery,
        state: DeliveryState,
        next_attempt_at: DateTime<Utc>,
        error: Option<String>,
    ) -> Result<()> {
        let (webhook_id, id) = (delivery.webhook_id.clone(), delivery.id.clone());
        self.with(move |conn| {
            conn.execute(
                "UPDATE webhook_deliveries SET state = ?3, attempts = attempts + 1,
                 next_attempt_at = ?4, last_error = ?5 WHERE webhook_id = ?1 AND id = ?2",
                params![webhook_id, id, state.as_str(), ts(next_attempt_at), error],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    /// Every delivery of a webhook, in order (for tests and operators).
    pub async fn deliveries_of(&self, webhook_id: &str) -> Result<Vec<Delivery>> {
        let id = webhook_id.to_owned();
        self.with_read(move |conn| {
            deliveries(
                conn,
                &format!("{DELIVERY_COLUMNS} WHERE webhook_id = ?1 ORDER BY seq"),
                params![id],
            )
        })
        .await
    }
}
