//! Video to animated GIF, with a palette computed for the clip (`palettegen`) and applied
//! with dithering (`paletteuse`), as in FFmpeg's well-known recipe.

use std::path::Path;

use ffmpeg_next::{Dictionary, Rational, codec, encoder, format::Pixel, media};
use metamorph_plugin_api::{ConvertError, Input};

use crate::error::internal;
use crate::options::{GifOptions, Size, Trim, frame_rate};
use crate::probe::Media;
use crate::transcode::{Decoding, Encoding, FilterGraph, Job, Lane, Muxer, metadata};
use crate::video::{Picture, fps_filter};

/// Frames per second when none is asked for.
const DEFAULT_FPS: i32 = 10;
/// Widest GIF made when no size is asked for.
const DEFAULT_MAX_WIDTH: u32 = 480;
/// Largest side accepted.
const MAX_SIDE: u32 = 1920;
/// Memory the palette may wait for: every frame is held (as 32-bit RGB) until the palette
/// of the whole clip is known.
const MAX_HELD_BYTES: f64 = 256.0 * 1024.0 * 1024.0;

/// Converts the video of `input` to a GIF at `output`.
pub(crate) fn convert(
    input: &Input,
    output: &Path,
    source: &str,
    options: &GifOptions,
) -> Result<(), ConvertError> {
    let trim = Trim::new(options.start, options.duration)?;
    let fps = frame_rate(options.fps, 1.0, 50.0)?.unwrap_or(Rational(DEFAULT_FPS, 1));
    let size = Size::new(options.width, options.height, MAX_SIDE)?;
    let mut media = Media::open(input, source)?;
    trim.check_against(media.duration)?;
    let index = media
        .video
        .ok_or_else(|| ConvertError::unsupported("the input has no video stream"))?;
    let decoder = media.video_decoder(index)?;
    let picture = Picture::of(&media, index, &decoder);
    let (width, height) = {
        let (width, height) = picture.display_size();
        if size.is_set() {
            size.resolve(width, height, false)
        } else {
            let width_limited = Size {
                width: Some(width.min(DEFAULT_MAX_WIDTH)),
                height: None,
            };
            width_limited.resolve(width, height, false)
        }
    };

    // Every frame waits in memory for the palette: refuse clips that would not fit.
    let frame_bytes = f64::from(width) * f64::from(height) * 4.0;
    let max_seconds = MAX_HELD_BYTES / frame_bytes / f64::from(fps);
    let seconds = match (trim.duration, media.duration) {
        (Some(duration), _) => Some(duration),
        (None, Some(length)) => Some(length - trim.start),
        (None, None) => None,
    };
    if let Some(seconds) = seconds
        && seconds > max_seconds
    {
        return Err(ConvertError::limit(format!(
            "a GIF of {seconds:.1} s at {width}×{height} and {} fps is too large: at this size \
             and rate at most {max_seconds:.1} s fit; set a shorter duration, a smaller width \
             or a lower fps",
            f64::from(fps)
        )));
    }
    let trim = match (trim.duration, seconds) {
        // Without a known length, hold at most what fits; the limit is then the clip's end.
        (None, None) => Trim {
            duration: Some(max_seconds),
            ..trim
        },
        _ => trim,
    };

    let source_rate = media.frame_rate(index);
    let time_base = media.time_base(index);
    let mut chain = trim.filters("");
    chain.extend(picture.rotation_filters().map(str::to_owned));
    chain.push(fps_filter(fps));
    chain.push(format!("scale={width}:{height}:flags=lanczos"));
    chain.push("setsar=1".to_owned());
    let spec = format!(
        "[in]{},split[frames][sample];[sample]palettegen[palette];\
         [frames][palette]paletteuse[out]",
        chain.join(",")
    );
    let mut graph = FilterGraph::new(
        media::Type::Video,
        Some(&picture.buffer_args(time_base, source_rate)),
        &spec,
    )
    .map_err(|error| internal("building the GIF filters failed", &error))?;
    let frame_time_base = graph.time_base();

    let mut muxer = Muxer::create(output, "gif")?;
    let encoder = open_encoder(width, height, frame_time_base, fps)?;
    let stream = muxer.add_stream(&encoder, frame_time_base, Some(fps))?;
    let decoding = Decoding::new(&media, index, decoder.0, time_base, &trim, source_rate);
    let lane = Lane::new(
        media::Type::Video,
        Some(decoding),
        graph,
        Encoding::new(encoder, frame_time_base, frame_time_base, stream),
    );
    muxer.start(metadata(&media), Dictionary::new())?;
    media.seek_to(trim.start);
    Job::new(Some(media), vec![lane], muxer, trim).run()
}

/// Builds a lane encoding the pictures `generator` makes as a GIF at `width`×`height`.
pub(crate) fn generated_lane(
    generator: &str,
    width: u32,
    height: u32,
    fps: Rational,
    muxer: &mut Muxer,
) -> Result<Lane, ConvertError> {
    let spec = format!(
        "{generator},split[frames][sample];[sample]palettegen[palette];\
         [frames][palette]paletteuse[out]"
    );
    let mut graph = FilterGraph::new(media::Type::Video, None, &spec)
        .map_err(|error| internal("building the GIF generator failed", &error))?;
    let time_base = graph.time_base();
    let encoder = open_encoder(width, height, time_base, fps)?;
    let stream = muxer.add_stream(&encoder, time_base, Some(fps))?;
    Ok(Lane::new(
        media::Type::Video,
        None,
        graph,
        Encoding::new(encoder, time_base, time_base, stream),
    ))
}

/// Opens FFmpeg's GIF encoder for palette pictures.
fn open_encoder(
    width: u32,
    height: u32,
    time_base: Rational,
    fps: Rational,
) -> Result<encoder::Encoder, ConvertError> {
    let found = encoder::find_by_name("gif")
        .ok_or_else(|| ConvertError::internal("FFmpeg has no gif encoder"))?;
    let mut context = codec::context::Context::new_with_codec(found)
        .encoder()
        .video()
        .map_err(|error| internal("creating the GIF encoder failed", &error))?;
    context.set_width(width);
    context.set_height(height);
    context.set_format(Pixel::PAL8);
    context.set_time_base(time_base);
    context.set_frame_rate(Some(fps));
    let opened = context
        .open_as(found)
        .map_err(|error| internal("opening the GIF encoder failed", &error))?;
    Ok(opened.0.0)
}
