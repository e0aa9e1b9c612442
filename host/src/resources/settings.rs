//! `settings`: named values of an organisation's configuration.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value, json};

use super::fields::{
    json_text, new_id, nullable_text, object, parse_json, scoped_table_queries, table_writes, text,
    time,
};
use super::{Resource, WriteContext};
use crate::db::schema::settings;
use crate::error::ApiResult;

/// A row of `settings`.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = settings, treat_none_as_null = true)]
pub(super) struct SettingRow {
    id: String,
    org_id: String,
    key: String,
    value: String,
    description: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

table_writes!(settings, SettingRow);

/// The `settings` resource.
pub(super) struct Settings;

impl Resource for Settings {
    const NAME: &'static str = "settings";
    const SCHEMA: &'static str = include_str!("../../../schemas/settings.json");
    type Row = SettingRow;

    scoped_table_queries!(settings, SettingRow);

    fn to_json(row: &SettingRow) -> Map<String, Value> {
        object(json!({
            "id": row.id,
            "org_id": row.org_id,
            "key": row.key,
            "value": parse_json(&row.value),
            "description": row.description,
            "created_at": time(row.created_at),
            "updated_at": time(row.updated_at),
        }))
    }

    fn create(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        body: Map<String, Value>,
    ) -> ApiResult<SettingRow> {
        let row = SettingRow {
            id: new_id(),
            org_id: ctx.org_id.clone(),
            key: text(&body, "key").unwrap_or_default(),
            value: json_text(&body, "value").unwrap_or_else(|| "null".into()),
            description: nullable_text(&body, "description").flatten(),
            created_at: ctx.now,
            updated_at: ctx.now,
        };
        insert(conn, row)
    }

    fn update(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        mut row: SettingRow,
        body: Map<String, Value>,
    ) -> ApiResult<SettingRow> {
        if let Some(key) = text(&body, "key") {
            row.key = key;
        }
        if let Some(value) = json_text(&body, "value") {
            row.value = value;
        }
        if let Some(description) = nullable_text(&body, "description") {
            row.description = description;
        }
        row.updated_at = ctx.now;
        save(conn, row)
    }
}
