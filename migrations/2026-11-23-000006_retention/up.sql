-- Retention: an organisation's own policy (JSON: visibility -> duration or "forever"),
-- overriding the configured one; files' expiry is found by the sweeper through an index.
ALTER TABLE orgs ADD COLUMN retention TEXT;
CREATE INDEX files_expires_at ON files (expires_at);
