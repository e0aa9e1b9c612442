//! Service administration, for superusers: organisations' quotas and retention, and purges.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | GET | `/api/admin/orgs?limit=&cursor=` | 200 page of [`OrgView`] |
//! | GET | `/api/admin/orgs/{org_id}` | 200 [`OrgView`] |
//! | PATCH | `/api/admin/orgs/{org_id}` | 200 [`OrgView`] |
//! | POST | `/api/admin/orgs/{org_id}/purge` | 200 [`Purged`] |

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use http::StatusCode;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, PathParams, json, with_state};
use crate::app::AppState;
use crate::audit::AuditTarget;
use crate::auth::{Caller, RateClass};
use crate::config::Lifetime;
use crate::db::schema::orgs;
use crate::db::{DbConnection, DbError};
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::files::Usage;
use crate::files::reconcile::Purged;
use crate::files::retention::{Lifetimes, OrgRetention, Policy};
use crate::resources::{Page, PageRequest};

/// The visibilities a retention policy names.
const VISIBILITIES: [&str; 4] = ["private", "org", "restricted", "public"];

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let limit = state.config().server.json_body_limit;
    let org_param = |builder: super::EndpointBuilder| {
        builder.path_param::<String>("org_id", "The organisation's id", "default")
    };
    vec![
        Endpoint::get("/api/admin/orgs", "listOrgs")
            .summary(
                "admin",
                "Lists organisations with their quota, retention and usage",
            )
            .description(
                "Every organisation, registered and anonymous, in id order. Superusers only.",
            )
            .authenticated(RateClass::Read)
            .query_param::<i64>("limit", "Items per page", "50")
            .query_param::<String>("cursor", "`next_cursor` of the previous page", "")
            .json_response::<Page<OrgView>>(StatusCode::OK, "A page of organisations")
            .handle(
                with_state(state)
                    .and(warp::ext::get::<Caller>())
                    .and(warp::query::<HashMap<String, String>>())
                    .then(list)
                    .map(finish),
            ),
        org_param(Endpoint::get("/api/admin/orgs/{org_id}", "getOrg"))
            .summary(
                "admin",
                "Shows an organisation's quota, retention and usage",
            )
            .description("Superusers only. An unknown id answers 404.")
            .authenticated(RateClass::Read)
            .json_response::<OrgView>(StatusCode::OK, "The organisation")
            .handle(
                with_state(state)
                    .and(warp::ext::get::<Caller>())
                    .and(warp::ext::get::<PathParams>())
                    .then(show)
                    .map(finish),
            ),
        org_param(Endpoint::patch("/api/admin/orgs/{org_id}", "updateOrg"))
            .summary("admin", "Sets an organisation's own quota or retention")
            .description(
                "`quota_bytes` (a number of bytes, or a size such as `\"50 GiB\"`) replaces the \
                 configured default for this organisation; `null` returns to the default. \
                 `retention` sets how long its files are kept, by visibility (`private`, \
                 `org`, `restricted`, `public`): a duration such as `\"30d\"`, or \
                 `\"forever\"`; a visibility set to `null`, or `retention: null`, returns to \
                 the configured policy. The expiry of the organisation's existing files \
                 follows at once. Superusers only.",
            )
            .authenticated(RateClass::Write)
            .audited("orgs", "update")
            .json_body::<OrgPatch>("What to change; what is left out stays")
            .json_response::<OrgView>(StatusCode::OK, "The organisation, changed")
            .handle(
                with_state(state)
                    .and(warp::ext::get::<Caller>())
                    .and(warp::ext::get::<PathParams>())
                    .and(json::<Value>(limit))
                    .then(update)
                    .map(finish),
            ),
        org_param(Endpoint::post("/api/admin/orgs/{org_id}/purge", "purgeOrg"))
            .summary("admin", "Deletes every stored file of an organisation")
            .description(
                "Cancels the organisation's unfinished jobs, deletes all its file records and \
                 every object under its storage prefix, then recomputes its usage from \
                 storage. Answers what was removed. The organisation, its users and its jobs' \
                 records stay. Superusers only.",
            )
            .authenticated(RateClass::Write)
            .audited("orgs", "purge")
            .json_response::<Purged>(StatusCode::OK, "What was removed, and the usage after")
            .handle(
                with_state(state)
                    .and(warp::ext::get::<Caller>())
                    .and(warp::ext::get::<PathParams>())
                    .then(purge)
                    .map(finish),
            ),
    ]
}

fn finish(result: ApiResult<Response>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

/// An organisation as superusers see it.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct OrgView {
    /// Its id.
    id: String,
    /// Its name.
    name: String,
    /// `standard` or `anonymous`.
    kind: String,
    /// When it was created.
    created_at: String,
    /// When it goes (anonymous sessions).
    expires_at: Option<String>,
    /// Bytes it may store: its own quota, or the configured default for its kind.
    quota_bytes: u64,
    /// Its own quota, if a superuser set one.
    quota_override: Option<u64>,
    /// How long its files are kept, by visibility (its own policy over the configured one).
    retention: Lifetimes,
    /// What its own policy sets; the rest follows the configuration.
    retention_override: OrgRetention,
    /// What it stores.
    usage: Usage,
}

/// Body of `PATCH /api/admin/orgs/{org_id}` (documentation; the body is checked by hand so
/// that `null` and a left-out field differ).
#[derive(Debug, JsonSchema)]
#[allow(dead_code)]
pub(super) struct OrgPatch {
    /// Bytes the organisation may store (a number, or a size such as `"50 GiB"`); `null`
    /// for the configured default.
    #[schemars(with = "Option<Value>")]
    quota_bytes: Option<Option<u64>>,
    /// Its own retention policy by visibility; `null` for the configured one.
    retention: Option<OrgRetention>,
}

fn rfc3339(time: NaiveDateTime) -> String {
    time.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

type OrgRow = (
    String,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<i64>,
    Option<String>,
);

fn view(conn: &mut DbConnection, state: &AppState, row: OrgRow) -> Result<OrgView, DbError> {
    let (id, name, kind, created_at, expires_at, quota, retention) = row;
    let usage = crate::files::usage(conn, &id, &state.config().files)?;
    let own = OrgRetention::from_column(retention.as_deref());
    let policy = Policy::new(&state.config().retention, &kind, expires_at, own.clone());
    Ok(OrgView {
        usage,
        quota_bytes: usage.quota_bytes,
        quota_override: quota.and_then(|bytes| u64::try_from(bytes).ok()),
        retention: policy.lifetimes(),
        retention_override: own,
        id,
        name,
        kind,
        created_at: rfc3339(created_at),
        expires_at: expires_at.map(rfc3339),
    })
}

fn columns() -> (
    orgs::id,
    orgs::name,
    orgs::kind,
    orgs::created_at,
    orgs::expires_at,
    orgs::quota_bytes,
    orgs::retention,
) {
    (
        orgs::id,
        orgs::name,
        orgs::kind,
        orgs::created_at,
        orgs::expires_at,
        orgs::quota_bytes,
        orgs::retention,
    )
}

fn load(conn: &mut DbConnection, state: &AppState, org_id: &str) -> ApiResult<OrgView> {
    let row: Option<OrgRow> = orgs::table
        .find(org_id)
        .select(columns())
        .first(conn)
        .optional()
        .map_err(DbError::from)?;
    let row = row.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("there is no organisation `{org_id}`"),
        )
    })?;
    Ok(view(conn, state, row)?)
}

/// Fails with 403 unless the caller is a superuser.
fn superuser(caller: &Caller, what: &str) -> ApiResult<()> {
    caller.identity()?.require_role(&[], what)
}

async fn list(
    state: AppState,
    caller: Caller,
    query: HashMap<String, String>,
) -> ApiResult<Response> {
    superuser(&caller, "list organisations")?;
    let page = PageRequest::from_query(&query)?;
    let fetch = page.clone();
    let reader = state.clone();
    let views = state
        .db()
        .run(move |conn| {
            let rows: Vec<OrgRow> = orgs::table
                .filter(orgs::id.gt(&fetch.after))
                .order(orgs::id.asc())
                .limit(fetch.fetch())
                .select(columns())
                .load(conn)?;
            rows.into_iter()
                .map(|row| view(conn, &reader, row))
                .collect::<Result<Vec<_>, DbError>>()
        })
        .await?;
    let (items, next_cursor) = page.paginate(views, |org| org.id.as_str());
    Ok(warp::reply::json(&Page { items, next_cursor }).into_response())
}

async fn show(state: AppState, caller: Caller, params: PathParams) -> ApiResult<Response> {
    superuser(&caller, "see organisations")?;
    let org_id = params.get("org_id").unwrap_or_default().to_owned();
    let reader = state.clone();
    let org = state
        .db()
        .run(move |conn| load(conn, &reader, &org_id))
        .await?;
    Ok(warp::reply::json(&org).into_response())
}

/// What a checked `PATCH` body changes.
#[derive(Debug, Default)]
struct Change {
    /// `Some(None)`: back to the default.
    quota: Option<Option<u64>>,
    /// Per visibility, `Some(None)`: back to the configured lifetime.
    retention: Vec<(&'static str, Option<Lifetime>)>,
}

fn check_patch(body: &Value) -> ApiResult<Change> {
    let Some(fields) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "",
            "must be an object such as {\"quota_bytes\": \"50 GiB\"}",
        ));
    };
    let mut errors = Vec::new();
    let mut change = Change::default();
    let mut error = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.to_owned(),
            message,
        });
    };
    for (name, value) in fields {
        match name.as_str() {
            "quota_bytes" => match value {
                Value::Null => change.quota = Some(None),
                Value::Number(number) => match number.as_u64() {
                    Some(bytes) => change.quota = Some(Some(bytes)),
                    None => error(
                        "/quota_bytes",
                        "is a whole number of bytes, 0 or more".into(),
                    ),
                },
                Value::String(text) => match text.parse::<bytesize::ByteSize>() {
                    Ok(size) => change.quota = Some(Some(size.as_u64())),
                    Err(_) => error(
                        "/quota_bytes",
                        format!("`{text}` is not a size; write bytes, or e.g. \"50 GiB\""),
                    ),
                },
                _ => error(
                    "/quota_bytes",
                    "is a number of bytes, a size such as \"50 GiB\", or null".into(),
                ),
            },
            "retention" => match value {
                Value::Null => {
                    change.retention = VISIBILITIES.iter().map(|name| (*name, None)).collect();
                }
                Value::Object(policy) => check_retention(policy, &mut change, &mut error),
                _ => error(
                    "/retention",
                    "is an object such as {\"public\": \"7d\"}, or null".into(),
                ),
            },
            other => error(
                &format!("/{other}"),
                "is not a setting of an organisation; allowed are quota_bytes and retention".into(),
            ),
        }
    }
    if errors.is_empty() {
        Ok(change)
    } else {
        Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "the body is not valid; see `errors`",
        )
        .with_field_errors(errors))
    }
}

fn check_retention(
    policy: &Map<String, Value>,
    change: &mut Change,
    error: &mut impl FnMut(&str, String),
) {
    for (visibility, value) in policy {
        let path = format!("/retention/{visibility}");
        let Some(name) = VISIBILITIES.iter().find(|name| **name == visibility) else {
            error(
                &path,
                "is not a visibility; allowed are private, org, restricted and public".into(),
            );
            continue;
        };
        match value {
            Value::Null => change.retention.push((name, None)),
            Value::String(text) => match Lifetime::parse(text) {
                Ok(lifetime) => change.retention.push((name, Some(lifetime))),
                Err(message) => error(&path, message),
            },
            _ => error(
                &path,
                "is a duration such as \"30d\", \"forever\", or null".into(),
            ),
        }
    }
}

async fn update(
    state: AppState,
    caller: Caller,
    params: PathParams,
    body: ApiResult<Value>,
) -> ApiResult<Response> {
    superuser(&caller, "change organisations")?;
    let change = check_patch(&body?)?;
    let org_id = params.get("org_id").unwrap_or_default().to_owned();
    let writer = state.clone();
    let org = state
        .db()
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                let current = load(conn, &writer, &org_id)?;
                let time = crate::db::now();
                if let Some(quota) = change.quota {
                    diesel::update(orgs::table.find(&org_id))
                        .set((
                            orgs::quota_bytes
                                .eq(quota.map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX))),
                            orgs::updated_at.eq(time),
                        ))
                        .execute(conn)
                        .map_err(DbError::from)?;
                }
                if !change.retention.is_empty() {
                    let mut own = current.retention_override;
                    for (visibility, lifetime) in &change.retention {
                        match *visibility {
                            "private" => own.private = *lifetime,
                            "org" => own.org = *lifetime,
                            "restricted" => own.restricted = *lifetime,
                            _ => own.public = *lifetime,
                        }
                    }
                    diesel::update(orgs::table.find(&org_id))
                        .set((
                            orgs::retention.eq(own.to_column()),
                            orgs::updated_at.eq(time),
                        ))
                        .execute(conn)
                        .map_err(DbError::from)?;
                    crate::files::retention::refresh_org(conn, &writer.config().retention, &org_id)
                        .map_err(DbError::from)?;
                }
                load(conn, &writer, &org_id)
            })
        })
        .await?;
    let target = AuditTarget {
        org_id: org.id.clone(),
        id: org.id.clone(),
        actor: None,
    };
    let mut response = warp::reply::json(&org).into_response();
    response.extensions_mut().insert(target);
    Ok(response)
}

async fn purge(state: AppState, caller: Caller, params: PathParams) -> ApiResult<Response> {
    superuser(&caller, "purge organisations")?;
    let org_id = params.get("org_id").unwrap_or_default().to_owned();
    let purged = crate::files::reconcile::purge(&state, &org_id).await?;
    tracing::info!(
        org_id = %purged.org_id,
        files = purged.files_removed,
        objects = purged.objects_removed,
        bytes = purged.bytes_removed,
        jobs_canceled = purged.jobs_canceled,
        "purged an organisation's stored files"
    );
    let mut response = warp::reply::json(&purged).into_response();
    response.extensions_mut().insert(AuditTarget {
        org_id: org_id.clone(),
        id: org_id,
        actor: None,
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn patches_are_checked_field_by_field() {
        let change = check_patch(&json!({
            "quota_bytes": "50 GiB",
            "retention": {"public": "7d", "private": null}
        }))
        .unwrap();
        assert_eq!(change.quota, Some(Some(50 << 30)));
        assert_eq!(
            change.retention,
            vec![
                ("private", None),
                (
                    "public",
                    Some(Lifetime::For(std::time::Duration::from_secs(7 * 86400)))
                )
            ]
        );
        assert_eq!(
            check_patch(&json!({"quota_bytes": null})).unwrap().quota,
            Some(None)
        );

        let error = check_patch(&json!({
            "quota_bytes": -5,
            "retention": {"secret": "1d", "public": "soon", "org": "0s"},
            "name": "x"
        }))
        .unwrap_err();
        let paths: Vec<&str> = error
            .field_errors()
            .iter()
            .map(|error| error.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "/name",
                "/quota_bytes",
                "/retention/org",
                "/retention/public",
                "/retention/secret"
            ]
        );
    }
}
