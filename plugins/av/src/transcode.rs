//! What every conversion shares: decoders feeding filter graphs feeding encoders feeding a
//! muxer, one frame at a time.
//!
//! A [`Lane`] carries one output stream: an optional [`Decoding`] (none when the filter
//! graph generates its own frames, as for templates), a [`FilterGraph`] and an
//! [`Encoding`]. A [`Job`] reads the input's packets, hands each to the lanes that want
//! it, and finishes the [`Muxer`]. Each lane allocates its frames and packet once and
//! reuses them; frames move into the filter graph without copies.

use std::path::Path;

use ffmpeg_next::{
    self as ffmpeg, Dictionary, Frame, Packet, Rational, Rescale, decoder, encoder, filter, format,
    frame, media, picture,
};
use metamorph_plugin_api::ConvertError;

use crate::error::{describe, internal, is_again, write_failed};
use crate::options::Trim;
use crate::probe::{MAX_DURATION_SECONDS, Media, check_dimensions};

/// Consecutive unreadable packets tolerated before the input is taken to end there.
const MAX_READ_FAILURES: u32 = 64;
/// Decoding errors tolerated before the first decoded frame.
const MAX_ERRORS_BEFORE_FIRST_FRAME: u64 = 256;

/// A frame of either kind, allocated once and reused for every frame of a stream.
pub(crate) enum FrameBuffer {
    /// Audio samples.
    Audio(frame::Audio),
    /// A picture.
    Video(frame::Video),
}

impl FrameBuffer {
    /// An empty frame for a stream of `kind`.
    pub(crate) fn new(kind: media::Type) -> Self {
        if kind == media::Type::Video {
            Self::Video(frame::Video::empty())
        } else {
            Self::Audio(frame::Audio::empty())
        }
    }

    /// The frame.
    pub(crate) fn frame(&mut self) -> &mut Frame {
        match self {
            Self::Audio(frame) => frame,
            Self::Video(frame) => frame,
        }
    }
}

/// What pulling from a filter graph gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pulled {
    /// A frame.
    Frame,
    /// Nothing until more frames are pushed.
    Later,
    /// Nothing any more.
    End,
}

/// A filter graph with one buffer source labelled `[in]` (none when the graph generates
/// its own frames) and one buffer sink labelled `[out]`.
pub(crate) struct FilterGraph {
    // The graph owns the filters the two contexts point to; they live as long as it does.
    _graph: filter::Graph,
    source: Option<filter::Context>,
    sink: filter::Context,
}

impl FilterGraph {
    /// Builds the graph described by `spec` for frames of `kind`. `source_args` are the
    /// arguments of the buffer source (`None`: `spec` generates the frames and only has
    /// an `[out]` label).
    pub(crate) fn new(
        kind: media::Type,
        source_args: Option<&str>,
        spec: &str,
    ) -> Result<Self, ffmpeg::Error> {
        let (source_name, sink_name) = if kind == media::Type::Video {
            ("buffer", "buffersink")
        } else {
            ("abuffer", "abuffersink")
        };
        let find = |name: &str| filter::find(name).ok_or(ffmpeg::Error::FilterNotFound);
        let mut graph = filter::Graph::new();
        let source = match source_args {
            Some(args) => Some(graph.add(&find(source_name)?, "in", args)?),
            None => None,
        };
        let sink = graph.add(&find(sink_name)?, "out", "")?;
        if source.is_some() {
            graph.output("in", 0)?.input("out", 0)?.parse(spec)?;
        } else {
            graph.input("out", 0)?.parse(spec)?;
        }
        graph.validate()?;
        Ok(Self {
            _graph: graph,
            source,
            sink,
        })
    }

    /// Hands `frame` to the graph (its data moves into the graph; the frame is left
    /// empty, ready to be reused).
    pub(crate) fn push(&mut self, frame: &Frame) -> Result<(), ffmpeg::Error> {
        match &mut self.source {
            Some(source) => source.source().add(frame),
            None => Ok(()),
        }
    }

    /// Tells the graph that no more frames come, and that the input ends at `end` (in
    /// the source's time base) when known. Filters that resample time (`fps`) need the
    /// end to give the last frame its length, as the FFmpeg command line tells them; without
    /// it the input is taken to end where its last frame starts.
    pub(crate) fn close(&mut self, end: Option<i64>) -> Result<(), ffmpeg::Error> {
        match (&mut self.source, end) {
            (Some(source), Some(end)) => source.source().close(end),
            (Some(source), None) => source.source().flush(),
            (None, _) => Ok(()),
        }
    }

    /// Takes the next filtered frame into `frame`.
    pub(crate) fn pull(&mut self, frame: &mut Frame) -> Result<Pulled, ffmpeg::Error> {
        match self.sink.sink().frame(frame) {
            Ok(()) => Ok(Pulled::Frame),
            Err(ffmpeg::Error::Eof) => Ok(Pulled::End),
            Err(error) if is_again(&error) => Ok(Pulled::Later),
            Err(error) => Err(error),
        }
    }

    /// The time base of the frames coming out.
    pub(crate) fn time_base(&mut self) -> Rational {
        self.sink.sink().time_base()
    }

    /// Makes every audio frame coming out hold exactly `samples` samples (but the last),
    /// for encoders that need it.
    pub(crate) fn set_frame_size(&mut self, samples: u32) {
        self.sink.sink().set_frame_size(samples);
    }
}

/// The output file and its muxer.
pub(crate) struct Muxer {
    context: format::context::Output,
    time_bases: Vec<Rational>,
}

impl Muxer {
    /// Creates `path`, written by FFmpeg's muxer `name`.
    pub(crate) fn create(path: &Path, name: &str) -> Result<Self, ConvertError> {
        match path.to_str() {
            Some(text) if !text.contains('\0') => {}
            _ => {
                return Err(ConvertError::internal(format!(
                    "the output path {} is not valid UTF-8",
                    path.display()
                )));
            }
        }
        let context = format::output_as(path, name)
            .map_err(|error| internal(format!("creating the {name} output failed"), &error))?;
        Ok(Self {
            context,
            time_bases: Vec::new(),
        })
    }

    /// Whether encoders must put their headers in the stream parameters rather than in
    /// the packets.
    pub(crate) fn wants_global_header(&self) -> bool {
        self.context
            .format()
            .flags()
            .contains(format::Flags::GLOBAL_HEADER)
    }

    /// Adds a stream written by `encoder` (opened); returns its index.
    pub(crate) fn add_stream(
        &mut self,
        encoder: &encoder::Encoder,
        time_base: Rational,
        frame_rate: Option<Rational>,
    ) -> Result<usize, ConvertError> {
        let mut stream = self
            .context
            .add_stream_with(encoder)
            .map_err(|error| internal("adding an output stream failed", &error))?;
        stream.set_time_base(time_base);
        if let Some(rate) = frame_rate {
            stream.set_avg_frame_rate(rate);
        }
        Ok(stream.index())
    }

    /// Writes the header, with `metadata` and the muxer's `options`.
    pub(crate) fn start(
        &mut self,
        metadata: Dictionary<'_>,
        options: Dictionary<'_>,
    ) -> Result<(), ConvertError> {
        self.context.set_metadata(metadata);
        self.context
            .write_header_with(options)
            .map_err(|error| internal("writing the output's header failed", &error))?;
        self.time_bases = self
            .context
            .streams()
            .map(|stream| stream.time_base())
            .collect();
        Ok(())
    }

    /// The time base the muxer chose for stream `index`.
    fn time_base(&self, index: usize) -> Rational {
        self.time_bases
            .get(index)
            .copied()
            .unwrap_or(Rational(1, 1_000_000))
    }

    /// Writes `packet`, interleaved with the other streams.
    fn write(&mut self, packet: &Packet) -> Result<(), ConvertError> {
        packet
            .write_interleaved(&mut self.context)
            .map_err(|error| write_failed(&error))
    }

    /// Writes what is left and the trailer.
    fn finish(&mut self) -> Result<(), ConvertError> {
        self.context
            .write_trailer()
            .map_err(|error| write_failed(&error))
    }
}

/// An opened encoder writing one output stream.
pub(crate) struct Encoding {
    encoder: encoder::Encoder,
    /// The encoder's time base.
    time_base: Rational,
    /// The time base of the frames handed in (the filter graph's output).
    frame_time_base: Rational,
    /// The output stream's index and time base.
    stream: usize,
    stream_time_base: Rational,
    packet: Packet,
    /// Frames encoded.
    frames: u64,
}

impl Encoding {
    /// An encoder writing stream `stream` of the muxer; its frames come in
    /// `frame_time_base`.
    pub(crate) fn new(
        encoder: encoder::Encoder,
        time_base: Rational,
        frame_time_base: Rational,
        stream: usize,
    ) -> Self {
        Self {
            encoder,
            time_base,
            frame_time_base,
            stream,
            stream_time_base: time_base,
            packet: Packet::empty(),
            frames: 0,
        }
    }

    /// Encodes `frame` (`None`: drains the encoder) and writes the packets it yields.
    fn encode(
        &mut self,
        frame: Option<&mut FrameBuffer>,
        muxer: &mut Muxer,
    ) -> Result<(), ConvertError> {
        let sent = match frame {
            Some(buffer) => {
                if let FrameBuffer::Video(video) = buffer {
                    // Let the encoder place key frames, not the input's frame types.
                    video.set_kind(picture::Type::None);
                }
                let frame = buffer.frame();
                if self.frame_time_base != self.time_base
                    && let Some(pts) = frame.pts()
                {
                    frame.set_pts(Some(pts.rescale(self.frame_time_base, self.time_base)));
                }
                self.frames += 1;
                self.encoder.send_frame(frame)
            }
            None => self.encoder.send_eof(),
        };
        match sent {
            Ok(()) | Err(ffmpeg::Error::Eof) => {}
            Err(error) => return Err(internal("encoding failed", &error)),
        }
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    self.packet.set_stream(self.stream);
                    self.packet
                        .rescale_ts(self.time_base, self.stream_time_base);
                    muxer.write(&self.packet)?;
                }
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(error) if is_again(&error) => return Ok(()),
                Err(error) => return Err(internal("encoding failed", &error)),
            }
        }
    }
}

/// A decoder reading one input stream, timestamping its frames from the input's start.
pub(crate) struct Decoding {
    /// The input stream's index.
    stream: usize,
    kind: media::Type,
    decoder: decoder::Opened,
    frame: FrameBuffer,
    /// Time base of the packets and decoded timestamps.
    stream_time_base: Rational,
    /// Time base of the frames handed to the filter graph.
    time_base: Rational,
    /// The input's start, in `stream_time_base`.
    offset: i64,
    /// Frames from this timestamp on (in `time_base`) are not needed.
    end: Option<i64>,
    /// The duration limit, in `time_base`.
    limit: i64,
    /// Duration of one video frame in `time_base`, for frames without a timestamp.
    video_step: i64,
    /// Where the next frame is expected, for frames without a timestamp.
    next_pts: Option<i64>,
    /// Where the frames handed on end (the latest end of one: its timestamp plus its
    /// duration, at most the trim's end), in `time_base`.
    end_pts: Option<i64>,
    decoded: u64,
    errors: u64,
    last_error: Option<ffmpeg::Error>,
    done: bool,
}

impl Decoding {
    /// Decodes stream `stream` of `media` with `decoder`; frames are handed on in
    /// `time_base`. With `trim`, frames past its end are dropped and the stream is done
    /// as soon as one is seen. `frame_rate` is the video's, for frames without a
    /// timestamp.
    pub(crate) fn new(
        media: &Media,
        stream: usize,
        decoder: decoder::Opened,
        time_base: Rational,
        trim: &Trim,
        frame_rate: Rational,
    ) -> Self {
        let kind = decoder.medium();
        let stream_time_base = media.time_base(stream);
        let seconds =
            |value: f64| ((value * 1e6) as i64).rescale(Rational(1, 1_000_000), time_base);
        Self {
            stream,
            kind,
            decoder,
            frame: FrameBuffer::new(kind),
            stream_time_base,
            time_base,
            offset: media
                .start
                .rescale(ffmpeg::rescale::TIME_BASE, stream_time_base),
            end: trim.end().map(seconds),
            limit: seconds(MAX_DURATION_SECONDS),
            video_step: 1_i64.rescale(frame_rate.invert(), time_base).max(1),
            next_pts: None,
            end_pts: None,
            decoded: 0,
            errors: 0,
            last_error: None,
            done: false,
        }
    }

    /// Sends `packet` to the decoder (`None`: the input ended). A damaged packet is
    /// skipped, as the FFmpeg command line does, until too many fail.
    pub(crate) fn send(&mut self, packet: Option<&Packet>) -> Result<(), ConvertError> {
        let sent = match packet {
            Some(packet) => self.decoder.send_packet(packet),
            None => self.decoder.send_eof(),
        };
        match sent {
            Ok(()) | Err(ffmpeg::Error::Eof) => Ok(()),
            Err(error) if is_again(&error) => Ok(()),
            Err(error) => self.failed(error),
        }
    }

    /// The frame [`Decoding::receive`] took.
    pub(crate) fn frame_buffer(&mut self) -> &mut FrameBuffer {
        &mut self.frame
    }

    /// The last decoding error, if any.
    pub(crate) fn last_error(&self) -> Option<&ffmpeg::Error> {
        self.last_error.as_ref()
    }

    /// Notes a decoding error; fails once too many came without any frame.
    fn failed(&mut self, error: ffmpeg::Error) -> Result<(), ConvertError> {
        self.errors += 1;
        if self.decoded == 0 && self.errors > MAX_ERRORS_BEFORE_FIRST_FRAME {
            return Err(ConvertError::malformed(format!(
                "the {} stream cannot be decoded: {}",
                kind_name(self.kind),
                describe(&error)
            )));
        }
        self.last_error = Some(error);
        Ok(())
    }

    /// Takes the next decoded frame, timestamped in `time_base` from the input's start.
    /// `Ok(false)`: the decoder needs more packets (or has ended).
    pub(crate) fn receive(&mut self) -> Result<bool, ConvertError> {
        loop {
            match self.decoder.receive_frame(self.frame.frame()) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => return Ok(false),
                Err(error) if is_again(&error) => return Ok(false),
                Err(error) => {
                    self.failed(error)?;
                    return Ok(false);
                }
            }
            self.decoded += 1;
            let samples = match &self.frame {
                FrameBuffer::Video(video) => {
                    check_dimensions(video.width(), video.height())?;
                    None
                }
                FrameBuffer::Audio(audio) => Some((audio.samples(), audio.rate())),
            };
            let frame = self.frame.frame();
            let pts = match frame.timestamp().or_else(|| frame.pts()) {
                Some(pts) => pts
                    .saturating_sub(self.offset)
                    .rescale(self.stream_time_base, self.time_base),
                None => self.next_pts.unwrap_or(0),
            };
            // How long the frame lasts: its samples, else the duration of its packet, else
            // one frame at the video's rate.
            let length = match samples {
                Some((count, rate)) if rate > 0 => i64::try_from(count)
                    .unwrap_or(0)
                    .rescale((1, rate as i32), self.time_base),
                _ => match frame.packet().duration {
                    duration if duration > 0 => duration
                        .rescale(self.stream_time_base, self.time_base)
                        .max(1),
                    _ => self.video_step,
                },
            };
            self.next_pts = Some(pts.saturating_add(length));
            if pts > self.limit {
                return Err(ConvertError::limit(
                    "the input lasts more than 24 hours; at most 24 hours are converted",
                ));
            }
            if self.end.is_some_and(|end| pts >= end) {
                // Past the part kept: what follows is not needed either.
                self.done = true;
                continue;
            }
            let frame_end = match self.end {
                Some(end) => pts.saturating_add(length).min(end),
                None => pts.saturating_add(length),
            };
            self.end_pts = Some(self.end_pts.map_or(frame_end, |last| last.max(frame_end)));
            frame.set_pts(Some(pts));
            return Ok(true);
        }
    }
}

/// One output stream: where its frames come from, how they are filtered and encoded.
pub(crate) struct Lane {
    decoding: Option<Decoding>,
    graph: FilterGraph,
    filtered: FrameBuffer,
    encoding: Encoding,
    ended: bool,
}

impl Lane {
    /// A lane of `kind`: frames from `decoding` (or generated by `graph`), through
    /// `graph`, into `encoding`.
    pub(crate) fn new(
        kind: media::Type,
        decoding: Option<Decoding>,
        graph: FilterGraph,
        encoding: Encoding,
    ) -> Self {
        Self {
            decoding,
            graph,
            filtered: FrameBuffer::new(kind),
            encoding,
            ended: false,
        }
    }

    /// Whether this lane reads input stream `index` and still needs its packets.
    fn wants(&self, index: usize) -> bool {
        self.decoding
            .as_ref()
            .is_some_and(|decoding| decoding.stream == index && !decoding.done)
    }

    /// Whether this lane needs no more packets.
    fn is_done(&self) -> bool {
        self.decoding.as_ref().is_none_or(|decoding| decoding.done)
    }

    /// Decodes `packet` (`None`: the input ended) and takes what it yields through.
    fn feed(&mut self, packet: Option<&Packet>, muxer: &mut Muxer) -> Result<(), ConvertError> {
        let Some(decoding) = self.decoding.as_mut() else {
            return Ok(());
        };
        decoding.send(packet)?;
        while decoding.receive()? {
            self.graph.push(decoding.frame.frame()).map_err(|error| {
                ConvertError::malformed(format!(
                    "the decoded {} cannot be processed (does its format change midway?): {}",
                    kind_name(decoding.kind),
                    describe(&error)
                ))
            })?;
            if self.ended {
                continue;
            }
            self.ended = pump(
                &mut self.graph,
                &mut self.filtered,
                &mut self.encoding,
                muxer,
            )?;
        }
        Ok(())
    }

    /// Ends the stream: drains the decoder, the filter graph and the encoder.
    fn finish(&mut self, muxer: &mut Muxer) -> Result<(), ConvertError> {
        if self.decoding.is_some() {
            self.feed(None, muxer)?;
            let end = self.decoding.as_ref().and_then(|decoding| decoding.end_pts);
            self.graph
                .close(end)
                .map_err(|error| internal("closing a filter graph failed", &error))?;
        }
        if !self.ended {
            // A closed graph, or a generating one, never asks for more: it ends.
            pump(
                &mut self.graph,
                &mut self.filtered,
                &mut self.encoding,
                muxer,
            )?;
        }
        self.ended = true;
        self.encoding.encode(None, muxer)
    }
}

/// Takes every frame the graph has ready through the encoder; `Ok(true)` when the graph
/// has ended.
fn pump(
    graph: &mut FilterGraph,
    filtered: &mut FrameBuffer,
    encoding: &mut Encoding,
    muxer: &mut Muxer,
) -> Result<bool, ConvertError> {
    loop {
        match graph.pull(filtered.frame()) {
            Ok(Pulled::Frame) => encoding.encode(Some(filtered), muxer)?,
            Ok(Pulled::Later) => return Ok(false),
            Ok(Pulled::End) => return Ok(true),
            Err(error) => return Err(internal("filtering failed", &error)),
        }
    }
}

/// A whole conversion: the input (if any), its lanes and the muxer, header written.
pub(crate) struct Job {
    media: Option<Media>,
    lanes: Vec<Lane>,
    muxer: Muxer,
    trim: Trim,
}

impl Job {
    /// A job over `lanes`, whose streams `muxer` has started (header written).
    pub(crate) fn new(
        media: Option<Media>,
        mut lanes: Vec<Lane>,
        muxer: Muxer,
        trim: Trim,
    ) -> Self {
        for lane in &mut lanes {
            lane.encoding.stream_time_base = muxer.time_base(lane.encoding.stream);
        }
        Self {
            media,
            lanes,
            muxer,
            trim,
        }
    }

    /// Converts everything and writes the trailer.
    pub(crate) fn run(mut self) -> Result<(), ConvertError> {
        let mut read_error = None;
        if let Some(media) = self.media.as_mut() {
            let mut failures = 0_u32;
            while !self.lanes.iter().all(Lane::is_done) {
                let mut packet = Packet::empty();
                match packet.read(&mut media.context) {
                    Ok(()) => failures = 0,
                    Err(ffmpeg::Error::Eof) => break,
                    Err(error) => {
                        // A damaged packet can be skipped; anything else (a truncated
                        // file, an I/O error) ends the input here, as with the command line.
                        failures += 1;
                        let skippable = error == ffmpeg::Error::InvalidData || is_again(&error);
                        read_error = Some(error);
                        if skippable && failures < MAX_READ_FAILURES {
                            continue;
                        }
                        break;
                    }
                }
                let index = packet.stream();
                for lane in &mut self.lanes {
                    if lane.wants(index) {
                        lane.feed(Some(&packet), &mut self.muxer)?;
                    }
                }
            }
        }
        for lane in &mut self.lanes {
            lane.finish(&mut self.muxer)?;
        }
        for lane in &self.lanes {
            if let Some(decoding) = &lane.decoding
                && decoding.decoded == 0
            {
                let reason = decoding.last_error.as_ref().or(read_error.as_ref());
                return Err(ConvertError::malformed(format!(
                    "no {} could be decoded from the input{}",
                    kind_name(decoding.kind),
                    reason
                        .map(|error| format!(": {}", describe(error)))
                        .unwrap_or_default()
                )));
            }
        }
        if self.lanes.iter().all(|lane| lane.encoding.frames == 0) {
            return Err(if self.trim.is_active() {
                ConvertError::invalid_options(
                    "nothing is left to convert: start is at or past the end of the input",
                )
            } else {
                ConvertError::malformed("the input holds no audio or video to convert")
            });
        }
        // A video whose sound outlasts its pictures must not become sound alone.
        let pictureless = self.lanes.iter().any(|lane| {
            lane.encoding.frames == 0
                && lane
                    .decoding
                    .as_ref()
                    .is_some_and(|decoding| decoding.kind == media::Type::Video)
        });
        if pictureless {
            return Err(if self.trim.is_active() {
                ConvertError::invalid_options(format!(
                    "the part kept (from {} s{}) holds no video frame: the pictures end \
                     earlier than the sound; choose an earlier start",
                    self.trim.start,
                    self.trim
                        .duration
                        .map(|duration| format!(", {duration} s long"))
                        .unwrap_or_default()
                ))
            } else {
                ConvertError::malformed("no video frame could be converted from the input")
            });
        }
        self.muxer.finish()
    }
}

/// "audio" or "video".
pub(crate) fn kind_name(kind: media::Type) -> &'static str {
    if kind == media::Type::Video {
        "video"
    } else {
        "audio"
    }
}

/// The input's metadata (title, artist…) to copy into the output, as the FFmpeg command
/// line does, minus locations: a converted file should not carry where it was shot.
pub(crate) fn metadata(media: &Media) -> Dictionary<'static> {
    let mut metadata = Dictionary::new();
    for (key, value) in media.context.metadata().iter() {
        if !key.to_ascii_lowercase().contains("location") {
            metadata.set(key, value);
        }
    }
    metadata
}
