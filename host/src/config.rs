//! Configuration: built-in defaults, then a TOML file, then `METAMORPH_*` environment
//! variables, each overriding the one before. This is the only module that reads the
//! environment.
//!
//! Every setting has a default, so the service starts with no file and no variables at all:
//! it listens on `127.0.0.1:8080` and keeps its SQLite database, stored files and plugins
//! under `./data`. A value that cannot be used stops start-up with a [`ConfigError`] naming
//! the key, where the value came from and what is allowed.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use figment::providers::{Format, Toml};
use figment::value::Value;
use figment::{Figment, Metadata, Profile, Provider};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// File read when `--config` is not given, if it exists in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "metamorph.toml";

/// Prefix of every environment variable the service reads.
pub const ENV_PREFIX: &str = "METAMORPH_";

/// An environment variable that overrides one configuration key.
#[derive(Clone, Copy, Debug)]
pub struct EnvVar {
    /// Full variable name.
    pub name: &'static str,
    /// Dotted key it sets in the configuration file's terms.
    pub key: &'static str,
    /// What it does and its default.
    pub help: &'static str,
}

/// Every environment variable that sets a configuration key. Documented in `--help` and the
/// README from this table.
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "METAMORPH_LISTEN",
        key: "listen",
        help: "address and port to listen on [default: 127.0.0.1:8080]",
    },
    EnvVar {
        name: "METAMORPH_DATA_DIR",
        key: "data_dir",
        help: "folder for the SQLite database, stored files and plugins [default: ./data]",
    },
    EnvVar {
        name: "METAMORPH_DATABASE_URL",
        key: "database.url",
        help: "sqlite://<path> or postgres://user:password@host:port/db \
               [default: sqlite://<data_dir>/metamorph.db]",
    },
    EnvVar {
        name: "METAMORPH_DATABASE_MAX_CONNECTIONS",
        key: "database.max_connections",
        help: "size of the database connection pool [default: 10]",
    },
    EnvVar {
        name: "METAMORPH_STORAGE_BACKEND",
        key: "storage.backend",
        help: "where stored files live: fs (a folder) or s3 (any S3-compatible service; \
               see storage.bucket, storage.endpoint…) [default: fs]",
    },
    EnvVar {
        name: "METAMORPH_STORAGE_ROOT",
        key: "storage.root",
        help: "folder of the fs storage backend [default: <data_dir>/storage]",
    },
    EnvVar {
        name: "METAMORPH_PLUGINS_DIR",
        key: "plugins.dirs",
        help: "folders where plugins are discovered, separated by `:` \
               [default: <binary's folder>/plugins:<data_dir>/plugins]",
    },
    EnvVar {
        name: "METAMORPH_SHUTDOWN_TIMEOUT",
        key: "server.shutdown_timeout",
        help: "how long SIGINT/SIGTERM waits for in-flight requests [default: 30s]",
    },
    EnvVar {
        name: "METAMORPH_JSON_BODY_LIMIT",
        key: "server.json_body_limit",
        help: "largest JSON request body accepted [default: 1 MiB]",
    },
    EnvVar {
        name: "METAMORPH_PUBLIC_URL",
        key: "server.public_url",
        help: "the service's address as clients reach it, used in download and share links \
               [default: http://<listen>]",
    },
    EnvVar {
        name: "METAMORPH_MAX_UPLOAD_SIZE",
        key: "files.max_upload_size",
        help: "largest file one upload may store [default: 10 GiB]",
    },
    EnvVar {
        name: "METAMORPH_QUOTA_BYTES",
        key: "files.quota",
        help: "bytes an organisation may keep stored, unless an admin set its own \
               [default: 20 GiB]",
    },
    EnvVar {
        name: "METAMORPH_ANONYMOUS_QUOTA_BYTES",
        key: "files.anonymous_quota",
        help: "bytes an anonymous session may keep stored [default: 1 GiB]",
    },
    EnvVar {
        name: "METAMORPH_ANONYMOUS_RETENTION",
        key: "retention.anonymous",
        help: "how long files of anonymous sessions are kept [default: 24h]",
    },
    EnvVar {
        name: "METAMORPH_WORKERS",
        key: "jobs.workers",
        help: "conversion tasks this server runs at once [default: the number of CPUs]",
    },
    EnvVar {
        name: "METAMORPH_ALLOW_PRIVATE_NETWORKS",
        key: "jobs.allow_private_networks",
        help: "let remote inputs and callbacks reach loopback, private and link-local \
               addresses [default: false]",
    },
    EnvVar {
        name: "METAMORPH_DOWNLOAD_LINK_TTL",
        key: "files.download_link_ttl",
        help: "how long a signed download link works [default: 24h]",
    },
    EnvVar {
        name: "METAMORPH_JWT_SECRET",
        key: "auth.jwt_secret",
        help: "key that signs access tokens, 32+ characters; give every instance the same \
               [default: generated into <data_dir>/secrets/jwt.key]",
    },
    EnvVar {
        name: "METAMORPH_SECRETS_KEY",
        key: "auth.secrets_key",
        help: "key that encrypts stored credentials, 32+ characters \
               [default: generated into <data_dir>/secrets/secrets.key]",
    },
    EnvVar {
        name: "METAMORPH_GATEWAY_KEY",
        key: "auth.gateway_key",
        help: "shared secret that lets a gateway send X-Auth-* identity headers [default: none]",
    },
    EnvVar {
        name: "METAMORPH_ANONYMOUS_SESSION_TTL",
        key: "auth.anonymous_session_ttl",
        help: "how long an anonymous session and its files live [default: 24h]",
    },
    EnvVar {
        name: "METAMORPH_BOOTSTRAP_ADMIN_EMAIL",
        key: "auth.bootstrap_admin_email",
        help: "creates this superuser at start-up if no superuser exists [default: none]",
    },
    EnvVar {
        name: "METAMORPH_BOOTSTRAP_ADMIN_PASSWORD",
        key: "auth.bootstrap_admin_password",
        help: "the bootstrap superuser's password (12+ characters)",
    },
];

/// Variables read by the command line itself (`--config`, `--log-format`, `--log-level`),
/// not by the configuration file.
pub const CLI_ENV_VARS: &[&str] = &["METAMORPH_CONFIG", "METAMORPH_LOG", "METAMORPH_LOG_FORMAT"];

/// The configuration file, as written by the self-hoster. Every field is optional.
///
/// `schemas/config.schema.json` is generated from this type.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Metamorph configuration file (metamorph.toml)")]
pub struct ConfigFile {
    /// Address and port the HTTP server listens on, e.g. `127.0.0.1:8080` or `[::]:8080`.
    pub listen: Option<ListenAddr>,
    /// Folder for the SQLite database, stored files and plugins. Relative paths are
    /// resolved against the working directory. Default `./data`.
    pub data_dir: Option<PathBuf>,
    /// The database.
    #[serde(default)]
    pub database: DatabaseSection,
    /// Where stored files (uploads, conversion outputs) live.
    #[serde(default)]
    pub storage: StorageSection,
    /// Where plugins are discovered.
    #[serde(default)]
    pub plugins: PluginsSection,
    /// Uploads, quotas and download links.
    #[serde(default)]
    pub files: FilesSection,
    /// Conversion jobs: workers, queue, cache, remote inputs and callbacks.
    #[serde(default)]
    pub jobs: JobsSection,
    /// HTTP server behaviour.
    #[serde(default)]
    pub server: ServerSection,
    /// Logins, tokens, anonymous sessions and the gateway.
    #[serde(default)]
    pub auth: AuthSection,
    /// Requests allowed per identity, by role and route class.
    #[serde(default)]
    pub rate_limits: RateLimitsSection,
    /// How long stored files are kept, and how often expired ones are deleted.
    #[serde(default)]
    pub retention: RetentionSection,
}

/// `[retention]`: how long stored files are kept before the sweeper deletes them. Each
/// value is a duration (`30d`, `12h`) or `forever` (kept until deleted). An organisation
/// may have its own policy, set by a superuser (`PATCH /api/admin/orgs/{org_id}`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Every file of an anonymous session, whatever its visibility. Default `24h`.
    pub anonymous: Option<Lifetime>,
    /// Files only their owner and admins may download. Default `forever`.
    pub private: Option<Lifetime>,
    /// Files every member of their organisation may download. Default `forever`.
    pub org: Option<Lifetime>,
    /// Files shared with members holding a link. Default `forever`.
    pub restricted: Option<Lifetime>,
    /// Files shared with anyone holding a link. Default `forever`.
    pub public: Option<Lifetime>,
    /// How often the sweeper deletes expired files. Default `1m`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub sweep_interval: Option<Duration>,
}

/// How long a file is kept: a duration from when it was stored, or until it is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Kept until someone deletes it.
    Forever,
    /// Deleted this long after it was stored.
    For(Duration),
}

impl Lifetime {
    /// Reads `forever` or a duration of at least one second (`90s`, `12h`, `30d`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("forever") {
            return Ok(Self::Forever);
        }
        match humantime::parse_duration(text) {
            Ok(duration) if duration >= Duration::from_secs(1) => Ok(Self::For(duration)),
            Ok(_) => Err(format!(
                "`{text}` is shorter than 1s; write e.g. 12h or 30d"
            )),
            Err(_) => Err(format!(
                "`{text}` is not a lifetime; write a duration such as 12h or 30d, or forever"
            )),
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forever => f.write_str("forever"),
            Self::For(duration) => write!(f, "{}", humantime::format_duration(*duration)),
        }
    }
}

impl Serialize for Lifetime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lifetime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Lifetime {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Lifetime".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "`forever` (kept until deleted) or a duration such as `12h` or `30d`",
            "examples": ["30d", "forever"]
        })
    }
}

/// `[auth]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Key that signs access tokens (32 or more characters). Every instance serving one
    /// database needs the same. Default: generated once into `<data_dir>/secrets/jwt.key`.
    pub jwt_secret: Option<String>,
    /// Key that encrypts stored credentials (32 or more characters). Default: generated once
    /// into `<data_dir>/secrets/secrets.key`.
    pub secrets_key: Option<String>,
    /// Lifetime of an access token. Default `15m`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub access_token_ttl: Option<Duration>,
    /// Lifetime of a refresh token. Default `30d`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub refresh_token_ttl: Option<Duration>,
    /// How long an anonymous session and everything in its organisation live. Default `24h`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub anonymous_session_ttl: Option<Duration>,
    /// How often expired anonymous sessions and tokens are deleted. Default `1m`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub cleanup_interval: Option<Duration>,
    /// Shared secret a gateway sends as `X-Gateway-Key` to have its `X-Auth-Org-Id`,
    /// `X-Auth-User-Id` and `X-Auth-Role` headers trusted. Unset: those headers are ignored.
    pub gateway_key: Option<String>,
    /// Creates this superuser at start-up when no superuser exists.
    pub bootstrap_admin_email: Option<String>,
    /// Password of the bootstrap superuser (12 or more characters).
    pub bootstrap_admin_password: Option<String>,
}

/// `[rate_limits]`: one table per role, plus `unauthenticated` for calls without credentials.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsSection {
    /// Calls without credentials, keyed by client IP.
    pub unauthenticated: Option<ClassQuotasSection>,
    /// Anonymous sessions.
    pub anonymous: Option<ClassQuotasSection>,
    /// Read-only demo accounts.
    pub demo: Option<ClassQuotasSection>,
    /// Members.
    pub member: Option<ClassQuotasSection>,
    /// Admins.
    pub admin: Option<ClassQuotasSection>,
    /// Superusers.
    pub superuser: Option<ClassQuotasSection>,
}

/// Quotas of one role, by route class, each written `<count>/<period>` (`600/1m`, `5/2s`) or
/// `unlimited`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassQuotasSection {
    /// `GET` requests.
    pub reads: Option<QuotaSpec>,
    /// Requests that change state.
    pub writes: Option<QuotaSpec>,
    /// Requests that start conversions.
    pub conversions: Option<QuotaSpec>,
}

/// A request quota: `count` requests per `period`, refilled evenly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "String")]
pub enum QuotaSpec {
    /// No limit.
    Unlimited,
    /// At most `count` per `period`.
    Limited {
        /// Requests per period (also the burst).
        count: u32,
        /// The period.
        #[serde(with = "humantime_serde")]
        period: Duration,
    },
}

impl QuotaSpec {
    /// `count` per minute.
    pub const fn per_minute(count: u32) -> Self {
        Self::Limited {
            count,
            period: Duration::from_secs(60),
        }
    }
}

impl<'de> Deserialize<'de> for QuotaSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = StringOrNumber::deserialize(deserializer)?.0;
        let invalid = || {
            serde::de::Error::custom(format!(
                "`{text}` is not a quota; write <count>/<period> such as 600/1m or 5/2s, or unlimited"
            ))
        };
        if text.trim() == "unlimited" {
            return Ok(Self::Unlimited);
        }
        let (count, period) = text.split_once('/').ok_or_else(invalid)?;
        let count: u32 = count.trim().parse().map_err(|_bad_count| invalid())?;
        let period = humantime::parse_duration(period.trim()).map_err(|_bad_period| invalid())?;
        if count == 0 || period.is_zero() {
            return Err(invalid());
        }
        Ok(Self::Limited { count, period })
    }
}

/// `[database]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://<path>` (the default: `sqlite://<data_dir>/metamorph.db`) or
    /// `postgres://user:password@host:port/database`.
    pub url: Option<String>,
    /// Most connections the pool opens. Default 10.
    pub max_connections: Option<u32>,
    /// How long to wait for a connection before the request fails. Default `5s`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub connect_timeout: Option<Duration>,
    /// SQLite only: how long a writer waits for the database lock. Default `5s`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub busy_timeout: Option<Duration>,
}

/// `[storage]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Storage service: `fs` (a local folder, the default) or `s3` (any S3-compatible
    /// service).
    pub backend: Option<StorageBackend>,
    /// `fs`: the folder. Default `<data_dir>/storage`.
    pub root: Option<PathBuf>,
    /// `s3`: the bucket (required).
    pub bucket: Option<String>,
    /// `s3`: the region. Default `us-east-1`.
    pub region: Option<String>,
    /// `s3`: the service's URL, for S3-compatible services other than AWS (e.g.
    /// `http://127.0.0.1:8333`). Default: AWS's endpoint of the region.
    pub endpoint: Option<String>,
    /// `s3`: a folder inside the bucket that holds everything, e.g. `metamorph/`.
    /// Default: the bucket's root.
    pub prefix: Option<String>,
    /// `s3`: the access key id. Default: the environment's AWS credentials.
    pub access_key_id: Option<String>,
    /// `s3`: the secret access key.
    pub secret_access_key: Option<String>,
    /// `s3`: address buckets as `bucket.host` instead of `host/bucket` (path style, the
    /// default, which S3-compatible services expect). Default `false`.
    pub virtual_host_style: Option<bool>,
}

/// Storage services the service can keep its files in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A local folder.
    Fs,
    /// An S3-compatible service.
    S3,
}

/// `[files]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesSection {
    /// Largest file one upload may store. Default `10 GiB`.
    #[schemars(with = "Option<String>")]
    pub max_upload_size: Option<ByteSize>,
    /// Bytes an organisation may keep stored, unless its record sets its own. Default
    /// `20 GiB`.
    #[schemars(with = "Option<String>")]
    pub quota: Option<ByteSize>,
    /// Bytes an anonymous session may keep stored. Default `1 GiB`.
    #[schemars(with = "Option<String>")]
    pub anonymous_quota: Option<ByteSize>,
    /// How long a signed download link (`?dl=`) works. Default `24h`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub download_link_ttl: Option<Duration>,
}

/// `[jobs]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsSection {
    /// Conversion tasks this server runs at once. `0` runs none: the server only takes
    /// requests and other instances sharing its database do the work. Default: the number
    /// of CPUs.
    pub workers: Option<usize>,
    /// How often an idle worker looks for queued work in the database (work queued on
    /// this server wakes it at once). Default `500ms`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub poll_interval: Option<Duration>,
    /// How long a claimed task stays its worker's without a heartbeat; a task whose server
    /// died is taken again after this. Default `30s`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub lease: Option<Duration>,
    /// Tasks of one plugin and pair running at once on this server. Default: `workers`.
    pub max_running_per_pair: Option<usize>,
    /// Tasks of one plugin and pair waiting in the queue before new jobs for it are
    /// refused with 429. Default `1000`.
    pub max_queued_per_pair: Option<usize>,
    /// Reuse the output of an identical earlier conversion (same input bytes, plugins,
    /// target and options) instead of running it again. Default `true`.
    pub cache: Option<bool>,
    /// Let remote inputs and callbacks reach loopback, private and link-local addresses.
    /// Default `false`.
    pub allow_private_networks: Option<bool>,
    /// Longest download of a remote input. Default `5m`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub remote_timeout: Option<Duration>,
    /// Redirects followed when fetching a remote input. Default `5`.
    pub remote_max_redirects: Option<usize>,
    /// Attempts to deliver one callback before giving up. Default `8`.
    pub callback_attempts: Option<u32>,
    /// Wait before the first retry of a failed callback; doubled at each retry, with
    /// jitter. Default `5s`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub callback_retry_base: Option<Duration>,
    /// Time a callback receiver has to answer. Default `10s`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub callback_timeout: Option<Duration>,
}

/// `[plugins]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    /// Folders searched for plugins, in order. Default: `plugins` beside the binary, then
    /// `<data_dir>/plugins`. The environment variable separates folders with `:`.
    pub dirs: Option<PathList>,
    /// Memory a conversion task may use, at least `16 MiB`. Default `512 MiB`.
    #[schemars(with = "Option<String>")]
    pub memory_limit: Option<ByteSize>,
    /// Wall-clock time a conversion task may take. Default `60s`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub time_limit: Option<Duration>,
    /// Largest output of a conversion task. Default `2 GiB`.
    #[schemars(with = "Option<String>")]
    pub output_limit: Option<ByteSize>,
    /// How often the plugin folders are checked for added, changed or removed plugins.
    /// Default `1s`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub reload_interval: Option<Duration>,
    /// Idle worker processes kept per native plugin. Default 2.
    pub native_workers: Option<u32>,
    /// Limits of one plugin, by its name, overriding the ones above.
    #[serde(default)]
    pub limits: std::collections::BTreeMap<String, PluginLimitsSection>,
}

/// `[plugins.limits.<name>]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginLimitsSection {
    /// Memory a task of this plugin may use, at least `16 MiB`.
    #[schemars(with = "Option<String>")]
    pub memory: Option<ByteSize>,
    /// Time a task of this plugin may take.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub time: Option<Duration>,
    /// Largest output of a task of this plugin.
    #[schemars(with = "Option<String>")]
    pub output: Option<ByteSize>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// How long SIGINT/SIGTERM waits for in-flight requests before exiting. Default `30s`.
    #[serde(default, with = "humantime_serde::option")]
    #[schemars(with = "Option<String>")]
    pub shutdown_timeout: Option<Duration>,
    /// Largest JSON request body, e.g. `1 MiB` or a number of bytes. Default `1 MiB`.
    #[schemars(with = "Option<String>")]
    pub json_body_limit: Option<ByteSize>,
    /// The service's address as clients reach it (scheme, host, port and any path prefix),
    /// used to make download and share links, e.g. `https://convert.example.com`.
    /// Default `http://<listen>`.
    pub public_url: Option<String>,
}

/// A socket address, with an error message that says what one looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(with = "String")]
pub struct ListenAddr(pub SocketAddr);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = StringOrNumber::deserialize(deserializer)?.0;
        text.parse().map(ListenAddr).map_err(|_invalid| {
            serde::de::Error::custom(format!(
                "`{text}` is not an address to listen on; expected an IP address and a port \
                 such as 127.0.0.1:8080, 0.0.0.0:8080 or [::]:8080"
            ))
        })
    }
}

/// A list of folders, written as a TOML array or as one string separated by `:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(with = "Vec<PathBuf>")]
pub struct PathList(pub Vec<PathBuf>);

impl<'de> Deserialize<'de> for PathList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            untagged,
            expecting = "a list of folders, or one string of folders separated by `:`"
        )]
        enum Raw {
            One(String),
            Many(Vec<PathBuf>),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::One(joined) => PathList(
                std::env::split_paths(&OsString::from(joined))
                    .filter(|path| !path.as_os_str().is_empty())
                    .collect(),
            ),
            Raw::Many(paths) => PathList(paths),
        })
    }
}

/// Accepts a string, or a number given where a string was meant (`METAMORPH_LISTEN=8080`
/// arrives as a number), so the error can say what a valid value looks like.
struct StringOrNumber(String);

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Signed(i64),
            Unsigned(u64),
            Float(f64),
        }
        Ok(StringOrNumber(match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Signed(number) => number.to_string(),
            Raw::Unsigned(number) => number.to_string(),
            Raw::Float(number) => number.to_string(),
        }))
    }
}

/// The effective configuration, every default filled in and every path absolute.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Folder for the database, stored files and plugins.
    pub data_dir: PathBuf,
    /// The database.
    pub database: DatabaseConfig,
    /// The storage of files.
    pub storage: StorageConfig,
    /// Plugin discovery.
    pub plugins: PluginsConfig,
    /// Uploads, quotas and links.
    pub files: FilesConfig,
    /// Conversion jobs.
    pub jobs: JobsConfig,
    /// HTTP server behaviour.
    pub server: ServerConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Request quotas.
    pub rate_limits: RateLimitsConfig,
    /// How long stored files are kept.
    pub retention: RetentionConfig,
    /// The file this configuration was read from, if any.
    #[serde(skip)]
    pub file: Option<PathBuf>,
    /// Problems that did not stop start-up (unknown variables), to log once logging is up.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Database settings.
#[derive(Clone, Debug, Serialize)]
pub struct DatabaseConfig {
    /// Which database and where.
    pub url: DatabaseUrl,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a pooled connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// SQLite lock wait.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

/// Which database the service uses.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL server, by its libpq connection URL.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `sqlite://<path>`, `sqlite:<path>`, `postgres://…` or `postgresql://…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
        {
            if path.is_empty() || path.contains('?') || path == ":memory:" {
                return Err(format!(
                    "`{text}` does not name an SQLite file; write sqlite://<path>, e.g. \
                     sqlite://./data/metamorph.db"
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(text.to_owned()));
        }
        Err(format!(
            "`{}` is not a supported database URL; use sqlite://<path> or \
             postgres://user:password@host:port/database",
            redact_password(text)
        ))
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

impl fmt::Display for DatabaseUrl {
    /// Shows the URL with any password replaced, so it can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Replaces the password of `scheme://user:password@host…` with `***`.
pub fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |offset| authority_start + offset);
    let authority = &url[authority_start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..authority_start],
        &userinfo[..colon],
        &url[authority_start + at..]
    )
}

/// Storage settings.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StorageConfig {
    /// A local folder.
    Fs {
        /// The folder.
        root: PathBuf,
    },
    /// An S3-compatible service.
    S3(S3Config),
}

/// Where the `s3` backend keeps objects.
#[derive(Clone, Debug, Serialize)]
pub struct S3Config {
    /// Bucket.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Service URL, when not AWS.
    pub endpoint: Option<String>,
    /// Folder in the bucket (`/`-terminated, or empty).
    pub prefix: String,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// `bucket.host` addressing.
    pub virtual_host_style: bool,
}

/// Plugin settings.
#[derive(Clone, Debug, Serialize)]
pub struct PluginsConfig {
    /// Folders searched for plugins, in order.
    pub dirs: Vec<PathBuf>,
    /// Where compiled plugins are cached.
    pub cache_dir: PathBuf,
    /// Where conversion tasks keep their files.
    pub work_dir: PathBuf,
    /// Limits of a task unless its plugin has its own.
    pub limits: TaskLimits,
    /// Limits by plugin name.
    pub plugin_limits: std::collections::BTreeMap<String, TaskLimits>,
    /// How often the folders are checked.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Idle workers per native plugin.
    pub native_workers: u32,
}

/// Uploads, quotas and download links.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FilesConfig {
    /// Largest upload, in bytes.
    pub max_upload_size: u64,
    /// Default storage quota of an organisation, in bytes.
    pub quota: u64,
    /// Storage quota of an anonymous session, in bytes.
    pub anonymous_quota: u64,
    /// Lifetime of a signed download link.
    #[serde(with = "humantime_serde")]
    pub download_link_ttl: Duration,
}

/// How long stored files are kept, by kind of organisation and visibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RetentionConfig {
    /// Files of anonymous sessions.
    pub anonymous: Lifetime,
    /// `private` files of registered organisations.
    pub private: Lifetime,
    /// `org` files.
    pub org: Lifetime,
    /// `restricted` files.
    pub restricted: Lifetime,
    /// `public` files.
    pub public: Lifetime,
    /// Interval of the sweeper.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
}

impl RetentionConfig {
    /// The lifetime of a registered organisation's files of `visibility` (`private` for
    /// an unknown one).
    pub fn for_visibility(&self, visibility: &str) -> Lifetime {
        match visibility {
            "org" => self.org,
            "restricted" => self.restricted,
            "public" => self.public,
            _ => self.private,
        }
    }
}

/// Conversion jobs: workers, queue, cache, remote inputs and callbacks.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct JobsConfig {
    /// Tasks run at once by this server.
    pub workers: usize,
    /// Idle workers look for work this often.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Lease of a claimed task.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Running tasks per plugin and pair.
    pub max_running_per_pair: usize,
    /// Queued tasks per plugin and pair before 429.
    pub max_queued_per_pair: usize,
    /// Whether outputs are reused.
    pub cache: bool,
    /// Whether remote inputs and callbacks may reach private addresses.
    pub allow_private_networks: bool,
    /// Longest remote download.
    #[serde(with = "humantime_serde")]
    pub remote_timeout: Duration,
    /// Redirects followed.
    pub remote_max_redirects: usize,
    /// Attempts per callback.
    pub callback_attempts: u32,
    /// First retry wait.
    #[serde(with = "humantime_serde")]
    pub callback_retry_base: Duration,
    /// Receiver's time to answer.
    #[serde(with = "humantime_serde")]
    pub callback_timeout: Duration,
}

/// The smallest memory limit a task may be given, globally or for one plugin: a plugin may
/// count on having this much.
pub const MIN_TASK_MEMORY: u64 = 16 * 1024 * 1024;

/// Limits of one conversion task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TaskLimits {
    /// Memory, in bytes.
    pub memory: u64,
    /// Wall-clock time.
    #[serde(with = "humantime_serde")]
    pub time: Duration,
    /// Output size, in bytes.
    pub output: u64,
}

/// HTTP server settings.
#[derive(Clone, Debug, Serialize)]
pub struct ServerConfig {
    /// Drain time on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Largest JSON request body, in bytes.
    pub json_body_limit: u64,
    /// Base of the links given to clients, without a trailing `/`; `None` until the
    /// server knows the address it listens on, when not configured.
    pub public_url: Option<String>,
}

/// Authentication settings.
#[derive(Clone, Debug, Serialize)]
pub struct AuthConfig {
    /// Signs access tokens; `None`: the key file in the data folder.
    pub jwt_secret: Option<Secret>,
    /// Encrypts stored credentials; `None`: the key file in the data folder.
    pub secrets_key: Option<Secret>,
    /// Access token lifetime.
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// Refresh token lifetime.
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// Anonymous session lifetime.
    #[serde(with = "humantime_serde")]
    pub anonymous_session_ttl: Duration,
    /// Interval of the cleanup of expired sessions.
    #[serde(with = "humantime_serde")]
    pub cleanup_interval: Duration,
    /// Gateway shared secret, if gateways are trusted.
    pub gateway_key: Option<Secret>,
    /// Superuser to create at start-up when none exists: `(email, password)`.
    pub bootstrap_admin: Option<(String, Secret)>,
}

/// Request quotas by role and route class.
#[derive(Clone, Debug, Serialize)]
pub struct RateLimitsConfig {
    /// Calls without credentials.
    pub unauthenticated: ClassQuotas,
    /// Anonymous sessions.
    pub anonymous: ClassQuotas,
    /// Demo accounts.
    pub demo: ClassQuotas,
    /// Members.
    pub member: ClassQuotas,
    /// Admins.
    pub admin: ClassQuotas,
    /// Superusers.
    pub superuser: ClassQuotas,
}

/// The quotas of one role.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ClassQuotas {
    /// `GET` requests.
    pub reads: QuotaSpec,
    /// State-changing requests.
    pub writes: QuotaSpec,
    /// Conversion requests.
    pub conversions: QuotaSpec,
}

impl ClassQuotas {
    fn per_minute(reads: u32, writes: u32, conversions: u32) -> Self {
        Self {
            reads: QuotaSpec::per_minute(reads),
            writes: QuotaSpec::per_minute(writes),
            conversions: QuotaSpec::per_minute(conversions),
        }
    }

    fn overridden(self, section: Option<ClassQuotasSection>) -> Self {
        let Some(section) = section else { return self };
        Self {
            reads: section.reads.unwrap_or(self.reads),
            writes: section.writes.unwrap_or(self.writes),
            conversions: section.conversions.unwrap_or(self.conversions),
        }
    }
}

/// A secret value: shown as `***` by `Debug` and `config show`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl Config {
    /// Loads the configuration: `explicit_file` if given (it must exist), else
    /// `metamorph.toml` in the working directory if present, then the environment.
    pub fn load(explicit_file: Option<&Path>) -> Result<Self, ConfigError> {
        let environment: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        let file = match explicit_file {
            Some(path) => match path.try_exists() {
                Ok(true) => Some(path.to_path_buf()),
                Ok(false) => {
                    return Err(ConfigError::new(format!(
                        "configuration file `{}` does not exist",
                        path.display()
                    )));
                }
                Err(error) => {
                    return Err(ConfigError::new(format!(
                        "cannot read configuration file `{}`: {error}",
                        path.display()
                    )));
                }
            },
            None => {
                let default = PathBuf::from(DEFAULT_CONFIG_FILE);
                default.try_exists().unwrap_or(false).then_some(default)
            }
        };
        Self::from_sources(file, &environment)
    }

    /// Builds the configuration from a file and a set of `METAMORPH_*` variables.
    pub fn from_sources(
        file: Option<PathBuf>,
        environment: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = &file {
            figment = figment.merge(Toml::file_exact(path));
        }
        for (name, value) in environment {
            if let Some(key) = env_key(name) {
                figment = figment.merge(EnvVarProvider {
                    name: name.clone(),
                    key,
                    value: value.clone(),
                });
            }
        }
        let raw: ConfigFile = figment
            .extract()
            .map_err(|error| explain(&error, file.as_deref()))?;

        let mut warnings = Vec::new();
        for (name, _) in environment {
            let known = env_key(name).is_some() || CLI_ENV_VARS.contains(&name.as_str());
            if !known {
                warnings.push(unknown_variable_warning(name));
            }
        }
        let mut config = resolve(raw, &figment, file.as_deref())?;
        config.file = file;
        config.warnings = warnings;
        Ok(config)
    }

    /// The configuration as TOML, with secrets redacted (for `metamorph config show`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# cannot render: {error}\n"))
    }
}

/// The configuration key a variable sets: from [`ENV_VARS`], or for any other key of the
/// file, `METAMORPH_` followed by the key's path in capitals with `__` between sections
/// (`METAMORPH_RATE_LIMITS__MEMBER__READS` sets `rate_limits.member.reads`).
fn env_key(name: &str) -> Option<String> {
    if let Some(var) = ENV_VARS.iter().find(|var| var.name == name) {
        return Some(var.key.to_owned());
    }
    let path = name.strip_prefix(ENV_PREFIX)?;
    path.contains("__")
        .then(|| path.to_ascii_lowercase().replace("__", "."))
}

/// One `METAMORPH_*` variable as a figment source, named after the variable so that errors
/// can say where a bad value came from.
struct EnvVarProvider {
    name: String,
    key: String,
    value: String,
}

impl Provider for EnvVarProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(&self) -> Result<figment::value::Map<Profile, figment::value::Dict>, figment::Error> {
        // Parsed the way figment parses any environment variable: numbers and booleans
        // become such, everything else stays a string.
        let value: Value = self.value.parse().unwrap_or_else(|never| match never {});
        let dict = figment::util::nest(&self.key, value)
            .into_dict()
            .unwrap_or_default();
        Ok(Profile::Default.collect(dict))
    }
}

fn unknown_variable_warning(name: &str) -> String {
    let suggestion = ENV_VARS
        .iter()
        .map(|var| (strsim_distance(var.name, name), var.name))
        .min()
        .filter(|(distance, _)| *distance <= 3)
        .map(|(_, known)| format!(" (did you mean {known}?)"))
        .unwrap_or_default();
    format!("ignoring unknown environment variable {name}{suggestion}")
}

/// Levenshtein distance, for "did you mean" hints.
fn strsim_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Names where a value came from, for error messages.
fn source_of(figment: &Figment, key: &str, file: Option<&Path>) -> String {
    match figment.find_metadata(key) {
        Some(metadata) if metadata.source.is_none() => metadata.name.to_string(),
        Some(_) => file.map_or_else(
            || "the configuration file".to_owned(),
            |path| format!("configuration file {}", path.display()),
        ),
        None => "the default".to_owned(),
    }
}

/// Turns a figment extraction error into a message that names the key and its source.
fn explain(error: &figment::Error, file: Option<&Path>) -> ConfigError {
    let mut messages = Vec::new();
    for error in error.clone() {
        let key = error.path.join(".");
        let source = match &error.metadata {
            Some(metadata) => metadata.source.as_ref().map_or_else(
                || metadata.name.to_string(),
                |source| format!("configuration file {source}"),
            ),
            None => file.map_or_else(
                || "configuration".to_owned(),
                |path| format!("configuration file {}", path.display()),
            ),
        };
        let what = figment_kind_message(&error.kind);
        messages.push(if key.is_empty() {
            format!("invalid configuration in {source}: {what}")
        } else {
            format!("invalid configuration value for `{key}` (from {source}): {what}")
        });
    }
    ConfigError::new(messages.join("\n"))
}

fn figment_kind_message(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::UnknownField(field, expected) => format!(
            "unknown key `{field}`; the keys allowed here are {}",
            expected
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Fills in defaults, validates, and makes paths absolute.
fn resolve(raw: ConfigFile, figment: &Figment, file: Option<&Path>) -> Result<Config, ConfigError> {
    let invalid = |key: &str, message: String| {
        ConfigError::new(format!(
            "invalid configuration value for `{key}` (from {}): {message}",
            source_of(figment, key, file)
        ))
    };
    let absolute = |key: &str, path: PathBuf| {
        std::path::absolute(&path)
            .map_err(|error| invalid(key, format!("cannot resolve `{}`: {error}", path.display())))
    };

    let listen = raw
        .listen
        .map_or(SocketAddr::from(([127, 0, 0, 1], 8080)), |addr| addr.0);
    let data_dir = absolute(
        "data_dir",
        raw.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
    )?;

    let url = match raw.database.url {
        Some(text) => {
            match DatabaseUrl::parse(&text).map_err(|message| invalid("database.url", message))? {
                DatabaseUrl::Sqlite(path) => DatabaseUrl::Sqlite(absolute("database.url", path)?),
                postgres @ DatabaseUrl::Postgres(_) => postgres,
            }
        }
        None => DatabaseUrl::Sqlite(data_dir.join("metamorph.db")),
    };
    let max_connections = raw.database.max_connections.unwrap_or(10);
    if !(1..=1000).contains(&max_connections) {
        return Err(invalid(
            "database.max_connections",
            format!("{max_connections} is out of range; allowed are 1 to 1000"),
        ));
    }
    let positive = |key: &str, value: Option<Duration>, default: Duration| match value {
        Some(duration) if duration.is_zero() => Err(invalid(
            key,
            "must be longer than zero, e.g. `5s`".to_owned(),
        )),
        Some(duration) => Ok(duration),
        None => Ok(default),
    };
    let database = DatabaseConfig {
        url,
        max_connections,
        connect_timeout: positive(
            "database.connect_timeout",
            raw.database.connect_timeout,
            Duration::from_secs(5),
        )?,
        busy_timeout: positive(
            "database.busy_timeout",
            raw.database.busy_timeout,
            Duration::from_secs(5),
        )?,
    };

    let storage = match raw.storage.backend.unwrap_or(StorageBackend::Fs) {
        StorageBackend::Fs => StorageConfig::Fs {
            root: absolute(
                "storage.root",
                raw.storage.root.unwrap_or_else(|| data_dir.join("storage")),
            )?,
        },
        StorageBackend::S3 => {
            let section = raw.storage;
            let bucket = section
                .bucket
                .filter(|bucket| !bucket.is_empty())
                .ok_or_else(|| {
                    invalid(
                        "storage.bucket",
                        "is required with backend = \"s3\"; name the bucket to keep files in \
                     (METAMORPH_STORAGE__BUCKET)"
                            .into(),
                    )
                })?;
            if let Some(endpoint) = &section.endpoint
                && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            {
                return Err(invalid(
                    "storage.endpoint",
                    format!("`{endpoint}` is not an http(s) URL such as https://s3.example.com"),
                ));
            }
            if section.access_key_id.is_some() != section.secret_access_key.is_some() {
                return Err(invalid(
                    "storage.access_key_id",
                    "and storage.secret_access_key go together; set both or neither".into(),
                ));
            }
            let prefix = section
                .prefix
                .unwrap_or_default()
                .trim_matches('/')
                .to_owned();
            StorageConfig::S3(S3Config {
                bucket,
                region: section.region.unwrap_or_else(|| "us-east-1".into()),
                endpoint: section.endpoint,
                prefix: if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                },
                access_key_id: section.access_key_id,
                secret_access_key: section.secret_access_key.map(Secret::new),
                virtual_host_style: section.virtual_host_style.unwrap_or(false),
            })
        }
    };

    let task_limits = TaskLimits {
        memory: raw
            .plugins
            .memory_limit
            .map_or(512 * 1024 * 1024, |size| size.as_u64()),
        time: raw.plugins.time_limit.unwrap_or(Duration::from_secs(60)),
        output: raw
            .plugins
            .output_limit
            .map_or(2 * 1024 * 1024 * 1024, |size| size.as_u64()),
    };
    let too_small = || {
        format!(
            "is too small for any plugin; allowed is {} MiB or more",
            MIN_TASK_MEMORY >> 20
        )
    };
    if task_limits.memory < MIN_TASK_MEMORY {
        return Err(invalid("plugins.memory_limit", too_small()));
    }
    let plugin_limits = raw
        .plugins
        .limits
        .iter()
        .map(|(name, section)| {
            let limits = TaskLimits {
                memory: section
                    .memory
                    .map_or(task_limits.memory, |size| size.as_u64()),
                time: section.time.unwrap_or(task_limits.time),
                output: section
                    .output
                    .map_or(task_limits.output, |size| size.as_u64()),
            };
            if limits.memory < MIN_TASK_MEMORY {
                return Err(invalid(
                    &format!("plugins.limits.{name}.memory"),
                    too_small(),
                ));
            }
            Ok((name.clone(), limits))
        })
        .collect::<Result<_, _>>()?;
    let reload_interval = raw
        .plugins
        .reload_interval
        .unwrap_or(Duration::from_secs(1));
    let native_workers = raw.plugins.native_workers.unwrap_or(2).clamp(1, 64);
    let plugin_dirs = match raw.plugins.dirs {
        Some(PathList(dirs)) => dirs
            .into_iter()
            .map(|dir| absolute("plugins.dirs", dir))
            .collect::<Result<Vec<_>, _>>()?,
        None => default_plugin_dirs(&data_dir),
    };

    let json_body_limit = raw
        .server
        .json_body_limit
        .map_or(1024 * 1024, |size| size.as_u64());
    if json_body_limit < 1024 {
        return Err(invalid(
            "server.json_body_limit",
            format!("{json_body_limit} bytes is too small; allowed is 1 KiB or more"),
        ));
    }
    let server = ServerConfig {
        shutdown_timeout: raw
            .server
            .shutdown_timeout
            .unwrap_or(Duration::from_secs(30)),
        json_body_limit,
        public_url: resolve_public_url(raw.server.public_url, &invalid)?,
    };

    let files = resolve_files(&raw.files, &invalid)?;
    let jobs = resolve_jobs(&raw.jobs, &invalid)?;

    let auth = resolve_auth(raw.auth, &invalid)?;
    let kept = |value: Option<Lifetime>| value.unwrap_or(Lifetime::Forever);
    let retention = RetentionConfig {
        anonymous: raw
            .retention
            .anonymous
            .unwrap_or(Lifetime::For(Duration::from_secs(24 * 3600))),
        private: kept(raw.retention.private),
        org: kept(raw.retention.org),
        restricted: kept(raw.retention.restricted),
        public: kept(raw.retention.public),
        sweep_interval: raw
            .retention
            .sweep_interval
            .unwrap_or(Duration::from_secs(60)),
    };
    if retention.sweep_interval < Duration::from_secs(1) {
        return Err(invalid(
            "retention.sweep_interval",
            "must be at least 1s, e.g. 1m".into(),
        ));
    }
    let limits = raw.rate_limits;
    let rate_limits = RateLimitsConfig {
        unauthenticated: ClassQuotas::per_minute(120, 30, 10).overridden(limits.unauthenticated),
        anonymous: ClassQuotas::per_minute(600, 300, 60).overridden(limits.anonymous),
        demo: ClassQuotas::per_minute(600, 60, 10).overridden(limits.demo),
        member: ClassQuotas::per_minute(1200, 600, 120).overridden(limits.member),
        admin: ClassQuotas::per_minute(1200, 600, 120).overridden(limits.admin),
        superuser: ClassQuotas::per_minute(6000, 3000, 600).overridden(limits.superuser),
    };

    let plugins = PluginsConfig {
        dirs: plugin_dirs,
        cache_dir: data_dir.join("cache").join("plugins"),
        work_dir: data_dir.join("work"),
        limits: task_limits,
        plugin_limits,
        reload_interval,
        native_workers,
    };

    Ok(Config {
        listen,
        data_dir,
        database,
        storage,
        plugins,
        files,
        jobs,
        server,
        auth,
        rate_limits,
        retention,
        file: None,
        warnings: Vec::new(),
    })
}

fn resolve_public_url(
    raw: Option<String>,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<String>, ConfigError> {
    let Some(url) = raw else {
        return Ok(None);
    };
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(['?', '#', ' ']) => {
            Ok(Some(trimmed.to_owned()))
        }
        _ => Err(invalid(
            "server.public_url",
            format!(
                "`{url}` is not a base URL; write http(s)://host[:port][/prefix], \
                 e.g. https://convert.example.com"
            ),
        )),
    }
}

fn resolve_files(
    raw: &FilesSection,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<FilesConfig, ConfigError> {
    let size = |value: Option<ByteSize>, default: u64| value.map_or(default, |size| size.as_u64());
    let files = FilesConfig {
        max_upload_size: size(raw.max_upload_size, 10 << 30),
        quota: size(raw.quota, 20 << 30),
        anonymous_quota: size(raw.anonymous_quota, 1 << 30),
        download_link_ttl: raw
            .download_link_ttl
            .unwrap_or(Duration::from_secs(24 * 3600)),
    };
    if files.max_upload_size == 0 {
        return Err(invalid(
            "files.max_upload_size",
            "0 bytes allows no upload; allowed is 1 byte or more".into(),
        ));
    }
    if files.download_link_ttl < Duration::from_secs(1) {
        return Err(invalid(
            "files.download_link_ttl",
            "must be at least 1s, e.g. 15m or 24h".into(),
        ));
    }
    Ok(files)
}

fn resolve_jobs(
    raw: &JobsSection,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<JobsConfig, ConfigError> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let workers = raw.workers.unwrap_or(cpus);
    let jobs = JobsConfig {
        workers,
        poll_interval: raw.poll_interval.unwrap_or(Duration::from_millis(500)),
        lease: raw.lease.unwrap_or(Duration::from_secs(30)),
        max_running_per_pair: raw.max_running_per_pair.unwrap_or(workers.max(1)),
        max_queued_per_pair: raw.max_queued_per_pair.unwrap_or(1000),
        cache: raw.cache.unwrap_or(true),
        allow_private_networks: raw.allow_private_networks.unwrap_or(false),
        remote_timeout: raw.remote_timeout.unwrap_or(Duration::from_secs(300)),
        remote_max_redirects: raw.remote_max_redirects.unwrap_or(5),
        callback_attempts: raw.callback_attempts.unwrap_or(8),
        callback_retry_base: raw.callback_retry_base.unwrap_or(Duration::from_secs(5)),
        callback_timeout: raw.callback_timeout.unwrap_or(Duration::from_secs(10)),
    };
    if jobs.lease < Duration::from_secs(1) {
        return Err(invalid(
            "jobs.lease",
            "must be at least 1s; a worker renews it every third of its length".into(),
        ));
    }
    if jobs.poll_interval < Duration::from_millis(10) {
        return Err(invalid(
            "jobs.poll_interval",
            "must be at least 10ms, e.g. 500ms".into(),
        ));
    }
    if jobs.max_running_per_pair == 0 || jobs.max_queued_per_pair == 0 {
        return Err(invalid(
            "jobs.max_running_per_pair",
            "and jobs.max_queued_per_pair must be 1 or more".into(),
        ));
    }
    if jobs.callback_attempts == 0 {
        return Err(invalid(
            "jobs.callback_attempts",
            "must be 1 or more".into(),
        ));
    }
    Ok(jobs)
}

fn resolve_auth(
    raw: AuthSection,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<AuthConfig, ConfigError> {
    let key = |name: &str, value: Option<String>| match value {
        Some(value) if value.chars().count() < 32 => Err(invalid(
            name,
            "is too short to be safe; use 32 or more random characters \
             (e.g. the output of `openssl rand -base64 32`)"
                .to_owned(),
        )),
        other => Ok(other.map(Secret)),
    };
    let jwt_secret = key("auth.jwt_secret", raw.jwt_secret)?;
    let secrets_key = key("auth.secrets_key", raw.secrets_key)?;
    let gateway_key = key("auth.gateway_key", raw.gateway_key)?;
    let bootstrap_admin = match (raw.bootstrap_admin_email, raw.bootstrap_admin_password) {
        (None, None) => None,
        (Some(email), Some(password)) => {
            if !email.contains('@') {
                return Err(invalid(
                    "auth.bootstrap_admin_email",
                    format!("`{email}` is not an email address"),
                ));
            }
            if password.chars().count() < 12 {
                return Err(invalid(
                    "auth.bootstrap_admin_password",
                    "is too short; a superuser's password has 12 or more characters".to_owned(),
                ));
            }
            Some((email, Secret(password)))
        }
        (Some(_), None) => {
            return Err(invalid(
                "auth.bootstrap_admin_password",
                "is missing; set it together with the bootstrap email".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "auth.bootstrap_admin_email",
                "is missing; set it together with the bootstrap password".to_owned(),
            ));
        }
    };
    let positive = |name: &str, value: Option<Duration>, default: Duration| match value {
        Some(duration) if duration.is_zero() => {
            Err(invalid(name, "must be longer than zero".to_owned()))
        }
        Some(duration) => Ok(duration),
        None => Ok(default),
    };
    Ok(AuthConfig {
        jwt_secret,
        secrets_key,
        access_token_ttl: positive(
            "auth.access_token_ttl",
            raw.access_token_ttl,
            Duration::from_secs(15 * 60),
        )?,
        refresh_token_ttl: positive(
            "auth.refresh_token_ttl",
            raw.refresh_token_ttl,
            Duration::from_secs(30 * 24 * 3600),
        )?,
        anonymous_session_ttl: positive(
            "auth.anonymous_session_ttl",
            raw.anonymous_session_ttl,
            Duration::from_secs(24 * 3600),
        )?,
        cleanup_interval: positive(
            "auth.cleanup_interval",
            raw.cleanup_interval,
            Duration::from_secs(60),
        )?,
        gateway_key,
        bootstrap_admin,
    })
}

/// `plugins` beside the running binary (where `cargo xtask build` puts first-party
/// plugins), then `<data_dir>/plugins`.
fn default_plugin_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let beside_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("plugins")));
    beside_binary
        .into_iter()
        .chain([data_dir.join("plugins")])
        .collect()
}

/// The environment variable table as text, for `--help`.
pub fn env_help() -> String {
    let width = ENV_VARS.iter().map(|var| var.name.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Configuration: defaults, then the TOML file, then these environment variables:\n",
    );
    for var in ENV_VARS {
        text.push_str(&format!("  {:width$}  {}\n", var.name, var.help));
    }
    text.push_str(
        "Any other key of the file: METAMORPH_ and its path in capitals, sections joined by __\n\
         (e.g. METAMORPH_RATE_LIMITS__MEMBER__READS=600/1m).\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_file_and_no_variables_gives_the_documented_defaults() {
        let config = Config::from_sources(None, &[]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(config.data_dir.is_absolute() && config.data_dir.ends_with("data"));
        assert_eq!(
            config.database.url,
            DatabaseUrl::Sqlite(config.data_dir.join("metamorph.db"))
        );
        assert_eq!(config.database.max_connections, 10);
        let StorageConfig::Fs { root } = &config.storage else {
            panic!("the default storage is fs");
        };
        assert_eq!(root, &config.data_dir.join("storage"));
        assert_eq!(
            config.plugins.dirs.last(),
            Some(&config.data_dir.join("plugins"))
        );
        assert_eq!(config.server.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(config.server.json_body_limit, 1024 * 1024);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metamorph.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\n[database]\nmax_connections = 3\n[server]\njson_body_limit = \"2 KiB\"\n",
        )
        .unwrap();
        let config = Config::from_sources(
            Some(file),
            &env(&[
                ("METAMORPH_LISTEN", "127.0.0.1:9001"),
                (
                    "METAMORPH_DATABASE_URL",
                    "postgres://app:s3cret@db:5432/metamorph",
                ),
                ("METAMORPH_PLUGINS_DIR", "/opt/a:/opt/b"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(config.database.max_connections, 3);
        assert_eq!(config.server.json_body_limit, 2048);
        assert_eq!(
            config.plugins.dirs,
            vec![PathBuf::from("/opt/a"), PathBuf::from("/opt/b")]
        );
        assert_eq!(
            config.database.url.to_string(),
            "postgres://app:***@db:5432/metamorph"
        );
        assert!(!config.to_toml().contains("s3cret"));
    }

    #[test]
    fn memory_limits_below_what_a_plugin_may_count_on_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metamorph.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::from_sources(Some(file.clone()), &[])
        };
        let config = load(
            "[plugins]\nmemory_limit = \"16 MiB\"\n[plugins.limits.image]\nmemory = \"1 GiB\"\n",
        )
        .unwrap();
        assert_eq!(config.plugins.limits.memory, MIN_TASK_MEMORY);
        assert_eq!(config.plugins.plugin_limits["image"].memory, 1 << 30);

        let error = load("[plugins]\nmemory_limit = \"8 MiB\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`plugins.memory_limit`"), "{error}");
        assert!(error.contains("16 MiB or more"), "{error}");

        let error = load("[plugins.limits.image]\nmemory = \"15 MiB\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`plugins.limits.image.memory`"), "{error}");
        assert!(error.contains("16 MiB or more"), "{error}");
    }

    #[test]
    fn a_bad_variable_names_itself_and_what_is_allowed() {
        let error = Config::from_sources(None, &env(&[("METAMORPH_LISTEN", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("`listen`"), "{error}");
        assert!(error.contains("METAMORPH_LISTEN"), "{error}");
        assert!(error.contains("127.0.0.1:8080"), "{error}");

        let error = Config::from_sources(None, &env(&[("METAMORPH_LISTEN", "8080")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("`8080` is not an address"), "{error}");

        let error = Config::from_sources(
            None,
            &env(&[("METAMORPH_DATABASE_URL", "mysql://u:pw@h/db")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("METAMORPH_DATABASE_URL") && error.contains("postgres://"),
            "{error}"
        );
        assert!(
            !error.contains("pw@"),
            "the password must not be echoed: {error}"
        );

        let error = Config::from_sources(None, &env(&[("METAMORPH_STORAGE_BACKEND", "gcs")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("storage.backend") && error.contains("`fs`") && error.contains("`s3`"),
            "{error}"
        );
        let error = Config::from_sources(None, &env(&[("METAMORPH_STORAGE_BACKEND", "s3")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("storage.bucket") && error.contains("METAMORPH_STORAGE__BUCKET"),
            "{error}"
        );

        let error =
            Config::from_sources(None, &env(&[("METAMORPH_DATABASE_MAX_CONNECTIONS", "0")]))
                .unwrap_err()
                .to_string();
        assert!(error.contains("1 to 1000"), "{error}");
    }

    #[test]
    fn a_bad_file_value_names_the_file_and_unknown_keys_list_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metamorph.toml");
        std::fs::write(&file, "[server]\nshutdown_timeout = \"soon\"\n").unwrap();
        let error = Config::from_sources(Some(file.clone()), &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("server.shutdown_timeout"), "{error}");
        assert!(error.contains(&file.display().to_string()), "{error}");

        std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let error = Config::from_sources(Some(file), &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown key `lisen`") && error.contains("`listen`"),
            "{error}"
        );
    }

    #[test]
    fn any_key_can_be_set_by_a_sectioned_variable_and_quotas_parse() {
        let config = Config::from_sources(
            None,
            &env(&[
                ("METAMORPH_RATE_LIMITS__MEMBER__READS", "5/2s"),
                ("METAMORPH_RATE_LIMITS__ADMIN__WRITES", "unlimited"),
                ("METAMORPH_AUTH__ACCESS_TOKEN_TTL", "5m"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.rate_limits.member.reads,
            QuotaSpec::Limited {
                count: 5,
                period: Duration::from_secs(2)
            }
        );
        assert_eq!(config.rate_limits.member.writes, QuotaSpec::per_minute(600));
        assert_eq!(config.rate_limits.admin.writes, QuotaSpec::Unlimited);
        assert_eq!(config.auth.access_token_ttl, Duration::from_secs(300));

        let error = Config::from_sources(
            None,
            &env(&[("METAMORPH_RATE_LIMITS__MEMBER__READS", "lots")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("METAMORPH_RATE_LIMITS__MEMBER__READS") && error.contains("600/1m"),
            "{error}"
        );
        let error = Config::from_sources(
            None,
            &env(&[("METAMORPH_RATE_LIMITS__MEMBR__READS", "1/1s")]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown key `membr`"), "{error}");
    }

    #[test]
    fn secrets_are_checked_and_never_shown() {
        let error = Config::from_sources(None, &env(&[("METAMORPH_GATEWAY_KEY", "short")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("METAMORPH_GATEWAY_KEY") && error.contains("32"),
            "{error}"
        );
        let gateway = "g".repeat(40);
        let config = Config::from_sources(
            None,
            &env(&[
                ("METAMORPH_GATEWAY_KEY", &gateway),
                ("METAMORPH_BOOTSTRAP_ADMIN_EMAIL", "root@example.com"),
                (
                    "METAMORPH_BOOTSTRAP_ADMIN_PASSWORD",
                    "correct horse battery",
                ),
            ]),
        )
        .unwrap();
        let shown = config.to_toml();
        assert!(
            !shown.contains(&gateway) && !shown.contains("correct horse"),
            "{shown}"
        );
        assert!(config.auth.bootstrap_admin.is_some());
        let error = Config::from_sources(
            None,
            &env(&[("METAMORPH_BOOTSTRAP_ADMIN_EMAIL", "root@example.com")]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("bootstrap_admin_password"), "{error}");
    }

    #[test]
    fn unknown_variables_are_warned_about_with_a_suggestion() {
        let config = Config::from_sources(None, &env(&[("METAMORPH_LISTN", "x")])).unwrap();
        assert_eq!(config.warnings.len(), 1);
        assert!(
            config.warnings[0].contains("did you mean METAMORPH_LISTEN"),
            "{:?}",
            config.warnings
        );
    }

    #[test]
    fn the_example_file_is_valid_and_sets_every_key_to_its_default() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../metamorph.example.toml");
        let config = Config::from_sources(Some(example.clone()), &[]).unwrap();
        let defaults = Config::from_sources(None, &[]).unwrap();
        assert_eq!(config.listen, defaults.listen);
        assert_eq!(config.database.url, defaults.database.url);
        assert_eq!(
            config.database.max_connections,
            defaults.database.max_connections
        );
        assert_eq!(
            config.server.json_body_limit,
            defaults.server.json_body_limit
        );
        assert_eq!(
            config.server.shutdown_timeout,
            defaults.server.shutdown_timeout
        );
        assert_eq!(
            serde_json::to_value(config.files).unwrap(),
            serde_json::to_value(defaults.files).unwrap()
        );
        assert_eq!(
            serde_json::to_value(config.jobs).unwrap(),
            serde_json::to_value(defaults.jobs).unwrap()
        );
        let text = std::fs::read_to_string(example).unwrap();
        for var in ENV_VARS {
            assert!(
                text.contains(var.name),
                "the example does not mention {}",
                var.name
            );
        }
    }

    #[test]
    fn passwords_are_redacted_wherever_urls_are_shown() {
        assert_eq!(
            redact_password("postgres://u:p@h/d"),
            "postgres://u:***@h/d"
        );
        assert_eq!(redact_password("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            redact_password("postgres://h/d?password=x"),
            "postgres://h/d?password=x"
        );
        assert_eq!(
            redact_password("postgres://u:p@ss@h/d"),
            "postgres://u:***@h/d"
        );
    }

    #[test]
    fn every_variable_sets_a_key_of_the_file_schema() {
        assert_eq!(
            env_key("METAMORPH_AUTH__GATEWAY_KEY").as_deref(),
            Some("auth.gateway_key")
        );
        let schema = serde_json::to_value(schemars::schema_for!(ConfigFile)).unwrap();
        for var in ENV_VARS {
            let mut node = &schema;
            for (depth, part) in var.key.split('.').enumerate() {
                if depth > 0 {
                    let reference = node["$ref"]
                        .as_str()
                        .or_else(|| node["allOf"][0]["$ref"].as_str());
                    if let Some(reference) = reference {
                        let name = reference.rsplit('/').next().unwrap();
                        node = &schema["$defs"][name];
                    }
                }
                node = &node["properties"][part];
                assert!(!node.is_null(), "{} sets unknown key {}", var.name, var.key);
            }
        }
    }
}
