//! Problem documents and request ids.

use anyhow::{Result, ensure};
use metamorph_tests::{Backend, Server, assert_problem, header};

#[test]
fn an_unknown_route_is_a_404_problem_document() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    let problem = assert_problem(server.get("/api/no-such-thing")?, 404, "not_found")?;
    ensure!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("/api/no-such-thing"),
        "{problem}"
    );
    assert_problem(server.get("/nothing/here")?, 404, "not_found")?;
    assert_problem(server.get("/api/health/")?, 404, "not_found")?;
    Ok(())
}

#[test]
fn a_wrong_method_is_a_405_problem_document_with_allow() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    let response = server.client().delete(server.url("/api/health")).send()?;
    ensure!(
        header(&response, "allow") == "GET, HEAD, OPTIONS",
        "{}",
        header(&response, "allow")
    );
    assert_problem(response, 405, "method_not_allowed")?;

    let response = server
        .client()
        .post(server.url("/openapi.json"))
        .body("{}")
        .send()?;
    assert_problem(response, 405, "method_not_allowed")?;

    let options = server
        .client()
        .request(reqwest::Method::OPTIONS, server.url("/api/health"))
        .send()?;
    ensure!(options.status() == 204 && header(&options, "allow") == "GET, HEAD, OPTIONS");
    let head = server.client().head(server.url("/api/health")).send()?;
    ensure!(
        head.status() == 200,
        "HEAD is served by GET: {}",
        head.status()
    );
    Ok(())
}

#[test]
fn the_clients_request_id_is_echoed_and_an_insane_one_replaced() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    let response = server
        .client()
        .get(server.url("/api/health"))
        .header("X-Request-Id", "trace-42.a:b")
        .send()?;
    ensure!(header(&response, "x-request-id") == "trace-42.a:b");

    let response = server
        .client()
        .get(server.url("/nope"))
        .header("X-Request-Id", "abc-123")
        .send()?;
    let problem = assert_problem(response, 404, "not_found")?;
    ensure!(problem["request_id"] == "abc-123", "{problem}");

    let response = server
        .client()
        .get(server.url("/api/health"))
        .header("X-Request-Id", "bad id <script>")
        .send()?;
    let id = header(&response, "x-request-id");
    ensure!(!id.is_empty() && id != "bad id <script>", "{id}");

    let first = header(&server.get("/api/health")?, "x-request-id");
    let second = header(&server.get("/api/health")?, "x-request-id");
    ensure!(
        !first.is_empty() && first != second,
        "generated ids are unique: {first} {second}"
    );
    Ok(())
}

#[test]
fn every_request_is_logged_once_with_id_route_status_and_duration() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    server
        .client()
        .get(server.url("/api/health"))
        .header("X-Request-Id", "log-me-1")
        .send()?;
    server
        .client()
        .delete(server.url("/api/health"))
        .header("X-Request-Id", "log-me-2")
        .send()?;
    let line = server
        .wait_for_log(|line| line["request_id"] == "log-me-2" && line["message"] == "request")?;
    ensure!(
        line["route"] == "/api/health" && line["status"] == 405 && line["method"] == "DELETE",
        "{line}"
    );
    ensure!(line["duration_ms"].as_f64().is_some(), "{line}");
    let count = server
        .logs()
        .iter()
        .filter(|line| line["message"] == "request" && line["request_id"] == "log-me-1")
        .count();
    ensure!(count == 1, "one line per request, got {count}");
    Ok(())
}

#[test]
fn a_flood_of_garbage_requests_leaves_the_server_serving() -> Result<()> {
    use std::io::{Read, Write};
    let server = Server::start(Backend::Sqlite)?;
    let garbage: &[&[u8]] = &[
        b"\x00\x01\x02\r\n\r\n",
        b"GET /api/health HTTP/9.9\r\n\r\n",
        b"GET /%%%%/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nabc",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ];
    for request in garbage {
        let mut stream = std::net::TcpStream::connect(server.address())?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        stream.write_all(request)?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
    let health = server.get("/api/health")?;
    ensure!(health.status() == 200, "{}", health.status());
    Ok(())
}
