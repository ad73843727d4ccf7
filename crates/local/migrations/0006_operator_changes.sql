-- What a person did (review, retry) with a status change: JSON, NULL for the pipeline's.
ALTER TABLE job_history ADD COLUMN operator TEXT;
