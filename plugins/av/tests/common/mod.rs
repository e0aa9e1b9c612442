//! Running conversions natively and checking their outputs with `ffprobe`, independently
//! of the plugin's own code.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses a part of these helpers"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use metamorph_plugin_api::{ConvertError, Converter, ErrorKind, Input, Output, Request};
use metamorph_plugin_av::Av;
use serde_json::Value;

/// A file of the shared test corpus.
#[macro_export]
macro_rules! fixture {
    ($name:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/corpus/",
            $name
        )
    };
}

/// A converted file, deleted with its folder when dropped.
pub struct Converted {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Converted {
    /// What `ffprobe` says about it.
    pub fn probe(&self) -> Probe {
        Probe::of(&self.path)
    }

    /// Its bytes.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).expect("the output is readable")
    }

    /// The number of video frames `ffprobe` decodes from it.
    pub fn video_frames(&self) -> u64 {
        video_frames(&self.path)
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.path)
            .expect("the output exists")
            .len()
    }

    /// What ImageMagick's `identify` says about it.
    pub fn identify(&self) -> Identified {
        Identified::of(&self.path)
    }
}

/// The number of video frames `ffprobe` decodes from `path`.
pub fn video_frames(path: &Path) -> u64 {
    let output = Command::new("/usr/bin/ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        output.status.success(),
        "ffprobe rejects {}",
        path.display()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .trim_end_matches(',')
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe counted no frames in {}: {text:?}", path.display()))
}

/// What ImageMagick's `identify` reports of a picture (or of each frame of an animation).
#[derive(Debug)]
pub struct Identified {
    /// ImageMagick's format name ("JPEG", "PNG", "GIF").
    pub format: String,
    pub width: u64,
    pub height: u64,
    /// Frames (1 for a still picture).
    pub frames: usize,
}

impl Identified {
    /// Runs `identify` on `path`.
    pub fn of(path: &Path) -> Self {
        let output = Command::new("/usr/bin/identify")
            .args(["-format", "%m %w %h\\n"])
            .arg(path)
            .output()
            .expect("identify runs");
        assert!(
            output.status.success(),
            "identify rejects the output: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = text.lines().filter(|line| !line.is_empty()).collect();
        let first: Vec<&str> = lines
            .first()
            .expect("identify describes a frame")
            .split(' ')
            .collect();
        Self {
            format: first[0].to_owned(),
            width: first[1].parse().expect("a width"),
            height: first[2].parse().expect("a height"),
            frames: lines.len(),
        }
    }
}

/// The first video frame of `path` at `seconds` (from the start with `None`), as the FFmpeg
/// command line decodes it (turned upright), shrunk to 64×64 grey pixels: a fingerprint to
/// compare pictures with.
pub fn fingerprint(path: &Path, seconds: Option<f64>) -> Vec<u8> {
    let mut command = Command::new("/usr/bin/ffmpeg");
    command.args(["-v", "error", "-nostdin"]);
    if let Some(seconds) = seconds {
        command.args(["-ss", &seconds.to_string()]);
    }
    let output = command
        .arg("-i")
        .arg(path)
        .args([
            "-frames:v",
            "1",
            "-vf",
            "format=rgb24,scale=64:64,format=gray",
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success() && output.stdout.len() == 64 * 64,
        "ffmpeg cannot decode {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Makes a sample with the FFmpeg command line: `ffmpeg` with `arguments`, writing `name`
/// in `dir`. Returns its path.
pub fn made_by_ffmpeg(dir: &Path, name: &str, arguments: &[&str]) -> String {
    let path = dir.join(name);
    let output = Command::new("/usr/bin/ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(arguments)
        .arg(&path)
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg cannot make {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// The mean difference between two fingerprints, 0 (same) to 255.
pub fn difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len() as f64
}

/// The EBML document type of a Matroska file ("webm" or "matroska").
pub fn doctype(path: &Path) -> &'static str {
    let bytes = std::fs::read(path).expect("the output is readable");
    let head = &bytes[..bytes.len().min(64)];
    let has = |needle: &[u8]| head.windows(needle.len()).any(|window| window == needle);
    if has(b"webm") {
        "webm"
    } else if has(b"matroska") {
        "matroska"
    } else {
        panic!("{} has no Matroska document type", path.display())
    }
}

/// A file of the corpus, as `tests/fixtures/corpus/MANIFEST.tsv` measured it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The path from the corpus folder.
    pub name: String,
    /// The full path.
    pub path: String,
    /// Its format.
    pub format: String,
    /// Stored picture size (0 when not measured).
    pub width: u64,
    pub height: u64,
    /// Seconds.
    pub duration: f64,
    /// Whether it has sound.
    pub audio: bool,
    /// Whether it has pictures.
    pub video: bool,
    /// Display rotation in degrees.
    pub rotation: i64,
}

impl Sample {
    /// The corpus file `name` (e.g. "video/ogv-theora.ogv").
    pub fn get(name: &str) -> Self {
        let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/corpus");
        let manifest = std::fs::read_to_string(format!("{corpus}/MANIFEST.tsv"))
            .expect("the corpus manifest is readable");
        let line = manifest
            .lines()
            .find(|line| line.split('\t').next() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not in the corpus manifest"));
        let columns: Vec<&str> = line.split('\t').collect();
        let properties: Vec<(&str, &str)> = columns[7]
            .split(';')
            .filter_map(|property| property.split_once('='))
            .collect();
        let property = |key: &str| {
            properties
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| *value)
        };
        Self {
            name: name.to_owned(),
            path: format!("{corpus}/{name}"),
            format: columns[1].to_owned(),
            width: columns
                .get(8)
                .and_then(|text| text.parse().ok())
                .unwrap_or(0),
            height: columns
                .get(9)
                .and_then(|text| text.parse().ok())
                .unwrap_or(0),
            duration: property("duration")
                .and_then(|text| text.trim_end_matches('s').parse().ok())
                .unwrap_or(0.0),
            audio: property("audio").is_some(),
            video: property("video").is_some(),
            rotation: property("rotation")
                .and_then(|text| text.parse().ok())
                .unwrap_or(0),
        }
    }

    /// The picture size as shown (after the rotation).
    pub fn display_size(&self) -> (u64, u64) {
        if self.rotation.rem_euclid(180) == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// One sample video per video format read, from the shortest.
pub const VIDEO_SAMPLES: &[&str] = &[
    "video/mp4-h264-aac-short.mp4",
    "video/webm-vp8-vorbis.webm",
    "video/mkv-h264-aac.mkv",
    "video/mov-h264-aac-gps.mov",
    "video/avi-msmpeg4-adpcm.avi",
    "video/ogv-theora.ogv",
];

/// One sample per audio format read.
pub const AUDIO_SAMPLES: &[&str] = &[
    "audio/wav-pcm16.wav",
    "audio/mp3-id3v22.mp3",
    "audio/ogg-vorbis-comments-multipage.ogg",
    "audio/opus-tags.opus",
    "audio/flac-vorbis-comments-picture.flac",
    "audio/m4a-aac-tags-cover.m4a",
    "audio/aiff-id3.aiff",
];

/// Converts `input` from `source` to `target` with `options` (JSON), into a file without
/// extension (as the host names them), through `Converter::convert`.
pub fn convert(
    input: &str,
    source: &str,
    target: &str,
    options: &str,
) -> Result<Converted, ConvertError> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("output");
    let mut input = Input::from_path(input)?;
    let mut output = Output::to_file(&path)?;
    Av::convert(
        &Request::new(source, target, options),
        &mut input,
        &mut output,
    )?;
    output.flush()?;
    drop(output);
    Ok(Converted { _dir: dir, path })
}

/// Like [`convert`], for a conversion that must succeed.
pub fn converted(input: &str, source: &str, target: &str, options: &str) -> Converted {
    convert(input, source, target, options)
        .unwrap_or_else(|error| panic!("{source} → {target} failed: {error}"))
}

/// Like [`convert`], for a conversion that must fail with `kind`; returns the message.
pub fn refused(input: &str, source: &str, target: &str, options: &str, kind: ErrorKind) -> String {
    match convert(input, source, target, options) {
        Ok(_) => panic!("{source} → {target} with {options} should have failed"),
        Err(error) => {
            assert_eq!(error.kind, kind, "{source} → {target}: {error}");
            error.message
        }
    }
}

/// One stream as `ffprobe` reports it.
#[derive(Debug)]
pub struct Stream {
    pub codec_type: String,
    pub codec_name: String,
    pub width: u64,
    pub height: u64,
    pub sample_rate: u64,
    pub channels: u64,
    pub frame_rate: f64,
    pub bit_rate: u64,
    /// Rotation of the display matrix, in degrees (0 without one).
    pub rotation: f64,
}

/// What `ffprobe -show_format -show_streams` reports.
#[derive(Debug)]
pub struct Probe {
    pub format_name: String,
    pub duration: f64,
    pub bit_rate: u64,
    pub streams: Vec<Stream>,
    /// The container's tags, names in lower case.
    pub tags: Vec<String>,
}

impl Probe {
    /// Runs `ffprobe` on `path`.
    pub fn of(path: &Path) -> Self {
        let output = Command::new("/usr/bin/ffprobe")
            .args([
                "-v",
                "error",
                "-show_format",
                "-show_streams",
                "-of",
                "json",
            ])
            .arg(path)
            .output()
            .expect("ffprobe runs");
        assert!(
            output.status.success(),
            "ffprobe rejects the output: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: Value = serde_json::from_slice(&output.stdout).expect("ffprobe prints JSON");
        let number = |value: &Value, key: &str| -> f64 {
            match &value[key] {
                Value::String(text) => text.parse().unwrap_or(0.0),
                Value::Number(number) => number.as_f64().unwrap_or(0.0),
                _ => 0.0,
            }
        };
        let text = |value: &Value, key: &str| value[key].as_str().unwrap_or_default().to_owned();
        let rate = |value: &Value| {
            let text = text(value, "avg_frame_rate");
            match text.split_once('/') {
                Some((num, den)) => {
                    let (num, den): (f64, f64) =
                        (num.parse().unwrap_or(0.0), den.parse().unwrap_or(0.0));
                    if den > 0.0 { num / den } else { 0.0 }
                }
                None => 0.0,
            }
        };
        let streams = json["streams"]
            .as_array()
            .map(|streams| {
                streams
                    .iter()
                    .map(|stream| Stream {
                        codec_type: text(stream, "codec_type"),
                        codec_name: text(stream, "codec_name"),
                        width: number(stream, "width") as u64,
                        height: number(stream, "height") as u64,
                        sample_rate: number(stream, "sample_rate") as u64,
                        channels: number(stream, "channels") as u64,
                        frame_rate: rate(stream),
                        bit_rate: number(stream, "bit_rate") as u64,
                        rotation: stream["side_data_list"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|data| number(data, "rotation"))
                            .find(|rotation| *rotation != 0.0)
                            .unwrap_or(0.0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let format = &json["format"];
        Self {
            format_name: text(format, "format_name"),
            duration: number(format, "duration"),
            bit_rate: number(format, "bit_rate") as u64,
            streams,
            tags: format["tags"]
                .as_object()
                .map(|tags| tags.keys().map(|key| key.to_ascii_lowercase()).collect())
                .unwrap_or_default(),
        }
    }

    /// The only stream of `kind` ("audio" or "video").
    pub fn stream(&self, kind: &str) -> &Stream {
        let mut streams = self
            .streams
            .iter()
            .filter(|stream| stream.codec_type == kind);
        let stream = streams
            .next()
            .unwrap_or_else(|| panic!("no {kind} stream in {self:?}"));
        assert!(
            streams.next().is_none(),
            "more than one {kind} stream in {self:?}"
        );
        stream
    }

    /// Number of streams of `kind`.
    pub fn count(&self, kind: &str) -> usize {
        self.streams
            .iter()
            .filter(|stream| stream.codec_type == kind)
            .count()
    }

    /// Asserts the duration is `expected` seconds, give or take `tolerance`.
    pub fn assert_duration(&self, expected: f64, tolerance: f64) {
        assert!(
            (self.duration - expected).abs() <= tolerance,
            "duration {} s, expected {expected} ± {tolerance} s",
            self.duration
        );
    }
}
