//! `feature-flags`: switches that turn features on or off for an organisation.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value, json};

use super::fields::{
    boolean, new_id, nullable_text, object, scoped_table_queries, table_writes, text, time,
};
use super::{Resource, WriteContext};
use crate::db::schema::feature_flags;
use crate::error::ApiResult;

/// A row of `feature_flags`.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = feature_flags, treat_none_as_null = true)]
pub(super) struct FeatureFlagRow {
    id: String,
    org_id: String,
    name: String,
    enabled: bool,
    description: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

table_writes!(feature_flags, FeatureFlagRow);

/// The `feature-flags` resource.
pub(super) struct FeatureFlags;

impl Resource for FeatureFlags {
    const NAME: &'static str = "feature-flags";
    const SCHEMA: &'static str = include_str!("../../../schemas/feature-flags.json");
    type Row = FeatureFlagRow;

    scoped_table_queries!(feature_flags, FeatureFlagRow);

    fn to_json(row: &FeatureFlagRow) -> Map<String, Value> {
        object(json!({
            "id": row.id,
            "org_id": row.org_id,
            "name": row.name,
            "enabled": row.enabled,
            "description": row.description,
            "created_at": time(row.created_at),
            "updated_at": time(row.updated_at),
        }))
    }

    fn create(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        body: Map<String, Value>,
    ) -> ApiResult<FeatureFlagRow> {
        let row = FeatureFlagRow {
            id: new_id(),
            org_id: ctx.org_id.clone(),
            name: text(&body, "name").unwrap_or_default(),
            enabled: boolean(&body, "enabled").unwrap_or(false),
            description: nullable_text(&body, "description").flatten(),
            created_at: ctx.now,
            updated_at: ctx.now,
        };
        insert(conn, row)
    }

    fn update(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        mut row: FeatureFlagRow,
        body: Map<String, Value>,
    ) -> ApiResult<FeatureFlagRow> {
        if let Some(name) = text(&body, "name") {
            row.name = name;
        }
        if let Some(enabled) = boolean(&body, "enabled") {
            row.enabled = enabled;
        }
        if let Some(description) = nullable_text(&body, "description") {
            row.description = description;
        }
        row.updated_at = ctx.now;
        save(conn, row)
    }
}
