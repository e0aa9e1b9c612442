//! Support for the black-box integration tests: start the real `metamorph` binary on a free
//! port with a temporary data folder, against SQLite or a real PostgreSQL server, and talk
//! HTTP to it.
//!
//! PostgreSQL tests need a server: `cargo xtask test` starts one and sets
//! `METAMORPH_TEST_POSTGRES_URL` (and `METAMORPH_TEST_PG_BIN`, the folder of its programs).
//! Storage tests on S3 need an S3-compatible server: `cargo xtask test` starts SeaweedFS and
//! sets `METAMORPH_TEST_S3_ENDPOINT`, `…_BUCKET`, `…_ACCESS_KEY_ID` and
//! `…_SECRET_ACCESS_KEY` ([`S3Target`]).
//!
//! It also starts, for the other remote storages:
//! - Azurite, an Azure Blob emulator: `METAMORPH_TEST_AZBLOB_ENDPOINT`
//!   (`http://127.0.0.1:<port>/devstoreaccount1`), `…_CONTAINER`, `…_ACCOUNT_NAME`,
//!   `…_ACCOUNT_KEY` ([`AzblobTarget`]);
//! - fake-gcs-server, a GCS emulator without authentication: `METAMORPH_TEST_GCS_ENDPOINT`
//!   and `…_BUCKET` ([`GcsTarget`]);
//! - pyftpdlib, an FTP server with a writable home folder: `METAMORPH_TEST_FTP_ENDPOINT`
//!   (`ftp://127.0.0.1:<port>`), `…_USER` and `…_PASSWORD` ([`FtpTarget`]);
//!
//! and sets `METAMORPH_TEST_PYTHON`, a `python3` with the Azure SDK. Each `…Target` reads
//! objects back with a client independent of the service's OpenDAL (`curl`, or the Azure
//! SDK for Python): see [`objects`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::Value;

#[path = "../../xtask/src/postgres.rs"]
pub mod postgres;

pub mod objects;

pub use objects::{AzblobTarget, FtpTarget, GcsTarget};

/// Variable holding the URL of the PostgreSQL server tests create their databases in.
pub const POSTGRES_URL_VAR: &str = "METAMORPH_TEST_POSTGRES_URL";
/// Variable holding the folder of PostgreSQL's programs (`initdb`, `pg_ctl`).
pub const PG_BIN_VAR: &str = "METAMORPH_TEST_PG_BIN";

/// The superuser every test server is bootstrapped with.
pub const ROOT_EMAIL: &str = "root@metamorph.test";
/// Its password.
pub const ROOT_PASSWORD: &str = "root password 1234";
/// The password of users made with [`Server::create_user`].
pub const USER_PASSWORD: &str = "user password 1234";

/// Credentials to send with a request.
#[derive(Clone, Debug)]
pub enum Auth {
    /// None.
    None,
    /// `Authorization: Bearer`.
    Bearer(String),
    /// `X-API-Key`.
    ApiKey(String),
    /// Arbitrary headers (gateway identity).
    Headers(Vec<(String, String)>),
}

/// Variable holding the folder of built plugins (`cargo xtask test` builds them there).
pub const PLUGINS_VAR: &str = "METAMORPH_TEST_PLUGINS";

/// A built plugin artifact (e.g. `metamorph_plugin_image.wasm`).
pub fn plugin_artifact(file: &str) -> Result<PathBuf> {
    let dir = std::env::var_os(PLUGINS_VAR).map(PathBuf::from).ok_or_else(|| {
        anyhow!("{PLUGINS_VAR} is not set: plugin tests need the built plugins; run them with `cargo xtask test`")
    })?;
    let path = dir.join(file);
    anyhow::ensure!(
        path.is_file(),
        "{} was not built; run `cargo xtask test`",
        path.display()
    );
    Ok(path)
}

/// Copies built plugins into `dir` (created if needed).
pub fn install_plugins(dir: &Path, files: &[&str]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for file in files {
        std::fs::copy(plugin_artifact(file)?, dir.join(file))?;
    }
    Ok(())
}

/// A corpus file of `tests/fixtures/corpus`.
pub fn corpus(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/corpus")
        .join(path)
}

/// The `metamorph` command line with its own data folder and plugins, for conversions
/// without a server.
pub struct Cli {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// What a `metamorph convert` run ended with.
#[derive(Debug)]
pub struct Converted {
    /// Whether it succeeded.
    pub success: bool,
    /// The output file (when it succeeded).
    pub output: PathBuf,
    /// Standard error (progress and errors).
    pub stderr: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl Cli {
    /// A command line whose plugins folder holds `plugins`.
    pub fn with_plugins(plugins: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        install_plugins(&dir.path().join("plugins"), plugins)?;
        Ok(Self {
            dir,
            env: Vec::new(),
        })
    }

    /// Sets a variable for every run.
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The plugins folder.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// A scratch folder for outputs.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// `metamorph <args>` with this folder's settings.
    pub fn command(&self) -> Result<Command> {
        let mut command = metamorph_command(self.dir.path())?;
        command
            .env("METAMORPH_LOG", "warn")
            .env("METAMORPH_DATA_DIR", self.dir.path().join("data"))
            .env("METAMORPH_PLUGINS_DIR", self.plugins_dir());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        Ok(command)
    }

    /// `metamorph convert input --to target -O options…`, writing into the scratch folder.
    pub fn convert(&self, input: &Path, target: &str, options: &[&str]) -> Result<Converted> {
        let stem = input
            .file_stem()
            .map_or_else(|| "out".into(), |stem| stem.to_string_lossy().into_owned());
        let output = self
            .dir
            .path()
            .join(format!("{stem}-{}.{target}", uuid_like()));
        let mut command = self.command()?;
        command
            .arg("convert")
            .arg(input)
            .args(["--to", target, "-o"])
            .arg(&output);
        for option in options {
            command.args(["-O", option]);
        }
        let started = Instant::now();
        let result = command.output()?;
        Ok(Converted {
            success: result.status.success(),
            output,
            stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
            elapsed: started.elapsed(),
        })
    }
}

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in the test's data folder.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// Generates one test per backend from functions `fn name(backend: Backend) -> Result<()>`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() -> anyhow::Result<()> {
                super::$name($crate::Backend::Sqlite)
            })+
        }
        mod postgres {
            $(#[test]
            fn $name() -> anyhow::Result<()> {
                super::$name($crate::Backend::Postgres)
            })+
        }
    };
}

/// Where a test server keeps stored files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A folder: `<data_dir>/storage`, or `METAMORPH_STORAGE_ROOT` when the test sets it.
    Fs,
    /// The tests' S3-compatible server ([`S3Target`]), under a prefix of the server's own.
    S3,
}

/// The database and the storage a test server runs on. A [`Backend`] alone converts into
/// one on [`Storage::Fs`], so [`Server::start`] and [`Server::builder`] take either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// The database.
    pub database: Backend,
    /// The storage of files.
    pub storage: Storage,
}

impl From<Backend> for Setup {
    fn from(database: Backend) -> Self {
        Self {
            database,
            storage: Storage::Fs,
        }
    }
}

/// Generates, from functions `fn name(setup: Setup) -> Result<()>`, one test per database
/// on fs storage (`sqlite::name`, `postgres::name`) and one on the S3-compatible server's
/// storage, with SQLite (`s3::name`). Functions listed after `; fs_only:` (tests that never
/// reach the storage) get the two fs tests only:
///
/// ```ignore
/// on_every_backend!(stores_things, converts_things; fs_only: validates_things);
/// ```
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)? $(; fs_only: $($fs_name:ident),+ $(,)?)?) => {
        mod sqlite {
            $(#[test]
            fn $name() -> anyhow::Result<()> {
                super::$name($crate::Setup {
                    database: $crate::Backend::Sqlite,
                    storage: $crate::Storage::Fs,
                })
            })+
            $($(#[test]
            fn $fs_name() -> anyhow::Result<()> {
                super::$fs_name($crate::Setup {
                    database: $crate::Backend::Sqlite,
                    storage: $crate::Storage::Fs,
                })
            })+)?
        }
        mod postgres {
            $(#[test]
            fn $name() -> anyhow::Result<()> {
                super::$name($crate::Setup {
                    database: $crate::Backend::Postgres,
                    storage: $crate::Storage::Fs,
                })
            })+
            $($(#[test]
            fn $fs_name() -> anyhow::Result<()> {
                super::$fs_name($crate::Setup {
                    database: $crate::Backend::Postgres,
                    storage: $crate::Storage::Fs,
                })
            })+)?
        }
        mod s3 {
            $(#[test]
            fn $name() -> anyhow::Result<()> {
                super::$name($crate::Setup {
                    database: $crate::Backend::Sqlite,
                    storage: $crate::Storage::S3,
                })
            })+
        }
    };
}

/// The `metamorph` binary under test: `METAMORPH_BIN`, or the one in the target folder
/// this test was built into.
pub fn binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("METAMORPH_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/metamorph
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot locate the target folder from {}", exe.display()))?;
    let binary = profile_dir.join("metamorph");
    if !binary.is_file() {
        bail!(
            "{} does not exist; build it with `cargo build -p metamorph` or run `cargo xtask test`",
            binary.display()
        );
    }
    Ok(binary)
}

/// A fresh, empty PostgreSQL database, dropped when this goes out of scope.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// Creates a database on the server at `METAMORPH_TEST_POSTGRES_URL`.
    pub fn create() -> Result<Self> {
        let admin_url = std::env::var(POSTGRES_URL_VAR).map_err(|_unset| {
            anyhow!(
                "{POSTGRES_URL_VAR} is not set: PostgreSQL tests need a server; \
                 run them with `cargo xtask test`, which starts one"
            )
        })?;
        Self::create_on(&admin_url)
    }

    /// Creates a database on the server at `admin_url`.
    pub fn create_on(admin_url: &str) -> Result<Self> {
        let name = format!("mm_test_{}", uuid_like());
        let mut admin = PgConnection::establish(admin_url)
            .with_context(|| format!("cannot connect to the test PostgreSQL at {admin_url}"))?;
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin)?;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url, |(base, _)| base);
        let url = format!("{base}/{name}");
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection to it.
    pub fn connect(&self) -> Result<PgConnection> {
        Ok(PgConnection::establish(&self.url)?)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The S3-compatible server of the tests, from `METAMORPH_TEST_S3_*`.
#[derive(Clone, Debug)]
pub struct S3Target {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl S3Target {
    /// The server `cargo xtask test` started.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(format!("METAMORPH_TEST_S3_{name}")).with_context(|| {
                format!(
                    "METAMORPH_TEST_S3_{name} is not set: run the tests with `cargo xtask test`, \
                     which starts an S3-compatible server"
                )
            })
        };
        Ok(Self {
            endpoint: var("ENDPOINT")?,
            bucket: var("BUCKET")?,
            access_key_id: var("ACCESS_KEY_ID")?,
            secret_access_key: var("SECRET_ACCESS_KEY")?,
        })
    }

    /// `curl` signing with SigV4 (its own signing: a client independent of the service's).
    fn curl(&self) -> Command {
        let mut command = objects::curl();
        command
            .args(["--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{}:{}", self.access_key_id, self.secret_access_key));
        command
    }

    /// The URL of object `key`.
    fn object_url(&self, key: &str) -> String {
        format!(
            "{}/{}/{}",
            self.endpoint,
            self.bucket,
            objects::percent_encode(key, true)
        )
    }

    /// The content of object `key`, read with `curl`.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        objects::output_of(self.curl().arg(self.object_url(key)), None)
            .with_context(|| format!("S3 get {key}"))
    }

    /// Stores `content` as object `key` with `curl`.
    pub fn put(&self, key: &str, content: &[u8]) -> Result<()> {
        use sha2::Digest;
        // curl 7.88 signs a body only with the hash given in this header.
        let hash: String = sha2::Sha256::digest(content)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        objects::output_of(
            self.curl()
                .args([
                    "-X",
                    "PUT",
                    "-H",
                    "Content-Type: application/octet-stream",
                    "-H",
                    &format!("x-amz-content-sha256: {hash}"),
                    "--data-binary",
                    "@-",
                ])
                .arg(self.object_url(key)),
            Some(content),
        )
        .with_context(|| format!("S3 put {key}"))
        .map(drop)
    }

    /// Deletes object `key` with `curl`.
    pub fn delete(&self, key: &str) -> Result<()> {
        objects::output_of(
            self.curl().args(["-X", "DELETE"]).arg(self.object_url(key)),
            None,
        )
        .with_context(|| format!("S3 delete {key}"))
        .map(drop)
    }

    /// Lists the keys and sizes under `prefix`, with `curl`.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let output = self
            .curl()
            .arg(format!(
                "{}/{}?list-type=2&prefix={}",
                self.endpoint,
                self.bucket,
                // Encoded as SigV4's canonical query has it, or the signature differs.
                objects::percent_encode(prefix, false)
            ))
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout)?;
        let field = |chunk: &str, tag: &str| -> Option<String> {
            let start = chunk.find(&format!("<{tag}>"))? + tag.len() + 2;
            let end = chunk[start..].find(&format!("</{tag}>"))? + start;
            Some(chunk[start..end].to_owned())
        };
        Ok(text
            .split("<Contents>")
            .skip(1)
            .filter_map(|chunk| Some((field(chunk, "Key")?, field(chunk, "Size")?.parse().ok()?)))
            .collect())
    }
}

/// How to start a server; see [`Server::start`] for the common case.
pub struct ServerBuilder {
    backend: Backend,
    storage: Storage,
    /// On S3: the server and this server's prefix (with its trailing `/`).
    s3: Option<(S3Target, String)>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    database_url: Option<String>,
    plugins: Vec<String>,
}

impl ServerBuilder {
    /// Sets an environment variable for the server.
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a command-line argument before `serve`.
    #[must_use]
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Puts these built plugins in the server's plugins folder.
    #[must_use]
    pub fn plugins(mut self, files: &[&str]) -> Self {
        self.plugins
            .extend(files.iter().map(|file| (*file).to_owned()));
        self
    }

    /// Keeps files on the tests' S3-compatible server, under a prefix of this server's own
    /// (returned, with the target). On a builder already on S3, the same prefix.
    pub fn s3_storage(self) -> Result<(Self, S3Target, String)> {
        let builder = match self.s3 {
            Some(_) => self,
            None => {
                let target = S3Target::from_env()?;
                let prefix = format!("t{}/", uuid_like());
                self.with_s3(target, prefix)
            }
        };
        let (target, prefix) = builder.s3.clone().context("S3 storage")?;
        Ok((builder, target, prefix))
    }

    /// Keeps files where `server` keeps its own: the same folder, or the same prefix of the
    /// S3-compatible server (for a server that takes over from another).
    #[must_use]
    pub fn share_storage(self, server: &Server) -> Self {
        match &server.storage {
            StorageLocation::Fs(root) => {
                let root = root.display().to_string();
                let mut builder = self.env("METAMORPH_STORAGE_ROOT", &root);
                builder.storage = Storage::Fs;
                builder
            }
            StorageLocation::S3 { target, prefix } => self.with_s3(target.clone(), prefix.clone()),
        }
    }

    /// Points the server at `target`, under `prefix` (ending in `/`).
    fn with_s3(self, target: S3Target, prefix: String) -> Self {
        let mut builder = self
            .env("METAMORPH_STORAGE_BACKEND", "s3")
            .env("METAMORPH_STORAGE__BUCKET", &target.bucket)
            .env("METAMORPH_STORAGE__ENDPOINT", &target.endpoint)
            .env("METAMORPH_STORAGE__ACCESS_KEY_ID", &target.access_key_id)
            .env(
                "METAMORPH_STORAGE__SECRET_ACCESS_KEY",
                &target.secret_access_key,
            )
            .env("METAMORPH_STORAGE__PREFIX", prefix.trim_end_matches('/'));
        builder.storage = Storage::S3;
        builder.s3 = Some((target, prefix));
        builder
    }

    /// Uses this database URL instead of a fresh database of the backend.
    #[must_use]
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Starts the server and waits until it listens.
    pub fn start(self) -> Result<Server> {
        let builder = match (self.storage, &self.s3) {
            (Storage::S3, None) => self.s3_storage()?.0,
            _ => self,
        };
        builder.start_configured()
    }

    fn start_configured(self) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let storage = match &self.s3 {
            Some((target, prefix)) => StorageLocation::S3 {
                target: target.clone(),
                prefix: prefix.clone(),
            },
            None => StorageLocation::Fs(
                self.env
                    .iter()
                    .rev()
                    .find(|(name, _)| name == "METAMORPH_STORAGE_ROOT")
                    .map_or_else(
                        || dir.path().join("data/storage"),
                        |(_, root)| PathBuf::from(root),
                    ),
            ),
        };
        let (database_url, pg) = match (self.database_url, self.backend) {
            (Some(url), _) => (url, None),
            (None, Backend::Sqlite) => (
                format!(
                    "sqlite://{}",
                    dir.path().join("data/metamorph.db").display()
                ),
                None,
            ),
            (None, Backend::Postgres) => {
                let pg = PgDatabase::create()?;
                (pg.url().to_owned(), Some(pg))
            }
        };
        let plugins_dir = dir.path().join("plugins");
        let files: Vec<&str> = self.plugins.iter().map(String::as_str).collect();
        install_plugins(&plugins_dir, &files)?;
        let mut command = metamorph_command(dir.path())?;
        command
            .args(&self.args)
            .env("METAMORPH_PLUGINS_DIR", &plugins_dir)
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .env("METAMORPH_DATA_DIR", dir.path().join("data"))
            .env("METAMORPH_DATABASE_URL", &database_url)
            .env("METAMORPH_SHUTDOWN_TIMEOUT", "10s")
            .env("METAMORPH_BOOTSTRAP_ADMIN_EMAIL", ROOT_EMAIL)
            .env("METAMORPH_BOOTSTRAP_ADMIN_PASSWORD", ROOT_PASSWORD);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().context("cannot start metamorph")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let reader_logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if parsed["message"] == "listening"
                    && let Some(address) = parsed["address"].as_str()
                {
                    let _ = address_tx.send(address.to_owned());
                }
                if let Ok(mut logs) = reader_logs.lock() {
                    logs.push(parsed);
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let address = loop {
            if let Ok(address) = address_rx.recv_timeout(Duration::from_millis(50)) {
                break address;
            }
            if let Some(status) = child.try_wait()? {
                std::thread::sleep(Duration::from_millis(100));
                let logs = logs.lock().map(|logs| logs.clone()).unwrap_or_default();
                bail!("metamorph exited during start-up ({status}); its log:\n{logs:#?}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("metamorph did not start listening within {START_TIMEOUT:?}");
            }
        };
        Ok(Server {
            child,
            base: format!("http://{address}"),
            address,
            logs,
            dir,
            database_url,
            _pg: pg,
            storage,
            env: self.env,
            client: http_client()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }
}

/// A blocking HTTP client builder, with the process's TLS provider installed (the
/// workspace builds reqwest without one, as the service installs its own).
pub fn http_client() -> reqwest::blocking::ClientBuilder {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::blocking::Client::builder()
}

/// `metamorph` with a clean environment: no `METAMORPH_*` variable of the caller leaks in,
/// and the working directory is `cwd`.
pub fn metamorph_command(cwd: &Path) -> Result<Command> {
    let mut command = Command::new(binary()?);
    command.current_dir(cwd);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("METAMORPH_") {
            command.env_remove(name);
        }
    }
    Ok(command)
}

/// A running `metamorph serve`, killed when dropped.
pub struct Server {
    child: Child,
    base: String,
    address: String,
    logs: Arc<Mutex<Vec<Value>>>,
    dir: tempfile::TempDir,
    database_url: String,
    _pg: Option<PgDatabase>,
    storage: StorageLocation,
    /// The variables it was started with, for commands run beside it.
    env: Vec<(String, String)>,
    client: reqwest::blocking::Client,
}

/// Where a [`Server`] keeps stored files.
enum StorageLocation {
    /// The fs backend's folder.
    Fs(PathBuf),
    /// The S3-compatible server, under `prefix` (ending in `/`).
    S3 { target: S3Target, prefix: String },
}

impl Server {
    /// Starts a server with default settings on `setup` (a [`Setup`], or a [`Backend`]
    /// with fs storage).
    pub fn start(setup: impl Into<Setup>) -> Result<Self> {
        Self::builder(setup).start()
    }

    /// Configures a server before starting it; on [`Storage::S3`], it keeps files under a
    /// prefix of its own on the tests' S3-compatible server.
    pub fn builder(setup: impl Into<Setup>) -> ServerBuilder {
        let Setup { database, storage } = setup.into();
        ServerBuilder {
            backend: database,
            storage,
            s3: None,
            env: Vec::new(),
            args: Vec::new(),
            database_url: None,
            plugins: Vec::new(),
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// An HTTP client that does not follow redirects.
    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<reqwest::blocking::Response> {
        Ok(self.client.get(self.url(path)).send()?)
    }

    /// The server's data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's plugins folder.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Where it keeps stored files.
    pub fn storage(&self) -> Storage {
        match self.storage {
            StorageLocation::Fs(_) => Storage::Fs,
            StorageLocation::S3 { .. } => Storage::S3,
        }
    }

    /// On S3: the server and the prefix (ending in `/`) its objects are kept under.
    pub fn s3(&self) -> Option<(&S3Target, &str)> {
        match &self.storage {
            StorageLocation::Fs(_) => None,
            StorageLocation::S3 { target, prefix } => Some((target, prefix)),
        }
    }

    /// The objects the storage holds for organisation `org_id`, as the storage itself shows
    /// them (the folder, or the bucket listed by an independent client): each one's name
    /// under the organisation's `files/` (a file id) and size, sorted by name.
    pub fn stored_objects(&self, org_id: &str) -> Result<Vec<(String, u64)>> {
        let mut objects = match &self.storage {
            StorageLocation::Fs(root) => {
                let folder = root.join("orgs").join(org_id).join("files");
                if !folder.exists() {
                    return Ok(Vec::new());
                }
                std::fs::read_dir(&folder)?
                    .map(|entry| {
                        let entry = entry?;
                        Ok((
                            entry.file_name().to_string_lossy().into_owned(),
                            entry.metadata()?.len(),
                        ))
                    })
                    .collect::<Result<Vec<_>>>()
                    .with_context(|| format!("listing {}", folder.display()))?
            }
            StorageLocation::S3 { target, prefix } => {
                let files = format!("{prefix}orgs/{org_id}/files/");
                target
                    .list(&files)?
                    .into_iter()
                    .map(|(key, size)| {
                        let name = key
                            .strip_prefix(&files)
                            .with_context(|| format!("{key} is not under {files}"))?;
                        Ok((name.to_owned(), size))
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        };
        objects.sort();
        Ok(objects)
    }

    /// Creates a user with the real `metamorph admin create-user` (password
    /// [`USER_PASSWORD`]) in the organisation named `org`.
    pub fn create_user(&self, email: &str, role: &str, org: &str) -> Result<()> {
        use std::io::Write;
        let mut child = metamorph_command(self.dir.path())?
            .args([
                "admin",
                "create-user",
                "--email",
                email,
                "--role",
                role,
                "--org",
                org,
            ])
            .env("METAMORPH_DATA_DIR", self.data_dir())
            .env("METAMORPH_DATABASE_URL", &self.database_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(format!("{USER_PASSWORD}\n").as_bytes())?;
        let output = child.wait_with_output()?;
        anyhow::ensure!(
            output.status.success(),
            "create-user failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// Signs in and returns the access token.
    pub fn login(&self, email: &str, password: &str) -> Result<String> {
        let response = self.call(
            "POST",
            "/api/auth/login",
            &Auth::None,
            Some(serde_json::json!({"email": email, "password": password})),
        )?;
        anyhow::ensure!(
            response.status() == 200,
            "login of {email} failed: {}",
            response.text()?
        );
        let body: Value = response.json()?;
        Ok(body["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned())
    }

    /// The bootstrap superuser's access token.
    pub fn root_token(&self) -> Result<String> {
        self.login(ROOT_EMAIL, ROOT_PASSWORD)
    }

    /// Sends `method path` with `auth` and an optional JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
    ) -> Result<reqwest::blocking::Response> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self.client.request(method, self.url(path));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::ApiKey(key) => request.header("X-API-Key", key),
            Auth::Headers(headers) => headers.iter().fold(request, |request, (name, value)| {
                request.header(name, value)
            }),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        Ok(request.send()?)
    }

    /// `call` that expects `status` and returns the JSON body (`null` when empty).
    pub fn expect(
        &self,
        method: &str,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
        status: u16,
    ) -> Result<Value> {
        let response = self.call(method, path, auth, body)?;
        let actual = response.status().as_u16();
        let text = response.text()?;
        anyhow::ensure!(
            actual == status,
            "{method} {path}: expected {status}, got {actual}: {text}"
        );
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// The key that signs the server's tokens (from its data folder).
    pub fn jwt_key(&self) -> Result<String> {
        Ok(
            std::fs::read_to_string(self.data_dir().join("secrets/jwt.key"))?
                .trim()
                .to_owned(),
        )
    }

    /// The database URL it runs on.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far, parsed from JSON.
    pub fn logs(&self) -> Vec<Value> {
        self.logs
            .lock()
            .map(|logs| logs.clone())
            .unwrap_or_default()
    }

    /// Waits up to 5 s for a log line matching `predicate`.
    pub fn wait_for_log(&self, predicate: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(line) = self.logs().into_iter().find(|line| predicate(line)) {
                return Ok(line);
            }
            if Instant::now() > deadline {
                bail!("no such log line; the log:\n{:#?}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`TERM`, `INT`, …) to the server.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{signal} failed");
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("metamorph still running after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `path` of each entry of a problem document's `errors`, in order.
pub fn field_paths(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|error| error["path"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that `response` is an RFC 9457 problem document with `status` and `code`, whose
/// `request_id` equals its `X-Request-Id` header; returns the document.
pub fn assert_problem(
    response: reqwest::blocking::Response,
    status: u16,
    code: &str,
) -> Result<Value> {
    let actual = response.status().as_u16();
    let content_type = header(&response, "content-type");
    let request_id = header(&response, "x-request-id");
    let body: Value = response.json().context("the body is not JSON")?;
    anyhow::ensure!(
        actual == status,
        "status {actual}, expected {status}: {body}"
    );
    anyhow::ensure!(
        content_type == "application/problem+json",
        "content type {content_type}"
    );
    anyhow::ensure!(
        body["code"] == code,
        "code {}, expected {code}",
        body["code"]
    );
    anyhow::ensure!(body["status"] == status, "status member {}", body["status"]);
    anyhow::ensure!(
        body["type"] == format!("/docs/errors#{code}"),
        "type {}",
        body["type"]
    );
    for member in ["title", "detail"] {
        anyhow::ensure!(
            body[member].as_str().is_some_and(|text| !text.is_empty()),
            "no {member}: {body}"
        );
    }
    anyhow::ensure!(!request_id.is_empty(), "no X-Request-Id header");
    anyhow::ensure!(
        body["request_id"] == request_id.as_str(),
        "request_id {} ≠ header {request_id}",
        body["request_id"]
    );
    Ok(body)
}

/// A response header as text (empty if absent).
pub fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl Server {
    /// Runs `metamorph admin <args>` on this server's database and storage (the same
    /// variables); its standard output, or an error with its standard error.
    pub fn admin(&self, args: &[&str]) -> Result<String> {
        let mut command = metamorph_command(self.dir.path())?;
        command
            .arg("admin")
            .args(args)
            .env("METAMORPH_DATA_DIR", self.data_dir())
            .env("METAMORPH_DATABASE_URL", &self.database_url);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let output = command.stdin(Stdio::null()).output()?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        anyhow::ensure!(
            output.status.success(),
            "metamorph admin {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(stdout)
    }

    /// Writes an object straight into the server's storage, behind its back (`key` is
    /// relative to the storage's root, e.g. `orgs/<org>/files/<id>`).
    pub fn put_object(&self, key: &str, content: &[u8]) -> Result<()> {
        match &self.storage {
            StorageLocation::Fs(root) => {
                let path = root.join(key);
                std::fs::create_dir_all(path.parent().context("no folder")?)?;
                Ok(std::fs::write(path, content)?)
            }
            StorageLocation::S3 { target, prefix } => {
                target.put(&format!("{prefix}{key}"), content)
            }
        }
    }

    /// Deletes an object straight from the server's storage, behind its back.
    pub fn delete_object(&self, key: &str) -> Result<()> {
        match &self.storage {
            StorageLocation::Fs(root) => Ok(std::fs::remove_file(root.join(key))?),
            StorageLocation::S3 { target, prefix } => target.delete(&format!("{prefix}{key}")),
        }
    }

    /// How many objects the server's storage holds under `prefix` (relative to its root,
    /// ending in `/`), at any depth.
    pub fn stored_object_count(&self, prefix: &str) -> Result<usize> {
        match &self.storage {
            StorageLocation::Fs(root) => {
                fn count(folder: &Path) -> std::io::Result<usize> {
                    if !folder.exists() {
                        return Ok(0);
                    }
                    let mut total = 0;
                    for entry in std::fs::read_dir(folder)? {
                        let entry = entry?;
                        total += if entry.file_type()?.is_dir() {
                            count(&entry.path())?
                        } else {
                            1
                        };
                    }
                    Ok(total)
                }
                Ok(count(&root.join(prefix))?)
            }
            StorageLocation::S3 {
                target,
                prefix: own,
            } => Ok(target.list(&format!("{own}{prefix}"))?.len()),
        }
    }
}
