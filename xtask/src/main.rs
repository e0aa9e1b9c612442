//! `cargo xtask`: the project's commands, for a fresh Debian machine with Rust from rustup.
//!
//! | command | what it does |
//! |---|---|
//! | `cargo xtask serve [ARGS]` | installs what the build needs, builds the release binary and the first-party plugins, runs `metamorph serve [ARGS]` |
//! | `cargo xtask build` | the same build, then says where everything is |
//! | `cargo xtask test` | formatting, lints, every test (SQLite and a throwaway PostgreSQL) |
//! | `cargo xtask bench` | the benchmarks, with their ratios against the reference |

mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Debian packages the build needs: libpq for diesel's PostgreSQL backend.
const BUILD_PACKAGES: &[&str] = &["libpq-dev", "pkg-config"];
/// Debian packages the tests need besides: a PostgreSQL server to test against.
const TEST_PACKAGES: &[&str] = &["postgresql"];
/// The target WebAssembly plugins are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  serve [ARGS]   build the release binary and first-party plugins, then run `metamorph serve ARGS`
  build          build the release binary and first-party plugins and say where they are
  test           check formatting and lints, then run every test (SQLite and PostgreSQL)
  bench          run the benchmarks and report their ratios

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
        "bench" => bench(),
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
            .env("DEBIAN_FRONTEND", "noninteractive");
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
    std::fs::create_dir_all(&plugins_dir)?;
    let plugins = std::fs::read_dir(&plugins_dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "wasm" || ext == "so")
        })
        .collect();
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
    step("building the metamorph binary the integration tests start");
    run(cargo().args(["build", "--locked", "-p", "metamorph"]))?;

    let stale = postgres::stop_stale();
    if stale > 0 {
        eprintln!("stopped {stale} PostgreSQL test server(s) left by an interrupted run");
    }
    let bin = postgres::find_bin()
        .context("PostgreSQL's programs were not found under /usr/lib/postgresql")?;
    let port = postgres::free_port()?;
    step(&format!(
        "starting a throwaway PostgreSQL on 127.0.0.1:{port}"
    ));
    let cluster = postgres::PgCluster::start(&bin, port)?;

    step("cargo test --workspace");
    let tested = run(cargo()
        .args(["test", "--workspace", "--locked"])
        .env("METAMORPH_TEST_POSTGRES_URL", cluster.url("postgres"))
        .env("METAMORPH_TEST_PG_BIN", &bin)
        .env("METAMORPH_BIN", target_dir().join("debug/metamorph")));
    step("stopping PostgreSQL");
    cluster.stop()?;
    tested
}

fn bench() -> Result<()> {
    ensure_packages(BUILD_PACKAGES)?;
    step("cargo bench");
    run(cargo().args(["bench", "--locked", "-p", "metamorph"]))?;
    report_bench_ratios()
}

/// Reads criterion's estimates and prints each benchmark against its reference, run in
/// the same session, as a ratio (absolute times on a shared machine say little).
fn report_bench_ratios() -> Result<()> {
    let criterion = target_dir().join("criterion");
    let mean = |group: &str, bench: &str| -> Result<f64> {
        let path = criterion.join(group).join(bench).join("new/estimates.json");
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
    };
    println!("\nbenchmark ratios (lower is better; 1.00× = as fast as the reference):");
    for (group, ours, reference, meaning) in BENCH_PAIRS {
        let (ours_ns, reference_ns) = (mean(group, ours)?, mean(group, reference)?);
        println!(
            "  {group}: {ours} {:.1} µs vs {reference} {:.1} µs → {:.2}×  ({meaning})",
            ours_ns / 1000.0,
            reference_ns / 1000.0,
            ours_ns / reference_ns
        );
    }
    Ok(())
}

/// `(criterion group, our benchmark, its reference, what the ratio means)`.
const BENCH_PAIRS: &[(&str, &str, &str, &str)] = &[(
    "request",
    "metamorph",
    "bare_warp",
    "cost of the service layer (request id, routing, metrics, access log) over warp alone",
)];
