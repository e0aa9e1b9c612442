//! `users`: the people of an organisation. Passwords are hashed; only superusers change
//! roles (the schema's `x-write-roles`) or touch a superuser.

use diesel::prelude::*;
use serde_json::{Map, Value, json};

use super::definition::Op;
use super::fields::{
    boolean, nullable_text, object, optional_time, scoped_table_queries, table_writes, text, time,
};
use super::{Resource, WriteContext};
use crate::auth::accounts::{self, NewUser, UserRow, normalize_email};
use crate::auth::{Identity, Role, password};
use crate::db::schema::users;
use crate::db::{DbConnection, DbError};
use crate::error::{ApiError, ApiResult, ErrorCode};

table_writes!(save: users, UserRow);

/// The `users` resource.
pub(super) struct Users;

fn role_field(body: &Map<String, Value>) -> ApiResult<Option<Role>> {
    match text(body, "role") {
        None => Ok(None),
        Some(role) if role == "anonymous" => Err(ApiError::invalid_field(
            "/role",
            "anonymous users are made by POST /api/anon/session",
        )),
        Some(role) => role
            .parse()
            .map(Some)
            .map_err(|message: String| ApiError::invalid_field("/role", &message)),
    }
}

fn hashed_password(body: &Map<String, Value>) -> ApiResult<Option<String>> {
    let Some(password) = text(body, "password") else {
        return Ok(None);
    };
    password::check_strength(&password)
        .map_err(|message| ApiError::invalid_field("/password", &message))?;
    password::hash(&password)
        .map(Some)
        .map_err(ApiError::internal)
}

impl Resource for Users {
    const NAME: &'static str = "users";
    const SCHEMA: &'static str = include_str!("../../../schemas/users.json");
    type Row = UserRow;

    scoped_table_queries!(users, UserRow);

    fn to_json(row: &UserRow) -> Map<String, Value> {
        object(json!({
            "id": row.id,
            "org_id": row.org_id,
            "email": row.email,
            "display_name": row.display_name,
            "role": row.role,
            "disabled": row.disabled,
            "created_at": time(row.created_at),
            "updated_at": time(row.updated_at),
            "last_login_at": optional_time(row.last_login_at),
        }))
    }

    fn create(
        conn: &mut DbConnection,
        ctx: &WriteContext,
        body: Map<String, Value>,
    ) -> ApiResult<UserRow> {
        let email = text(&body, "email")
            .ok_or_else(|| ApiError::invalid_field("/email", "a new user needs an email"))?;
        let password = text(&body, "password");
        if let Some(password) = &password {
            password::check_strength(password)
                .map_err(|message| ApiError::invalid_field("/password", &message))?;
        }
        accounts::create_user(
            conn,
            NewUser {
                org_id: &ctx.org_id,
                email: Some(&email),
                display_name: nullable_text(&body, "display_name").flatten(),
                password: password.as_deref(),
                role: role_field(&body)?.unwrap_or(Role::Member),
                disabled: boolean(&body, "disabled").unwrap_or(false),
            },
        )
    }

    fn update(
        conn: &mut DbConnection,
        ctx: &WriteContext,
        mut row: UserRow,
        body: Map<String, Value>,
    ) -> ApiResult<UserRow> {
        if let Some(email) = nullable_text(&body, "email") {
            row.email = email.as_deref().map(normalize_email);
        }
        if let Some(display_name) = nullable_text(&body, "display_name") {
            row.display_name = display_name;
        }
        if let Some(role) = role_field(&body)? {
            row.role = role.as_str().to_owned();
        }
        if let Some(disabled) = boolean(&body, "disabled") {
            row.disabled = disabled;
        }
        if let Some(hash) = hashed_password(&body)? {
            row.password_hash = Some(hash);
        }
        row.updated_at = ctx.now;
        save(conn, row)
    }

    /// Superusers are managed by superusers only.
    fn authorize(identity: &Identity, row: &UserRow, op: Op) -> ApiResult<()> {
        if op != Op::Read && row.role == Role::Superuser.as_str() && !identity.is_superuser() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only a superuser may change or delete a superuser",
            ));
        }
        Ok(())
    }

    fn run_action(
        conn: &mut DbConnection,
        ctx: &WriteContext,
        name: &str,
        row: UserRow,
        body: Map<String, Value>,
    ) -> ApiResult<Value> {
        if name != "password" {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("users have no action `{name}`"),
            ));
        }
        Self::authorize(&ctx.identity, &row, Op::Update)?;
        let hash = hashed_password(&body)?
            .ok_or_else(|| ApiError::invalid_field("/password", "is required"))?;
        diesel::update(users::table.find(&row.id))
            .set((users::password_hash.eq(hash), users::updated_at.eq(ctx.now)))
            .execute(conn)
            .map_err(DbError::from)?;
        Ok(json!({ "id": row.id, "password_changed": true }))
    }
}
