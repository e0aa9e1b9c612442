//! SIGINT and SIGTERM: stop accepting, finish what is in flight, exit 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Result, ensure};
use metamorph_tests::{Backend, Server};

fn drains_an_in_flight_request_then_exits_zero(signal: &str) -> Result<()> {
    let mut server = Server::start(Backend::Sqlite)?;
    // A request whose headers are still arriving when the signal comes is in flight.
    let mut stream = TcpStream::connect(server.address())?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /api/health HTTP/1.1\r\nHost: test\r\nX-Request-Id: in-flight\r\n")?;
    std::thread::sleep(Duration::from_millis(200));
    server.signal(signal)?;
    server.wait_for_log(|line| line["message"] == "shutting down: draining in-flight requests")?;

    ensure!(
        TcpStream::connect(server.address()).is_err(),
        "no new connections once shutting down"
    );
    stream.write_all(b"\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    ensure!(
        answer.starts_with("HTTP/1.1 200 OK"),
        "the in-flight request was answered: {answer}"
    );
    ensure!(answer.contains("x-request-id: in-flight"), "{answer}");

    let status = server.wait_exit(Duration::from_secs(10))?;
    ensure!(status.code() == Some(0), "exit status {status}");
    server.wait_for_log(|line| line["message"] == "all requests finished; stopped")?;
    Ok(())
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() -> Result<()> {
    drains_an_in_flight_request_then_exits_zero("TERM")
}

#[test]
fn sigint_drains_in_flight_requests_then_exits_zero() -> Result<()> {
    drains_an_in_flight_request_then_exits_zero("INT")
}

#[test]
fn an_idle_server_stops_at_once() -> Result<()> {
    let mut server = Server::start(Backend::Sqlite)?;
    let _idle_keep_alive = TcpStream::connect(server.address())?;
    let started = std::time::Instant::now();
    server.signal("TERM")?;
    let status = server.wait_exit(Duration::from_secs(10))?;
    ensure!(status.success(), "{status}");
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "idle connections do not hold up shutdown"
    );
    Ok(())
}
