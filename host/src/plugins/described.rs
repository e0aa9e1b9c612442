//! Checking what a plugin says about itself, before anything is trusted: names, formats,
//! costs and option schemas. A plugin whose description does not hold is refused with the
//! reason.

use std::collections::HashMap;
use std::sync::Arc;

use metamorph_plugin_api::{FormatName, PluginInfo};
use serde_json::Value;

/// Most conversions one plugin may declare.
const MAX_CONVERSIONS: usize = 10_000;

/// A conversion a plugin offers, checked.
#[derive(Clone, Debug)]
pub struct Pair {
    /// Format read.
    pub source: FormatName,
    /// Format written.
    pub target: FormatName,
    /// Relative cost (at least 1).
    pub cost: u32,
    /// Its options schema.
    pub schema: Arc<OptionsSchema>,
}

/// A compiled options schema.
pub struct OptionsSchema {
    /// The schema.
    pub schema: Value,
    /// Its validator.
    pub validator: jsonschema::Validator,
}

impl std::fmt::Debug for OptionsSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OptionsSchema({})", self.schema)
    }
}

impl OptionsSchema {
    /// The option names the schema declares (`properties`).
    pub fn properties(&self) -> impl Iterator<Item = &str> {
        self.schema["properties"]
            .as_object()
            .into_iter()
            .flat_map(|properties| properties.keys().map(String::as_str))
    }

    /// Whether the option `name` is text only: its schema's `type` allows a string and no
    /// number or boolean. A command line then passes `pages=1` as the text `"1"`.
    pub fn is_text(&self, name: &str) -> bool {
        let types = &self.schema["properties"][name]["type"];
        let allows = |kind: &str| match types {
            Value::String(single) => single == kind,
            Value::Array(many) => many.iter().any(|item| item == kind),
            _ => false,
        };
        allows("string") && !["number", "integer", "boolean"].into_iter().any(allows)
    }
}

/// A plugin's checked description.
#[derive(Clone, Debug)]
pub struct Described {
    /// What it said.
    pub info: PluginInfo,
    /// Its pairs, normalised.
    pub pairs: Vec<Pair>,
    /// Formats of which it makes examples.
    pub templates: Vec<FormatName>,
}

impl Described {
    /// The pair `source` → `target`, if offered.
    pub fn pair(&self, source: &FormatName, target: &FormatName) -> Option<&Pair> {
        self.pairs
            .iter()
            .find(|pair| pair.source == *source && pair.target == *target)
    }
}

fn compile(text: &str, what: &str) -> Result<Arc<OptionsSchema>, String> {
    let schema: Value =
        serde_json::from_str(text).map_err(|error| format!("{what} is not JSON: {error}"))?;
    if !schema.is_object() && !schema.is_boolean() {
        return Err(format!("{what} is not a JSON Schema"));
    }
    let validator = jsonschema::validator_for(&schema)
        .map_err(|error| format!("{what} is not a valid JSON Schema: {error}"))?;
    Ok(Arc::new(OptionsSchema { schema, validator }))
}

/// Checks a description; the error says what is wrong.
pub fn check(info: PluginInfo) -> Result<Described, String> {
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !info.name.starts_with('-');
    if !name_ok {
        return Err(format!(
            "`{}` is not a plugin name: use 1 to 64 lowercase letters, digits and `-`",
            info.name
        ));
    }
    if info.conversions.is_empty() {
        return Err("it declares no conversion".into());
    }
    if info.conversions.len() > MAX_CONVERSIONS {
        return Err(format!(
            "it declares {} conversions; at most {MAX_CONVERSIONS} are allowed",
            info.conversions.len()
        ));
    }
    let default_schema = compile(&info.options_schema, "the options schema")?;
    let mut by_text: HashMap<String, Arc<OptionsSchema>> = HashMap::new();
    let mut pairs: Vec<Pair> = Vec::with_capacity(info.conversions.len());
    for conversion in &info.conversions {
        let format = |text: &str| {
            FormatName::parse(text).map_err(|error| {
                format!(
                    "conversion `{} → {}`: {error}",
                    conversion.source, conversion.target
                )
            })
        };
        let (source, target) = (format(&conversion.source)?, format(&conversion.target)?);
        let schema = match &conversion.options_schema {
            None => default_schema.clone(),
            Some(text) => match by_text.get(text) {
                Some(schema) => schema.clone(),
                None => {
                    let schema = compile(
                        text,
                        &format!("the options schema of `{source} → {target}`"),
                    )?;
                    by_text.insert(text.clone(), schema.clone());
                    schema
                }
            },
        };
        if pairs
            .iter()
            .any(|pair| pair.source == source && pair.target == target)
        {
            return Err(format!("it declares `{source} → {target}` twice"));
        }
        pairs.push(Pair {
            source,
            target,
            cost: conversion.cost.max(1),
            schema,
        });
    }
    let templates = info
        .templates
        .iter()
        .map(|format| {
            FormatName::parse(format).map_err(|error| format!("template `{format}`: {error}"))
        })
        .collect::<Result<_, _>>()?;
    for format in &info.formats {
        FormatName::parse(&format.name)
            .map_err(|error| format!("format `{}`: {error}", format.name))?;
    }
    Ok(Described {
        info,
        pairs,
        templates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_description_is_normalised() {
        let info = PluginInfo::new("image", "1.0.0")
            .convert("PNG", ".jpeg", 0)
            .convert("tiff", "png", 5);
        let described = check(info).unwrap();
        assert_eq!(described.pairs[0].source.as_str(), "png");
        assert_eq!(described.pairs[0].target.as_str(), "jpg");
        assert_eq!(described.pairs[0].cost, 1, "costs are at least 1");
        assert_eq!(described.pairs[1].source.as_str(), "tif");
    }

    #[test]
    fn lies_are_refused_with_the_reason() {
        let bad_format = PluginInfo::new("liar", "1").convert("../../etc/passwd", "png", 1);
        assert!(check(bad_format).unwrap_err().contains("not a format name"));
        let mut bad_schema = PluginInfo::new("liar", "1").convert("png", "jpg", 1);
        bad_schema.options_schema = "{ nope".into();
        assert!(check(bad_schema).unwrap_err().contains("not JSON"));
        assert!(
            check(PluginInfo::new("Bad Name", "1").convert("png", "jpg", 1))
                .unwrap_err()
                .contains("plugin name")
        );
        assert!(
            check(PluginInfo::new("empty", "1"))
                .unwrap_err()
                .contains("no conversion")
        );
        let twice = PluginInfo::new("twice", "1")
            .convert("png", "jpg", 1)
            .convert("png", "jpeg", 1);
        assert!(check(twice).unwrap_err().contains("twice"));
    }
}
