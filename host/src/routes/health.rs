//! `GET /api/health`: whether the database and storage are reachable, and how fast.
//!
//! | Method | Path          | Success | Failure |
//! |--------|---------------|---------|---------|
//! | GET    | `/api/health` | 200 + [`HealthReport`] | 503 + [`HealthReport`] |

use std::time::Duration;

use http::StatusCode;
use http::header::{CACHE_CONTROL, HeaderValue, RETRY_AFTER};
use schemars::JsonSchema;
use serde::Serialize;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, with_state};
use crate::app::AppState;

/// How long each check may take before its dependency counts as unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    vec![
        Endpoint::get("/api/health", "getHealth")
            .summary(
                "ops",
                "Reports whether the database and storage are reachable",
            )
            .description(
                "Queries the database and writes, reads back and deletes a probe object in \
                 storage, each within 3 seconds. Answers 200 when both work and 503 (with \
                 `Retry-After`) when either does not; the body says which, and how long each \
                 check took. Needs no credentials; meant for load balancers and monitoring.",
            )
            .json_response::<HealthReport>(StatusCode::OK, "The database and storage are reachable")
            .json_response::<HealthReport>(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database or the storage is unreachable; `checks` says which",
            )
            .handle(with_state(state).then(check)),
    ]
}

/// The service's health.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct HealthReport {
    /// `ok` when every check passed.
    pub(super) status: CheckStatus,
    /// The running version.
    pub(super) version: &'static str,
    /// Seconds since the service started.
    pub(super) uptime_seconds: u64,
    /// One entry per dependency.
    pub(super) checks: HealthChecks,
}

/// The dependencies checked.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct HealthChecks {
    /// The database (`backend`: `sqlite` or `postgres`).
    pub(super) database: CheckResult,
    /// The storage of files (`backend`: e.g. `fs`).
    pub(super) storage: CheckResult,
}

/// The outcome of one check.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct CheckResult {
    /// `ok` or `unavailable`.
    pub(super) status: CheckStatus,
    /// Which implementation is configured.
    pub(super) backend: &'static str,
    /// How long the check took, in milliseconds.
    pub(super) latency_ms: f64,
    /// Why the check failed (details are in the service log under this request's id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
}

/// Whether something works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum CheckStatus {
    /// It works.
    Ok,
    /// It does not answer, or answers with errors.
    Unavailable,
}

async fn check(state: AppState) -> Response {
    let started = std::time::Instant::now();
    let (database, storage) = tokio::join!(
        state.db().check(CHECK_TIMEOUT),
        state.storage().check(CHECK_TIMEOUT)
    );
    let database = outcome(
        "database",
        state.db().url().backend_name(),
        database,
        started,
    );
    let storage = outcome("storage", state.storage().backend(), storage, started);
    let healthy = database.status == CheckStatus::Ok && storage.status == CheckStatus::Ok;
    let report = HealthReport {
        status: if healthy {
            CheckStatus::Ok
        } else {
            CheckStatus::Unavailable
        },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.uptime().as_secs(),
        checks: HealthChecks { database, storage },
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = warp::reply::with_status(warp::reply::json(&report), status).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !healthy {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

fn outcome<E: std::fmt::Display>(
    name: &str,
    backend: &'static str,
    result: Result<Duration, E>,
    started: std::time::Instant,
) -> CheckResult {
    match result {
        Ok(latency) => CheckResult {
            status: CheckStatus::Ok,
            backend,
            latency_ms: round_ms(latency),
            error: None,
        },
        Err(error) => {
            tracing::warn!(check = name, backend, %error, "health check failed");
            CheckResult {
                status: CheckStatus::Unavailable,
                backend,
                latency_ms: round_ms(started.elapsed()),
                error: Some(format!(
                    "the {name} is unreachable or failing; see the service log"
                )),
            }
        }
    }
}

fn round_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
