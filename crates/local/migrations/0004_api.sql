-- API keys: only the sha256 of each secret is stored.
CREATE TABLE api_keys (
    name                  TEXT PRIMARY KEY NOT NULL,
    key_hash              TEXT NOT NULL UNIQUE,
    active                INTEGER NOT NULL,
    rate_limit_per_minute INTEGER NOT NULL,
    created_at            TEXT NOT NULL,
    last_used_at          TEXT,
    request_count         INTEGER NOT NULL DEFAULT 0
) STRICT;

-- What each Idempotency-Key produced, per key owner.
CREATE TABLE idempotency (
    owner        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (owner, key)
) STRICT;
