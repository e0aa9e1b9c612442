//! Start-up and configuration.

use anyhow::{Result, ensure};
use metamorph_tests::{Server, metamorph_command};

#[test]
fn starts_with_no_config_file_and_no_variables_using_the_defaults() -> Result<()> {
    let cwd = tempfile::tempdir()?;
    // Only the port is chosen (another test may hold 8080); everything else is default.
    let mut command = metamorph_command(cwd.path())?;
    let mut child = command
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().expect("piped");
    let mut address = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line: serde_json::Value = serde_json::from_str(&line?)?;
        if line["message"] == "listening" {
            address = line["address"].as_str().map(str::to_owned);
            break;
        }
    }
    let address = address.expect("the server logs the address it listens on");
    // stderr is closed from here on: the server must keep serving when its log reader goes.
    let health: serde_json::Value = metamorph_tests::http_client()
        .build()?
        .get(format!("http://{address}/api/health"))
        .send()?
        .json()?;
    child.kill()?;
    child.wait()?;
    ensure!(health["status"] == "ok", "{health}");
    ensure!(
        health["checks"]["database"]["backend"] == "sqlite",
        "{health}"
    );
    ensure!(
        cwd.path().join("data/metamorph.db").is_file(),
        "the SQLite file lives in ./data"
    );
    ensure!(
        cwd.path().join("data/storage").is_dir(),
        "stored files live in ./data/storage"
    );

    let shown = metamorph_command(cwd.path())?
        .args(["config", "show"])
        .output()?;
    let shown = String::from_utf8(shown.stdout)?;
    ensure!(shown.contains("listen = \"127.0.0.1:8080\""), "{shown}");
    ensure!(shown.contains("max_connections = 10"), "{shown}");
    ensure!(shown.contains("shutdown_timeout = \"30s\""), "{shown}");
    Ok(())
}

#[test]
fn a_bad_variable_stops_start_up_naming_it_and_what_is_allowed() -> Result<()> {
    let cwd = tempfile::tempdir()?;
    let output = metamorph_command(cwd.path())?
        .args(["serve"])
        .env("METAMORPH_LISTEN", "localhost-ish")
        .output()?;
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(
        output.status.code() == Some(78),
        "exit {:?}: {stderr}",
        output.status
    );
    ensure!(stderr.contains("METAMORPH_LISTEN"), "{stderr}");
    ensure!(
        stderr.contains("`localhost-ish` is not an address"),
        "{stderr}"
    );
    ensure!(
        stderr.contains("127.0.0.1:8080"),
        "says what is allowed: {stderr}"
    );
    ensure!(
        !cwd.path().join("data").exists(),
        "nothing is created when the config is refused"
    );

    let output = metamorph_command(cwd.path())?
        .args(["serve"])
        .env("METAMORPH_DATABASE_URL", "mysql://app:hunter2@db/x")
        .output()?;
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(output.status.code() == Some(78), "{stderr}");
    ensure!(
        stderr.contains("METAMORPH_DATABASE_URL") && stderr.contains("sqlite://"),
        "{stderr}"
    );
    ensure!(
        !stderr.contains("hunter2"),
        "passwords are never echoed: {stderr}"
    );
    Ok(())
}

#[test]
fn a_bad_file_value_names_the_file_and_the_key() -> Result<()> {
    let cwd = tempfile::tempdir()?;
    std::fs::write(
        cwd.path().join("metamorph.toml"),
        "[database]\nmax_connections = \"many\"\n",
    )?;
    let output = metamorph_command(cwd.path())?
        .args(["config", "check"])
        .output()?;
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(output.status.code() == Some(78), "{stderr}");
    ensure!(stderr.contains("database.max_connections"), "{stderr}");
    ensure!(stderr.contains("metamorph.toml"), "{stderr}");

    let explicit = cwd.path().join("elsewhere.toml");
    std::fs::write(&explicit, "listen = \"127.0.0.1:9123\"\n")?;
    let output = metamorph_command(cwd.path())?
        .args([
            "--config",
            explicit.to_str().unwrap_or_default(),
            "config",
            "show",
        ])
        .output()?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(String::from_utf8(output.stdout)?.contains("127.0.0.1:9123"));

    let output = metamorph_command(cwd.path())?
        .args(["--config", "missing.toml", "config", "check"])
        .output()?;
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(
        output.status.code() == Some(78)
            && stderr.contains("missing.toml")
            && stderr.contains("does not exist"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn environment_variables_override_the_file() -> Result<()> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), "[server]\nshutdown_timeout = \"1m\"\n")?;
    let server = Server::builder(metamorph_tests::Backend::Sqlite)
        .arg("--config")
        .arg(file.path().to_str().unwrap_or_default())
        .start()?;
    // The harness sets METAMORPH_SHUTDOWN_TIMEOUT=10s, which must win over the file's 1m.
    server.signal("TERM")?;
    let line = server
        .wait_for_log(|line| line["message"] == "shutting down: draining in-flight requests")?;
    ensure!(line["timeout"] == "10s", "{line}");
    Ok(())
}

#[test]
fn help_explains_every_flag_and_variable() -> Result<()> {
    let cwd = tempfile::tempdir()?;
    let help = metamorph_command(cwd.path())?.arg("--help").output()?;
    let help = String::from_utf8(help.stdout)?;
    for needle in [
        "serve",
        "migrate",
        "config",
        "--log-format",
        "--log-level",
        "--config",
        "METAMORPH_LISTEN",
        "METAMORPH_DATABASE_URL",
        "METAMORPH_PLUGINS_DIR",
        "METAMORPH_DATA_DIR",
    ] {
        ensure!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    Ok(())
}
