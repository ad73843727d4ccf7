-- Objects up to the inline limit (documents of ordinary size, OCR text, results) live in
-- the database rather than as one file each: a stored object is a row written in one
-- transaction, not a folder, a temporary file and a rename. Larger objects stay files.
-- `folder` is the key's first two segments (`results/job_...`), the unit retention
-- sweeps; `modified_at` (unix seconds) dates folders that are not a job's. The bytes are
-- a row of their own, so an object moves to another key without being written again.
CREATE TABLE object_data (
    id INTEGER PRIMARY KEY,
    bytes BLOB NOT NULL
);
CREATE TABLE objects (
    key TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    size INTEGER NOT NULL,
    data INTEGER NOT NULL REFERENCES object_data (id),
    modified_at INTEGER NOT NULL
);
CREATE INDEX objects_by_folder ON objects (folder);
