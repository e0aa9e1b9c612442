//! `files`: the records of stored files. The bytes have their own routes.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value, json};

use super::fields::{
    new_id, nullable_text, object, optional_time, scoped_table_queries, table_writes, text, time,
};
use super::{Resource, WriteContext};
use crate::db::schema::files;
use crate::error::ApiResult;

/// A row of `files`.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = files, treat_none_as_null = true)]
pub(super) struct FileRow {
    id: String,
    org_id: String,
    owner_id: Option<String>,
    filename: String,
    content_type: Option<String>,
    format: Option<String>,
    size_bytes: Option<i64>,
    sha256: Option<String>,
    storage_key: Option<String>,
    status: String,
    visibility: String,
    origin: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
    declared_size: Option<i64>,
    upload_started_at: Option<NaiveDateTime>,
    download_count: i64,
    max_downloads: Option<i64>,
    link_epoch: i32,
}

table_writes!(files, FileRow);

/// The `files` resource.
pub(super) struct Files;

impl Resource for Files {
    const NAME: &'static str = "files";
    const SCHEMA: &'static str = include_str!("../../../schemas/files.json");
    type Row = FileRow;

    scoped_table_queries!(files, FileRow);

    fn to_json(row: &FileRow) -> Map<String, Value> {
        object(json!({
            "id": row.id,
            "org_id": row.org_id,
            "owner_id": row.owner_id,
            "filename": row.filename,
            "content_type": row.content_type,
            "format": row.format,
            "size_bytes": row.size_bytes,
            "sha256": row.sha256,
            "status": row.status,
            "visibility": row.visibility,
            "origin": row.origin,
            "created_at": time(row.created_at),
            "updated_at": time(row.updated_at),
            "expires_at": optional_time(row.expires_at),
            "download_count": row.download_count,
            "max_downloads": row.max_downloads,
        }))
    }

    fn create(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        body: Map<String, Value>,
    ) -> ApiResult<FileRow> {
        let visibility = text(&body, "visibility").unwrap_or_else(|| "private".into());
        let expires_at = crate::files::retention::expiry(
            conn,
            &ctx.state.config().retention,
            &ctx.org_id,
            &visibility,
            ctx.now,
        )
        .map_err(crate::db::DbError::from)?;
        let row = FileRow {
            id: new_id(),
            org_id: ctx.org_id.clone(),
            owner_id: Some(ctx.identity.user_id.clone()),
            filename: text(&body, "filename").unwrap_or_default(),
            content_type: nullable_text(&body, "content_type").flatten(),
            format: None,
            size_bytes: None,
            sha256: None,
            storage_key: None,
            status: "pending".into(),
            visibility,
            origin: "upload".into(),
            created_at: ctx.now,
            updated_at: ctx.now,
            expires_at,
            declared_size: None,
            upload_started_at: None,
            download_count: 0,
            max_downloads: body.get("max_downloads").and_then(Value::as_i64),
            link_epoch: 0,
        };
        insert(conn, row)
    }

    fn stored_objects(row: &FileRow) -> Vec<String> {
        row.storage_key.iter().cloned().collect()
    }

    fn update(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        mut row: FileRow,
        body: Map<String, Value>,
    ) -> ApiResult<FileRow> {
        if let Some(filename) = text(&body, "filename") {
            row.filename = filename;
        }
        if let Some(content_type) = nullable_text(&body, "content_type") {
            row.content_type = content_type;
        }
        if let Some(visibility) = text(&body, "visibility") {
            if visibility == "private" && row.visibility != "private" {
                // Making a file private again revokes every link to it.
                row.link_epoch += 1;
            }
            row.visibility = visibility;
        }
        if let Some(max_downloads) = body.get("max_downloads") {
            row.max_downloads = max_downloads.as_i64();
        }
        // How long the file is kept follows its visibility.
        row.expires_at = crate::files::retention::expiry(
            conn,
            &ctx.state.config().retention,
            &row.org_id,
            &row.visibility,
            row.created_at,
        )
        .map_err(crate::db::DbError::from)?;
        row.updated_at = ctx.now;
        save(conn, row)
    }
}

/// The record of file `id` as the API shows it (never its storage key).
pub(crate) fn file_json(
    conn: &mut crate::db::DbConnection,
    id: &str,
) -> QueryResult<Option<Map<String, Value>>> {
    let row = files::table
        .find(id)
        .select(FileRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.as_ref().map(Files::to_json))
}
