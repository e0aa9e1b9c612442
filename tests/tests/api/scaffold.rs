//! `metamorph plugins new`: the scaffolded crate builds, passes its own tests, and the
//! component it builds loads and converts.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use metamorph_tests::{Cli, metamorph_command};

/// The workspace's root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

fn cargo(dir: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Builds are shared between runs (and kept apart from the workspace's own artifacts).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    command
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target.join("scaffold"));
    command
}

fn succeed(command: &mut Command, what: &str) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    ensure!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

#[test]
fn a_scaffolded_plugin_builds_tests_loads_and_converts() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path().join("shout");
    let created = succeed(
        metamorph_command(scratch.path())?
            .args(["plugins", "new", "shout", "--dir"])
            .arg(&dir),
        "metamorph plugins new",
    )?;
    ensure!(
        created.contains("metamorph-plugin-shout") && created.contains("cargo test"),
        "{created}"
    );
    // Names that would not make a crate are refused, and nothing is overwritten.
    let refused = metamorph_command(scratch.path())?
        .args(["plugins", "new", "Bad Name"])
        .output()?;
    ensure!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("not a plugin name")
    );
    let again = metamorph_command(scratch.path())?
        .args(["plugins", "new", "shout", "--dir"])
        .arg(&dir)
        .output()?;
    ensure!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("already exists")
    );

    // The versions this workspace is known to build with.
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock"))?;
    let tested = cargo(&dir).args(["test", "--quiet"]).output()?;
    let report = String::from_utf8_lossy(&tested.stdout);
    ensure!(
        tested.status.success() && report.contains("2 passed"),
        "cargo test: {report}\n{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    succeed(
        cargo(&dir).args(["build", "--release", "--target", "wasm32-wasip2"]),
        "cargo build (wasm32-wasip2)",
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    let component = target.join("scaffold/wasm32-wasip2/release/metamorph_plugin_shout.wasm");

    let cli = Cli::with_plugins(&[])?;
    let checked = succeed(
        cli.command()?.args(["plugins", "check"]).arg(&component),
        "metamorph plugins check",
    )?;
    ensure!(
        checked.contains("shout 0.1.0")
            && checked.contains("txt → html")
            && checked.ends_with("ok\n"),
        "{checked}"
    );

    std::fs::copy(&component, cli.plugins_dir().join("shout.wasm"))?;
    let input = scratch.path().join("note.txt");
    std::fs::write(&input, "fish & <chips>")?;
    let converted = cli.convert(&input, "html", &[r#"title="Menu""#])?;
    ensure!(converted.success, "{}", converted.stderr);
    let html = std::fs::read_to_string(&converted.output)?;
    ensure!(
        html.contains("<title>Menu</title>") && html.contains("fish &amp; &lt;chips&gt;"),
        "{html}"
    );
    let bad = cli.convert(&input, "html", &["colour=\"red\""])?;
    ensure!(
        !bad.success && bad.stderr.contains("invalid_options"),
        "{}",
        bad.stderr
    );
    Ok(())
}
