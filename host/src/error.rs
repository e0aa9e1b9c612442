//! The one error type handlers return, and how it becomes an RFC 9457 problem document.
//!
//! Every error response of the service has the same shape, [`Problem`]:
//!
//! ```json
//! {"type": "/docs/errors#not_found", "title": "Not found", "status": 404,
//!  "detail": "no route matches `GET /api/nope`", "code": "not_found", "request_id": "…"}
//! ```
//!
//! `code` is the stable, machine-readable key clients branch on; `type` is a URI reference
//! to the human documentation of that code (served at `/docs/errors`). The HTTP status of
//! each code is fixed in one table, [`ErrorCode::status`].

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::reply::Response;

use crate::http::request_id;

/// Media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Stable, machine-readable error codes. Clients branch on these: never rename one that
/// shipped. One line each, in the order of their status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed in a way no more specific code describes.
    BadRequest,
    /// The request body is not valid JSON, or not the JSON this endpoint expects.
    InvalidJson,
    /// No credentials, or credentials that are invalid or expired.
    Unauthenticated,
    /// The caller is known but may not do this.
    Forbidden,
    /// Nothing exists at this address (or it belongs to another organisation).
    NotFound,
    /// The address exists but does not accept this HTTP method.
    MethodNotAllowed,
    /// The request conflicts with what exists (a duplicate name, a reused key).
    Conflict,
    /// The request body is larger than this endpoint accepts.
    PayloadTooLarge,
    /// The request body has a media type this endpoint does not read.
    UnsupportedMediaType,
    /// No plugin, nor chain of plugins, converts between these formats.
    UnsupportedConversion,
    /// The conversion options do not fit the converter's schema.
    InvalidOptions,
    /// The input is not a valid file of its format.
    MalformedInput,
    /// The conversion would pass a limit: memory, output size, dimensions, duration.
    LimitExceeded,
    /// The body is JSON but breaks the resource's schema; `errors[]` names each field.
    ValidationFailed,
    /// Too many requests; retry after `Retry-After` seconds.
    RateLimited,
    /// An unexpected failure inside the service; the details are in its log.
    Internal,
    /// The converter crashed or trapped; the service itself is fine.
    ConverterFailed,
    /// A dependency (database, storage) is unreachable; retry later.
    Unavailable,
    /// The converter ran past its time limit.
    ConverterTimedOut,
    /// Storing this would take the organisation past its storage quota.
    QuotaExceeded,
    /// The `Range` asked for lies outside the file.
    RangeNotSatisfiable,
    /// The file may not be downloaded again: its `max_downloads` are used up.
    DownloadLimitReached,
    /// The queue of this conversion is full; retry after `Retry-After` seconds.
    QueueFull,
    /// A remote input could not be fetched (the server refused, broke off or is down).
    RemoteFetchFailed,
    /// A URL leads to a loopback, private or link-local address, which is not allowed.
    AddressNotAllowed,
    /// The job ran past its `limits.job.max_process_time`.
    JobTimedOut,
    /// The servers running a task stopped several times while running it.
    WorkerLost,
    /// A destination refused a write, or could not be reached.
    DestinationFailed,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: &'static [ErrorCode] = &[
        Self::BadRequest,
        Self::InvalidJson,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::UnsupportedConversion,
        Self::ValidationFailed,
        Self::InvalidOptions,
        Self::MalformedInput,
        Self::LimitExceeded,
        Self::RateLimited,
        Self::Internal,
        Self::ConverterFailed,
        Self::Unavailable,
        Self::ConverterTimedOut,
        Self::QuotaExceeded,
        Self::RangeNotSatisfiable,
        Self::DownloadLimitReached,
        Self::QueueFull,
        Self::RemoteFetchFailed,
        Self::AddressNotAllowed,
        Self::JobTimedOut,
        Self::WorkerLost,
        Self::DestinationFailed,
    ];

    /// The HTTP status sent with this code.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::InvalidJson | Self::UnsupportedConversion => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge | Self::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::DownloadLimitReached => StatusCode::GONE,
            Self::QueueFull => StatusCode::TOO_MANY_REQUESTS,
            Self::RemoteFetchFailed => StatusCode::BAD_GATEWAY,
            Self::AddressNotAllowed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::JobTimedOut => StatusCode::GATEWAY_TIMEOUT,
            Self::WorkerLost => StatusCode::INTERNAL_SERVER_ERROR,
            Self::DestinationFailed => StatusCode::BAD_GATEWAY,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ValidationFailed
            | Self::InvalidOptions
            | Self::MalformedInput
            | Self::LimitExceeded => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ConverterFailed => StatusCode::BAD_GATEWAY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ConverterTimedOut => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The short, human-readable summary sent as the problem's `title`.
    pub const fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "Bad request",
            Self::InvalidJson => "Invalid JSON body",
            Self::Unauthenticated => "Authentication required",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict",
            Self::PayloadTooLarge => "Payload too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::UnsupportedConversion => "Unsupported conversion",
            Self::ValidationFailed => "Validation failed",
            Self::InvalidOptions => "Invalid options",
            Self::MalformedInput => "Malformed input",
            Self::LimitExceeded => "Limit exceeded",
            Self::ConverterFailed => "Converter failed",
            Self::ConverterTimedOut => "Converter timed out",
            Self::RateLimited => "Too many requests",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service unavailable",
            Self::QuotaExceeded => "Storage quota exceeded",
            Self::RangeNotSatisfiable => "Range not satisfiable",
            Self::DownloadLimitReached => "Download limit reached",
            Self::QueueFull => "Conversion queue full",
            Self::RemoteFetchFailed => "Remote input not fetched",
            Self::AddressNotAllowed => "Address not allowed",
            Self::JobTimedOut => "Job timed out",
            Self::WorkerLost => "Worker lost",
            Self::DestinationFailed => "Destination failed",
        }
    }

    /// What the code means and what a client can do about it (shown at `/docs/errors`).
    pub const fn description(self) -> &'static str {
        match self {
            Self::BadRequest => "The request is malformed. `detail` says what to change.",
            Self::InvalidJson => {
                "The body is not valid JSON or does not have the expected fields. `detail` \
                 names the line, column and field."
            }
            Self::Unauthenticated => {
                "No credentials were sent, or they are invalid or expired. Send \
                 `Authorization: Bearer <token>` or `X-API-Key: <key>`."
            }
            Self::Forbidden => {
                "You are authenticated, but your role or your API key's scopes do not allow \
                 this. `detail` says what is missing."
            }
            Self::NotFound => {
                "No route or resource exists at this address. Resources of another \
                 organisation also answer 404, never 403."
            }
            Self::MethodNotAllowed => {
                "The address exists but not with this method. The `Allow` header lists the \
                 methods it accepts."
            }
            Self::Conflict => {
                "The request clashes with what exists, e.g. a name already taken, or an \
                 `Idempotency-Key` reused with another body."
            }
            Self::PayloadTooLarge => "The body exceeds the endpoint's limit; send less.",
            Self::UnsupportedMediaType => {
                "The body's `Content-Type` is not one this endpoint reads (usually \
                 `application/json`)."
            }
            Self::UnsupportedConversion => {
                "No converter turns the input's format into the target. `GET \
                 /api/convert/formats` lists every conversion."
            }
            Self::InvalidOptions => {
                "The conversion options do not fit the converter's schema (see \
                 `/api/convert/formats`). `errors[]` names each option."
            }
            Self::MalformedInput => "The input file is broken or is not of the format it claims.",
            Self::LimitExceeded => {
                "The conversion needs more than its limits allow (memory, output size, image \
                 dimensions, duration). `detail` says which."
            }
            Self::ConverterFailed => {
                "The converter crashed on this input. The service is unaffected; report the \
                 `request_id`."
            }
            Self::ConverterTimedOut => "The conversion ran past its time limit.",
            Self::ValidationFailed => {
                "The body does not match the resource's schema (see `/api/_meta`). Each \
                 entry of `errors[]` names a field by JSON pointer and says what is wrong."
            }
            Self::RateLimited => {
                "You sent more requests than your quota allows. Wait `Retry-After` seconds; \
                 the `RateLimit-*` headers give the quota and what is left of it."
            }
            Self::Internal => {
                "Something failed inside the service. It is logged with the `request_id`; \
                 quote it when reporting the problem."
            }
            Self::Unavailable => {
                "A dependency of the service is unreachable. Retry after the number of \
                 seconds in `Retry-After`."
            }
            Self::QuotaExceeded => {
                "Storing this would pass your organisation's storage quota. Delete files you \
                 no longer need (`GET /api/files`) or ask an admin for a larger quota."
            }
            Self::RangeNotSatisfiable => {
                "The `Range` header asks for bytes beyond the end of the file. \
                 `Content-Range: bytes */<size>` gives the file's size."
            }
            Self::DownloadLimitReached => {
                "The file was downloaded as many times as its `max_downloads` allow. Its \
                 owner can raise the limit (`PATCH /api/files/{org_id}/{id}`)."
            }
            Self::QueueFull => {
                "Too many conversions of this kind are waiting. Nothing was created; send the \
                 same request again after `Retry-After` seconds."
            }
            Self::RemoteFetchFailed => {
                "The URL of a remote input could not be fetched; `detail` gives the remote \
                 server's answer or the network error."
            }
            Self::AddressNotAllowed => {
                "The URL leads to a loopback, private or link-local address. Use a public \
                 address, or (self-hosters) set `jobs.allow_private_networks`."
            }
            Self::JobTimedOut => {
                "The job ran past its `limits.job.max_process_time`; what was not done was \
                 canceled. Raise the limit or split the job."
            }
            Self::WorkerLost => {
                "The servers running this task stopped while running it, several times. The \
                 input may crash the converter; report the job id."
            }
            Self::DestinationFailed => {
                "The output's destination refused the write or did not answer. `detail` \
                 gives the service's reason; check the destination with `POST \
                 /api/destinations/{org_id}/{id}/test`."
            }
        }
    }

    /// The code as it appears on the wire, e.g. `not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidJson => "invalid_json",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::UnsupportedConversion => "unsupported_conversion",
            Self::ValidationFailed => "validation_failed",
            Self::InvalidOptions => "invalid_options",
            Self::MalformedInput => "malformed_input",
            Self::LimitExceeded => "limit_exceeded",
            Self::ConverterFailed => "converter_failed",
            Self::ConverterTimedOut => "converter_timed_out",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::QuotaExceeded => "quota_exceeded",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::DownloadLimitReached => "download_limit_reached",
            Self::QueueFull => "queue_full",
            Self::RemoteFetchFailed => "remote_fetch_failed",
            Self::AddressNotAllowed => "address_not_allowed",
            Self::JobTimedOut => "job_timed_out",
            Self::WorkerLost => "worker_lost",
            Self::DestinationFailed => "destination_failed",
        }
    }

    /// The problem `type`: a URI reference to this code's entry at `/docs/errors`.
    pub fn type_uri(self) -> String {
        format!("/docs/errors#{}", self.as_str())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 9457 problem document: the body of every error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// URI reference identifying the kind of problem; resolves to its documentation.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the kind of problem; the same for every occurrence of a `code`.
    pub title: String,
    /// The HTTP status code of this response.
    pub status: u16,
    /// What went wrong in this occurrence, and how to fix it.
    pub detail: String,
    /// Stable machine-readable error code.
    pub code: ErrorCode,
    /// Identifier of the request, also sent as `X-Request-Id`; quote it in bug reports.
    pub request_id: String,
    /// For validation failures: each failing field, by JSON pointer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One failing field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    /// JSON pointer to the field, e.g. `/conversions/0/options/quality`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// An error on its way to becoming an HTTP response.
///
/// `detail` is shown to the client. `source` is logged with the request id and never shown,
/// so nothing internal (SQL, paths, hostnames) leaks into responses.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    detail: Cow<'static, str>,
    errors: Vec<FieldError>,
    headers: Vec<(HeaderName, HeaderValue)>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Result type of every handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with a code and a client-facing explanation.
    pub fn new(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
            source: None,
        }
    }

    /// Wraps an unexpected failure; the client sees only that something failed internally.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(
            ErrorCode::Internal,
            "the service failed to handle this request; it has been logged with the request id",
        )
        .with_source(source)
    }

    /// A 422 naming one failing field by JSON pointer.
    pub fn invalid_field(path: &str, message: &str) -> Self {
        Self::new(
            ErrorCode::ValidationFailed,
            format!("the body is not valid: {path} {message}"),
        )
        .with_field_errors(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }

    /// A dependency is down; the client should retry after `retry_after_seconds`.
    pub fn unavailable(detail: impl Into<Cow<'static, str>>, retry_after_seconds: u32) -> Self {
        Self::new(ErrorCode::Unavailable, detail).with_header(
            http::header::RETRY_AFTER,
            HeaderValue::from(retry_after_seconds),
        )
    }

    /// Attaches the underlying error, to be logged (never shown).
    #[must_use]
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Adds a response header (`Allow`, `Retry-After`, …).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds per-field validation errors (`errors[]` of the problem document).
    #[must_use]
    pub fn with_field_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The per-field validation errors.
    pub fn field_errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The client-facing explanation.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Builds the problem document for the request being served.
    pub fn to_problem(&self) -> Problem {
        Problem {
            type_uri: self.code.type_uri(),
            title: self.code.title().to_owned(),
            status: self.code.status().as_u16(),
            detail: self.detail.to_string(),
            code: self.code,
            request_id: request_id::current()
                .map(|id| id.to_string())
                .unwrap_or_default(),
            errors: self.errors.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl warp::Reply for ApiError {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        if self.code.status().is_server_error() {
            tracing::error!(
                code = %self.code,
                detail = %self.detail,
                error = self.source.as_ref().map(tracing::field::display),
                "request failed"
            );
        } else if let Some(source) = &self.source {
            tracing::debug!(code = %self.code, error = %source, "request refused");
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = Response::new(body.into());
        *response.status_mut() = self.code.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::Reply;

    #[test]
    fn every_code_is_listed_once_and_serialises_as_its_wire_name() {
        for code in ErrorCode::ALL {
            let wire = serde_json::to_value(code).unwrap();
            assert_eq!(wire, serde_json::Value::from(code.as_str()));
            assert_eq!(ErrorCode::ALL.iter().filter(|c| *c == code).count(), 1);
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn an_error_becomes_a_problem_document_with_its_status_and_headers() {
        let error = ApiError::unavailable("database unreachable", 5);
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "5");
    }

    #[test]
    fn internal_errors_never_show_their_source() {
        let error = ApiError::internal(std::io::Error::other("/secret/path: permission denied"));
        let problem = error.to_problem();
        assert_eq!(problem.code, ErrorCode::Internal);
        assert!(!problem.detail.contains("secret"), "{}", problem.detail);
    }
}
