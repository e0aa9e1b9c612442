//! A throwaway FTP server for the tests: pyftpdlib (installed by
//! [`crate::service::install_python_tools`]), on loopback only, with one user who may write
//! in its home folder, and passive-mode data ports right after the control port.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::service::{self, Daemon};

/// The user the tests log in as, and its password.
pub(crate) const USER: &str = "metamorph";
pub(crate) const PASSWORD: &str = "metamorph-test-secret";
/// How many passive-mode ports follow the control port.
const PASSIVE_PORTS: u16 = 20;

/// A running server, stopped when dropped.
pub(crate) struct FtpServer {
    _daemon: Daemon,
    port: u16,
}

impl FtpServer {
    /// Starts it in a fresh folder under `services` (the user's home is `home` in it) and
    /// waits for its greeting.
    pub(crate) fn start(python: &Path, services: &Path) -> io::Result<Self> {
        let offsets: Vec<u16> = (0..=PASSIVE_PORTS).collect();
        let port = service::free_ports(&offsets)?;
        let dir = Daemon::fresh_dir(services, "ftp", port)?;
        let home = dir.join("home");
        std::fs::create_dir_all(&home)?;
        let mut daemon = Daemon::spawn(
            "the FTP server",
            dir,
            Command::new(python)
                .args(["-m", "pyftpdlib", "-i", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .arg("-d")
                .arg(&home)
                .args(["-u", USER, "-P", PASSWORD, "-w", "-r"])
                .arg(format!("{}-{}", port + 1, port + PASSIVE_PORTS)),
        )?;
        daemon.wait_ready(Duration::from_secs(60), || service::greets(port, "220"))?;
        Ok(Self {
            _daemon: daemon,
            port,
        })
    }

    /// Its endpoint, `ftp://127.0.0.1:<port>`.
    pub(crate) fn endpoint(&self) -> String {
        format!("ftp://127.0.0.1:{}", self.port)
    }
}
