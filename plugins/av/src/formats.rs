//! The formats read and written, and what each target is made of.

use ffmpeg_next::Dictionary;
use metamorph_plugin_api::FormatInfo;

use crate::audio::AudioCodec;
use crate::thumbnail::ImageFormat;
use crate::video::VideoCodec;

/// Audio formats read.
pub(crate) const AUDIO_SOURCES: &[&str] = &["wav", "mp3", "ogg", "opus", "flac", "m4a", "aiff"];
/// Audio formats written.
pub(crate) const AUDIO_TARGETS: &[&str] = &["wav", "mp3", "ogg", "opus", "flac", "m4a"];
/// Video formats read.
pub(crate) const VIDEO_SOURCES: &[&str] = &["mp4", "webm", "mkv", "mov", "avi", "ogv"];
/// Video formats written.
pub(crate) const VIDEO_TARGETS: &[&str] = &["mp4", "webm", "mkv"];
/// Picture formats a frame of a video is written as.
pub(crate) const IMAGE_TARGETS: &[&str] = &["jpg", "png"];

/// A container written, with the codecs inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Container {
    /// FFmpeg's muxer.
    pub(crate) muxer: &'static str,
    /// The audio codec.
    pub(crate) audio: AudioCodec,
    /// The video codec (`None`: an audio format).
    pub(crate) video: Option<VideoCodec>,
    /// Whether the index goes first, so that playback can start before the download ends
    /// (MP4 family: the muxer rewrites the file once at the end).
    faststart: bool,
}

impl Container {
    /// The container of `format`, if it is a target.
    pub(crate) fn of(format: &str) -> Option<Self> {
        let audio = |muxer, audio| Self {
            muxer,
            audio,
            video: None,
            faststart: false,
        };
        Some(match format {
            "wav" => audio("wav", AudioCodec::Pcm),
            "mp3" => audio("mp3", AudioCodec::Mp3),
            "ogg" => audio("ogg", AudioCodec::Vorbis),
            "opus" => audio("opus", AudioCodec::Opus),
            "flac" => audio("flac", AudioCodec::Flac),
            "m4a" => Self {
                faststart: true,
                ..audio("ipod", AudioCodec::Aac)
            },
            "mp4" => Self {
                muxer: "mp4",
                audio: AudioCodec::Aac,
                video: Some(VideoCodec::H264),
                faststart: true,
            },
            "mkv" => Self {
                muxer: "matroska",
                audio: AudioCodec::Aac,
                video: Some(VideoCodec::H264),
                faststart: false,
            },
            "webm" => Self {
                muxer: "webm",
                audio: AudioCodec::Opus,
                video: Some(VideoCodec::Vp9),
                faststart: false,
            },
            _ => return None,
        })
    }

    /// Options of the muxer.
    pub(crate) fn header_options(&self) -> Dictionary<'static> {
        let mut options = Dictionary::new();
        if self.faststart {
            options.set("movflags", "+faststart");
        }
        options
    }
}

/// What a pair of formats asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pair {
    /// To an audio format (from audio or video).
    Audio(Container),
    /// Video to a video format.
    Video(Container),
    /// Video to an animated GIF.
    Gif,
    /// One frame of a video as a picture.
    Thumbnail(ImageFormat),
}

impl Pair {
    /// What converting `source` to `target` means, if this plugin does it.
    pub(crate) fn of(source: &str, target: &str) -> Option<Self> {
        if source == target {
            return None;
        }
        let from_audio = AUDIO_SOURCES.contains(&source);
        let from_video = VIDEO_SOURCES.contains(&source);
        if (from_audio || from_video) && AUDIO_TARGETS.contains(&target) {
            return Container::of(target).map(Self::Audio);
        }
        if !from_video {
            return None;
        }
        match target {
            "gif" => Some(Self::Gif),
            "jpg" => Some(Self::Thumbnail(ImageFormat::Jpeg)),
            "png" => Some(Self::Thumbnail(ImageFormat::Png)),
            _ if VIDEO_TARGETS.contains(&target) => Container::of(target).map(Self::Video),
            _ => None,
        }
    }
}

/// Formats the host may not know.
pub(crate) fn extra_formats() -> Vec<FormatInfo> {
    vec![FormatInfo {
        name: "ogv".to_owned(),
        media_types: vec!["video/ogg".to_owned()],
        extensions: vec!["ogv".to_owned()],
        category: "video".to_owned(),
        description: "Ogg video (Theora)".to_owned(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_pair_is_understood() {
        for source in AUDIO_SOURCES.iter().chain(VIDEO_SOURCES) {
            for target in AUDIO_TARGETS {
                if source != target {
                    assert!(Pair::of(source, target).is_some(), "{source} → {target}");
                }
            }
        }
        for source in VIDEO_SOURCES {
            for target in VIDEO_TARGETS.iter().chain(IMAGE_TARGETS).chain(&["gif"]) {
                if source != target {
                    assert!(Pair::of(source, target).is_some(), "{source} → {target}");
                }
            }
        }
    }

    #[test]
    fn audio_is_not_turned_into_video() {
        assert_eq!(Pair::of("mp3", "mp4"), None);
        assert_eq!(Pair::of("wav", "gif"), None);
        assert_eq!(Pair::of("mp4", "mp4"), None);
    }
}
