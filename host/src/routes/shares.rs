//! Sharing stored files by link.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | POST | `/api/files/{org_id}/{file_id}/share` | 200 [`Share`] |
//! | GET, HEAD | `/api/s/{token}` | 200 the bytes, 206 a range, 304 unchanged |
//!
//! A share link works while the file keeps the visibility it was shared with (not
//! `private`) and until its optional expiry: `public` for anyone, `org` and `restricted`
//! for signed-in members of the file's organisation. Making the file `private` kills every
//! link at once.

use diesel::prelude::*;
use http::{HeaderMap, Method, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::downloads::{file_in_path, file_params, not_found, serve_bytes};
use super::{Endpoint, PathParams, json, with_state};
use crate::app::AppState;
use crate::audit::AuditTarget;
use crate::auth::tokens::unix_now;
use crate::auth::{Caller, RateClass, Role};
use crate::db::schema::files;
use crate::db::{DbError, now};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::links::LinkSigner;
use crate::files::{self as stored};

/// Longest a share link may be given for: ten years.
const MAX_EXPIRES_IN: u64 = 10 * 365 * 24 * 3600;

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let limit = state.config().server.json_body_limit;
    vec![
        file_params(Endpoint::post(
            "/api/files/{org_id}/{file_id}/share",
            "shareFile",
        ))
        .summary("files", "Shares a file by link, or stops sharing it")
        .description(
            "Sets who may download the file and answers a link to it: `public` (anyone \
             with the link), `org` (every member of the organisation, link or not), \
             `restricted` (members holding the link) or `private` (its owner and \
             admins; every link stops working). `expires_in` (seconds) limits the \
             link's life. Only the file's owner or an admin may share it.",
        )
        .authenticated(RateClass::Write)
        .audited("files", "share")
        .json_body::<ShareRequest>("Who may download it, and for how long")
        .json_response::<Share>(StatusCode::OK, "The link")
        .handle(
            with_state(state)
                .and(warp::ext::get::<Caller>())
                .and(warp::ext::get::<PathParams>())
                .and(json::<ShareRequest>(limit))
                .then(share)
                .map(finish),
        ),
        Endpoint::get("/api/s/{token}", "getSharedFile")
            .summary("files", "Downloads a shared file")
            .description(
                "The bytes of a shared file, with `Range`, `ETag` and `If-None-Match` as for \
                 a download. `public` shares need no credentials; `org` and `restricted` \
                 ones a signed-in member of the file's organisation. An unknown, altered or \
                 expired link, or one to a file made private, answers 404.",
            )
            .open(RateClass::Read)
            .path_param::<String>("token", "The share token, from `share_url`", "x")
            .file_responses()
            .handle(
                with_state(state)
                    .and(warp::ext::get::<Caller>())
                    .and(warp::ext::get::<PathParams>())
                    .and(warp::header::headers_cloned())
                    .and(warp::method())
                    .then(shared)
                    .map(finish),
            ),
    ]
}

fn finish(result: ApiResult<Response>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

/// Who may download a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Visibility {
    /// Its owner and admins.
    Private,
    /// Every member of its organisation.
    Org,
    /// Anyone with the link.
    Public,
    /// Members of its organisation holding the link.
    Restricted,
}

impl Visibility {
    fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Org => "org",
            Self::Public => "public",
            Self::Restricted => "restricted",
        }
    }
}

/// Body of `POST …/share`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ShareRequest {
    /// Who may download the file.
    visibility: Visibility,
    /// Seconds the link works for (1 to ten years); as long as the file stays shared when
    /// absent.
    expires_in: Option<u64>,
}

/// A file's share link.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct Share {
    /// The file.
    file_id: String,
    /// Who may download it now.
    visibility: Visibility,
    /// The link (`/api/s/<token>`); null when the file is private.
    share_url: Option<String>,
    /// When the link stops working (RFC 3339); null for never.
    expires_at: Option<String>,
}

async fn share(
    state: AppState,
    caller: Caller,
    params: PathParams,
    body: ApiResult<ShareRequest>,
) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    if !identity.can_reach(params.get("org_id").unwrap_or_default()) {
        return Err(not_found());
    }
    let record = file_in_path(&state, &params).await?;
    identity.require_role(&[Role::Admin, Role::Member, Role::Anonymous], "share files")?;
    let owner = record.owner_id.as_deref() == Some(identity.user_id.as_str());
    if !owner && !identity.is_superuser() && identity.role != Role::Admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the file's owner or an admin may share it",
        ));
    }
    let body = body?;
    if let Some(seconds) = body.expires_in
        && !(1..=MAX_EXPIRES_IN).contains(&seconds)
    {
        return Err(ApiError::invalid_field(
            "/expires_in",
            "is a number of seconds from 1 to 315360000 (ten years)",
        ));
    }
    let visibility = body.visibility;
    let id = record.id.clone();
    let retention = state.config().retention;
    let epoch = state
        .db()
        .run(move |conn| -> Result<i32, DbError> {
            let revoke = i32::from(visibility == Visibility::Private);
            diesel::update(files::table.find(&id))
                .set((
                    files::visibility.eq(visibility.as_str()),
                    files::link_epoch.eq(files::link_epoch + revoke),
                    files::updated_at.eq(now()),
                ))
                .execute(conn)?;
            crate::files::retention::refresh_file(conn, &retention, &id)?;
            Ok(files::table
                .find(&id)
                .select(files::link_epoch)
                .first(conn)?)
        })
        .await?;
    let expires = body.expires_in.map(|seconds| unix_now() + seconds);
    let share_url = (visibility != Visibility::Private).then(|| {
        let token = state.links().sign_share(&record.id, epoch, expires);
        format!("{}/api/s/{token}", state.public_url())
    });
    let expires_at = share_url.as_ref().and(expires).and_then(|seconds| {
        chrono::DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)
            .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    });
    let answer = Share {
        file_id: record.id.clone(),
        visibility,
        share_url,
        expires_at,
    };
    let mut response = warp::reply::json(&answer).into_response();
    response.extensions_mut().insert(AuditTarget {
        org_id: record.org_id,
        id: record.id,
        actor: None,
    });
    Ok(response)
}

async fn shared(
    state: AppState,
    caller: Caller,
    params: PathParams,
    headers: HeaderMap,
    method: Method,
) -> ApiResult<Response> {
    let token = params.get("token").unwrap_or_default().to_owned();
    let gone = || {
        ApiError::new(
            ErrorCode::NotFound,
            "this share link is not valid, has expired, or the file is no longer shared",
        )
    };
    let file_id = LinkSigner::share_file_id(&token)
        .ok_or_else(gone)?
        .to_owned();
    let record = stored::load(state.db(), &file_id).await?.ok_or_else(gone)?;
    state
        .links()
        .verify_share(&token, record.link_epoch, unix_now())
        .map_err(|_invalid| gone())?;
    match record.visibility.as_str() {
        "public" => {}
        "org" | "restricted" => {
            let identity = caller.identity()?;
            if !identity.can_reach(&record.org_id) {
                return Err(gone());
            }
        }
        _ => return Err(gone()),
    }
    serve_bytes(&state, &record, &headers, &method).await
}
