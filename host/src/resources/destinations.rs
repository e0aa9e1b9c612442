//! `destinations`: named places outputs can be written to. Credentials are encrypted at
//! rest and never returned.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value, json};

use super::fields::{
    json_text, new_id, object, parse_json, scoped_table_queries, table_writes, text, time,
};
use super::{Resource, WriteContext};
use crate::db::schema::destinations;
use crate::error::ApiResult;

/// A row of `destinations`.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = destinations, treat_none_as_null = true)]
pub(super) struct DestinationRow {
    id: String,
    org_id: String,
    name: String,
    kind: String,
    parameters: String,
    credentials: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

table_writes!(destinations, DestinationRow);

/// The `destinations` resource.
pub(super) struct Destinations;

fn sealed_credentials(ctx: &WriteContext, body: &Map<String, Value>) -> Option<Option<String>> {
    body.get("credentials")
        .map(|credentials| match credentials {
            Value::Object(map) if map.is_empty() => None,
            Value::Null => None,
            credentials => Some(ctx.sealer.seal(credentials.to_string().as_bytes())),
        })
}

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
        let row = DestinationRow {
            id: new_id(),
            org_id: ctx.org_id.clone(),
            name: text(&body, "name").unwrap_or_default(),
            kind: text(&body, "type").unwrap_or_default(),
            parameters: json_text(&body, "parameters").unwrap_or_else(|| "{}".into()),
            credentials: sealed_credentials(ctx, &body).flatten(),
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
        if let Some(kind) = text(&body, "type") {
            row.kind = kind;
        }
        if let Some(parameters) = json_text(&body, "parameters") {
            row.parameters = parameters;
        }
        if let Some(credentials) = sealed_credentials(ctx, &body) {
            row.credentials = credentials;
        }
        row.updated_at = ctx.now;
        save(conn, row)
    }
}
