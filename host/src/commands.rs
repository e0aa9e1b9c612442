//! Commands that work on plugins without a server: `convert`, `plugins list`, `plugins
//! check` and `plugins new`.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use metamorph_plugin_api::FormatName;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::plugins::{PluginKind, PluginRuntime, StepReport};

fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
}

/// Parses `key=value` options; values that are JSON (numbers, booleans, objects) are taken
/// as such, anything else as a string. Options named in `text` are always strings, so
/// that `pages=1` is the page range `"1"` where the option is text.
pub fn parse_options(pairs: &[String], text: &BTreeSet<String>) -> anyhow::Result<Value> {
    let mut options = Map::new();
    for pair in pairs {
        let (key, value) = pair.split_once('=').with_context(|| {
            format!("`{pair}` is not an option; write key=value, e.g. quality=80")
        })?;
        let key = key.trim();
        let value = if text.contains(key) {
            // A text option takes the value as written; a JSON string literal
            // (`title="Q3 report"`) is unquoted so both spellings work.
            match serde_json::from_str::<Value>(value) {
                Ok(Value::String(unquoted)) => Value::String(unquoted),
                _ => Value::String(value.to_owned()),
            }
        } else {
            serde_json::from_str(value).unwrap_or_else(|_not_json| Value::String(value.to_owned()))
        };
        options.insert(key.to_owned(), value);
    }
    Ok(Value::Object(options))
}

/// The format of a file, from its extension.
fn format_of(path: &Path) -> anyhow::Result<FormatName> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .with_context(|| {
            format!(
                "{} has no extension; say its format with --from",
                path.display()
            )
        })?;
    FormatName::parse(extension).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

/// `metamorph convert`.
pub fn convert(
    config: &Config,
    input: &Path,
    to: &str,
    from: Option<&str>,
    output: Option<PathBuf>,
    options: &[String],
) -> anyhow::Result<()> {
    let target = FormatName::parse(to).map_err(|error| anyhow::anyhow!("--to: {error}"))?;
    let source = match from {
        Some(from) => {
            FormatName::parse(from).map_err(|error| anyhow::anyhow!("--from: {error}"))?
        }
        None => format_of(input)?,
    };
    anyhow::ensure!(input.is_file(), "{} is not a file", input.display());
    let output = output.unwrap_or_else(|| {
        let stem = input.file_stem().map_or_else(
            || "output".into(),
            |stem| stem.to_string_lossy().into_owned(),
        );
        PathBuf::from(format!("{stem}.{target}"))
    });
    let runtime = PluginRuntime::start(&config.plugins)?;
    let options = parse_options(options, &runtime.text_options(&source, &target))?;
    let plan = runtime.plan(&source, &target, &options).map_err(|error| {
        let api = crate::error::ApiError::from(error);
        let fields = api
            .to_problem()
            .errors
            .iter()
            .map(|field| format!("\n  {} {}", field.path, field.message))
            .collect::<String>();
        if fields.is_empty() {
            anyhow::anyhow!("{} ({})", api.detail(), api.code().as_str())
        } else {
            anyhow::anyhow!(
                "the options are not valid ({}):{fields}",
                api.code().as_str()
            )
        }
    })?;
    let bar = progress_bar();
    let report = |step: &StepReport| {
        let what = format!(
            "step {}/{}: {} → {} ({})",
            step.number, step.of, step.source, step.target, step.plugin
        );
        match (step.elapsed, &bar) {
            (None, Some(bar)) => bar.set_message(what),
            (Some(elapsed), Some(bar)) => bar.println(format!("  {what} in {}", human(elapsed))),
            (None, None) => eprintln!("{what}"),
            (Some(elapsed), None) => eprintln!("  done in {}", human(elapsed)),
        }
    };
    let started = std::time::Instant::now();
    let result = runtime.run(&plan, input, &output, &report);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    // Here the person running the command is the operator: show the plugin's own words.
    result.map_err(|error| anyhow::anyhow!("{error} ({})", error.code()))?;
    let size = std::fs::metadata(&output)
        .map(|metadata| metadata.len())
        .unwrap_or(0);
    print(&format!(
        "{} → {} ({}, {} in {})\n",
        input.display(),
        output.display(),
        bytesize::ByteSize(size),
        plan.steps
            .iter()
            .map(|step| step.plugin.name().to_owned())
            .collect::<Vec<_>>()
            .join(" → "),
        human(started.elapsed())
    ));
    Ok(())
}

fn human(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// A spinner with the elapsed time, when standard error is a terminal.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// `metamorph plugins list`.
pub fn list(config: &Config) -> anyhow::Result<()> {
    let runtime = PluginRuntime::start(&config.plugins)?;
    let catalog = runtime.catalog();
    let mut text = String::new();
    if catalog.plugins.is_empty() && catalog.refused.is_empty() {
        text.push_str(&format!(
            "no plugins in {}\n",
            config
                .plugins
                .dirs
                .iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for plugin in &catalog.plugins {
        text.push_str(&format!(
            "{:<16} {:<10} {:<6} {:>4} conversions  {}\n",
            plugin.name(),
            plugin.described.info.version,
            plugin.kind.as_str(),
            plugin.described.pairs.len(),
            plugin.file.display()
        ));
    }
    for refused in &catalog.refused {
        text.push_str(&format!(
            "refused: {}: {}\n",
            refused.path.display(),
            refused.reason
        ));
    }
    print(&text);
    Ok(())
}

/// `metamorph plugins check`: loads one file as the server would, and says what it offers
/// or why it is refused.
pub fn check(config: &Config, file: &Path) -> anyhow::Result<()> {
    let kind = match file.extension().and_then(|extension| extension.to_str()) {
        Some("wasm") => PluginKind::Wasm,
        Some("so" | "dylib" | "dll") => PluginKind::Native,
        _ => bail!(
            "{} is neither a .wasm component nor a native library (.so)",
            file.display()
        ),
    };
    let mut empty = config.plugins.clone();
    empty.dirs = Vec::new();
    let runtime: Arc<PluginRuntime> = PluginRuntime::start(&empty)?;
    let plugin = runtime
        .load(file, kind)
        .map_err(|reason| anyhow::anyhow!("{} is refused: {reason}", file.display()))?;
    let info = &plugin.described.info;
    let mut text = format!("{} {}: {}\n", info.name, info.version, info.description);
    for pair in &plugin.described.pairs {
        text.push_str(&format!(
            "  {} → {} (cost {})\n",
            pair.source, pair.target, pair.cost
        ));
    }
    if !plugin.described.templates.is_empty() {
        let templates: Vec<String> = plugin
            .described
            .templates
            .iter()
            .map(ToString::to_string)
            .collect();
        text.push_str(&format!("  templates: {}\n", templates.join(", ")));
    }
    text.push_str("ok\n");
    print(&text);
    Ok(())
}

/// `metamorph plugins new`: a plugin crate that builds, converts and tests.
pub fn scaffold(name: &str, dir: Option<PathBuf>, api_path: Option<PathBuf>) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    anyhow::ensure!(
        valid,
        "`{name}` is not a plugin name: use lowercase letters, digits and `-`, starting with a letter"
    );
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    anyhow::ensure!(!dir.exists(), "{} already exists", dir.display());
    let dir = std::path::absolute(&dir)?;
    // Found before anything is written, so a failure leaves no half-made folder behind.
    let api = match api_path {
        Some(path) => std::fs::canonicalize(&path)
            .with_context(|| format!("--api-path {} does not exist", path.display()))?,
        None => find_plugin_api(&dir).context(
            "cannot find Metamorph's plugin-api crate near here or near the metamorph binary; \
             pass --api-path <checkout>/plugin-api",
        )?,
    };
    std::fs::create_dir_all(dir.join("src"))?;
    let dir = std::fs::canonicalize(&dir)?;
    let relative = relative_path(&dir, &api);
    // Inside the Metamorph workspace (its plugins/ folder) the crate is a member; anywhere
    // else it is a workspace of its own.
    let in_workspace = api
        .parent()
        .is_some_and(|checkout| dir.starts_with(checkout.join("plugins")));
    let crate_name = format!("metamorph-plugin-{name}");
    let file = crate_name.replace('-', "_");
    let fill = |template: &str| {
        template
            .replace("{{crate}}", &crate_name)
            .replace("{{name}}", name)
            .replace("{{file}}", &file)
            .replace("{{api_path}}", &relative.display().to_string())
            .replace(
                "{{workspace}}",
                if in_workspace { "" } else { "\n[workspace]\n" },
            )
    };
    let mut manifest = fill(include_str!("../templates/plugin/Cargo.toml.in"));
    if in_workspace {
        // A member inherits the workspace's profiles; its own would be ignored with a warning.
        manifest = manifest
            .split("[profile.release]")
            .next()
            .unwrap_or_default()
            .trim_end()
            .to_owned()
            + "\n";
    }
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::write(
        dir.join("src/lib.rs"),
        fill(include_str!("../templates/plugin/lib.rs.in")),
    )?;
    std::fs::write(
        dir.join("README.md"),
        fill(include_str!("../templates/plugin/README.md.in")),
    )?;
    print(&format!(
        "created {} ({crate_name})\nnext:\n  cd {}\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  metamorph plugins check target/wasm32-wasip2/release/{file}.wasm\n",
        dir.display(),
        dir.display()
    ));
    Ok(())
}

/// `plugin-api` of a Metamorph checkout above `start` or above the running binary.
fn find_plugin_api(start: &Path) -> Option<PathBuf> {
    let from_exe = std::env::current_exe().ok();
    // Last, the checkout this binary was built from, if it is still there (a binary built
    // into a target folder outside the checkout).
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    let candidates = start
        .ancestors()
        .chain(from_exe.iter().flat_map(|exe| exe.ancestors()))
        .chain(built_from);
    for dir in candidates {
        let api = dir.join("plugin-api");
        if api.join("Cargo.toml").is_file() && api.join("wit/plugin.wit").is_file() {
            return Some(api);
        }
    }
    None
}

/// `to` relative to `from` (both absolute).
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for component in &to[common..] {
        relative.push(component);
    }
    relative
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_json_values_and_fall_back_to_strings() {
        let text = BTreeSet::from(["pages".to_owned()]);
        let options = parse_options(
            &[
                "quality=80".into(),
                "lossless=true".into(),
                "fit=cover".into(),
                "pages=1".into(),
            ],
            &text,
        )
        .unwrap();
        assert_eq!(
            options,
            serde_json::json!({"quality": 80, "lossless": true, "fit": "cover", "pages": "1"})
        );
        let text = BTreeSet::from(["title".to_owned()]);
        assert_eq!(
            parse_options(&[r#"title="Q3 report""#.into()], &text).unwrap(),
            serde_json::json!({"title": "Q3 report"})
        );
        assert_eq!(
            parse_options(&["title=Q3 \"draft\"".into()], &text).unwrap(),
            serde_json::json!({"title": "Q3 \"draft\""})
        );
        assert!(
            parse_options(&["nope".into()], &text)
                .unwrap_err()
                .to_string()
                .contains("key=value")
        );
    }

    #[test]
    fn relative_paths_climb_then_descend() {
        assert_eq!(
            relative_path(Path::new("/a/b/c"), Path::new("/a/x")),
            PathBuf::from("../../x")
        );
        assert_eq!(
            relative_path(Path::new("/a"), Path::new("/a/x/y")),
            PathBuf::from("x/y")
        );
    }
}
