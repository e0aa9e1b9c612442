-- The tables every part of Metamorph starts from, in SQL that SQLite and PostgreSQL read
-- alike. Identifiers are UUIDs stored as text, times are UTC timestamps and JSON documents
-- are text, in both backends, so one diesel schema serves both.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'standard' CHECK (kind IN ('standard', 'anonymous')),
    quota_bytes BIGINT,                       -- NULL: the configured default
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP                     -- anonymous orgs are deleted after this
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email         TEXT UNIQUE,                -- NULL for anonymous users
    display_name  TEXT,
    password_hash TEXT,                       -- argon2 PHC string; NULL: cannot log in
    role          TEXT NOT NULL CHECK (role IN ('superuser', 'admin', 'member', 'demo', 'anonymous')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP
);
CREATE INDEX users_org_id ON users (org_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    org_id       TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,        -- public part of the key, shown in lists
    secret_hash  TEXT NOT NULL,               -- the secret is never stored
    scopes       TEXT NOT NULL DEFAULT '[]',  -- JSON array of scope names
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);
CREATE INDEX api_keys_org_id ON api_keys (org_id);

CREATE TABLE files (
    id           TEXT PRIMARY KEY NOT NULL,
    org_id       TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    owner_id     TEXT REFERENCES users (id) ON DELETE SET NULL,
    filename     TEXT NOT NULL,
    content_type TEXT,
    format       TEXT,                        -- canonical format name, sniffed from the bytes
    size_bytes   BIGINT,
    sha256       TEXT,
    storage_key  TEXT,                        -- never shown to clients
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed', 'deleted')),
    visibility   TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'org', 'public', 'restricted')),
    origin       TEXT NOT NULL DEFAULT 'upload' CHECK (origin IN ('upload', 'remote', 'cloud', 'output')),
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP
);
CREATE INDEX files_org_created ON files (org_id, created_at);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY NOT NULL,
    org_id           TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_by       TEXT REFERENCES users (id) ON DELETE SET NULL,
    status           TEXT NOT NULL DEFAULT 'created'
                     CHECK (status IN ('created', 'queued', 'processing', 'completed', 'failed', 'canceled')),
    status_info      TEXT,
    spec             TEXT NOT NULL DEFAULT '{}', -- JSON: inputs, conversions, limits
    tag              TEXT,
    callback_url     TEXT,
    idempotency_key  TEXT,
    request_hash     TEXT,                     -- of the creating request, for Idempotency-Key
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,                     -- worker holding the job
    lease_expires_at TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    queued_at        TIMESTAMP,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP
);
CREATE INDEX jobs_org_created ON jobs (org_id, created_at);
CREATE INDEX jobs_queue ON jobs (status, queued_at);
CREATE UNIQUE INDEX jobs_org_idempotency_key ON jobs (org_id, idempotency_key);

CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY NOT NULL,  -- UUID v7: ordered by time
    org_id        TEXT,                       -- no foreign key: the trail outlives its org
    actor_user_id TEXT,
    actor_kind    TEXT NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'anonymous', 'gateway', 'system')),
    action        TEXT NOT NULL,
    resource      TEXT NOT NULL,
    resource_id   TEXT,
    request_id    TEXT,
    outcome       TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    detail        TEXT,                       -- JSON
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX audit_events_org_created ON audit_events (org_id, created_at);
