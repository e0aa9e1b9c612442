//! The service layer every request passes through, in this order:
//!
//! 1. take the client's `X-Request-Id` or make one, and make it current for the request;
//! 2. route by path and method (the route table of [`crate::routes`]): an unknown path is a
//!    404 problem document, a known path with another method a 405 with `Allow`;
//! 3. run the matched endpoint's warp filter, turning a panic into a 500 problem document;
//! 4. set `X-Request-Id` on the response, count it in the metrics by route template and
//!    status, and write one log line.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use http::header::{ALLOW, HeaderValue};
use http::{Method, Request, StatusCode};
use tower_service::Service as _;
use tracing::Instrument;
use warp::Reply;
use warp::reply::Response;

use super::request_id::{self, RequestId};
use crate::audit::{self, AuditTarget, NewEvent};
use crate::auth::{Authenticator, Caller, Identity, RateClass, Role, unauthenticated};
use crate::db::Db;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;
use crate::ratelimit::{Allowance, RateLimits, Tier};
use crate::routes::{Access, Endpoint, Routed, Router};

/// Route label of requests that matched no route (one label, so that scanners probing
/// random paths cannot blow up the metrics' cardinality).
const UNMATCHED_ROUTE: &str = "unmatched";

/// Longest request path quoted back in a 404 detail.
const MAX_QUOTED_PATH: usize = 200;

/// The address of the client, as a request extension for filters that need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The whole HTTP application: routing, endpoint filters and the cross-cutting concerns above.
#[derive(Clone)]
pub struct HttpService {
    shared: Arc<Shared>,
}

struct Shared {
    router: Router,
    metrics: Arc<Metrics>,
    gatekeeper: Option<Gatekeeper>,
}

/// What guards non-public endpoints: authentication, rate limits and the audit trail.
pub struct Gatekeeper {
    /// Resolves credentials.
    pub authenticator: Authenticator,
    /// Counts requests.
    pub limits: Arc<RateLimits>,
    /// Where audit events go.
    pub db: Db,
}

impl HttpService {
    /// Builds the service over a route table. Without a gatekeeper only public endpoints
    /// can be served.
    pub fn new(router: Router, metrics: Arc<Metrics>, gatekeeper: Option<Gatekeeper>) -> Self {
        Self {
            shared: Arc::new(Shared {
                router,
                metrics,
                gatekeeper,
            }),
        }
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> i64 {
        self.shared.metrics.in_flight()
    }

    /// The hyper service for one accepted connection.
    pub fn for_connection(&self, remote: SocketAddr) -> ConnectionService {
        ConnectionService {
            service: self.clone(),
            remote,
        }
    }

    /// Handles one request from start to finish; never fails.
    pub async fn handle<B>(&self, request: Request<B>, remote: Option<SocketAddr>) -> Response
    where
        B: http_body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let shared = &self.shared;
        shared.metrics.request_started();
        let id = request
            .headers()
            .get(request_id::HEADER)
            .and_then(RequestId::from_client)
            .unwrap_or_else(RequestId::generate);
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let span = tracing::info_span!("request", request_id = %id);

        let (route, mut response) = request_id::scope(id.clone(), self.dispatch(request, remote))
            .instrument(span.clone())
            .await;

        response
            .headers_mut()
            .insert(request_id::HEADER, id.to_header_value());
        let status = response.status();
        let elapsed = started.elapsed();
        shared
            .metrics
            .observe_http_request(&method, route, status, elapsed);
        span.in_scope(|| {
            tracing::info!(
                target: "metamorph::access",
                request_id = %id,
                method = %method,
                route,
                path = %path,
                status = status.as_u16(),
                duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
                "request"
            );
        });
        response
    }

    /// Routes the request and runs its endpoint; returns the route label and the response.
    async fn dispatch<B>(
        &self,
        mut request: Request<B>,
        remote: Option<SocketAddr>,
    ) -> (&'static str, Response)
    where
        B: http_body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let method = request.method().clone();
        let routed = self.shared.router.route(&method, request.uri().path());
        match routed {
            Routed::Endpoint { endpoint, params } => {
                let path_id = params
                    .get("id")
                    .or_else(|| params.get("key_id"))
                    .map(str::to_owned);
                let admitted = match endpoint.access() {
                    Access::Public => Ok((None, None)),
                    access => self.admit(access, request.headers(), remote).await,
                };
                let (identity, allowance, mut response) = match admitted {
                    Ok((caller, allowance)) => {
                        let identity = caller.as_ref().and_then(Caller::known).cloned();
                        if let Some(caller) = caller {
                            request.extensions_mut().insert(caller);
                        }
                        request.extensions_mut().insert(params);
                        if let Some(remote) = remote {
                            request.extensions_mut().insert(ClientAddr(remote));
                        }
                        (identity, allowance, run_endpoint(endpoint, request).await)
                    }
                    Err(error) => (None, None, error.into_response()),
                };
                if let Some(allowance) = allowance {
                    for (name, value) in allowance.headers() {
                        response.headers_mut().insert(name, value);
                    }
                }
                self.audit(endpoint, identity.as_ref(), path_id, &response)
                    .await;
                (endpoint.path(), response)
            }
            Routed::Options { template, allow } => {
                let mut response = Response::default();
                *response.status_mut() = StatusCode::NO_CONTENT;
                response.headers_mut().insert(ALLOW, allow_header(&allow));
                (template, response)
            }
            Routed::MethodNotAllowed { template, allow } => {
                let detail = format!(
                    "`{method}` is not allowed on `{template}`; it accepts {}",
                    allow.join(", ")
                );
                let error = ApiError::new(ErrorCode::MethodNotAllowed, detail)
                    .with_header(ALLOW, allow_header(&allow));
                (template, error.into_response())
            }
            Routed::NotFound => {
                let path = request.uri().path();
                let quoted: String = path.chars().take(MAX_QUOTED_PATH).collect();
                let detail = format!(
                    "no route matches `{method} {quoted}`; every route is listed in /openapi.json"
                );
                (
                    UNMATCHED_ROUTE,
                    ApiError::new(ErrorCode::NotFound, detail).into_response(),
                )
            }
        }
    }
}

impl HttpService {
    /// Resolves the caller and counts the request against its quota; refuses with 401,
    /// 403 or 429.
    async fn admit(
        &self,
        access: Access,
        headers: &http::HeaderMap,
        remote: Option<SocketAddr>,
    ) -> Result<(Option<Caller>, Option<Allowance>), ApiError> {
        let gate = self.shared.gatekeeper.as_ref().ok_or_else(|| {
            ApiError::internal("a guarded endpoint is served without a gatekeeper")
        })?;
        let Some(class) = access.class() else {
            return Ok((None, None));
        };
        let ip = remote.map(|remote| remote.ip());
        let ip_key = ip.map_or_else(|| "ip:unknown".to_owned(), |ip| format!("ip:{ip}"));
        let by_ip = |gate: &Gatekeeper| gate.limits.check(Tier::Unauthenticated, class, &ip_key);
        if let Access::ByIp(_) = access {
            let allowance = by_ip(gate)?;
            return Ok((Some(Caller::Unauthenticated(ip)), allowance));
        }
        let identity = match gate.authenticator.authenticate(headers).await {
            Ok(identity) => identity,
            Err(error) => {
                // Failed attempts count against the client's address: guessing is throttled.
                by_ip(gate)?;
                return Err(error);
            }
        };
        let Some(identity) = identity else {
            let allowance = by_ip(gate)?;
            return match access {
                Access::Authenticated(_) => Err(unauthenticated("this request needs credentials")),
                _ => Ok((Some(Caller::Unauthenticated(ip)), allowance)),
            };
        };
        let allowance =
            gate.limits
                .check(Tier::Role(identity.role), class, &identity.rate_key())?;
        if let Access::Authenticated(_) = access {
            check_class(&identity, class)?;
        }
        Ok((Some(Caller::Known(identity)), allowance))
    }

    /// Writes the audit event of a state-changing endpoint's call.
    async fn audit(
        &self,
        endpoint: &Endpoint,
        identity: Option<&Identity>,
        path_id: Option<String>,
        response: &Response,
    ) {
        let (Some(spec), Some(gate)) = (endpoint.audit(), &self.shared.gatekeeper) else {
            return;
        };
        let target = response.extensions().get::<AuditTarget>();
        let event = NewEvent {
            org_id: identity
                .map(|identity| identity.org_id.clone())
                .or_else(|| target.map(|target| target.org_id.clone())),
            actor_user_id: identity
                .map(|identity| identity.user_id.clone())
                .or_else(|| {
                    target
                        .and_then(|target| target.actor.as_ref())
                        .map(|(id, _)| id.clone())
                }),
            actor_kind: identity
                .map(|identity| identity.mode.actor_kind())
                .unwrap_or_else(|| {
                    target
                        .and_then(|target| target.actor.as_ref())
                        .map_or("anonymous", |(_, kind)| *kind)
                }),
            action: spec.action,
            resource: spec.resource,
            resource_id: target.map(|target| target.id.clone()).or(path_id),
            request_id: request_id::current().map(|id| id.to_string()),
            status: response.status().as_u16(),
        };
        audit::record(&gate.db, event).await;
    }
}

/// What every identity must satisfy for a route class: its API key's scopes, and for demo
/// accounts, reading only.
fn check_class(identity: &Identity, class: RateClass) -> Result<(), ApiError> {
    if !identity.scopes.contains(&class) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this API key lacks the `{}` scope", class.as_str()),
        ));
    }
    if identity.role == Role::Demo && class != RateClass::Read {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "demo accounts are read-only",
        ));
    }
    Ok(())
}

/// Runs an endpoint's warp filter, turning a panic into a 500 problem document.
async fn run_endpoint<B>(endpoint: &Endpoint, request: Request<B>) -> Response
where
    B: http_body::Body + Send + Sync + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut service = warp::service(endpoint.filter());
    match AssertUnwindSafe(service.call(request)).catch_unwind().await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(route = endpoint.path(), panic = message, "handler panicked");
            ApiError::internal(format!("handler panicked: {message}")).into_response()
        }
    }
}

fn allow_header(methods: &[&'static str]) -> HeaderValue {
    HeaderValue::from_str(&methods.join(", ")).unwrap_or_else(|_| HeaderValue::from_static("GET"))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// [`HttpService`] bound to one connection's peer address, as hyper wants it.
#[derive(Clone)]
pub struct ConnectionService {
    service: HttpService,
    remote: SocketAddr,
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let service = self.service.clone();
        let remote = self.remote;
        Box::pin(async move { Ok(service.handle(request, Some(remote)).await) })
    }
}

// Keep the method set in one place for the `Allow` header and metrics.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use serde::Deserialize;
    use warp::Filter;

    use super::*;
    use crate::error::{ApiResult, Problem};
    use crate::routes::{Endpoint, json};

    #[derive(Debug, Deserialize)]
    struct Greeting {
        name: String,
    }

    fn service() -> HttpService {
        let endpoints = vec![
            Endpoint::get("/boom", "boom").handle(warp::any().map(|| -> &'static str {
                panic!("a bug in a handler");
            })),
            Endpoint::post("/greet", "greet").handle(json::<Greeting>(1024).map(
                |greeting: ApiResult<Greeting>| match greeting {
                    Ok(greeting) => format!("hello {}", greeting.name).into_response(),
                    Err(error) => error.into_response(),
                },
            )),
        ];
        let router = Router::new(endpoints).unwrap();
        HttpService::new(router, Arc::new(Metrics::new().unwrap()), None)
    }

    async fn send(
        service: &HttpService,
        method: Method,
        path: &str,
        body: &str,
    ) -> (StatusCode, http::HeaderMap, Bytes) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("x-request-id", "req-1")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = service.handle(request, None).await;
        let (parts, body) = response.into_parts();
        (
            parts.status,
            parts.headers,
            body.collect().await.unwrap().to_bytes(),
        )
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_500_problem_and_the_service_keeps_serving() {
        let service = service();
        let (status, headers, body) = send(&service, Method::GET, "/boom", "").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(headers["x-request-id"], "req-1");
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem.code, ErrorCode::Internal);
        assert_eq!(problem.request_id, "req-1");
        assert!(
            !problem.detail.contains("a bug in a handler"),
            "panic messages stay in the log"
        );

        let (status, _, body) = send(&service, Method::POST, "/greet", r#"{"name":"ada"}"#).await;
        assert_eq!(
            (status, body.as_ref()),
            (StatusCode::OK, b"hello ada".as_ref())
        );
        assert_eq!(
            service.in_flight(),
            0,
            "the panicked request is no longer counted"
        );
    }

    #[tokio::test]
    async fn a_malformed_json_body_is_a_400_problem_saying_what_is_wrong() {
        let service = service();
        let (status, headers, body) =
            send(&service, Method::POST, "/greet", r#"{"name": 42}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers["content-type"], "application/problem+json");
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem.code, ErrorCode::InvalidJson);
        assert_eq!(problem.request_id, "req-1");
        assert!(
            problem.detail.contains("invalid type: integer `42`"),
            "{}",
            problem.detail
        );
        assert_eq!(problem.errors[0].path, "/name");

        let (status, _, body) = send(&service, Method::POST, "/greet", "{\"name\": ").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        assert!(
            problem.detail.contains("EOF while parsing"),
            "{}",
            problem.detail
        );
    }
}
