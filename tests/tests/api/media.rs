//! The av plugin through the host: native worker processes, checked by `ffprobe`, and
//! routes that mix native and WebAssembly plugins.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use metamorph_tests::{Auth, Backend, Cli, Server, corpus};
use serde_json::Value;

const AV: &str = "libmetamorph_plugin_av.so";
const IMAGE: &str = "metamorph_plugin_image.wasm";

/// What `ffprobe` says of a file: its format and streams.
fn probe(path: &Path) -> Result<Value> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            "-count_frames",
        ])
        .arg(path)
        .output()
        .context("cannot run ffprobe")?;
    ensure!(
        output.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The first stream of `kind` (`audio` or `video`).
fn stream<'a>(probe: &'a Value, kind: &str) -> Result<&'a Value> {
    probe["streams"]
        .as_array()
        .and_then(|streams| streams.iter().find(|s| s["codec_type"] == kind))
        .with_context(|| format!("no {kind} stream in {probe}"))
}

/// The duration ffprobe reports, in seconds.
fn duration(probe: &Value) -> Result<f64> {
    Ok(probe["format"]["duration"]
        .as_str()
        .context("duration")?
        .parse()?)
}

#[test]
fn audio_and_video_convert_in_worker_processes_checked_by_ffprobe() -> Result<()> {
    let cli = Cli::with_plugins(&[AV])?;

    let mp3 = cli.convert(
        &corpus("audio/flac-vorbis-comments-picture.flac"),
        "mp3",
        &["bitrate=128"],
    )?;
    ensure!(mp3.success, "flac → mp3: {}", mp3.stderr);
    let info = probe(&mp3.output)?;
    ensure!(info["format"]["format_name"] == "mp3", "{info}");
    ensure!(stream(&info, "audio")?["codec_name"] == "mp3");
    let bitrate: f64 = info["format"]["bit_rate"]
        .as_str()
        .context("bit rate")?
        .parse()?;
    ensure!(
        (100_000.0..160_000.0).contains(&bitrate),
        "about 128 kbit/s: {bitrate}"
    );

    let webm = cli.convert(
        &corpus("video/mov-h264-aac-gps.mov"),
        "webm",
        &["width=160", "duration=1"],
    )?;
    ensure!(webm.success, "mov → webm: {}", webm.stderr);
    let info = probe(&webm.output)?;
    ensure!(
        info["format"]["format_name"]
            .as_str()
            .is_some_and(|name| name.contains("webm")),
        "{info}"
    );
    let video = stream(&info, "video")?;
    ensure!(
        video["codec_name"] == "vp9" && video["width"] == 160,
        "{video}"
    );
    ensure!(stream(&info, "audio")?["codec_name"] == "opus");
    ensure!((duration(&info)? - 1.0).abs() < 0.15, "one second: {info}");

    let gif = cli.convert(
        &corpus("video/ogv-theora.ogv"),
        "gif",
        &["fps=5", "duration=2", "width=120"],
    )?;
    ensure!(gif.success, "ogv → gif: {}", gif.stderr);
    let info = probe(&gif.output)?;
    let video = stream(&info, "video")?;
    ensure!(
        video["codec_name"] == "gif" && video["width"] == 120,
        "{video}"
    );
    let frames: u32 = video["nb_read_frames"]
        .as_str()
        .context("frames")?
        .parse()?;
    ensure!((9..=11).contains(&frames), "2 s at 5 fps: {frames} frames");

    // Bad options and bad files are typed errors, and the worker survives them.
    let bad = cli.convert(&corpus("audio/wav-pcm16.wav"), "mp3", &["bitrate=9999"])?;
    ensure!(
        !bad.success && bad.stderr.contains("invalid_options"),
        "{}",
        bad.stderr
    );
    let garbage = cli.scratch().join("garbage.mp4");
    std::fs::write(&garbage, vec![0x5a; 4096])?;
    let bad = cli.convert(&garbage, "mkv", &[])?;
    ensure!(
        !bad.success && bad.stderr.contains("malformed_input"),
        "{}",
        bad.stderr
    );
    Ok(())
}

#[test]
fn a_thumbnail_route_chains_the_native_and_the_wasm_plugin() -> Result<()> {
    let cli = Cli::with_plugins(&[AV, IMAGE])?;
    // No plugin turns a video into WebP: the av plugin takes a frame as a picture, the
    // image plugin makes it WebP.
    let run = cli.convert(
        &corpus("video/mov-h264-aac-gps.mov"),
        "webp",
        &["time=0.5", "width=200"],
    )?;
    ensure!(run.success, "mov → webp: {}", run.stderr);
    ensure!(
        run.stderr.contains("step 1/2: mov → ")
            && run.stderr.contains("(av)")
            && run.stderr.contains("→ webp (image)"),
        "{}",
        run.stderr
    );
    let (kind, width, _) = super::plugins::identify(&run.output)?;
    ensure!(kind == "WEBP" && width == 200, "{kind} {width}");

    let server = Server::builder(Backend::Sqlite)
        .plugins(&[AV, IMAGE])
        .start()?;
    let mp4 = server.expect("GET", "/api/formats/mp4", &Auth::None, None, 200)?;
    for target in ["webm", "mkv", "gif", "mp3", "jpg"] {
        ensure!(
            mp4["converts_to"]
                .as_array()
                .is_some_and(|to| to.iter().any(|f| f == target)),
            "mp4 → {target}: {mp4}"
        );
    }
    let plugins = server.expect("GET", "/api/plugins", &Auth::None, None, 200)?;
    let av = plugins["loaded"]
        .as_array()
        .and_then(|all| all.iter().find(|plugin| plugin["name"] == "av"))
        .with_context(|| format!("av is loaded: {plugins}"))?;
    ensure!(av["kind"] == "native", "{av}");

    // The plugin's own example files are real media.
    let scratch = tempfile::tempdir()?;
    for format in ["wav", "mp4"] {
        let response = server.get(&format!("/api/formats/{format}/template"))?;
        ensure!(response.status() == 200, "{format}: {}", response.status());
        let path = scratch.path().join(format!("example.{format}"));
        std::fs::write(&path, response.bytes()?)?;
        let info = probe(&path)?;
        ensure!(duration(&info)? > 0.0, "{format}: {info}");
    }
    Ok(())
}
