//! A throwaway PostgreSQL server on 127.0.0.1, made with the system's `initdb` and `pg_ctl`.
//!
//! Used by `cargo xtask test` for the shared test server and by the integration tests for a
//! private one they can stop. Only the standard library is used, so it builds before any
//! system package is installed.

#![allow(
    unreachable_pub,
    dead_code,
    reason = "one file shared by xtask and the tests crate, each using part of it"
)]

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster. Stopped (and its files removed) by [`PgCluster::stop`] or on drop.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
    running: bool,
}

/// The newest installed PostgreSQL's `bin` folder (Debian keeps `initdb` off the PATH).
pub fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Stops and deletes clusters whose creating process is gone (a run killed before it could
/// clean up); returns how many.
pub fn stop_stale() -> usize {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut stopped = 0;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("metamorph-pg-") else {
            continue;
        };
        let Some(owner) = rest
            .rsplit('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if alive(owner) {
            continue;
        }
        let root = entry.path();
        if let Some(bin) = find_bin() {
            let data = root.join("data");
            if let Some(data) = data.to_str() {
                let _ = run_pg(
                    &bin,
                    "pg_ctl",
                    &["-D", data, "-m", "immediate", "-w", "-s", "stop"],
                );
            }
        }
        if std::fs::remove_dir_all(&root).is_ok() {
            stopped += 1;
        }
    }
    stopped
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

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root (PostgreSQL refuses
/// to run as root).
fn run_pg(bin: &Path, program: &str, args: &[&str]) -> io::Result<Output> {
    let program = bin.join(program);
    let output = if is_root() {
        Command::new("runuser")
            .arg("-u")
            .arg("postgres")
            .arg("--")
            .arg(&program)
            .args(args)
            .output()?
    } else {
        Command::new(&program).args(args).output()?
    };
    if output.status.success() {
        Ok(output)
    } else {
        Err(io::Error::other(format!(
            "{} {} failed: {}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

impl PgCluster {
    /// Creates a cluster in a new folder under the system temp dir and starts it on `port`
    /// (trust authentication, user `postgres`, fsync off: made for tests, not for data).
    pub fn start(bin: &Path, port: u16) -> io::Result<Self> {
        let root = std::env::temp_dir().join(format!("metamorph-pg-{port}-{}", std::process::id()));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        std::fs::create_dir_all(&root)?;
        if is_root() {
            // The server runs as `postgres`: it must own its folder.
            let status = Command::new("chown").arg("postgres:").arg(&root).status()?;
            if !status.success() {
                return Err(io::Error::other(
                    "cannot chown the cluster folder to postgres",
                ));
            }
        }
        let cluster = Self {
            bin: bin.to_path_buf(),
            root,
            port,
            running: false,
        };
        let data = cluster.data_dir();
        run_pg(
            bin,
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        )?;
        let mut cluster = cluster;
        cluster.resume()?;
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Starts the server again after [`PgCluster::pause`].
    pub fn resume(&mut self) -> io::Result<()> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            path_str(&self.root)?
        );
        let log = self.root.join("postgres.log");
        run_pg(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir())?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "-s",
                "-o",
                &options,
                "start",
            ],
        )?;
        self.running = true;
        Ok(())
    }

    /// Stops the server (fast shutdown: open sessions are ended), keeping its data.
    pub fn pause(&mut self) -> io::Result<()> {
        if self.running {
            run_pg(
                &self.bin,
                "pg_ctl",
                &[
                    "-D",
                    path_str(&self.data_dir())?,
                    "-m",
                    "fast",
                    "-w",
                    "-s",
                    "stop",
                ],
            )?;
            self.running = false;
        }
        Ok(())
    }

    /// Stops the server and deletes its files.
    pub fn stop(mut self) -> io::Result<()> {
        self.pause()?;
        std::fs::remove_dir_all(&self.root)
    }

    /// A connection URL for `database` as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.pause();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn path_str(path: &Path) -> io::Result<&str> {
    path.to_str()
        .ok_or_else(|| io::Error::other(format!("{} is not UTF-8", path.display())))
}
