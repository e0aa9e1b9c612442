//! What a client asks of a job: its inputs, conversions, limits and choices. Kept as JSON
//! in `jobs.spec`; the schema file `schemas/conversion-jobs.json` has already checked its
//! shape when these types read it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The request of a job.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobSpec {
    /// The files to convert.
    #[serde(default)]
    pub inputs: Vec<Input>,
    /// What to make of each input.
    #[serde(default)]
    pub conversions: Vec<Conversion>,
    /// Call back on every status change, not only at the end.
    #[serde(default)]
    pub notify_status: bool,
    /// Fail the job on the first failed conversion.
    #[serde(default = "yes")]
    pub fail_on_conversion_error: bool,
    /// Limits of the job.
    #[serde(default)]
    pub limits: Limits,
    /// Visibility of the outputs (the one-shot form's `visibility`); private by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
}

fn yes() -> bool {
    true
}

/// Where an input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A file already stored.
    File,
    /// A file the client uploads after creating the job.
    Upload,
    /// A file fetched from a URL.
    Remote,
    /// A file read from a storage service given inline.
    Cloud,
    /// A file read from one of the organisation's destinations.
    Destination,
}

impl InputKind {
    /// Whether the service fetches the input itself (an `import` task) before converting.
    pub fn is_imported(self) -> bool {
        matches!(self, Self::Remote | Self::Cloud | Self::Destination)
    }
}

/// One input.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Input {
    /// Where it comes from.
    #[serde(rename = "type")]
    pub kind: InputKind,
    /// The file (given for `file`, assigned for the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// The URL of a `remote` input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The file's name, for `upload` and `remote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Where a `cloud` input is (bucket, region, endpoint…).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
    /// The credentials of a `cloud` input, as sent: sealed into `sealed_credentials` before
    /// the job is stored, and never written out.
    #[serde(default, skip_serializing)]
    pub credentials: Map<String, Value>,
    /// The credentials, encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_credentials: Option<String>,
    /// The destination a `destination` input is read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_id: Option<String>,
    /// The object's path, for `cloud` and `destination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Indox's spelling of an S3 object's key: the `path` of a `cloud` input whose `source`
    /// is then `s3` unless given, or of a `destination` input. Read, never written out.
    #[serde(default, skip_serializing)]
    pub s3_key: Option<String>,
}

/// A storage service given inline as a conversion's `output_target`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputTarget {
    /// The service (`s3`, `gcs`… or an alias).
    #[serde(rename = "type")]
    pub service: String,
    /// Where in it.
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// The credentials as sent; sealed before the job is stored, never written out.
    #[serde(default, skip_serializing)]
    pub credentials: Map<String, Value>,
    /// The credentials, encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_credentials: Option<String>,
}

/// One conversion, applied to every input.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conversion {
    /// Target format.
    pub target: String,
    /// Options, as the route's schema declares them.
    #[serde(default)]
    pub options: Map<String, Value>,
    /// Name of the output file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_filename: Option<String>,
    /// A destination of the organisation to write the output to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// A storage service to write the output to, given inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_target: Option<OutputTarget>,
    /// The object path written in the destination (placeholders: see
    /// [`crate::storage::external::render_key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_template: Option<String>,
    /// With a destination: keep the output in the service's storage too.
    #[serde(default = "yes")]
    pub keep_copy: bool,
}

impl Conversion {
    /// Whether the output is written to a destination.
    pub fn exports(&self) -> bool {
        self.destination.is_some() || self.output_target.is_some()
    }
}

/// A spec value (an input or a conversion) as clients see it: sealed credentials are
/// replaced by `has_credentials`.
pub fn public(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("sealed_credentials").is_some() {
                map.insert("has_credentials".into(), Value::Bool(true));
            }
            for inner in map.values_mut() {
                public(inner);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(public),
        _ => {}
    }
}

/// `limits`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    /// `job.*`
    #[serde(default)]
    pub job: JobLimits,
    /// `input.*`
    #[serde(default)]
    pub input: InputLimits,
    /// `output.*`
    #[serde(default)]
    pub output: OutputLimits,
}

/// `limits.job`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobLimits {
    /// Seconds the job may run once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_process_time: Option<u64>,
    /// Most inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_inputs: Option<usize>,
}

/// `limits.input`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InputLimits {
    /// Largest input, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<u64>,
}

/// `limits.output`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OutputLimits {
    /// Downloads each output allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_downloads: Option<i64>,
}

impl JobSpec {
    /// Reads a stored spec (an unreadable one reads as empty: it was written by this code).
    pub fn parse(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// As stored.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// The output's name: the one asked for, or the input's stem with the target's extension.
pub fn output_filename(input_name: &str, conversion: &Conversion) -> String {
    if let Some(name) = &conversion.output_filename {
        return name.clone();
    }
    let stem = match input_name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => input_name,
    };
    format!("{stem}.{}", conversion.target.trim_start_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_keep_the_stem() {
        let conversion = |target: &str, name: Option<&str>| Conversion {
            target: target.into(),
            options: Map::new(),
            output_filename: name.map(str::to_owned),
            destination: None,
            output_target: None,
            key_template: None,
            keep_copy: true,
        };
        assert_eq!(
            output_filename("photo.jpeg", &conversion("png", None)),
            "photo.png"
        );
        assert_eq!(
            output_filename("archive.tar.gz", &conversion("zip", None)),
            "archive.tar.zip"
        );
        assert_eq!(
            output_filename("README", &conversion("pdf", None)),
            "README.pdf"
        );
        assert_eq!(
            output_filename(".env", &conversion("txt", None)),
            ".env.txt"
        );
        assert_eq!(
            output_filename("a.png", &conversion("jpg", Some("cover.jpg"))),
            "cover.jpg"
        );
    }

    #[test]
    fn defaults_fail_on_the_first_error() {
        let spec = JobSpec::parse("{}");
        assert!(spec.fail_on_conversion_error);
        assert!(!spec.notify_status);
    }
}
