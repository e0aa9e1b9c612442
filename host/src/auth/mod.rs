//! Who is calling: the four ways to authenticate, the roles, and what an identity may do.
//!
//! | mode | credential | identity |
//! |---|---|---|
//! | `bearer` | `Authorization: Bearer <access token>` from `POST /api/auth/login` | the user |
//! | `anonymous` | `Authorization: Bearer <token>` from `POST /api/anon/session` | a user of a fresh, expiring organisation |
//! | `api_key` | `X-API-Key: mmk_…` | the key's user, limited to the key's scopes |
//! | `gateway` | `X-Auth-Org-Id`, `X-Auth-User-Id`, `X-Auth-Role` with the configured `X-Gateway-Key` | as the gateway says (created on first sight) |
//!
//! The role always comes from the database at request time (except for gateways, which are
//! authoritative), so a role change or a disabled account takes effect at once.

pub mod accounts;
pub mod api_keys;
mod authenticator;
pub mod keys;
pub mod password;
pub mod sealing;
pub mod sessions;
pub mod tokens;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use authenticator::Authenticator;

use crate::error::{ApiError, ErrorCode};

/// What a user may do, from most to least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, in every organisation; the only role that changes roles.
    Superuser,
    /// Everything within their organisation.
    Admin,
    /// Converts files and manages their own work.
    Member,
    /// Reads what a member reads; every write answers 403.
    Demo,
    /// An anonymous session: its own short-lived organisation.
    Anonymous,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Self::Superuser,
        Self::Admin,
        Self::Member,
        Self::Demo,
        Self::Anonymous,
    ];

    /// The role's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Superuser => "superuser",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Demo => "demo",
            Self::Anonymous => "anonymous",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|role| role.as_str() == s).ok_or_else(|| {
            format!("`{s}` is not a role; the roles are superuser, admin, member, demo and anonymous")
        })
    }
}

/// How the caller authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// A login access token.
    Bearer,
    /// An anonymous session token.
    Anonymous,
    /// An API key.
    ApiKey,
    /// Identity headers from a trusted gateway.
    Gateway,
}

impl AuthMode {
    /// How the audit trail names this kind of actor.
    pub fn actor_kind(self) -> &'static str {
        match self {
            Self::Bearer => "user",
            Self::Anonymous => "anonymous",
            Self::ApiKey => "api_key",
            Self::Gateway => "gateway",
        }
    }
}

/// The classes of routes, each with its own rate limit and API key scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateClass {
    /// Reading.
    Read,
    /// Changing state.
    Write,
    /// Starting conversions.
    Convert,
}

impl RateClass {
    /// Every class.
    pub const ALL: [RateClass; 3] = [Self::Read, Self::Write, Self::Convert];

    /// The class's name, also the API key scope that allows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Convert => "convert",
        }
    }
}

/// A resolved caller.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The user.
    pub user_id: String,
    /// Their organisation.
    pub org_id: String,
    /// Their role.
    pub role: Role,
    /// How they authenticated.
    pub mode: AuthMode,
    /// What the credential allows (API keys may be narrower than the role).
    pub scopes: Vec<RateClass>,
    /// The API key used, if any.
    pub key_id: Option<String>,
}

impl Identity {
    /// Whether this caller is a superuser.
    pub fn is_superuser(&self) -> bool {
        self.role == Role::Superuser
    }

    /// Whether the caller may reach `org_id`: its own, or any for a superuser.
    pub fn can_reach(&self, org_id: &str) -> bool {
        self.is_superuser() || self.org_id == org_id
    }

    /// Fails with 403 unless the caller's role is in `roles` (superusers always are).
    pub fn require_role(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if self.is_superuser() || roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("the {} role may not {what}", self.role),
            ))
        }
    }

    /// The key its requests are rate-limited under.
    pub fn rate_key(&self) -> String {
        match &self.key_id {
            Some(key_id) => format!("key:{key_id}"),
            None => format!("user:{}", self.user_id),
        }
    }
}

/// Who is calling, as request handlers see it.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No credentials were sent (on routes that allow that).
    Unauthenticated(Option<IpAddr>),
    /// A resolved identity.
    Known(Identity),
}

impl Caller {
    /// The identity, or 401.
    pub fn identity(&self) -> Result<&Identity, ApiError> {
        match self {
            Self::Known(identity) => Ok(identity),
            Self::Unauthenticated(_) => Err(unauthenticated("this request needs credentials")),
        }
    }

    /// The identity, if any.
    pub fn known(&self) -> Option<&Identity> {
        match self {
            Self::Known(identity) => Some(identity),
            Self::Unauthenticated(_) => None,
        }
    }
}

/// A 401 problem document with a `WWW-Authenticate` challenge and how to authenticate.
pub fn unauthenticated(reason: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        format!(
            "{reason}; send `Authorization: Bearer <token>` (POST /api/auth/login or \
             /api/anon/session) or `X-API-Key: <key>`"
        ),
    )
    .with_header(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"metamorph\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!(
            "root"
                .parse::<Role>()
                .unwrap_err()
                .contains("superuser, admin")
        );
    }

    #[test]
    fn a_superuser_passes_every_role_check_and_reaches_every_org() {
        let mut identity = Identity {
            user_id: "u".into(),
            org_id: "a".into(),
            role: Role::Member,
            mode: AuthMode::Bearer,
            scopes: RateClass::ALL.to_vec(),
            key_id: None,
        };
        assert!(identity.require_role(&[Role::Admin], "x").is_err());
        assert!(!identity.can_reach("b"));
        identity.role = Role::Superuser;
        assert!(identity.require_role(&[Role::Admin], "x").is_ok());
        assert!(identity.can_reach("b"));
    }
}
