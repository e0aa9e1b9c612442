//! Operational endpoints and the API's own description.
//!
//! | Method | Path              | Handler          | Success |
//! |--------|-------------------|------------------|---------|
//! | GET    | `/metrics`        | [`metrics`]      | 200, Prometheus text |
//! | GET    | `/openapi.json`   | (document)       | 200, OpenAPI 3.1 |
//! | GET    | `/docs`           | (redirect)       | 308 to `/docs/` |
//! | GET    | `/docs/`          | [`docs_asset`]   | 200, the interactive viewer |
//! | GET    | `/docs/errors`    | [`error_codes`]  | 200, every error code |
//! | GET    | `/docs/{*asset}`  | [`docs_asset`]   | 200, a viewer asset |
//! | GET    | `/`               | (redirect)       | 307 to `/docs/` |

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, PathParams, schema_of, with_state};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// Media type of the Prometheus text exposition format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The OpenAPI document, rendered once the route table exists (it describes that table,
/// this endpoint included).
pub(super) type OpenApiSlot = Arc<OnceLock<Bytes>>;

pub(super) fn endpoints(state: &AppState, openapi: &OpenApiSlot) -> Vec<Endpoint> {
    let openapi = openapi.clone();
    let swagger = Arc::new(utoipa_swagger_ui::Config::new(["/openapi.json"]));
    let swagger_index = swagger.clone();
    vec![
        Endpoint::get("/metrics", "getMetrics")
            .summary("ops", "Prometheus metrics")
            .description(
                "Request counts and latency histograms by route template and status, database \
                 pool gauges and process metrics (CPU, memory, file descriptors), in the \
                 Prometheus text format.",
            )
            .response(StatusCode::OK, "The metrics", Some((PROMETHEUS_CONTENT_TYPE, schema_of::<String>())))
            .handle(with_state(state).map(|state: AppState| metrics(&state))),
        Endpoint::get("/openapi.json", "getOpenApi")
            .summary("docs", "This API's OpenAPI 3.1 description")
            .description("Generated from the route table the server runs, so it lists exactly the routes that exist.")
            .response(StatusCode::OK, "The OpenAPI document", Some(("application/json", schema_of::<serde_json::Value>())))
            .handle(warp::any().map(move || openapi_document(&openapi))),
        Endpoint::get("/docs", "getDocsRedirect")
            .summary("docs", "Redirects to the interactive API documentation")
            .response(StatusCode::PERMANENT_REDIRECT, "Go to `/docs/`", None)
            .handle(warp::any().map(|| redirect(StatusCode::PERMANENT_REDIRECT, "/docs/"))),
        Endpoint::get("/docs/", "getDocs")
            .summary("docs", "Interactive API documentation")
            .description("A viewer of `/openapi.json` in which each request can be tried. Its assets are built into the binary.")
            .response(StatusCode::OK, "The viewer", Some(("text/html", schema_of::<String>())))
            .handle(warp::any().map(move || docs_asset("index.html", &swagger_index))),
        Endpoint::get("/docs/errors", "getErrorCodes")
            .summary("docs", "Every error code, its status and what to do about it")
            .description("The `type` of every problem document points to its entry on this page.")
            .response(StatusCode::OK, "The error codes", Some(("text/html", schema_of::<String>())))
            .handle(warp::any().map(error_codes)),
        Endpoint::get("/docs/{*asset}", "getDocsAsset")
            .summary("docs", "A file of the interactive API documentation")
            .path_param::<String>("asset", "File name, e.g. `swagger-ui.css`", "swagger-ui.css")
            .response(StatusCode::OK, "The file", Some(("application/octet-stream", schema_of::<String>())))
            .handle(warp::ext::get::<PathParams>().map(move |params: PathParams| {
                docs_asset(params.get("asset").unwrap_or_default(), &swagger)
            })),
        Endpoint::get("/", "getRoot")
            .summary("docs", "Redirects to the interactive API documentation")
            .response(StatusCode::TEMPORARY_REDIRECT, "Go to `/docs/`", None)
            .handle(warp::any().map(|| redirect(StatusCode::TEMPORARY_REDIRECT, "/docs/"))),
    ]
}

fn metrics(state: &AppState) -> Response {
    let (idle, in_use) = state.db().pool_state();
    state.metrics().set_db_pool(idle, in_use);
    match state.metrics().render() {
        Ok(text) => {
            let mut response = Response::new(text.into());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE),
            );
            response
        }
        Err(error) => ApiError::internal(error).into_response(),
    }
}

fn openapi_document(slot: &OpenApiSlot) -> Response {
    match slot.get() {
        Some(document) => {
            let mut response = Response::new(document.clone().into());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        None => {
            ApiError::unavailable("the API description is still being built", 1).into_response()
        }
    }
}

fn redirect(status: StatusCode, location: &'static str) -> Response {
    let mut response = Response::default();
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(location));
    response
}

fn docs_asset(name: &str, config: &Arc<utoipa_swagger_ui::Config<'static>>) -> Response {
    let asset: ApiResult<Response> = match utoipa_swagger_ui::serve(name, config.clone()) {
        Ok(Some(file)) => {
            let mut response = Response::new(Bytes::from(file.bytes.into_owned()).into());
            let content_type = if file.content_type.starts_with("text/") {
                format!("{}; charset=utf-8", file.content_type)
            } else {
                file.content_type
            };
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                headers.insert(CONTENT_TYPE, value);
            }
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            Ok(response)
        }
        Ok(None) => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("the documentation has no file `{name}`; start at /docs/"),
        )),
        Err(error) => Err(ApiError::internal(error.to_string())),
    };
    asset.unwrap_or_else(Reply::into_response)
}

/// `/docs/errors`: one row per [`ErrorCode`], each with an anchor that problem `type`s use.
fn error_codes() -> Response {
    let mut rows = String::new();
    for code in ErrorCode::ALL {
        rows.push_str(&format!(
            "<tr id=\"{code}\"><td><code>{code}</code></td><td>{status}</td><td>{title}</td><td>{description}</td></tr>\n",
            code = code.as_str(),
            status = code.status().as_u16(),
            title = html_escape(code.title()),
            description = html_escape(code.description()),
        ));
    }
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Metamorph error codes</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.4rem .6rem;text-align:left;vertical-align:top}}\
         tr:target{{background:#ffe}}</style></head><body>\n<h1>Error codes</h1>\n\
         <p>Every error is an RFC 9457 problem document (<code>application/problem+json</code>) with \
         <code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>, a stable \
         <code>code</code> and the <code>request_id</code>. Branch on <code>code</code>.</p>\n\
         <table><tr><th>code</th><th>status</th><th>title</th><th>meaning</th></tr>\n{rows}</table>\n\
         <p><a href=\"/docs/\">API documentation</a></p></body></html>\n"
    );
    warp::reply::html(page).into_response()
}

/// Escapes `text` for HTML and renders its `code spans`.
fn html_escape(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let mut html = String::new();
    for (index, part) in escaped.split('`').enumerate() {
        if index % 2 == 1 {
            html.push_str("<code>");
            html.push_str(part);
            html.push_str("</code>");
        } else {
            html.push_str(part);
        }
    }
    html
}
