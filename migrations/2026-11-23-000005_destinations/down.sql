ALTER TABLE job_tasks DROP COLUMN export;
