DROP TABLE callback_deliveries;
DROP TABLE webhook_secrets;
DROP TABLE conversion_cache;
DROP TABLE job_tasks;
ALTER TABLE jobs DROP COLUMN deadline_at;
