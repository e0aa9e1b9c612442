//! The OpenAPI 3.1 document, generated from the route table the server runs.
//!
//! Every operation documents its own responses plus a `default` response: the RFC 9457
//! problem document every error uses. Schemas come from the Rust types (schemars), so the
//! document describes exactly what the handlers send.

use std::collections::BTreeMap;

use schemars::Schema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::error::{PROBLEM_CONTENT_TYPE, Problem};
use crate::routes::{Access, Endpoint};

/// Descriptions of the operation groups, in the order the viewer shows them.
const TAGS: &[(&str, &str)] = &[
    ("auth", "Sign-in, tokens and anonymous sessions"),
    ("api-keys", "Keys for programs, sent as `X-API-Key`"),
    (
        "meta",
        "What each resource is and what your role may do with it",
    ),
    ("users", "The people of an organisation"),
    ("settings", "An organisation's configuration values"),
    ("feature-flags", "An organisation's feature switches"),
    ("files", "Stored files"),
    ("conversion-jobs", "Conversion jobs"),
    ("destinations", "Where outputs can be written"),
    ("audit", "The audit trail"),
    ("formats", "Formats, conversions and plugins"),
    ("ops", "Health and metrics, for operators and monitoring"),
    ("docs", "This API's own description"),
];

/// The error statuses a route answers because of how it is reached, with when.
fn implied_errors(endpoint: &Endpoint) -> Vec<(&'static str, &'static str)> {
    let doc = endpoint.doc();
    let mut errors = Vec::new();
    if doc.body.is_some() {
        errors.push(("400", "The body is not JSON, or not of the expected shape"));
        errors.push(("413", "The body is too large"));
        errors.push((
            "422",
            "The body breaks the schema; `errors[]` names each field",
        ));
    }
    if let Access::Authenticated(_) = endpoint.access() {
        errors.push(("401", "No credentials, or invalid or expired ones"));
        errors.push(("403", "Your role or your key's scopes do not allow this"));
    }
    if doc.params.iter().any(|param| param.location == "path")
        && endpoint.access() != Access::Public
    {
        errors.push(("404", "Nothing exists at this address in your organisation"));
    }
    if endpoint.access().class().is_some() {
        errors.push((
            "429",
            "Over your rate limit; retry after `Retry-After` seconds",
        ));
    }
    errors
}

/// Builds the document for `endpoints`.
pub fn document(endpoints: &[Endpoint]) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "/components/schemas".into())
        .into_generator();
    let problem = generator.subschema_for::<Problem>();

    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for endpoint in endpoints {
        let operation = operation(endpoint, &mut generator, &problem);
        paths
            .entry(endpoint.openapi_path())
            .or_default()
            .insert(endpoint.method().as_str().to_ascii_lowercase(), operation);
    }
    let tags: Vec<Value> = TAGS
        .iter()
        .map(|(name, description)| json!({"name": name, "description": description}))
        .collect();

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Metamorph",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A self-hostable, plugin-based file-conversion gateway",
            "description": "Every error is an RFC 9457 problem document \
                (`application/problem+json`) with a stable `code` and the `request_id`, which \
                is also sent as the `X-Request-Id` header. The codes are listed at \
                [/docs/errors](/docs/errors).",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "tags": tags,
        "paths": paths,
                "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from `POST /api/auth/login`, or an anonymous session token from `POST /api/anon/session`"
                },
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "A key from `POST /api/api-keys`"
                }
            }
        }
    })
}

fn operation(
    endpoint: &Endpoint,
    generator: &mut schemars::SchemaGenerator,
    problem: &Schema,
) -> Value {
    let doc = endpoint.doc();
    let mut operation = Map::new();
    operation.insert("operationId".into(), doc.id.into());
    operation.insert("summary".into(), doc.summary.into());
    if !doc.description.is_empty() {
        operation.insert("description".into(), doc.description.into());
    }
    if !doc.tag.is_empty() {
        operation.insert("tags".into(), json!([doc.tag]));
    }
    if !doc.params.is_empty() {
        let params: Vec<Value> = doc
            .params
            .iter()
            .map(|param| {
                json!({
                    "name": param.name,
                    "in": param.location,
                    "required": param.required,
                    "description": param.description,
                    "schema": param.schema.call(generator),
                    "example": param.example,
                })
            })
            .collect();
        operation.insert("parameters".into(), params.into());
    }
    if let Some(body) = &doc.body {
        operation.insert(
            "requestBody".into(),
            json!({
                "description": body.description,
                "required": true,
                "content": {body.content_type: {"schema": body.schema.call(generator)}}
            }),
        );
    }
    let mut responses = Map::new();
    for response in &doc.responses {
        let mut entry = Map::new();
        entry.insert("description".into(), response.description.into());
        if let Some((content_type, schema)) = &response.content {
            entry.insert(
                "content".into(),
                json!({*content_type: {"schema": schema.call(generator)}}),
            );
        }
        responses.insert(response.status.as_str().to_owned(), entry.into());
    }
    for (status, description) in implied_errors(endpoint) {
        responses.entry(status).or_insert_with(|| {
            json!({"description": description, "content": {PROBLEM_CONTENT_TYPE: {"schema": problem}}})
        });
    }
    match endpoint.access() {
        Access::Authenticated(_) => {
            operation.insert("security".into(), json!([{"bearer": []}, {"apiKey": []}]));
        }
        Access::Open(_) => {
            operation.insert(
                "security".into(),
                json!([{}, {"bearer": []}, {"apiKey": []}]),
            );
        }
        Access::Public | Access::ByIp(_) => {
            operation.insert("security".into(), json!([]));
        }
    }
    responses.insert(
        "default".into(),
        json!({
            "description": "An error, as an RFC 9457 problem document",
            "content": {PROBLEM_CONTENT_TYPE: {"schema": problem}}
        }),
    );
    operation.insert("responses".into(), responses.into());
    operation.into()
}
