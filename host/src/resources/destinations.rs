//! `destinations`: named places outputs can be written to (and cloud inputs read from).
//! Credentials are encrypted at rest, never returned, and checked by the `test` action,
//! which writes, reads back and deletes a probe object.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value, json};

use super::fields::{
    json_text, new_id, object, parse_json, scoped_table_queries, table_writes, text, time,
};
use super::{Resource, WriteContext};
use crate::app::AppState;
use crate::auth::sealing::Sealer;
use crate::db::schema::destinations;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::storage::external::{Service, Target, open_credentials, seal_credentials};

/// A row of `destinations`.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = destinations, treat_none_as_null = true)]
pub struct DestinationRow {
    pub(crate) id: String,
    pub(crate) org_id: String,
    name: String,
    kind: String,
    parameters: String,
    credentials: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl DestinationRow {
    /// The destination as a target, its credentials opened.
    pub fn target(&self, sealer: &Sealer) -> ApiResult<Target> {
        let service = Service::parse(&self.kind)
            .map_err(|message| ApiError::new(ErrorCode::Internal, message))?;
        let credentials = open_credentials(sealer, self.credentials.as_deref())?;
        let parameters = match parse_json(&self.parameters) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Ok(Target::new(service, parameters, credentials))
    }
}

/// The destination `id` of `org_id`, if any.
pub(crate) fn find(
    conn: &mut crate::db::DbConnection,
    org_id: &str,
    id: &str,
) -> diesel::QueryResult<Option<DestinationRow>> {
    destinations::table
        .filter(destinations::org_id.eq(org_id))
        .filter(destinations::id.eq(id))
        .select(DestinationRow::as_select())
        .first(conn)
        .optional()
}

/// The service a body's `type` names (aliases accepted; `box` refused with 400).
fn service_of(body: &Map<String, Value>) -> ApiResult<Option<Service>> {
    text(body, "type")
        .map(|name| Service::from_field(&name, "/type"))
        .transpose()
}

/// Refuses a target whose parameters or credentials do not fit its service (422, each
/// field named).
fn check(target: &Target) -> ApiResult<()> {
    let problems = target.problems("", &[]);
    if problems.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::ValidationFailed,
        format!(
            "the {} destination is not complete: {}",
            target.service.as_str(),
            problems
                .iter()
                .map(|problem| format!("{} {}", problem.path, problem.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    )
    .with_field_errors(problems))
}

fn object_of(body: &Map<String, Value>, key: &str) -> Map<String, Value> {
    match body.get(key) {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    }
}

table_writes!(destinations, DestinationRow);

/// The `destinations` resource.
pub(super) struct Destinations;

impl Resource for Destinations {
    const NAME: &'static str = "destinations";
    const SCHEMA: &'static str = include_str!("../../../schemas/destinations.json");
    type Row = DestinationRow;

    scoped_table_queries!(destinations, DestinationRow);

    fn to_json(row: &DestinationRow) -> Map<String, Value> {
        object(json!({
            "id": row.id,
            "org_id": row.org_id,
            "name": row.name,
            "type": row.kind,
            "parameters": parse_json(&row.parameters),
            "has_credentials": row.credentials.is_some(),
            "created_at": time(row.created_at),
            "updated_at": time(row.updated_at),
        }))
    }

    fn create(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        body: Map<String, Value>,
    ) -> ApiResult<DestinationRow> {
        let service = service_of(&body)?.unwrap_or(Service::S3);
        let target = Target::new(
            service,
            object_of(&body, "parameters"),
            object_of(&body, "credentials"),
        );
        check(&target)?;
        let row = DestinationRow {
            id: new_id(),
            org_id: ctx.org_id.clone(),
            name: text(&body, "name").unwrap_or_default(),
            kind: service.as_str().to_owned(),
            parameters: Value::Object(target.parameters.clone()).to_string(),
            credentials: seal_credentials(&ctx.sealer, &target.credentials),
            created_at: ctx.now,
            updated_at: ctx.now,
        };
        insert(conn, row)
    }

    fn update(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        mut row: DestinationRow,
        body: Map<String, Value>,
    ) -> ApiResult<DestinationRow> {
        if let Some(name) = text(&body, "name") {
            row.name = name;
        }
        if let Some(service) = service_of(&body)? {
            row.kind = service.as_str().to_owned();
        }
        if let Some(parameters) = json_text(&body, "parameters") {
            row.parameters = parameters;
        }
        let mut target = row.target(&ctx.sealer)?;
        if body.contains_key("credentials") {
            target = Target::new(
                target.service,
                target.parameters,
                object_of(&body, "credentials"),
            );
        }
        check(&target)?;
        row.parameters = Value::Object(target.parameters.clone()).to_string();
        row.credentials = seal_credentials(&ctx.sealer, &target.credentials);
        row.updated_at = ctx.now;
        save(conn, row)
    }

    fn run_action_async(
        state: &AppState,
        ctx: &WriteContext,
        name: &str,
        row: &DestinationRow,
        _body: &Map<String, Value>,
    ) -> Option<futures_util::future::BoxFuture<'static, ApiResult<Value>>> {
        if name != "test" {
            return None;
        }
        let target = row.target(&ctx.sealer);
        let allow_private = state.config().jobs.allow_private_networks;
        let (id, name) = (row.id.clone(), row.name.clone());
        Some(Box::pin(async move {
            let opened = target?.open(allow_private).await?;
            let report = opened.probe().await?;
            tracing::info!(destination = %id, name = %name, took_ms = report.took_ms, "destination tested");
            Ok(serde_json::to_value(report).unwrap_or(Value::Null))
        }))
    }
}
