-- The durable journal of docpipe-asl's DurableRunner: for each execution, the records
-- needed to replay it after a crash (Started, each consumed event, Finished).
CREATE TABLE asl_journal_executions (
    name     TEXT PRIMARY KEY NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0,
    records  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX asl_journal_unfinished ON asl_journal_executions (name) WHERE finished = 0;
CREATE TABLE asl_journal_records (
    name   TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (name, seq)
) STRICT, WITHOUT ROWID;
