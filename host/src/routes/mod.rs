//! The HTTP API at a glance. [`endpoints`] lists every route the service answers, group by
//! group; each group module begins with a table of its endpoints. The router, the OpenAPI
//! document, the metrics' route labels and the `Allow` headers are all derived from this
//! one list.

mod admin;
mod api_keys;
mod audit;
mod auth;
mod body;
mod callbacks;
mod convert;
mod downloads;
mod endpoint;
mod errors;
mod formats;
mod health;
mod meta;
mod ops;
mod router;
mod shares;
mod uploads;

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use warp::Filter;

pub use body::json;
pub use endpoint::{
    Access, AuditSpec, BodyDoc, Endpoint, EndpointBuilder, OperationDoc, ParamDoc, ResponseDoc,
    SchemaFn, schema_named, schema_of,
};
pub use router::{PathParams, Routed, Router, RouterError};

pub(crate) use downloads::download_url;

use crate::app::AppState;

/// Every endpoint of the service.
fn endpoints(state: &AppState, openapi: &ops::OpenApiSlot) -> Vec<Endpoint> {
    let mut all = Vec::new();
    all.extend(health::endpoints(state)); //          GET /api/health
    all.extend(auth::endpoints(state)); //            /api/auth/…, /api/anon/session
    all.extend(api_keys::endpoints(state)); //        /api/api-keys…
    all.extend(meta::endpoints(state)); //            GET /api/_meta[/{resource}]
    all.extend(crate::resources::endpoints(state)); // /api/{resource}… generated CRUD
    all.extend(uploads::endpoints(state)); //         /api/uploads/…
    all.extend(convert::endpoints(state)); //         POST /api/convert
    all.extend(callbacks::endpoints(state)); //       /api/callback-secrets…
    all.extend(downloads::endpoints(state)); //       GET /api/files/{org_id}/{file_id}/download
    all.extend(shares::endpoints(state)); //          POST …/share, GET /api/s/{token}
    all.extend(audit::endpoints(state)); //           GET /api/audit
    all.extend(admin::endpoints(state)); //           /api/admin/orgs… (superusers)
    all.extend(formats::endpoints(state)); //         /api/formats…, /api/convert/formats, /api/plugins
    all.extend(ops::endpoints(state, openapi)); //    GET /metrics, /openapi.json, /docs…
    all
}

/// Builds the route table and the OpenAPI document that describes it.
pub fn build(state: &AppState) -> Result<Router, RouterError> {
    let openapi: ops::OpenApiSlot = Arc::new(OnceLock::new());
    let router = Router::new(endpoints(state, &openapi))?;
    let document = crate::openapi::document(router.endpoints());
    let rendered = serde_json::to_vec_pretty(&document).map_err(|error| {
        RouterError::new(format!("cannot render the OpenAPI document: {error}"))
    })?;
    // The slot was created above and is set once, here.
    let _ = openapi.set(Bytes::from(rendered));
    Ok(router)
}

/// Makes a route table string `'static`. Route tables are built once per process, so the
/// few strings generated for them (paths and operation names of resources) are kept for the
/// life of the process, like the literals of hand-written routes.
pub fn intern(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// Hands a clone of the app state to a handler.
pub fn with_state(
    state: &AppState,
) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone + use<> {
    let state = state.clone();
    warp::any().map(move || state.clone())
}
