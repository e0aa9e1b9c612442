//! The integration suite: one binary (so it links once), one module per area. Every test
//! starts the real `metamorph` binary and talks HTTP to it; tests that touch the database
//! run once on SQLite and once on PostgreSQL.

mod api;
