//! The factory: the routes, checks and OpenAPI entries of one [`Resource`].
//!
//! Checks run in this order, so that answers never reveal what a caller may not know:
//! another organisation in the path is 404 (never 403), then the role is checked (403),
//! then the record is looked up (404), then the body (400 malformed, 403 a field the role
//! may not set, 422 the schema).

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use serde_json::{Map, Value, json};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::definition::{ActionDef, Op, ResourceDef};
use super::page::{Page, PageRequest};
use super::{Resource, WriteContext};
use crate::app::AppState;
use crate::audit::AuditTarget;
use crate::auth::{Caller, Identity, RateClass};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::{Endpoint, PathParams, intern, json, schema_named, with_state};

/// The generated endpoints of `R`.
pub(super) fn endpoints<R: Resource>(state: &AppState, def: &Arc<ResourceDef>) -> Vec<Endpoint> {
    let name = def.name;
    let base = intern(def.path.clone());
    let item = intern(format!("{}/{{org_id}}/{{id}}", def.path));
    let plural = camel(name);
    let singular = camel(&def.title);
    let record = schema_named(singular.clone(), def.openapi_schema(true));
    let patch = schema_named(format!("{singular}Patch"), def.openapi_schema(false));
    let page = schema_named(
        format!("{singular}Page"),
        json!({
            "type": "object",
            "description": format!("A page of {name}"),
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{singular}")}},
                "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last"}
            }
        }),
    );
    let limit = state.config().server.json_body_limit;
    let def_filter = {
        let def = def.clone();
        warp::any().map(move || def.clone())
    };
    let caller = warp::ext::get::<Caller>();
    let params = warp::ext::get::<PathParams>();
    let query = warp::query::<HashMap<String, String>>();
    let id_doc = "The record's id";
    let org_doc = "The organisation the record belongs to";
    let example_org = "00000000-0000-7000-8000-000000000000";
    let example_id = "00000000-0000-7000-8000-000000000001";

    let mut endpoints = vec![
        Endpoint::get(base, intern(format!("list{plural}")))
            .summary(name, intern(format!("Lists {name} of your organisation")))
            .description(intern(format!(
                "{} Ordered by creation; `limit` (1 to {}, default {}) items per page, \
                 `next_cursor` leads to the next. Superusers may pass `org_id`.",
                def.description,
                super::page::MAX_LIMIT,
                super::page::DEFAULT_LIMIT
            )))
            .authenticated(RateClass::Read)
            .query_param::<i64>("limit", "Items per page", "50")
            .query_param::<String>("cursor", "`next_cursor` of the previous page", "")
            .json_response_schema(StatusCode::OK, "A page of records", page)
            .handle(
                with_state(state)
                    .and(def_filter.clone())
                    .and(caller)
                    .and(query)
                    .then(list::<R>)
                    .map(finish),
            ),
        Endpoint::post(base, intern(format!("create{singular}")))
            .summary(
                name,
                intern(format!("Creates a {}", def.title.to_lowercase())),
            )
            .authenticated(RateClass::Write)
            .audited(name, "create")
            .json_body_schema("The new record", record.clone())
            .json_response_schema(StatusCode::CREATED, "The record created", record.clone())
            .handle(
                with_state(state)
                    .and(def_filter.clone())
                    .and(caller)
                    .and(warp::header::optional::<String>("idempotency-key"))
                    .and(json::<Value>(limit))
                    .then(create::<R>)
                    .map(finish),
            ),
        Endpoint::get(item, intern(format!("get{singular}")))
            .summary(name, intern(format!("Gets a {}", def.title.to_lowercase())))
            .authenticated(RateClass::Read)
            .path_param::<String>("org_id", org_doc, example_org)
            .path_param::<String>("id", id_doc, example_id)
            .json_response_schema(StatusCode::OK, "The record", record.clone())
            .json_responses_if(
                R::WORKED_ON,
                StatusCode::ACCEPTED,
                "The record, still being worked on",
                record.clone(),
            )
            .handle(
                with_state(state)
                    .and(def_filter.clone())
                    .and(caller)
                    .and(params)
                    .then(get::<R>)
                    .map(finish),
            ),
        Endpoint::patch(item, intern(format!("update{singular}")))
            .summary(
                name,
                intern(format!("Changes fields of a {}", def.title.to_lowercase())),
            )
            .description("Fields not in the body stay as they are.")
            .authenticated(RateClass::Write)
            .audited(name, "update")
            .path_param::<String>("org_id", org_doc, example_org)
            .path_param::<String>("id", id_doc, example_id)
            .json_body_schema("The fields to change", patch)
            .json_response_schema(StatusCode::OK, "The record changed", record.clone())
            .handle(
                with_state(state)
                    .and(def_filter.clone())
                    .and(caller)
                    .and(params)
                    .and(json::<Value>(limit))
                    .then(update::<R>)
                    .map(finish),
            ),
        Endpoint::delete(item, intern(format!("delete{singular}")))
            .summary(
                name,
                intern(format!("Deletes a {}", def.title.to_lowercase())),
            )
            .authenticated(RateClass::Write)
            .audited(name, "delete")
            .path_param::<String>("org_id", org_doc, example_org)
            .path_param::<String>("id", id_doc, example_id)
            .response(StatusCode::NO_CONTENT, "Deleted", None)
            .json_responses_if(
                R::WORKED_ON,
                StatusCode::OK,
                "Still being worked on: stopped instead, the record as it is now",
                record.clone(),
            )
            .handle(
                with_state(state)
                    .and(def_filter.clone())
                    .and(caller)
                    .and(params)
                    .then(delete::<R>)
                    .map(finish),
            ),
    ];
    for action in &def.actions {
        let action = Arc::new(action.clone());
        let validator = match jsonschema::validator_for(&action.body) {
            Ok(validator) => Arc::new(validator),
            Err(error) => {
                tracing::error!(resource = name, action = %action.name, %error, "action body schema does not compile");
                continue;
            }
        };
        let action_filter = {
            let action = action.clone();
            warp::any().map(move || (action.clone(), validator.clone()))
        };
        endpoints.push(
            Endpoint::post(
                intern(format!("{}/{{org_id}}/{{id}}/{}", def.path, action.name)),
                intern(format!("{}{singular}", camel(&action.name).to_lowercase())),
            )
            .summary(name, intern(action.summary.clone()))
            .authenticated(RateClass::Write)
            .audited(name, intern(action.name.clone()))
            .path_param::<String>("org_id", org_doc, example_org)
            .path_param::<String>("id", id_doc, example_id)
            .json_body_schema(
                "The action's input",
                schema_named(
                    format!("{singular}{}Input", camel(&action.name)),
                    action.body.clone(),
                ),
            )
            .response(
                StatusCode::OK,
                "Done",
                Some(("application/json", crate::routes::schema_of::<Value>())),
            )
            .handle(
                with_state(state)
                    .and(def_filter.clone())
                    .and(caller)
                    .and(params)
                    .and(action_filter)
                    .and(json::<Value>(limit))
                    .then(run_action::<R>)
                    .map(finish),
            ),
        );
    }
    endpoints
}

fn finish(result: ApiResult<Response>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

/// `feature-flags` → `FeatureFlags`, `Feature flag` → `FeatureFlag`.
fn camel(text: &str) -> String {
    text.split(['-', ' ', '_', '/'])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn json_reply(status: StatusCode, body: &Value) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

fn not_found(def: &ResourceDef, id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no {} record `{id}` exists in this organisation", def.name),
    )
}

/// The organisation and id of an item path; another organisation than the caller's is
/// answered exactly like a missing record.
fn locate<'a>(
    def: &ResourceDef,
    identity: &Identity,
    params: &'a PathParams,
) -> ApiResult<(&'a str, &'a str)> {
    let org_id = params.get("org_id").unwrap_or_default();
    let id = params.get("id").unwrap_or_default();
    if identity.can_reach(org_id) {
        Ok((org_id, id))
    } else {
        Err(not_found(def, id))
    }
}

fn context(state: &AppState, identity: &Identity, org_id: &str) -> WriteContext {
    WriteContext::new(state, identity, org_id)
}

async fn list<R: Resource>(
    state: AppState,
    def: Arc<ResourceDef>,
    caller: Caller,
    query: HashMap<String, String>,
) -> ApiResult<Response> {
    let identity = caller.identity()?;
    def.require(identity.role, Op::Read)?;
    let page = PageRequest::from_query(&query)?;
    let org_id = match query.get("org_id") {
        Some(org_id) if identity.can_reach(org_id) => org_id.clone(),
        Some(org_id) => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no organisation `{org_id}` is yours to list"),
            ));
        }
        None => identity.org_id.clone(),
    };
    let fetch_page = page.clone();
    let rows = state
        .db()
        .run(move |conn| {
            Ok::<_, ApiError>(
                R::list(conn, &org_id, &fetch_page).map_err(crate::db::DbError::from)?,
            )
        })
        .await?;
    let (rows, next_cursor) = page.paginate(rows, R::id);
    let items = rows
        .iter()
        .map(|row| def.view(identity.role, R::present(&state, row)))
        .collect();
    Ok(json_reply(
        StatusCode::OK,
        &serde_json::to_value(Page { items, next_cursor }).map_err(ApiError::internal)?,
    ))
}

async fn create<R: Resource>(
    state: AppState,
    def: Arc<ResourceDef>,
    caller: Caller,
    idempotency_key: Option<String>,
    body: ApiResult<Value>,
) -> ApiResult<Response> {
    let identity = caller.identity()?;
    def.require(identity.role, Op::Create)?;
    let fields = def.check_body(identity.role, &body?, true)?;
    let mut ctx = context(&state, identity, &identity.org_id);
    ctx.idempotency_key = idempotency_key;
    let row = state
        .db()
        .run(move |conn| R::create(conn, &ctx, fields))
        .await?;
    let target = AuditTarget {
        org_id: identity.org_id.clone(),
        id: R::id(&row).to_owned(),
        actor: None,
    };
    let mut response = json_reply(
        StatusCode::CREATED,
        &def.view(identity.role, R::present(&state, &row)),
    );
    response.extensions_mut().insert(target);
    Ok(response)
}

/// Finds the record the path names, after the organisation and role checks.
async fn load<R: Resource>(
    state: &AppState,
    def: &ResourceDef,
    identity: &Identity,
    params: &PathParams,
    op: Op,
) -> ApiResult<R::Row> {
    let (org_id, id) = locate(def, identity, params)?;
    def.require(identity.role, op)?;
    let (org, key) = (org_id.to_owned(), id.to_owned());
    let row = state
        .db()
        .run(move |conn| {
            Ok::<_, ApiError>(R::find(conn, &org, &key).map_err(crate::db::DbError::from)?)
        })
        .await?
        .ok_or_else(|| not_found(def, id))?;
    R::authorize(identity, &row, op)?;
    Ok(row)
}

async fn get<R: Resource>(
    state: AppState,
    def: Arc<ResourceDef>,
    caller: Caller,
    params: PathParams,
) -> ApiResult<Response> {
    let identity = caller.identity()?;
    let row = load::<R>(&state, &def, identity, &params, Op::Read).await?;
    Ok(json_reply(
        R::read_status(&row),
        &def.view(identity.role, R::present(&state, &row)),
    ))
}

async fn update<R: Resource>(
    state: AppState,
    def: Arc<ResourceDef>,
    caller: Caller,
    params: PathParams,
    body: ApiResult<Value>,
) -> ApiResult<Response> {
    let identity = caller.identity()?;
    let row = load::<R>(&state, &def, identity, &params, Op::Update).await?;
    let fields = def.check_body(identity.role, &body?, false)?;
    let ctx = context(&state, identity, params.get("org_id").unwrap_or_default());
    let row = state
        .db()
        .run(move |conn| R::update(conn, &ctx, row, fields))
        .await?;
    Ok(json_reply(
        StatusCode::OK,
        &def.view(identity.role, R::present(&state, &row)),
    ))
}

async fn delete<R: Resource>(
    state: AppState,
    def: Arc<ResourceDef>,
    caller: Caller,
    params: PathParams,
) -> ApiResult<Response> {
    let identity = caller.identity()?;
    let row = load::<R>(&state, &def, identity, &params, Op::Delete).await?;
    let (org_id, id) = (
        params.get("org_id").unwrap_or_default().to_owned(),
        R::id(&row).to_owned(),
    );
    let ctx = context(&state, identity, params.get("org_id").unwrap_or_default());
    let (row, stopped) = state
        .db()
        .run(move |conn| {
            let stopped = R::stop_instead_of_delete(conn, &ctx, &row)?;
            Ok::<_, ApiError>((row, stopped))
        })
        .await?;
    if let Some(stopped) = stopped {
        return Ok(json_reply(
            StatusCode::OK,
            &def.view(identity.role, R::present(&state, &stopped)),
        ));
    }
    let objects = R::stored_objects(&row);
    state
        .db()
        .run(move |conn| {
            Ok::<_, ApiError>(R::delete(conn, &org_id, &id).map_err(crate::db::DbError::from)?)
        })
        .await?;
    // The record is gone first: bytes without a record are only wasted space, a record
    // without its bytes would be a broken file.
    for key in objects {
        if let Err(error) = state.storage().delete(&key).await {
            tracing::warn!(%error, resource = R::NAME, "cannot delete the stored bytes of a deleted record");
        }
    }
    let mut response = Response::default();
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

async fn run_action<R: Resource>(
    state: AppState,
    def: Arc<ResourceDef>,
    caller: Caller,
    params: PathParams,
    (action, validator): (Arc<ActionDef>, Arc<jsonschema::Validator>),
    body: ApiResult<Value>,
) -> ApiResult<Response> {
    let identity = caller.identity()?;
    let (org_id, _) = locate(&def, identity, &params)?;
    identity.require_role(
        &action.roles,
        &format!("run `{}` on {}", action.name, def.name),
    )?;
    let row = load::<R>(&state, &def, identity, &params, Op::Read).await?;
    let body = body?;
    let errors: Vec<crate::error::FieldError> = validator
        .iter_errors(&body)
        .map(|error| crate::error::FieldError {
            path: error.instance_path().to_string(),
            message: error.to_string(),
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "the body is not valid for this action",
        )
        .with_field_errors(errors));
    }
    let fields: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
    let ctx = context(&state, identity, org_id);
    let name = action.name.clone();
    if let Some(work) = R::run_action_async(&state, &ctx, &name, &row, &fields) {
        return Ok(json_reply(StatusCode::OK, &work.await?));
    }
    let result = state
        .db()
        .run(move |conn| R::run_action(conn, &ctx, &name, row, fields))
        .await?;
    Ok(json_reply(StatusCode::OK, &result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_camel_case_identifiers() {
        assert_eq!(camel("feature-flags"), "FeatureFlags");
        assert_eq!(camel("Feature flag"), "FeatureFlag");
        assert_eq!(camel("conversion-jobs"), "ConversionJobs");
    }
}
