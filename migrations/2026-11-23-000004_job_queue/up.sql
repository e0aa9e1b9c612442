-- The work queue of conversion jobs, their callbacks and the conversion cache.

-- When a running job must have ended (its `job.max_process_time`).
ALTER TABLE jobs ADD COLUMN deadline_at TIMESTAMP;

-- One unit of work: fetching a remote input (`import`), or converting one input to one
-- target (`convert`). Workers claim rows with a lease they renew while they work.
CREATE TABLE job_tasks (
    id               TEXT PRIMARY KEY NOT NULL,
    job_id           TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    org_id           TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('import', 'convert')),
    input_index      INTEGER NOT NULL,
    conversion_index INTEGER,                   -- NULL for an import
    input_file_id    TEXT,                      -- the file read (an import fills it)
    target           TEXT,                      -- format made, for a conversion
    pair             TEXT NOT NULL DEFAULT '',  -- plugin(s) and formats, once planned
    status           TEXT NOT NULL
                     CHECK (status IN ('waiting', 'queued', 'processing', 'completed', 'failed', 'canceled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMP,
    output_file_id   TEXT REFERENCES files (id) ON DELETE SET NULL,
    cached           BOOLEAN NOT NULL DEFAULT FALSE,
    error_code       TEXT,
    error_message    TEXT,
    created_at       TIMESTAMP NOT NULL,
    queued_at        TIMESTAMP,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP
);
CREATE INDEX job_tasks_queue ON job_tasks (status, queued_at);
CREATE INDEX job_tasks_job ON job_tasks (job_id);
CREATE INDEX job_tasks_input ON job_tasks (input_file_id, status);

-- Outputs by what made them: input sha256, plugins and versions, target, options.
CREATE TABLE conversion_cache (
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    cache_key  TEXT NOT NULL,
    file_id    TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, cache_key)
);

-- Callback signing secrets of an organisation, sealed; two are valid while one rotates.
CREATE TABLE webhook_secrets (
    id         TEXT PRIMARY KEY NOT NULL,
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP                         -- set when a newer secret replaces it
);
CREATE INDEX webhook_secrets_org ON webhook_secrets (org_id, created_at);

-- Callback messages, sent in order per job and retried with back-off.
CREATE TABLE callback_deliveries (
    id               TEXT PRIMARY KEY NOT NULL,  -- the `webhook-id`
    job_id           TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    org_id           TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'gone')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    attempt_log      TEXT NOT NULL DEFAULT '[]',  -- JSON: each attempt's time, status, error
    next_attempt_at  TIMESTAMP,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX callback_deliveries_due ON callback_deliveries (state, next_attempt_at);
CREATE INDEX callback_deliveries_job ON callback_deliveries (job_id, created_at);
