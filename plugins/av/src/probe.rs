//! Opening the input, choosing its streams and checking it against the limits before any
//! decoding starts.

use ffmpeg_next::{self as ffmpeg, Dictionary, Rational, Rescale, codec, decoder, format, media};
use metamorph_plugin_api::{ConvertError, Input};

use crate::error::{describe, malformed};

/// Widest or tallest picture accepted, in pixels.
pub(crate) const MAX_DIMENSION: u32 = 16_384;
/// Most pixels in one picture (8192×8192): decoders hold several frames at once.
pub(crate) const MAX_PIXELS: u64 = 8192 * 8192;
/// Longest input accepted, in seconds (24 hours).
pub(crate) const MAX_DURATION_SECONDS: f64 = 24.0 * 3600.0;
/// Most audio channels accepted.
pub(crate) const MAX_CHANNELS: u16 = 64;
/// Highest audio sample rate accepted, in Hz.
pub(crate) const MAX_SAMPLE_RATE: u32 = 768_000;

/// An opened input.
pub(crate) struct Media {
    /// The demuxer.
    pub(crate) context: format::context::Input,
    /// Index of the audio stream to convert, if any.
    pub(crate) audio: Option<usize>,
    /// Index of the video stream to convert, if any (never cover art).
    pub(crate) video: Option<usize>,
    /// Duration in seconds, when the container tells.
    pub(crate) duration: Option<f64>,
    /// The earliest timestamp of the input's streams, in microseconds: output timestamps
    /// start from it, so that every stream keeps its place relative to the others.
    pub(crate) start: i64,
}

impl Media {
    /// Opens the file of `input`, of format `source`, and checks it against the limits.
    pub(crate) fn open(input: &Input, source: &str) -> Result<Self, ConvertError> {
        crate::init()?;
        let path = input.path();
        match path.to_str() {
            Some(text) if !text.contains('\0') => {}
            _ => {
                return Err(ConvertError::internal(format!(
                    "the input path {} is not valid UTF-8",
                    path.display()
                )));
            }
        }
        if input.size() == 0 {
            return Err(ConvertError::malformed(format!(
                "the {source} input is empty"
            )));
        }
        let context = format::input(path).map_err(|error| {
            ConvertError::malformed(format!(
                "the input is not a readable {source} file: {}",
                describe(&error)
            ))
        })?;
        let audio = best_stream(&context, media::Type::Audio);
        let video = best_stream(&context, media::Type::Video);
        let duration = (context.duration() > 0).then(|| {
            context
                .duration()
                .rescale(ffmpeg::rescale::TIME_BASE, (1, 1_000_000)) as f64
                / 1e6
        });
        if let Some(duration) = duration
            && duration > MAX_DURATION_SECONDS
        {
            return Err(ConvertError::limit(format!(
                "the input lasts {:.1} hours; at most 24 hours are converted",
                duration / 3600.0
            )));
        }
        let start = context
            .streams()
            .filter(|stream| {
                matches!(
                    stream.parameters().medium(),
                    media::Type::Audio | media::Type::Video
                )
            })
            .filter(|stream| stream.start_time() != ffmpeg::ffi::AV_NOPTS_VALUE)
            .map(|stream| {
                stream
                    .start_time()
                    .rescale(stream.time_base(), ffmpeg::rescale::TIME_BASE)
            })
            .min()
            .unwrap_or(0);
        Ok(Self {
            context,
            audio,
            video,
            duration,
            start,
        })
    }

    /// The time base of stream `index`.
    pub(crate) fn time_base(&self, index: usize) -> Rational {
        self.context
            .stream(index)
            .map_or(Rational(1, 1), |stream| stream.time_base())
    }

    /// Moves to `seconds` from the beginning (to the key frame at or before it), so that
    /// decoding a late part does not decode everything before it. A failed seek is not an
    /// error: decoding then starts at the beginning, and trimming drops what comes before.
    pub(crate) fn seek_to(&mut self, seconds: f64) {
        if seconds <= 0.0 {
            return;
        }
        let target = self.start.saturating_add((seconds * 1e6) as i64);
        // Any timestamp up to the target: the key frame at or before it.
        let _ignored = self.context.seek(target, ..target);
    }

    /// Opens the decoder of audio stream `index`.
    pub(crate) fn audio_decoder(&self, index: usize) -> Result<decoder::Audio, ConvertError> {
        let (decoder, codec) = self.decoder(index)?;
        let decoder = decoder
            .open_as_with(codec, threads_auto())
            .and_then(decoder::Opened::audio)
            .map_err(|error| malformed("the audio stream cannot be decoded", &error))?;
        let channels = decoder.channels();
        if channels == 0 || decoder.rate() == 0 {
            return Err(ConvertError::malformed(
                "the audio stream has no channels or no sample rate",
            ));
        }
        if channels > MAX_CHANNELS {
            return Err(ConvertError::limit(format!(
                "the audio has {channels} channels; at most {MAX_CHANNELS} are converted"
            )));
        }
        if decoder.rate() > MAX_SAMPLE_RATE {
            return Err(ConvertError::limit(format!(
                "the audio's sample rate is {} Hz; at most {MAX_SAMPLE_RATE} Hz is converted",
                decoder.rate()
            )));
        }
        Ok(decoder)
    }

    /// Opens the decoder of video stream `index`.
    pub(crate) fn video_decoder(&self, index: usize) -> Result<decoder::Video, ConvertError> {
        let (decoder, codec) = self.decoder(index)?;
        let decoder = decoder
            .open_as_with(codec, threads_auto())
            .and_then(decoder::Opened::video)
            .map_err(|error| malformed("the video stream cannot be decoded", &error))?;
        check_dimensions(decoder.width(), decoder.height())?;
        Ok(decoder)
    }

    /// An unopened decoder for stream `index`, and its codec.
    fn decoder(&self, index: usize) -> Result<(decoder::Decoder, ffmpeg::Codec), ConvertError> {
        let stream = self
            .context
            .stream(index)
            .ok_or_else(|| ConvertError::internal(format!("stream {index} does not exist")))?;
        let context = codec::context::Context::from_parameters(stream.parameters())
            .map_err(|error| malformed("the stream's parameters are invalid", &error))?;
        let id = context.id();
        let codec = decoder::find(id).ok_or_else(|| {
            ConvertError::unsupported(format!(
                "the input's {} stream uses the {} codec, which cannot be decoded",
                media_name(stream.parameters().medium()),
                id.name()
            ))
        })?;
        let mut decoder = context.decoder();
        decoder.set_packet_time_base(stream.time_base());
        Ok((decoder, codec))
    }

    /// The rotation stored with video stream `index`.
    pub(crate) fn rotation(&self, index: usize) -> Rotation {
        self.context
            .stream(index)
            .map_or(Rotation::default(), |stream| {
                stream
                    .side_data()
                    .find(|data| data.kind() == codec::packet::side_data::Type::DisplayMatrix)
                    .map_or(Rotation::default(), |data| {
                        Rotation::from_display_matrix(data.data())
                    })
            })
    }

    /// The pixel aspect ratio the container gives video stream `index`, if it gives one:
    /// Matroska's display size and MP4's `pasp` box set it there, not in the codec's
    /// headers. Like FFmpeg's own guess, it takes precedence over the codec's.
    pub(crate) fn container_aspect(&self, index: usize) -> Option<Rational> {
        let stream = self.context.stream(index)?;
        #[allow(
            unsafe_code,
            reason = "ffmpeg-next has no accessor for a stream's sample aspect ratio"
        )]
        // SAFETY: `stream` borrows the open input, so the stream it points to is alive
        // while its field is read; nothing writes to it meanwhile.
        let ratio = unsafe { (*stream.as_ptr()).sample_aspect_ratio };
        let ratio = Rational::from(ratio);
        (ratio.numerator() > 0 && ratio.denominator() > 0).then_some(ratio)
    }

    /// The frame rate of video stream `index`: its average rate when plausible, else its
    /// base rate, else 25.
    pub(crate) fn frame_rate(&self, index: usize) -> Rational {
        let plausible = |rate: Rational| {
            rate.numerator() > 0
                && rate.denominator() > 0
                && (0.1..=240.0).contains(&f64::from(rate))
        };
        self.context
            .stream(index)
            .and_then(|stream| {
                [stream.avg_frame_rate(), stream.rate()]
                    .into_iter()
                    .find(|rate| plausible(*rate))
            })
            .unwrap_or(Rational(25, 1))
    }
}

/// Refuses pictures larger than the limits.
pub(crate) fn check_dimensions(width: u32, height: u32) -> Result<(), ConvertError> {
    if width == 0 || height == 0 {
        return Err(ConvertError::malformed(format!(
            "the video's picture size ({width}×{height}) is invalid"
        )));
    }
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(ConvertError::limit(format!(
            "the video is {width}×{height} pixels; at most {MAX_DIMENSION} pixels wide and \
             high are converted"
        )));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ConvertError::limit(format!(
            "the video is {width}×{height} pixels; at most {MAX_PIXELS} pixels per picture \
             are converted"
        )));
    }
    Ok(())
}

/// Decoders use as many threads as the machine has cores, as the FFmpeg command line does.
pub(crate) fn threads_auto() -> Dictionary<'static> {
    let mut options = Dictionary::new();
    options.set("threads", "auto");
    options
}

/// The best stream of `kind`, never an attached picture (cover art).
fn best_stream(context: &format::context::Input, kind: media::Type) -> Option<usize> {
    let is_picture = |stream: &ffmpeg::Stream<'_>| {
        stream
            .disposition()
            .contains(format::stream::Disposition::ATTACHED_PIC)
    };
    match context.streams().best(kind) {
        Some(stream) if !is_picture(&stream) => Some(stream.index()),
        _ => context
            .streams()
            .find(|stream| stream.parameters().medium() == kind && !is_picture(stream))
            .map(|stream| stream.index()),
    }
}

fn media_name(kind: media::Type) -> &'static str {
    match kind {
        media::Type::Audio => "audio",
        media::Type::Video => "video",
        media::Type::Subtitle => "subtitle",
        _ => "data",
    }
}

/// How a video must be turned to be shown upright, from its display matrix (as the FFmpeg
/// command line does by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Rotation {
    /// Shown as stored.
    #[default]
    None,
    /// A filter chain (`transpose`, `hflip`, `vflip`) turns it.
    Filter {
        /// The filters.
        filters: &'static str,
        /// Whether width and height swap.
        swaps: bool,
    },
}

impl Rotation {
    /// Reads a display matrix: nine 32-bit integers in native byte order (16.16 fixed
    /// point, except the last column).
    fn from_display_matrix(bytes: &[u8]) -> Self {
        if bytes.len() < 36 {
            return Self::None;
        }
        let mut matrix = [0_i32; 9];
        for (value, chunk) in matrix.iter_mut().zip(bytes.chunks_exact(4)) {
            let mut word = [0_u8; 4];
            word.copy_from_slice(chunk);
            *value = i32::from_ne_bytes(word);
        }
        let fixed = |value: i32| f64::from(value) / 65536.0;
        let scale_x = fixed(matrix[0]).hypot(fixed(matrix[3]));
        let scale_y = fixed(matrix[1]).hypot(fixed(matrix[4]));
        if scale_x == 0.0 || scale_y == 0.0 {
            return Self::None;
        }
        // The clockwise angle the picture must be turned by, in 0..360.
        let mut theta = (fixed(matrix[1]) / scale_y)
            .atan2(fixed(matrix[0]) / scale_x)
            .to_degrees()
            .round();
        theta -= 360.0 * (theta / 360.0 + 0.9 / 360.0).floor();
        let near = |angle: f64| (theta - angle).abs() < 1.0;
        if near(90.0) {
            let filters = if matrix[3] > 0 {
                "transpose=cclock_flip"
            } else {
                "transpose=clock"
            };
            Self::Filter {
                filters,
                swaps: true,
            }
        } else if near(180.0) {
            let filters = match (matrix[0] < 0, matrix[4] < 0) {
                (true, true) => "hflip,vflip",
                (true, false) => "hflip",
                (false, true) => "vflip",
                (false, false) => return Self::None,
            };
            Self::Filter {
                filters,
                swaps: false,
            }
        } else if near(270.0) {
            let filters = if matrix[3] < 0 {
                "transpose=clock_flip"
            } else {
                "transpose=cclock"
            };
            Self::Filter {
                filters,
                swaps: true,
            }
        } else if near(0.0) && matrix[4] < 0 {
            Self::Filter {
                filters: "vflip",
                swaps: false,
            }
        } else {
            Self::None
        }
    }

    /// The filters, if any.
    pub(crate) fn filters(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Filter { filters, .. } => Some(filters),
        }
    }

    /// `(width, height)` as shown.
    pub(crate) fn apply(self, width: u32, height: u32) -> (u32, u32) {
        match self {
            Self::Filter { swaps: true, .. } => (height, width),
            _ => (width, height),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(values: [i32; 9]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|value| value.to_ne_bytes())
            .collect()
    }

    #[test]
    fn a_quarter_turn_matrix_becomes_a_transpose() {
        // A phone video stored sideways (ffprobe: rotation -90), shown turned clockwise.
        let bytes = matrix([0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30]);
        let rotation = Rotation::from_display_matrix(&bytes);
        assert_eq!(rotation.filters(), Some("transpose=clock"));
        assert_eq!(rotation.apply(568, 320), (320, 568));
    }

    #[test]
    fn the_identity_matrix_needs_no_filter() {
        let bytes = matrix([65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30]);
        assert_eq!(Rotation::from_display_matrix(&bytes), Rotation::None);
        assert_eq!(Rotation::from_display_matrix(&bytes[..20]), Rotation::None);
    }

    #[test]
    fn oversized_pictures_are_a_limit() {
        let error = check_dimensions(20_000, 100).unwrap_err();
        assert_eq!(error.kind, metamorph_plugin_api::ErrorKind::LimitExceeded);
        assert!(check_dimensions(1920, 1080).is_ok());
        assert_eq!(
            check_dimensions(0, 10).unwrap_err().kind,
            metamorph_plugin_api::ErrorKind::MalformedInput
        );
    }
}
