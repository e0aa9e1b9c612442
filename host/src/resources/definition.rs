//! A resource's definition, read from its JSON Schema file `schemas/<name>.json`.
//!
//! The file is a JSON Schema (2020-12) of the resource's records, plus annotations:
//!
//! - at the top, `x-metamorph`: `{"access": {"read": [roles], "create": [...], "update":
//!   [...], "delete": [...]}, "list_columns": [fields], "actions": [{"name", "summary",
//!   "roles", "body"}]}`;
//! - on a field: `readOnly` (set by the service), `writeOnly` (accepted, never shown),
//!   `x-read-roles` (who sees it; default everyone who reads the resource) and
//!   `x-write-roles` (who may set it; default everyone who may create or update).
//!
//! Superusers may always do everything. From this one file come request validation,
//! what each role sees and may write, `/api/_meta/{resource}` and the OpenAPI schemas.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::auth::Role;
use crate::error::{ApiError, ErrorCode, FieldError};

/// The operations of the generated routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// List and get.
    Read,
    /// Create.
    Create,
    /// Patch.
    Update,
    /// Delete.
    Delete,
}

impl Op {
    fn key(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    /// The phrase used in 403 details.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "change",
            Self::Delete => "delete",
        }
    }
}

/// One field of a resource.
#[derive(Clone, Debug)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Set by the service only.
    pub read_only: bool,
    /// Accepted but never shown.
    pub write_only: bool,
    /// Who may see it (`None`: every reader).
    pub read_roles: Option<Vec<Role>>,
    /// Who may set it (`None`: every creator and updater).
    pub write_roles: Option<Vec<Role>>,
}

/// A resource-specific action: `POST {path}/{org_id}/{id}/{name}`.
#[derive(Clone, Debug)]
pub struct ActionDef {
    /// URL segment.
    pub name: String,
    /// One line.
    pub summary: String,
    /// Who may run it.
    pub roles: Vec<Role>,
    /// JSON Schema of its body.
    pub body: Value,
}

/// A parsed resource definition.
pub struct ResourceDef {
    /// Wire name (`feature-flags`).
    pub name: &'static str,
    /// Base path (`/api/feature-flags`).
    pub path: String,
    /// Singular title of a record (`Feature flag`), also the OpenAPI component name.
    pub title: String,
    /// What the resource is.
    pub description: String,
    /// The schema as written (annotations included).
    pub schema: Value,
    /// Its fields, in the file's order.
    pub fields: Vec<Field>,
    /// Columns a list view shows.
    pub list_columns: Vec<String>,
    /// Its actions.
    pub actions: Vec<ActionDef>,
    access: [(Op, Vec<Role>); 4],
    create_validator: jsonschema::Validator,
    patch_validator: jsonschema::Validator,
}

impl std::fmt::Debug for ResourceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceDef")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn roles(value: &Value, at: &str) -> Result<Vec<Role>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{at} must be a list of roles"))?
        .iter()
        .map(|role| {
            role.as_str()
                .ok_or_else(|| format!("{at}: roles are strings"))?
                .parse()
        })
        .collect()
}

impl ResourceDef {
    /// Parses and checks a schema file; the error says what is wrong with it.
    pub fn parse(name: &'static str, text: &str) -> Result<Self, String> {
        let schema: Value =
            serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
        let meta = schema.get("x-metamorph").ok_or("no `x-metamorph` block")?;
        let access_block = meta.get("access").ok_or("no `x-metamorph.access`")?;
        let mut access = Vec::new();
        for op in [Op::Read, Op::Create, Op::Update, Op::Delete] {
            let listed = access_block
                .get(op.key())
                .ok_or_else(|| format!("no access for `{}`", op.key()))?;
            access.push((
                op,
                roles(listed, &format!("x-metamorph.access.{}", op.key()))?,
            ));
        }
        let access: [(Op, Vec<Role>); 4] = access
            .try_into()
            .map_err(|_wrong_length| "four access entries are expected".to_owned())?;

        let properties = schema["properties"].as_object().ok_or("no `properties`")?;
        let mut fields = Vec::new();
        for (field, spec) in properties {
            let optional_roles = |key: &str| {
                spec.get(key)
                    .map(|value| roles(value, &format!("properties.{field}.{key}")))
                    .transpose()
            };
            fields.push(Field {
                name: field.clone(),
                read_only: spec["readOnly"] == true,
                write_only: spec["writeOnly"] == true,
                read_roles: optional_roles("x-read-roles")?,
                write_roles: optional_roles("x-write-roles")?,
            });
        }
        let list_columns: Vec<String> = meta["list_columns"]
            .as_array()
            .ok_or("no `x-metamorph.list_columns`")?
            .iter()
            .map(|column| column.as_str().unwrap_or_default().to_owned())
            .collect();
        for column in &list_columns {
            if !properties.contains_key(column) {
                return Err(format!("list column `{column}` is not a field"));
            }
        }
        let mut actions = Vec::new();
        for action in meta["actions"].as_array().into_iter().flatten() {
            actions.push(ActionDef {
                name: action["name"]
                    .as_str()
                    .ok_or("an action has no name")?
                    .to_owned(),
                summary: action["summary"].as_str().unwrap_or_default().to_owned(),
                roles: roles(&action["roles"], "x-metamorph.actions[].roles")?,
                body: action
                    .get("body")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            });
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap_or_default();
            if fields
                .iter()
                .any(|field| field.name == required && field.read_only)
            {
                return Err(format!("`{required}` is both required and read-only"));
            }
        }

        let create_schema = input_schema(&schema, true);
        let patch_schema = input_schema(&schema, false);
        let compile = |schema: &Value| {
            jsonschema::options()
                .should_validate_formats(true)
                .build(schema)
                .map_err(|error| format!("the schema does not compile: {error}"))
        };
        Ok(Self {
            name,
            path: format!("/api/{name}"),
            title: schema["title"].as_str().ok_or("no `title`")?.to_owned(),
            description: schema["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            create_validator: compile(&create_schema)?,
            patch_validator: compile(&patch_schema)?,
            schema,
            fields,
            list_columns,
            actions,
            access,
        })
    }

    /// Roles allowed `op` (superusers always are).
    pub fn roles_for(&self, op: Op) -> &[Role] {
        self.access
            .iter()
            .find(|(known, _)| *known == op)
            .map_or(&[], |(_, roles)| roles)
    }

    /// Whether `role` may do `op`.
    pub fn allows(&self, role: Role, op: Op) -> bool {
        role == Role::Superuser || self.roles_for(op).contains(&role)
    }

    /// 403 unless `role` may do `op`.
    pub fn require(&self, role: Role, op: Op) -> Result<(), ApiError> {
        if self.allows(role, op) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("the {role} role may not {} {}", op.verb(), self.name),
            ))
        }
    }

    /// Whether `role` sees `field` in records.
    pub fn can_read(&self, role: Role, field: &Field) -> bool {
        if field.write_only || !self.allows(role, Op::Read) {
            return false;
        }
        role == Role::Superuser
            || field
                .read_roles
                .as_ref()
                .is_none_or(|roles| roles.contains(&role))
    }

    /// Whether `role` may set `field` in a create (`creating`) or a patch.
    pub fn can_write(&self, role: Role, field: &Field, creating: bool) -> bool {
        let op = if creating { Op::Create } else { Op::Update };
        if field.read_only || !self.allows(role, op) {
            return false;
        }
        role == Role::Superuser
            || field
                .write_roles
                .as_ref()
                .is_none_or(|roles| roles.contains(&role))
    }

    /// A record as `role` sees it: fields it may not read removed.
    pub fn view(&self, role: Role, mut record: Map<String, Value>) -> Value {
        record.retain(|name, _| {
            self.fields
                .iter()
                .any(|field| field.name == *name && self.can_read(role, field))
        });
        Value::Object(record)
    }

    /// Checks a create (`creating`) or patch body for `role`: unknown and read-only fields
    /// are 422, fields the role may not set are 403, then the schema is applied (422 with
    /// every failing field by JSON pointer).
    pub fn check_body(
        &self,
        role: Role,
        body: &Value,
        creating: bool,
    ) -> Result<Map<String, Value>, ApiError> {
        let Some(object) = body.as_object() else {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                "the body must be a JSON object",
            )
            .with_field_errors(vec![FieldError {
                path: String::new(),
                message: "is not an object".into(),
            }]));
        };
        let mut errors = Vec::new();
        let mut forbidden = Vec::new();
        let mut checked = object.clone();
        for key in object.keys() {
            match self.fields.iter().find(|field| field.name == *key) {
                None => {
                    checked.remove(key);
                    errors.push(FieldError {
                        path: pointer(key),
                        message: format!("`{key}` is not a field of {}", self.name),
                    });
                }
                Some(field) if field.read_only => {
                    checked.remove(key);
                    errors.push(FieldError {
                        path: pointer(key),
                        message: "is read-only: the service sets it".into(),
                    });
                }
                Some(field) if !self.can_write(role, field, creating) => {
                    forbidden.push(key.clone());
                }
                Some(_) => {}
            }
        }
        if !forbidden.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "the {role} role may not set {}",
                    forbidden
                        .iter()
                        .map(|key| format!("`{key}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let validator = if creating {
            &self.create_validator
        } else {
            &self.patch_validator
        };
        let checked = Value::Object(checked);
        errors.extend(validator.iter_errors(&checked).map(|error| FieldError {
            path: error.instance_path().to_string(),
            message: error.to_string(),
        }));
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        if errors.is_empty() {
            Ok(object.clone())
        } else {
            Err(validation_failed(errors))
        }
    }

    /// The record schema without annotations, for OpenAPI (`required` kept for creates).
    pub fn openapi_schema(&self, creating: bool) -> Value {
        let mut schema = strip_annotations(&self.schema);
        if !creating && let Some(object) = schema.as_object_mut() {
            object.remove("required");
        }
        schema
    }

    /// The schema as `role` sees it: fields it may neither read nor write are absent,
    /// fields it may not write are `readOnly`, and `required` lists only what it may set.
    pub fn schema_for(&self, role: Option<Role>) -> Value {
        let mut schema = strip_annotations(&self.schema);
        let mut kept = BTreeSet::new();
        if let Some(properties) = schema["properties"].as_object_mut() {
            for field in &self.fields {
                let readable = role.is_some_and(|role| self.can_read(role, field));
                let writable = role.is_some_and(|role| {
                    self.can_write(role, field, true) || self.can_write(role, field, false)
                });
                if !readable && !writable {
                    properties.remove(&field.name);
                    continue;
                }
                kept.insert(field.name.clone());
                if let Some(property) = properties
                    .get_mut(&field.name)
                    .and_then(Value::as_object_mut)
                {
                    if !writable {
                        property.insert("readOnly".into(), Value::Bool(true));
                    }
                    if writable && !readable {
                        property.insert("writeOnly".into(), Value::Bool(true));
                    }
                }
            }
        }
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|name| {
                let name = name.as_str().unwrap_or_default();
                kept.contains(name)
                    && self.fields.iter().any(|field| {
                        field.name == name
                            && role.is_some_and(|role| self.can_write(role, field, true))
                    })
            });
        }
        schema
    }
}

fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn validation_failed(errors: Vec<FieldError>) -> ApiError {
    let summary = errors
        .iter()
        .map(|error| {
            format!(
                "{} {}",
                if error.path.is_empty() {
                    "(body)"
                } else {
                    &error.path
                },
                error.message
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::new(
        ErrorCode::ValidationFailed,
        format!("the body is not valid: {summary}"),
    )
    .with_field_errors(errors)
}

/// The schema a body is checked against: read-only fields gone, `required` only when
/// creating.
fn input_schema(schema: &Value, creating: bool) -> Value {
    let mut input = strip_annotations(schema);
    if let Some(object) = input.as_object_mut() {
        if !creating {
            object.remove("required");
        }
        if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
            properties.retain(|_, spec| spec["readOnly"] != true);
        }
    }
    input
}

/// A copy of `schema` without `x-` annotations (at every depth).
fn strip_annotations(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(key, _)| !key.starts_with("x-"))
                .map(|(key, value)| (key.clone(), strip_annotations(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_annotations).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "title": "Thing", "type": "object", "additionalProperties": false,
      "x-metamorph": {
        "access": {"read": ["admin", "member"], "create": ["admin", "member"], "update": ["admin"], "delete": ["admin"]},
        "list_columns": ["name"]
      },
      "required": ["name"],
      "properties": {
        "id": {"type": "string", "readOnly": true},
        "name": {"type": "string", "minLength": 1},
        "secret": {"type": "string", "writeOnly": true},
        "internal": {"type": "string", "x-read-roles": ["admin"], "x-write-roles": ["admin"]},
        "size": {"type": "integer", "minimum": 0}
      }
    }"#;

    fn thing() -> ResourceDef {
        ResourceDef::parse("things", SAMPLE).unwrap()
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let def = thing();
        assert!(
            def.check_body(Role::Member, &json!({"name": "a", "size": 1}), true)
                .is_ok()
        );

        let error = def
            .check_body(Role::Member, &json!({"name": "", "size": -1}), true)
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::ValidationFailed);
        let paths: Vec<String> = error
            .to_problem()
            .errors
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["/name", "/size"]);

        let error = def
            .check_body(Role::Member, &json!({"size": 1}), true)
            .unwrap_err();
        assert!(error.detail().contains("name"), "{}", error.detail());
        assert!(
            def.check_body(Role::Member, &json!({"size": 1}), false)
                .is_err(),
            "members may not update"
        );
        assert!(
            def.check_body(Role::Admin, &json!({"size": 1}), false)
                .is_ok(),
            "patches need no required field"
        );

        let error = def
            .check_body(
                Role::Admin,
                &json!({"id": "x", "nope": 1, "size": -2}),
                false,
            )
            .unwrap_err();
        let paths: Vec<String> = error
            .to_problem()
            .errors
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["/id", "/nope", "/size"], "every problem at once");

        let error = def
            .check_body(Role::Member, &json!({"name": "a", "internal": "x"}), true)
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::Forbidden);
    }

    #[test]
    fn each_role_sees_the_fields_it_may_read() {
        let def = thing();
        let record = json!({"id": "1", "name": "a", "internal": "i", "size": 2})
            .as_object()
            .unwrap()
            .clone();
        let admin = def.view(Role::Admin, record.clone());
        assert_eq!(admin["internal"], "i");
        let member = def.view(Role::Member, record);
        assert!(member.get("internal").is_none() && member["name"] == "a");
    }

    #[test]
    fn the_schema_each_role_sees_follows_the_annotations() {
        let def = thing();
        let admin = def.schema_for(Some(Role::Admin));
        assert_eq!(admin["properties"]["internal"]["type"], "string");
        assert!(admin["properties"]["internal"].get("readOnly").is_none());
        assert_eq!(admin["properties"]["secret"]["writeOnly"], true);
        assert!(admin.get("x-metamorph").is_none());

        let member = def.schema_for(Some(Role::Member));
        assert!(
            member["properties"].get("internal").is_none(),
            "hidden from members"
        );
        assert_eq!(
            member["properties"]["name"].get("readOnly"),
            None,
            "members create"
        );

        let demo = def.schema_for(Some(Role::Demo));
        assert!(
            demo["properties"].as_object().unwrap().is_empty(),
            "demo reads nothing here"
        );
        assert_eq!(demo["required"], json!([]));
    }

    #[test]
    fn broken_definitions_are_refused_with_a_reason() {
        assert!(
            ResourceDef::parse("x", "{}")
                .unwrap_err()
                .contains("x-metamorph")
        );
        let bad_role = SAMPLE.replace(r#""delete": ["admin"]"#, r#""delete": ["root"]"#);
        assert!(
            ResourceDef::parse("x", &bad_role)
                .unwrap_err()
                .contains("root")
        );
        let bad_column =
            SAMPLE.replace(r#""list_columns": ["name"]"#, r#""list_columns": ["nope"]"#);
        assert!(
            ResourceDef::parse("x", &bad_column)
                .unwrap_err()
                .contains("nope")
        );
    }
}
