DROP INDEX audit_events_org_id;
DROP INDEX users_org_created;
DROP TABLE destinations;
DROP TABLE feature_flags;
DROP TABLE settings;
DROP TABLE refresh_tokens;
