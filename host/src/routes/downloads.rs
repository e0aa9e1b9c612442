//! Downloads of stored files.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | GET, HEAD | `/api/files/{org_id}/{file_id}/download[?dl=<token>]` | 200 the bytes, 206 a range, 304 unchanged |
//!
//! With a signed `dl` token (from a `download_url`) no credentials are needed; without one
//! the caller must belong to the file's organisation (and own the file, or be an admin,
//! when it is `private`). Bytes stream from storage as they are sent.

use std::collections::HashMap;

use diesel::prelude::*;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, EndpointBuilder, PathParams, with_state};
use crate::app::AppState;
use crate::auth::tokens::unix_now;
use crate::auth::{Caller, RateClass, Role};
use crate::db::DbError;
use crate::db::schema::files;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::links::LinkTarget;
use crate::files::range::{RangeAnswer, answer};
use crate::files::{self as stored, FileRecord};

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    vec![
        file_params(Endpoint::get(
            "/api/files/{org_id}/{file_id}/download",
            "downloadFile",
        ))
        .summary("files", "Downloads a file's bytes")
        .description(
            "Streams the file with its media type, size, name (`Content-Disposition`) and \
                 `ETag`. One `Range` (`bytes=0-99`, `bytes=100-`, `bytes=-100`) answers 206 \
                 with `Content-Range`; a range past the end answers 416. `If-None-Match` \
                 with the `ETag` answers 304. With `dl` (the token in a `download_url`) no \
                 credentials are needed; an expired or altered token answers 404. A file \
                 whose `max_downloads` are used up answers 410.",
        )
        .open(RateClass::Read)
        .query_param::<String>("dl", "Signed download token, from a `download_url`", "")
        .file_responses()
        .handle(
            with_state(state)
                .and(warp::ext::get::<Caller>())
                .and(warp::ext::get::<PathParams>())
                .and(warp::query::<HashMap<String, String>>())
                .and(warp::header::headers_cloned())
                .and(warp::method())
                .then(download)
                .map(|result: ApiResult<Response>| result.unwrap_or_else(Reply::into_response)),
        ),
    ]
}

/// Declares the `org_id` and `file_id` path parameters of a route to one file.
pub(super) fn file_params(endpoint: EndpointBuilder) -> EndpointBuilder {
    endpoint
        .path_param::<String>(
            "org_id",
            "The file's organisation",
            "00000000-0000-7000-8000-000000000000",
        )
        .path_param::<String>(
            "file_id",
            "The file's id",
            "00000000-0000-7000-8000-000000000001",
        )
}

/// A link to `record`'s bytes that works without credentials until the configured time
/// has passed.
pub(crate) fn download_url(state: &AppState, record: &FileRecord) -> String {
    let expires = unix_now() + state.config().files.download_link_ttl.as_secs();
    let token = state.links().sign(
        LinkTarget {
            org_id: &record.org_id,
            file_id: &record.id,
            epoch: record.link_epoch,
        },
        expires,
    );
    format!(
        "{}/api/files/{}/{}/download?dl={token}",
        state.public_url(),
        record.org_id,
        record.id
    )
}

pub(super) fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "there is no such file")
}

/// The file the path's `org_id` and `file_id` name, or 404.
pub(super) async fn file_in_path(state: &AppState, params: &PathParams) -> ApiResult<FileRecord> {
    let org_id = params.get("org_id").unwrap_or_default();
    let file_id = params.get("file_id").unwrap_or_default();
    stored::load(state.db(), file_id)
        .await?
        .filter(|record| record.org_id == org_id)
        .ok_or_else(not_found)
}

async fn download(
    state: AppState,
    caller: Caller,
    params: PathParams,
    query: HashMap<String, String>,
    headers: HeaderMap,
    method: Method,
) -> ApiResult<Response> {
    let record = file_in_path(&state, &params).await?;

    match query.get("dl") {
        Some(token) => {
            let target = LinkTarget {
                org_id: &record.org_id,
                file_id: &record.id,
                epoch: record.link_epoch,
            };
            state
                .links()
                .verify(target, token, unix_now())
                .map_err(|error| {
                    ApiError::new(
                        ErrorCode::NotFound,
                        format!("{error}; ask for a new link (the file's `download_url`)"),
                    )
                })?;
        }
        None => {
            let identity = caller.identity()?;
            if !identity.can_reach(&record.org_id) {
                return Err(not_found());
            }
            let owner = record.owner_id.as_deref() == Some(identity.user_id.as_str());
            let admin = identity.is_superuser() || identity.role == Role::Admin;
            // `org` and `public` files are open to the organisation; `private` and
            // `restricted` ones to their owner and admins (others need a link).
            let members = matches!(record.visibility.as_str(), "org" | "public");
            if !members && !owner && !admin {
                return Err(not_found());
            }
        }
    }
    serve_bytes(&state, &record, &headers, &method).await
}

/// Answers with `record`'s bytes (whole, a range, or 304), counting the download.
pub(super) async fn serve_bytes(
    state: &AppState,
    record: &FileRecord,
    headers: &HeaderMap,
    method: &Method,
) -> ApiResult<Response> {
    let file_id = &record.id;

    let (Some(size), Some(sha256), Some(key), "ready") = (
        record.size_bytes,
        record.sha256.as_deref(),
        record.storage_key.as_deref(),
        record.status.as_str(),
    ) else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("file {file_id} has no bytes yet; upload them first"),
        ));
    };
    let size = u64::try_from(size).unwrap_or(0);
    let etag = format!("\"{sha256}\"");
    let header_text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };

    if header_text(header::IF_NONE_MATCH).is_some_and(|tags| matches_etag(&tags, &etag)) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response
            .headers_mut()
            .insert(header::ETAG, header_value(&etag)?);
        return Ok(response);
    }
    // `If-Range`: serve the range only if the file is still the one the client has.
    let range_header = header_text(header::RANGE)
        .filter(|_| header_text(header::IF_RANGE).is_none_or(|tag| tag.trim() == etag));
    let (status, range) = match answer(range_header.as_deref(), size) {
        RangeAnswer::Full => (StatusCode::OK, 0..size),
        RangeAnswer::Partial(range) => (StatusCode::PARTIAL_CONTENT, range),
        RangeAnswer::Unsatisfiable => {
            let mut response = ApiError::new(
                ErrorCode::RangeNotSatisfiable,
                format!(
                    "the file is {size} bytes; `{}` asks for bytes outside it",
                    range_header.unwrap_or_default()
                ),
            )
            .into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}"))?,
            );
            return Ok(response);
        }
    };

    // A download from the first byte counts once against `max_downloads`; resuming with a
    // later range does not count again.
    if *method == Method::GET && range.start == 0 {
        count_download(state, record).await?;
    }

    let stream = if *method == Method::HEAD || range.is_empty() {
        None
    } else {
        Some(state.storage().read_range(key, range.clone()).await?)
    };
    let mut response = match stream {
        Some(stream) => warp::reply::stream(stream).into_response(),
        None => Response::new(warp::hyper::body::Bytes::new().into()),
    };
    *response.status_mut() = status;
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        header_value(&stored::media_type(record))?,
    );
    response_headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    response_headers.insert(
        header::CONTENT_DISPOSITION,
        header_value(&stored::content_disposition(&record.filename))?,
    );
    response_headers.insert(header::ETAG, header_value(&etag)?);
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    if status == StatusCode::PARTIAL_CONTENT {
        response_headers.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {}-{}/{size}", range.start, range.end - 1))?,
        );
    }
    Ok(response)
}

fn header_value(text: &str) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(text).map_err(ApiError::internal)
}

/// Whether an `If-None-Match` list names `etag` (or is `*`).
fn matches_etag(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

/// Counts one download, or fails with 410 when none is left.
async fn count_download(state: &AppState, record: &FileRecord) -> ApiResult<()> {
    let id = record.id.clone();
    let counted = state
        .db()
        .run(move |conn| {
            diesel::update(
                files::table.find(&id).filter(
                    files::max_downloads
                        .is_null()
                        .or(files::download_count.lt(files::max_downloads.assume_not_null())),
                ),
            )
            .set(files::download_count.eq(files::download_count + 1))
            .execute(conn)
            .map_err(DbError::from)
        })
        .await?;
    if counted == 1 {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::DownloadLimitReached,
            format!(
                "file {} was downloaded {} time(s), all its max_downloads allow",
                record.id,
                record.max_downloads.unwrap_or_default()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::matches_etag;

    #[test]
    fn if_none_match_lists_are_read_weakly() {
        let etag = "\"abc\"";
        assert!(matches_etag("\"abc\"", etag));
        assert!(matches_etag("\"x\", W/\"abc\"", etag));
        assert!(matches_etag("*", etag));
        assert!(!matches_etag("\"abd\"", etag));
    }
}
