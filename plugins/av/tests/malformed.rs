//! Broken inputs: each converts up to where it breaks (as the FFmpeg command line does) or
//! fails with a malformed-input error; never a panic, a crash or a hang.

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use common::{Converted, Probe, convert};
use metamorph_plugin_api::{ConvertError, ErrorKind};

/// Longest a conversion of these small files may take (a debug build, tests in parallel).
const DEADLINE: Duration = Duration::from_secs(60);

/// Converts on another thread, failing the test if it takes longer than [`DEADLINE`].
fn convert_in_time(
    input: &str,
    source: &str,
    target: &str,
    options: &str,
) -> Result<Converted, ConvertError> {
    let (sender, receiver) = mpsc::channel();
    let (input, source, target, options) = (
        input.to_owned(),
        source.to_owned(),
        target.to_owned(),
        options.to_owned(),
    );
    let label = format!("{input} ({source}) → {target}");
    std::thread::spawn(move || {
        let _ignored = sender.send(convert(&input, &source, &target, &options));
    });
    match receiver.recv_timeout(DEADLINE) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{label} hangs"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{label} panicked"),
    }
}

/// The error converting `input` (named `source`) to `target` gives; succeeding fails the
/// test.
fn error_of(input: &str, source: &str, target: &str) -> ConvertError {
    match convert_in_time(input, source, target, "{}") {
        Ok(output) => panic!(
            "{input} ({source}) became a {target}: {:?}",
            Probe::of(Path::new(&output.path))
        ),
        Err(error) => error,
    }
}

/// Asserts that converting `input` (named `source`) to `target` gives either an output
/// `ffprobe` accepts or a malformed-input error.
fn converts_or_is_malformed(input: &str, source: &str, target: &str, options: &str) {
    match convert_in_time(input, source, target, options) {
        Ok(output) => {
            let probe = output.probe();
            assert!(
                !probe.streams.is_empty(),
                "{input} → {target}: an output without streams"
            );
        }
        Err(error) => assert_eq!(
            error.kind,
            ErrorKind::MalformedInput,
            "{input} → {target}: {error}"
        ),
    }
}

#[test]
fn the_broken_files_of_the_corpus_convert_or_are_malformed() {
    for (name, source, targets) in [
        ("mp3-truncated.mp3", "mp3", &["wav", "ogg", "flac"][..]),
        (
            "mp4-truncated-mdat.mp4",
            "mp4",
            &["webm", "mkv", "gif", "jpg", "png", "mp3", "m4a"][..],
        ),
        (
            "mkv-corrupt-ebml.mkv",
            "mkv",
            &["mp4", "webm", "gif", "jpg", "wav"][..],
        ),
        ("wav-invalid-chunk.wav", "wav", &["mp3", "flac", "opus"][..]),
        (
            "flac-invalid-streaminfo.flac",
            "flac",
            &["mp3", "wav", "m4a"][..],
        ),
    ] {
        let path = format!(
            "{}/../../tests/fixtures/corpus/malformed/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        for target in targets {
            converts_or_is_malformed(&path, source, target, "{}");
        }
    }
}

#[test]
fn files_ffmpeg_cannot_open_are_malformed_with_a_reason() {
    for (name, source) in [
        ("mkv-corrupt-ebml.mkv", "mkv"),
        ("wav-invalid-chunk.wav", "wav"),
        ("flac-invalid-streaminfo.flac", "flac"),
    ] {
        let path = format!(
            "{}/../../tests/fixtures/corpus/malformed/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let error = error_of(&path, source, "mp3");
        assert_eq!(error.kind, ErrorKind::MalformedInput, "{name}: {error}");
        assert!(
            error
                .message
                .contains(&format!("not a readable {source} file")),
            "{name}: {error}"
        );
    }
}

/// Writes `bytes` into a new folder as `input.{extension}` (as the host names inputs).
fn staged(bytes: &[u8], extension: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join(format!("input.{extension}"));
    std::fs::write(&path, bytes).expect("the input is written");
    let path = path.to_str().expect("a UTF-8 path").to_owned();
    (dir, path)
}

/// `length` bytes of noise, the same every run.
fn noise(length: usize, mut seed: u64) -> Vec<u8> {
    (0..length)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 56) as u8
        })
        .collect()
}

#[test]
fn garbage_named_like_a_video_is_malformed() {
    for (seed, length) in [(1, 64 * 1024), (2, 4096), (3, 17)] {
        let (_dir, path) = staged(&noise(length, seed), "mp4");
        for target in ["mkv", "gif", "jpg", "mp3"] {
            let error = error_of(&path, "mp4", target);
            assert_eq!(error.kind, ErrorKind::MalformedInput, "{target}: {error}");
        }
    }
}

#[test]
fn an_empty_file_is_malformed() {
    for (source, target) in [
        ("mp4", "webm"),
        ("mkv", "gif"),
        ("mov", "png"),
        ("wav", "mp3"),
        ("ogg", "flac"),
    ] {
        let (_dir, path) = staged(&[], source);
        let error = error_of(&path, source, target);
        assert_eq!(error.kind, ErrorKind::MalformedInput, "{source}: {error}");
        assert!(error.message.contains("empty"), "{error}");
    }
}

#[test]
fn truncated_videos_convert_up_to_where_they_end_or_are_malformed() {
    for (name, source, targets) in [
        ("mov-h264-aac-gps.mov", "mov", &["mp4", "gif", "jpg"][..]),
        ("mp4-h264-aac-gps.mp4", "mp4", &["webm", "png", "wav"][..]),
        ("webm-vp8-vorbis.webm", "webm", &["mkv", "jpg"][..]),
        ("ogv-theora.ogv", "ogv", &["mp4", "gif"][..]),
        ("avi-msmpeg4-adpcm.avi", "avi", &["mkv", "png"][..]),
    ] {
        let path = format!(
            "{}/../../tests/fixtures/corpus/video/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).expect("the sample is readable");
        for fraction in [0.1, 0.5, 0.9] {
            let cut = (bytes.len() as f64 * fraction) as usize;
            let (_dir, truncated) = staged(&bytes[..cut], source);
            for target in targets {
                converts_or_is_malformed(&truncated, source, target, r#"{}"#);
            }
        }
    }
}

#[test]
fn videos_with_damaged_bytes_convert_or_are_malformed() {
    for (name, source, target) in [
        ("mkv-h264-aac.mkv", "mkv", "mp4"),
        ("webm-vp8-vorbis.webm", "webm", "gif"),
        ("mp4-h264-aac-short.mp4", "mp4", "webm"),
        ("ogv-theora.ogv", "ogv", "png"),
        ("avi-msmpeg4-adpcm.avi", "avi", "mp3"),
    ] {
        let path = format!(
            "{}/../../tests/fixtures/corpus/video/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let original = std::fs::read(&path).expect("the sample is readable");
        for seed in 1..=4 {
            // Noise over a run of bytes past the header, a different run each time.
            let mut bytes = original.clone();
            let start = bytes.len() / 8 * (seed as usize + 1);
            let end = (start + 256).min(bytes.len());
            bytes[start..end].copy_from_slice(&noise(end - start, seed));
            let (_dir, damaged) = staged(&bytes, source);
            converts_or_is_malformed(&damaged, source, target, "{}");
        }
    }
}
