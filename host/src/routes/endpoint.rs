//! One [`Endpoint`] per route: its method, its path template, its OpenAPI operation and the
//! warp filter that serves it. The router, the metrics labels, the `Allow` header and the
//! OpenAPI document are all derived from the same list, so none of them can drift.

use std::sync::Arc;

use http::{Method, StatusCode};

use crate::auth::RateClass;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::errors::recover;

/// Produces a schema inside the OpenAPI generator: that of a Rust type, or a hand-written
/// one registered under a component name.
#[derive(Clone)]
pub struct SchemaFn(Arc<dyn Fn(&mut SchemaGenerator) -> Schema + Send + Sync>);

impl SchemaFn {
    /// Runs it.
    pub fn call(&self, generator: &mut SchemaGenerator) -> Schema {
        (self.0)(generator)
    }
}

impl std::fmt::Debug for SchemaFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchemaFn")
    }
}

/// The schema of `T`.
pub fn schema_of<T: JsonSchema>() -> SchemaFn {
    SchemaFn(Arc::new(|generator: &mut SchemaGenerator| {
        generator.subschema_for::<T>()
    }))
}

/// `schema`, registered as the component `name`; the OpenAPI document refers to it by `$ref`.
pub fn schema_named(name: String, schema: serde_json::Value) -> SchemaFn {
    SchemaFn(Arc::new(move |generator: &mut SchemaGenerator| {
        generator
            .definitions_mut()
            .insert(name.clone(), schema.clone());
        let reference = format!("#/components/schemas/{name}");
        Schema::try_from(serde_json::json!({ "$ref": reference })).unwrap_or_default()
    }))
}

/// The schema of a body of raw bytes (OpenAPI 3.1: a string with no encoding).
fn bytes_schema() -> SchemaFn {
    SchemaFn(Arc::new(|_: &mut SchemaGenerator| {
        Schema::try_from(
            serde_json::json!({"type": "string", "contentMediaType": "application/octet-stream"}),
        )
        .unwrap_or_default()
    }))
}

/// A path or query parameter of an operation.
#[derive(Clone, Debug)]
pub struct ParamDoc {
    /// Name in the path template or query string.
    pub name: &'static str,
    /// `path` or `query`.
    pub location: &'static str,
    /// What the parameter means.
    pub description: &'static str,
    /// Whether the client must send it.
    pub required: bool,
    /// Its schema.
    pub schema: SchemaFn,
    /// A value that is valid for it, used to exercise the route in tests and docs.
    pub example: &'static str,
}

/// One possible response of an operation.
#[derive(Clone, Debug)]
pub struct ResponseDoc {
    /// HTTP status.
    pub status: StatusCode,
    /// When this response happens.
    pub description: &'static str,
    /// Media type and schema of the body, if it has one.
    pub content: Option<(&'static str, SchemaFn)>,
}

/// The request body of an operation.
#[derive(Clone, Debug)]
pub struct BodyDoc {
    /// What the body holds.
    pub description: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its schema.
    pub schema: SchemaFn,
}

/// Everything the OpenAPI document says of one operation.
#[derive(Clone, Debug)]
pub struct OperationDoc {
    /// Unique `operationId`, in camelCase.
    pub id: &'static str,
    /// Group shown in the documentation viewer.
    pub tag: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Longer explanation, Markdown.
    pub description: &'static str,
    /// Path and query parameters.
    pub params: Vec<ParamDoc>,
    /// Request body, if any.
    pub body: Option<BodyDoc>,
    /// Documented responses (errors are also always documented as problem documents).
    pub responses: Vec<ResponseDoc>,
}

/// Who may call an endpoint, and which rate limit it counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, unlimited, credentials ignored (health, metrics, documentation).
    Public,
    /// Anyone, credentials ignored, rate-limited by client IP (login, refresh, new
    /// anonymous sessions: a stale token sent along must not get in the way).
    ByIp(RateClass),
    /// Anyone; credentials are resolved if sent (and refused if bad); rate-limited by
    /// identity, or by client IP without credentials.
    Open(RateClass),
    /// Only with valid credentials (401 otherwise); rate-limited by identity.
    Authenticated(RateClass),
}

impl Access {
    /// The rate class, unless public.
    pub fn class(self) -> Option<RateClass> {
        match self {
            Self::Public => None,
            Self::ByIp(class) | Self::Open(class) | Self::Authenticated(class) => Some(class),
        }
    }
}

/// What the audit trail calls an endpoint's calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditSpec {
    /// Kind of object, e.g. `settings`.
    pub resource: &'static str,
    /// What is done, e.g. `create`.
    pub action: &'static str,
}

/// A served route.
pub struct Endpoint {
    method: Method,
    path: &'static str,
    doc: OperationDoc,
    access: Access,
    audit: Option<AuditSpec>,
    filter: BoxedFilter<(Response,)>,
}

impl Endpoint {
    /// Starts declaring a `GET` endpoint.
    pub fn get(path: &'static str, id: &'static str) -> EndpointBuilder {
        EndpointBuilder::new(Method::GET, path, id)
    }

    /// Starts declaring a `POST` endpoint.
    pub fn post(path: &'static str, id: &'static str) -> EndpointBuilder {
        EndpointBuilder::new(Method::POST, path, id)
    }

    /// Starts declaring a `PUT` endpoint.
    pub fn put(path: &'static str, id: &'static str) -> EndpointBuilder {
        EndpointBuilder::new(Method::PUT, path, id)
    }

    /// Starts declaring a `PATCH` endpoint.
    pub fn patch(path: &'static str, id: &'static str) -> EndpointBuilder {
        EndpointBuilder::new(Method::PATCH, path, id)
    }

    /// Starts declaring a `DELETE` endpoint.
    pub fn delete(path: &'static str, id: &'static str) -> EndpointBuilder {
        EndpointBuilder::new(Method::DELETE, path, id)
    }

    /// Who may call it.
    pub fn access(&self) -> Access {
        self.access
    }

    /// How its calls are audited, if they change state.
    pub fn audit(&self) -> Option<AuditSpec> {
        self.audit
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path template, in router syntax (`/api/files/{org_id}/{id}`, `/docs/{*asset}`).
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// The path template as OpenAPI writes it (`{*asset}` becomes `{asset}`).
    pub fn openapi_path(&self) -> String {
        self.path.replace("{*", "{")
    }

    /// The OpenAPI description.
    pub fn doc(&self) -> &OperationDoc {
        &self.doc
    }

    /// The warp filter that serves the endpoint once it has been routed to.
    pub fn filter(&self) -> BoxedFilter<(Response,)> {
        self.filter.clone()
    }
}

/// Declares an endpoint step by step; see [`Endpoint::get`].
pub struct EndpointBuilder {
    method: Method,
    path: &'static str,
    doc: OperationDoc,
    access: Access,
    audit: Option<AuditSpec>,
}

impl EndpointBuilder {
    fn new(method: Method, path: &'static str, id: &'static str) -> Self {
        let doc = OperationDoc {
            id,
            tag: "",
            summary: "",
            description: "",
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
        };
        Self {
            method,
            path,
            doc,
            access: Access::Public,
            audit: None,
        }
    }

    /// Callable by anyone, credentials ignored, rate-limited in `class` by client IP.
    #[must_use]
    pub fn by_ip(mut self, class: RateClass) -> Self {
        self.access = Access::ByIp(class);
        self
    }

    /// Callable without credentials, rate-limited in `class` (by client IP when anonymous).
    #[must_use]
    pub fn open(mut self, class: RateClass) -> Self {
        self.access = Access::Open(class);
        self
    }

    /// Needs credentials; rate-limited in `class`.
    #[must_use]
    pub fn authenticated(mut self, class: RateClass) -> Self {
        self.access = Access::Authenticated(class);
        self
    }

    /// Records every call in the audit trail as `action` on `resource`.
    #[must_use]
    pub fn audited(mut self, resource: &'static str, action: &'static str) -> Self {
        self.audit = Some(AuditSpec { resource, action });
        self
    }

    /// Sets the group and the one-line summary.
    #[must_use]
    pub fn summary(mut self, tag: &'static str, summary: &'static str) -> Self {
        self.doc.tag = tag;
        self.doc.summary = summary;
        self
    }

    /// Sets the longer description (Markdown).
    #[must_use]
    pub fn description(mut self, description: &'static str) -> Self {
        self.doc.description = description;
        self
    }

    /// Documents a path parameter with an example value.
    #[must_use]
    pub fn path_param<T: JsonSchema>(
        mut self,
        name: &'static str,
        description: &'static str,
        example: &'static str,
    ) -> Self {
        self.doc.params.push(ParamDoc {
            name,
            location: "path",
            description,
            required: true,
            schema: schema_of::<T>(),
            example,
        });
        self
    }

    /// Documents a query parameter with an example value.
    #[must_use]
    pub fn query_param<T: JsonSchema>(
        mut self,
        name: &'static str,
        description: &'static str,
        example: &'static str,
    ) -> Self {
        self.doc.params.push(ParamDoc {
            name,
            location: "query",
            description,
            required: false,
            schema: schema_of::<T>(),
            example,
        });
        self
    }

    /// Documents a JSON request body of type `T`.
    #[must_use]
    pub fn json_body<T: JsonSchema>(mut self, description: &'static str) -> Self {
        self.doc.body = Some(BodyDoc {
            description,
            content_type: "application/json",
            schema: schema_of::<T>(),
        });
        self
    }

    /// Documents a `multipart/form-data` request body by its schema.
    #[must_use]
    pub fn multipart_body(mut self, description: &'static str, schema: SchemaFn) -> Self {
        self.doc.body = Some(BodyDoc {
            description,
            content_type: "multipart/form-data",
            schema,
        });
        self
    }

    /// Documents a request body of raw bytes (a file), of any media type.
    #[must_use]
    pub fn bytes_body(mut self, description: &'static str) -> Self {
        self.doc.body = Some(BodyDoc {
            description,
            content_type: "application/octet-stream",
            schema: bytes_schema(),
        });
        self
    }

    /// Documents a response of raw bytes (a file).
    #[must_use]
    pub fn bytes_response(self, status: StatusCode, description: &'static str) -> Self {
        self.response(
            status,
            description,
            Some(("application/octet-stream", bytes_schema())),
        )
    }

    /// Documents the answers of a route serving a stored file: whole (200), a range (206),
    /// unchanged (304).
    #[must_use]
    pub fn file_responses(self) -> Self {
        self.bytes_response(StatusCode::OK, "The whole file")
            .bytes_response(
                StatusCode::PARTIAL_CONTENT,
                "The part the `Range` asked for",
            )
            .response(
                StatusCode::NOT_MODIFIED,
                "Unchanged since the `ETag` sent",
                None,
            )
    }

    /// Documents a JSON response of type `T`.
    #[must_use]
    pub fn json_response<T: JsonSchema>(
        self,
        status: StatusCode,
        description: &'static str,
    ) -> Self {
        self.response(
            status,
            description,
            Some(("application/json", schema_of::<T>())),
        )
    }

    /// Documents a JSON request body by its schema.
    #[must_use]
    pub fn json_body_schema(mut self, description: &'static str, schema: SchemaFn) -> Self {
        self.doc.body = Some(BodyDoc {
            description,
            content_type: "application/json",
            schema,
        });
        self
    }

    /// Documents a JSON response by its schema when `condition` holds.
    #[must_use]
    pub fn json_responses_if(
        self,
        condition: bool,
        status: StatusCode,
        description: &'static str,
        schema: SchemaFn,
    ) -> Self {
        if condition {
            self.json_response_schema(status, description, schema)
        } else {
            self
        }
    }

    /// Documents a JSON response by its schema.
    #[must_use]
    pub fn json_response_schema(
        self,
        status: StatusCode,
        description: &'static str,
        schema: SchemaFn,
    ) -> Self {
        self.response(status, description, Some(("application/json", schema)))
    }

    /// Documents a response of any media type (`content` is `None` for an empty body).
    #[must_use]
    pub fn response(
        mut self,
        status: StatusCode,
        description: &'static str,
        content: Option<(&'static str, SchemaFn)>,
    ) -> Self {
        self.doc.responses.push(ResponseDoc {
            status,
            description,
            content,
        });
        self
    }

    /// Finishes the endpoint with the warp filter that extracts its inputs and answers.
    ///
    /// The filter does not match the path or method (the router already did). If it
    /// rejects, the rejection becomes a problem document here, so a routed request always
    /// gets an answer from its own endpoint.
    pub fn handle<F, R, E>(self, filter: F) -> Endpoint
    where
        F: Filter<Extract = (R,), Error = E> + Clone + Send + Sync + 'static,
        E: Into<Rejection>,
        R: Reply + 'static,
    {
        let filter = filter
            .map(Reply::into_response)
            .boxed()
            .recover(recover)
            .unify()
            .boxed();
        Endpoint {
            method: self.method,
            path: self.path,
            doc: self.doc,
            access: self.access,
            audit: self.audit,
            filter,
        }
    }
}
