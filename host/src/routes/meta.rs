//! The API's self-description, for clients and the web UI.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | GET | `/api/_meta` | 200 every resource and its base path |
//! | GET | `/api/_meta/{resource}` | 200 the resource as the caller's role sees it |

use std::sync::Arc;

use http::StatusCode;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, PathParams, with_state};
use crate::app::AppState;
use crate::auth::{Caller, RateClass, Role};
use crate::error::{ApiError, ErrorCode};
use crate::resources::{Op, ResourceDef};

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let caller = warp::ext::get::<Caller>();
    vec![
        Endpoint::get("/api/_meta", "getMeta")
            .summary(
                "meta",
                "Lists every resource, its base path and what you may do with it",
            )
            .open(RateClass::Read)
            .json_response::<MetaIndex>(StatusCode::OK, "The resources")
            .handle(
                with_state(state)
                    .and(caller)
                    .map(|state: AppState, caller: Caller| index(&state, &caller)),
            ),
        Endpoint::get("/api/_meta/{resource}", "getResourceMeta")
            .summary("meta", "Describes a resource as your role sees it")
            .description(
                "The record schema with fields you may not see removed and fields you may not \
                 write marked `readOnly`; the columns of list views; the actions and whether you \
                 may run them; your permissions. Built from the same file as the routes.",
            )
            .open(RateClass::Read)
            .path_param::<String>("resource", "A resource name from `/api/_meta`", "settings")
            .json_response::<ResourceMeta>(StatusCode::OK, "The description")
            .handle(
                with_state(state)
                    .and(caller)
                    .and(warp::ext::get::<PathParams>())
                    .map(|state: AppState, caller: Caller, params: PathParams| {
                        describe(&state, &caller, &params)
                    }),
            ),
    ]
}

/// `GET /api/_meta`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct MetaIndex {
    /// The caller's role (`null` without credentials).
    role: Option<Role>,
    /// Every resource.
    resources: Vec<ResourceSummary>,
}

/// A resource in the index.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ResourceSummary {
    /// Name, used in `/api/_meta/{resource}`.
    name: &'static str,
    /// What a record is called.
    title: String,
    /// What the resource is.
    description: String,
    /// Base path.
    path: String,
    /// What the caller may do.
    permissions: Permissions,
}

/// What the caller may do with a resource.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct Permissions {
    /// List and get records.
    read: bool,
    /// Create records.
    create: bool,
    /// Change records.
    update: bool,
    /// Delete records.
    delete: bool,
}

/// `GET /api/_meta/{resource}`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ResourceMeta {
    /// Name.
    name: &'static str,
    /// What a record is called.
    title: String,
    /// What the resource is.
    description: String,
    /// Base path (list, create).
    path: String,
    /// Path of one record (get, change, delete).
    item_path: String,
    /// The caller's role (`null` without credentials).
    role: Option<Role>,
    /// What the caller may do.
    permissions: Permissions,
    /// The record schema as the caller's role sees it.
    schema: Value,
    /// Fields a list view shows, in order.
    list_columns: Vec<String>,
    /// Resource-specific actions.
    actions: Vec<ActionMeta>,
}

/// An action of a resource.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ActionMeta {
    /// Name.
    name: String,
    /// Always `POST`.
    method: &'static str,
    /// Its path.
    path: String,
    /// What it does.
    summary: String,
    /// Whether the caller may run it.
    allowed: bool,
    /// Schema of its body.
    body: Value,
}

fn permissions(def: &ResourceDef, role: Option<Role>) -> Permissions {
    let may = |op| role.is_some_and(|role| def.allows(role, op));
    Permissions {
        read: may(Op::Read),
        create: may(Op::Create),
        update: may(Op::Update),
        delete: may(Op::Delete),
    }
}

fn role_of(caller: &Caller) -> Option<Role> {
    caller.known().map(|identity| identity.role)
}

fn index(state: &AppState, caller: &Caller) -> Response {
    let role = role_of(caller);
    let resources = state
        .resources()
        .all()
        .iter()
        .map(|def| ResourceSummary {
            name: def.name,
            title: def.title.clone(),
            description: def.description.clone(),
            path: def.path.clone(),
            permissions: permissions(def, role),
        })
        .collect();
    warp::reply::json(&MetaIndex { role, resources }).into_response()
}

fn describe(state: &AppState, caller: &Caller, params: &PathParams) -> Response {
    let name = params.get("resource").unwrap_or_default();
    let Some(def): Option<&Arc<ResourceDef>> = state.resources().get(name) else {
        return ApiError::new(
            ErrorCode::NotFound,
            format!("there is no resource `{name}`; /api/_meta lists them"),
        )
        .into_response();
    };
    let role = role_of(caller);
    let item_path = format!("{}/{{org_id}}/{{id}}", def.path);
    let actions = def
        .actions
        .iter()
        .map(|action| ActionMeta {
            name: action.name.clone(),
            method: "POST",
            path: format!("{item_path}/{}", action.name),
            summary: action.summary.clone(),
            allowed: role
                .is_some_and(|role| role == Role::Superuser || action.roles.contains(&role)),
            body: action.body.clone(),
        })
        .collect();
    let meta = ResourceMeta {
        name: def.name,
        title: def.title.clone(),
        description: def.description.clone(),
        path: def.path.clone(),
        item_path,
        role,
        permissions: permissions(def, role),
        schema: def.schema_for(role),
        list_columns: def.list_columns.clone(),
        actions,
    };
    warp::reply::json(&meta).into_response()
}
