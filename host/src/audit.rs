//! The audit trail: one event per state-changing call, written by the service layer after
//! the endpoint answered, whatever the outcome (so denied and failed attempts are recorded
//! too).

use diesel::prelude::*;
use schemars::JsonSchema;
use serde::Serialize;

use crate::db::schema::audit_events;
use crate::db::{Db, DbError, now};

/// Set by a handler on its response (as an extension) to name what it created or changed,
/// when the path does not say (e.g. the id of a created resource).
#[derive(Clone, Debug)]
pub struct AuditTarget {
    /// The organisation the object belongs to.
    pub org_id: String,
    /// The object's id.
    pub id: String,
    /// Who acted, when the request carried no identity but the handler established one
    /// (a sign-in): `(user id, actor kind)`.
    pub actor: Option<(String, &'static str)>,
}

/// One event, as stored.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// The organisation concerned, when known.
    pub org_id: Option<String>,
    /// Who acted, when known.
    pub actor_user_id: Option<String>,
    /// `user`, `api_key`, `anonymous`, `gateway` or `system`.
    pub actor_kind: &'static str,
    /// What was attempted, e.g. `create`.
    pub action: &'static str,
    /// On what kind of object, e.g. `settings`.
    pub resource: &'static str,
    /// The object, when known.
    pub resource_id: Option<String>,
    /// The request.
    pub request_id: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

impl NewEvent {
    /// `success` (2xx, 3xx), `denied` (401, 403, 404, 429) or `failure`.
    pub fn outcome(&self) -> &'static str {
        match self.status {
            200..=399 => "success",
            401 | 403 | 404 | 429 => "denied",
            _ => "failure",
        }
    }
}

/// Writes `event`; a failure is logged, never passed on (the request already happened).
pub async fn record(db: &Db, event: NewEvent) {
    let outcome = event.outcome();
    let detail = serde_json::json!({ "status": event.status }).to_string();
    let written = db
        .run(move |conn| {
            diesel::insert_into(audit_events::table)
                .values((
                    audit_events::id.eq(uuid::Uuid::now_v7().to_string()),
                    audit_events::org_id.eq(&event.org_id),
                    audit_events::actor_user_id.eq(&event.actor_user_id),
                    audit_events::actor_kind.eq(event.actor_kind),
                    audit_events::action.eq(event.action),
                    audit_events::resource.eq(event.resource),
                    audit_events::resource_id.eq(&event.resource_id),
                    audit_events::request_id.eq(&event.request_id),
                    audit_events::outcome.eq(outcome),
                    audit_events::detail.eq(Some(detail)),
                    audit_events::created_at.eq(now()),
                ))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await;
    if let Err(error) = written {
        tracing::error!(%error, "cannot write an audit event");
    }
}

/// An audit event, as `GET /api/audit` shows it.
#[derive(Debug, Serialize, JsonSchema, Queryable)]
pub struct AuditEvent {
    /// Time-ordered id.
    pub id: String,
    /// The organisation concerned.
    pub org_id: Option<String>,
    /// Who acted.
    pub actor_user_id: Option<String>,
    /// `user`, `api_key`, `anonymous`, `gateway` or `system`.
    pub actor_kind: String,
    /// What was attempted.
    pub action: String,
    /// On what kind of object.
    pub resource: String,
    /// The object.
    pub resource_id: Option<String>,
    /// The request (its `X-Request-Id`).
    pub request_id: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// More about it (the HTTP status).
    #[schemars(with = "Option<serde_json::Value>")]
    #[serde(serialize_with = "json_text")]
    pub detail: Option<String>,
    /// When.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::db::serialize_time")]
    pub created_at: chrono::NaiveDateTime,
}

fn json_text<S: serde::Serializer>(
    text: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let value = text
        .as_deref()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok());
    value.serialize(serializer)
}
