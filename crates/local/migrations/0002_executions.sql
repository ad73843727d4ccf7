-- State-machine executions: one per job (execution name = job id), with the event history
-- as recorded by the interpreter.
CREATE TABLE executions (
    name       TEXT PRIMARY KEY NOT NULL,
    job_id     TEXT,
    status     TEXT NOT NULL,
    started_at TEXT NOT NULL,
    stopped_at TEXT,
    input      TEXT NOT NULL,
    output     TEXT,
    error      TEXT,
    cause      TEXT,
    history    TEXT NOT NULL
) STRICT;
CREATE INDEX executions_by_job ON executions (job_id);
