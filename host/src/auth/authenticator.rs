//! Resolves a request's credentials into an [`Identity`].

use chrono::NaiveDateTime;
use diesel::prelude::*;
use http::HeaderMap;

use super::tokens::{TokenKind, TokenSigner};
use super::{AuthMode, Identity, RateClass, Role, api_keys, unauthenticated};
use crate::config::Secret;
use crate::db::schema::{api_keys as keys, orgs, users};
use crate::db::{Db, DbConnection, DbError, now};
use crate::error::{ApiError, ErrorCode};

/// How often (at most) an API key's `last_used_at` is written.
const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

/// Resolves credentials. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    db: Db,
    signer: TokenSigner,
    gateway_key: Option<Secret>,
}

/// What the database says of a user.
#[derive(Queryable)]
struct UserRow {
    id: String,
    org_id: String,
    role: String,
    disabled: bool,
}

impl Authenticator {
    /// An authenticator over `db`, checking tokens with `signer`, trusting gateways that send
    /// `gateway_key`.
    pub fn new(db: Db, signer: TokenSigner, gateway_key: Option<Secret>) -> Self {
        Self {
            db,
            signer,
            gateway_key,
        }
    }

    /// The token signer.
    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// The identity the headers prove; `Ok(None)` when they carry no credentials, 401 when
    /// they carry bad ones.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
        if let Some(identity) = self.gateway(headers).await? {
            return Ok(Some(identity));
        }
        if let Some(value) = headers.get(http::header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|text| {
                    text.strip_prefix("Bearer ")
                        .or_else(|| text.strip_prefix("bearer "))
                })
                .map(str::trim)
                .ok_or_else(|| {
                    unauthenticated("the Authorization header is not `Bearer <token>`")
                })?;
            return self.bearer(token).await.map(Some);
        }
        if let Some(value) = headers.get("x-api-key") {
            let key = value
                .to_str()
                .map_err(|_not_text| unauthenticated("the API key is not valid"))?;
            return self.api_key(key.trim()).await.map(Some);
        }
        Ok(None)
    }

    async fn bearer(&self, token: &str) -> Result<Identity, ApiError> {
        let claims = self
            .signer
            .verify(token)
            .map_err(|reason| unauthenticated(&reason))?;
        let user_id = claims.sub.clone();
        let (user, org_expires) = self
            .db
            .run(move |conn| {
                let user = load_user(conn, &user_id)?;
                let expires = match &user {
                    Some(user) => orgs::table
                        .find(&user.org_id)
                        .select(orgs::expires_at)
                        .first::<Option<NaiveDateTime>>(conn)
                        .optional()
                        .map_err(DbError::from)?
                        .flatten(),
                    None => None,
                };
                Ok::<_, ApiError>((user, expires))
            })
            .await?;
        let user = active_user(user)
            .ok_or_else(|| unauthenticated("the token's user no longer exists"))?;
        if user.org_id != claims.org {
            return Err(unauthenticated("the token is not valid"));
        }
        let role: Role = user
            .role
            .parse()
            .map_err(|error: String| ApiError::internal(error))?;
        let mode = match claims.kind {
            TokenKind::Access => AuthMode::Bearer,
            TokenKind::Anonymous => AuthMode::Anonymous,
        };
        if mode == AuthMode::Anonymous && org_expires.is_some_and(|expires| expires <= now()) {
            return Err(unauthenticated("the anonymous session has expired"));
        }
        Ok(Identity {
            user_id: user.id,
            org_id: user.org_id,
            role,
            mode,
            scopes: RateClass::ALL.to_vec(),
            key_id: None,
        })
    }

    async fn api_key(&self, key: &str) -> Result<Identity, ApiError> {
        let (prefix, secret) =
            api_keys::parse(key).ok_or_else(|| unauthenticated("the API key is not valid"))?;
        let prefix = prefix.to_owned();
        let found = self
            .db
            .run(move |conn| {
                let row = keys::table
                    .filter(keys::prefix.eq(&prefix))
                    .select((
                        keys::id,
                        keys::user_id,
                        keys::secret_hash,
                        keys::scopes,
                        keys::expires_at,
                        keys::revoked_at,
                        keys::last_used_at,
                    ))
                    .first::<(
                        String,
                        String,
                        String,
                        String,
                        Option<NaiveDateTime>,
                        Option<NaiveDateTime>,
                        Option<NaiveDateTime>,
                    )>(conn)
                    .optional()
                    .map_err(DbError::from)?;
                let Some(row) = row else {
                    return Ok::<_, ApiError>(None);
                };
                let user = load_user(conn, &row.1)?;
                Ok(Some((row, user)))
            })
            .await?;
        let Some((
            (key_id, _user_id, secret_hash, scopes, expires_at, revoked_at, last_used),
            user,
        )) = found
        else {
            return Err(unauthenticated("the API key is not valid"));
        };
        if !api_keys::matches(secret, &secret_hash) || revoked_at.is_some() {
            return Err(unauthenticated("the API key is not valid"));
        }
        let now = now();
        if expires_at.is_some_and(|expires| expires <= now) {
            return Err(unauthenticated("the API key has expired"));
        }
        let user = active_user(user)
            .ok_or_else(|| unauthenticated("the API key's user no longer exists"))?;
        let role: Role = user
            .role
            .parse()
            .map_err(|error: String| ApiError::internal(error))?;
        let scopes: Vec<RateClass> = serde_json::from_str(&scopes).map_err(ApiError::internal)?;
        if last_used.is_none_or(|used| (now - used).num_seconds() >= LAST_USED_RESOLUTION_SECONDS) {
            let key_id = key_id.clone();
            self.db
                .run(move |conn| {
                    diesel::update(keys::table.find(&key_id))
                        .set(keys::last_used_at.eq(now))
                        .execute(conn)
                        .map_err(DbError::from)
                })
                .await?;
        }
        Ok(Identity {
            user_id: user.id,
            org_id: user.org_id,
            role,
            mode: AuthMode::ApiKey,
            scopes,
            key_id: Some(key_id),
        })
    }

    /// Gateway headers, honoured only with the configured key (compared in constant time).
    async fn gateway(&self, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
        use subtle::ConstantTimeEq;
        let Some(expected) = &self.gateway_key else {
            return Ok(None);
        };
        let Some(sent) = headers.get("x-gateway-key") else {
            return Ok(None);
        };
        if !bool::from(sent.as_bytes().ct_eq(expected.expose().as_bytes())) {
            return Ok(None);
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
        };
        let valid_id = |id: &str| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
        };
        let (Some(org_id), Some(user_id)) = (header("x-auth-org-id"), header("x-auth-user-id"))
        else {
            return Err(unauthenticated(
                "a gateway request needs X-Auth-Org-Id and X-Auth-User-Id",
            ));
        };
        if !valid_id(org_id) || !valid_id(user_id) {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "X-Auth-Org-Id and X-Auth-User-Id are 1 to 64 letters, digits or -_.:@",
            ));
        }
        let role = match header("x-auth-role") {
            Some(role) => role
                .parse::<Role>()
                .map_err(|message| ApiError::new(ErrorCode::BadRequest, message))?,
            None => Role::Member,
        };
        let (org_id, user_id) = (org_id.to_owned(), user_id.to_owned());
        let identity = Identity {
            user_id: user_id.clone(),
            org_id: org_id.clone(),
            role,
            mode: AuthMode::Gateway,
            scopes: RateClass::ALL.to_vec(),
            key_id: None,
        };
        self.db
            .run(move |conn| provision(conn, &org_id, &user_id, role))
            .await?;
        Ok(Some(identity))
    }
}

fn load_user(conn: &mut DbConnection, user_id: &str) -> Result<Option<UserRow>, ApiError> {
    Ok(users::table
        .find(user_id)
        .select((users::id, users::org_id, users::role, users::disabled))
        .first::<UserRow>(conn)
        .optional()
        .map_err(DbError::from)?)
}

fn active_user(user: Option<UserRow>) -> Option<UserRow> {
    user.filter(|user| !user.disabled)
}

/// Creates the gateway's organisation and user on first sight, and keeps the user's role as
/// the gateway says. A concurrent first request may create them too: that is not an error.
fn provision(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    role: Role,
) -> Result<(), ApiError> {
    let now = now();
    let org_exists = orgs::table
        .find(org_id)
        .count()
        .get_result::<i64>(conn)
        .map_err(DbError::from)?
        > 0;
    if !org_exists {
        let inserted = diesel::insert_into(orgs::table)
            .values((
                orgs::id.eq(org_id),
                orgs::name.eq(org_id),
                orgs::kind.eq("standard"),
                orgs::created_at.eq(now),
                orgs::updated_at.eq(now),
            ))
            .execute(conn);
        ignore_unique_violation(inserted)?;
    }
    let existing = users::table
        .find(user_id)
        .select((users::org_id, users::role))
        .first::<(String, String)>(conn)
        .optional()
        .map_err(DbError::from)?;
    match existing {
        None => {
            let inserted = diesel::insert_into(users::table)
                .values((
                    users::id.eq(user_id),
                    users::org_id.eq(org_id),
                    users::role.eq(role.as_str()),
                    users::disabled.eq(false),
                    users::created_at.eq(now),
                    users::updated_at.eq(now),
                ))
                .execute(conn);
            ignore_unique_violation(inserted)?;
        }
        Some((existing_org, _)) if existing_org != org_id => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "X-Auth-User-Id belongs to another organisation than X-Auth-Org-Id",
            ));
        }
        Some((_, existing_role)) if existing_role != role.as_str() => {
            diesel::update(users::table.find(user_id))
                .set((users::role.eq(role.as_str()), users::updated_at.eq(now)))
                .execute(conn)
                .map_err(DbError::from)?;
        }
        Some(_) => {}
    }
    Ok(())
}

fn ignore_unique_violation(result: QueryResult<usize>) -> Result<(), ApiError> {
    match result {
        Ok(_)
        | Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        Err(error) => Err(DbError::from(error).into()),
    }
}
