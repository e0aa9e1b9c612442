//! Video: the lane that decodes, turns, scales and encodes one video stream to H.264 or
//! VP9, and what GIFs and thumbnails share with it (reading the decoder's picture).

use ffmpeg_next::{Dictionary, Rational, codec, decoder, encoder, format::Pixel, media};
use metamorph_plugin_api::ConvertError;

use crate::error::internal;
use crate::options::{Size, Trim};
use crate::probe::{Media, Rotation};
use crate::transcode::{Decoding, Encoding, FilterGraph, Lane, Muxer};

/// The video codecs written in video containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    /// H.264 (libx264).
    H264,
    /// VP9 (libvpx-vp9).
    Vp9,
}

/// The video settings asked for, checked.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct VideoParams {
    /// Constant rate factor, 0–51.
    pub(crate) quality: Option<u32>,
    /// Picture size.
    pub(crate) size: Size,
    /// Frame rate.
    pub(crate) fps: Option<Rational>,
}

/// Default constant rate factor (libx264's own default).
const DEFAULT_QUALITY: u32 = 23;

/// The picture a video decoder gives, and how it is shown.
pub(crate) struct Picture {
    width: u32,
    height: u32,
    format: Pixel,
    /// Pixel aspect ratio (1:1 when unknown).
    aspect: Rational,
    rotation: Rotation,
}

impl Picture {
    /// What `decoder` (of stream `index` of `media`) gives.
    pub(crate) fn of(media: &Media, index: usize, decoder: &decoder::Video) -> Self {
        let aspect = media
            .container_aspect(index)
            .unwrap_or_else(|| decoder.aspect_ratio());
        let aspect = if aspect.numerator() > 0 && aspect.denominator() > 0 {
            aspect
        } else {
            Rational(1, 1)
        };
        Self {
            width: decoder.width(),
            height: decoder.height(),
            format: decoder.format(),
            aspect,
            rotation: media.rotation(index),
        }
    }

    /// The arguments of a `buffer` source for these pictures, in `time_base`.
    pub(crate) fn buffer_args(&self, time_base: Rational, frame_rate: Rational) -> String {
        let format = self
            .format
            .descriptor()
            .map_or("yuv420p", |descriptor| descriptor.name());
        format!(
            "video_size={}x{}:pix_fmt={format}:time_base={}/{}:pixel_aspect={}/{}:frame_rate={}/{}",
            self.width,
            self.height,
            time_base.numerator(),
            time_base.denominator(),
            self.aspect.numerator(),
            self.aspect.denominator(),
            frame_rate.numerator(),
            frame_rate.denominator(),
        )
    }

    /// The size the picture is shown at: square pixels, turned upright.
    pub(crate) fn display_size(&self) -> (u32, u32) {
        let width = f64::from(self.width) * f64::from(self.aspect);
        let width = if width.is_finite() && width >= 1.0 {
            width.round() as u32
        } else {
            1
        };
        self.rotation
            .apply(width.min(crate::probe::MAX_DIMENSION), self.height)
    }

    /// The filters turning the picture upright, if it needs any.
    pub(crate) fn rotation_filters(&self) -> Option<&'static str> {
        self.rotation.filters()
    }
}

/// The filter changing the frame rate to `fps`: frames are dropped or repeated so that
/// every instant of the clip is shown. The end of the clip is rounded up (`eof_action=pass`)
/// rather than to the nearest frame, so that a clip shorter than half a frame at the new
/// rate keeps its picture instead of becoming empty.
pub(crate) fn fps_filter(fps: Rational) -> String {
    format!(
        "fps=fps={}/{}:eof_action=pass",
        fps.numerator(),
        fps.denominator()
    )
}

/// Builds the lane converting video stream `index` of `media` to `codec`, adding its
/// stream to `muxer`.
pub(crate) fn lane(
    media: &Media,
    index: usize,
    codec: VideoCodec,
    params: &VideoParams,
    trim: &Trim,
    muxer: &mut Muxer,
) -> Result<Lane, ConvertError> {
    let decoder = media.video_decoder(index)?;
    let picture = Picture::of(media, index, &decoder);
    let source_rate = media.frame_rate(index);
    let time_base = media.time_base(index);
    let (width, height) = {
        let (width, height) = picture.display_size();
        params.size.resolve(width, height, true)
    };

    let mut filters = trim.filters("");
    filters.extend(picture.rotation_filters().map(str::to_owned));
    if let Some(fps) = params.fps {
        filters.push(fps_filter(fps));
    }
    filters.push(format!("scale={width}:{height}"));
    filters.push("setsar=1".to_owned());
    filters.push("format=yuv420p".to_owned());
    let spec = format!("[in]{}[out]", filters.join(","));
    let mut graph = FilterGraph::new(
        media::Type::Video,
        Some(&picture.buffer_args(time_base, source_rate)),
        &spec,
    )
    .map_err(|error| internal("building the video filters failed", &error))?;
    let frame_time_base = graph.time_base();

    let frame_rate = params.fps.unwrap_or(source_rate);
    let encoder = open_encoder(
        codec,
        &Geometry {
            width,
            height,
            time_base: frame_time_base,
            frame_rate,
        },
        params.quality.unwrap_or(DEFAULT_QUALITY),
        Some(&decoder),
        muxer,
    )?;
    let stream = muxer.add_stream(&encoder, frame_time_base, Some(frame_rate))?;
    let decoding = Decoding::new(media, index, decoder.0, time_base, trim, source_rate);
    Ok(Lane::new(
        media::Type::Video,
        Some(decoding),
        graph,
        Encoding::new(encoder, frame_time_base, frame_time_base, stream),
    ))
}

/// Builds a lane encoding the pictures that `generator` (a filter chain, e.g. `testsrc2`)
/// makes at `width`×`height` and `frame_rate`, adding its stream to `muxer`.
pub(crate) fn generated_lane(
    generator: &str,
    codec: VideoCodec,
    width: u32,
    height: u32,
    frame_rate: Rational,
    muxer: &mut Muxer,
) -> Result<Lane, ConvertError> {
    let spec = format!("{generator},format=yuv420p[out]");
    let mut graph = FilterGraph::new(media::Type::Video, None, &spec)
        .map_err(|error| internal("building the video generator failed", &error))?;
    let time_base = graph.time_base();
    let geometry = Geometry {
        width,
        height,
        time_base,
        frame_rate,
    };
    let encoder = open_encoder(codec, &geometry, DEFAULT_QUALITY, None, muxer)?;
    let stream = muxer.add_stream(&encoder, time_base, Some(frame_rate))?;
    Ok(Lane::new(
        media::Type::Video,
        None,
        graph,
        Encoding::new(encoder, time_base, time_base, stream),
    ))
}

/// The pictures an encoder receives.
struct Geometry {
    width: u32,
    height: u32,
    time_base: Rational,
    frame_rate: Rational,
}

/// Opens the encoder of `codec`, with the settings the FFmpeg command line would use for
/// the same quality: libx264 preset medium, libvpx-vp9 in constant quality mode with
/// row-based threading; threads on every core.
fn open_encoder(
    codec: VideoCodec,
    geometry: &Geometry,
    quality: u32,
    source: Option<&decoder::Video>,
    muxer: &Muxer,
) -> Result<encoder::Encoder, ConvertError> {
    let name = match codec {
        VideoCodec::H264 => "libx264",
        VideoCodec::Vp9 => "libvpx-vp9",
    };
    let found = encoder::find_by_name(name)
        .ok_or_else(|| ConvertError::internal(format!("FFmpeg has no {name} encoder")))?;
    let mut context = codec::context::Context::new_with_codec(found)
        .encoder()
        .video()
        .map_err(|error| internal("creating the video encoder failed", &error))?;
    context.set_width(geometry.width);
    context.set_height(geometry.height);
    context.set_format(Pixel::YUV420P);
    context.set_aspect_ratio(Rational(1, 1));
    context.set_time_base(geometry.time_base);
    context.set_frame_rate(Some(geometry.frame_rate));
    if let Some(source) = source {
        context.set_colorspace(source.color_space());
        context.set_color_primaries(source.color_primaries());
        context.set_color_transfer_characteristic(source.color_transfer_characteristic());
    }
    if muxer.wants_global_header() {
        context.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut options = Dictionary::new();
    options.set("threads", "auto");
    match codec {
        VideoCodec::H264 => {
            options.set("preset", "medium");
            options.set("crf", &quality.to_string());
        }
        VideoCodec::Vp9 => {
            // VP9's scale is 0–63: 51 maps to 63.
            options.set("crf", &((quality * 63 + 25) / 51).to_string());
            options.set("b", "0");
            options.set("deadline", "good");
            options.set("cpu-used", "4");
            options.set("row-mt", "1");
        }
    }
    let opened = context
        .open_as_with(found, options)
        .map_err(|error| internal(format!("opening the {name} encoder failed"), &error))?;
    Ok(opened.0.0)
}
