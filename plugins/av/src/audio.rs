//! Audio: choosing the encoder's settings for a target and building the lane that decodes,
//! resamples and encodes one audio stream.

use std::ops::RangeInclusive;

use ffmpeg_next::{
    self as ffmpeg, ChannelLayout, Dictionary, Rational, codec, encoder, format::Sample, media,
};
use metamorph_plugin_api::ConvertError;

use crate::error::{describe, internal};
use crate::options::Trim;
use crate::probe::Media;
use crate::transcode::{Decoding, Encoding, FilterGraph, Lane, Muxer};

/// FFmpeg's factor between quantiser scales and `global_quality`.
const QP2LAMBDA: usize = 118;

/// The audio codecs written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AudioCodec {
    /// Uncompressed PCM (wav).
    Pcm,
    /// MP3 (libmp3lame).
    Mp3,
    /// Vorbis (libvorbis).
    Vorbis,
    /// Opus (libopus).
    Opus,
    /// FLAC.
    Flac,
    /// AAC (FFmpeg's own encoder).
    Aac,
}

impl AudioCodec {
    /// The name used in messages.
    fn label(self) -> &'static str {
        match self {
            Self::Pcm => "wav",
            Self::Mp3 => "mp3",
            Self::Vorbis => "ogg (Vorbis)",
            Self::Opus => "Opus",
            Self::Flac => "flac",
            Self::Aac => "AAC",
        }
    }

    /// The FFmpeg encoder, for audio decoded as `source`.
    fn encoder(self, source: Sample) -> &'static str {
        match self {
            // Integer sources deeper than 16 bits (24-bit FLAC or WAV) keep 24 bits.
            Self::Pcm if matches!(source, Sample::I32(_) | Sample::I64(_)) => "pcm_s24le",
            Self::Pcm => "pcm_s16le",
            Self::Mp3 => "libmp3lame",
            Self::Vorbis => "libvorbis",
            Self::Opus => "libopus",
            Self::Flac => "flac",
            Self::Aac => "aac",
        }
    }

    /// The bitrates accepted, in kbit/s per stream (`None`: lossless).
    fn bitrates(self, channels: u16) -> Option<RangeInclusive<u32>> {
        match self {
            Self::Pcm | Self::Flac => None,
            Self::Mp3 => Some(8..=320),
            Self::Vorbis => Some(32..=500),
            Self::Opus => Some(6..=256 * u32::from(channels.max(1))),
            Self::Aac => Some(16..=512),
        }
    }

    /// The bitrate used when none is asked for, in kbit/s (`None`: the encoder's own
    /// choice, variable quality 5 for Vorbis).
    fn default_bitrate(self, channels: u16) -> Option<u32> {
        match self {
            Self::Pcm | Self::Flac | Self::Vorbis => None,
            Self::Mp3 | Self::Aac => Some(192),
            Self::Opus if channels == 1 => Some(64),
            Self::Opus => Some(128),
        }
    }

    /// Most channels the codec takes here.
    fn max_channels(self) -> u16 {
        if self == Self::Mp3 { 2 } else { 8 }
    }
}

/// The audio settings asked for, checked.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AudioParams {
    /// Bitrate in kbit/s.
    pub(crate) bitrate: Option<u32>,
    /// Sample rate in Hz.
    pub(crate) sample_rate: Option<u32>,
    /// Channels.
    pub(crate) channels: Option<u16>,
    /// The bitrate when none is asked for, instead of the codec's (kbit/s).
    pub(crate) default_bitrate: Option<u32>,
}

/// What the decoder gives.
struct Source {
    rate: u32,
    format: Sample,
    layout: ChannelLayout,
    channels: u16,
}

/// What the encoder is opened with.
#[derive(Debug)]
struct Settings {
    rate: u32,
    format: Sample,
    layout: ChannelLayout,
    /// Bits per second (`None`: the encoder's own choice or lossless).
    bitrate: Option<u32>,
}

/// Builds the lane converting audio stream `index` of `media` to `codec`, adding its
/// stream to `muxer`.
pub(crate) fn lane(
    media: &Media,
    index: usize,
    codec: AudioCodec,
    params: &AudioParams,
    trim: &Trim,
    muxer: &mut Muxer,
) -> Result<Lane, ConvertError> {
    let decoder = media.audio_decoder(index)?;
    let channels = decoder.channels();
    let layout = match decoder.channel_layout() {
        layout if !layout.is_empty() && layout.channels() == i32::from(channels) => layout,
        _ => ChannelLayout::default(i32::from(channels)),
    };
    let source = Source {
        rate: decoder.rate(),
        format: decoder.format(),
        layout,
        channels,
    };
    let prepared = Prepared::open(codec, &source, params, muxer)?;
    let mut filters = trim.filters("a");
    filters.push(prepared.aformat());
    let input_args = format!(
        "time_base=1/{rate}:sample_rate={rate}:sample_fmt={}:channel_layout=0x{:x}:channels={}",
        source.format.name(),
        source.layout.bits(),
        source.channels,
        rate = source.rate,
    );
    let spec = format!("[in]{}[out]", filters.join(","));
    let graph = FilterGraph::new(media::Type::Audio, Some(&input_args), &spec)
        .map_err(|error| internal("building the audio filters failed", &error))?;
    let decoding = Decoding::new(
        media,
        index,
        decoder.0,
        Rational(1, source.rate as i32),
        trim,
        Rational(25, 1),
    );
    prepared.into_lane(Some(decoding), graph, muxer)
}

/// Builds a lane encoding the audio that `generator` (a filter chain, e.g. `sine`) makes,
/// adding its stream to `muxer`.
pub(crate) fn generated_lane(
    generator: &str,
    codec: AudioCodec,
    muxer: &mut Muxer,
) -> Result<Lane, ConvertError> {
    let source = Source {
        rate: 44_100,
        format: Sample::I16(ffmpeg::format::sample::Type::Packed),
        layout: ChannelLayout::STEREO,
        channels: 2,
    };
    let prepared = Prepared::open(codec, &source, &AudioParams::default(), muxer)?;
    let spec = format!("{generator},{}[out]", prepared.aformat());
    let graph = FilterGraph::new(media::Type::Audio, None, &spec)
        .map_err(|error| internal("building the audio generator failed", &error))?;
    prepared.into_lane(None, graph, muxer)
}

/// An opened audio encoder, waiting for its filter graph.
struct Prepared {
    encoder: encoder::audio::Encoder,
    settings: Settings,
    /// Samples per frame the encoder needs (`None`: any).
    frame_size: Option<u32>,
}

impl Prepared {
    /// Opens the encoder of `codec` for audio like `source`, with `params`.
    fn open(
        codec: AudioCodec,
        source: &Source,
        params: &AudioParams,
        muxer: &Muxer,
    ) -> Result<Self, ConvertError> {
        let name = codec.encoder(source.format);
        let found = encoder::find_by_name(name)
            .ok_or_else(|| ConvertError::internal(format!("FFmpeg has no {name} encoder")))?;
        let capabilities = found
            .audio()
            .map_err(|error| internal(format!("{name} is not an audio encoder"), &error))?;
        let settings = settings(codec, &capabilities, source, params)?;

        let mut context = codec::context::Context::new_with_codec(found)
            .encoder()
            .audio()
            .map_err(|error| internal("creating the audio encoder failed", &error))?;
        context.set_rate(settings.rate as i32);
        context.set_format(settings.format);
        context.set_channel_layout(settings.layout);
        context.set_channels(settings.layout.channels());
        context.set_time_base(Rational(1, settings.rate as i32));
        let mut flags = codec::Flags::empty();
        if muxer.wants_global_header() {
            flags |= codec::Flags::GLOBAL_HEADER;
        }
        match settings.bitrate {
            Some(bitrate) => context.set_bit_rate(bitrate as usize),
            None if codec == AudioCodec::Vorbis => {
                flags |= codec::Flags::QSCALE;
                context.set_quality(5 * QP2LAMBDA);
            }
            None => {}
        }
        context.set_flags(flags);
        let mut options = Dictionary::new();
        options.set("threads", "auto");
        let encoder = context.open_as_with(found, options).map_err(|error| {
            if params.bitrate.is_some() || params.sample_rate.is_some() {
                ConvertError::invalid_options(format!(
                    "the {} encoder refuses {} kbit/s at {} Hz with {} channels: {}",
                    codec.label(),
                    settings.bitrate.unwrap_or(0) / 1000,
                    settings.rate,
                    settings.layout.channels(),
                    describe(&error)
                ))
            } else {
                internal(format!("opening the {name} encoder failed"), &error)
            }
        })?;
        let variable = found
            .capabilities()
            .contains(codec::capabilities::Capabilities::VARIABLE_FRAME_SIZE);
        let frame_size = (!variable && encoder.frame_size() > 0).then(|| encoder.frame_size());
        Ok(Self {
            encoder,
            settings,
            frame_size,
        })
    }

    /// The filter converting audio into what the encoder takes.
    fn aformat(&self) -> String {
        format!(
            "aformat=sample_fmts={}:sample_rates={}:channel_layouts=0x{:x}",
            self.settings.format.name(),
            self.settings.rate,
            self.settings.layout.bits()
        )
    }

    /// The lane: frames from `decoding` (or generated) through `graph` into the encoder,
    /// whose stream is added to `muxer`.
    fn into_lane(
        self,
        decoding: Option<Decoding>,
        mut graph: FilterGraph,
        muxer: &mut Muxer,
    ) -> Result<Lane, ConvertError> {
        if let Some(samples) = self.frame_size {
            graph.set_frame_size(samples);
        }
        let frame_time_base = graph.time_base();
        let encoder: encoder::Encoder = self.encoder.0.0;
        let time_base = Rational(1, self.settings.rate as i32);
        let stream = muxer.add_stream(&encoder, time_base, None)?;
        Ok(Lane::new(
            media::Type::Audio,
            decoding,
            graph,
            Encoding::new(encoder, time_base, frame_time_base, stream),
        ))
    }
}

/// Chooses the encoder's sample rate, sample format, channel layout and bitrate.
fn settings(
    codec: AudioCodec,
    capabilities: &ffmpeg::codec::Audio,
    source: &Source,
    params: &AudioParams,
) -> Result<Settings, ConvertError> {
    let rates: Option<Vec<i32>> = capabilities.rates().map(Iterator::collect);
    let rate = match params.sample_rate {
        Some(rate) => {
            if let Some(rates) = &rates
                && !rates
                    .iter()
                    .any(|supported| i64::from(*supported) == i64::from(rate))
            {
                return Err(ConvertError::invalid_options(format!(
                    "{} supports sample rates of {} Hz, not {rate}",
                    codec.label(),
                    list(rates)
                )));
            }
            rate
        }
        None if codec == AudioCodec::Opus => 48_000,
        None => nearest_rate(source.rate, rates.as_deref()),
    };

    let formats: Vec<Sample> = capabilities
        .formats()
        .map(Iterator::collect)
        .unwrap_or_default();
    let format = best_format(source.format, &formats);

    let max = codec.max_channels();
    let wanted = match params.channels {
        Some(count) if count > max => {
            return Err(ConvertError::invalid_options(format!(
                "{} holds at most {max} channels, not {count}",
                codec.label()
            )));
        }
        Some(count) => count,
        None => source.channels.min(max),
    };
    let layouts: Option<Vec<ChannelLayout>> = capabilities.channel_layouts().map(Iterator::collect);
    let allowed =
        |layout: &ChannelLayout| layouts.as_ref().is_none_or(|list| list.contains(layout));
    let layout = if wanted == source.channels && allowed(&source.layout) {
        source.layout
    } else if allowed(&ChannelLayout::default(i32::from(wanted))) {
        ChannelLayout::default(i32::from(wanted))
    } else {
        layouts
            .iter()
            .flatten()
            .filter(|layout| layout.channels() <= i32::from(wanted))
            .max_by_key(|layout| layout.channels())
            .copied()
            .unwrap_or(ChannelLayout::STEREO)
    };
    let channels = u16::try_from(layout.channels()).unwrap_or(2);

    let bitrate = match (params.bitrate, codec.bitrates(channels)) {
        (Some(_), None) => {
            return Err(ConvertError::invalid_options(format!(
                "{} is lossless, so bitrate does not apply: leave it out",
                codec.label()
            )));
        }
        (Some(kbps), Some(range)) if !range.contains(&kbps) => {
            return Err(ConvertError::invalid_options(format!(
                "the {} bitrate must be from {} to {} kbit/s{}, not {kbps}",
                codec.label(),
                range.start(),
                range.end(),
                if codec == AudioCodec::Opus {
                    " (256 per channel)"
                } else {
                    ""
                }
            )));
        }
        (Some(kbps), Some(_)) => Some(kbps),
        (None, Some(_)) => params.default_bitrate.or(codec.default_bitrate(channels)),
        (None, None) => None,
    };
    Ok(Settings {
        rate,
        format,
        layout,
        bitrate: bitrate.map(|kbps| kbps * 1000),
    })
}

/// `rate` if the encoder supports it (or supports any), else the nearest supported one.
fn nearest_rate(rate: u32, supported: Option<&[i32]>) -> u32 {
    let Some(supported) = supported.filter(|list| !list.is_empty()) else {
        return rate;
    };
    supported
        .iter()
        .filter_map(|candidate| u32::try_from(*candidate).ok())
        .min_by_key(|candidate| (candidate.abs_diff(rate), u32::MAX - candidate))
        .unwrap_or(rate)
}

/// The encoder's sample format closest to the decoder's `source`: the same, else the same
/// type planar or packed, else the one with the nearest sample size.
fn best_format(source: Sample, supported: &[Sample]) -> Sample {
    if supported.is_empty() || supported.contains(&source) {
        return source;
    }
    let flipped = if source.is_planar() {
        source.packed()
    } else {
        source.planar()
    };
    if supported.contains(&flipped) {
        return flipped;
    }
    supported
        .iter()
        .copied()
        .min_by_key(|candidate| candidate.bytes().abs_diff(source.bytes()))
        .unwrap_or(source)
}

/// "8000, 16000 and 48000".
fn list(values: &[i32]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let texts: Vec<String> = sorted.iter().map(ToString::to_string).collect();
    match texts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => texts.join(""),
    }
}

#[cfg(test)]
mod tests {
    use ffmpeg_next::format::sample::Type;

    use super::*;

    #[test]
    fn the_nearest_supported_rate_is_chosen() {
        let opus = [48_000, 24_000, 16_000, 12_000, 8_000];
        assert_eq!(nearest_rate(44_100, Some(&opus)), 48_000);
        assert_eq!(nearest_rate(22_050, Some(&opus)), 24_000);
        assert_eq!(nearest_rate(96_000, None), 96_000);
    }

    #[test]
    fn sample_formats_keep_their_type_when_they_can() {
        let mp3 = [
            Sample::I32(Type::Planar),
            Sample::F32(Type::Planar),
            Sample::I16(Type::Planar),
        ];
        assert_eq!(
            best_format(Sample::I16(Type::Packed), &mp3),
            Sample::I16(Type::Planar)
        );
        let flac = [Sample::I16(Type::Packed), Sample::I32(Type::Packed)];
        assert_eq!(
            best_format(Sample::F32(Type::Planar), &flac),
            Sample::I32(Type::Packed)
        );
        assert_eq!(
            best_format(Sample::U8(Type::Packed), &flac),
            Sample::I16(Type::Packed)
        );
    }

    #[test]
    fn rate_lists_read_naturally() {
        assert_eq!(list(&[48_000, 8_000, 16_000]), "8000, 16000 and 48000");
    }
}
