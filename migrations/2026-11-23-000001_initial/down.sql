DROP TABLE audit_events;
DROP TABLE jobs;
DROP TABLE files;
DROP TABLE api_keys;
DROP TABLE users;
DROP TABLE orgs;
