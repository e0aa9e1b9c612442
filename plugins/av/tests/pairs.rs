//! Every pair the plugin declares converts a real file, and `ffprobe` recognises the
//! output as the target format: a pair declared without a working path fails here. The
//! examples the plugin makes (`template`) are checked the same way.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::{AUDIO_SAMPLES, Probe, Sample, VIDEO_SAMPLES, convert, doctype};
use metamorph_plugin_api::{Conversion, Converter, Input, Output, Request};
use metamorph_plugin_av::Av;
use serde_json::Value;

/// What `ffprobe` must report for a file of `target`: its format and its main codec.
fn expected(target: &str) -> (&'static str, &'static str) {
    match target {
        "wav" => ("wav", "pcm_s16le"),
        "mp3" => ("mp3", "mp3"),
        "ogg" => ("ogg", "vorbis"),
        "opus" => ("ogg", "opus"),
        "flac" => ("flac", "flac"),
        "m4a" | "mp4" => ("mov,mp4,m4a,3gp,3g2,mj2", "aac"),
        "webm" | "mkv" => ("matroska,webm", "aac"),
        "gif" => ("gif", "gif"),
        "jpg" => ("jpeg_pipe", "mjpeg"),
        "png" => ("png_pipe", "png"),
        _ => panic!("no expectation for `{target}`: add one to tests/pairs.rs"),
    }
}

/// Asserts that the file at `path` is a `target` file.
fn assert_is(path: &Path, target: &str, what: &str) {
    let probe = Probe::of(path);
    let (format, codec) = expected(target);
    assert_eq!(probe.format_name, format, "{what}");
    let (kind, codec) = match target {
        "mp4" | "mkv" => ("video", "h264"),
        "webm" => ("video", "vp9"),
        "gif" | "jpg" | "png" => ("video", codec),
        _ => ("audio", codec),
    };
    let stream = probe.stream(kind);
    // 24-bit sources stay 24-bit in wav.
    let codec_ok =
        stream.codec_name == codec || (target == "wav" && stream.codec_name.starts_with("pcm_s"));
    assert!(
        codec_ok,
        "{what}: {} in place of {codec}",
        stream.codec_name
    );
    if kind == "audio" {
        assert_eq!(
            probe.count("video"),
            0,
            "{what}: no picture in an audio file"
        );
    }
    // The brand or document type tells the members of a family apart.
    let bytes = std::fs::read(path).expect("the output is readable");
    match target {
        "m4a" => assert_eq!(&bytes[8..12], b"M4A ", "{what}"),
        "mp4" => assert_ne!(&bytes[8..12], b"M4A ", "{what}"),
        "webm" => assert_eq!(doctype(path), "webm", "{what}"),
        "mkv" => assert_eq!(doctype(path), "matroska", "{what}"),
        _ => {}
    }
}

/// A sample of `format` from the corpus (with sound when `sound`), else the plugin's own
/// example, else one the FFmpeg command line makes (in `dir`, named after `purpose`: each
/// thread makes its own).
fn sample_of(format: &str, sound: bool, dir: &Path, purpose: &str) -> String {
    let corpus = AUDIO_SAMPLES
        .iter()
        .chain(VIDEO_SAMPLES)
        .map(|name| Sample::get(name))
        .find(|sample| sample.format == format && (sample.audio || !sound));
    if let Some(sample) = corpus {
        return sample.path;
    }
    let path = dir.join(format!("{purpose}.{format}"));
    if let Ok(bytes) = Av::template(format) {
        std::fs::write(&path, bytes).expect("the example is written");
    } else {
        // A second of test pattern and tone, in the format's usual codecs.
        let status = Command::new("/usr/bin/ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=160x120:rate=10:duration=1")
            .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=1"])
            .arg(&path)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg cannot make a {format} sample");
    }
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// Whether the options schema of a pair has a property `name`.
fn accepts(schema: Option<&str>, name: &str) -> bool {
    let schema: Value = serde_json::from_str(schema.unwrap_or("{}")).expect("a JSON schema");
    schema["properties"].get(name).is_some()
}

/// The families of pairs, by the kind of source and of target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    AudioToAudio,
    VideoToAudio,
    VideoToVideo,
    VideoToGif,
    VideoToPicture,
}

impl Family {
    /// The family of `conversion` (`None`: a kind of pair these tests do not know yet).
    fn of(conversion: &Conversion) -> Option<Self> {
        let category = |format: &str| {
            metamorph_plugin_api::known_format(format).map_or_else(
                || {
                    Av::describe()
                        .formats
                        .iter()
                        .find(|known| known.name == format)
                        .map(|known| known.category.clone())
                        .unwrap_or_default()
                },
                |known| known.category.to_owned(),
            )
        };
        let target = conversion.target.as_str();
        Some(
            match (
                category(&conversion.source).as_str(),
                category(target).as_str(),
            ) {
                ("audio", "audio") => Self::AudioToAudio,
                ("video", "audio") => Self::VideoToAudio,
                ("video", "video") => Self::VideoToVideo,
                ("video", "image") if target == "gif" => Self::VideoToGif,
                ("video", "image") => Self::VideoToPicture,
                _ => return None,
            },
        )
    }
}

/// Converts a sample of each declared pair of `family` and checks the output, on as many
/// threads as there are cores (most of the time goes to starting `ffprobe`).
fn every_pair_of(family: Family) {
    let conversions: Vec<Conversion> = Av::describe()
        .conversions
        .into_iter()
        .filter(|conversion| Family::of(conversion) == Some(family))
        .collect();
    assert!(!conversions.is_empty(), "no {family:?} pairs");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let next = Mutex::new(conversions.iter());
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let Some(conversion) = next.lock().expect("no thread panicked").next() else {
                        break;
                    };
                    check_pair(conversion, dir.path());
                }
            });
        }
    });
}

/// Converts a sample of `conversion`'s source to its target and checks the output.
fn check_pair(conversion: &Conversion, dir: &Path) {
    let (source, target) = (&conversion.source, &conversion.target);
    let sound = Family::of(conversion) == Some(Family::VideoToAudio);
    let input = sample_of(source, sound, dir, &format!("{source}-to-{target}"));
    // Half a second is enough to tell, and keeps the suite quick.
    let options = if accepts(conversion.options_schema.as_deref(), "duration") {
        r#"{"duration": 0.5}"#
    } else {
        "{}"
    };
    let what = format!("{source} → {target} ({input})");
    let output = convert(&input, source, target, options)
        .unwrap_or_else(|error| panic!("{what} failed: {error}"));
    assert_is(&output.path, target, &what);
}

#[test]
fn every_declared_pair_belongs_to_a_tested_family() {
    let conversions = Av::describe().conversions;
    assert!(conversions.len() > 100, "{}", conversions.len());
    for conversion in &conversions {
        assert!(
            Family::of(conversion).is_some(),
            "{} → {} is of no family tested here: add one to tests/pairs.rs",
            conversion.source,
            conversion.target
        );
    }
}

#[test]
fn every_audio_to_audio_pair_converts_a_sample() {
    every_pair_of(Family::AudioToAudio);
}

#[test]
fn every_video_to_audio_pair_converts_a_sample() {
    every_pair_of(Family::VideoToAudio);
}

#[test]
fn every_video_to_video_pair_converts_a_sample() {
    every_pair_of(Family::VideoToVideo);
}

#[test]
fn every_video_to_gif_pair_converts_a_sample() {
    every_pair_of(Family::VideoToGif);
}

#[test]
fn every_video_to_picture_pair_converts_a_sample() {
    every_pair_of(Family::VideoToPicture);
}

#[test]
fn every_pair_documents_its_options() {
    for conversion in &Av::describe().conversions {
        let schema: Value =
            serde_json::from_str(conversion.options_schema.as_deref().unwrap_or("{}"))
                .expect("a JSON schema");
        let properties = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{conversion:?} has no options"));
        for (name, property) in properties {
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{} → {}: `{name}` is undocumented",
                conversion.source,
                conversion.target
            );
        }
    }
}

#[test]
fn every_template_is_a_file_of_its_format() {
    let info = Av::describe();
    assert!(!info.templates.is_empty());
    let dir = tempfile::tempdir().expect("a temporary folder");
    for format in &info.templates {
        let bytes = Av::template(format)
            .unwrap_or_else(|error| panic!("the {format} template failed: {error}"));
        let path = dir.path().join(format!("example.{format}"));
        std::fs::write(&path, bytes).expect("the example is written");
        assert_is(&path, format, &format!("the {format} template"));
        let probe = Probe::of(&path);
        if probe.count("video") > 0 && format != "gif" {
            probe.assert_duration(2.0, 0.1);
        }
    }
}

#[test]
fn templates_convert_like_any_input() {
    // An example made by the plugin is a valid input of its own pairs.
    let bytes = Av::template("webm").expect("a webm example");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("input.webm");
    std::fs::write(&path, bytes).expect("the example is written");
    let output_path = dir.path().join("output.gif");
    let mut input = Input::from_path(&path).expect("the example is readable");
    let mut output = Output::to_file(&output_path).expect("the output is created");
    Av::convert(
        &Request::new("webm", "gif", r#"{"width": 80}"#),
        &mut input,
        &mut output,
    )
    .expect("the example converts");
    drop(output);
    let probe = Probe::of(&output_path);
    assert_eq!(probe.stream("video").width, 80);
}

#[test]
fn undeclared_pairs_are_unsupported() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let input = sample_of("wav", true, dir.path(), "undeclared");
    for (source, target) in [
        ("wav", "mp4"),
        ("wav", "gif"),
        ("mp4", "mp4"),
        ("wav", "pdf"),
    ] {
        match convert(&input, source, target, "{}") {
            Ok(_) => panic!("{source} → {target} converted"),
            Err(error) => assert_eq!(
                error.kind,
                metamorph_plugin_api::ErrorKind::Unsupported,
                "{source} → {target}: {error}"
            ),
        }
    }
}

#[test]
fn the_documented_examples_of_options_convert() {
    let video = fixture!("video/mov-h264-aac-gps.mov");
    let audio = fixture!("audio/flac-vorbis-comments-picture.flac");
    for (input, source, target, options) in [
        (
            audio,
            "flac",
            "mp3",
            r#"{"bitrate": 128, "sample_rate": 44100, "channels": 2, "start": 0.5, "duration": 2}"#,
        ),
        (
            video,
            "mov",
            "ogg",
            r#"{"bitrate": 96, "channels": 1, "start": 1, "duration": 1}"#,
        ),
        (
            video,
            "mov",
            "mp4",
            r#"{"quality": 28, "width": 160, "fps": 15, "bitrate": 96, "sample_rate": 48000, "channels": 2, "start": 1, "duration": 2}"#,
        ),
        (
            video,
            "mov",
            "gif",
            r#"{"fps": 12, "width": 160, "start": 1, "duration": 2}"#,
        ),
        (video, "mov", "jpg", r#"{"time": 2.5, "width": 160}"#),
    ] {
        let output = convert(input, source, target, options)
            .unwrap_or_else(|error| panic!("{source} → {target} with {options}: {error}"));
        assert_is(
            &output.path,
            target,
            &format!("{source} → {target} with {options}"),
        );
    }
}
