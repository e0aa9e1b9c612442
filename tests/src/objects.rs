//! Independent clients for the object stores `cargo xtask test` starts besides S3:
//! Azurite (Azure Blob), fake-gcs-server (Google Cloud Storage), an FTP server (pyftpdlib)
//! and an SFTP server (OpenSSH's `sshd`). They read back what the service stored without
//! OpenDAL: Azure with the official Python SDK of the tests' virtual environment
//! (`METAMORPH_TEST_PYTHON`), GCS with `curl` on the JSON API, FTP with `curl`, SFTP with
//! OpenSSH's `sftp` command in batch mode.
//!
//! Paths are relative to the container, bucket, FTP home or SFTP start folder (`a/b.bin`,
//! no leading `/`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Variable holding the tests' `python3`, which has `azure-storage-blob`.
pub const PYTHON_VAR: &str = "METAMORPH_TEST_PYTHON";

/// `METAMORPH_TEST_<name>`, or an error that says how to get it.
fn var(name: &str, server: &str) -> Result<String> {
    std::env::var(format!("METAMORPH_TEST_{name}")).with_context(|| {
        format!(
            "METAMORPH_TEST_{name} is not set: run the tests with `cargo xtask test`, \
             which starts {server}"
        )
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters (and `/` when
/// `keep_slash`), as URLs and SigV4's canonical requests want it.
pub(crate) fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && byte == b'/')
        {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Runs `command` with `input` on its standard input; its standard output, or an error
/// with its standard error.
pub(crate) fn output_of(command: &mut Command, input: Option<&[u8]>) -> Result<Vec<u8>> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let writer = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => {
            let input = input.to_vec();
            Some(std::thread::spawn(move || stdin.write_all(&input)))
        }
        _ => None,
    };
    let output = child.wait_with_output()?;
    let written = writer.map(std::thread::JoinHandle::join);
    if !output.status.success() {
        bail!(
            "{program} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if let Some(written) = written {
        written.map_err(|_panic| anyhow::anyhow!("the writer to {program} panicked"))??;
    }
    Ok(output.stdout)
}

/// A name in a server's folder listing.
enum Entry {
    File(String),
    Folder(String),
}

/// The paths of the files starting with `prefix` on a server with folders, sorted: the
/// prefix's folder and every folder under it that can hold a match are listed with
/// `list_folder` (given a folder path ending in `/`, or `""` for the top).
fn walk(
    prefix: &str,
    mut list_folder: impl FnMut(&str) -> Result<Vec<Entry>>,
) -> Result<Vec<String>> {
    let prefix = prefix.trim_start_matches('/');
    let top = prefix.rfind('/').map_or("", |slash| &prefix[..=slash]);
    let mut found = Vec::new();
    let mut folders = vec![top.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in list_folder(&folder)? {
            match entry {
                Entry::Folder(name) => {
                    let path = format!("{folder}{name}/");
                    if path.starts_with(prefix) || prefix.starts_with(&path) {
                        folders.push(path);
                    }
                }
                Entry::File(name) => {
                    let path = format!("{folder}{name}");
                    if path.starts_with(prefix) {
                        found.push(path);
                    }
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `curl -sS` that fails on HTTP errors.
pub(crate) fn curl() -> Command {
    let mut command = Command::new("curl");
    command.args(["-sS", "--fail"]);
    command
}

/// The Azure client: `python3 -c AZURE_SCRIPT get|put|list ENDPOINT ACCOUNT KEY CONTAINER
/// NAME_OR_PREFIX` (`put` reads the content from standard input).
const AZURE_SCRIPT: &str = "\
import sys
try:
    from azure.storage.blob import BlobServiceClient
    op, endpoint, account, key, container, name = sys.argv[1:7]
    client = BlobServiceClient.from_connection_string(
        f'DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint={endpoint};'
    ).get_container_client(container)
    if op == 'get':
        sys.stdout.buffer.write(client.download_blob(name).readall())
    elif op == 'put':
        client.upload_blob(name, sys.stdin.buffer.read(), overwrite=True)
    elif op == 'list':
        for blob in client.list_blobs(name_starts_with=name):
            print(blob.name)
except Exception as error:
    print(f'{type(error).__name__}: {error}', file=sys.stderr)
    sys.exit(1)
";

/// The Azure Blob emulator of the tests (Azurite), from `METAMORPH_TEST_AZBLOB_*`.
#[derive(Clone, Debug)]
pub struct AzblobTarget {
    /// The blob endpoint, `http://127.0.0.1:<port>/devstoreaccount1`.
    pub endpoint: String,
    /// The container.
    pub container: String,
    /// The account name (`devstoreaccount1`).
    pub account_name: String,
    /// The account key (Azurite's well-known one).
    pub account_key: String,
    /// A `python3` with `azure-storage-blob`, for the independent client.
    pub python: String,
}

impl AzblobTarget {
    /// The emulator `cargo xtask test` started.
    pub fn from_env() -> Result<Self> {
        let server = "an Azure Blob emulator (Azurite)";
        Ok(Self {
            endpoint: var("AZBLOB_ENDPOINT", server)?,
            container: var("AZBLOB_CONTAINER", server)?,
            account_name: var("AZBLOB_ACCOUNT_NAME", server)?,
            account_key: var("AZBLOB_ACCOUNT_KEY", server)?,
            python: var("PYTHON", server)?,
        })
    }

    fn sdk(&self, op: &str, name: &str, input: Option<&[u8]>) -> Result<Vec<u8>> {
        output_of(
            Command::new(&self.python).args([
                "-c",
                AZURE_SCRIPT,
                op,
                &self.endpoint,
                &self.account_name,
                &self.account_key,
                &self.container,
                name,
            ]),
            input,
        )
        .with_context(|| format!("Azure {op} {name}"))
    }

    /// The content of blob `path`, read with the Azure SDK for Python.
    pub fn get(&self, path: &str) -> Result<Vec<u8>> {
        self.sdk("get", path, None)
    }

    /// Stores `content` as blob `path` with the Azure SDK for Python.
    pub fn put(&self, path: &str, content: &[u8]) -> Result<()> {
        self.sdk("put", path, Some(content)).map(drop)
    }

    /// The names of the blobs starting with `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let listed = String::from_utf8(self.sdk("list", prefix, None)?)?;
        let mut names: Vec<String> = listed.lines().map(str::to_owned).collect();
        names.sort();
        Ok(names)
    }
}

/// The Google Cloud Storage emulator of the tests (fake-gcs-server, no authentication),
/// from `METAMORPH_TEST_GCS_*`.
#[derive(Clone, Debug)]
pub struct GcsTarget {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
}

impl GcsTarget {
    /// The emulator `cargo xtask test` started.
    pub fn from_env() -> Result<Self> {
        let server = "a GCS emulator (fake-gcs-server)";
        Ok(Self {
            endpoint: var("GCS_ENDPOINT", server)?,
            bucket: var("GCS_BUCKET", server)?,
        })
    }

    /// The content of object `path`, read with `curl` on the JSON API.
    pub fn get(&self, path: &str) -> Result<Vec<u8>> {
        output_of(
            curl().arg(format!(
                "{}/storage/v1/b/{}/o/{}?alt=media",
                self.endpoint,
                percent_encode(&self.bucket, false),
                percent_encode(path, false)
            )),
            None,
        )
        .with_context(|| format!("GCS get {path}"))
    }

    /// Stores `content` as object `path` with `curl` (a JSON API media upload).
    pub fn put(&self, path: &str, content: &[u8]) -> Result<()> {
        output_of(
            curl()
                .args([
                    "-X",
                    "POST",
                    "-H",
                    "Content-Type: application/octet-stream",
                    "--data-binary",
                    "@-",
                ])
                .arg(format!(
                    "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
                    self.endpoint,
                    percent_encode(&self.bucket, false),
                    percent_encode(path, false)
                )),
            Some(content),
        )
        .with_context(|| format!("GCS put {path}"))
        .map(drop)
    }

    /// The names of the objects starting with `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/storage/v1/b/{}/o?prefix={}",
                self.endpoint,
                percent_encode(&self.bucket, false),
                percent_encode(prefix, false)
            );
            if let Some(token) = &page_token {
                url.push_str(&format!("&pageToken={}", percent_encode(token, false)));
            }
            let page: serde_json::Value =
                serde_json::from_slice(&output_of(curl().arg(url), None)?)?;
            names.extend(
                page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item["name"].as_str().map(str::to_owned)),
            );
            match page["nextPageToken"].as_str() {
                Some(token) if !token.is_empty() => page_token = Some(token.to_owned()),
                _ => break,
            }
        }
        names.sort();
        Ok(names)
    }
}

/// The FTP server of the tests (pyftpdlib), from `METAMORPH_TEST_FTP_*`. The user's home
/// is writable and is the root of the paths.
#[derive(Clone, Debug)]
pub struct FtpTarget {
    /// `ftp://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The user name.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// curl's exit code when the server refuses to change into a folder (it does not exist).
const CURL_REMOTE_ACCESS_DENIED: i32 = 9;

impl FtpTarget {
    /// The server `cargo xtask test` started.
    pub fn from_env() -> Result<Self> {
        let server = "an FTP server (pyftpdlib)";
        Ok(Self {
            endpoint: var("FTP_ENDPOINT", server)?,
            user: var("FTP_USER", server)?,
            password: var("FTP_PASSWORD", server)?,
        })
    }

    /// `curl` logged in, on `path` (a folder when it ends with `/`).
    fn curl(&self, path: &str) -> Command {
        let mut command = curl();
        command
            .arg("--user")
            .arg(format!("{}:{}", self.user, self.password))
            .arg(format!(
                "{}/{}",
                self.endpoint,
                percent_encode(path.trim_start_matches('/'), true)
            ));
        command
    }

    /// The content of file `path`, downloaded with `curl` (passive mode).
    pub fn get(&self, path: &str) -> Result<Vec<u8>> {
        output_of(&mut self.curl(path), None).with_context(|| format!("FTP get {path}"))
    }

    /// Uploads `content` as file `path` with `curl`, creating its folders.
    pub fn put(&self, path: &str, content: &[u8]) -> Result<()> {
        output_of(
            self.curl(path).args(["--ftp-create-dirs", "-T", "-"]),
            Some(content),
        )
        .with_context(|| format!("FTP put {path}"))
        .map(drop)
    }

    /// The paths of the files starting with `prefix` (its folder is walked recursively
    /// with `MLSD`), sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        walk(prefix, |folder| {
            let mut command = self.curl(folder);
            command.args(["-X", "MLSD"]);
            let listing = match command.output()? {
                output if output.status.success() => String::from_utf8(output.stdout)?,
                output if output.status.code() == Some(CURL_REMOTE_ACCESS_DENIED) => {
                    return Ok(Vec::new());
                }
                output => bail!(
                    "FTP MLSD {folder}: curl failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            };
            Ok(listing
                .lines()
                .filter_map(|line| {
                    // `type=file;size=5;modify=…; name`
                    let (facts, name) = line.split_once(' ')?;
                    let kind = facts
                        .split(';')
                        .find_map(|fact| fact.strip_prefix("type=").or(fact.strip_prefix("Type=")))?
                        .to_ascii_lowercase();
                    match kind.as_str() {
                        "dir" => Some(Entry::Folder(name.to_owned())),
                        "file" => Some(Entry::File(name.to_owned())),
                        _ => None,
                    }
                })
                .collect())
        })
    }
}

/// The SFTP server of the tests (OpenSSH's `sshd`, SFTP only), from
/// `METAMORPH_TEST_SFTP_*`. Sessions start in its folder [`SftpTarget::root`], the root of
/// the paths. Read and written with OpenSSH's `sftp` in batch mode, which checks the
/// server's host key against the known-hosts file `cargo xtask test` wrote.
#[derive(Clone, Debug)]
pub struct SftpTarget {
    /// `127.0.0.1`.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// The client's private key file (OpenSSH format, no passphrase).
    pub key: String,
    /// A known-hosts file with the server's host key.
    pub known_hosts: String,
    /// The absolute path of the folder sessions start in, on the server.
    pub root: String,
}

impl SftpTarget {
    /// The server `cargo xtask test` started.
    pub fn from_env() -> Result<Self> {
        let server = "an SFTP server (OpenSSH's sshd)";
        Ok(Self {
            host: var("SFTP_HOST", server)?,
            port: var("SFTP_PORT", server)?
                .parse()
                .context("METAMORPH_TEST_SFTP_PORT")?,
            user: var("SFTP_USER", server)?,
            key: var("SFTP_KEY", server)?,
            known_hosts: var("SFTP_KNOWN_HOSTS", server)?,
            root: var("SFTP_ROOT", server)?,
        })
    }

    /// The text of the client's private key, as a destination's `private_key` takes it.
    pub fn private_key(&self) -> Result<String> {
        std::fs::read_to_string(&self.key).with_context(|| format!("cannot read {}", self.key))
    }

    /// Runs `sftp` with the batch `commands` (one a line; a `-` before one ignores its
    /// failure); its standard output.
    fn batch(&self, commands: &str) -> Result<Vec<u8>> {
        output_of(
            Command::new("sftp")
                .args(["-q", "-b", "-", "-F", "/dev/null", "-i"])
                .arg(&self.key)
                .arg("-o")
                .arg(format!("UserKnownHostsFile={}", self.known_hosts))
                .args([
                    "-o",
                    "GlobalKnownHostsFile=/dev/null",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "IdentitiesOnly=yes",
                    "-o",
                    "ConnectTimeout=10",
                    "-o",
                    "LogLevel=ERROR",
                    "-P",
                ])
                .arg(self.port.to_string())
                .arg(format!("{}@{}", self.user, self.host)),
            Some(commands.as_bytes()),
        )
    }

    /// `path` as one word of an `sftp` command. Double quotes keep spaces; paths with
    /// quotes, backslashes, glob characters or line breaks are refused (`sftp` would
    /// unescape or expand them).
    fn word(path: &str) -> Result<String> {
        if path.contains(['"', '\\', '*', '?', '[', ']', '\n', '\r']) {
            bail!("the sftp client of the tests does not take the path {path:?}");
        }
        Ok(format!("\"{path}\""))
    }

    /// The content of file `path`, downloaded with `sftp`.
    pub fn get(&self, path: &str) -> Result<Vec<u8>> {
        let local = tempfile::tempdir()?;
        let file = local.path().join("got");
        self.batch(&format!(
            "get {} {}\n",
            Self::word(path)?,
            Self::word(&file.to_string_lossy())?
        ))
        .with_context(|| format!("SFTP get {path}"))?;
        Ok(std::fs::read(&file)?)
    }

    /// Uploads `content` as file `path` with `sftp`, creating its folders.
    pub fn put(&self, path: &str, content: &[u8]) -> Result<()> {
        let local = tempfile::tempdir()?;
        let file = local.path().join("put");
        std::fs::write(&file, content)?;
        let mut commands = String::new();
        let mut folder = String::new();
        for part in path
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            folder.push_str(part);
            commands.push_str(&format!("-mkdir {}\n", Self::word(&folder)?));
            folder.push('/');
        }
        commands.push_str(&format!(
            "put {} {}\n",
            Self::word(&file.to_string_lossy())?,
            Self::word(path)?
        ));
        self.batch(&commands)
            .with_context(|| format!("SFTP put {path}"))
            .map(drop)
    }

    /// The paths of the files starting with `prefix` (its folder is walked recursively
    /// with `ls -la`), sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        walk(prefix, |folder| {
            // `-`: a missing folder lists nothing (a failed login still fails).
            let listing = self
                .batch(&format!(
                    "-ls -la {}\n",
                    Self::word(if folder.is_empty() { "." } else { folder })?
                ))
                .with_context(|| format!("SFTP ls {folder}"))?;
            Ok(String::from_utf8(listing)?
                .lines()
                .filter_map(|line| {
                    let (kind, name) = Self::entry(line)?;
                    // `sftp` shows the folder's path before each name.
                    let name = Path::new(name).file_name()?.to_string_lossy().into_owned();
                    if name == "." || name == ".." {
                        return None;
                    }
                    match kind {
                        'd' => Some(Entry::Folder(name)),
                        '-' => Some(Entry::File(name)),
                        _ => None,
                    }
                })
                .collect())
        })
    }

    /// The type (`d`, `-`, `l`…) and name of a line of `ls -l`:
    /// `-rw-r--r--  ? root  root  70000 Nov 23 15:34 folder/a b.bin` (nine columns, the
    /// name last, with its spaces; the type is the first letter of the mode).
    fn entry(line: &str) -> Option<(char, &str)> {
        // Not the echoed commands (`sftp> ls -la a`).
        if line.starts_with("sftp>") {
            return None;
        }
        let kind = line.chars().next()?;
        let mut rest = line;
        for _ in 0..8 {
            rest = rest.trim_start().split_once(' ')?.1;
        }
        // One space before the name, which may start with spaces itself.
        Some((kind, rest))
    }
}

#[cfg(test)]
mod tests {
    //! Round trips through the servers `cargo xtask test` starts: each object is stored
    //! one independent way and read back with `get`. Skipped (with a note) without them.

    use super::{AzblobTarget, FtpTarget, GcsTarget, SftpTarget, percent_encode};
    use crate::S3Target;
    use anyhow::Result;

    /// Whether `METAMORPH_TEST_<var>` is set; says the test is skipped if not.
    fn available(var: &str) -> bool {
        let set = std::env::var_os(format!("METAMORPH_TEST_{var}")).is_some();
        if !set {
            eprintln!(
                "skipped: METAMORPH_TEST_{var} is not set (run the tests with `cargo xtask test`)"
            );
        }
        set
    }

    /// Every byte value, and a name with a space and a `+` under a fresh folder.
    fn sample() -> (String, String, Vec<u8>) {
        let folder = format!("smoke-{}/", crate::uuid_like());
        let path = format!("{folder}sub dir/a b+c.bin");
        (folder, path, (0..=255u8).cycle().take(70_000).collect())
    }

    #[test]
    fn encoding() {
        assert_eq!(percent_encode("a b/c+d~é", true), "a%20b/c%2Bd~%C3%A9");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
    }

    /// Puts a sample object, reads it back, lists its folder, and reads a missing one.
    fn round_trip(
        put: impl Fn(&str, &[u8]) -> Result<()>,
        get: impl Fn(&str) -> Result<Vec<u8>>,
        list: impl Fn(&str) -> Result<Vec<String>>,
    ) -> Result<()> {
        let (folder, path, content) = sample();
        put(&path, &content)?;
        assert_eq!(get(&path)?, content);
        assert_eq!(list(&folder)?, vec![path.clone()]);
        assert!(list(&format!("{folder}x"))?.is_empty());
        assert!(get(&format!("{path}.missing")).is_err());
        Ok(())
    }

    #[test]
    fn azblob_round_trip() -> Result<()> {
        if !available("AZBLOB_ENDPOINT") {
            return Ok(());
        }
        let target = AzblobTarget::from_env()?;
        round_trip(
            |path, content| target.put(path, content),
            |path| target.get(path),
            |prefix| target.list(prefix),
        )
    }

    #[test]
    fn gcs_round_trip() -> Result<()> {
        if !available("GCS_ENDPOINT") {
            return Ok(());
        }
        let target = GcsTarget::from_env()?;
        round_trip(
            |path, content| target.put(path, content),
            |path| target.get(path),
            |prefix| target.list(prefix),
        )
    }

    /// A round trip on a server with folders: a nested object and one at the top, read
    /// back (the top one also by `top_prefix` + its path), listed by folder and by name
    /// prefix.
    fn folder_round_trip(
        put: impl Fn(&str, &[u8]) -> Result<()>,
        get: impl Fn(&str) -> Result<Vec<u8>>,
        list: impl Fn(&str) -> Result<Vec<String>>,
        top_prefix: &str,
    ) -> Result<()> {
        let (folder, path, content) = sample();
        let top = format!("{folder}top.txt");
        put(&path, &content)?;
        put(&top, b"top")?;
        assert_eq!(get(&path)?, content);
        assert_eq!(get(&format!("{top_prefix}{top}"))?, b"top");
        assert_eq!(list(&folder)?, vec![path.clone(), top.clone()]);
        assert_eq!(list(&format!("{folder}t"))?, vec![top]);
        assert!(list(&format!("{folder}nothing/"))?.is_empty());
        assert!(get(&format!("{path}.missing")).is_err());
        Ok(())
    }

    #[test]
    fn ftp_round_trip() -> Result<()> {
        if !available("FTP_ENDPOINT") {
            return Ok(());
        }
        let target = FtpTarget::from_env()?;
        folder_round_trip(
            |path, content| target.put(path, content),
            |path| target.get(path),
            |prefix| target.list(prefix),
            "/",
        )
    }

    #[test]
    fn sftp_round_trip() -> Result<()> {
        if !available("SFTP_HOST") {
            return Ok(());
        }
        let target = SftpTarget::from_env()?;
        folder_round_trip(
            |path, content| target.put(path, content),
            |path| target.get(path),
            |prefix| target.list(prefix),
            "",
        )?;
        assert!(target.private_key()?.contains("PRIVATE KEY"));
        Ok(())
    }

    #[test]
    fn sftp_listing_lines() {
        assert_eq!(
            SftpTarget::entry("-rwxr-xr-x    ? root     root            3 Nov 23 15:34 a/x  y.txt"),
            Some(('-', "a/x  y.txt"))
        );
        assert_eq!(
            SftpTarget::entry("drwxr-xr-x    ? root     root         4096 Nov 23  2024 a/."),
            Some(('d', "a/."))
        );
        assert_eq!(SftpTarget::entry("sftp> ls -la a"), None);
    }

    #[test]
    fn s3_round_trip() -> Result<()> {
        if !available("S3_ENDPOINT") {
            return Ok(());
        }
        let target = S3Target::from_env()?;
        let (folder, path, content) = sample();
        target.put(&path, &content)?;
        assert_eq!(target.get(&path)?, content);
        assert_eq!(target.list(&folder)?, vec![(path.clone(), 70_000)]);
        assert!(target.get(&format!("{path}.missing")).is_err());
        Ok(())
    }
}
