//! Reading validated bodies, and the queries every resource table shares.

use serde_json::{Map, Value};

/// A string field, if present and not null.
pub(super) fn text(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A nullable field: `None` when absent (keep), `Some(None)` when `null` (clear).
pub(super) fn nullable_text(body: &Map<String, Value>, key: &str) -> Option<Option<String>> {
    body.get(key).map(|value| value.as_str().map(str::to_owned))
}

/// A boolean field, if present.
pub(super) fn boolean(body: &Map<String, Value>, key: &str) -> Option<bool> {
    body.get(key).and_then(Value::as_bool)
}

/// A field of any JSON, stored as JSON text.
pub(super) fn json_text(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).map(Value::to_string)
}

/// Stored JSON text back as JSON (`null` if it does not parse).
pub(super) fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A `json!({...})` object as a map.
pub(super) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A fresh, time-ordered id.
pub(super) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A stored time as JSON (RFC 3339, UTC).
pub(super) fn time(value: chrono::NaiveDateTime) -> Value {
    Value::String(
        value
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
}

/// An optional stored time as JSON.
pub(super) fn optional_time(value: Option<chrono::NaiveDateTime>) -> Value {
    value.map_or(Value::Null, time)
}

/// The `id`, `list`, `find` and `delete` of a [`super::Resource`] whose table has `id` and
/// `org_id` columns and whose row type is `$row` (diesel `Queryable + Selectable`).
macro_rules! scoped_table_queries {
    ($table:ident, $row:ty) => {
        fn id(row: &$row) -> &str {
            &row.id
        }

        fn list(
            conn: &mut $crate::db::DbConnection,
            org_id: &str,
            page: &$crate::resources::PageRequest,
        ) -> diesel::QueryResult<Vec<$row>> {
            use diesel::prelude::*;
            $table::table
                .filter($table::org_id.eq(org_id))
                .filter($table::id.gt(&page.after))
                .order($table::id.asc())
                .limit(page.fetch())
                .select(<$row>::as_select())
                .load(conn)
        }

        fn find(
            conn: &mut $crate::db::DbConnection,
            org_id: &str,
            id: &str,
        ) -> diesel::QueryResult<Option<$row>> {
            use diesel::prelude::*;
            $table::table
                .filter($table::org_id.eq(org_id))
                .filter($table::id.eq(id))
                .select(<$row>::as_select())
                .first(conn)
                .optional()
        }

        fn delete(
            conn: &mut $crate::db::DbConnection,
            org_id: &str,
            id: &str,
        ) -> diesel::QueryResult<usize> {
            use diesel::prelude::*;
            diesel::delete(
                $table::table
                    .filter($table::org_id.eq(org_id))
                    .filter($table::id.eq(id)),
            )
            .execute(conn)
        }
    };
}
pub(super) use scoped_table_queries;

/// `insert` and `save` (update by id) of a row type that is diesel `Insertable` and
/// `AsChangeset` for `$table`, as free functions of the resource's module.
macro_rules! table_writes {
    ($table:ident, $row:ty) => {
        $crate::resources::fields::table_writes!(save: $table, $row);

        /// Inserts `row` and returns it.
        fn insert(
            conn: &mut $crate::db::DbConnection,
            row: $row,
        ) -> $crate::error::ApiResult<$row> {
            use diesel::prelude::*;
            diesel::insert_into($table::table)
                .values(&row)
                .execute(conn)
                .map_err($crate::db::DbError::from)?;
            Ok(row)
        }
    };
    (save: $table:ident, $row:ty) => {
        /// Writes every column of `row` (found by id) and returns it.
        fn save(conn: &mut $crate::db::DbConnection, row: $row) -> $crate::error::ApiResult<$row> {
            use diesel::prelude::*;
            diesel::update($table::table.find(&row.id))
                .set(&row)
                .execute(conn)
                .map_err($crate::db::DbError::from)?;
            Ok(row)
        }
    };
}
pub(super) use table_writes;
