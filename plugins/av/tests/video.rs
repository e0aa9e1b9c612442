//! Video to video: mp4 (H.264 and AAC), webm (VP9 and Opus) and mkv (H.264 and AAC), with
//! their options, checked with `ffprobe` (and the FFmpeg command line as the reference for
//! pictures).

mod common;

use std::path::Path;

use common::{
    Converted, Probe, Sample, VIDEO_SAMPLES, converted, difference, doctype, fingerprint,
    made_by_ffmpeg, refused,
};
use metamorph_plugin_api::ErrorKind;

/// Formats written, with the ffprobe format, video codec and audio codec each must hold.
const TARGETS: &[(&str, &str, &str, &str)] = &[
    ("mp4", "mov,mp4,m4a,3gp,3g2,mj2", "h264", "aac"),
    ("webm", "matroska,webm", "vp9", "opus"),
    ("mkv", "matroska,webm", "h264", "aac"),
];

/// Options keeping conversions of the longer samples short.
fn short_options(sample: &Sample) -> &'static str {
    if sample.duration > 1.0 {
        r#"{"duration": 1}"#
    } else {
        "{}"
    }
}

/// Asserts that `path` is a `target` file with the codecs it must hold.
fn assert_container(path: &Path, probe: &Probe, target: &str) {
    let (_, format, video, audio) = TARGETS
        .iter()
        .find(|(name, ..)| *name == target)
        .copied()
        .unwrap_or_else(|| panic!("no expectations for {target}"));
    assert_eq!(probe.format_name, format, "{target}");
    match target {
        "webm" => assert_eq!(doctype(path), "webm"),
        "mkv" => assert_eq!(doctype(path), "matroska"),
        _ => {}
    }
    assert_eq!(probe.stream("video").codec_name, video, "{target}");
    if probe.count("audio") > 0 {
        assert_eq!(probe.stream("audio").codec_name, audio, "{target}");
    }
}

#[test]
fn every_video_source_becomes_every_video_target() {
    for name in VIDEO_SAMPLES {
        let sample = Sample::get(name);
        let options = short_options(&sample);
        let expected = sample.duration.min(1.0);
        for (target, ..) in TARGETS {
            if *target == sample.format {
                continue;
            }
            let output = converted(&sample.path, &sample.format, target, options);
            let probe = output.probe();
            assert_container(&output.path, &probe, target);
            let video = probe.stream("video");
            let (width, height) = sample.display_size();
            assert_eq!(
                (video.width, video.height),
                (width & !1, height & !1),
                "{name} → {target}"
            );
            assert_eq!(video.rotation, 0.0, "{name} → {target}: turned upright");
            assert_eq!(
                probe.count("audio"),
                usize::from(sample.audio),
                "{name} → {target}: the sound is kept, and none is added"
            );
            // Containers round their ends to the last packet: a frame or two of slack.
            probe.assert_duration(expected, 0.08);
            assert!(output.video_frames() >= 1, "{name} → {target}");
        }
    }
}

#[test]
fn every_frame_is_kept_without_options() {
    // The Theora sample: 56 frames at 10 fps, no sound.
    let sample = Sample::get("video/ogv-theora.ogv");
    let output = converted(&sample.path, "ogv", "mp4", "{}");
    let probe = output.probe();
    assert_eq!(output.video_frames(), 56);
    assert!((probe.stream("video").frame_rate - 10.0).abs() < 0.01);
    probe.assert_duration(sample.duration, 0.01);
}

#[test]
fn a_video_without_sound_stays_without_sound() {
    let sample = Sample::get("video/ogv-theora.ogv");
    assert!(!sample.audio);
    for target in ["mp4", "webm", "mkv"] {
        let probe = converted(&sample.path, "ogv", target, r#"{"duration": 0.5}"#).probe();
        assert_eq!(probe.count("audio"), 0, "{target}");
        assert_eq!(probe.count("video"), 1, "{target}");
    }
}

#[test]
fn the_fps_option_sets_the_frame_rate_and_the_frame_count() {
    let sample = Sample::get("video/ogv-theora.ogv");
    for (target, fps, frames) in [("mp4", 5, 10), ("webm", 4, 8), ("mkv", 25, 50)] {
        let options = format!(r#"{{"fps": {fps}, "duration": 2}}"#);
        let output = converted(&sample.path, "ogv", target, &options);
        let probe = output.probe();
        assert!(
            (probe.stream("video").frame_rate - f64::from(fps)).abs() < 0.01,
            "{target}: {:?}",
            probe.stream("video")
        );
        assert_eq!(output.video_frames(), frames, "{target} at {fps} fps");
        probe.assert_duration(2.0, 0.01);
    }
}

#[test]
fn a_fractional_fps_is_kept() {
    let options = r#"{"fps": 12.5, "duration": 2}"#;
    let output = converted(fixture!("video/ogv-theora.ogv"), "ogv", "mp4", options);
    assert!((output.probe().stream("video").frame_rate - 12.5).abs() < 0.01);
    assert_eq!(output.video_frames(), 25);
}

#[test]
fn a_clip_shorter_than_a_frame_at_the_new_rate_keeps_its_picture() {
    // One frame lasting 42 ms, at 5 fps: a frame of 200 ms, not an empty video.
    for name in ["video/mkv-h264-aac.mkv", "video/avi-msmpeg4-adpcm.avi"] {
        let sample = Sample::get(name);
        let output = converted(&sample.path, &sample.format, "mp4", r#"{"fps": 5}"#);
        let probe = output.probe();
        assert_eq!(probe.count("video"), 1, "{name}");
        assert_eq!(output.video_frames(), 1, "{name}");
    }
}

#[test]
fn the_mov_frame_rate_is_resampled_over_a_trimmed_part() {
    let options = r#"{"fps": 12, "start": 1, "duration": 1.5}"#;
    let output = converted(
        fixture!("video/mov-h264-aac-gps.mov"),
        "mov",
        "webm",
        options,
    );
    let probe = output.probe();
    assert_eq!(output.video_frames(), 18);
    assert!((probe.stream("video").frame_rate - 12.0).abs() < 0.01);
    probe.assert_duration(1.5, 0.03);
}

#[test]
fn a_width_alone_keeps_the_aspect_ratio_with_even_sizes() {
    // 1920×1080 to 641 wide: 640×360.
    let probe = converted(
        fixture!("video/mp4-h264-aac-gps.mp4"),
        "mp4",
        "mkv",
        r#"{"width": 641}"#,
    )
    .probe();
    let video = probe.stream("video");
    assert_eq!((video.width, video.height), (640, 360));
}

#[test]
fn a_height_alone_keeps_the_aspect_ratio_with_even_sizes() {
    // 300×200 to 101 high: 152×100 (151.5 rounded, then even).
    let probe = converted(
        fixture!("video/ogv-theora.ogv"),
        "ogv",
        "webm",
        r#"{"height": 101, "duration": 0.5}"#,
    )
    .probe();
    let video = probe.stream("video");
    assert_eq!((video.width, video.height), (152, 100));
    assert!(video.width.is_multiple_of(2) && video.height.is_multiple_of(2));
}

#[test]
fn a_size_applies_to_the_upright_picture_of_a_rotated_video() {
    // The mov is stored 568×320 with a quarter turn: shown 320×568.
    let sample = Sample::get("video/mov-h264-aac-gps.mov");
    assert_eq!(sample.rotation.abs(), 90);
    let probe = converted(
        &sample.path,
        "mov",
        "mp4",
        r#"{"width": 160, "duration": 0.5}"#,
    )
    .probe();
    let video = probe.stream("video");
    // 568 × 160 / 320 = 284.
    assert_eq!((video.width, video.height), (160, 284));
}

#[test]
fn width_and_height_together_stretch_to_that_size() {
    let probe = converted(
        fixture!("video/mkv-h264-aac.mkv"),
        "mkv",
        "mp4",
        r#"{"width": 201, "height": 99}"#,
    )
    .probe();
    let video = probe.stream("video");
    assert_eq!((video.width, video.height), (200, 98));
}

#[test]
fn non_square_pixels_become_square_at_the_size_shown() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let pattern = "testsrc2=size=320x240:rate=25:duration=0.4";
    // Pixels twice as wide as high, in the H.264 headers: shown 640×240.
    let in_codec = made_by_ffmpeg(
        dir.path(),
        "codec.mp4",
        &[
            "-f", "lavfi", "-i", pattern, "-vf", "setsar=2", "-c:v", "libx264",
        ],
    );
    // Plain H.264 in a container that says 16:9 (Matroska's display size, MP4's `pasp`):
    // shown 427×240, as `ffprobe` and players show it.
    let plain = made_by_ffmpeg(
        dir.path(),
        "plain.mkv",
        &["-f", "lavfi", "-i", pattern, "-c:v", "libx264"],
    );
    let in_mkv = made_by_ffmpeg(
        dir.path(),
        "container.mkv",
        &["-i", &plain, "-c", "copy", "-aspect", "16:9"],
    );
    let in_mp4 = made_by_ffmpeg(
        dir.path(),
        "container.mp4",
        &["-i", &plain, "-c", "copy", "-aspect", "16:9"],
    );
    for (input, source, width) in [
        (&in_codec, "mp4", 640),
        (&in_mkv, "mkv", 427),
        (&in_mp4, "mp4", 427),
    ] {
        let target = if source == "mp4" { "webm" } else { "mp4" };
        let probe = converted(input, source, target, "{}").probe();
        let video = probe.stream("video");
        assert_eq!(
            (video.width, video.height),
            (width & !1, 240),
            "{input} → {target}"
        );
        let probe = converted(input, source, "png", "{}").probe();
        let picture = probe.stream("video");
        assert_eq!(
            (picture.width, picture.height),
            (width, 240),
            "{input} → png"
        );
    }
    // Squeezed pictures are resized from the size shown.
    let probe = converted(&in_mkv, "mkv", "mp4", r#"{"height": 120}"#).probe();
    let video = probe.stream("video");
    assert_eq!(video.height, 120);
    assert!(video.width.is_multiple_of(2), "{}", video.width);
    let ratio = video.width as f64 / video.height as f64;
    assert!((ratio - 16.0 / 9.0).abs() < 0.02, "{}×120", video.width);
}

#[test]
fn a_rotated_video_is_turned_upright_as_the_command_line_shows_it() {
    let sample = Sample::get("video/mov-h264-aac-gps.mov");
    let output = converted(&sample.path, "mov", "mkv", r#"{"duration": 0.5}"#);
    let probe = output.probe();
    let video = probe.stream("video");
    assert_eq!((video.width, video.height), (320, 568));
    assert_eq!(
        video.rotation, 0.0,
        "no rotation is left for players to apply"
    );
    // The first picture matches the one `ffmpeg` shows (it turns videos upright too).
    let ours = fingerprint(&output.path, None);
    let reference = fingerprint(Path::new(&sample.path), None);
    let upside_down: Vec<u8> = reference.iter().rev().copied().collect();
    let close = difference(&ours, &reference);
    assert!(close < 4.0, "differs from ffmpeg's picture by {close}");
    assert!(difference(&ours, &upside_down) > 4.0 * close.max(1.0));
}

#[test]
fn start_and_duration_cut_the_video_and_its_sound() {
    let sample = Sample::get("video/mov-h264-aac-gps.mov");
    let output = converted(&sample.path, "mov", "mp4", r#"{"start": 2, "duration": 1}"#);
    let probe = output.probe();
    probe.assert_duration(1.0, 0.03);
    // About 30 frames a second.
    let frames = output.video_frames();
    assert!((29..=31).contains(&frames), "{frames} frames");
    assert_eq!(probe.count("audio"), 1);
    // The first picture is the one at 2 s.
    let ours = fingerprint(&output.path, None);
    let at_start = fingerprint(Path::new(&sample.path), Some(2.0));
    let at_zero = fingerprint(Path::new(&sample.path), Some(0.0));
    let close = difference(&ours, &at_start);
    assert!(close < 4.0, "differs from the picture at 2 s by {close}");
    assert!(difference(&ours, &at_zero) > close);
}

#[test]
fn a_start_alone_keeps_the_rest() {
    let probe = converted(
        fixture!("video/ogv-theora.ogv"),
        "ogv",
        "mkv",
        r#"{"start": 4.6}"#,
    )
    .probe();
    probe.assert_duration(1.0, 0.02);
}

#[test]
fn a_start_past_the_end_is_refused() {
    let message = refused(
        fixture!("video/ogv-theora.ogv"),
        "ogv",
        "mp4",
        r#"{"start": 6}"#,
        ErrorKind::InvalidOptions,
    );
    assert!(message.contains("past the end"), "{message}");
}

#[test]
fn a_start_after_the_last_picture_is_refused_rather_than_giving_sound_alone() {
    // The mkv's only frame is at 0 and its sound lasts 92 ms.
    let message = refused(
        fixture!("video/mkv-h264-aac.mkv"),
        "mkv",
        "webm",
        r#"{"start": 0.06}"#,
        ErrorKind::InvalidOptions,
    );
    assert!(message.contains("no video frame"), "{message}");
}

/// Converts 2 s of the Theora sample to `target` with `options`; returns the size.
fn size_with(target: &str, options: &str) -> u64 {
    converted(fixture!("video/ogv-theora.ogv"), "ogv", target, options).size()
}

#[test]
fn a_lower_quality_number_gives_a_larger_file() {
    for target in ["mp4", "webm"] {
        let best = size_with(target, r#"{"quality": 12, "duration": 2}"#);
        let default = size_with(target, r#"{"duration": 2}"#);
        let worst = size_with(target, r#"{"quality": 45, "duration": 2}"#);
        assert!(
            best > default && default > worst,
            "{target}: {best} > {default} > {worst}"
        );
        assert!(best > 3 * worst, "{target}: {best} vs {worst}");
    }
}

#[test]
fn the_audio_bitrate_follows_the_option() {
    // mp4 records the AAC stream's bitrate. (On quiet sound FFmpeg's AAC encoder stays
    // under high targets, on the command line too: 96 kbit/s is still reached.)
    let sample = Sample::get("video/mov-h264-aac-gps.mov");
    let bitrate = |kbps: u32| {
        let options = format!(r#"{{"bitrate": {kbps}, "duration": 2}}"#);
        converted(&sample.path, "mov", "mp4", &options)
            .probe()
            .stream("audio")
            .bit_rate
    };
    let (low, high) = (bitrate(48), bitrate(96));
    assert!(
        (40_000..=56_000).contains(&low),
        "{low} bit/s for 48 kbit/s"
    );
    assert!(
        (82_000..=110_000).contains(&high),
        "{high} bit/s for 96 kbit/s"
    );
}

#[test]
fn sample_rate_and_channels_follow_the_options() {
    let probe = converted(
        fixture!("video/mkv-h264-aac.mkv"),
        "mkv",
        "mp4",
        r#"{"sample_rate": 22050, "channels": 1}"#,
    )
    .probe();
    let audio = probe.stream("audio");
    assert_eq!((audio.sample_rate, audio.channels), (22_050, 1));
    // Opus in webm always runs at 48 kHz: the default.
    let probe = converted(fixture!("video/mkv-h264-aac.mkv"), "mkv", "webm", "{}").probe();
    assert_eq!(probe.stream("audio").sample_rate, 48_000);
}

#[test]
fn locations_are_not_copied() {
    let sample = Sample::get("video/mp4-h264-aac-gps.mp4");
    let source = Probe::of(Path::new(&sample.path));
    assert!(source.tags.iter().any(|tag| tag.contains("location")));
    let probe = converted(&sample.path, "mp4", "mkv", "{}").probe();
    assert!(
        probe.tags.iter().all(|tag| !tag.contains("location")),
        "{:?}",
        probe.tags
    );
}

#[test]
fn options_out_of_range_are_refused_with_what_is_allowed() {
    let input = fixture!("video/mkv-h264-aac.mkv");
    for (options, expected) in [
        (r#"{"quality": 52}"#, "from 0"),
        (r#"{"width": 8}"#, "from 16 to 16384"),
        (r#"{"height": 20000}"#, "from 16 to 16384"),
        (r#"{"fps": 0.5}"#, "from 1 to 120"),
        (r#"{"fps": 240}"#, "from 1 to 120"),
        (r#"{"duration": 0}"#, "above 0"),
        (r#"{"start": -1}"#, "from 0"),
        (r#"{"sample_rate": 4000}"#, "from 8000"),
        (r#"{"channels": 9}"#, "from 1 to 8"),
        (r#"{"bitrate": 600}"#, "from 16 to 512"),
    ] {
        let message = refused(input, "mkv", "mp4", options, ErrorKind::InvalidOptions);
        assert!(message.contains(expected), "{options}: {message}");
    }
    let message = refused(
        input,
        "mkv",
        "webm",
        r#"{"bitrate": 600}"#,
        ErrorKind::InvalidOptions,
    );
    assert!(message.contains("256 per channel"), "{message}");
    refused(
        input,
        "mkv",
        "mp4",
        r#"{"crf": 20}"#,
        ErrorKind::InvalidOptions,
    );
}

#[test]
fn the_output_is_a_file_players_can_start_before_the_download_ends() {
    // mp4 puts its index (moov) before the pictures (mdat).
    let output: Converted = converted(fixture!("video/mkv-h264-aac.mkv"), "mkv", "mp4", "{}");
    let bytes = output.bytes();
    let find = |needle: &[u8]| bytes.windows(4).position(|window| window == needle);
    let (moov, mdat) = (find(b"moov"), find(b"mdat"));
    assert!(moov.is_some() && mdat.is_some());
    assert!(moov < mdat, "moov at {moov:?}, mdat at {mdat:?}");
}
