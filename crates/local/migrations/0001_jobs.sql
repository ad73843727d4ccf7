-- Jobs: the full record as JSON in `data`, with the columns that queries filter on.
CREATE TABLE jobs (
    id         TEXT PRIMARY KEY NOT NULL,
    status     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    owner      TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    data       TEXT NOT NULL
) STRICT;
CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_by_owner ON jobs (owner, created_at DESC, id DESC);

-- Every status change, in order.
CREATE TABLE job_history (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    seq    INTEGER NOT NULL,
    status TEXT NOT NULL,
    at     TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) STRICT;
