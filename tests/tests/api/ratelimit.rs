//! Rate limits: 429 at the configured rate, with the headers that say when to retry, and
//! the quota back once the window has passed.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use metamorph_tests::{
    Auth, Backend, Server, USER_PASSWORD, assert_problem, header, on_both_backends,
};
use serde_json::json;

on_both_backends!(requests_over_the_quota_are_429_until_the_window_passes);

fn requests_over_the_quota_are_429_until_the_window_passes(backend: Backend) -> Result<()> {
    let server = Server::builder(backend)
        .env("METAMORPH_RATE_LIMITS__MEMBER__READS", "5/3s")
        .env("METAMORPH_RATE_LIMITS__UNAUTHENTICATED__WRITES", "5/1m")
        .start()?;
    server.create_user("member@acme.test", "member", "acme")?;
    server.create_user("other@acme.test", "member", "acme")?;
    let member = Auth::Bearer(server.login("member@acme.test", USER_PASSWORD)?);
    let other = Auth::Bearer(server.login("other@acme.test", USER_PASSWORD)?);

    let started = Instant::now();
    for remaining in (0..5).rev() {
        let response = server.call("GET", "/api/files", &member, None)?;
        ensure!(
            response.status() == 200,
            "request within the quota: {}",
            response.status()
        );
        ensure!(header(&response, "ratelimit-limit") == "5");
        ensure!(
            header(&response, "ratelimit-remaining") == remaining.to_string(),
            "remaining {}",
            header(&response, "ratelimit-remaining")
        );
    }
    let refused = server.call("GET", "/api/files", &member, None)?;
    let retry_after: u64 = header(&refused, "retry-after").parse()?;
    ensure!((1..=3).contains(&retry_after), "Retry-After {retry_after}");
    ensure!(
        header(&refused, "ratelimit-remaining") == "0"
            && header(&refused, "ratelimit-limit") == "5"
    );
    let problem = assert_problem(refused, 429, "rate_limited")?;
    ensure!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("5 read requests per 3s"),
        "{problem}"
    );
    ensure!(
        started.elapsed() < Duration::from_millis(600),
        "the burst was not sent fast enough to test the limit"
    );

    // Another identity has its own quota; writes have their own class.
    ensure!(server.call("GET", "/api/files", &other, None)?.status() == 200);
    ensure!(
        server
            .call(
                "POST",
                "/api/files",
                &member,
                Some(json!({"filename": "a"}))
            )?
            .status()
            == 201
    );

    std::thread::sleep(Duration::from_millis(3100));
    for _ in 0..5 {
        ensure!(
            server.call("GET", "/api/files", &member, None)?.status() == 200,
            "the whole quota is back after the window"
        );
    }

    // Without credentials the client address is the key: sign-in attempts are throttled
    // (the two sign-ins above used 2 of this address's 5).
    for _ in 0..3 {
        let attempt = server.call(
            "POST",
            "/api/auth/login",
            &Auth::None,
            Some(json!({"email": "x@y.z", "password": "guess guess"})),
        )?;
        ensure!(attempt.status() == 401);
    }
    assert_problem(
        server.call(
            "POST",
            "/api/auth/login",
            &Auth::None,
            Some(json!({"email": "x@y.z", "password": "guess guess"})),
        )?,
        429,
        "rate_limited",
    )?;
    // Health, metrics and documentation are never limited.
    for _ in 0..10 {
        ensure!(server.get("/api/health")?.status() == 200);
    }
    Ok(())
}
