//! The audit trail.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | GET | `/api/audit?limit=&cursor=&org_id=` | 200 page of [`AuditEvent`], oldest first |

use std::collections::HashMap;

use diesel::prelude::*;
use http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, with_state};
use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::auth::{Caller, RateClass, Role};
use crate::db::DbError;
use crate::db::schema::audit_events as events;
use crate::error::{ApiError, ApiResult};
use crate::resources::{Page, PageRequest};

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    vec![
        Endpoint::get("/api/audit", "listAuditEvents")
            .summary("audit", "Lists the audit trail")
            .description(
                "Every state-changing call, whatever its outcome: who, organisation, action, \
                 resource, id, request id, time and outcome. Admins see their organisation's; \
                 superusers see every organisation's, or one with `org_id`.",
            )
            .authenticated(RateClass::Read)
            .query_param::<i64>("limit", "Items per page", "50")
            .query_param::<String>("cursor", "`next_cursor` of the previous page", "")
            .query_param::<String>("org_id", "Superusers: only this organisation", "")
            .json_response::<Page<AuditEvent>>(StatusCode::OK, "A page of events")
            .handle(
                with_state(state)
                    .and(warp::ext::get::<Caller>())
                    .and(warp::query::<HashMap<String, String>>())
                    .then(list)
                    .map(|result: ApiResult<Response>| result.unwrap_or_else(Reply::into_response)),
            ),
    ]
}

async fn list(
    state: AppState,
    caller: Caller,
    query: HashMap<String, String>,
) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    identity.require_role(&[Role::Admin], "read the audit trail")?;
    let page = PageRequest::from_query(&query)?;
    let org = if identity.is_superuser() {
        query.get("org_id").filter(|org| !org.is_empty()).cloned()
    } else {
        Some(identity.org_id.clone())
    };
    let fetch = page.clone();
    let rows = state
        .db()
        .run(move |conn| {
            let mut select = events::table
                .filter(events::id.gt(&fetch.after))
                .order(events::id.asc())
                .limit(fetch.fetch())
                .into_boxed();
            if let Some(org) = &org {
                select = select.filter(events::org_id.eq(org));
            }
            select.load::<AuditEvent>(conn).map_err(DbError::from)
        })
        .await
        .map_err(ApiError::from)?;
    let (items, next_cursor) = page.paginate(rows, |event| event.id.as_str());
    Ok(warp::reply::json(&Page { items, next_cursor }).into_response())
}
