//! `GET /metrics`.

use anyhow::{Result, ensure};
use metamorph_tests::{Backend, Server, header};

/// The value of a sample line `name{labels} value`, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn requests_are_counted_by_route_template_and_status() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    server.get("/api/health")?;
    server.get("/api/health")?;
    server.get("/docs/swagger-ui.css")?;
    server.get("/docs/no-such-file.js")?;
    server.get("/random/probe/1")?;
    server.get("/random/probe/2")?;
    server.client().delete(server.url("/api/health")).send()?;

    let response = server.get("/metrics")?;
    ensure!(header(&response, "content-type").starts_with("text/plain; version=0.0.4"));
    let text = response.text()?;
    let count = |labels: &str| sample(&text, &format!("metamorph_http_requests_total{{{labels}}}"));
    ensure!(
        count(r#"method="GET",route="/api/health",status="200""#) == Some(2.0),
        "{text}"
    );
    ensure!(
        count(r#"method="GET",route="/docs/{*asset}",status="200""#) == Some(1.0),
        "{text}"
    );
    ensure!(
        count(r#"method="GET",route="/docs/{*asset}",status="404""#) == Some(1.0),
        "{text}"
    );
    ensure!(
        count(r#"method="GET",route="unmatched",status="404""#) == Some(2.0),
        "unknown paths share a label: {text}"
    );
    ensure!(
        count(r#"method="DELETE",route="/api/health",status="405""#) == Some(1.0),
        "{text}"
    );
    ensure!(
        !text.contains("/random/probe"),
        "concrete paths never become labels"
    );
    ensure!(
        sample(
            &text,
            r#"metamorph_http_request_duration_seconds_count{method="GET",route="/api/health",status="200"}"#
        ) == Some(2.0),
        "latency histogram: {text}"
    );
    for process_metric in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        ensure!(text.contains(process_metric), "{process_metric} missing");
    }
    ensure!(
        text.contains("metamorph_db_pool_connections{state=\"idle\"}"),
        "{text}"
    );
    Ok(())
}
