//! Metamorph's first-party audio and video converter: FFmpeg (libavformat, libavcodec,
//! libavfilter) in a native plugin.
//!
//! - Audio: wav, mp3 (libmp3lame), ogg (Vorbis), opus (Opus in Ogg, 48 kHz), flac and m4a
//!   (AAC) to one another; aiff is read too.
//! - Video: mp4 (H.264 and AAC), webm (VP9 and Opus) and mkv (H.264 and AAC), from those
//!   and mov, avi and ogv; the sound of a video to any audio format; a video to an
//!   animated GIF; one frame of a video to jpg or png.
//!
//! Encoders are set as the FFmpeg command line sets them (libx264 preset medium, threads
//! on every core, …), so a conversion runs as fast as `ffmpeg` with the same settings.
//!
//! Broken input is a malformed-input error, never a crash: FFmpeg skips damaged packets as
//! its command line does, and a truncated file converts up to where it ends (as long as
//! something in it decodes). Inputs beyond the limits (pictures over 16384 pixels a side or
//! 64 megapixels, more than 24 hours, more than 64 channels) are refused as limits. FFmpeg's
//! own logging is silenced.

use std::sync::OnceLock;

use ffmpeg_next as ffmpeg;
use metamorph_plugin_api::{ConvertError, Converter, Input, Output, PluginInfo, Request};

mod audio;
mod convert;
mod error;
mod formats;
mod gif;
mod options;
mod probe;
mod template;
mod thumbnail;
mod transcode;
mod video;

pub use options::{AudioOptions, GifOptions, ThumbnailOptions, VideoOptions};

use formats::{AUDIO_SOURCES, AUDIO_TARGETS, IMAGE_TARGETS, Pair, VIDEO_SOURCES, VIDEO_TARGETS};

/// Relative costs (about milliseconds for a typical input) for the planner.
mod cost {
    /// Audio to audio.
    pub(super) const AUDIO: u32 = 400;
    /// The sound of a video to audio.
    pub(super) const EXTRACT: u32 = 600;
    /// Video to video.
    pub(super) const VIDEO: u32 = 8000;
    /// Video to GIF.
    pub(super) const GIF: u32 = 4000;
    /// A frame of a video to a picture.
    pub(super) const THUMBNAIL: u32 = 300;
}

/// The audio and video converter.
pub struct Av;

impl Converter for Av {
    fn describe() -> PluginInfo {
        let mut info = PluginInfo::new("av", env!("CARGO_PKG_VERSION")).description(
            "Converts audio and video with FFmpeg: formats, trimming, scaling, GIFs and thumbnails",
        );
        for source in AUDIO_SOURCES {
            for target in AUDIO_TARGETS.iter().filter(|target| *target != source) {
                info = info.convert_with::<AudioOptions>(source, target, cost::AUDIO);
            }
        }
        for source in VIDEO_SOURCES {
            for target in VIDEO_TARGETS.iter().filter(|target| *target != source) {
                info = info.convert_with::<VideoOptions>(source, target, cost::VIDEO);
            }
            for target in AUDIO_TARGETS {
                info = info.convert_with::<AudioOptions>(source, target, cost::EXTRACT);
            }
            info = info.convert_with::<GifOptions>(source, "gif", cost::GIF);
            for target in IMAGE_TARGETS {
                info = info.convert_with::<ThumbnailOptions>(source, target, cost::THUMBNAIL);
            }
        }
        for format in formats::extra_formats() {
            info = info.format(format);
        }
        for format in template::TEMPLATES {
            info = info.template(format);
        }
        info
    }

    fn convert(
        request: &Request,
        input: &mut Input,
        output: &mut Output<'_>,
    ) -> Result<(), ConvertError> {
        let (source, target) = request.pair();
        let pair = Pair::of(source, target).ok_or_else(|| {
            ConvertError::unsupported(format!(
                "the av plugin does not convert {source} to {target}"
            ))
        })?;
        if let Pair::Thumbnail(format) = pair {
            let options: ThumbnailOptions = request.options()?;
            return thumbnail::convert(input, output, source, format, &options);
        }
        let path = output
            .path()
            .ok_or_else(|| {
                ConvertError::internal("the av plugin writes to an output file, and got none")
            })?
            .to_owned();
        match pair {
            Pair::Audio(container) => {
                let options: AudioOptions = request.options()?;
                convert::to_audio(input, &path, source, &container, &options)
            }
            Pair::Video(container) => {
                let options: VideoOptions = request.options()?;
                convert::to_video(input, &path, source, &container, &options)
            }
            Pair::Gif => {
                let options: GifOptions = request.options()?;
                gif::convert(input, &path, source, &options)
            }
            Pair::Thumbnail(_) => Ok(()),
        }
    }

    fn template(format: &str) -> Result<Vec<u8>, ConvertError> {
        template::make(format)
    }
}

metamorph_plugin_api::export_native_plugin!(Av);

/// Initialises FFmpeg once per process and silences its logging.
pub(crate) fn init() -> Result<(), ConvertError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg::init().map_err(|error| error.to_string())?;
        ffmpeg::log::set_level(ffmpeg::log::Level::Quiet);
        Ok(())
    })
    .clone()
    .map_err(|error| ConvertError::internal(format!("FFmpeg failed to start: {error}")))
}
