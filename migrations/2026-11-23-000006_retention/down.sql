DROP INDEX files_expires_at;
ALTER TABLE orgs DROP COLUMN retention;
