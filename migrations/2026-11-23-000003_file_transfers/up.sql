-- Uploads, downloads and links of stored files.
ALTER TABLE files ADD COLUMN declared_size BIGINT;                -- size announced at upload init
ALTER TABLE files ADD COLUMN upload_started_at TIMESTAMP;         -- set while a body is streaming in
ALTER TABLE files ADD COLUMN download_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN max_downloads BIGINT;                -- NULL: unlimited
ALTER TABLE files ADD COLUMN link_epoch INTEGER NOT NULL DEFAULT 0; -- bumped to revoke every link
