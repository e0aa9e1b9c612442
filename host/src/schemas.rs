//! The JSON Schemas committed under `schemas/`, generated from the Rust types they describe.
//!
//! A test regenerates them and fails on any difference, so the files cannot drift from the
//! code; `UPDATE_SCHEMAS=1 cargo test -p metamorph schemas` rewrites them.

use schemars::schema_for;
use serde_json::Value;

use crate::config::ConfigFile;
use crate::error::Problem;

/// `(file name under schemas/, schema)` for every committed schema.
pub fn committed() -> Vec<(&'static str, Value)> {
    let mut problem = schema_for!(Problem);
    problem.insert(
        "title".into(),
        "RFC 9457 problem document (every Metamorph error)".into(),
    );
    vec![
        ("config.schema.json", schema_for!(ConfigFile).to_value()),
        ("problem.schema.json", problem.to_value()),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_committed_schemas_match_the_code() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        for (name, schema) in committed() {
            let path = dir.join(name);
            let rendered = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if update {
                std::fs::write(&path, &rendered).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == rendered,
                "schemas/{name} is out of date; run `UPDATE_SCHEMAS=1 cargo test -p metamorph schemas`"
            );
        }
    }
}
