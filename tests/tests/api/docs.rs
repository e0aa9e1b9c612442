//! `/openapi.json` and `/docs`.

use anyhow::{Context, Result, ensure};
use metamorph_tests::{Backend, Server, header};
use serde_json::Value;

fn openapi(server: &Server) -> Result<Value> {
    let response = server.get("/openapi.json")?;
    ensure!(response.status() == 200);
    ensure!(header(&response, "content-type") == "application/json");
    Ok(response.json()?)
}

#[test]
fn the_openapi_document_is_valid_openapi_3_1() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    let document = openapi(&server)?;
    ensure!(document["openapi"] == "3.1.0");

    let meta_schema: Value =
        serde_json::from_str(include_str!("../../fixtures/openapi/oas-3.1-schema.json"))?;
    let validator =
        jsonschema::validator_for(&meta_schema).context("the OpenAPI meta-schema compiles")?;
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect();
    ensure!(
        errors.is_empty(),
        "the document breaks the OpenAPI 3.1 schema:\n{}",
        errors.join("\n")
    );

    // The meta-schema does not look inside Schema Objects: check each against JSON Schema 2020-12.
    let schemas = document["components"]["schemas"]
        .as_object()
        .context("components.schemas")?;
    ensure!(
        schemas.contains_key("Problem"),
        "the problem document is described"
    );
    for (name, schema) in schemas {
        ensure!(
            jsonschema::meta::is_valid(schema),
            "components.schemas.{name} is not a valid JSON Schema"
        );
    }
    // Every $ref resolves.
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap_or_default();
        let name = target
            .strip_prefix("#/components/schemas/")
            .context(target.to_owned())?;
        ensure!(schemas.contains_key(name), "dangling $ref {target}");
    }
    Ok(())
}

#[test]
fn every_documented_route_is_served_with_a_documented_status() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    let token = server.root_token()?;
    let document = openapi(&server)?;
    let paths = document["paths"].as_object().context("paths")?;
    for required in [
        "/api/health",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/",
    ] {
        ensure!(paths.contains_key(required), "{required} is not documented");
    }
    let mut checked = 0;
    for (template, operations) in paths {
        for (method, operation) in operations.as_object().context("operations")? {
            let mut path = template.clone();
            for param in operation["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    let example = param["example"]
                        .as_str()
                        .context("path parameters have examples")?;
                    path = path.replace(
                        &format!("{{{}}}", param["name"].as_str().unwrap_or_default()),
                        example,
                    );
                }
            }
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())?;
            let response = server
                .client()
                .request(method.clone(), server.url(&path))
                .bearer_auth(&token)
                .send()?;
            let status = response.status().as_u16().to_string();
            let documented: Vec<&String> = operation["responses"]
                .as_object()
                .context("responses")?
                .keys()
                .collect();
            ensure!(
                documented.iter().any(|code| **code == status),
                "{method} {path} answered {status}, documented are {documented:?}"
            );
            checked += 1;
        }
    }
    ensure!(checked >= 40, "only {checked} operations");
    Ok(())
}

#[test]
fn the_docs_viewer_is_served_from_the_binary_and_points_at_the_document() -> Result<()> {
    let server = Server::start(Backend::Sqlite)?;
    let redirect = server.get("/docs")?;
    ensure!(redirect.status() == 308 && header(&redirect, "location") == "/docs/");
    let root = server.get("/")?;
    ensure!(root.status() == 307 && header(&root, "location") == "/docs/");

    let page = server.get("/docs/")?;
    ensure!(header(&page, "content-type").starts_with("text/html"));
    let page = page.text()?;
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        ensure!(page.contains(asset), "the page loads {asset}");
        let response = server.get(&format!("/docs/{asset}"))?;
        ensure!(response.status() == 200, "{asset}: {}", response.status());
        ensure!(response.bytes()?.len() > 100, "{asset} is served whole");
    }
    let initializer = server.get("/docs/swagger-initializer.js")?.text()?;
    ensure!(initializer.contains("\"/openapi.json\""), "{initializer}");

    let errors = server.get("/docs/errors")?.text()?;
    for code in [
        "not_found",
        "method_not_allowed",
        "internal",
        "unavailable",
        "invalid_json",
    ] {
        ensure!(
            errors.contains(&format!("id=\"{code}\"")),
            "/docs/errors has no anchor for {code}"
        );
    }
    Ok(())
}
