-- Refresh tokens, and the tables of the settings, feature-flags and destinations resources.

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   TEXT NOT NULL,               -- every rotation of one login shares it
    token_hash  TEXT NOT NULL UNIQUE,        -- SHA-256 of the token; the token is never stored
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP,                   -- set when rotated: using it again is reuse
    revoked_at  TIMESTAMP                    -- set on the whole family when reuse is detected
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE settings (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,               -- JSON
    description TEXT,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX settings_org_key ON settings (org_id, key);

CREATE TABLE feature_flags (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT FALSE,
    description TEXT,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX feature_flags_org_name ON feature_flags (org_id, name);

CREATE TABLE destinations (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,               -- s3, gcs, azblob, ftp, sftp, gdrive, dropbox, onedrive
    parameters  TEXT NOT NULL DEFAULT '{}',  -- JSON
    credentials TEXT,                        -- encrypted JSON; never returned
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX destinations_org_name ON destinations (org_id, name);

CREATE INDEX users_org_created ON users (org_id, id);
CREATE INDEX audit_events_org_id ON audit_events (org_id, id);
