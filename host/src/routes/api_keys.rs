//! API keys of the caller.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | POST | `/api/api-keys` | 201 [`CreatedKey`] (the key is shown this once) |
//! | GET | `/api/api-keys?limit=&cursor=` | 200 page of [`ApiKey`] |
//! | DELETE | `/api/api-keys/{key_id}` | 204; the key stops working at once |

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, PathParams, json, with_state};
use crate::app::AppState;
use crate::audit::AuditTarget;
use crate::auth::{Caller, RateClass, Role, api_keys};
use crate::db::schema::api_keys as keys;
use crate::db::{DbError, now, serialize_optional_time, serialize_time};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::resources::{Page, PageRequest};

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let limit = state.config().server.json_body_limit;
    let caller = warp::ext::get::<Caller>();
    vec![
        Endpoint::post("/api/api-keys", "createApiKey")
            .summary("api-keys", "Creates an API key")
            .description(
                "The answer holds the key itself, shown this once only: store it. Send it as \
                 `X-API-Key`. It acts with your role, narrowed to its `scopes`.",
            )
            .authenticated(RateClass::Write)
            .audited("api-keys", "create")
            .json_body::<NewApiKey>("The key's name, scopes and expiry")
            .json_response::<CreatedKey>(StatusCode::CREATED, "The key, with its secret")
            .handle(
                with_state(state)
                    .and(caller)
                    .and(json::<NewApiKey>(limit))
                    .then(create)
                    .map(finish),
            ),
        Endpoint::get("/api/api-keys", "listApiKeys")
            .summary("api-keys", "Lists your API keys (without their secrets)")
            .authenticated(RateClass::Read)
            .query_param::<i64>("limit", "Items per page", "50")
            .query_param::<String>("cursor", "`next_cursor` of the previous page", "")
            .json_response::<Page<ApiKey>>(StatusCode::OK, "A page of keys")
            .handle(
                with_state(state)
                    .and(caller)
                    .and(warp::query::<HashMap<String, String>>())
                    .then(list)
                    .map(finish),
            ),
        Endpoint::delete("/api/api-keys/{key_id}", "deleteApiKey")
            .summary("api-keys", "Revokes an API key")
            .authenticated(RateClass::Write)
            .audited("api-keys", "delete")
            .path_param::<String>(
                "key_id",
                "The key's id",
                "00000000-0000-7000-8000-000000000000",
            )
            .response(StatusCode::NO_CONTENT, "Revoked", None)
            .handle(
                with_state(state)
                    .and(caller)
                    .and(warp::ext::get::<PathParams>())
                    .then(delete)
                    .map(finish),
            ),
    ]
}

fn finish(result: ApiResult<Response>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

/// Body of `POST /api/api-keys`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewApiKey {
    /// What the key is for (1 to 100 characters).
    name: String,
    /// Route classes the key may call; all three when absent.
    scopes: Option<Vec<RateClass>>,
    /// When the key stops working (RFC 3339, in the future); never when absent.
    expires_at: Option<DateTime<Utc>>,
}

/// An API key, without its secret.
#[derive(Debug, Serialize, JsonSchema, Queryable)]
pub(super) struct ApiKey {
    /// Id (used to revoke it).
    id: String,
    /// What it is for.
    name: String,
    /// The public part at the start of the key, to recognise it.
    prefix: String,
    /// Route classes it may call.
    #[serde(serialize_with = "scopes_json")]
    #[schemars(with = "Vec<RateClass>")]
    scopes: String,
    /// When it was made.
    #[serde(serialize_with = "serialize_time")]
    #[schemars(with = "String")]
    created_at: NaiveDateTime,
    /// When it stops working.
    #[serde(serialize_with = "serialize_optional_time")]
    #[schemars(with = "Option<String>")]
    expires_at: Option<NaiveDateTime>,
    /// When it was last used (to the minute).
    #[serde(serialize_with = "serialize_optional_time")]
    #[schemars(with = "Option<String>")]
    last_used_at: Option<NaiveDateTime>,
}

fn scopes_json<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serde_json::from_str::<serde_json::Value>(text)
        .unwrap_or_default()
        .serialize(serializer)
}

/// A new key, with its secret.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct CreatedKey {
    /// The key.
    #[serde(flatten)]
    record: ApiKey,
    /// The key to send as `X-API-Key`. Shown this once; only a digest is stored.
    key: String,
}

async fn create(
    state: AppState,
    caller: Caller,
    body: ApiResult<NewApiKey>,
) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    if identity.role == Role::Anonymous {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "anonymous sessions cannot make API keys; sign in",
        ));
    }
    let body = body?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid_field("/name", "is 1 to 100 characters"));
    }
    let mut scopes = body.scopes.unwrap_or_else(|| RateClass::ALL.to_vec());
    scopes.dedup();
    if scopes.is_empty() {
        return Err(ApiError::invalid_field(
            "/scopes",
            "lists at least one of read, write, convert",
        ));
    }
    if let Some(key_id) = &identity.key_id {
        // A key may only make keys no wider than itself.
        if scopes.iter().any(|scope| !identity.scopes.contains(scope)) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("API key {key_id} may not grant scopes it lacks"),
            ));
        }
    }
    let now = now();
    let expires_at = body.expires_at.map(|time| time.naive_utc());
    if expires_at.is_some_and(|expires| expires <= now) {
        return Err(ApiError::invalid_field("/expires_at", "is in the past"));
    }
    let generated = api_keys::generate();
    let record = ApiKey {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        prefix: generated.prefix.clone(),
        scopes: serde_json::to_string(&scopes).map_err(ApiError::internal)?,
        created_at: now,
        expires_at,
        last_used_at: None,
    };
    let (id, prefix, scopes_text, hash) = (
        record.id.clone(),
        record.prefix.clone(),
        record.scopes.clone(),
        generated.secret_hash,
    );
    let (org_id, user_id, name) = (
        identity.org_id.clone(),
        identity.user_id.clone(),
        record.name.clone(),
    );
    state
        .db()
        .run(move |conn| {
            diesel::insert_into(keys::table)
                .values((
                    keys::id.eq(&id),
                    keys::org_id.eq(&org_id),
                    keys::user_id.eq(&user_id),
                    keys::name.eq(&name),
                    keys::prefix.eq(&prefix),
                    keys::secret_hash.eq(&hash),
                    keys::scopes.eq(&scopes_text),
                    keys::created_at.eq(now),
                    keys::expires_at.eq(expires_at),
                ))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await?;
    let target = AuditTarget {
        org_id: identity.org_id.clone(),
        id: record.id.clone(),
        actor: None,
    };
    let created = CreatedKey {
        record,
        key: generated.key,
    };
    let mut response =
        warp::reply::with_status(warp::reply::json(&created), StatusCode::CREATED).into_response();
    response.extensions_mut().insert(target);
    Ok(response)
}

async fn list(
    state: AppState,
    caller: Caller,
    query: HashMap<String, String>,
) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    let page = PageRequest::from_query(&query)?;
    let fetch = page.clone();
    let rows = state
        .db()
        .run(move |conn| {
            keys::table
                .filter(keys::user_id.eq(&identity.user_id))
                .filter(keys::revoked_at.is_null())
                .filter(keys::id.gt(&fetch.after))
                .order(keys::id.asc())
                .limit(fetch.fetch())
                .select((
                    keys::id,
                    keys::name,
                    keys::prefix,
                    keys::scopes,
                    keys::created_at,
                    keys::expires_at,
                    keys::last_used_at,
                ))
                .load::<ApiKey>(conn)
                .map_err(DbError::from)
        })
        .await?;
    let (items, next_cursor) = page.paginate(rows, |key| key.id.as_str());
    Ok(warp::reply::json(&Page { items, next_cursor }).into_response())
}

async fn delete(state: AppState, caller: Caller, params: PathParams) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    let key_id = params.get("key_id").unwrap_or_default().to_owned();
    let missing = ApiError::new(
        ErrorCode::NotFound,
        format!("you have no API key `{key_id}`"),
    );
    let revoked = state
        .db()
        .run(move |conn| {
            diesel::update(
                keys::table
                    .filter(keys::id.eq(&key_id))
                    .filter(keys::user_id.eq(&identity.user_id))
                    .filter(keys::revoked_at.is_null()),
            )
            .set(keys::revoked_at.eq(now()))
            .execute(conn)
            .map_err(DbError::from)
        })
        .await?;
    if revoked == 0 {
        return Err(missing);
    }
    let mut response = Response::default();
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}
