//! The options of each family of conversions, and their checks.
//!
//! Each type's doc comments become the documentation clients see. The host checks values
//! against the JSON Schema first; the checks here repeat what the schema cannot say (ranges
//! that depend on the target, a `start` past the end) with messages that say what is
//! allowed.

use ffmpeg_next::Rational;
use metamorph_plugin_api::ConvertError;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::probe::{MAX_DIMENSION, MAX_DURATION_SECONDS};

/// Options of conversions to an audio format (from audio, or extracting a video's sound).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AudioOptions {
    /// Bitrate in kbit/s, for lossy formats only: mp3 8–320 (default 192), ogg 32–500
    /// (default: variable quality 5, about 160), opus 6–256 per channel (default 128),
    /// m4a 16–512 (default 192). Not allowed for wav and flac, which are lossless.
    #[schemars(range(min = 6, max = 512))]
    pub bitrate: Option<u32>,
    /// Sample rate in Hz, 8000–192000. Default: the input's, or the nearest one the format
    /// supports (opus: always 48000). mp3 and m4a accept only their standard rates.
    #[schemars(range(min = 8000, max = 192_000))]
    pub sample_rate: Option<u32>,
    /// Number of channels, 1–8 (mp3: 1 or 2). Default: the input's, down-mixed to stereo
    /// for mp3.
    #[schemars(range(min = 1, max = 8))]
    pub channels: Option<u32>,
    /// Where to start, in seconds from the beginning of the input. Default 0.
    #[schemars(range(min = 0.0, max = 86_400.0))]
    pub start: Option<f64>,
    /// How many seconds to keep, from `start`. Default: up to the end.
    #[schemars(range(min = 0.001, max = 86_400.0))]
    pub duration: Option<f64>,
}

/// Options of conversions to a video format: mp4 (H.264 and AAC), webm (VP9 and Opus) and
/// mkv (H.264 and AAC).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VideoOptions {
    /// Video quality as a constant rate factor, 0 (best, largest file) to 51 (worst,
    /// smallest); default 23. Every 6 steps roughly halve or double the size. For webm the
    /// value is mapped onto VP9's 0–63 scale (23 becomes 28).
    #[schemars(range(min = 0, max = 51))]
    pub quality: Option<u32>,
    /// Width of the picture in pixels, 16–16384. With only `width` or `height`, the other
    /// follows the aspect ratio; with both, the picture is stretched to that size. Sizes
    /// are rounded down to even numbers, as H.264 and VP9 in 4:2:0 need. Default: the
    /// input's size (after applying its rotation).
    #[schemars(range(min = 16, max = 16_384))]
    pub width: Option<u32>,
    /// Height of the picture in pixels, 16–16384 (see `width`).
    #[schemars(range(min = 16, max = 16_384))]
    pub height: Option<u32>,
    /// Frame rate in frames per second, 1–120 (frames are dropped or repeated to reach
    /// it; a clip shorter than one frame at this rate keeps one). Default: the input's
    /// frame timing is kept.
    #[schemars(range(min = 1.0, max = 120.0))]
    pub fps: Option<f64>,
    /// Audio bitrate in kbit/s: 16–512 for mp4 and mkv (AAC), 6–256 per channel for webm
    /// (Opus). Default 128.
    #[schemars(range(min = 6, max = 512))]
    pub bitrate: Option<u32>,
    /// Audio sample rate in Hz, 8000–96000. Default: the input's (webm: 48000).
    #[schemars(range(min = 8000, max = 96_000))]
    pub sample_rate: Option<u32>,
    /// Number of audio channels, 1–8. Default: the input's.
    #[schemars(range(min = 1, max = 8))]
    pub channels: Option<u32>,
    /// Where to start, in seconds from the beginning of the input. Default 0.
    #[schemars(range(min = 0.0, max = 86_400.0))]
    pub start: Option<f64>,
    /// How many seconds to keep, from `start`. Default: up to the end.
    #[schemars(range(min = 0.001, max = 86_400.0))]
    pub duration: Option<f64>,
}

/// Options of conversions of a video to an animated GIF (with a palette computed for the
/// clip, for good colours).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GifOptions {
    /// Frames per second, 1–50 (a clip shorter than one frame at this rate keeps one).
    /// Default 10.
    #[schemars(range(min = 1.0, max = 50.0))]
    pub fps: Option<f64>,
    /// Width in pixels, 16–1920. Default: the input's width, at most 480. With only
    /// `width` or `height`, the other follows the aspect ratio.
    #[schemars(range(min = 16, max = 1920))]
    pub width: Option<u32>,
    /// Height in pixels, 16–1920 (see `width`).
    #[schemars(range(min = 16, max = 1920))]
    pub height: Option<u32>,
    /// Where to start, in seconds from the beginning of the input. Default 0.
    #[schemars(range(min = 0.0, max = 86_400.0))]
    pub start: Option<f64>,
    /// How many seconds to keep, from `start`. Default: up to the end (the frames of a GIF
    /// are held in memory, so long clips must be short, small or slow enough).
    #[schemars(range(min = 0.001, max = 86_400.0))]
    pub duration: Option<f64>,
}

/// Options of taking one frame of a video as a picture (jpg or png).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ThumbnailOptions {
    /// When to take the frame, in seconds from the beginning: the first frame shown from
    /// then on (the last frame at the very end). A time past the end is refused. Default 1,
    /// or the middle of videos shorter than 2 seconds.
    #[schemars(range(min = 0.0, max = 86_400.0))]
    pub time: Option<f64>,
    /// Width in pixels, 16–16384. With only `width` or `height`, the other follows the
    /// aspect ratio. Default: the video's size.
    #[schemars(range(min = 16, max = 16_384))]
    pub width: Option<u32>,
    /// Height in pixels, 16–16384 (see `width`).
    #[schemars(range(min = 16, max = 16_384))]
    pub height: Option<u32>,
}

/// Which part of the input to convert, checked.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Trim {
    /// Seconds skipped at the beginning.
    pub(crate) start: f64,
    /// Seconds kept (`None`: up to the end).
    pub(crate) duration: Option<f64>,
}

impl Trim {
    /// Checks `start` and `duration`.
    pub(crate) fn new(start: Option<f64>, duration: Option<f64>) -> Result<Self, ConvertError> {
        let start = start.unwrap_or(0.0);
        if !start.is_finite() || !(0.0..=MAX_DURATION_SECONDS).contains(&start) {
            return Err(ConvertError::invalid_options(format!(
                "start must be a number of seconds from 0 to {MAX_DURATION_SECONDS}, not {start}"
            )));
        }
        if let Some(duration) = duration
            && (!duration.is_finite() || duration <= 0.0 || duration > MAX_DURATION_SECONDS)
        {
            return Err(ConvertError::invalid_options(format!(
                "duration must be a number of seconds above 0 and at most \
                 {MAX_DURATION_SECONDS}, not {duration}"
            )));
        }
        Ok(Self { start, duration })
    }

    /// Whether anything is cut.
    pub(crate) fn is_active(&self) -> bool {
        self.start > 0.0 || self.duration.is_some()
    }

    /// Where the kept part ends, in seconds from the beginning.
    pub(crate) fn end(&self) -> Option<f64> {
        self.duration.map(|duration| self.start + duration)
    }

    /// Refuses a start past the end of an input lasting `length` seconds (when known).
    pub(crate) fn check_against(&self, length: Option<f64>) -> Result<(), ConvertError> {
        match length {
            Some(length) if self.start > 0.0 && self.start >= length => {
                Err(ConvertError::invalid_options(format!(
                    "start ({} s) is at or past the end of the input, which lasts {length:.3} s",
                    self.start
                )))
            }
            _ => Ok(()),
        }
    }

    /// The filters cutting this part out of a stream and moving it to time zero:
    /// `trim`/`setpts` for video (`prefix` ""), `atrim`/`asetpts` for audio ("a").
    pub(crate) fn filters(&self, prefix: &str) -> Vec<String> {
        let mut filters = Vec::new();
        if !self.is_active() {
            return filters;
        }
        let mut trim = format!("{prefix}trim=start={}", self.start);
        if let Some(duration) = self.duration {
            trim.push_str(&format!(":duration={duration}"));
        }
        filters.push(trim);
        if self.start > 0.0 {
            filters.push(format!("{prefix}setpts=PTS-{}/TB", self.start));
        }
        filters
    }
}

/// A requested picture size: either side may be left to follow the aspect ratio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Size {
    /// Width in pixels.
    pub(crate) width: Option<u32>,
    /// Height in pixels.
    pub(crate) height: Option<u32>,
}

impl Size {
    /// Checks that each given side is within `min..=max`.
    pub(crate) fn new(
        width: Option<u32>,
        height: Option<u32>,
        max: u32,
    ) -> Result<Self, ConvertError> {
        const MIN: u32 = 16;
        for (name, value) in [("width", width), ("height", height)] {
            if let Some(value) = value
                && !(MIN..=max).contains(&value)
            {
                return Err(ConvertError::invalid_options(format!(
                    "{name} must be from {MIN} to {max} pixels, not {value}"
                )));
            }
        }
        Ok(Self { width, height })
    }

    /// Whether a size was asked for.
    pub(crate) fn is_set(&self) -> bool {
        self.width.is_some() || self.height.is_some()
    }

    /// The output size for a picture displayed at `display_width`×`display_height`:
    /// a missing side follows the aspect ratio; with `even`, both are rounded down to
    /// even numbers. Without a requested size, the display size is kept.
    pub(crate) fn resolve(
        &self,
        display_width: u32,
        display_height: u32,
        even: bool,
    ) -> (u32, u32) {
        let aspect = f64::from(display_width.max(1)) / f64::from(display_height.max(1));
        let (width, height) = match (self.width, self.height) {
            (Some(width), Some(height)) => (width, height),
            (Some(width), None) => (width, rounded(f64::from(width) / aspect)),
            (None, Some(height)) => (rounded(f64::from(height) * aspect), height),
            (None, None) => (display_width, display_height),
        };
        let (width, height) = (
            width.clamp(1, MAX_DIMENSION),
            height.clamp(1, MAX_DIMENSION),
        );
        if even {
            (to_even(width), to_even(height))
        } else {
            (width, height)
        }
    }
}

/// `value` rounded to a whole number of pixels, at least 1.
fn rounded(value: f64) -> u32 {
    let value = value.round();
    if value >= f64::from(MAX_DIMENSION) {
        MAX_DIMENSION
    } else if value >= 1.0 {
        // In range: 1..MAX_DIMENSION.
        value as u32
    } else {
        1
    }
}

/// `value` rounded down to an even number, at least 2.
fn to_even(value: u32) -> u32 {
    (value & !1).max(2)
}

/// Checks a frame rate option against `min..=max` and turns it into a fraction.
pub(crate) fn frame_rate(
    fps: Option<f64>,
    min: f64,
    max: f64,
) -> Result<Option<Rational>, ConvertError> {
    match fps {
        None => Ok(None),
        Some(fps) if fps.is_finite() && (min..=max).contains(&fps) => {
            Ok(Some(Rational::from(fps).reduce()))
        }
        Some(fps) => Err(ConvertError::invalid_options(format!(
            "fps must be from {min} to {max} frames per second, not {fps}"
        ))),
    }
}

/// Checks a channel count option (1–8).
pub(crate) fn channels(channels: Option<u32>) -> Result<Option<u16>, ConvertError> {
    match channels {
        None => Ok(None),
        Some(count @ 1..=8) => Ok(u16::try_from(count).ok()),
        Some(count) => Err(ConvertError::invalid_options(format!(
            "channels must be from 1 to 8, not {count}"
        ))),
    }
}

/// Checks a sample rate option against `8000..=max` Hz.
pub(crate) fn sample_rate(rate: Option<u32>, max: u32) -> Result<Option<u32>, ConvertError> {
    match rate {
        None => Ok(None),
        Some(rate) if (8000..=max).contains(&rate) => Ok(Some(rate)),
        Some(rate) => Err(ConvertError::invalid_options(format!(
            "sample_rate must be from 8000 to {max} Hz, not {rate}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_side_follows_the_aspect_ratio() {
        let size = Size::new(Some(320), None, MAX_DIMENSION).unwrap();
        assert_eq!(size.resolve(1920, 1080, false), (320, 180));
        let size = Size::new(None, Some(100), MAX_DIMENSION).unwrap();
        assert_eq!(size.resolve(640, 356, true), (180, 100));
    }

    #[test]
    fn even_sizes_are_rounded_down() {
        assert_eq!(Size::default().resolve(301, 201, true), (300, 200));
        assert_eq!(Size::default().resolve(301, 201, false), (301, 201));
    }

    #[test]
    fn sizes_out_of_range_are_refused_with_the_range() {
        let error = Size::new(Some(8), None, 1920).unwrap_err();
        assert!(
            error.message.contains("from 16 to 1920"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_negative_or_infinite_start_is_refused() {
        assert!(Trim::new(Some(-1.0), None).is_err());
        assert!(Trim::new(Some(f64::INFINITY), None).is_err());
        assert!(Trim::new(None, Some(0.0)).is_err());
    }

    #[test]
    fn trimming_becomes_trim_and_setpts_filters() {
        let trim = Trim::new(Some(1.5), Some(2.0)).unwrap();
        assert_eq!(
            trim.filters("a"),
            ["atrim=start=1.5:duration=2", "asetpts=PTS-1.5/TB"]
        );
        assert!(Trim::default().filters("").is_empty());
    }

    #[test]
    fn a_start_past_the_end_is_refused() {
        let trim = Trim::new(Some(10.0), None).unwrap();
        assert!(trim.check_against(Some(5.0)).is_err());
        assert!(trim.check_against(None).is_ok());
    }
}
