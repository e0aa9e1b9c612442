//! Every malformed file of the corpus, converted with every first-party plugin installed:
//! each ends in a converted file or a typed error, never a crash, a hang or an internal
//! error.

use std::time::Duration;

use anyhow::{Result, ensure};
use metamorph_tests::{Cli, corpus};

/// Every first-party plugin.
const FIRST_PARTY: [&str; 4] = [
    "metamorph_plugin_image.wasm",
    "metamorph_plugin_document.wasm",
    "metamorph_plugin_data.wasm",
    "libmetamorph_plugin_av.so",
];

/// The typed errors a bad input may end in.
const TYPED: [&str; 4] = [
    "malformed_input",
    "unsupported_conversion",
    "limit_exceeded",
    "invalid_options",
];

#[test]
fn every_malformed_corpus_file_ends_in_a_file_or_a_typed_error() -> Result<()> {
    let cli = Cli::with_plugins(&FIRST_PARTY)?;
    let manifest = std::fs::read_to_string(corpus("MANIFEST.tsv"))?;
    let files: Vec<&str> = manifest
        .lines()
        .filter_map(|line| line.split('\t').next())
        .filter(|path| path.starts_with("malformed/"))
        .collect();
    ensure!(files.len() == 20, "the corpus has 20 malformed files");
    for file in files {
        let extension = file.rsplit('.').next().unwrap_or_default();
        // A target each file's nominal format converts to, when a plugin reads it at all.
        let target = match extension {
            "png" => "jpg",
            "jpg" | "bmp" | "gif" | "tif" | "webp" | "svg" | "svgz" => "png",
            "json" => "csv",
            "pdf" => "txt",
            "pptx" => "pdf",
            "mp3" | "flac" => "wav",
            "wav" => "mp3",
            "mp4" | "mkv" => "webm",
            other => anyhow::bail!("{file}: no target chosen for .{other}"),
        };
        let run = cli.convert(&corpus(file), target, &["duration=1"])?;
        let run = if run.stderr.contains("invalid_options") {
            // `duration` (which keeps media tests short) is not an option of this pair.
            cli.convert(&corpus(file), target, &[])?
        } else {
            run
        };
        if run.success {
            ensure!(
                std::fs::metadata(&run.output)?.len() > 0,
                "{file} → {target}: an empty output"
            );
            continue;
        }
        ensure!(
            TYPED.iter().any(|code| run.stderr.contains(code)),
            "{file} → {target} ended in an untyped error: {}",
            run.stderr
        );
        ensure!(
            !run.stderr.contains("converter_failed") && !run.stderr.contains("timed_out"),
            "{file} → {target}: {}",
            run.stderr
        );
        ensure!(
            run.elapsed < Duration::from_secs(30),
            "{file} → {target} took {:?}",
            run.elapsed
        );
    }
    Ok(())
}
