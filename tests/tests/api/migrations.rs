//! Migrations: applied on an empty database, a no-op when run again, on both backends.

use anyhow::{Context, Result, ensure};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use metamorph_tests::{Backend, PgDatabase, Server, metamorph_command, on_both_backends};

const TABLES: &[&str] = &[
    "api_keys",
    "audit_events",
    "destinations",
    "feature_flags",
    "files",
    "jobs",
    "orgs",
    "refresh_tokens",
    "settings",
    "users",
];

#[derive(QueryableByName, PartialEq, Eq, Debug)]
struct SchemaLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// A textual description of every table, column and index, to compare before and after.
fn describe(backend: Backend, url: &str) -> Result<Vec<String>> {
    let lines: Vec<SchemaLine> = match backend {
        Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            let mut conn = SqliteConnection::establish(path)?;
            diesel::sql_query(
                "SELECT type || ' ' || name || ' ' || coalesce(sql, '') AS line FROM sqlite_master ORDER BY type, name",
            )
            .load(&mut conn)?
        }
        Backend::Postgres => {
            let mut conn = diesel::PgConnection::establish(url)?;
            diesel::sql_query(
                "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS line \
                 FROM information_schema.columns WHERE table_schema = 'public' \
                 UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' \
                 ORDER BY line",
            )
            .load(&mut conn)?
        }
    };
    Ok(lines.into_iter().map(|line| line.line).collect())
}

fn migrate(url: &str) -> Result<String> {
    let cwd = tempfile::tempdir()?;
    let output = metamorph_command(cwd.path())?
        .arg("migrate")
        .env("METAMORPH_DATABASE_URL", url)
        .output()?;
    ensure!(
        output.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// The versions of the migrations in the repository (`2026-11-23-000001_initial` is
/// `20261123000001`), in order.
fn shipped_versions() -> Result<Vec<String>> {
    let mut versions = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (version, _) = name.split_once('_')?;
            Some(version.replace('-', ""))
        })
        .collect::<Vec<_>>();
    versions.sort();
    Ok(versions)
}

on_both_backends!(
    migrations_apply_to_an_empty_database_and_running_them_again_changes_nothing,
    a_restarted_server_applies_no_migration_twice,
);

fn migrations_apply_to_an_empty_database_and_running_them_again_changes_nothing(
    backend: Backend,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pg;
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("empty.db").display()),
        Backend::Postgres => {
            pg = PgDatabase::create()?;
            pg.url().to_owned()
        }
    };
    let first = migrate(&url)?;
    let versions = shipped_versions()?;
    ensure!(
        first.contains(&format!(
            "applied {} migration(s): {}",
            versions.len(),
            versions.join(", ")
        )),
        "{first}"
    );
    let schema = describe(backend, &url)?;
    for table in TABLES {
        ensure!(
            schema.iter().any(|line| line.contains(table)),
            "table {table} missing: {schema:#?}"
        );
    }

    let second = migrate(&url)?;
    ensure!(
        second.contains("up to date, no migration to apply"),
        "{second}"
    );
    ensure!(
        describe(backend, &url)? == schema,
        "the second run changed the schema"
    );
    Ok(())
}

fn a_restarted_server_applies_no_migration_twice(backend: Backend) -> Result<()> {
    let first = Server::start(backend)?;
    let url = first.database_url().to_owned();
    let line = first.wait_for_log(|line| line["message"] == "database ready")?;
    ensure!(
        line["migrations_applied"] == shipped_versions()?.len(),
        "{line}"
    );
    // Keep the first server (and its database) alive while a second one starts on it.
    let second = Server::builder(backend).database_url(&url).start()?;
    let line = second.wait_for_log(|line| line["message"] == "database ready")?;
    ensure!(line["migrations_applied"] == 0, "{line}");
    ensure!(second.get("/api/health")?.status() == 200);
    drop(second);
    drop(first);
    Ok(())
}

#[test]
fn a_database_missing_a_table_the_code_needs_is_refused_at_start_up() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("broken.db");
    let url = format!("sqlite://{}", path.display());
    migrate(&url)?;
    let mut conn = SqliteConnection::establish(path.to_str().context("utf-8")?)?;
    diesel::sql_query("ALTER TABLE files DROP COLUMN origin").execute(&mut conn)?;
    drop(conn);

    let output = metamorph_command(dir.path())?
        .arg("migrate")
        .env("METAMORPH_DATABASE_URL", &url)
        .output()?;
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(
        !output.status.success(),
        "must refuse a schema without files.origin"
    );
    ensure!(stderr.contains("origin"), "says what is missing: {stderr}");
    Ok(())
}
