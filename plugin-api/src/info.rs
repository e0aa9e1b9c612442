//! What a plugin declares about itself: [`PluginInfo`], built with a few chained calls.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One conversion a plugin offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// Format read (canonical name).
    pub source: String,
    /// Format written.
    pub target: String,
    /// Relative cost: roughly milliseconds for a typical input.
    pub cost: u32,
    /// JSON Schema of this pair's options, as JSON text, when not the plugin's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options_schema: Option<String>,
}

/// A format a plugin knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatInfo {
    /// Canonical name.
    pub name: String,
    /// Media types, preferred first.
    pub media_types: Vec<String>,
    /// Extensions, preferred first.
    pub extensions: Vec<String>,
    /// `image`, `audio`, `video`, `document`, `data` or `archive`.
    pub category: String,
    /// One line for people.
    pub description: String,
}

/// What a plugin is and does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Stable kebab-case name.
    pub name: String,
    /// Version (semver).
    pub version: String,
    /// One line for people.
    pub description: String,
    /// Every conversion offered.
    pub conversions: Vec<Conversion>,
    /// JSON Schema of the options, as JSON text.
    pub options_schema: String,
    /// Formats the plugin knows that the host might not.
    #[serde(default)]
    pub formats: Vec<FormatInfo>,
    /// Formats of which the plugin makes example files.
    #[serde(default)]
    pub templates: Vec<String>,
    /// Optional abilities (reserved for later versions of the contract).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl PluginInfo {
    /// Starts describing a plugin: `PluginInfo::new("markdown", env!("CARGO_PKG_VERSION"))`.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            description: String::new(),
            conversions: Vec::new(),
            options_schema: "{}".to_owned(),
            formats: Vec::new(),
            templates: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    /// Sets the one-line description.
    #[must_use]
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// Declares the options type: its JSON Schema becomes the plugin's options schema.
    #[must_use]
    pub fn options<T: JsonSchema>(mut self) -> Self {
        self.options_schema = schema_text::<T>();
        self
    }

    /// Offers `source` → `target` at `cost`.
    #[must_use]
    pub fn convert(mut self, source: &str, target: &str, cost: u32) -> Self {
        self.conversions.push(Conversion {
            source: source.to_owned(),
            target: target.to_owned(),
            cost,
            options_schema: None,
        });
        self
    }

    /// Offers `source` → `target` at `cost`, with options of type `T` instead of the
    /// plugin's own.
    #[must_use]
    pub fn convert_with<T: JsonSchema>(mut self, source: &str, target: &str, cost: u32) -> Self {
        self.conversions.push(Conversion {
            source: source.to_owned(),
            target: target.to_owned(),
            cost,
            options_schema: Some(schema_text::<T>()),
        });
        self
    }

    /// Offers every pair of `sources` × `targets` (but no format to itself) at `cost`.
    #[must_use]
    pub fn convert_all(mut self, sources: &[&str], targets: &[&str], cost: u32) -> Self {
        for source in sources {
            for target in targets {
                if source != target {
                    self = self.convert(source, target, cost);
                }
            }
        }
        self
    }

    /// Declares that `template` can make an example of `format`.
    #[must_use]
    pub fn template(mut self, format: &str) -> Self {
        self.templates.push(format.to_owned());
        self
    }

    /// Declares a format the host may not know.
    #[must_use]
    pub fn format(mut self, format: FormatInfo) -> Self {
        self.formats.push(format);
        self
    }
}

/// The JSON Schema of `T` as text.
pub fn schema_text<T: JsonSchema>() -> String {
    serde_json::to_string(&schemars::schema_for!(T))
        .unwrap_or_else(|_unserializable| "{}".to_owned())
}
