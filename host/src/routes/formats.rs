//! Formats, conversions and plugins: what the service can do.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | GET | `/api/convert/formats` | 200 every pair, its plugin, cost and options, and multi-step routes |
//! | GET | `/api/formats` | 200 every format |
//! | GET | `/api/formats/{fmt}` | 200 a format, what it converts to and from |
//! | GET | `/api/formats/{fmt}/template` | 200 a small valid file of that format |
//! | GET | `/api/plugins` | 200 loaded and refused plugins |

use std::collections::BTreeSet;

use http::StatusCode;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use metamorph_plugin_api::FormatName;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, PathParams, with_state};
use crate::app::AppState;
use crate::auth::RateClass;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::plugins::{Catalog, FormatDetails, PluginKind, Refused};

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let params = warp::ext::get::<PathParams>;
    let finish = |result: ApiResult<Response>| result.unwrap_or_else(Reply::into_response);
    vec![
        Endpoint::get("/api/convert/formats", "listConversions")
            .summary(
                "formats",
                "Every conversion: pairs, their plugin, cost and options, and multi-step routes",
            )
            .open(RateClass::Read)
            .json_response::<ConversionIndex>(StatusCode::OK, "The conversions")
            .handle(
                with_state(state).map(|state: AppState| conversions(&state.plugins().catalog())),
            ),
        Endpoint::get("/api/formats", "listFormats")
            .summary("formats", "Every format the service knows")
            .open(RateClass::Read)
            .json_response::<FormatList>(StatusCode::OK, "The formats")
            .handle(with_state(state).map(|state: AppState| list(&state.plugins().catalog()))),
        Endpoint::get("/api/formats/{fmt}", "getFormat")
            .summary(
                "formats",
                "A format: media types, extensions, category, what it converts to and from",
            )
            .open(RateClass::Read)
            .path_param::<String>(
                "fmt",
                "The format, e.g. `png` (any spelling: `PNG`, `.png`)",
                "png",
            )
            .json_response::<FormatView>(StatusCode::OK, "The format")
            .handle(with_state(state).and(params()).map(
                move |state: AppState, params: PathParams| {
                    finish(format(&state.plugins().catalog(), &params))
                },
            )),
        Endpoint::get("/api/formats/{fmt}/template", "getFormatTemplate")
            .summary(
                "formats",
                "A small, valid example file of a format, made by a plugin",
            )
            .open(RateClass::Read)
            .path_param::<String>("fmt", "The format", "png")
            .response(
                StatusCode::OK,
                "The file",
                Some(("application/octet-stream", super::schema_of::<String>())),
            )
            .handle(with_state(state).and(params()).then(template).map(finish)),
        Endpoint::get("/api/plugins", "listPlugins")
            .summary(
                "formats",
                "The plugins loaded, and the files refused with the reason",
            )
            .open(RateClass::Read)
            .json_response::<PluginList>(StatusCode::OK, "The plugins")
            .handle(with_state(state).map(|state: AppState| plugins(&state.plugins().catalog()))),
    ]
}

/// `GET /api/convert/formats`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ConversionIndex {
    /// Every format some conversion reads or writes.
    formats: Vec<String>,
    /// Every pair a plugin converts in one step.
    pairs: Vec<PairView>,
    /// Pairs no single plugin converts, but a chain does: the cheapest chain.
    routes: Vec<RouteView>,
}

/// One plugin's pair.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct PairView {
    /// Format read.
    source: String,
    /// Format written.
    target: String,
    /// The plugin.
    plugin: String,
    /// How it runs.
    kind: PluginKind,
    /// Relative cost.
    cost: u32,
    /// JSON Schema of its options.
    options_schema: Value,
}

/// A multi-step route.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct RouteView {
    /// Format read.
    source: String,
    /// Format written.
    target: String,
    /// Total cost.
    cost: u64,
    /// The steps, in order.
    steps: Vec<StepView>,
}

/// A step of a route.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct StepView {
    /// The plugin.
    plugin: String,
    /// Format read.
    source: String,
    /// Format written.
    target: String,
}

fn conversions(catalog: &Catalog) -> Response {
    let mut pairs = Vec::new();
    let mut formats = BTreeSet::new();
    for plugin in &catalog.plugins {
        for pair in &plugin.described.pairs {
            formats.insert(pair.source.to_string());
            formats.insert(pair.target.to_string());
            pairs.push(PairView {
                source: pair.source.to_string(),
                target: pair.target.to_string(),
                plugin: plugin.name().to_owned(),
                kind: plugin.kind,
                cost: pair.cost,
                options_schema: pair.schema.schema.clone(),
            });
        }
    }
    pairs.sort_by(|a, b| (&a.source, &a.target, &a.plugin).cmp(&(&b.source, &b.target, &b.plugin)));
    let mut routes = Vec::new();
    for source in &formats {
        let Ok(source) = FormatName::parse(source) else {
            continue;
        };
        for (target, route) in catalog.graph.routes_from(&source) {
            if route.len() > 1 {
                routes.push(RouteView {
                    source: source.to_string(),
                    target: target.to_string(),
                    cost: route.iter().map(|edge| u64::from(edge.cost)).sum(),
                    steps: route
                        .iter()
                        .map(|edge| StepView {
                            plugin: edge.plugin_name.clone(),
                            source: edge.source.to_string(),
                            target: edge.target.to_string(),
                        })
                        .collect(),
                });
            }
        }
    }
    let index = ConversionIndex {
        formats: formats.into_iter().collect(),
        pairs,
        routes,
    };
    warp::reply::json(&index).into_response()
}

/// `GET /api/formats`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct FormatList {
    /// Every format.
    items: Vec<FormatDetails>,
}

fn list(catalog: &Catalog) -> Response {
    warp::reply::json(&FormatList {
        items: catalog.formats().into_values().collect(),
    })
    .into_response()
}

/// `GET /api/formats/{fmt}`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct FormatView {
    /// What is known of it.
    #[serde(flatten)]
    details: FormatDetails,
    /// Formats it converts to (directly or through a route).
    converts_to: Vec<String>,
    /// Formats that convert to it.
    converts_from: Vec<String>,
    /// Whether `/api/formats/{fmt}/template` has an example of it.
    has_template: bool,
}

fn parse_format(params: &PathParams) -> ApiResult<FormatName> {
    let text = params.get("fmt").unwrap_or_default();
    FormatName::parse(text).map_err(|error| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("there is no format `{text}`: {error}"),
        )
    })
}

fn unknown(name: &FormatName) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("there is no format `{name}`; GET /api/formats lists them"),
    )
}

fn format(catalog: &Catalog, params: &PathParams) -> ApiResult<Response> {
    let name = parse_format(params)?;
    let formats = catalog.formats();
    let details = formats
        .get(name.as_str())
        .cloned()
        .ok_or_else(|| unknown(&name))?;
    let converts_to = catalog
        .graph
        .routes_from(&name)
        .into_keys()
        .map(|format| format.to_string())
        .collect();
    let converts_from = formats
        .keys()
        .filter(|other| {
            FormatName::parse(other)
                .is_ok_and(|other| other != name && catalog.graph.route(&other, &name).is_some())
        })
        .cloned()
        .collect();
    let view = FormatView {
        details,
        converts_to,
        converts_from,
        has_template: catalog.template_maker(&name).is_some(),
    };
    Ok(warp::reply::json(&view).into_response())
}

async fn template(state: AppState, params: PathParams) -> ApiResult<Response> {
    let name = parse_format(&params)?;
    let catalog = state.plugins().catalog();
    let details = catalog
        .formats()
        .get(name.as_str())
        .cloned()
        .ok_or_else(|| unknown(&name))?;
    let plugin = catalog.template_maker(&name).cloned().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no plugin makes example files of `{name}`"),
        )
    })?;
    let format = name.to_string();
    let bytes = tokio::task::spawn_blocking(move || plugin.template(&format))
        .await
        .map_err(ApiError::internal)??;
    let mut response = Response::new(bytes.into());
    let media_type = details
        .media_types
        .first()
        .map_or("application/octet-stream", String::as_str);
    if let Ok(value) = HeaderValue::from_str(media_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"example.{name}\"")) {
        response.headers_mut().insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `GET /api/plugins`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct PluginList {
    /// Loaded plugins.
    loaded: Vec<PluginView>,
    /// Files refused, with the reason.
    refused: Vec<Refused>,
}

/// A loaded plugin.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct PluginView {
    /// Name.
    name: String,
    /// Version.
    version: String,
    /// What it does.
    description: String,
    /// How it runs.
    kind: PluginKind,
    /// Number of pairs it converts.
    conversions: usize,
    /// SHA-256 of its file.
    sha256: String,
}

fn plugins(catalog: &Catalog) -> Response {
    let loaded = catalog
        .plugins
        .iter()
        .map(|plugin| PluginView {
            name: plugin.name().to_owned(),
            version: plugin.described.info.version.clone(),
            description: plugin.described.info.description.clone(),
            kind: plugin.kind,
            conversions: plugin.described.pairs.len(),
            sha256: plugin.sha256.clone(),
        })
        .collect();
    warp::reply::json(&PluginList {
        loaded,
        refused: catalog.refused.clone(),
    })
    .into_response()
}
