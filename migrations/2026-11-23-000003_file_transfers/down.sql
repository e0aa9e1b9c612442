ALTER TABLE files DROP COLUMN link_epoch;
ALTER TABLE files DROP COLUMN max_downloads;
ALTER TABLE files DROP COLUMN download_count;
ALTER TABLE files DROP COLUMN upload_started_at;
ALTER TABLE files DROP COLUMN declared_size;
