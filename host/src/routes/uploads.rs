//! Uploads: announce a file, stream its bytes, or give it up.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | POST | `/api/uploads/init` | 201 [`UploadTicket`] |
//! | PUT | `/api/uploads/{file_id}/data` | 200 the file record, `ready` |
//! | POST | `/api/uploads/{file_id}/abort` | 204; the pending file is gone |
//!
//! The body of `PUT` goes from the socket to storage in chunks: it is never held whole,
//! so memory does not grow with the file. Its SHA-256 and size are computed on the way and
//! its format is sniffed from its first bytes.

use bytes::Buf;
use chrono::Duration as TimeDelta;
use diesel::prelude::*;
use futures_util::Stream;
use http::{HeaderMap, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, PathParams, json, with_state};
use crate::app::AppState;
use crate::audit::AuditTarget;
use crate::auth::{Caller, Identity, RateClass, Role};
use crate::db::schema::files;
use crate::db::{DbError, now};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::ingest;
use crate::files::sniff::sniff;
use crate::files::{self as stored, FileRecord};
use crate::storage::Storage;

/// After this long, an upload that never finished (its server died) may be started again.
const STALE_UPLOAD: TimeDelta = TimeDelta::hours(1);

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let limit = state.config().server.json_body_limit;
    let caller = warp::ext::get::<Caller>();
    let file_id = |endpoint: super::EndpointBuilder| {
        endpoint.path_param::<String>(
            "file_id",
            "The file's id, from `POST /api/uploads/init`",
            "00000000-0000-7000-8000-000000000001",
        )
    };
    vec![
        Endpoint::post("/api/uploads/init", "initUpload")
            .summary("uploads", "Announces a file to upload")
            .description(
                "Creates a `pending` file record and answers where to `PUT` its bytes. A \
                 declared `size` is checked at once against the upload limit and your \
                 storage quota (413), and the body may not be longer.",
            )
            .authenticated(RateClass::Write)
            .audited("files", "create")
            .json_body::<NewUpload>("The file's name, and optionally its size and media type")
            .json_response::<UploadTicket>(StatusCode::CREATED, "Where to send the bytes")
            .handle(
                with_state(state)
                    .and(caller)
                    .and(json::<NewUpload>(limit))
                    .then(init)
                    .map(finish),
            ),
        file_id(Endpoint::put("/api/uploads/{file_id}/data", "uploadData"))
            .summary("uploads", "Streams a file's bytes")
            .description(
                "Send the whole file as the body (any `Content-Type`). It is stored as it \
                 arrives; its SHA-256, size and format (sniffed from the bytes, not the \
                 name) complete the record. A body longer than the declared size, the \
                 upload limit or what is left of the storage quota is cut off with 413 and \
                 nothing is kept; the file stays `pending`, so the upload can be tried again.",
            )
            .authenticated(RateClass::Write)
            .audited("files", "upload")
            .bytes_body("The file's bytes")
            .response(StatusCode::OK, "The stored file's record", None)
            .handle(
                with_state(state)
                    .and(caller)
                    .and(warp::ext::get::<PathParams>())
                    .and(warp::header::headers_cloned())
                    .and(warp::body::stream())
                    .then(upload_detached)
                    .map(finish),
            ),
        file_id(Endpoint::post(
            "/api/uploads/{file_id}/abort",
            "abortUpload",
        ))
        .summary("uploads", "Gives up an upload")
        .description("Deletes a `pending` file and whatever of it was stored.")
        .authenticated(RateClass::Write)
        .audited("files", "delete")
        .response(StatusCode::NO_CONTENT, "Discarded", None)
        .handle(
            with_state(state)
                .and(caller)
                .and(warp::ext::get::<PathParams>())
                .then(abort)
                .map(finish),
        ),
    ]
}

fn finish(result: ApiResult<Response>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

/// Body of `POST /api/uploads/init`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUpload {
    /// The file's name, without folders (1 to 255 characters).
    filename: String,
    /// Its size in bytes, if known: checked now, and the body may not be longer.
    size: Option<u64>,
    /// Its media type, as the client knows it (the format is sniffed from the bytes).
    content_type: Option<String>,
}

/// Answer of `POST /api/uploads/init`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct UploadTicket {
    /// The new file's id.
    file_id: String,
    /// The organisation it belongs to.
    org_id: String,
    /// Always `PUT`.
    method: &'static str,
    /// Where to send the bytes.
    upload_url: String,
}

/// 404 for a file the caller may not reach, exactly as for one that does not exist.
fn not_found(file_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("there is no upload {file_id}; start one with POST /api/uploads/init"),
    )
}

fn may_write(identity: &Identity) -> ApiResult<()> {
    identity.require_role(
        &[Role::Admin, Role::Member, Role::Anonymous],
        "upload files",
    )
}

async fn init(state: AppState, caller: Caller, body: ApiResult<NewUpload>) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    may_write(&identity)?;
    let body = body?;
    if !stored::valid_filename(&body.filename) {
        return Err(ApiError::invalid_field(
            "/filename",
            "is 1 to 255 characters, with no `/`, `\\` or control characters",
        ));
    }
    if let Some(content_type) = &body.content_type
        && (content_type.len() > 255 || content_type.chars().any(char::is_control))
    {
        return Err(ApiError::invalid_field(
            "/content_type",
            "is a media type such as image/png, at most 255 characters",
        ));
    }
    let config = state.config().files;
    if let Some(size) = body.size
        && size > config.max_upload_size
    {
        return Err(too_large(size, config.max_upload_size));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let org_id = identity.org_id.clone();
    let (file_id, owner) = (id.clone(), identity.user_id.clone());
    let declared = body.size;
    let retention = state.config().retention;
    state
        .db()
        .run(move |conn| -> ApiResult<()> {
            if let Some(size) = declared {
                check_quota(conn, &org_id, &file_id, size, &config)?;
            }
            stored::insert_pending(
                conn,
                &stored::NewPending {
                    id: &file_id,
                    org_id: &org_id,
                    owner_id: &owner,
                    filename: &body.filename,
                    content_type: body.content_type.as_deref(),
                    origin: "upload",
                    declared_size: declared,
                    streaming: false,
                },
                &retention,
            )
            .map_err(DbError::from)?;
            Ok(())
        })
        .await?;
    let ticket = UploadTicket {
        upload_url: format!("{}/api/uploads/{id}/data", state.public_url()),
        file_id: id.clone(),
        org_id: identity.org_id.clone(),
        method: "PUT",
    };
    let mut response =
        warp::reply::with_status(warp::reply::json(&ticket), StatusCode::CREATED).into_response();
    response.extensions_mut().insert(AuditTarget {
        org_id: identity.org_id,
        id,
        actor: None,
    });
    Ok(response)
}

fn too_large(size: u64, limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "the file is {size} bytes; uploads may be at most {limit} bytes ({})",
            bytesize::ByteSize::b(limit).display().iec()
        ),
    )
}

/// Fails with 413 `quota_exceeded` unless `org_id` can store `size` more bytes besides
/// what it keeps (not counting `file_id` itself).
fn check_quota(
    conn: &mut crate::db::DbConnection,
    org_id: &str,
    file_id: &str,
    size: u64,
    config: &crate::config::FilesConfig,
) -> ApiResult<()> {
    let quota = stored::quota(conn, org_id, config).map_err(DbError::from)?;
    let used = stored::bytes_used(conn, org_id, file_id).map_err(DbError::from)?;
    if used.saturating_add(size) > quota {
        return Err(quota_exceeded(used, quota));
    }
    Ok(())
}

fn quota_exceeded(used: u64, quota: u64) -> ApiError {
    let iec = |bytes: u64| bytesize::ByteSize::b(bytes).display().iec().to_string();
    ApiError::new(
        ErrorCode::QuotaExceeded,
        format!(
            "your organisation stores {} of its {} quota and this file does not fit in \
             what is left ({}); delete files you no longer need",
            iec(used),
            iec(quota),
            iec(quota.saturating_sub(used))
        ),
    )
}

/// Loads the pending upload `file_id` of the caller's organisation.
async fn pending_upload(
    state: &AppState,
    identity: &Identity,
    file_id: &str,
) -> ApiResult<FileRecord> {
    let record = stored::load(state.db(), file_id)
        .await?
        .filter(|record| identity.can_reach(&record.org_id))
        .ok_or_else(|| not_found(file_id))?;
    match record.status.as_str() {
        "pending" => Ok(record),
        "ready" => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("file {file_id} is already uploaded; start a new upload for other bytes"),
        )),
        _ => Err(not_found(file_id)),
    }
}

/// Runs [`upload`] in a task of its own: when the client goes away mid-body, the request's
/// future is dropped, but the upload still sees its body end, deletes what it stored and
/// frees the file for another try.
async fn upload_detached<S, B>(
    state: AppState,
    caller: Caller,
    params: PathParams,
    headers: HeaderMap,
    body: S,
) -> ApiResult<Response>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf + Send + 'static,
{
    tokio::spawn(upload(state, caller, params, headers, body))
        .await
        .map_err(ApiError::internal)?
}

async fn upload<S, B>(
    state: AppState,
    caller: Caller,
    params: PathParams,
    headers: HeaderMap,
    body: S,
) -> ApiResult<Response>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let identity = caller.identity()?.clone();
    may_write(&identity)?;
    let file_id = params.get("file_id").unwrap_or_default().to_owned();
    let record = pending_upload(&state, &identity, &file_id).await?;
    let config = state.config().files;

    // The body may be no longer than the smallest of: the declared size, the upload limit
    // and what is left of the quota.
    let (org_id, id) = (record.org_id.clone(), record.id.clone());
    let (quota, used) = state
        .db()
        .run(move |conn| -> Result<(u64, u64), DbError> {
            Ok((
                stored::quota(conn, &org_id, &config)?,
                stored::bytes_used(conn, &org_id, &id)?,
            ))
        })
        .await?;
    let declared = record
        .declared_size
        .and_then(|size| u64::try_from(size).ok());
    let room = quota.saturating_sub(used);
    let cap = declared
        .unwrap_or(u64::MAX)
        .min(config.max_upload_size)
        .min(room);
    let over = |size: u64| -> ApiError {
        if declared.is_some_and(|declared| size > declared) {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the body is longer than the {} bytes declared at init; nothing was kept",
                    declared.unwrap_or_default()
                ),
            )
        } else if size > config.max_upload_size {
            too_large(size, config.max_upload_size)
        } else {
            quota_exceeded(used, quota)
        }
    };
    if let Some(length) = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        && length > cap
    {
        return Err(over(length));
    }

    claim(&state, &record.id).await?;
    let key = Storage::file_key(&record.org_id, &record.id);
    let stored = match ingest::store_stream(state.storage(), &key, body, cap).await {
        Ok(stored) => stored,
        Err(refused) => {
            let _ = state.storage().delete(&key).await;
            release(&state, &record.id).await;
            return Err(refused.into_api(over));
        }
    };

    let format = sniff(&stored.head, &record.filename);
    let (org_id, id, storage_key) = (record.org_id.clone(), record.id.clone(), key.clone());
    let size = stored.size;
    let completed = state
        .db()
        .run(
            move |conn| -> ApiResult<serde_json::Map<String, serde_json::Value>> {
                // Another upload may have finished meanwhile; the quota holds for both.
                check_quota(conn, &org_id, &id, size, &config)?;
                ingest::mark_ready(conn, &id, &stored, format.as_deref(), &storage_key)
                    .map_err(DbError::from)?;
                crate::resources::file_json(conn, &id)
                    .map_err(DbError::from)?
                    .ok_or_else(|| not_found(&id))
            },
        )
        .await;
    let mut json = match completed {
        Ok(json) => json,
        Err(error) => {
            let _ = state.storage().delete(&key).await;
            release(&state, &record.id).await;
            return Err(error);
        }
    };
    // Conversions waiting for this file can run now.
    let (waker, file_id) = (state.clone(), record.id.clone());
    let queued = state
        .db()
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                crate::jobs::input_ready(conn, &waker, &file_id)
            })
        })
        .await;
    match queued {
        Ok(()) => state.jobs().wake(),
        Err(error) => tracing::warn!(
            file_id = %record.id,
            error = %error.detail(),
            "cannot queue the conversions waiting for an upload; the next sweep will"
        ),
    }
    json.insert(
        "download_url".into(),
        serde_json::Value::String(super::downloads::download_url(&state, &record)),
    );
    let mut response = warp::reply::json(&json).into_response();
    response.extensions_mut().insert(AuditTarget {
        org_id: record.org_id,
        id: record.id,
        actor: None,
    });
    Ok(response)
}

/// Marks the upload as streaming, unless another is (409).
async fn claim(state: &AppState, file_id: &str) -> ApiResult<()> {
    let id = file_id.to_owned();
    let claimed = state
        .db()
        .run(move |conn| {
            let time = now();
            diesel::update(
                files::table
                    .find(&id)
                    .filter(files::status.eq("pending"))
                    .filter(
                        files::upload_started_at
                            .is_null()
                            .or(files::upload_started_at.lt(time - STALE_UPLOAD)),
                    ),
            )
            .set(files::upload_started_at.eq(time))
            .execute(conn)
            .map_err(DbError::from)
        })
        .await?;
    if claimed == 1 {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Conflict,
            format!("an upload to file {file_id} is already in progress; wait for it to end"),
        ))
    }
}

/// Lets the upload be tried again.
async fn release(state: &AppState, file_id: &str) {
    let id = file_id.to_owned();
    let released = state
        .db()
        .run(move |conn| {
            diesel::update(files::table.find(&id).filter(files::status.eq("pending")))
                .set(files::upload_started_at.eq(None::<chrono::NaiveDateTime>))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await;
    if let Err(error) = released {
        tracing::warn!(file_id, %error, "cannot release a failed upload");
    }
}

async fn abort(state: AppState, caller: Caller, params: PathParams) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    may_write(&identity)?;
    let file_id = params.get("file_id").unwrap_or_default().to_owned();
    let record = pending_upload(&state, &identity, &file_id).await?;
    let id = record.id.clone();
    let deleted = state
        .db()
        .run(move |conn| {
            diesel::delete(files::table.find(&id).filter(files::status.eq("pending")))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await?;
    if deleted == 0 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("file {file_id} finished uploading meanwhile; delete it instead"),
        ));
    }
    state
        .storage()
        .delete(&Storage::file_key(&record.org_id, &record.id))
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(AuditTarget {
        org_id: record.org_id,
        id: record.id,
        actor: None,
    });
    Ok(response)
}
