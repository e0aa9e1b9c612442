//! Storage services outside the service's own: where outputs are written (destinations,
//! inline output targets) and where cloud inputs are read from. One code path serves
//! every service: a [`Target`] (service, parameters, credentials) becomes an opendal
//! operator whose HTTP requests go through the address guard of remote inputs.
//!
//! | service | parameters | credentials |
//! |---|---|---|
//! | `s3` | `bucket`*, `region`, `endpoint`, `root`, `virtual_host_style` | `access_key_id` + `secret_access_key`, `session_token` |
//! | `gcs` | `bucket`*, `endpoint`, `root` | `credential` (service-account JSON) or `token` |
//! | `azblob` | `container`*, `endpoint`, `root` | `account_name` + `account_key`, or `sas_token` |
//! | `ftp` | `host`*, `port`, `root`, `tls` | `username`, `password` |
//! | `sftp` | `host`*, `port`, `root` | `username`*, `private_key`* |
//! | `gdrive`, `dropbox`, `onedrive` | `root` | `access_token`, or `refresh_token` + `client_id` + `client_secret` |
//!
//! (* required.) A target without credentials sends unsigned requests: the service's own
//! cloud credentials (environment, instance metadata) are never used for a client's target.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use opendal::Operator;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::auth::sealing::Sealer;
use crate::error::{ApiError, ErrorCode, FieldError};

/// Size of the pieces written to a target (and of multipart parts on S3).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// How long a probe or a write may wait for a connection and an answer.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A storage service a target lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Amazon S3 and S3-compatible services.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azblob,
    /// FTP (and FTPS with `tls: true`).
    Ftp,
    /// SFTP.
    Sftp,
    /// Google Drive.
    Gdrive,
    /// Dropbox.
    Dropbox,
    /// Microsoft OneDrive.
    Onedrive,
}

/// What a service takes: parameter and credential names, the required ones first.
struct Shape {
    parameters: &'static [&'static str],
    required_parameters: &'static [&'static str],
    credentials: &'static [&'static str],
}

const TOKENS: &[&str] = &[
    "access_token",
    "refresh_token",
    "client_id",
    "client_secret",
];

impl Service {
    /// Every service, as the API names them.
    pub const ALL: &'static [Service] = &[
        Self::S3,
        Self::Gcs,
        Self::Azblob,
        Self::Ftp,
        Self::Sftp,
        Self::Gdrive,
        Self::Dropbox,
        Self::Onedrive,
    ];

    /// The service's API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Gcs => "gcs",
            Self::Azblob => "azblob",
            Self::Ftp => "ftp",
            Self::Sftp => "sftp",
            Self::Gdrive => "gdrive",
            Self::Dropbox => "dropbox",
            Self::Onedrive => "onedrive",
        }
    }

    /// The service a name stands for: an API name, or an alias other conversion APIs use
    /// (`aws`, `amazons3`, `google_drive`, `googlecloud`, `azure`…). `box` and unknown
    /// names are refused with what is supported.
    pub fn parse(name: &str) -> Result<Self, String> {
        let lower = name.trim().to_ascii_lowercase().replace('-', "_");
        let service = match lower.as_str() {
            "s3" | "aws" | "amazons3" | "amazon_s3" | "aws_s3" => Self::S3,
            "gcs" | "googlecloud" | "google_cloud" | "google_cloud_storage" => Self::Gcs,
            "azblob" | "azure" | "azureblob" | "azure_blob" | "azure_blob_storage" => Self::Azblob,
            "ftp" | "ftps" => Self::Ftp,
            "sftp" => Self::Sftp,
            "gdrive" | "google_drive" | "googledrive" => Self::Gdrive,
            "dropbox" => Self::Dropbox,
            "onedrive" | "one_drive" => Self::Onedrive,
            "box" => {
                return Err(
                    "`box` is not supported: no storage driver for Box exists yet. Supported: \
                     s3, gcs, azblob, ftp, sftp, gdrive, dropbox, onedrive"
                        .into(),
                );
            }
            _ => {
                return Err(format!(
                    "`{name}` is not a storage service. Supported: s3 (alias aws), gcs, azblob \
                     (alias azure), ftp, sftp, gdrive (alias google_drive), dropbox, onedrive"
                ));
            }
        };
        Ok(service)
    }

    /// The service a request field at `path` names: `box` is 400 (not supported), any
    /// other unknown name 422, both naming the field.
    pub fn from_field(name: &str, path: &str) -> Result<Self, ApiError> {
        Self::parse(name).map_err(|message| {
            let code = if name.trim().eq_ignore_ascii_case("box") {
                ErrorCode::BadRequest
            } else {
                ErrorCode::ValidationFailed
            };
            ApiError::new(code, message).with_field_errors(vec![FieldError {
                path: path.to_owned(),
                message: format!("`{name}` is not a supported service"),
            }])
        })
    }

    fn shape(self) -> Shape {
        match self {
            Self::S3 => Shape {
                parameters: &["bucket", "region", "endpoint", "root", "virtual_host_style"],
                required_parameters: &["bucket"],
                credentials: &["access_key_id", "secret_access_key", "session_token"],
            },
            Self::Gcs => Shape {
                parameters: &["bucket", "endpoint", "root"],
                required_parameters: &["bucket"],
                credentials: &["credential", "token"],
            },
            Self::Azblob => Shape {
                parameters: &["container", "endpoint", "root"],
                required_parameters: &["container"],
                credentials: &["account_name", "account_key", "sas_token"],
            },
            Self::Ftp => Shape {
                parameters: &["host", "port", "root", "tls"],
                required_parameters: &["host"],
                credentials: &["username", "password"],
            },
            Self::Sftp => Shape {
                parameters: &["host", "port", "root"],
                required_parameters: &["host"],
                credentials: &["username", "private_key"],
            },
            Self::Gdrive | Self::Dropbox | Self::Onedrive => Shape {
                parameters: &["root"],
                required_parameters: &[],
                credentials: TOKENS,
            },
        }
    }
}

/// Other APIs' spellings of credential and parameter names, mapped onto ours.
fn canonical_key(key: &str) -> &str {
    match key {
        "accesskeyid" | "accessKeyId" => "access_key_id",
        "secretaccesskey" | "secretAccessKey" => "secret_access_key",
        "sessiontoken" | "sessionToken" => "session_token",
        "accountname" | "accountName" => "account_name",
        "accountkey" | "accountKey" => "account_key",
        "sastoken" | "sasToken" => "sas_token",
        "user" => "username",
        "keyfile" | "credentials_json" => "credential",
        other => other,
    }
}

/// A place in a storage service: where an output goes or an input comes from.
#[derive(Clone)]
pub struct Target {
    /// The service.
    pub service: Service,
    /// Where in it (bucket, container, host…).
    pub parameters: Map<String, Value>,
    /// How to sign in.
    pub credentials: Map<String, Value>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("service", &self.service)
            .field("parameters", &self.parameters)
            .field("credentials", &"<redacted>")
            .finish()
    }
}

/// Whether a value counts as given (not null, not an empty string).
fn given(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(text)) => !text.is_empty(),
        Some(_) => true,
    }
}

impl Target {
    /// A target of `service` with names normalised (other APIs' spellings accepted).
    pub fn new(
        service: Service,
        parameters: Map<String, Value>,
        credentials: Map<String, Value>,
    ) -> Self {
        let normalise = |map: Map<String, Value>| {
            map.into_iter()
                .map(|(key, value)| (canonical_key(&key).to_owned(), value))
                .collect()
        };
        Self {
            service,
            parameters: normalise(parameters),
            credentials: normalise(credentials),
        }
    }

    /// What is wrong with the target's parameters and credentials, as field errors under
    /// `base` (e.g. `/parameters/bucket`); empty when it is complete.
    pub fn problems(&self, base: &str, extra_parameters: &[&str]) -> Vec<FieldError> {
        let shape = self.service.shape();
        let service = self.service.as_str();
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| {
            problems.push(FieldError { path, message });
        };
        for name in shape.required_parameters {
            if !given(self.parameters.get(*name)) {
                problem(
                    format!("{base}/parameters/{name}"),
                    format!("is required for {service}"),
                );
            }
        }
        for (name, value) in &self.parameters {
            if !shape.parameters.contains(&name.as_str())
                && !extra_parameters.contains(&name.as_str())
            {
                problem(
                    format!("{base}/parameters/{name}"),
                    format!(
                        "is not a parameter of {service}; it takes {}",
                        shape.parameters.join(", ")
                    ),
                );
            } else if matches!(name.as_str(), "virtual_host_style" | "tls") {
                if !value.is_boolean() {
                    problem(
                        format!("{base}/parameters/{name}"),
                        "is true or false".into(),
                    );
                }
            } else if name == "port" {
                if !value
                    .as_u64()
                    .is_some_and(|port| (1..=65535).contains(&port))
                {
                    problem(
                        format!("{base}/parameters/port"),
                        "is a number from 1 to 65535".into(),
                    );
                }
            } else if !value.is_string() {
                problem(format!("{base}/parameters/{name}"), "is a string".into());
            }
        }
        for (name, value) in &self.credentials {
            if !shape.credentials.contains(&name.as_str()) {
                problem(
                    format!("{base}/credentials/{name}"),
                    format!(
                        "is not a credential of {service}; it takes {}",
                        shape.credentials.join(", ")
                    ),
                );
            } else if !(value.is_string() || name == "credential" && value.is_object()) {
                problem(format!("{base}/credentials/{name}"), "is a string".into());
            }
        }
        let has = |name: &str| given(self.credentials.get(name));
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        match self.service {
            Service::S3 => pairs.push(("access_key_id", "secret_access_key")),
            Service::Azblob => {
                pairs.push(("account_name", "account_key"));
                if !has("account_name") && !given(self.parameters.get("endpoint")) {
                    problems.push(FieldError {
                        path: format!("{base}/parameters/endpoint"),
                        message: "is required without credentials.account_name".into(),
                    });
                }
            }
            Service::Sftp => {
                for name in ["username", "private_key"] {
                    if !has(name) {
                        problems.push(FieldError {
                            path: format!("{base}/credentials/{name}"),
                            message: "is required for sftp".into(),
                        });
                    }
                }
            }
            Service::Gdrive | Service::Dropbox | Service::Onedrive => {
                let refreshable = has("refresh_token") && has("client_id") && has("client_secret");
                if !(has("access_token") || refreshable) {
                    problems.push(FieldError {
                        path: format!("{base}/credentials"),
                        message: format!(
                            "{service} needs `access_token`, or `refresh_token` with \
                             `client_id` and `client_secret` (from the app registered with \
                             the provider)"
                        ),
                    });
                }
            }
            Service::Gcs | Service::Ftp => {}
        }
        for (first, second) in pairs {
            if has(first) != has(second) {
                let (present, missing) = if has(first) {
                    (first, second)
                } else {
                    (second, first)
                };
                problems.push(FieldError {
                    path: format!("{base}/credentials/{missing}"),
                    message: format!("is required with {present}"),
                });
            }
        }
        problems
    }
}

/// Credentials encrypted for storage; `None` when there are none.
pub fn seal_credentials(sealer: &Sealer, credentials: &Map<String, Value>) -> Option<String> {
    (!credentials.is_empty())
        .then(|| sealer.seal(Value::Object(credentials.clone()).to_string().as_bytes()))
}

/// Opens what [`seal_credentials`] made.
pub fn open_credentials(
    sealer: &Sealer,
    sealed: Option<&str>,
) -> Result<Map<String, Value>, ApiError> {
    let Some(sealed) = sealed else {
        return Ok(Map::new());
    };
    let opened = sealer.open(sealed).map_err(|_unopenable| {
        ApiError::new(
            ErrorCode::Internal,
            "stored credentials cannot be opened: the sealing key changed since they were \
             stored; set them again",
        )
    })?;
    Ok(serde_json::from_slice(&opened).unwrap_or_default())
}

/// Why a target could not be used.
#[derive(Debug)]
pub struct TargetError {
    /// The error code the client sees.
    pub code: ErrorCode,
    /// What went wrong, with every credential value taken out.
    pub message: String,
}

impl From<TargetError> for ApiError {
    fn from(error: TargetError) -> Self {
        ApiError::new(error.code, error.message)
    }
}

/// An opened target: its operator, and what to take out of its error messages.
pub struct Opened {
    operator: Operator,
    service: Service,
    secrets: Vec<String>,
    /// A private key written for `sftp`, removed when this is dropped.
    _key_file: Option<tempfile::TempPath>,
}

impl Target {
    fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .get(name)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    }

    fn credential(&self, name: &str) -> Option<String> {
        match self.credentials.get(name) {
            Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
            Some(Value::Object(object)) => Some(Value::Object(object.clone()).to_string()),
            _ => None,
        }
    }

    /// Every secret credential value, to take out of messages (identifiers such as
    /// `access_key_id` or `username` stay: they help find the mistake).
    fn secrets(&self) -> Vec<String> {
        const IDENTIFIERS: &[&str] = &["access_key_id", "account_name", "username", "client_id"];
        self.credentials
            .keys()
            .filter(|name| !IDENTIFIERS.contains(&name.as_str()))
            .filter_map(|name| self.credential(name))
            .filter(|secret| secret.len() >= 4)
            .collect()
    }

    /// The host and port the target's network requests go to, when the client chose them.
    fn chosen_address(&self) -> Option<(String, u16)> {
        match self.service {
            Service::S3 | Service::Gcs | Service::Azblob => {
                let endpoint = self.parameter("endpoint")?;
                let url = reqwest::Url::parse(endpoint).ok()?;
                let port = url.port_or_known_default().unwrap_or(443);
                Some((url.host_str()?.to_owned(), port))
            }
            Service::Ftp | Service::Sftp => {
                let default = if self.service == Service::Ftp { 21 } else { 22 };
                let port = self
                    .parameters
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|port| u16::try_from(port).ok())
                    .unwrap_or(default);
                Some((self.parameter("host")?.to_owned(), port))
            }
            Service::Gdrive | Service::Dropbox | Service::Onedrive => None,
        }
    }

    /// Refuses a client-chosen endpoint on a loopback, private or link-local address
    /// (unless `allow_private`), resolving names as the connection would.
    async fn check_address(&self, allow_private: bool) -> Result<(), TargetError> {
        if allow_private {
            return Ok(());
        }
        let Some((host, port)) = self.chosen_address() else {
            return Ok(());
        };
        let refused = || TargetError {
            code: ErrorCode::AddressNotAllowed,
            message: format!(
                "`{host}` is a loopback, private or link-local address; the service does not \
                 connect there (an operator may allow it with jobs.allow_private_networks)"
            ),
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
            return if crate::jobs::remote::is_private(ip) {
                Err(refused())
            } else {
                Ok(())
            };
        }
        let addresses = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|error| TargetError {
                code: ErrorCode::DestinationFailed,
                message: format!("cannot resolve `{host}`: {error}"),
            })?;
        for address in addresses {
            if crate::jobs::remote::is_private(address.ip()) {
                return Err(refused());
            }
        }
        Ok(())
    }

    /// Opens the target: checks its address, then builds its operator. HTTP services send
    /// their requests through a client that refuses private addresses (as remote inputs
    /// do) and follows no redirect.
    pub async fn open(&self, allow_private: bool) -> Result<Opened, TargetError> {
        let problems = self.problems("", &["file", "path"]);
        if let Some(first) = problems.first() {
            return Err(TargetError {
                code: ErrorCode::ValidationFailed,
                message: format!("the target is not valid: {} {}", first.path, first.message),
            });
        }
        self.check_address(allow_private).await?;
        let secrets = self.secrets();
        let built = self.build();
        let (operator, key_file) = built.map_err(|error| TargetError {
            code: ErrorCode::ValidationFailed,
            message: redact(
                &format!(
                    "the {} target cannot be set up: {error}",
                    self.service.as_str()
                ),
                &secrets,
            ),
        })?;
        let operator = match self.service {
            Service::Ftp | Service::Sftp => operator,
            _ => {
                let client = guarded_client(allow_private).map_err(|error| TargetError {
                    code: ErrorCode::Internal,
                    message: error.to_string(),
                })?;
                let transport = opendal::HttpTransporter::new(
                    opendal_http_transport_reqwest::ReqwestTransport::new(client),
                );
                operator.with_context(
                    opendal::OperationContext::default().with_http_transport(transport),
                )
            }
        };
        Ok(Opened {
            operator,
            service: self.service,
            secrets,
            _key_file: key_file,
        })
    }

    fn build(&self) -> Result<(Operator, Option<tempfile::TempPath>), String> {
        let mut config: BTreeMap<String, String> = BTreeMap::new();
        let mut set = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                config.insert(key.to_owned(), value);
            }
        };
        let param = |name: &str| self.parameter(name).map(str::to_owned);
        let root = param("root").map(|root| format!("/{}", root.trim_matches('/')));
        set("root", root);
        let mut key_file = None;
        let operator = match self.service {
            Service::S3 => {
                set("bucket", param("bucket"));
                set(
                    "region",
                    Some(param("region").unwrap_or_else(|| "us-east-1".into())),
                );
                set("endpoint", param("endpoint"));
                set("disable_config_load", Some("true".into()));
                if self.parameters.get("virtual_host_style") == Some(&Value::Bool(true)) {
                    set("enable_virtual_host_style", Some("true".into()));
                }
                match self.credential("access_key_id") {
                    Some(id) => {
                        set("access_key_id", Some(id));
                        set("secret_access_key", self.credential("secret_access_key"));
                        set("session_token", self.credential("session_token"));
                    }
                    None => set("skip_signature", Some("true".into())),
                }
                Operator::from_iter::<opendal::services::S3>(config)
            }
            Service::Gcs => {
                set("bucket", param("bucket"));
                set("endpoint", param("endpoint"));
                set("disable_vm_metadata", Some("true".into()));
                set("disable_config_load", Some("true".into()));
                match (self.credential("credential"), self.credential("token")) {
                    (Some(credential), _) => set(
                        "credential",
                        Some(base64::engine::general_purpose::STANDARD.encode(credential)),
                    ),
                    (None, Some(token)) => set("token", Some(token)),
                    (None, None) => {
                        set("skip_signature", Some("true".into()));
                        set("allow_anonymous", Some("true".into()));
                    }
                }
                Operator::from_iter::<opendal::services::Gcs>(config)
            }
            Service::Azblob => {
                let account = self.credential("account_name");
                set("container", param("container"));
                set(
                    "endpoint",
                    param("endpoint").or_else(|| {
                        account
                            .as_ref()
                            .map(|account| format!("https://{account}.blob.core.windows.net"))
                    }),
                );
                set("account_name", account.clone());
                set("account_key", self.credential("account_key"));
                set("sas_token", self.credential("sas_token"));
                if account.is_none() && self.credential("sas_token").is_none() {
                    set("skip_signature", Some("true".into()));
                }
                Operator::from_iter::<opendal::services::Azblob>(config)
            }
            Service::Ftp => {
                let (host, port) = self.chosen_address().unwrap_or_default();
                let scheme = if self.parameters.get("tls") == Some(&Value::Bool(true)) {
                    "ftps"
                } else {
                    "ftp"
                };
                set("endpoint", Some(format!("{scheme}://{host}:{port}")));
                set("user", self.credential("username"));
                set("password", self.credential("password"));
                Operator::from_iter::<opendal::services::Ftp>(config)
            }
            Service::Sftp => {
                let (host, port) = self.chosen_address().unwrap_or_default();
                set("endpoint", Some(format!("ssh://{host}:{port}")));
                set("user", self.credential("username"));
                set("known_hosts_strategy", Some("accept".into()));
                // `ssh` refuses an OpenSSH-format key with CRLF line breaks or without its
                // final line break ("error in libcrypto"), as keys pasted into JSON often are.
                let mut key = self
                    .credential("private_key")
                    .unwrap_or_default()
                    .replace("\r\n", "\n");
                if !key.ends_with('\n') {
                    key.push('\n');
                }
                let mut file = tempfile::NamedTempFile::new().map_err(|error| error.to_string())?;
                std::io::Write::write_all(&mut file, key.as_bytes())
                    .map_err(|error| error.to_string())?;
                let path = file.into_temp_path();
                set("key", path.to_str().map(str::to_owned));
                key_file = Some(path);
                Operator::from_iter::<opendal::services::Sftp>(config)
            }
            Service::Gdrive | Service::Dropbox | Service::Onedrive => {
                for name in TOKENS {
                    set(name, self.credential(name));
                }
                match self.service {
                    Service::Gdrive => Operator::from_iter::<opendal::services::Gdrive>(config),
                    Service::Dropbox => Operator::from_iter::<opendal::services::Dropbox>(config),
                    _ => Operator::from_iter::<opendal::services::Onedrive>(config),
                }
            }
        };
        operator
            .map(|operator| (operator, key_file))
            .map_err(|error| error.to_string())
    }
}

/// The HTTP client of targets: the remote-input address guard, no redirects.
fn guarded_client(allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    crate::jobs::remote::tls_provider();
    reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(crate::jobs::remote::GuardedResolver {
            allow_private,
        }))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(TIMEOUT)
        .user_agent(concat!("Metamorph/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// `message` with every secret replaced by `***`.
fn redact(message: &str, secrets: &[String]) -> String {
    secrets.iter().fold(message.to_owned(), |message, secret| {
        message.replace(secret.as_str(), "***")
    })
}

/// What was written to a target.
#[derive(Debug)]
pub struct Written {
    /// Its size.
    pub size: u64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

/// What a probe of a target found.
#[derive(Debug, serde::Serialize)]
pub struct ProbeReport {
    /// Whether the probe object was written, read back and deleted.
    pub ok: bool,
    /// The probe object's path in the target.
    pub path: String,
    /// How long the round trip took, in milliseconds.
    pub took_ms: u64,
}

impl Opened {
    fn failed(&self, doing: &str, path: &str, error: &opendal::Error) -> TargetError {
        let code = if doing == "read" {
            ErrorCode::RemoteFetchFailed
        } else {
            ErrorCode::DestinationFailed
        };
        // The innermost cause says what the service answered ("Permission denied
        // (publickey)", a status line); opendal's own message is often only its kind.
        let mut cause = String::new();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            cause = inner.to_string();
            source = inner.source();
        }
        let cause: String = cause
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        let cause = if cause.is_empty() || error.message().contains(&cause) {
            String::new()
        } else {
            format!(" ({cause})")
        };
        let message = format!(
            "{} {doing} of `{path}` failed ({}): {}{cause}",
            self.service.as_str(),
            error.kind(),
            error.message()
        );
        TargetError {
            code,
            message: redact(&message, &self.secrets),
        }
    }

    /// Writes, reads back and deletes a small object under `.metamorph-probe-<uuid>`.
    pub async fn probe(&self) -> Result<ProbeReport, TargetError> {
        let started = Instant::now();
        let path = format!(".metamorph-probe-{}", uuid::Uuid::new_v4());
        let content = b"metamorph destination probe".as_slice();
        let timed = |what| TargetError {
            code: ErrorCode::DestinationFailed,
            message: format!("the {what} did not answer within {}s", TIMEOUT.as_secs()),
        };
        tokio::time::timeout(TIMEOUT, self.operator.write(&path, content))
            .await
            .map_err(|_elapsed| timed("write"))?
            .map_err(|error| self.failed("write", &path, &error))?;
        let read = tokio::time::timeout(TIMEOUT, self.operator.read(&path))
            .await
            .map_err(|_elapsed| timed("read"))?
            .map_err(|error| self.failed("write", &path, &error))?;
        if read.to_vec() != content {
            return Err(TargetError {
                code: ErrorCode::DestinationFailed,
                message: format!("`{path}` read back different bytes than were written"),
            });
        }
        tokio::time::timeout(TIMEOUT, self.operator.delete(&path))
            .await
            .map_err(|_elapsed| timed("delete"))?
            .map_err(|error| self.failed("delete", &path, &error))?;
        Ok(ProbeReport {
            ok: true,
            path,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    async fn writer(&self, path: &str) -> Result<opendal::Writer, opendal::Error> {
        match self.service {
            Service::S3 => self.operator.writer_with(path).chunk(PART_SIZE).await,
            _ => self.operator.writer(path).await,
        }
    }

    /// Writes the stream to `path`; returns the size and SHA-256 of what was written. A
    /// failed write leaves nothing behind where the service allows aborting.
    pub async fn write_stream<S>(&self, path: &str, body: S) -> Result<Written, TargetError>
    where
        S: Stream<Item = std::io::Result<Bytes>>,
    {
        let mut writer = self
            .writer(path)
            .await
            .map_err(|error| self.failed("write", path, &error))?;
        let mut body = std::pin::pin!(body);
        let mut size = 0u64;
        let mut hasher = Sha256::new();
        let result: Result<(), TargetError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|error| TargetError {
                    code: ErrorCode::Internal,
                    message: format!("cannot read the output: {error}"),
                })?;
                size += chunk.len() as u64;
                hasher.update(&chunk);
                writer
                    .write(chunk)
                    .await
                    .map_err(|error| self.failed("write", path, &error))?;
            }
            writer
                .close()
                .await
                .map_err(|error| self.failed("write", path, &error))?;
            Ok(())
        }
        .await;
        if let Err(error) = result {
            let _ = writer.abort().await;
            return Err(error);
        }
        Ok(Written {
            size,
            sha256: crate::files::ingest::hex(&hasher.finalize()),
        })
    }

    /// Writes the local file at `file` to `path`, in pieces.
    pub async fn write_file(&self, path: &str, file: &Path) -> Result<Written, TargetError> {
        let opened = tokio::fs::File::open(file)
            .await
            .map_err(|error| TargetError {
                code: ErrorCode::Internal,
                message: format!("cannot open the output: {error}"),
            })?;
        self.write_stream(path, super::file_chunks(opened, PART_SIZE))
            .await
    }

    /// The object at `path`: its size, and its bytes as a stream.
    pub async fn read(
        &self,
        path: &str,
    ) -> Result<
        (
            u64,
            impl Stream<Item = std::io::Result<Bytes>> + Send + use<>,
        ),
        TargetError,
    > {
        let meta = self
            .operator
            .stat(path)
            .await
            .map_err(|error| self.failed("read", path, &error))?;
        let size = meta.content_length();
        let reader = self
            .operator
            .reader_with(path)
            .chunk(PART_SIZE)
            .await
            .map_err(|error| self.failed("read", path, &error))?;
        let stream = reader
            .into_bytes_stream(0..size)
            .await
            .map_err(|error| self.failed("read", path, &error))?;
        Ok((size, stream))
    }
}

/// What a key template may name.
pub struct KeyValues<'a> {
    /// The job.
    pub job_id: &'a str,
    /// The output file's id.
    pub output_id: &'a str,
    /// The input's file name.
    pub input_name: &'a str,
    /// The output's file name.
    pub filename: &'a str,
    /// The target format (its usual extension).
    pub ext: &'a str,
    /// The index of the input in the job.
    pub input_index: usize,
    /// The time the output was written.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The key template used when a conversion names none.
pub const DEFAULT_KEY_TEMPLATE: &str = "{job_id}/{filename}";

/// The placeholders a key template may use.
pub const KEY_PLACEHOLDERS: &[&str] = &[
    "job_id",
    "output_id",
    "input_name",
    "filename",
    "ext",
    "input_index",
    "date",
    "timestamp",
];

/// Checks a key template: known placeholders, balanced braces, not empty.
pub fn check_key_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a `}` without its `{`".into());
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "has a `{` without its `}`".to_owned())?;
        let name = &after[..close];
        if !KEY_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "names `{{{name}}}`; the placeholders are {}",
                KEY_PLACEHOLDERS
                    .iter()
                    .map(|name| format!("{{{name}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    if template.trim_matches('/').is_empty() {
        return Err("is empty".into());
    }
    Ok(())
}

/// The object path a template gives: placeholders filled in, each value stripped of `/`
/// and `..` so a file name cannot climb out of the template's folder.
pub fn render_key(template: &str, values: &KeyValues<'_>) -> String {
    let stem = match values.input_name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => values.input_name,
    };
    let safe = |value: &str| value.replace(['/', '\\'], "_").replace("..", "_");
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let value = match &after[..close] {
            "job_id" => safe(values.job_id),
            "output_id" => safe(values.output_id),
            "input_name" => safe(stem),
            "filename" => safe(values.filename),
            "ext" => safe(values.ext),
            "input_index" => values.input_index.to_string(),
            "date" => values.now.format("%Y-%m-%d").to_string(),
            "timestamp" => values.now.format("%Y%m%dT%H%M%SZ").to_string(),
            other => format!("{{{other}}}"),
        };
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out.trim_start_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(service: &str, parameters: Value, credentials: Value) -> Target {
        let (Value::Object(parameters), Value::Object(credentials)) = (parameters, credentials)
        else {
            panic!("parameters and credentials are objects");
        };
        Target::new(Service::parse(service).unwrap(), parameters, credentials)
    }

    #[test]
    fn aliases_name_services_and_box_is_refused_clearly() {
        assert_eq!(Service::parse("aws").unwrap(), Service::S3);
        assert_eq!(Service::parse("amazons3").unwrap(), Service::S3);
        assert_eq!(Service::parse("google_drive").unwrap(), Service::Gdrive);
        assert_eq!(Service::parse("Azure").unwrap(), Service::Azblob);
        assert!(Service::parse("box").unwrap_err().contains("not supported"));
        assert!(Service::parse("nfs").unwrap_err().contains("Supported"));
        for service in Service::ALL {
            assert_eq!(Service::parse(service.as_str()).unwrap(), *service);
        }
    }

    #[test]
    fn problems_name_each_field() {
        let paths = |target: Target| -> Vec<String> {
            target
                .problems("", &[])
                .into_iter()
                .map(|problem| problem.path)
                .collect()
        };
        assert_eq!(
            paths(target("s3", json!({}), json!({"access_key_id": "AKIA"}))),
            ["/parameters/bucket", "/credentials/secret_access_key"]
        );
        assert_eq!(
            paths(target(
                "s3",
                json!({"bucket": "b", "colour": "red"}),
                json!({})
            )),
            ["/parameters/colour"]
        );
        assert_eq!(
            paths(target(
                "ftp",
                json!({"host": "h", "port": 70000}),
                json!({})
            )),
            ["/parameters/port"]
        );
        assert_eq!(
            paths(target("dropbox", json!({}), json!({"refresh_token": "r"}))),
            ["/credentials"]
        );
        assert!(paths(target("dropbox", json!({}), json!({"access_token": "t"}))).is_empty());
        assert_eq!(
            paths(target(
                "amazons3",
                json!({"bucket": "b"}),
                json!({"accesskeyid": "a", "secretaccesskey": "s"})
            )),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_service_builds_an_operator_from_a_complete_target() {
        let cases = [
            target(
                "s3",
                json!({"bucket": "b", "endpoint": "http://s3.example.com"}),
                json!({"access_key_id": "a", "secret_access_key": "s"}),
            ),
            target("gcs", json!({"bucket": "b"}), json!({"token": "t"})),
            target(
                "azblob",
                json!({"container": "c"}),
                json!({"account_name": "acct", "account_key": "a2V5"}),
            ),
            target(
                "ftp",
                json!({"host": "ftp.example.com", "port": 2121}),
                json!({"username": "u", "password": "p"}),
            ),
            target(
                "gdrive",
                json!({"root": "exports"}),
                json!({"access_token": "t"}),
            ),
            target(
                "dropbox",
                json!({}),
                json!({"refresh_token": "r", "client_id": "i", "client_secret": "s"}),
            ),
            target("onedrive", json!({}), json!({"access_token": "t"})),
        ];
        for case in cases {
            assert!(case.problems("", &[]).is_empty(), "{case:?}");
            let (operator, _) = case
                .build()
                .unwrap_or_else(|error| panic!("{case:?}: {error}"));
            assert_eq!(operator.info().scheme().to_string(), case.service.as_str());
        }
    }

    #[test]
    fn messages_lose_their_secrets() {
        let secret = "wJalrXUtnFEMI/K7MDENG".to_owned();
        assert_eq!(
            redact(&format!("signature for {secret} failed"), &[secret]),
            "signature for *** failed"
        );
        let target = target(
            "s3",
            json!({"bucket": "b"}),
            json!({"access_key_id": "AKIA1", "secret_access_key": "topsecret"}),
        );
        assert!(!format!("{target:?}").contains("topsecret"));
    }

    #[test]
    fn key_templates_fill_in_and_stay_in_their_folder() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let values = KeyValues {
            job_id: "j1",
            output_id: "o1",
            input_name: "../photo.heic",
            filename: "photo.png",
            ext: "png",
            input_index: 2,
            now,
        };
        assert_eq!(
            render_key("exports/{job_id}/{input_name}.{ext}", &values),
            "exports/j1/__photo.png"
        );
        assert_eq!(
            render_key("{date}/{input_index}-{filename}", &values),
            "2026-11-23/2-photo.png"
        );
        assert_eq!(render_key(DEFAULT_KEY_TEMPLATE, &values), "j1/photo.png");
        assert!(check_key_template("a/{job_id}/{filename}").is_ok());
        assert!(
            check_key_template("{nope}")
                .unwrap_err()
                .contains("{job_id}")
        );
        assert!(check_key_template("a{b").is_err());
        assert!(check_key_template("/").is_err());
    }
}
