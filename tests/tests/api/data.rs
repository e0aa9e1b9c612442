//! The data plugin: every declared pair, checked by Python's own parsers (`csv`, `json`,
//! `tomllib`, PyYAML, `xml.etree`, openpyxl), and its options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use metamorph_tests::{Cli, corpus};
use serde_json::Value;

const DATA: &str = "metamorph_plugin_data.wasm";

/// The formats of the data plugin.
const FORMATS: [&str; 8] = [
    "csv", "tsv", "json", "ndjson", "yaml", "toml", "xml", "xlsx",
];

/// Reads files with Python's parsers and prints, for each, its records as a list of objects
/// whose values are text (`""` for empty or missing), in the file's column order.
const READER: &str = r#"
import csv, io, json, sys, tomllib, yaml, openpyxl
import xml.etree.ElementTree as ET

def number(text):
    """Numbers compare by value: `-91.9475000` in a CSV is `-91.9475` in a workbook."""
    try:
        value = float(text)
    except ValueError:
        return text
    if value != value or value in (float("inf"), float("-inf")):
        return text
    return str(int(value)) if value.is_integer() else repr(value)

def text(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return number(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return number(str(value))

def records(path, fmt):
    if fmt in ("csv", "tsv"):
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f, delimiter="," if fmt == "csv" else "\t"))
    if fmt == "json":
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    if fmt == "ndjson":
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f.read().splitlines() if line.strip()]
    if fmt == "yaml":
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    if fmt == "toml":
        with open(path, "rb") as f:
            document = tomllib.load(f)
        (items,) = document.values()
        return items
    if fmt == "xml":
        root = ET.parse(path).getroot()
        return [{child.tag: child.text for child in item} for item in root]
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        return [dict(zip(rows[0], row)) for row in rows[1:]]
    raise ValueError(fmt)

out = {}
for path, fmt in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        rows = records(path, fmt)
        # A document converted from TOML or XML keeps its wrapping: {"items": [...]},
        # {"root": {"item": [...]}}.
        while isinstance(rows, dict) and len(rows) == 1:
            (rows,) = rows.values()
        keys = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        out[path] = {"ok": [{k: text(row.get(k)) for k in keys} for row in rows]}
    except Exception as error:
        out[path] = {"error": f"{type(error).__name__}: {error}"}
print(json.dumps(out))
"#;

/// The Python with Debian's `python3-yaml` and `python3-openpyxl` (the system one, ahead of
/// any other on the `PATH`).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").is_file() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The records of each `(file, format)`, as Python reads them.
fn read_all(files: &[(PathBuf, String)]) -> Result<BTreeMap<PathBuf, Result<Value, String>>> {
    let mut command = Command::new(python());
    command.args(["-c", READER]);
    for (path, format) in files {
        command.arg(path).arg(format);
    }
    let output = command.output().context("cannot run python3")?;
    ensure!(
        output.status.success(),
        "python: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: BTreeMap<String, Value> = serde_json::from_slice(&output.stdout)?;
    Ok(answers
        .into_iter()
        .map(|(path, answer)| {
            let read = match answer.get("ok") {
                Some(records) => Ok(records.clone()),
                None => Err(answer["error"].as_str().unwrap_or("?").to_owned()),
            };
            (PathBuf::from(path), read)
        })
        .collect())
}

/// The pairs the data plugin declares, as `metamorph plugins check` lists them.
fn declared_pairs(cli: &Cli) -> Result<Vec<(String, String)>> {
    let output = cli
        .command()?
        .args(["plugins", "check"])
        .arg(cli.plugins_dir().join(DATA))
        .output()?;
    ensure!(output.status.success(), "plugins check failed");
    let text = String::from_utf8(output.stdout)?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (pair, _) = line.trim().split_once(" (cost")?;
            let (source, target) = pair.split_once(" → ")?;
            Some((source.to_owned(), target.to_owned()))
        })
        .collect())
}

#[test]
fn every_data_pair_keeps_the_records_as_python_reads_them() -> Result<()> {
    let cli = Cli::with_plugins(&[DATA])?;
    let original = corpus("data/csv-uspop.csv");
    let expected = read_all(&[(original.clone(), "csv".into())])?
        .remove(&original)
        .context("the original")?
        .map_err(anyhow::Error::msg)?;
    ensure!(expected.as_array().is_some_and(|rows| rows.len() == 100));

    // The same table in every format, made from the CSV.
    let mut inputs = BTreeMap::new();
    inputs.insert("csv".to_owned(), original.clone());
    for format in FORMATS.iter().filter(|format| **format != "csv") {
        let run = cli.convert(&original, format, &[])?;
        ensure!(run.success, "csv → {format}: {}", run.stderr);
        inputs.insert((*format).to_owned(), run.output);
    }

    let pairs = declared_pairs(&cli)?;
    ensure!(pairs.len() >= 56, "{} pairs: {pairs:?}", pairs.len());
    let mut outputs = Vec::new();
    for (source, target) in &pairs {
        let input = inputs
            .get(source)
            .with_context(|| format!("no {source} input"))?;
        let run = cli.convert(input, target, &[])?;
        ensure!(run.success, "{source} → {target}: {}", run.stderr);
        outputs.push(((source, target), run.output));
    }
    let files: Vec<(PathBuf, String)> = outputs
        .iter()
        .map(|((_, target), path)| (path.clone(), (*target).clone()))
        .collect();
    let read = read_all(&files)?;
    for ((source, target), path) in &outputs {
        let records = read
            .get(path)
            .with_context(|| format!("{source} → {target} was not read"))?
            .as_ref()
            .map_err(|error| {
                anyhow::anyhow!("{source} → {target}: Python cannot read it: {error}")
            })?;
        if records != &expected {
            let rows = records.as_array().map_or(&[][..], Vec::as_slice);
            let at = (0..100)
                .find(|&i| rows.get(i) != expected.get(i))
                .unwrap_or_default();
            anyhow::bail!(
                "{source} → {target}: the records differ (row {at} of {})\nexpected {}\n     got {}",
                rows.len(),
                expected[at],
                rows.get(at).unwrap_or(&Value::Null)
            );
        }
    }
    Ok(())
}

#[test]
fn data_options_are_applied_and_bad_ones_named() -> Result<()> {
    let cli = Cli::with_plugins(&[DATA])?;

    // A semicolon-separated file with a comment line and a short row.
    let wrestlers = corpus("data/csv-semicolon-quoted.csv");
    let json = cli.convert(
        &wrestlers,
        "json",
        &[
            "delimiter=;",
            "escape=\\",
            "header=false",
            "comment=#",
            "infer_types=true",
        ],
    )?;
    ensure!(json.success, "{}", json.stderr);
    let rows: Value = serde_json::from_slice(&std::fs::read(&json.output)?)?;
    let rows = rows.as_array().context("an array of rows")?;
    ensure!(rows.len() == 6, "six rows without the comment: {rows:?}");
    ensure!(
        rows[0] == serde_json::json!(["\"Hacksaw\" Jim Duggan", 1987]),
        "{}",
        rows[0]
    );

    // Pretty printing, and a chosen delimiter on the way out.
    let uspop = corpus("data/csv-uspop.csv");
    // JSON is pretty-printed unless told otherwise.
    let compact = cli.convert(&uspop, "json", &["pretty=false"])?;
    let pretty = cli.convert(&uspop, "json", &[])?;
    ensure!(compact.success && pretty.success);
    let (compact, pretty) = (
        std::fs::read_to_string(&compact.output)?,
        std::fs::read_to_string(&pretty.output)?,
    );
    ensure!(pretty.lines().count() > 100 * 5 && compact.lines().count() <= 2);
    let a: Value = serde_json::from_str(&compact)?;
    let b: Value = serde_json::from_str(&pretty)?;
    ensure!(a == b, "the same data either way");
    let xlsx = cli.convert(&uspop, "xlsx", &["sheet=Towns"])?;
    ensure!(xlsx.success, "{}", xlsx.stderr);
    let semicolons = cli.convert(&xlsx.output, "csv", &["sheet=Towns", "delimiter=;"])?;
    ensure!(semicolons.success, "{}", semicolons.stderr);
    let text = std::fs::read_to_string(&semicolons.output)?;
    ensure!(
        text.starts_with("City;State;Population;Latitude;Longitude"),
        "{}",
        &text[..60.min(text.len())]
    );
    let missing = cli.convert(&xlsx.output, "csv", &["sheet=Nowhere"])?;
    ensure!(
        !missing.success && missing.stderr.contains("Nowhere"),
        "{}",
        missing.stderr
    );

    // A real workbook's dates come out as ISO 8601.
    let dates = cli.convert(&corpus("document/xlsx-dates.xlsx"), "json", &[])?;
    ensure!(dates.success, "{}", dates.stderr);
    let text = std::fs::read_to_string(&dates.output)?;
    ensure!(
        text.contains("2021-01-01") || text.contains("-01T"),
        "{text}"
    );

    for (options, name) in [
        (&["delimiter=ab"][..], "delimiter"),
        (&["header=maybe"][..], "header"),
        (&["pretty=true"][..], "pretty"),
    ] {
        let run = cli.convert(&uspop, "tsv", options)?;
        ensure!(
            !run.success && run.stderr.contains("invalid_options") && run.stderr.contains(name),
            "{options:?}: {}",
            run.stderr
        );
    }

    let broken = cli.convert(&corpus("malformed/json-unclosed-array.json"), "csv", &[])?;
    ensure!(
        !broken.success && broken.stderr.contains("malformed_input"),
        "{}",
        broken.stderr
    );
    Ok(())
}
