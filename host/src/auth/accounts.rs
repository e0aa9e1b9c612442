//! Organisations and users: creating them (from the API, the CLI and bootstrap), and
//! finding them for login.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{Role, password};
use crate::db::schema::{orgs, users};
use crate::db::{DbConnection, DbError, now};
use crate::error::{ApiError, ErrorCode};

/// A user row.
#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// Organisation.
    pub org_id: String,
    /// Login name, lowercase.
    pub email: Option<String>,
    /// Name shown.
    pub display_name: Option<String>,
    /// Argon2 hash.
    pub password_hash: Option<String>,
    /// Role name.
    pub role: String,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// Last sign-in.
    pub last_login_at: Option<NaiveDateTime>,
}

/// Emails are compared without regard to case.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The id of the standard organisation named `name`, created if missing.
pub fn ensure_org(conn: &mut DbConnection, name: &str) -> Result<String, ApiError> {
    let existing = orgs::table
        .filter(orgs::name.eq(name))
        .filter(orgs::kind.eq("standard"))
        .select(orgs::id)
        .first::<String>(conn)
        .optional()
        .map_err(DbError::from)?;
    if let Some(id) = existing {
        return Ok(id);
    }
    create_org(conn, name, "standard", None)
}

/// Creates an organisation; its id.
pub fn create_org(
    conn: &mut DbConnection,
    name: &str,
    kind: &str,
    expires_at: Option<NaiveDateTime>,
) -> Result<String, ApiError> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = now();
    diesel::insert_into(orgs::table)
        .values((
            orgs::id.eq(&id),
            orgs::name.eq(name),
            orgs::kind.eq(kind),
            orgs::created_at.eq(now),
            orgs::updated_at.eq(now),
            orgs::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
    Ok(id)
}

/// What a new user is made of.
pub struct NewUser<'a> {
    /// Organisation.
    pub org_id: &'a str,
    /// Login name (normalised here).
    pub email: Option<&'a str>,
    /// Name shown.
    pub display_name: Option<String>,
    /// Password (hashed here).
    pub password: Option<&'a str>,
    /// Role.
    pub role: Role,
    /// Disabled from the start.
    pub disabled: bool,
}

/// Inserts a user; an email already in use is 409.
pub fn create_user(conn: &mut DbConnection, new: NewUser<'_>) -> Result<UserRow, ApiError> {
    let password_hash = match new.password {
        Some(password) => {
            password::check_strength(password)
                .map_err(|message| ApiError::new(ErrorCode::ValidationFailed, message))?;
            Some(password::hash(password).map_err(ApiError::internal)?)
        }
        None => None,
    };
    let now = now();
    let row = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        org_id: new.org_id.to_owned(),
        email: new.email.map(normalize_email),
        display_name: new.display_name,
        password_hash,
        role: new.role.as_str().to_owned(),
        disabled: new.disabled,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    };
    match diesel::insert_into(users::table).values(&row).execute(conn) {
        Ok(_) => Ok(row),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(ApiError::new(
            ErrorCode::Conflict,
            "a user with this email already exists",
        )),
        Err(error) => Err(DbError::from(error).into()),
    }
}

/// The user whose email is `email`.
pub fn find_by_email(conn: &mut DbConnection, email: &str) -> Result<Option<UserRow>, ApiError> {
    Ok(users::table
        .filter(users::email.eq(normalize_email(email)))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)?)
}

/// Whether any superuser exists.
pub fn superuser_exists(conn: &mut DbConnection) -> Result<bool, ApiError> {
    let count: i64 = users::table
        .filter(users::role.eq(Role::Superuser.as_str()))
        .count()
        .get_result(conn)
        .map_err(DbError::from)?;
    Ok(count > 0)
}
