//! `conversion-jobs`: jobs as a resource. The generated routes create, list, read, change
//! and delete them; what a job does is in [`crate::jobs`]:
//!
//! - `POST` with `process` (default `true`) queues it at once, `process:false` keeps it
//!   open; `Idempotency-Key` makes a create safe to repeat;
//! - `GET` answers 202 while it is queued or processing, 200 otherwise;
//! - `PATCH {process:true}` queues an open job; inputs and conversions change only while
//!   it is open;
//! - `DELETE` cancels a queued or running job (200 with the job), deletes any other (204);
//! - actions: `inputs` and `conversions` add to an open job, `retry` queues again what
//!   failed, `callbacks/replay` sends the last callback again.

use diesel::prelude::*;
use http::StatusCode;
use serde_json::{Map, Value};

use super::{Resource, WriteContext};
use crate::db::schema::jobs;
use crate::db::{DbConnection, DbError};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::jobs::spec::{Conversion, Input, JobSpec};
use crate::jobs::{self as work, JobRecord, JobRow, Writer};

/// The `conversion-jobs` resource.
pub(super) struct ConversionJobs;

fn writer(ctx: &WriteContext) -> Writer<'_> {
    Writer {
        state: &ctx.state,
        org_id: &ctx.org_id,
        user_id: &ctx.identity.user_id,
        now: ctx.now,
    }
}

fn parse<T: serde::de::DeserializeOwned>(path: &str, value: Value) -> ApiResult<T> {
    serde_json::from_value(value).map_err(|error| ApiError::invalid_field(path, &error.to_string()))
}

/// Checks and stores the inputs and conversions of `body` (appended after `spec`'s own).
fn add_parts(
    conn: &mut DbConnection,
    ctx: &WriteContext,
    spec: &mut JobSpec,
    inputs: Vec<Input>,
    conversions: Vec<Conversion>,
) -> ApiResult<()> {
    let writer = writer(ctx);
    for input in inputs {
        let index = spec.inputs.len();
        let input = work::add_input(conn, &writer, index, input)?;
        spec.inputs.push(input);
    }
    for mut conversion in conversions {
        let index = spec.conversions.len();
        work::check_conversion(conn, &writer, index, &mut conversion)?;
        spec.conversions.push(conversion);
    }
    Ok(())
}

fn reload(conn: &mut DbConnection, org_id: &str, id: &str) -> ApiResult<JobRecord> {
    work::load(conn, org_id, id)
        .map_err(DbError::from)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no job `{id}`")))
}

fn open(record: &JobRecord, what: &str) -> ApiResult<()> {
    if record.row.status == "created" {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "job {} is `{}`; {what} only while it is open (created with `process:false`)",
                record.row.id, record.row.status
            ),
        ))
    }
}

impl Resource for ConversionJobs {
    const NAME: &'static str = "conversion-jobs";
    const SCHEMA: &'static str = include_str!("../../../schemas/conversion-jobs.json");
    type Row = JobRecord;
    const WORKED_ON: bool = true;

    fn id(row: &JobRecord) -> &str {
        &row.row.id
    }

    fn to_json(row: &JobRecord) -> Map<String, Value> {
        work::to_json(row, None)
    }

    fn present(state: &crate::app::AppState, row: &JobRecord) -> Map<String, Value> {
        work::to_json(row, Some(state))
    }

    fn read_status(row: &JobRecord) -> StatusCode {
        if work::is_active(&row.row.status) {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        }
    }

    fn list(
        conn: &mut DbConnection,
        org_id: &str,
        page: &super::PageRequest,
    ) -> QueryResult<Vec<JobRecord>> {
        let rows = jobs::table
            .filter(jobs::org_id.eq(org_id))
            .filter(jobs::id.gt(&page.after))
            .order(jobs::id.asc())
            .limit(page.fetch())
            .select(JobRow::as_select())
            .load(conn)?;
        work::load_many(conn, rows)
    }

    fn find(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<Option<JobRecord>> {
        work::load(conn, org_id, id)
    }

    fn create(
        conn: &mut DbConnection,
        ctx: &WriteContext,
        body: Map<String, Value>,
    ) -> ApiResult<JobRecord> {
        let hash = ctx
            .request_hash
            .clone()
            .unwrap_or_else(|| work::request_hash(&Value::Object(body.clone())));
        let created = crate::db::write_transaction(conn, |conn| -> ApiResult<JobRecord> {
            if let Some(key) = &ctx.idempotency_key {
                let earlier: Option<(String, Option<String>)> = jobs::table
                    .filter(jobs::org_id.eq(&ctx.org_id))
                    .filter(jobs::idempotency_key.eq(key))
                    .select((jobs::id, jobs::request_hash))
                    .first(conn)
                    .optional()
                    .map_err(DbError::from)?;
                if let Some((id, earlier_hash)) = earlier {
                    if earlier_hash.as_deref() == Some(hash.as_str()) {
                        return reload(conn, &ctx.org_id, &id);
                    }
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!(
                            "Idempotency-Key `{key}` was used for job {id} with a different \
                             body; use a new key for a new job"
                        ),
                    ));
                }
            }
            let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
            let callback_url = text("callback_url");
            if let Some(url) = &callback_url {
                work::check_url(&ctx.state, "/callback_url", url)?;
            }
            let mut spec = JobSpec {
                notify_status: body.get("notify_status").and_then(Value::as_bool) == Some(true),
                fail_on_conversion_error: body
                    .get("fail_on_conversion_error")
                    .and_then(Value::as_bool)
                    != Some(false),
                limits: match body.get("limits") {
                    Some(limits) => parse("/limits", limits.clone())?,
                    None => Default::default(),
                },
                visibility: text("visibility"),
                ..JobSpec::default()
            };
            let inputs: Vec<Input> = match body.get("inputs") {
                Some(value) => parse("/inputs", value.clone())?,
                None => Vec::new(),
            };
            let conversions: Vec<Conversion> = match body.get("conversions") {
                Some(value) => parse("/conversions", value.clone())?,
                None => Vec::new(),
            };
            add_parts(conn, ctx, &mut spec, inputs, conversions)?;
            let row = JobRow {
                id: uuid::Uuid::now_v7().to_string(),
                org_id: ctx.org_id.clone(),
                created_by: Some(ctx.identity.user_id.clone()),
                status: "created".into(),
                status_info: None,
                spec: spec.to_text(),
                tag: text("tag"),
                callback_url,
                idempotency_key: ctx.idempotency_key.clone(),
                request_hash: ctx.idempotency_key.as_ref().map(|_| hash.clone()),
                attempts: 0,
                lease_owner: None,
                lease_expires_at: None,
                created_at: ctx.now,
                updated_at: ctx.now,
                queued_at: None,
                started_at: None,
                finished_at: None,
                deadline_at: None,
            };
            diesel::insert_into(jobs::table)
                .values(&row)
                .execute(conn)
                .map_err(DbError::from)?;
            let record = reload(conn, &ctx.org_id, &row.id)?;
            if body.get("process").and_then(Value::as_bool) != Some(false) {
                work::enqueue(conn, &ctx.state, &record, ctx.now)?;
                return reload(conn, &ctx.org_id, &row.id);
            }
            Ok(record)
        })?;
        ctx.state.jobs().wake();
        Ok(created)
    }

    fn update(
        conn: &mut DbConnection,
        ctx: &WriteContext,
        row: JobRecord,
        body: Map<String, Value>,
    ) -> ApiResult<JobRecord> {
        let updated = crate::db::write_transaction(conn, |conn| -> ApiResult<JobRecord> {
            let mut record = reload(conn, &ctx.org_id, &row.row.id)?;
            let mut spec = record.spec.clone();
            if body.contains_key("inputs") || body.contains_key("conversions") {
                open(&record, "inputs and conversions change")?;
                // A PATCH replaces the lists.
                spec.inputs.clear();
                spec.conversions.clear();
                let inputs: Vec<Input> = match body.get("inputs") {
                    Some(value) => parse("/inputs", value.clone())?,
                    None => record.spec.inputs.clone(),
                };
                let conversions: Vec<Conversion> = match body.get("conversions") {
                    Some(value) => parse("/conversions", value.clone())?,
                    None => record.spec.conversions.clone(),
                };
                let kept: Vec<Input> = inputs
                    .into_iter()
                    .map(|mut input| {
                        // Inputs kept from before keep their files.
                        if input.kind != crate::jobs::spec::InputKind::File {
                            input.file_id = None;
                        }
                        input
                    })
                    .collect();
                add_parts(conn, ctx, &mut spec, kept, conversions)?;
            }
            if let Some(limits) = body.get("limits") {
                open(&record, "limits change")?;
                spec.limits = parse("/limits", limits.clone())?;
            }
            if let Some(flag) = body
                .get("fail_on_conversion_error")
                .and_then(Value::as_bool)
            {
                open(&record, "fail_on_conversion_error changes")?;
                spec.fail_on_conversion_error = flag;
            }
            if let Some(flag) = body.get("notify_status").and_then(Value::as_bool) {
                spec.notify_status = flag;
            }
            let mut changes = record.row.clone();
            if let Some(tag) = body.get("tag") {
                changes.tag = tag.as_str().map(str::to_owned);
            }
            if let Some(url) = body.get("callback_url") {
                let url = url.as_str().map(str::to_owned);
                if let Some(url) = &url {
                    work::check_url(&ctx.state, "/callback_url", url)?;
                }
                changes.callback_url = url;
            }
            changes.spec = spec.to_text();
            changes.updated_at = ctx.now;
            diesel::update(jobs::table.find(&changes.id))
                .set(&changes)
                .execute(conn)
                .map_err(DbError::from)?;
            record = reload(conn, &ctx.org_id, &changes.id)?;
            match body.get("process").and_then(Value::as_bool) {
                Some(true) if record.row.status == "created" => {
                    work::enqueue(conn, &ctx.state, &record, ctx.now)?;
                    reload(conn, &ctx.org_id, &changes.id)
                }
                Some(false) if record.row.status != "created" => Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "job {} is `{}`; a job cannot be set back to `process:false`",
                        record.row.id, record.row.status
                    ),
                )),
                _ => Ok(record),
            }
        })?;
        ctx.state.jobs().wake();
        Ok(updated)
    }

    fn delete(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<usize> {
        diesel::delete(
            jobs::table
                .filter(jobs::org_id.eq(org_id))
                .filter(jobs::id.eq(id)),
        )
        .execute(conn)
    }

    fn stop_instead_of_delete(
        conn: &mut DbConnection,
        ctx: &WriteContext,
        row: &JobRecord,
    ) -> ApiResult<Option<JobRecord>> {
        // An open job never ran: deleting it is all there is to do.
        if !work::is_active(&row.row.status) {
            return Ok(None);
        }
        work::cancel(conn, &ctx.state, &row.row.id, "canceled by its owner")?;
        reload(conn, &ctx.org_id, &row.row.id).map(Some)
    }

    fn run_action(
        conn: &mut DbConnection,
        ctx: &WriteContext,
        name: &str,
        row: JobRecord,
        body: Map<String, Value>,
    ) -> ApiResult<Value> {
        let id = row.row.id.clone();
        match name {
            "inputs" | "conversions" => {
                crate::db::write_transaction(conn, |conn| -> ApiResult<()> {
                    let record = reload(conn, &ctx.org_id, &id)?;
                    open(&record, &format!("{name} are added"))?;
                    let mut spec = record.spec.clone();
                    let body = Value::Object(body);
                    if name == "inputs" {
                        add_parts(conn, ctx, &mut spec, vec![parse("", body)?], Vec::new())?;
                    } else {
                        add_parts(conn, ctx, &mut spec, Vec::new(), vec![parse("", body)?])?;
                    }
                    diesel::update(jobs::table.find(&id))
                        .set((jobs::spec.eq(spec.to_text()), jobs::updated_at.eq(ctx.now)))
                        .execute(conn)
                        .map_err(DbError::from)?;
                    Ok(())
                })?;
            }
            "retry" => work::retry(conn, &ctx.state, &id)?,
            "callbacks/replay" => work::callbacks::replay(conn, &ctx.state, &id)?,
            other => {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("conversion-jobs has no action `{other}`"),
                ));
            }
        }
        ctx.state.jobs().wake();
        let record = reload(conn, &ctx.org_id, &id)?;
        Ok(Value::Object(work::to_json(&record, Some(&ctx.state))))
    }
}
