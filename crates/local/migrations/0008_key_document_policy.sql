-- Whether a key's jobs drop their uploaded document as soon as they are final.
ALTER TABLE api_keys ADD COLUMN delete_document_when_final INTEGER NOT NULL DEFAULT 0;
