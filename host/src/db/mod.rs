//! The database: one connection pool over SQLite or PostgreSQL, embedded migrations for each,
//! and a health check.
//!
//! Queries are written once against [`DbConnection`], a diesel `MultiConnection` that speaks
//! to either backend; where SQL must differ, match on the variant to reach the concrete
//! connection. Diesel is synchronous, so async code runs queries through [`Db::run`], which
//! moves them to the blocking thread pool.
//!
//! SQLite connections are opened with WAL journaling (readers never block the writer),
//! foreign keys enforced, a busy timeout (writers wait for the lock instead of failing) and
//! `synchronous = NORMAL` (durable across application crashes; the safe setting with WAL).

pub mod schema;

use std::path::Path;
use std::time::{Duration, Instant};

use diesel::QueryDsl;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, Pool, R2D2Connection};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::{DatabaseConfig, DatabaseUrl};
use crate::error::{ApiError, ErrorCode};

/// The migrations (portable SQL, applied to either backend), compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Key of the PostgreSQL advisory lock held while migrating, so that several instances
/// starting at once against one database apply each migration exactly once.
const MIGRATION_LOCK_KEY: i64 = 0x6d65_7461_6d6f_7270; // "metamorp"

/// A connection to whichever database is configured.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL.
    Postgresql(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time (the database is down or the pool exhausted).
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::PoolError),
    /// A connection could not be opened.
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The blocking task running a query panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Pool(_) | DbError::Connect(_) => {
                ApiError::unavailable("the database is unreachable; retry shortly", 5)
                    .with_source(error)
            }
            DbError::Query(diesel::result::Error::NotFound) => {
                ApiError::new(ErrorCode::NotFound, "no such resource")
            }
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {
                ApiError::new(ErrorCode::Conflict, "one like it already exists").with_source(error)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        DbError::from(error).into()
    }
}

/// Runs `work` in a transaction that will write. On SQLite it takes the write lock before
/// its first read: a transaction that read first and then writes fails at once with
/// "database is locked" when another connection wrote in between (WAL snapshots cannot be
/// upgraded), instead of waiting its turn. PostgreSQL needs nothing of the kind.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::Connection;
    conn.transaction(|conn| {
        if let DbConnection::Sqlite(sqlite) = conn {
            // A write statement, even one that changes nothing, takes the lock (waiting
            // up to the busy timeout for it).
            sqlite.batch_execute("UPDATE orgs SET id = id WHERE 0 = 1")?;
        }
        work(conn)
    })
}

/// The database handle shared by the whole service. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    url: DatabaseUrl,
}

impl Db {
    /// Opens the pool. For SQLite, creates the database file's folder if needed. Connects
    /// once before returning, so a database that is unreachable at start-up is reported at
    /// once. Blocking.
    pub fn open(config: &DatabaseConfig) -> Result<Self, DbError> {
        if let DatabaseUrl::Sqlite(path) = &config.url
            && let Some(parent) = path.parent()
        {
            std::fs::create_dir_all(parent).map_err(|error| {
                DbError::Connect(diesel::ConnectionError::BadConnection(format!(
                    "cannot create the folder of `{}`: {error}",
                    path.display()
                )))
            })?;
        }
        let manager = Manager {
            url: config.url.clone(),
            busy_timeout: config.busy_timeout,
        };
        // Connect once now: a wrong URL or a down server fails start-up with the database's
        // own message instead of a pool timeout later.
        drop(manager.connect().map_err(|error| match error {
            r2d2::Error::ConnectionError(error) => DbError::Connect(error),
            r2d2::Error::QueryError(error) => DbError::Query(error),
        })?);
        let pool = Pool::builder()
            .max_size(config.max_connections)
            .min_idle(Some(1))
            .connection_timeout(config.connect_timeout)
            .error_handler(Box::new(TracingErrorHandler))
            .build_unchecked(manager);
        Ok(Self {
            pool,
            url: config.url.clone(),
        })
    }

    /// Which database this is.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Applies every pending migration and returns the versions applied (empty if the
    /// database was up to date), then checks that the schema the code expects is there.
    /// Blocking.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.pool.get()?;
        let applied = run_migrations(&mut conn)?;
        schema::verify(&mut conn)?;
        Ok(applied)
    }

    /// A pooled connection, for blocking code (commands, start-up).
    pub fn connection(
        &self,
    ) -> Result<r2d2::PooledConnection<impl ManageConnection<Connection = DbConnection>>, DbError>
    {
        Ok(self.pool.get()?)
    }

    /// Runs `query` on a pooled connection on the blocking thread pool.
    pub async fn run<T, E, F>(&self, query: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            query(&mut conn)
        })
        .await
        .map_err(DbError::from)?
    }

    /// Checks that the database answers within `timeout`; returns how long it took.
    ///
    /// For SQLite this also opens the file afresh (read-write, never creating it) and reads
    /// the migrations table: pooled connections keep working on a file that was deleted or
    /// replaced, and this is how such a file is noticed.
    pub async fn check(&self, timeout: Duration) -> Result<Duration, DbError> {
        let pool = self.pool.clone();
        let url = self.url.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut conn = pool.get_timeout(timeout)?;
            conn.batch_execute("SELECT 1")?;
            drop(conn);
            if let DatabaseUrl::Sqlite(path) = &url {
                let mut fresh = SqliteConnection::establish(&sqlite_uri(path, "rw"))?;
                fresh.batch_execute("SELECT 1 FROM __diesel_schema_migrations LIMIT 1")?;
            }
            Ok(started.elapsed())
        })
        .await?
    }

    /// Connections open in the pool: `(idle, in_use)`.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (
            state.idle_connections,
            state.connections.saturating_sub(state.idle_connections),
        )
    }
}

/// The current time as stored: UTC, to the microsecond (what both backends keep).
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::microseconds(1)).unwrap_or(now)
}

/// Serialises a stored time as RFC 3339 in UTC (`2026-11-23T10:00:00.123456Z`).
pub fn serialize_time<S: serde::Serializer>(
    time: &chrono::NaiveDateTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&time.and_utc(), serializer)
}

/// Like [`serialize_time`], for optional times.
pub fn serialize_optional_time<S: serde::Serializer>(
    time: &Option<chrono::NaiveDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&time.map(|time| time.and_utc()), serializer)
}

/// Applies pending migrations on one connection; the versions applied, oldest first.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    let applied = |versions: Vec<diesel::migration::MigrationVersion<'_>>| {
        versions.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    let result = match conn {
        DbConnection::Sqlite(conn) => conn.run_pending_migrations(MIGRATIONS).map(applied),
        DbConnection::Postgresql(conn) => {
            diesel::select(pg_advisory_lock(MIGRATION_LOCK_KEY)).execute(conn)?;
            let result = conn.run_pending_migrations(MIGRATIONS).map(applied);
            diesel::select(pg_advisory_unlock(MIGRATION_LOCK_KEY)).execute(conn)?;
            result
        }
    };
    result.map_err(|error| DbError::Migration(error.to_string()))
}

diesel::define_sql_function! {
    /// Takes a session-level PostgreSQL advisory lock, waiting for it.
    fn pg_advisory_lock(key: diesel::sql_types::BigInt);
}
diesel::define_sql_function! {
    /// Releases a session-level PostgreSQL advisory lock.
    fn pg_advisory_unlock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// An SQLite URI for `path` opened in `mode` (`rw`, `rwc`, `ro`).
fn sqlite_uri(path: &Path, mode: &str) -> String {
    let mut escaped = String::new();
    for ch in path.to_string_lossy().chars() {
        match ch {
            '%' => escaped.push_str("%25"),
            '?' => escaped.push_str("%3F"),
            '#' => escaped.push_str("%23"),
            other => escaped.push(other),
        }
    }
    format!("file:{escaped}?mode={mode}")
}

/// Opens connections of the configured backend (diesel's own `MultiConnection::establish`
/// would guess the backend from the URL) and sets SQLite's per-connection pragmas.
struct Manager {
    url: DatabaseUrl,
    busy_timeout: Duration,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&sqlite_uri(path, "rwc"))
                    .map_err(r2d2::Error::ConnectionError)?;
                let busy_ms = self.busy_timeout.as_millis();
                // busy_timeout first: switching to WAL takes a lock that another new
                // connection may hold for a moment.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => PgConnection::establish(&with_connect_timeout(url))
                .map(DbConnection::Postgresql)
                .map_err(r2d2::Error::ConnectionError),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Adds libpq's `connect_timeout` (seconds) unless the URL sets one, so that an unreachable
/// server fails a connection attempt instead of hanging on TCP retries.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout=5")
}

/// Sends the pool's connection errors to the log.
#[derive(Debug)]
struct TracingErrorHandler;

impl r2d2::HandleError<r2d2::Error> for TracingErrorHandler {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::warn!(%error, "database connection failed");
    }
}

/// Number of migrations recorded as applied (for `metamorph migrate` output).
pub fn applied_migration_count(conn: &mut DbConnection) -> Result<i64, DbError> {
    diesel::table! {
        __diesel_schema_migrations (version) {
            version -> Text,
            run_on -> Timestamp,
        }
    }
    Ok(__diesel_schema_migrations::table.count().get_result(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_config(path: &Path) -> DatabaseConfig {
        DatabaseConfig {
            url: DatabaseUrl::Sqlite(path.to_path_buf()),
            max_connections: 2,
            connect_timeout: Duration::from_secs(2),
            busy_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn migrations_apply_once_and_enable_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&sqlite_config(&dir.path().join("nested/m.db"))).unwrap();
        let applied = db.migrate().unwrap();
        assert!(!applied.is_empty());
        assert!(
            db.migrate().unwrap().is_empty(),
            "a second run must apply nothing"
        );

        let mut conn = db.pool.get().unwrap();
        assert_eq!(
            applied_migration_count(&mut conn).unwrap(),
            applied.len() as i64
        );
        let DbConnection::Sqlite(sqlite) = &mut *conn else {
            panic!("sqlite expected")
        };
        #[derive(diesel::QueryableByName)]
        struct Mode {
            #[diesel(sql_type = diesel::sql_types::Text)]
            journal_mode: String,
        }
        let mode: Mode = diesel::sql_query("PRAGMA journal_mode")
            .get_result(sqlite)
            .unwrap();
        assert_eq!(mode.journal_mode, "wal");
        #[derive(diesel::QueryableByName)]
        struct Keys {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            foreign_keys: i32,
        }
        let keys: Keys = diesel::sql_query("PRAGMA foreign_keys")
            .get_result(sqlite)
            .unwrap();
        assert_eq!(keys.foreign_keys, 1);
    }

    #[tokio::test]
    async fn the_health_check_notices_a_deleted_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let db = Db::open(&sqlite_config(&path)).unwrap();
        db.migrate().unwrap();
        db.check(Duration::from_secs(1)).await.unwrap();

        std::fs::rename(&path, dir.path().join("moved.db")).unwrap();
        assert!(db.check(Duration::from_secs(1)).await.is_err());
        assert!(
            !path.exists(),
            "the check must not create a new, empty database"
        );
    }

    #[test]
    fn sqlite_uris_escape_characters_that_would_end_the_path() {
        assert_eq!(
            sqlite_uri(Path::new("/a?b#c%d"), "rw"),
            "file:/a%3Fb%23c%25d?mode=rw"
        );
    }

    #[test]
    fn postgres_urls_get_a_connect_timeout_unless_they_have_one() {
        assert_eq!(
            with_connect_timeout("postgres://h/d"),
            "postgres://h/d?connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/d?sslmode=require"),
            "postgres://h/d?sslmode=require&connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/d?connect_timeout=1"),
            "postgres://h/d?connect_timeout=1"
        );
    }
}
