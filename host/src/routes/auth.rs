//! Sign-in and sessions.
//!
//! | Method | Path | Success |
//! |--------|------|---------|
//! | POST | `/api/auth/login` | 200 [`TokenPair`] |
//! | POST | `/api/auth/refresh` | 200 [`TokenPair`] (the refresh token is rotated) |
//! | GET | `/api/auth/me` | 200 [`Me`] |
//! | GET | `/api/usage` | 200 [`crate::files::Usage`] |
//! | POST | `/api/anon/session` | 201 [`AnonymousSession`] |

use chrono::NaiveDateTime;
use diesel::prelude::*;
use http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{Endpoint, json, with_state};
use crate::app::AppState;
use crate::audit::AuditTarget;
use crate::auth::accounts::{self, NewUser};
use crate::auth::tokens::{self, TokenKind};
use crate::auth::{AuthMode, Caller, RateClass, Role, password, unauthenticated};
use crate::db::schema::{orgs, refresh_tokens, users};
use crate::db::{DbError, now};
use crate::error::{ApiError, ApiResult};

pub(super) fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let limit = state.config().server.json_body_limit;
    let caller = warp::ext::get::<Caller>();
    vec![
        Endpoint::post("/api/auth/login", "login")
            .summary("auth", "Signs in with email and password")
            .description(
                "Answers an access token (a JWT, short-lived) and a refresh token (long-lived, \
                 single use). Send the access token as `Authorization: Bearer <token>`.",
            )
            .by_ip(RateClass::Write)
            .audited("auth", "login")
            .json_body::<LoginRequest>("The credentials")
            .json_response::<TokenPair>(StatusCode::OK, "Signed in")
            .handle(
                with_state(state)
                    .and(json::<LoginRequest>(limit))
                    .then(login)
                    .map(finish),
            ),
        Endpoint::post("/api/auth/refresh", "refresh")
            .summary("auth", "Trades a refresh token for new tokens")
            .description(
                "Each refresh token works once: the answer carries its successor. Presenting a \
                 used one again revokes every token of that sign-in (it has been copied).",
            )
            .by_ip(RateClass::Write)
            .audited("auth", "refresh")
            .json_body::<RefreshRequest>("The refresh token")
            .json_response::<TokenPair>(StatusCode::OK, "New tokens")
            .handle(
                with_state(state)
                    .and(json::<RefreshRequest>(limit))
                    .then(refresh)
                    .map(finish),
            ),
        Endpoint::get("/api/auth/me", "me")
            .summary("auth", "Who the credentials sent belong to")
            .authenticated(RateClass::Read)
            .json_response::<Me>(StatusCode::OK, "The resolved identity")
            .handle(with_state(state).and(caller).then(me).map(finish)),
        Endpoint::get("/api/usage", "usage")
            .summary("auth", "What your organisation stores against its quota")
            .description(
                "Bytes and files stored (uploads, fetched inputs, conversion outputs) and \
                 the quota they count against; an upload or output past it gets 413 \
                 `quota_exceeded`.",
            )
            .authenticated(RateClass::Read)
            .json_response::<crate::files::Usage>(StatusCode::OK, "The organisation's usage")
            .handle(with_state(state).and(caller).then(usage).map(finish)),
        Endpoint::post("/api/anon/session", "createAnonymousSession")
            .summary("auth", "Starts an anonymous session")
            .description(
                "Creates a fresh organisation of its own, whose files are deleted when the \
                 session expires. Send the token as `Authorization: Bearer <token>`.",
            )
            .by_ip(RateClass::Write)
            .audited("anon", "session")
            .json_response::<AnonymousSession>(StatusCode::CREATED, "The session")
            .handle(with_state(state).then(anonymous_session).map(finish)),
    ]
}

fn finish(result: ApiResult<Response>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

/// Body of `POST /api/auth/login`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    /// The account's email.
    email: String,
    /// Its password.
    password: String,
}

/// Body of `POST /api/auth/refresh`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshRequest {
    /// The refresh token of the last sign-in or refresh.
    refresh_token: String,
}

/// Tokens of a sign-in.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct TokenPair {
    /// Send as `Authorization: Bearer <access_token>`.
    access_token: String,
    /// Trade for new tokens at `POST /api/auth/refresh`; works once.
    refresh_token: String,
    /// Always `bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
}

/// A new anonymous session.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct AnonymousSession {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// The session's own organisation.
    org_id: String,
    /// The session's user.
    user_id: String,
    /// When the session, and everything in its organisation, is deleted.
    expires_at: String,
}

/// The identity behind the credentials sent.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct Me {
    /// The user.
    user: MeUser,
    /// Their organisation.
    org: MeOrg,
    /// What they may do.
    role: Role,
    /// How they authenticated.
    auth_mode: AuthMode,
    /// Route classes the credentials allow (`read`, `write`, `convert`).
    scopes: Vec<RateClass>,
    /// The API key used, if any.
    api_key_id: Option<String>,
    /// What the organisation stores against its quota (as `GET /api/usage`).
    usage: crate::files::Usage,
}

/// The user part of [`Me`].
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct MeUser {
    /// Id.
    id: String,
    /// Email, if any.
    email: Option<String>,
    /// Name shown.
    display_name: Option<String>,
}

/// The organisation part of [`Me`].
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct MeOrg {
    /// Id.
    id: String,
    /// Name.
    name: String,
    /// `standard` or `anonymous`.
    kind: String,
    /// When an anonymous organisation is deleted.
    expires_at: Option<String>,
}

fn rfc3339(time: NaiveDateTime) -> String {
    time.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Issues an access token and a refresh token of `family` for a user.
fn issue_pair(
    state: &AppState,
    conn: &mut crate::db::DbConnection,
    user_id: &str,
    org_id: &str,
    family: &str,
) -> ApiResult<TokenPair> {
    let ttl = state.config().auth.access_token_ttl;
    let (access_token, _) = state
        .signer()
        .issue(TokenKind::Access, user_id, org_id, ttl)
        .map_err(ApiError::internal)?;
    let refresh_token = tokens::new_refresh_token();
    let created = now();
    let lifetime = chrono::TimeDelta::from_std(state.config().auth.refresh_token_ttl)
        .map_err(ApiError::internal)?;
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(uuid::Uuid::now_v7().to_string()),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::family_id.eq(family),
            refresh_tokens::token_hash.eq(tokens::digest(&refresh_token)),
            refresh_tokens::created_at.eq(created),
            refresh_tokens::expires_at.eq(created + lifetime),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        token_type: "bearer",
        expires_in: ttl.as_secs(),
    })
}

/// Names the user a sign-in established, for the audit trail (as object and actor).
fn with_target(mut response: Response, org_id: String, id: String, kind: &'static str) -> Response {
    let actor = Some((id.clone(), kind));
    response
        .extensions_mut()
        .insert(AuditTarget { org_id, id, actor });
    response
}

async fn login(state: AppState, body: ApiResult<LoginRequest>) -> ApiResult<Response> {
    let body = body?;
    let email = body.email.clone();
    let user = state
        .db()
        .run(move |conn| accounts::find_by_email(conn, &email))
        .await?;
    let candidate = body.password;
    let verified = tokio::task::spawn_blocking(move || match user {
        Some(user) => {
            let matches = user
                .password_hash
                .as_deref()
                .is_some_and(|hash| password::verify(&candidate, hash));
            matches.then_some(user)
        }
        None => {
            password::verify_nothing(&candidate);
            None
        }
    })
    .await
    .map_err(ApiError::internal)?;
    let user = verified.ok_or_else(|| unauthenticated("the email or the password is wrong"))?;
    if user.disabled {
        return Err(unauthenticated("this account is disabled"));
    }
    let login_state = state.clone();
    let (user_id, org_id) = (user.id.clone(), user.org_id.clone());
    let pair = state
        .db()
        .run(move |conn| {
            diesel::update(users::table.find(&user_id))
                .set(users::last_login_at.eq(now()))
                .execute(conn)
                .map_err(DbError::from)?;
            issue_pair(
                &login_state,
                conn,
                &user_id,
                &org_id,
                &uuid::Uuid::now_v7().to_string(),
            )
        })
        .await?;
    Ok(with_target(
        warp::reply::json(&pair).into_response(),
        user.org_id,
        user.id,
        "user",
    ))
}

async fn refresh(state: AppState, body: ApiResult<RefreshRequest>) -> ApiResult<Response> {
    let hash = tokens::digest(&body?.refresh_token);
    let refresh_state = state.clone();
    let (pair, org_id, user_id) = state
        .db()
        .run(move |conn| {
            let row = refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&hash))
                .select((
                    refresh_tokens::id,
                    refresh_tokens::user_id,
                    refresh_tokens::family_id,
                    refresh_tokens::expires_at,
                    refresh_tokens::used_at,
                    refresh_tokens::revoked_at,
                ))
                .first::<(
                    String,
                    String,
                    String,
                    NaiveDateTime,
                    Option<NaiveDateTime>,
                    Option<NaiveDateTime>,
                )>(conn)
                .optional()
                .map_err(DbError::from)?;
            let Some((id, user_id, family, expires_at, used_at, revoked_at)) = row else {
                return Err(unauthenticated("the refresh token is not valid"));
            };
            let now = now();
            if revoked_at.is_some() {
                return Err(unauthenticated(
                    "the refresh token was revoked; sign in again",
                ));
            }
            if expires_at <= now {
                return Err(unauthenticated(
                    "the refresh token has expired; sign in again",
                ));
            }
            // Marking it used only if it was not: of two concurrent uses, one wins.
            let claimed = diesel::update(
                refresh_tokens::table
                    .find(&id)
                    .filter(refresh_tokens::used_at.is_null()),
            )
            .set(refresh_tokens::used_at.eq(now))
            .execute(conn)
            .map_err(DbError::from)?;
            if used_at.is_some() || claimed == 0 {
                diesel::update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(&family)))
                    .set(refresh_tokens::revoked_at.eq(now))
                    .execute(conn)
                    .map_err(DbError::from)?;
                tracing::warn!(
                    user_id,
                    family,
                    "a used refresh token was presented again; its sign-in is revoked"
                );
                return Err(unauthenticated(
                    "this refresh token was already used, so it may have been copied; every token \
                     of this sign-in is revoked, sign in again",
                ));
            }
            let user = users::table
                .find(&user_id)
                .select((users::org_id, users::disabled))
                .first::<(String, bool)>(conn)
                .optional()
                .map_err(DbError::from)?;
            let Some((org_id, false)) = user else {
                return Err(unauthenticated("the account is disabled or gone"));
            };
            let pair = issue_pair(&refresh_state, conn, &user_id, &org_id, &family)?;
            Ok((pair, org_id, user_id))
        })
        .await?;
    Ok(with_target(
        warp::reply::json(&pair).into_response(),
        org_id,
        user_id,
        "user",
    ))
}

async fn me(state: AppState, caller: Caller) -> ApiResult<Response> {
    let identity = caller.identity()?.clone();
    let (user_id, org_id) = (identity.user_id.clone(), identity.org_id.clone());
    let config = state.config().files;
    let (user, org, usage) = state
        .db()
        .run(move |conn| {
            let user = users::table
                .find(&user_id)
                .select((users::id, users::email, users::display_name))
                .first::<(String, Option<String>, Option<String>)>(conn)
                .map_err(DbError::from)?;
            let org = orgs::table
                .find(&org_id)
                .select((orgs::id, orgs::name, orgs::kind, orgs::expires_at))
                .first::<(String, String, String, Option<NaiveDateTime>)>(conn)
                .map_err(DbError::from)?;
            let usage = crate::files::usage(conn, &org_id, &config).map_err(DbError::from)?;
            Ok::<_, ApiError>((user, org, usage))
        })
        .await?;
    let me = Me {
        user: MeUser {
            id: user.0,
            email: user.1,
            display_name: user.2,
        },
        org: MeOrg {
            id: org.0,
            name: org.1,
            kind: org.2,
            expires_at: org.3.map(rfc3339),
        },
        role: identity.role,
        auth_mode: identity.mode,
        scopes: identity.scopes,
        api_key_id: identity.key_id,
        usage,
    };
    Ok(warp::reply::json(&me).into_response())
}

async fn usage(state: AppState, caller: Caller) -> ApiResult<Response> {
    let org_id = caller.identity()?.org_id.clone();
    let config = state.config().files;
    let usage = state
        .db()
        .run(move |conn| crate::files::usage(conn, &org_id, &config).map_err(DbError::from))
        .await?;
    Ok(warp::reply::json(&usage).into_response())
}

async fn anonymous_session(state: AppState) -> ApiResult<Response> {
    let ttl = state.config().auth.anonymous_session_ttl;
    let lifetime = chrono::TimeDelta::from_std(ttl).map_err(ApiError::internal)?;
    let (org_id, user_id, expires_at) = state
        .db()
        .run(move |conn| {
            let expires_at = now() + lifetime;
            let org_id =
                accounts::create_org(conn, "anonymous session", "anonymous", Some(expires_at))?;
            let user = accounts::create_user(
                conn,
                NewUser {
                    org_id: &org_id,
                    email: None,
                    display_name: None,
                    password: None,
                    role: Role::Anonymous,
                    disabled: false,
                },
            )?;
            Ok::<_, ApiError>((org_id, user.id, expires_at))
        })
        .await?;
    let (token, _) = state
        .signer()
        .issue(TokenKind::Anonymous, &user_id, &org_id, ttl)
        .map_err(ApiError::internal)?;
    let session = AnonymousSession {
        token,
        org_id: org_id.clone(),
        user_id: user_id.clone(),
        expires_at: rfc3339(expires_at),
    };
    let response =
        warp::reply::with_status(warp::reply::json(&session), StatusCode::CREATED).into_response();
    Ok(with_target(response, org_id, user_id, "anonymous"))
}
