//! `GET /api/health`.

use std::time::Duration;

use anyhow::{Result, ensure};
use metamorph_tests::postgres as pg;
use metamorph_tests::{Backend, PG_BIN_VAR, PgDatabase, Server, header, on_both_backends};
use serde_json::Value;

on_both_backends!(health_is_200_and_reports_each_dependency_with_its_latency);

fn health_is_200_and_reports_each_dependency_with_its_latency(backend: Backend) -> Result<()> {
    let server = Server::start(backend)?;
    let response = server.get("/api/health")?;
    ensure!(response.status() == 200);
    ensure!(header(&response, "cache-control") == "no-store");
    let report: Value = response.json()?;
    ensure!(report["status"] == "ok", "{report}");
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    ensure!(
        report["checks"]["database"]["backend"] == expected,
        "{report}"
    );
    ensure!(report["checks"]["storage"]["backend"] == "fs", "{report}");
    for check in ["database", "storage"] {
        ensure!(report["checks"][check]["status"] == "ok", "{report}");
        ensure!(
            report["checks"][check]["latency_ms"]
                .as_f64()
                .is_some_and(|ms| ms >= 0.0),
            "{report}"
        );
    }
    ensure!(report["version"].as_str().is_some_and(|v| !v.is_empty()));
    Ok(())
}

fn expect_unavailable(server: &Server, failing: &str) -> Result<Value> {
    let response = server.get("/api/health")?;
    ensure!(
        response.status() == 503,
        "expected 503, got {}",
        response.status()
    );
    ensure!(header(&response, "retry-after") == "5");
    let report: Value = response.json()?;
    ensure!(report["status"] == "unavailable", "{report}");
    ensure!(
        report["checks"][failing]["status"] == "unavailable",
        "{report}"
    );
    ensure!(report["checks"][failing]["error"].is_string(), "{report}");
    Ok(report)
}

#[test]
fn health_is_503_while_the_sqlite_file_is_unreadable_and_200_once_restored() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    let path = server.data_dir().join("metamorph.db");
    ensure!(server.get("/api/health")?.status() == 200);

    // The path stops holding a database file (permission bits would not do: the tests may
    // run as root, and overwriting bytes would not either: in WAL mode SQLite reads the
    // newest pages from the -wal file).
    let aside = path.with_extension("aside");
    std::fs::rename(&path, &aside)?;
    std::fs::create_dir(&path)?;
    let report = expect_unavailable(&server, "database")?;
    ensure!(report["checks"]["storage"]["status"] == "ok", "{report}");
    std::fs::remove_dir(&path)?;
    std::fs::rename(&aside, &path)?;
    ensure!(
        server.get("/api/health")?.status() == 200,
        "recovers once the file is back"
    );

    // A deleted file is noticed too, and not silently recreated empty.
    let aside = path.with_extension("aside");
    std::fs::rename(&path, &aside)?;
    expect_unavailable(&server, "database")?;
    ensure!(
        !path.exists(),
        "the health check must not create an empty database"
    );
    std::fs::rename(&aside, &path)?;
    ensure!(server.get("/api/health")?.status() == 200);

    // The server keeps answering everything else meanwhile.
    ensure!(server.get("/metrics")?.status() == 200);
    Ok(())
}

#[test]
fn health_is_503_while_storage_is_gone() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    let storage = server.data_dir().join("storage");
    std::fs::remove_dir_all(&storage)?;
    std::fs::write(&storage, b"a file where the storage folder was")?;
    expect_unavailable(&server, "storage")?;
    std::fs::remove_file(&storage)?;
    std::fs::create_dir(&storage)?;
    ensure!(server.get("/api/health")?.status() == 200);
    Ok(())
}

#[test]
fn health_is_503_while_postgres_is_stopped_and_200_once_it_is_back() -> Result<()> {
    let bin = std::env::var_os(PG_BIN_VAR)
        .map(std::path::PathBuf::from)
        .or_else(pg::find_bin)
        .ok_or_else(|| anyhow::anyhow!("PostgreSQL is not installed; run `cargo xtask test`"))?;
    // A private server: stopping the shared one would fail every other test.
    let mut cluster = pg::PgCluster::start(&bin, pg::free_port()?)?;
    let database = PgDatabase::create_on(&cluster.url("postgres"))?;
    let server = Server::builder(Backend::Postgres)
        .database_url(database.url())
        .start()?;
    ensure!(server.get("/api/health")?.status() == 200);

    cluster.pause()?;
    let started = std::time::Instant::now();
    expect_unavailable(&server, "database")?;
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "the check is bounded in time"
    );
    ensure!(
        server.get("/openapi.json")?.status() == 200,
        "the rest keeps serving"
    );

    cluster.resume()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if server.get("/api/health")?.status() == 200 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "health did not recover after PostgreSQL came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
    drop(database);
    cluster.stop()?;
    Ok(())
}
