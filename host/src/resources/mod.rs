//! Resources served by the generated CRUD routes.
//!
//! A resource is declared once: a JSON Schema file `schemas/<name>.json` (fields, validation,
//! who may read and write what; see [`definition`]) and a type implementing [`Resource`]
//! (its table's queries), listed in [`RESOURCES`]. From that come, for base path
//! `/api/<name>`:
//!
//! | Method | Path | Success |
//! |---|---|---|
//! | GET | `/api/<name>?limit=&cursor=` | 200 `{items, next_cursor}` |
//! | POST | `/api/<name>` | 201 the record |
//! | GET | `/api/<name>/{org_id}/{id}` | 200 the record |
//! | PATCH | `/api/<name>/{org_id}/{id}` | 200 the record |
//! | DELETE | `/api/<name>/{org_id}/{id}` | 204 |
//! | POST | `/api/<name>/{org_id}/{id}/<action>` | 200, per action |
//!
//! plus validation (422 with field paths), role checks (403), tenant isolation (another
//! organisation's ids are 404), the audit trail, the OpenAPI entries and
//! `/api/_meta/<name>`.

mod crud;
pub mod definition;
pub(crate) mod destinations;
mod feature_flags;
mod fields;
mod files;
mod jobs;
pub mod page;
mod settings;
mod users;

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::QueryResult;
use serde_json::{Map, Value};

pub use definition::{Op, ResourceDef};
pub(crate) use files::file_json;
pub use page::{Page, PageRequest};

use crate::app::AppState;
use crate::auth::Identity;
use crate::auth::sealing::Sealer;
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::Endpoint;

/// Every resource, in the order `/api/_meta` lists them. Adding a resource is one schema
/// file, one module implementing [`Resource`], and one line here.
pub const RESOURCES: &[Declared] = &[
    Declared::of::<users::Users>(),
    Declared::of::<settings::Settings>(),
    Declared::of::<feature_flags::FeatureFlags>(),
    Declared::of::<files::Files>(),
    Declared::of::<jobs::ConversionJobs>(),
    Declared::of::<destinations::Destinations>(),
];

/// What a write knows about its circumstances.
pub struct WriteContext {
    /// Who writes.
    pub identity: Identity,
    /// The organisation written to.
    pub org_id: String,
    /// The time of the write.
    pub now: NaiveDateTime,
    /// Encrypts stored secrets.
    pub sealer: Sealer,
    /// The service (configuration, plugins, job runtime).
    pub state: AppState,
    /// The `Idempotency-Key` header of a create.
    pub idempotency_key: Option<String>,
    /// What identifies the request under that key, when not its body (the one-shot form
    /// hashes its file's content, not the id the upload got).
    pub request_hash: Option<String>,
}

impl WriteContext {
    /// A write by `identity` to `org_id`, now.
    pub fn new(state: &AppState, identity: &Identity, org_id: &str) -> Self {
        Self {
            identity: identity.clone(),
            org_id: org_id.to_owned(),
            now: crate::db::now(),
            sealer: state.sealer().clone(),
            state: state.clone(),
            idempotency_key: None,
            request_hash: None,
        }
    }
}

/// Creates a conversion job from a checked body (the one-shot form's way in).
pub(crate) fn create_job(
    conn: &mut DbConnection,
    ctx: &WriteContext,
    body: Map<String, Value>,
) -> ApiResult<crate::jobs::JobRecord> {
    <jobs::ConversionJobs as Resource>::create(conn, ctx, body)
}

/// A resource: its name, schema file and table queries. Queries are written concretely
/// per table; everything HTTP and schema related is generic (see `crud.rs`).
pub trait Resource: Send + Sync + 'static {
    /// Wire name: URL segment, `_meta` key, `schemas/<NAME>.json`.
    const NAME: &'static str;
    /// The schema file's text.
    const SCHEMA: &'static str;
    /// A row of its table.
    type Row: Send + 'static;

    /// The row's id.
    fn id(row: &Self::Row) -> &str;
    /// The row as JSON, every field the schema declares (the factory hides what the caller
    /// may not see).
    fn to_json(row: &Self::Row) -> Map<String, Value>;
    /// A page of `org_id`'s rows with ids after `page.after`, in id order, `page.fetch()` at
    /// most.
    fn list(
        conn: &mut DbConnection,
        org_id: &str,
        page: &PageRequest,
    ) -> QueryResult<Vec<Self::Row>>;
    /// One row of `org_id`.
    fn find(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<Option<Self::Row>>;
    /// Inserts a row from a validated body.
    fn create(
        conn: &mut DbConnection,
        ctx: &WriteContext,
        body: Map<String, Value>,
    ) -> ApiResult<Self::Row>;
    /// Applies a validated patch to `row`.
    fn update(
        conn: &mut DbConnection,
        ctx: &WriteContext,
        row: Self::Row,
        body: Map<String, Value>,
    ) -> ApiResult<Self::Row>;
    /// Deletes one row of `org_id`; the number deleted.
    fn delete(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<usize>;

    /// The row as JSON for a response, where that needs the service (signed links); by
    /// default [`Resource::to_json`].
    fn present(_state: &AppState, row: &Self::Row) -> Map<String, Value> {
        Self::to_json(row)
    }

    /// Whether rows are worked on after they are written (jobs): `GET` may answer 202, and
    /// `DELETE` may stop the work instead of deleting (see below).
    const WORKED_ON: bool = false;

    /// The status of a `GET` of the row: 200, or 202 while it is still being worked on.
    fn read_status(_row: &Self::Row) -> http::StatusCode {
        http::StatusCode::OK
    }

    /// What `DELETE` does to a row that is still being worked on: `Some(row)` when it was
    /// stopped instead of deleted (answered 200 with the row), `None` to delete it.
    fn stop_instead_of_delete(
        _conn: &mut DbConnection,
        _ctx: &WriteContext,
        _row: &Self::Row,
    ) -> ApiResult<Option<Self::Row>> {
        Ok(None)
    }

    /// Storage objects that belong to the row and go with it when it is deleted.
    fn stored_objects(_row: &Self::Row) -> Vec<String> {
        Vec::new()
    }

    /// Further checks on a specific row, beyond the schema's role rules.
    fn authorize(_identity: &Identity, _row: &Self::Row, _op: Op) -> ApiResult<()> {
        Ok(())
    }

    /// Runs the action `name` when its work is outside the database (a network round
    /// trip): the future is awaited without holding a connection. `None` leaves the action
    /// to [`Resource::run_action`].
    fn run_action_async(
        _state: &AppState,
        _ctx: &WriteContext,
        _name: &str,
        _row: &Self::Row,
        _body: &Map<String, Value>,
    ) -> Option<futures_util::future::BoxFuture<'static, ApiResult<Value>>> {
        None
    }

    /// Runs the action `name` (declared in the schema file) on `row`.
    fn run_action(
        _conn: &mut DbConnection,
        _ctx: &WriteContext,
        name: &str,
        _row: Self::Row,
        _body: Map<String, Value>,
    ) -> ApiResult<Value> {
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!("{} has no action `{name}`", Self::NAME),
        ))
    }
}

/// A row of [`RESOURCES`].
pub struct Declared {
    /// Wire name.
    pub name: &'static str,
    schema: &'static str,
    endpoints: fn(&AppState, &Arc<ResourceDef>) -> Vec<Endpoint>,
}

impl Declared {
    /// Declares `R`.
    pub const fn of<R: Resource>() -> Self {
        Self {
            name: R::NAME,
            schema: R::SCHEMA,
            endpoints: crud::endpoints::<R>,
        }
    }
}

/// The parsed definitions of every resource.
pub struct Registry {
    defs: Vec<Arc<ResourceDef>>,
}

impl Registry {
    /// Parses every schema file; fails naming the file and what is wrong.
    pub fn load() -> Result<Self, String> {
        let defs = RESOURCES
            .iter()
            .map(|declared| {
                ResourceDef::parse(declared.name, declared.schema)
                    .map(Arc::new)
                    .map_err(|error| format!("schemas/{}.json: {error}", declared.name))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { defs })
    }

    /// Every definition, in [`RESOURCES`] order.
    pub fn all(&self) -> &[Arc<ResourceDef>] {
        &self.defs
    }

    /// The definition named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<ResourceDef>> {
        self.defs.iter().find(|def| def.name == name)
    }
}

/// The generated routes of every resource.
pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    RESOURCES
        .iter()
        .zip(state.resources().all())
        .flat_map(|(declared, def)| (declared.endpoints)(state, def))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_file_parses_and_names_its_resource() {
        let registry = Registry::load().unwrap();
        assert_eq!(registry.all().len(), RESOURCES.len());
        for def in registry.all() {
            assert!(
                jsonschema::meta::is_valid(&def.schema),
                "schemas/{}.json is not a valid JSON Schema",
                def.name
            );
            assert_eq!(def.path, format!("/api/{}", def.name));
            assert!(
                !def.description.is_empty(),
                "{} has no description",
                def.name
            );
            for field in &def.fields {
                let spec = &def.schema["properties"][&field.name];
                assert!(
                    spec["description"].is_string(),
                    "{}.{} has no description",
                    def.name,
                    field.name
                );
            }
        }
    }
}
