//! The one-shot conversion: a file and what to make of it in one `multipart/form-data`
//! request, answered with the job.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | POST | `/api/convert[?wait=N]` | 202 the job; 201 when it ended within `wait` seconds |
//!
//! The `file` part streams into storage as it arrives, like an upload; the other parts
//! are short text fields. The job is the same as one made with `POST
//! /api/conversion-jobs`, and is polled, called back and retried the same way.

use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use futures_util::StreamExt;
use http::StatusCode;
use schemars::JsonSchema;
use serde_json::{Map, Value, json};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, schema_of, with_state};
use crate::app::AppState;
use crate::audit::AuditTarget;
use crate::auth::{Caller, Identity, RateClass, Role};
use crate::db::DbError;
use crate::db::schema::files;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::{ingest, sniff};
use crate::resources::{Op, WriteContext};
use crate::storage::Storage;

/// Longest `?wait`, in seconds.
const MAX_WAIT: u64 = 60;

/// Largest text field of the form.
const FIELD_LIMIT: usize = 64 * 1024;

/// The form of `POST /api/convert`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct ConvertForm {
    /// The file to convert (its format is read from its bytes).
    #[schemars(with = "String", extend("format" = "binary"))]
    file: (),
    /// A target format; repeat the field (or separate with commas) for several.
    target_format: Vec<String>,
    /// Options of the conversion, a JSON object (see `GET /api/convert/formats`).
    options: Option<String>,
    /// Who may download the outputs: `private` (default), `org`, `public`, `restricted`.
    visibility: Option<String>,
    /// URL that receives the job when it ends (Standard Webhooks signatures).
    callback_url: Option<String>,
    /// `true`: call back on every status change.
    notify_status: Option<bool>,
    /// `false`: keep the outputs that succeeded when another target fails.
    fail_on_conversion_error: Option<bool>,
    /// Your label for the job.
    tag: Option<String>,
    /// The id of a destination (`/api/destinations`) to write the outputs to.
    destination: Option<String>,
    /// The object path in the destination (default `{job_id}/{filename}`).
    key_template: Option<String>,
    /// With a destination, `false`: do not keep the outputs in the service's storage.
    keep_copy: Option<bool>,
}

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let job = crate::routes::schema_named(
        "ConversionJob".into(),
        state
            .resources()
            .get("conversion-jobs")
            .map(|def| def.openapi_schema(true))
            .unwrap_or_default(),
    );
    let form_limit = state.config().files.max_upload_size.saturating_add(1 << 20);
    vec![
        Endpoint::post("/api/convert", "convert")
            .summary("conversion-jobs", "Converts a file in one request")
            .description(
                "Sends a file and the formats to make of it as `multipart/form-data`; \
                 answers 202 with the job, to poll at `GET \
                 /api/conversion-jobs/{org_id}/{id}` (202 while it runs, 200 once it \
                 ended) or to wait for at `callback_url`. With `?wait=N` (N ≤ 60) the \
                 answer is held up to N seconds and is 201 with the finished job when it \
                 ends in time. An `Idempotency-Key` header makes the request safe to \
                 repeat: the same key with the same file and fields returns the same job.",
            )
            .authenticated(RateClass::Write)
            .audited("conversion-jobs", "create")
            .query_param::<u64>(
                "wait",
                "Seconds to hold the answer for the job to end (0 to 60)",
                "10",
            )
            .multipart_body(
                "The file and the conversion's fields",
                schema_of::<ConvertForm>(),
            )
            .json_response_schema(StatusCode::ACCEPTED, "The job, queued", job.clone())
            .json_response_schema(StatusCode::CREATED, "The job, ended within `wait`", job)
            .handle(
                with_state(state)
                    .and(warp::ext::get::<Caller>())
                    .and(warp::query::<HashMap<String, String>>())
                    .and(warp::header::optional::<String>("idempotency-key"))
                    .and(warp::multipart::form().max_length(form_limit))
                    .then(convert)
                    .map(|result: ApiResult<Response>| result.unwrap_or_else(Reply::into_response)),
            ),
    ]
}

/// The fields of the form, the file stored.
#[derive(Default)]
struct Form {
    file: Option<StoredInput>,
    targets: Vec<String>,
    fields: Map<String, Value>,
}

struct StoredInput {
    id: String,
    org_id: String,
    sha256: String,
}

async fn convert(
    state: AppState,
    caller: Caller,
    query: HashMap<String, String>,
    idempotency_key: Option<String>,
    form: warp::multipart::FormData,
) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    identity.require_role(
        &[Role::Admin, Role::Member, Role::Anonymous],
        "convert files",
    )?;
    // A bad `wait` is answered after the form is read: a client still sending its file
    // gets the problem document, not a connection closed under it.
    let wait = match query.get("wait") {
        None => Ok(0),
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_WAIT => Ok(seconds),
            _ => Err(ApiError::invalid_field(
                "/wait",
                "is a number of seconds from 0 to 60",
            )),
        },
    };
    let mut finished = state.jobs().subscribe();
    let form = read_form(&state, &identity, form).await;
    let form = match form {
        Ok(form) => form,
        Err((error, stored)) => {
            if let Some(stored) = stored {
                discard(&state, &stored).await;
            }
            return Err(error);
        }
    };
    let Form {
        file,
        targets,
        mut fields,
    } = form;
    let Some(file) = file else {
        return Err(ApiError::invalid_field(
            "/file",
            "is missing: send the file as the form part `file`",
        ));
    };
    let wait = match wait {
        Ok(wait) => wait,
        Err(error) => {
            discard(&state, &file).await;
            return Err(error);
        }
    };
    let created = create(
        &state,
        &identity,
        &file,
        targets,
        &mut fields,
        idempotency_key,
    )
    .await;
    let record = match created {
        Ok(record) => record,
        Err(error) => {
            discard(&state, &file).await;
            return Err(error);
        }
    };
    if record
        .spec
        .inputs
        .first()
        .and_then(|input| input.file_id.as_deref())
        != Some(file.id.as_str())
    {
        // An earlier request with the same Idempotency-Key made this job: the bytes just
        // sent are not needed.
        discard(&state, &file).await;
    }
    let (org_id, job_id) = (record.row.org_id.clone(), record.row.id.clone());
    let mut record = record;
    if wait > 0 && !crate::jobs::is_terminal(&record.row.status) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
        loop {
            let tick = tokio::time::sleep(Duration::from_millis(250));
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                _ = finished.recv() => {}
                () = tick => {}
            }
            let (org, id) = (org_id.clone(), job_id.clone());
            if let Some(fresh) = state
                .db()
                .run(move |conn| crate::jobs::load(conn, &org, &id).map_err(DbError::from))
                .await?
            {
                record = fresh;
            }
            if crate::jobs::is_terminal(&record.row.status) {
                break;
            }
        }
    }
    let status = if crate::jobs::is_terminal(&record.row.status) && wait > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    let def = state
        .resources()
        .get("conversion-jobs")
        .ok_or_else(|| ApiError::internal("the conversion-jobs resource is missing"))?;
    let body = def.view(identity.role, crate::jobs::to_json(&record, Some(&state)));
    let mut response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if let Ok(location) =
        http::HeaderValue::from_str(&format!("/api/conversion-jobs/{org_id}/{job_id}"))
    {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    response.extensions_mut().insert(AuditTarget {
        org_id,
        id: job_id,
        actor: None,
    });
    Ok(response)
}

/// Creates the job of the form.
async fn create(
    state: &AppState,
    identity: &Identity,
    file: &StoredInput,
    targets: Vec<String>,
    fields: &mut Map<String, Value>,
    idempotency_key: Option<String>,
) -> ApiResult<crate::jobs::JobRecord> {
    if targets.is_empty() {
        return Err(ApiError::invalid_field(
            "/target_format",
            "is missing: name at least one format to convert to (e.g. `png`)",
        ));
    }
    let options = match fields.remove("options") {
        None => Map::new(),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(ApiError::invalid_field(
                    "/options",
                    "is a JSON object, e.g. {\"quality\": 80}",
                ));
            }
        },
        Some(_) => Map::new(),
    };
    // Where the outputs go: the same for every target.
    let mut export = Map::new();
    for name in ["destination", "key_template", "keep_copy"] {
        if let Some(value) = fields.remove(name) {
            export.insert(name.into(), value);
        }
    }
    let visibility = fields.remove("visibility");
    if let Some(value) = &visibility
        && !matches!(
            value.as_str(),
            Some("private" | "org" | "public" | "restricted")
        )
    {
        return Err(ApiError::invalid_field(
            "/visibility",
            "is one of private, org, public, restricted",
        ));
    }
    // The request's identity under an Idempotency-Key: the file's bytes and the fields,
    // not the id this upload was given.
    let hash = crate::jobs::request_hash(&json!({
        "file": file.sha256,
        "targets": targets,
        "options": options,
        "visibility": visibility,
        "fields": fields,
        "export": export,
    }));
    let mut body = fields.clone();
    body.insert(
        "inputs".into(),
        json!([{"type": "file", "file_id": file.id}]),
    );
    body.insert(
        "conversions".into(),
        Value::Array(
            targets
                .iter()
                .map(|target| {
                    let mut conversion = export.clone();
                    conversion.insert("target".into(), json!(target));
                    conversion.insert("options".into(), json!(options));
                    Value::Object(conversion)
                })
                .collect(),
        ),
    );
    let def = state
        .resources()
        .get("conversion-jobs")
        .ok_or_else(|| ApiError::internal("the conversion-jobs resource is missing"))?;
    def.require(identity.role, Op::Create)?;
    let mut checked = def.check_body(identity.role, &Value::Object(body), true)?;
    if let Some(visibility) = visibility {
        checked.insert("visibility".into(), visibility);
    }
    let mut ctx = WriteContext::new(state, identity, &identity.org_id);
    ctx.idempotency_key = idempotency_key;
    ctx.request_hash = Some(hash);
    state
        .db()
        .run(move |conn| crate::resources::create_job(conn, &ctx, checked))
        .await
}

/// Reads the form: text fields into `fields`, the file into storage. On failure, the
/// stored file (if any) is returned to be discarded.
async fn read_form(
    state: &AppState,
    identity: &Identity,
    form: warp::multipart::FormData,
) -> Result<Form, (ApiError, Option<StoredInput>)> {
    let mut result = Form::default();
    let mut form = std::pin::pin!(form);
    while let Some(part) = form.next().await {
        let part = match part {
            Ok(part) => part,
            Err(error) => {
                return Err((
                    ApiError::new(
                        ErrorCode::BadRequest,
                        "the multipart/form-data body is malformed or was cut off",
                    )
                    .with_source(error),
                    result.file,
                ));
            }
        };
        let name = part.name().to_owned();
        if name == "file" {
            if result.file.is_some() {
                return Err((
                    ApiError::invalid_field("/file", "is sent once; one file per request"),
                    result.file,
                ));
            }
            match store(state, identity, part).await {
                Ok(stored) => result.file = Some(stored),
                Err(error) => return Err((error, None)),
            }
            continue;
        }
        let text = match read_text(part).await {
            Ok(text) => text,
            Err(error) => return Err((error, result.file)),
        };
        match name.as_str() {
            "target_format" | "target_format[]" | "target" => result.targets.extend(
                text.split(',')
                    .map(str::trim)
                    .filter(|target| !target.is_empty())
                    .map(str::to_owned),
            ),
            "options" | "visibility" | "callback_url" | "tag" | "destination" | "key_template" => {
                result.fields.insert(name, Value::String(text));
            }
            "notify_status" | "fail_on_conversion_error" | "keep_copy" => match text.trim() {
                "true" | "1" => {
                    result.fields.insert(name, Value::Bool(true));
                }
                "false" | "0" => {
                    result.fields.insert(name, Value::Bool(false));
                }
                _ => {
                    return Err((
                        ApiError::invalid_field(&format!("/{name}"), "is true or false"),
                        result.file,
                    ));
                }
            },
            other => {
                return Err((
                    ApiError::invalid_field(
                        &format!("/{other}"),
                        "is not a field of this form; the fields are file, target_format, \
                         options, visibility, callback_url, notify_status, \
                         fail_on_conversion_error, tag, destination, key_template, keep_copy",
                    ),
                    result.file,
                ));
            }
        }
    }
    Ok(result)
}

async fn read_text(part: warp::multipart::Part) -> ApiResult<String> {
    use bytes::Buf;
    let name = part.name().to_owned();
    let mut bytes = Vec::new();
    let mut stream = std::pin::pin!(part.stream());
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|error| {
            ApiError::new(ErrorCode::BadRequest, "the form was cut off").with_source(error)
        })?;
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            bytes.extend_from_slice(piece);
            let length = piece.len();
            chunk.advance(length);
        }
        if bytes.len() > FIELD_LIMIT {
            return Err(ApiError::invalid_field(
                &format!("/{name}"),
                "is longer than 64 KiB",
            ));
        }
    }
    String::from_utf8(bytes).map_err(|error| {
        ApiError::invalid_field(&format!("/{name}"), "is not UTF-8 text").with_source(error)
    })
}

/// Streams the `file` part into storage and records it, `ready`.
async fn store(
    state: &AppState,
    identity: &Identity,
    part: warp::multipart::Part,
) -> ApiResult<StoredInput> {
    let filename = part
        .filename()
        .map(|name| name.rsplit(['/', '\\']).next().unwrap_or(name).to_owned())
        .filter(|name| crate::files::valid_filename(name))
        .unwrap_or_else(|| "upload".into());
    let content_type = part.content_type().map(str::to_owned);
    let config = state.config().files;
    let retention = state.config().retention;
    let id = uuid::Uuid::now_v7().to_string();
    let org_id = identity.org_id.clone();
    let (org, file_id, owner, name) = (
        org_id.clone(),
        id.clone(),
        identity.user_id.clone(),
        filename.clone(),
    );
    let room = state
        .db()
        .run(move |conn| -> Result<u64, DbError> {
            crate::files::insert_pending(
                conn,
                &crate::files::NewPending {
                    id: &file_id,
                    org_id: &org,
                    owner_id: &owner,
                    filename: &name,
                    content_type: content_type.as_deref(),
                    origin: "upload",
                    declared_size: None,
                    streaming: true,
                },
                &retention,
            )?;
            let quota = crate::files::quota(conn, &org, &config)?;
            let used = crate::files::bytes_used(conn, &org, &file_id)?;
            Ok(quota.saturating_sub(used))
        })
        .await?;
    let stored_input = StoredInput {
        id: id.clone(),
        org_id: org_id.clone(),
        sha256: String::new(),
    };
    let cap = config.max_upload_size.min(room);
    let key = Storage::file_key(&org_id, &id);
    let stored = match ingest::store_stream(state.storage(), &key, part.stream(), cap).await {
        Ok(stored) => stored,
        Err(refused) => {
            discard(state, &stored_input).await;
            return Err(refused.into_api(|size| {
                if size > config.max_upload_size {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!(
                            "the file is more than {} bytes, the largest upload this service \
                             takes",
                            config.max_upload_size
                        ),
                    )
                } else {
                    ApiError::new(
                        ErrorCode::QuotaExceeded,
                        format!(
                            "the file does not fit in what is left of your organisation's \
                             storage quota ({room} bytes); delete files you no longer need"
                        ),
                    )
                }
            }));
        }
    };
    let format = sniff::sniff(&stored.head, &filename);
    let (file_id, sha256) = (id.clone(), stored.sha256.clone());
    let saved = state
        .db()
        .run(move |conn| {
            ingest::mark_ready(conn, &file_id, &stored, format.as_deref(), &key)
                .map_err(DbError::from)
        })
        .await;
    if let Err(error) = saved {
        discard(state, &stored_input).await;
        return Err(error.into());
    }
    Ok(StoredInput { id, org_id, sha256 })
}

/// Deletes an input this request stored and no job uses.
async fn discard(state: &AppState, file: &StoredInput) {
    let id = file.id.clone();
    let deleted = state
        .db()
        .run(move |conn| {
            diesel::delete(files::table.find(&id))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await;
    if let Err(error) = deleted {
        tracing::warn!(file_id = %file.id, %error, "cannot delete an unused upload's record");
    }
    let _ = state
        .storage()
        .delete(&Storage::file_key(&file.org_id, &file.id))
        .await;
}
