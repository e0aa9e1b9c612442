//! A throwaway SFTP server for the tests: Debian's OpenSSH server (`/usr/sbin/sshd`, run by
//! hand: the system service is not used), on loopback only, SFTP only (`internal-sftp`,
//! forced, starting in the server's folder `root`), with public-key login only. Its host
//! key, the client's key and a known-hosts file naming the host key are made afresh for
//! each start, in the server's folder.
//!
//! The client logs in as `root`, so `xtask` must run as root (see [`preflight`]): an
//! unprivileged `sshd` can only let in the user it runs as, which the tests do not set up.
//!
//! `sshd` serves each connection from a process of its own session, which outlives the
//! listening process; stopping the server stops those too (those of a server left by an
//! interrupted run end when their client does).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::service::{self, Daemon};

/// OpenSSH's server, from Debian's `openssh-server`.
const SSHD: &str = "/usr/sbin/sshd";
/// The OpenSSH programs the server's set-up and the tests' independent client use, from
/// Debian's `openssh-client`.
const CLIENT_PROGRAMS: &[&str] = &["ssh", "sftp", "ssh-keygen"];
/// The folder `sshd` insists on for privilege separation.
const PRIVSEP_DIR: &str = "/run/sshd";
/// The user the tests log in as.
pub(crate) const USER: &str = "root";
/// The address it listens on.
pub(crate) const HOST: &str = "127.0.0.1";

/// The Debian packages the server and its clients need and that are missing.
pub(crate) fn missing_packages() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !Path::new(SSHD).is_file() {
        missing.push("openssh-server");
    }
    let on_path = |program: &str| {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|folder| folder.join(program).is_file())
        })
    };
    if !CLIENT_PROGRAMS.iter().all(|program| on_path(program)) {
        missing.push("openssh-client");
    }
    missing
}

/// Whether the server can start here: `xtask` runs as root.
pub(crate) fn preflight() -> io::Result<()> {
    if crate::is_root() {
        return Ok(());
    }
    Err(io::Error::other(
        "the SFTP test server lets its client in as root, which needs `sshd` run as root: \
         run `cargo xtask` as root (an unprivileged sshd only lets in its own user, which \
         the tests do not set up)",
    ))
}

/// A running server, stopped (with the processes serving its connections) when dropped.
pub(crate) struct SftpServer {
    daemon: Option<Daemon>,
    port: u16,
    keys: PathBuf,
    root: PathBuf,
}

/// Runs `ssh-keygen` to make an Ed25519 key pair without a passphrase at `path`.
fn keygen(path: &Path) -> io::Result<()> {
    let output = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "metamorph-test",
            "-f",
        ])
        .arg(path)
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "ssh-keygen -f {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

impl SftpServer {
    /// Makes the keys and the configuration in a fresh folder under `services`, starts
    /// `sshd` and waits for its SSH banner.
    pub(crate) fn start(services: &Path) -> io::Result<Self> {
        preflight()?;
        // `ForceCommand` takes no quotes: its words are split at white space.
        if services.to_string_lossy().contains(char::is_whitespace) {
            return Err(io::Error::other(format!(
                "the SFTP test server cannot start in {}: its path holds white space",
                services.display()
            )));
        }
        let port = service::free_ports(&[0])?;
        let dir = Daemon::fresh_dir(services, "sftp", port)?;
        let keys = dir.join("keys");
        let root = dir.join("root");
        for folder in [keys.as_path(), root.as_path(), Path::new(PRIVSEP_DIR)] {
            std::fs::create_dir_all(folder)?;
        }
        let host_key = keys.join("host_key");
        let client_key = keys.join("client_key");
        keygen(&host_key)?;
        keygen(&client_key)?;
        std::fs::copy(keys.join("client_key.pub"), keys.join("authorized_keys"))?;
        // `<type> <key>` of the host key, without its comment.
        let host_public = std::fs::read_to_string(keys.join("host_key.pub"))?;
        let host_public: Vec<&str> = host_public.split_whitespace().take(2).collect();
        std::fs::write(
            keys.join("known_hosts"),
            format!("[{HOST}]:{port} {}\n", host_public.join(" ")),
        )?;
        let config = keys.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress {HOST}\n\
                 Port {port}\n\
                 HostKey \"{host_key}\"\n\
                 PidFile none\n\
                 AuthorizedKeysFile \"{authorized_keys}\"\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 AllowTcpForwarding no\n\
                 X11Forwarding no\n\
                 Subsystem sftp internal-sftp\n\
                 ForceCommand internal-sftp -d {root}\n",
                host_key = host_key.display(),
                authorized_keys = keys.join("authorized_keys").display(),
                root = root.display(),
            ),
        )?;
        // `-D`: stay in the foreground (in the process group `Daemon` stops); `-e`: log to
        // standard error (the server's log).
        let mut daemon = Daemon::spawn(
            "the SFTP server (sshd)",
            dir,
            Command::new(SSHD).args(["-D", "-e", "-f"]).arg(&config),
        )?;
        daemon.wait_ready(Duration::from_secs(30), || service::greets(port, "SSH-2.0"))?;
        Ok(Self {
            daemon: Some(daemon),
            port,
            keys,
            root,
        })
    }

    /// Its port on [`HOST`].
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The client's private key file (OpenSSH format, no passphrase).
    pub(crate) fn client_key(&self) -> PathBuf {
        self.keys.join("client_key")
    }

    /// A known-hosts file naming the server's host key for `[127.0.0.1]:<port>`.
    pub(crate) fn known_hosts(&self) -> PathBuf {
        self.keys.join("known_hosts")
    }

    /// The folder SFTP sessions start in (relative paths are relative to it).
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The processes serving connections: the descendants of the listening `sshd` (the one
    /// this `xtask` started with this server's configuration).
    fn connection_processes(&self) -> Vec<u32> {
        let config = self.keys.join("sshd_config");
        let needle = config.as_os_str().as_encoded_bytes();
        let processes = processes();
        let mut family: Vec<u32> = processes
            .iter()
            .filter(|process| process.parent == std::process::id())
            .filter(|process| {
                std::fs::read(format!("/proc/{}/cmdline", process.pid)).is_ok_and(|cmdline| {
                    cmdline.windows(needle.len()).any(|window| window == needle)
                })
            })
            .map(|process| process.pid)
            .collect();
        let listeners = family.len();
        // Each connection's processes (the privileged monitor, the session) lead sessions
        // of their own: follow parents, not groups.
        let mut grown = true;
        while grown {
            grown = false;
            for process in &processes {
                if family.contains(&process.parent) && !family.contains(&process.pid) {
                    family.push(process.pid);
                    grown = true;
                }
            }
        }
        family.split_off(listeners)
    }
}

impl Drop for SftpServer {
    fn drop(&mut self) {
        let connections = self.connection_processes();
        drop(self.daemon.take());
        for pid in connections {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// A process: its id and its parent's.
struct Process {
    pid: u32,
    parent: u32,
}

/// Every process, from `/proc`.
fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (command) state ppid …`; the command may hold spaces and parentheses.
            let (_, rest) = stat.rsplit_once(')')?;
            let parent = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some(Process { pid, parent })
        })
        .collect()
}
