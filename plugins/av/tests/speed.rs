//! A conversion runs as fast as the FFmpeg command line with the same settings. Timing is
//! only meaningful in an optimised build on an idle machine, so these tests are ignored by
//! default: `cargo test --release -p metamorph-plugin-av --test speed -- --ignored
//! --test-threads 1`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::converted;

/// How much slower than the command line a conversion may be (timing noise).
const SLACK: f64 = 1.15;

/// The best of three runs of `run`.
fn best_of_three(mut run: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Times the plugin converting `input` to `target` with `options` against `ffmpeg` run with
/// `arguments` (the same settings), and asserts that the plugin is not slower.
fn as_fast_as_ffmpeg(input: &str, source: &str, target: &str, options: &str, arguments: &[&str]) {
    let ours = best_of_three(|| {
        converted(input, source, target, options);
    });
    let dir = tempfile::tempdir().expect("a temporary folder");
    let output = dir.path().join(format!("output.{target}"));
    let theirs = best_of_three(|| {
        let status = Command::new("/usr/bin/ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-i", input])
            .args(arguments)
            .arg(&output)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
    });
    eprintln!("{source} → {target}: plugin {ours:?}, ffmpeg {theirs:?}");
    assert!(
        ours.as_secs_f64() <= theirs.as_secs_f64() * SLACK,
        "{source} → {target}: the plugin takes {ours:?}, ffmpeg {theirs:?}"
    );
}

#[test]
#[ignore = "timing: run in release on an idle machine"]
fn mov_to_mp4_is_as_fast_as_ffmpeg() {
    as_fast_as_ffmpeg(
        fixture!("video/mov-h264-aac-gps.mov"),
        "mov",
        "mp4",
        "{}",
        &[
            "-map",
            "0:v:0",
            "-map",
            "0:a:0",
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-crf",
            "23",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
        ],
    );
}

#[test]
#[ignore = "timing: run in release on an idle machine"]
fn mov_to_webm_is_as_fast_as_ffmpeg() {
    as_fast_as_ffmpeg(
        fixture!("video/mov-h264-aac-gps.mov"),
        "mov",
        "webm",
        "{}",
        &[
            "-map",
            "0:v:0",
            "-map",
            "0:a:0",
            "-c:v",
            "libvpx-vp9",
            "-crf",
            "28",
            "-b:v",
            "0",
            "-deadline",
            "good",
            "-cpu-used",
            "4",
            "-row-mt",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "128k",
        ],
    );
}

#[test]
#[ignore = "timing: run in release on an idle machine"]
fn mov_to_gif_is_as_fast_as_ffmpeg() {
    as_fast_as_ffmpeg(
        fixture!("video/mov-h264-aac-gps.mov"),
        "mov",
        "gif",
        "{}",
        &[
            "-vf",
            "fps=10,scale=320:568:flags=lanczos,setsar=1,split[a][b];[b]palettegen[p];[a][p]paletteuse",
        ],
    );
}

#[test]
#[ignore = "timing: run in release on an idle machine"]
fn flac_to_mp3_is_as_fast_as_ffmpeg() {
    as_fast_as_ffmpeg(
        fixture!("audio/flac-vorbis-comments-picture.flac"),
        "flac",
        "mp3",
        "{}",
        &["-map", "0:a:0", "-c:a", "libmp3lame", "-b:a", "192k"],
    );
}
