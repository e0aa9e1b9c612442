//! Conversion jobs: what a client asks for (`spec`), the work it is split into (`tasks`,
//! the queue), the workers that do it, and the callbacks that report it.
//!
//! A job is a row of `jobs`. Queuing it writes one `job_tasks` row per remote input (an
//! `import`) and one per input × conversion (a `convert`). A conversion whose input is not
//! stored yet (an upload still to come, a remote file still to fetch) waits; the others are
//! queued. Workers claim queued tasks with a lease they renew while they work
//! ([`queue`]); a task whose worker died is claimed again once its lease ends. Every change
//! of a task and of its job's status happens in one transaction, together with the
//! callback it causes ([`callbacks`]), so a crash at any point leaves a state the next
//! worker can take over.

pub mod callbacks;
pub mod queue;
pub mod remote;
pub mod runtime;
pub mod spec;
pub mod targets;
pub mod worker;

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use metamorph_plugin_api::FormatName;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub use runtime::JobsRuntime;
use spec::{Input, InputKind, JobSpec};

use crate::app::AppState;
use crate::db::schema::{files, job_tasks, jobs};
use crate::db::{DbConnection, DbError};
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::files::FileRecord;
use crate::plugins::{Plan, PluginError};
use crate::storage::external::{Service, Target, check_key_template, seal_credentials};

/// A row of `jobs`.
#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = jobs, treat_none_as_null = true)]
pub struct JobRow {
    pub id: String,
    pub org_id: String,
    pub created_by: Option<String>,
    pub status: String,
    pub status_info: Option<String>,
    pub spec: String,
    pub tag: Option<String>,
    pub callback_url: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub queued_at: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub deadline_at: Option<NaiveDateTime>,
}

/// A row of `job_tasks`.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = job_tasks)]
pub struct TaskRow {
    pub id: String,
    pub job_id: String,
    pub org_id: String,
    pub kind: String,
    pub input_index: i32,
    pub conversion_index: Option<i32>,
    pub input_file_id: Option<String>,
    pub target: Option<String>,
    pub pair: String,
    pub status: String,
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<NaiveDateTime>,
    pub output_file_id: Option<String>,
    pub cached: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: NaiveDateTime,
    pub queued_at: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    /// Where the output was written besides storage (JSON: destination, type, path, and
    /// the file's name, size and SHA-256 when no copy was kept).
    pub export: Option<String>,
}

/// A job and everything its JSON shows.
#[derive(Clone, Debug)]
pub struct JobRecord {
    /// The row.
    pub row: JobRow,
    /// Its spec, parsed.
    pub spec: JobSpec,
    /// Its tasks, in creation order.
    pub tasks: Vec<TaskRow>,
    /// The files its tasks made.
    pub outputs: Vec<FileRecord>,
    /// Its callback messages, oldest first.
    pub deliveries: Vec<callbacks::DeliveryRow>,
}

/// Statuses after which nothing more happens to a job or task.
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "canceled")
}

/// Whether a job is being worked on: `GET` answers 202 while it is.
pub fn is_active(status: &str) -> bool {
    matches!(status, "queued" | "processing")
}

/// The job `id` of `org_id` with its tasks, outputs and callbacks.
pub fn load(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<Option<JobRecord>> {
    let row = jobs::table
        .filter(jobs::org_id.eq(org_id))
        .filter(jobs::id.eq(id))
        .select(JobRow::as_select())
        .first(conn)
        .optional()?;
    match row {
        Some(row) => Ok(load_many(conn, vec![row])?.pop()),
        None => Ok(None),
    }
}

/// The job `id`, whatever its organisation (workers).
pub fn load_any(conn: &mut DbConnection, id: &str) -> QueryResult<Option<JobRecord>> {
    let row = jobs::table
        .find(id)
        .select(JobRow::as_select())
        .first(conn)
        .optional()?;
    match row {
        Some(row) => Ok(load_many(conn, vec![row])?.pop()),
        None => Ok(None),
    }
}

/// Completes rows into records, in three queries whatever their number.
pub fn load_many(conn: &mut DbConnection, rows: Vec<JobRow>) -> QueryResult<Vec<JobRecord>> {
    let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    let mut tasks: BTreeMap<String, Vec<TaskRow>> = BTreeMap::new();
    for task in job_tasks::table
        .filter(job_tasks::job_id.eq_any(&ids))
        .order((job_tasks::created_at.asc(), job_tasks::id.asc()))
        .select(TaskRow::as_select())
        .load(conn)?
    {
        tasks.entry(task.job_id.clone()).or_default().push(task);
    }
    let output_ids: Vec<&str> = tasks
        .values()
        .flatten()
        .filter_map(|task| task.output_file_id.as_deref())
        .collect();
    let outputs: Vec<FileRecord> = files::table
        .filter(files::id.eq_any(&output_ids))
        .select(FileRecord::as_select())
        .load(conn)?;
    let mut deliveries = callbacks::for_jobs(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let tasks = tasks.remove(&row.id).unwrap_or_default();
            let outputs = outputs
                .iter()
                .filter(|file| {
                    tasks
                        .iter()
                        .any(|task| task.output_file_id.as_deref() == Some(file.id.as_str()))
                })
                .cloned()
                .collect();
            JobRecord {
                spec: JobSpec::parse(&row.spec),
                deliveries: deliveries.remove(&row.id).unwrap_or_default(),
                row,
                tasks,
                outputs,
            }
        })
        .collect())
}

fn time(value: NaiveDateTime) -> Value {
    Value::String(
        value
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
}

fn optional_time(value: Option<NaiveDateTime>) -> Value {
    value.map_or(Value::Null, time)
}

/// The job as clients see it. With `state`, outputs carry signed download links and
/// pending uploads their upload URL.
pub fn to_json(record: &JobRecord, state: Option<&AppState>) -> Map<String, Value> {
    let row = &record.row;
    let files: BTreeMap<&str, &FileRecord> = record
        .outputs
        .iter()
        .map(|file| (file.id.as_str(), file))
        .collect();
    let inputs: Vec<Value> = record
        .spec
        .inputs
        .iter()
        .map(|input| {
            let mut value = serde_json::to_value(input).unwrap_or(Value::Null);
            spec::public(&mut value);
            if let (Some(state), Some(file_id), InputKind::Upload) =
                (state, &input.file_id, input.kind)
            {
                value["upload_url"] =
                    Value::String(format!("{}/api/uploads/{file_id}/data", state.public_url()));
            }
            value
        })
        .collect();
    let mut conversions = serde_json::to_value(&record.spec.conversions).unwrap_or(Value::Null);
    spec::public(&mut conversions);
    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    let mut tasks = Vec::new();
    for task in &record.tasks {
        let error = match (&task.error_code, &task.error_message) {
            (Some(code), message) => json!({"code": code, "message": message}),
            _ => Value::Null,
        };
        if !error.is_null() && task.status == "failed" {
            errors.push(json!({
                "task_id": task.id,
                "input_index": task.input_index,
                "conversion_index": task.conversion_index,
                "target": task.target,
                "code": error["code"],
                "message": error["message"],
            }));
        }
        tasks.push(json!({
            "id": task.id,
            "kind": task.kind,
            "input_index": task.input_index,
            "conversion_index": task.conversion_index,
            "target": task.target,
            "status": task.status,
            "attempts": task.attempts,
            "cached": task.cached,
            "output_file_id": task.output_file_id,
            "error": error,
            "started_at": optional_time(task.started_at),
            "finished_at": optional_time(task.finished_at),
        }));
        if let Some(file) = task.output_file_id.as_deref().and_then(|id| files.get(id)) {
            let mut output = json!({
                "file_id": file.id,
                "task_id": task.id,
                "input_index": task.input_index,
                "conversion_index": task.conversion_index,
                "target": task.target,
                "filename": file.filename,
                "size": file.size_bytes,
                "sha256": file.sha256,
                "cached": task.cached,
            });
            if let Some(state) = state {
                let ttl = state.config().files.download_link_ttl;
                let expires = chrono::Utc::now()
                    + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(24));
                output["download_url"] = Value::String(crate::routes::download_url(state, file));
                output["expires_at"] =
                    Value::String(expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            if let Some(export) = task.export.as_deref() {
                output["destination"] = serde_json::from_str(export).unwrap_or(Value::Null);
            }
            outputs.push(output);
        } else if let Some(export) = task.export.as_deref() {
            // Written to a destination only: no file to download.
            let export: Value = serde_json::from_str(export).unwrap_or(Value::Null);
            outputs.push(json!({
                "file_id": null,
                "task_id": task.id,
                "input_index": task.input_index,
                "conversion_index": task.conversion_index,
                "target": task.target,
                "filename": export["filename"],
                "size": export["size"],
                "sha256": export["sha256"],
                "cached": task.cached,
                "destination": {
                    "destination_id": export["destination_id"],
                    "type": export["type"],
                    "path": export["path"],
                },
            }));
        }
    }
    let callbacks: Vec<Value> = record
        .deliveries
        .iter()
        .map(callbacks::DeliveryRow::to_json)
        .collect();
    let limits = serde_json::to_value(&record.spec.limits).unwrap_or(Value::Null);
    match json!({
        "id": row.id,
        "org_id": row.org_id,
        "created_by": row.created_by,
        "status": {"code": row.status, "info": row.status_info},
        "tag": row.tag,
        "callback_url": row.callback_url,
        "notify_status": record.spec.notify_status,
        "process": row.status != "created",
        "fail_on_conversion_error": record.spec.fail_on_conversion_error,
        "limits": limits,
        "inputs": inputs,
        "conversions": conversions,
        "tasks": tasks,
        "outputs": outputs,
        "errors": errors,
        "callbacks": callbacks,
        "created_at": time(row.created_at),
        "updated_at": time(row.updated_at),
        "queued_at": optional_time(row.queued_at),
        "started_at": optional_time(row.started_at),
        "finished_at": optional_time(row.finished_at),
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// SHA-256 of a request body, to tell a repeated `Idempotency-Key` request from a
/// different one under the same key.
pub fn request_hash(body: &Value) -> String {
    // serde_json's maps are sorted, so equal bodies serialise equally.
    crate::files::ingest::hex(&Sha256::digest(body.to_string().as_bytes()))
}

/// Who creates or changes a job, and where.
pub struct Writer<'a> {
    /// The service.
    pub state: &'a AppState,
    /// The organisation.
    pub org_id: &'a str,
    /// The user.
    pub user_id: &'a str,
    /// Now.
    pub now: NaiveDateTime,
}

fn field_error(path: String, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::new(
        ErrorCode::ValidationFailed,
        format!("the job is not valid: {path} {message}"),
    )
    .with_field_errors(vec![FieldError { path, message }])
}

/// Checks a URL the service will call (a remote input, a callback): http(s), a host, and
/// not a literal address it may not reach. Names are checked again when resolved.
pub fn check_url(state: &AppState, path: &str, url: &str) -> ApiResult<()> {
    let allow_private = state.config().jobs.allow_private_networks;
    remote::check_url(url, allow_private)
        .map(drop)
        .map_err(|problem| {
            let code = match problem {
                remote::UrlProblem::Private(_) => ErrorCode::AddressNotAllowed,
                remote::UrlProblem::Invalid(_) => ErrorCode::ValidationFailed,
            };
            ApiError::new(code, format!("{path}: {problem}")).with_field_errors(vec![FieldError {
                path: path.to_owned(),
                message: problem.to_string(),
            }])
        })
}

/// Checks a new input and stores what it needs: the file it names must be this
/// organisation's; an `upload` or `remote` input gets a pending file record of its own.
pub fn add_input(
    conn: &mut DbConnection,
    writer: &Writer<'_>,
    index: usize,
    mut input: Input,
) -> ApiResult<Input> {
    let path = |field: &str| format!("/inputs/{index}/{field}");
    match input.kind {
        InputKind::File => {
            let file_id = input.file_id.clone().unwrap_or_default();
            let record = crate::files::find(conn, &file_id)
                .map_err(DbError::from)?
                .filter(|record| record.org_id == writer.org_id && record.status != "deleted");
            if record.is_none() {
                return Err(field_error(
                    path("file_id"),
                    format!("names no file of your organisation (`{file_id}`)"),
                ));
            }
            input.source = None;
            input.filename = None;
        }
        InputKind::Upload | InputKind::Remote | InputKind::Cloud | InputKind::Destination => {
            if input.file_id.is_some() {
                return Err(field_error(
                    path("file_id"),
                    "is set by the service for this input type; leave it out",
                ));
            }
            let origin = match input.kind {
                InputKind::Remote => {
                    let source = input.source.clone().unwrap_or_default();
                    check_url(writer.state, &path("source"), &source)?;
                    "remote"
                }
                InputKind::Cloud | InputKind::Destination => {
                    check_stored_input(conn, writer, index, &mut input)?;
                    "cloud"
                }
                _ => {
                    input.source = None;
                    "upload"
                }
            };
            let filename = input
                .filename
                .clone()
                .or_else(|| match input.kind {
                    InputKind::Remote => input.source.as_deref().and_then(remote::filename_of),
                    _ => input
                        .path
                        .as_deref()
                        .and_then(|path| path.rsplit('/').find(|part| !part.is_empty()))
                        .map(str::to_owned),
                })
                .unwrap_or_else(|| "upload".into());
            if !crate::files::valid_filename(&filename) {
                return Err(field_error(
                    path("filename"),
                    "is 1 to 255 characters, with no `/`, `\\` or control characters",
                ));
            }
            let file_id = uuid::Uuid::now_v7().to_string();
            crate::files::insert_pending(
                conn,
                &crate::files::NewPending {
                    id: &file_id,
                    org_id: writer.org_id,
                    owner_id: writer.user_id,
                    filename: &filename,
                    content_type: None,
                    origin,
                    declared_size: None,
                    streaming: false,
                },
                &writer.state.config().retention,
            )
            .map_err(DbError::from)?;
            input.file_id = Some(file_id);
            input.filename = Some(filename);
        }
    }
    Ok(input)
}

/// Checks a `cloud` or `destination` input: a known service with complete parameters, or
/// a destination of the organisation; a path. Seals the credentials.
fn check_stored_input(
    conn: &mut DbConnection,
    writer: &Writer<'_>,
    index: usize,
    input: &mut Input,
) -> ApiResult<()> {
    let base = format!("/inputs/{index}");
    if let Some(key) = input.s3_key.take() {
        if input.path.is_some() {
            return Err(field_error(
                format!("{base}/s3_key"),
                "cannot be given with `path`: name the object once",
            ));
        }
        input.path = Some(key);
        if input.kind == InputKind::Cloud && input.source.is_none() {
            input.source = Some("s3".to_owned());
        }
    }
    if input.kind == InputKind::Destination {
        let id = input.destination_id.clone().unwrap_or_default();
        if crate::resources::destinations::find(conn, writer.org_id, &id)
            .map_err(DbError::from)?
            .is_none()
        {
            return Err(field_error(
                format!("{base}/destination_id"),
                format!("names no destination of your organisation (`{id}`)"),
            ));
        }
        input.source = None;
        return Ok(());
    }
    let name = input.source.clone().unwrap_or_default();
    let service = Service::from_field(&name, &format!("{base}/source"))?;
    let mut parameters = std::mem::take(&mut input.parameters);
    if let Some(Value::String(file)) = parameters.remove("file")
        && input.path.is_none()
    {
        input.path = Some(file);
    }
    if input.path.as_deref().is_none_or(str::is_empty) {
        return Err(field_error(
            format!("{base}/path"),
            "is required: the object's path (or `parameters.file`)",
        ));
    }
    let target = Target::new(service, parameters, std::mem::take(&mut input.credentials));
    if let Some(problem) = target.problems(&base, &[]).into_iter().next() {
        return Err(field_error(problem.path, problem.message));
    }
    input.source = Some(service.as_str().to_owned());
    input.parameters = target.parameters;
    input.sealed_credentials = seal_credentials(writer.state.sealer(), &target.credentials);
    Ok(())
}

/// Checks a new conversion: a known target, an output name that is a file name, and where
/// the output goes (a destination of the organisation, or a complete inline target, whose
/// credentials are sealed here).
pub fn check_conversion(
    conn: &mut DbConnection,
    writer: &Writer<'_>,
    index: usize,
    conversion: &mut spec::Conversion,
) -> ApiResult<()> {
    let base = format!("/conversions/{index}");
    if conversion.destination.is_some() && conversion.output_target.is_some() {
        return Err(field_error(
            format!("{base}/output_target"),
            "cannot be given with `destination`: name one place to write to",
        ));
    }
    if let Some(id) = &conversion.destination
        && crate::resources::destinations::find(conn, writer.org_id, id)
            .map_err(DbError::from)?
            .is_none()
    {
        return Err(field_error(
            format!("{base}/destination"),
            format!("names no destination of your organisation (`{id}`)"),
        ));
    }
    if let Some(output_target) = &mut conversion.output_target {
        let path = format!("{base}/output_target");
        let service = Service::from_field(&output_target.service, &format!("{path}/type"))?;
        let target = Target::new(
            service,
            std::mem::take(&mut output_target.parameters),
            std::mem::take(&mut output_target.credentials),
        );
        if let Some(problem) = target.problems(&path, &[]).into_iter().next() {
            return Err(field_error(problem.path, problem.message));
        }
        output_target.service = service.as_str().to_owned();
        output_target.parameters = target.parameters;
        output_target.sealed_credentials =
            seal_credentials(writer.state.sealer(), &target.credentials);
    }
    if let Some(template) = &conversion.key_template {
        check_key_template(template)
            .map_err(|message| field_error(format!("{base}/key_template"), message))?;
    }
    if !conversion.keep_copy && !conversion.exports() {
        return Err(field_error(
            format!("{base}/keep_copy"),
            "can be false only with a `destination` or `output_target`: the output must \
             be kept somewhere",
        ));
    }
    let target = FormatName::parse(&conversion.target)
        .map_err(|error| field_error(format!("/conversions/{index}/target"), error.to_string()))?;
    conversion.target = target.as_str().to_owned();
    if let Some(name) = &conversion.output_filename
        && !crate::files::valid_filename(name)
    {
        return Err(field_error(
            format!("/conversions/{index}/output_filename"),
            "is 1 to 255 characters, with no `/`, `\\` or control characters",
        ));
    }
    Ok(())
}

/// The route of one conversion of `file`, or why there is none (as the API error the
/// client gets when it asks for it up front, with paths into the job).
pub fn plan(
    state: &AppState,
    file: &FileRecord,
    conversion_index: usize,
    conversion: &spec::Conversion,
) -> Result<Plan, ApiError> {
    let Some(format) = file.format.as_deref() else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedConversion,
            format!(
                "the format of `{}` is not known, so it cannot be converted",
                file.filename
            ),
        ));
    };
    let source = FormatName::parse(format)
        .map_err(|error| ApiError::new(ErrorCode::UnsupportedConversion, error.to_string()))?;
    let target = FormatName::parse(&conversion.target).map_err(|error| {
        field_error(
            format!("/conversions/{conversion_index}/target"),
            error.to_string(),
        )
    })?;
    state
        .plugins()
        .plan(&source, &target, &Value::Object(conversion.options.clone()))
        .map_err(|error| match error {
            PluginError::InvalidOptions(errors) => {
                let errors: Vec<FieldError> = errors
                    .into_iter()
                    .map(|error| FieldError {
                        path: format!("/conversions/{conversion_index}/options{}", error.path),
                        message: error.message,
                    })
                    .collect();
                ApiError::from(PluginError::InvalidOptions(errors.clone()))
                    .with_field_errors(errors)
            }
            other => ApiError::from(other),
        })
}

/// The queue name of a planned route: its plugins and formats (`image:png>jpg`).
pub fn pair_of(plan: &Plan) -> String {
    let mut plugins: Vec<&str> = Vec::new();
    for step in &plan.steps {
        if !plugins.contains(&step.plugin.name()) {
            plugins.push(step.plugin.name());
        }
    }
    let source = plan.steps.first().map_or("", |step| step.source.as_str());
    let target = plan.steps.last().map_or("", |step| step.target.as_str());
    format!("{}:{source}>{target}", plugins.join("+"))
}

/// The queue name of remote fetches.
pub const FETCH_PAIR: &str = "fetch";

/// Queues `record`: writes its tasks, checks the queues have room (429 otherwise), marks it
/// `queued` and records the callback. Conversions of stored inputs are planned now, so a
/// conversion no plugin can do is refused before anything runs.
pub fn enqueue(
    conn: &mut DbConnection,
    state: &AppState,
    record: &JobRecord,
    now: NaiveDateTime,
) -> ApiResult<()> {
    let spec = &record.spec;
    if spec.inputs.is_empty() || spec.conversions.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "a job needs at least one input and one conversion before it can be processed",
        )
        .with_field_errors(vec![FieldError {
            path: if spec.inputs.is_empty() {
                "/inputs".into()
            } else {
                "/conversions".into()
            },
            message: "is empty".into(),
        }]));
    }
    if let Some(most) = spec.limits.job.max_inputs
        && spec.inputs.len() > most
    {
        return Err(field_error(
            "/inputs".into(),
            format!(
                "has {} inputs; limits.job.max_inputs allows {most}",
                spec.inputs.len()
            ),
        ));
    }
    let mut tasks = Vec::new();
    let task = |kind: &str, input_index: usize| TaskRow {
        id: uuid::Uuid::now_v7().to_string(),
        job_id: record.row.id.clone(),
        org_id: record.row.org_id.clone(),
        kind: kind.into(),
        input_index: i32::try_from(input_index).unwrap_or(i32::MAX),
        conversion_index: None,
        input_file_id: None,
        target: None,
        pair: String::new(),
        status: "waiting".into(),
        attempts: 0,
        lease_owner: None,
        lease_expires_at: None,
        output_file_id: None,
        cached: false,
        error_code: None,
        error_message: None,
        created_at: now,
        queued_at: None,
        started_at: None,
        finished_at: None,
        export: None,
    };
    // Outputs kept in storage, estimated at their input's size (the input is known only
    // for inputs already stored).
    let kept_conversions = spec
        .conversions
        .iter()
        .filter(|conversion| conversion.keep_copy || !conversion.exports())
        .count() as u64;
    let mut expected = 0u64;
    for (input_index, input) in spec.inputs.iter().enumerate() {
        let file_id = input.file_id.clone().unwrap_or_default();
        let file = crate::files::find(conn, &file_id)
            .map_err(DbError::from)?
            .filter(|file| file.org_id == record.row.org_id && file.status != "deleted")
            .ok_or_else(|| {
                field_error(
                    format!("/inputs/{input_index}/file_id"),
                    format!("names no file of your organisation (`{file_id}`)"),
                )
            })?;
        if input.kind.is_imported() && file.status != "ready" {
            let mut import = task("import", input_index);
            import.input_file_id = Some(file.id.clone());
            import.pair = FETCH_PAIR.into();
            import.status = "queued".into();
            import.queued_at = Some(now);
            tasks.push(import);
        }
        if file.status == "ready"
            && let (Some(limit), Some(size)) = (spec.limits.input.max_file_size, file.size_bytes)
            && u64::try_from(size).unwrap_or(0) > limit
        {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "input {input_index} (`{}`) is {size} bytes; limits.input.max_file_size \
                     allows {limit}",
                    file.filename
                ),
            ));
        }
        if file.status == "ready" {
            let size = u64::try_from(file.size_bytes.unwrap_or(0)).unwrap_or(0);
            expected = expected.saturating_add(size.saturating_mul(kept_conversions));
        }
        for (conversion_index, conversion) in spec.conversions.iter().enumerate() {
            let mut convert = task("convert", input_index);
            convert.conversion_index = Some(i32::try_from(conversion_index).unwrap_or(i32::MAX));
            convert.input_file_id = Some(file.id.clone());
            convert.target = Some(conversion.target.clone());
            if file.status == "ready" {
                let plan = plan(state, &file, conversion_index, conversion)?;
                convert.pair = pair_of(&plan);
                convert.status = "queued".into();
                convert.queued_at = Some(now);
            }
            tasks.push(convert);
        }
    }
    check_quota(conn, state, &record.row.org_id, expected)?;
    queue::check_room(conn, state, &tasks)?;
    for task in &tasks {
        diesel::insert_into(job_tasks::table)
            .values(task)
            .execute(conn)
            .map_err(DbError::from)?;
    }
    diesel::update(jobs::table.find(&record.row.id))
        .set((
            jobs::status.eq("queued"),
            jobs::status_info.eq(None::<String>),
            jobs::queued_at.eq(now),
            jobs::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
    if spec.notify_status {
        callbacks::record(conn, state, &record.row.id, "job.queued")?;
    }
    Ok(())
}

/// Refuses (413 `quota_exceeded`, saying how much is free) a job whose expected outputs
/// do not fit in what is left of the organisation's quota.
fn check_quota(
    conn: &mut DbConnection,
    state: &AppState,
    org_id: &str,
    expected: u64,
) -> ApiResult<()> {
    if expected == 0 {
        return Ok(());
    }
    let config = state.config().files;
    let quota = crate::files::quota(conn, org_id, &config).map_err(DbError::from)?;
    let used = crate::files::bytes_used(conn, org_id, "").map_err(DbError::from)?;
    let free = quota.saturating_sub(used);
    if expected > free {
        return Err(ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "this job's outputs are expected to take about {expected} bytes (each at its \
                 input's size) and the organisation has {free} bytes free of its {quota} byte \
                 quota. Delete files you no longer need, convert fewer inputs at once, or \
                 send the outputs to a destination with keep_copy: false"
            ),
        ));
    }
    Ok(())
}

/// Plans and queues the conversions that waited for `file_id`, now stored; a conversion no
/// plugin can do fails its task (and, as its job says, maybe the job).
pub fn input_ready(conn: &mut DbConnection, state: &AppState, file_id: &str) -> ApiResult<()> {
    let Some(file) = crate::files::find(conn, file_id).map_err(DbError::from)? else {
        return Ok(());
    };
    if file.status != "ready" {
        return Ok(());
    }
    let waiting: Vec<TaskRow> = job_tasks::table
        .filter(job_tasks::input_file_id.eq(file_id))
        .filter(job_tasks::status.eq("waiting"))
        .filter(job_tasks::kind.eq("convert"))
        .select(TaskRow::as_select())
        .load(conn)
        .map_err(DbError::from)?;
    let now = crate::db::now();
    let mut touched = Vec::new();
    for task in waiting {
        let Some(job) = load_any(conn, &task.job_id).map_err(DbError::from)? else {
            continue;
        };
        let index = usize::try_from(task.conversion_index.unwrap_or(0)).unwrap_or(0);
        let planned = match job.spec.conversions.get(index) {
            Some(conversion) => {
                let too_big = job
                    .spec
                    .limits
                    .input
                    .max_file_size
                    .zip(file.size_bytes)
                    .filter(|(limit, size)| u64::try_from(*size).unwrap_or(0) > *limit);
                match too_big {
                    Some((limit, size)) => Err(ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!(
                            "the input is {size} bytes; limits.input.max_file_size allows \
                             {limit}"
                        ),
                    )),
                    None => plan(state, &file, index, conversion),
                }
            }
            None => Err(ApiError::new(ErrorCode::Internal, "the conversion is gone")),
        };
        // Queued with its route, or failed with why there is none.
        let (status, pair, error, finished) = match &planned {
            Ok(plan) => ("queued", pair_of(plan), None, None),
            Err(error) => ("failed", String::new(), Some(error), Some(now)),
        };
        diesel::update(
            job_tasks::table
                .find(&task.id)
                .filter(job_tasks::status.eq("waiting")),
        )
        .set((
            job_tasks::status.eq(status),
            job_tasks::pair.eq(pair),
            job_tasks::queued_at.eq(now),
            job_tasks::error_code.eq(error.map(|error| error.code().as_str())),
            job_tasks::error_message.eq(error.map(ApiError::detail)),
            job_tasks::finished_at.eq(finished),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
        if planned.is_err() {
            touched.push(task.job_id.clone());
        }
    }
    for job_id in touched {
        queue::settle(conn, state, &job_id)?;
    }
    Ok(())
}

/// Cancels a job that is not over: its unfinished tasks stop (a running one's result is
/// thrown away), and it is `canceled`.
pub fn cancel(
    conn: &mut DbConnection,
    state: &AppState,
    job_id: &str,
    info: &str,
) -> ApiResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let now = crate::db::now();
        queue::lock_job(conn, job_id)?;
        queue::cancel_unfinished(conn, job_id, now)?;
        let changed = diesel::update(jobs::table.find(job_id).filter(jobs::status.eq_any([
            "created",
            "queued",
            "processing",
        ])))
        .set((
            jobs::status.eq("canceled"),
            jobs::status_info.eq(info),
            jobs::finished_at.eq(now),
            jobs::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
        if changed == 1 {
            callbacks::record(conn, state, job_id, "job.canceled")?;
        }
        Ok(())
    })
}

/// Queues again the failed and canceled tasks of a job that ended without completing
/// everything (409 for a job that is still running or never started).
pub fn retry(conn: &mut DbConnection, state: &AppState, job_id: &str) -> ApiResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let now = crate::db::now();
        queue::lock_job(conn, job_id)?;
        let record = load_any(conn, job_id)
            .map_err(DbError::from)?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such job"))?;
        let again: Vec<&TaskRow> = record
            .tasks
            .iter()
            .filter(|task| matches!(task.status.as_str(), "failed" | "canceled"))
            .collect();
        if !is_terminal(&record.row.status) || again.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "job {job_id} is `{}` with nothing failed or canceled; only a job that \
                     ended with failed or canceled conversions can be retried",
                    record.row.status
                ),
            ));
        }
        let mut requeued = Vec::new();
        for task in again {
            let input_ready = match &task.input_file_id {
                Some(file_id) => crate::files::find(conn, file_id)
                    .map_err(DbError::from)?
                    .is_some_and(|file| file.status == "ready"),
                None => false,
            };
            // An import runs again; a conversion runs once its input is stored, planned
            // afresh (plugins may have changed since).
            let status = if task.kind == "import" {
                "queued"
            } else {
                "waiting"
            };
            diesel::update(job_tasks::table.find(&task.id))
                .set((
                    job_tasks::status.eq(status),
                    job_tasks::attempts.eq(0),
                    job_tasks::error_code.eq(None::<String>),
                    job_tasks::error_message.eq(None::<String>),
                    job_tasks::lease_owner.eq(None::<String>),
                    job_tasks::lease_expires_at.eq(None::<NaiveDateTime>),
                    job_tasks::queued_at.eq(Some(now)),
                    job_tasks::started_at.eq(None::<NaiveDateTime>),
                    job_tasks::finished_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)
                .map_err(DbError::from)?;
            if task.kind == "convert" && input_ready {
                requeued.push(task.input_file_id.clone().unwrap_or_default());
            }
        }
        diesel::update(jobs::table.find(job_id))
            .set((
                jobs::status.eq("queued"),
                jobs::status_info.eq(None::<String>),
                jobs::queued_at.eq(now),
                jobs::started_at.eq(None::<NaiveDateTime>),
                jobs::finished_at.eq(None::<NaiveDateTime>),
                jobs::deadline_at.eq(None::<NaiveDateTime>),
                jobs::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(DbError::from)?;
        requeued.sort();
        requeued.dedup();
        for file_id in requeued {
            input_ready(conn, state, &file_id)?;
        }
        if record.spec.notify_status {
            callbacks::record(conn, state, job_id, "job.queued")?;
        }
        Ok(())
    })
}
