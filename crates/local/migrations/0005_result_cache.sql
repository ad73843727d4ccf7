-- Content-hash dedupe: a finished job's verification by content key
-- (sha256 : kind : profile hash), reused by later jobs with the same content until it expires.
CREATE TABLE result_cache (
    key          TEXT PRIMARY KEY NOT NULL,
    job_id       TEXT NOT NULL,
    verification TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) STRICT;
