//! One frame of a video as a picture: JPEG (FFmpeg's mjpeg encoder at quality 2) or PNG.

use std::io::Write;

use ffmpeg_next::{Packet, Rational, Rescale, codec, encoder, format::Pixel, media};
use metamorph_plugin_api::{ConvertError, Input, Output};

use crate::error::{describe, internal, is_again};
use crate::options::{Size, ThumbnailOptions, Trim};
use crate::probe::{MAX_DIMENSION, Media};
use crate::transcode::{Decoding, FilterGraph, FrameBuffer, Pulled};
use crate::video::Picture;

/// FFmpeg's factor between quantiser scales and `global_quality`.
const QP2LAMBDA: usize = 118;

/// The picture formats written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
}

/// Writes the frame of `input`'s video at the requested time to `output`.
pub(crate) fn convert(
    input: &Input,
    output: &mut Output<'_>,
    source: &str,
    format: ImageFormat,
    options: &ThumbnailOptions,
) -> Result<(), ConvertError> {
    let size = Size::new(options.width, options.height, MAX_DIMENSION)?;
    if let Some(time) = options.time
        && (!time.is_finite() || time < 0.0)
    {
        return Err(ConvertError::invalid_options(format!(
            "time must be a number of seconds from 0, not {time}"
        )));
    }
    let mut media = Media::open(input, source)?;
    let time = match (options.time, media.duration) {
        // The length is shown to the millisecond: a time rounded up from it is the end.
        (Some(time), Some(length)) if time > length + 0.001 => {
            return Err(ConvertError::invalid_options(format!(
                "time ({time} s) is past the end of the video, which lasts {length:.3} s"
            )));
        }
        (Some(time), _) => time,
        (None, Some(length)) if length < 2.0 => length / 2.0,
        (None, _) => 1.0,
    };
    let index = media
        .video
        .ok_or_else(|| ConvertError::unsupported("the input has no video stream"))?;
    let decoder = media.video_decoder(index)?;
    let picture = Picture::of(&media, index, &decoder);
    let (width, height) = {
        let (width, height) = picture.display_size();
        size.resolve(width, height, false)
    };
    let time_base = media.time_base(index);
    let frame_rate = media.frame_rate(index);
    let target = ((time * 1e6) as i64).rescale(Rational(1, 1_000_000), time_base);
    let mut decoding = Decoding::new(
        &media,
        index,
        decoder.0,
        time_base,
        &Trim::default(),
        frame_rate,
    );

    // Decode from the key frame before `time` up to the first frame at or after it; the
    // last frame of the video stands in when it ends earlier.
    media.seek_to(time);
    let mut chosen = FrameBuffer::new(media::Type::Video);
    let mut found = false;
    let mut failures = 0;
    'read: loop {
        let mut packet = Packet::empty();
        let ended = match packet.read(&mut media.context) {
            Ok(()) => false,
            Err(error)
                if (error == ffmpeg_next::Error::InvalidData || is_again(&error))
                    && failures < 64 =>
            {
                failures += 1;
                continue;
            }
            Err(_) => true,
        };
        if !ended && packet.stream() != index {
            continue;
        }
        decoding.send(if ended { None } else { Some(&packet) })?;
        while decoding.receive()? {
            std::mem::swap(decoding.frame_buffer(), &mut chosen);
            found = true;
            if chosen.frame().pts().is_some_and(|pts| pts >= target) {
                break 'read;
            }
        }
        if ended {
            break;
        }
    }
    if !found {
        return Err(ConvertError::malformed(format!(
            "no video frame could be decoded from the input{}",
            decoding
                .last_error()
                .map(|error| format!(": {}", describe(error)))
                .unwrap_or_default()
        )));
    }

    let pixel = match format {
        ImageFormat::Jpeg => "yuvj420p",
        ImageFormat::Png => "rgb24",
    };
    let mut filters: Vec<String> = picture
        .rotation_filters()
        .map(str::to_owned)
        .into_iter()
        .collect();
    filters.push(format!("scale={width}:{height}"));
    filters.push("setsar=1".to_owned());
    filters.push(format!("format={pixel}"));
    let spec = format!("[in]{}[out]", filters.join(","));
    let mut graph = FilterGraph::new(
        media::Type::Video,
        Some(&picture.buffer_args(time_base, frame_rate)),
        &spec,
    )
    .map_err(|error| internal("building the picture filters failed", &error))?;
    let filter_error = |error| internal("filtering the picture failed", &error);
    graph.push(chosen.frame()).map_err(filter_error)?;
    graph.close(None).map_err(filter_error)?;
    let mut picture_frame = FrameBuffer::new(media::Type::Video);
    if graph.pull(picture_frame.frame()).map_err(filter_error)? != Pulled::Frame {
        return Err(ConvertError::internal(
            "the picture filters gave no picture",
        ));
    }
    picture_frame.frame().set_pts(Some(0));
    let bytes = encode(format, width, height, picture_frame.frame())?;
    output.write_all(&bytes)?;
    Ok(())
}

/// Encodes one picture as a whole file.
fn encode(
    format: ImageFormat,
    width: u32,
    height: u32,
    frame: &ffmpeg_next::Frame,
) -> Result<Vec<u8>, ConvertError> {
    let (name, pixel) = match format {
        ImageFormat::Jpeg => ("mjpeg", Pixel::YUVJ420P),
        ImageFormat::Png => ("png", Pixel::RGB24),
    };
    let found = encoder::find_by_name(name)
        .ok_or_else(|| ConvertError::internal(format!("FFmpeg has no {name} encoder")))?;
    let mut context = codec::context::Context::new_with_codec(found)
        .encoder()
        .video()
        .map_err(|error| internal("creating the picture encoder failed", &error))?;
    context.set_width(width);
    context.set_height(height);
    context.set_format(pixel);
    context.set_time_base(Rational(1, 25));
    if format == ImageFormat::Jpeg {
        // Quality 2 on the 2–31 scale, as `ffmpeg -q:v 2`.
        context.set_flags(codec::Flags::QSCALE);
        context.set_quality(2 * QP2LAMBDA);
    }
    let mut encoder = context
        .open_as(found)
        .map_err(|error| internal(format!("opening the {name} encoder failed"), &error))?;
    let failed = |error| internal("encoding the picture failed", &error);
    encoder.send_frame(frame).map_err(failed)?;
    encoder.send_eof().map_err(failed)?;
    let mut bytes = Vec::new();
    let mut packet = Packet::empty();
    loop {
        match encoder.receive_packet(&mut packet) {
            Ok(()) => bytes.extend_from_slice(packet.data().unwrap_or_default()),
            Err(ffmpeg_next::Error::Eof) => break,
            Err(error) if is_again(&error) => break,
            Err(error) => return Err(failed(error)),
        }
    }
    if bytes.is_empty() {
        return Err(ConvertError::internal("the picture encoder gave no data"));
    }
    Ok(bytes)
}
