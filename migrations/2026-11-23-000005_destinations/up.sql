-- Outputs written to destinations: where each task's output went (JSON), besides or
-- instead of the service's storage.
ALTER TABLE job_tasks ADD COLUMN export TEXT;
