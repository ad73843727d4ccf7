-- The outbox: one event per job status change, written in the transaction that makes the
-- change, read in `seq` order by the webhook dispatcher and `docpipe events tail`.
CREATE TABLE outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type     TEXT NOT NULL,
    job_id   TEXT NOT NULL,
    owner    TEXT,
    at       TEXT NOT NULL,
    event    TEXT NOT NULL
) STRICT;
CREATE INDEX outbox_by_at ON outbox (at);

-- How far each reader of the outbox got.
CREATE TABLE outbox_cursors (
    name TEXT PRIMARY KEY NOT NULL,
    seq  INTEGER NOT NULL
) STRICT;

-- A tenant's webhook subscriptions.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY NOT NULL,
    owner       TEXT NOT NULL,
    url         TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX webhooks_by_owner ON webhooks (owner, created_at);

-- One event on its way to one webhook; `seq` keeps the outbox's order.
CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    type            TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    body            TEXT NOT NULL,
    UNIQUE (webhook_id, event_id)
) STRICT;
CREATE INDEX deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX deliveries_by_job ON webhook_deliveries (webhook_id, job_id, state, seq);
