//! `conversion-jobs`: the records of conversion jobs (table `jobs`, which is also the
//! work queue). Inputs and conversions are kept in the job's `spec` document.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value, json};

use super::fields::{
    new_id, nullable_text, object, optional_time, parse_json, scoped_table_queries, table_writes,
    time,
};
use super::{Resource, WriteContext};
use crate::db::schema::jobs;
use crate::error::ApiResult;

/// A row of `jobs`.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = jobs, treat_none_as_null = true)]
pub(super) struct JobRow {
    id: String,
    org_id: String,
    created_by: Option<String>,
    status: String,
    status_info: Option<String>,
    spec: String,
    tag: Option<String>,
    callback_url: Option<String>,
    idempotency_key: Option<String>,
    request_hash: Option<String>,
    attempts: i32,
    lease_owner: Option<String>,
    lease_expires_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    queued_at: Option<NaiveDateTime>,
    started_at: Option<NaiveDateTime>,
    finished_at: Option<NaiveDateTime>,
}

table_writes!(jobs, JobRow);

/// The `conversion-jobs` resource.
pub(super) struct ConversionJobs;

/// The parts of the spec document a client writes.
const SPEC_FIELDS: [&str; 2] = ["inputs", "conversions"];

fn merge_spec(spec: &str, body: &Map<String, Value>) -> String {
    let mut document = match parse_json(spec) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for field in SPEC_FIELDS {
        if let Some(value) = body.get(field) {
            document.insert(field.into(), value.clone());
        }
    }
    Value::Object(document).to_string()
}

impl Resource for ConversionJobs {
    const NAME: &'static str = "conversion-jobs";
    const SCHEMA: &'static str = include_str!("../../../schemas/conversion-jobs.json");
    type Row = JobRow;

    scoped_table_queries!(jobs, JobRow);

    fn to_json(row: &JobRow) -> Map<String, Value> {
        let spec = parse_json(&row.spec);
        object(json!({
            "id": row.id,
            "org_id": row.org_id,
            "created_by": row.created_by,
            "status": row.status,
            "status_info": row.status_info,
            "tag": row.tag,
            "callback_url": row.callback_url,
            "inputs": spec.get("inputs").cloned().unwrap_or_else(|| json!([])),
            "conversions": spec.get("conversions").cloned().unwrap_or_else(|| json!([])),
            "created_at": time(row.created_at),
            "updated_at": time(row.updated_at),
            "queued_at": optional_time(row.queued_at),
            "started_at": optional_time(row.started_at),
            "finished_at": optional_time(row.finished_at),
        }))
    }

    fn create(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        body: Map<String, Value>,
    ) -> ApiResult<JobRow> {
        let row = JobRow {
            id: new_id(),
            org_id: ctx.org_id.clone(),
            created_by: Some(ctx.identity.user_id.clone()),
            status: "created".into(),
            status_info: None,
            spec: merge_spec("{}", &body),
            tag: nullable_text(&body, "tag").flatten(),
            callback_url: nullable_text(&body, "callback_url").flatten(),
            idempotency_key: None,
            request_hash: None,
            attempts: 0,
            lease_owner: None,
            lease_expires_at: None,
            created_at: ctx.now,
            updated_at: ctx.now,
            queued_at: None,
            started_at: None,
            finished_at: None,
        };
        insert(conn, row)
    }

    fn update(
        conn: &mut crate::db::DbConnection,
        ctx: &WriteContext,
        mut row: JobRow,
        body: Map<String, Value>,
    ) -> ApiResult<JobRow> {
        if let Some(tag) = nullable_text(&body, "tag") {
            row.tag = tag;
        }
        if let Some(callback_url) = nullable_text(&body, "callback_url") {
            row.callback_url = callback_url;
        }
        row.spec = merge_spec(&row.spec, &body);
        row.updated_at = ctx.now;
        save(conn, row)
    }
}
