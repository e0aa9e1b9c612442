//! Conversions into containers: audio formats, and video formats with their sound.

use std::path::Path;

use metamorph_plugin_api::{ConvertError, Input};

use crate::audio::{self, AudioParams};
use crate::formats::Container;
use crate::options::{self, AudioOptions, Size, Trim, VideoOptions};
use crate::probe::{MAX_DIMENSION, Media};
use crate::transcode::{Job, Muxer, metadata};
use crate::video::{self, VideoParams};

/// Converts the sound of `input` (audio, or a video's sound) into `container`.
pub(crate) fn to_audio(
    input: &Input,
    output: &Path,
    source: &str,
    container: &Container,
    options: &AudioOptions,
) -> Result<(), ConvertError> {
    let trim = Trim::new(options.start, options.duration)?;
    let params = AudioParams {
        bitrate: options.bitrate,
        sample_rate: options::sample_rate(options.sample_rate, 192_000)?,
        channels: options::channels(options.channels)?,
        default_bitrate: None,
    };
    run(input, output, source, container, &params, None, trim)
}

/// Converts the video (and sound) of `input` into `container`.
pub(crate) fn to_video(
    input: &Input,
    output: &Path,
    source: &str,
    container: &Container,
    options: &VideoOptions,
) -> Result<(), ConvertError> {
    let trim = Trim::new(options.start, options.duration)?;
    let quality = match options.quality {
        None => None,
        Some(quality @ 0..=51) => Some(quality),
        Some(quality) => {
            return Err(ConvertError::invalid_options(format!(
                "quality must be from 0 (best) to 51 (smallest), not {quality}"
            )));
        }
    };
    let video = VideoParams {
        quality,
        size: Size::new(options.width, options.height, MAX_DIMENSION)?,
        fps: options::frame_rate(options.fps, 1.0, 120.0)?,
    };
    let audio = AudioParams {
        bitrate: options.bitrate,
        sample_rate: options::sample_rate(options.sample_rate, 96_000)?,
        channels: options::channels(options.channels)?,
        default_bitrate: Some(128),
    };
    run(input, output, source, container, &audio, Some(&video), trim)
}

/// Opens the input, builds a lane per output stream and runs them.
fn run(
    input: &Input,
    output: &Path,
    source: &str,
    container: &Container,
    audio_params: &AudioParams,
    video_params: Option<&VideoParams>,
    trim: Trim,
) -> Result<(), ConvertError> {
    let mut media = Media::open(input, source)?;
    trim.check_against(media.duration)?;
    let mut muxer = Muxer::create(output, container.muxer)?;
    let mut lanes = Vec::new();
    if let (Some(codec), Some(params)) = (container.video, video_params) {
        let index = media
            .video
            .ok_or_else(|| ConvertError::unsupported("the input has no video stream"))?;
        lanes.push(video::lane(
            &media, index, codec, params, &trim, &mut muxer,
        )?);
    }
    match media.audio {
        Some(index) => lanes.push(audio::lane(
            &media,
            index,
            container.audio,
            audio_params,
            &trim,
            &mut muxer,
        )?),
        None if lanes.is_empty() => {
            return Err(ConvertError::unsupported(
                "the input has no audio stream to convert",
            ));
        }
        None => {}
    }
    muxer.start(metadata(&media), container.header_options())?;
    media.seek_to(trim.start);
    Job::new(Some(media), lanes, muxer, trim).run()
}
