//! One frame of a video as a jpg or png, checked with ImageMagick's `identify`, `ffprobe`
//! and the FFmpeg command line's own picture at the same time.

mod common;

use std::path::Path;

use common::{Sample, VIDEO_SAMPLES, converted, difference, fingerprint, refused};
use metamorph_plugin_api::ErrorKind;

#[test]
fn every_video_source_gives_a_jpg_and_a_png() {
    for name in VIDEO_SAMPLES {
        let sample = Sample::get(name);
        let (width, height) = sample.display_size();
        for (target, magick, codec, pipe) in [
            ("jpg", "JPEG", "mjpeg", "jpeg_pipe"),
            ("png", "PNG", "png", "png_pipe"),
        ] {
            let output = converted(&sample.path, &sample.format, target, "{}");
            let identified = output.identify();
            assert_eq!(identified.format, magick, "{name} → {target}");
            assert_eq!(
                (identified.width, identified.height),
                (width, height),
                "{name} → {target}"
            );
            assert_eq!(identified.frames, 1, "{name} → {target}");
            let probe = output.probe();
            assert_eq!(probe.format_name, pipe, "{name} → {target}");
            assert_eq!(probe.stream("video").codec_name, codec, "{name} → {target}");
        }
    }
}

#[test]
fn the_frame_at_the_time_asked_for_is_taken() {
    let sample = Sample::get("video/mov-h264-aac-gps.mov");
    let path = Path::new(&sample.path);
    for time in [0.5, 2.0, 3.5] {
        let options = format!(r#"{{"time": {time}}}"#);
        let output = converted(&sample.path, "mov", "png", &options);
        let ours = fingerprint(&output.path, None);
        // `ffmpeg -ss` (the first frame from that time on, turned upright) is the
        // reference; another time is not.
        let reference = fingerprint(path, Some(time));
        let elsewhere = fingerprint(path, Some((time + 1.5) % 4.0));
        let close = difference(&ours, &reference);
        assert!(
            close < 0.5,
            "at {time} s: differs from ffmpeg's frame by {close}"
        );
        assert!(
            difference(&ours, &elsewhere) > close + 5.0,
            "at {time} s: the frames compared are too alike for the test to tell"
        );
    }
}

#[test]
fn the_time_defaults_to_one_second() {
    let sample = Sample::get("video/mov-h264-aac-gps.mov");
    let path = Path::new(&sample.path);
    let output = converted(&sample.path, "mov", "png", "{}");
    let ours = fingerprint(&output.path, None);
    assert!(difference(&ours, &fingerprint(path, Some(1.0))) < 0.5);
    assert!(difference(&ours, &fingerprint(path, Some(0.0))) > 5.0);
}

#[test]
fn the_time_of_videos_shorter_than_two_seconds_defaults_to_their_middle() {
    // The mp4 sample's frames start at 0, 33 and 67 ms; its sound lasts 171 ms. The middle
    // (86 ms) comes after the last frame's start: that frame stands in.
    let sample = Sample::get("video/mp4-h264-aac-gps.mp4");
    let path = Path::new(&sample.path);
    let output = converted(&sample.path, "mp4", "png", "{}");
    let ours = fingerprint(&output.path, None);
    assert!(difference(&ours, &fingerprint(path, Some(0.05))) < 0.5);
    assert!(difference(&ours, &fingerprint(path, Some(0.0))) > 5.0);
    // Asked for 20 ms: the frame starting at 33 ms, as `ffmpeg -ss 0.02` gives.
    let output = converted(&sample.path, "mp4", "png", r#"{"time": 0.02}"#);
    let ours = fingerprint(&output.path, None);
    assert!(difference(&ours, &fingerprint(path, Some(0.02))) < 0.5);
}

#[test]
fn a_rotated_video_gives_an_upright_picture() {
    let sample = Sample::get("video/mov-h264-aac-gps.mov");
    let output = converted(&sample.path, "mov", "jpg", r#"{"time": 1}"#);
    let identified = output.identify();
    assert_eq!((identified.width, identified.height), (320, 568));
    let ours = fingerprint(&output.path, None);
    let reference = fingerprint(Path::new(&sample.path), Some(1.0));
    let upside_down: Vec<u8> = reference.iter().rev().copied().collect();
    // JPEG at quality 2 (and its full range of levels) differs a little.
    let close = difference(&ours, &reference);
    assert!(close < 4.0, "differs from ffmpeg's frame by {close}");
    assert!(difference(&ours, &upside_down) > 4.0 * close.max(1.0));
}

#[test]
fn a_width_or_a_height_keeps_the_aspect_ratio() {
    let input = fixture!("video/mp4-h264-aac-gps.mp4");
    let identified = converted(input, "mp4", "jpg", r#"{"width": 320}"#).identify();
    assert_eq!((identified.width, identified.height), (320, 180));
    let identified = converted(input, "mp4", "png", r#"{"height": 99}"#).identify();
    // 99 × 16 / 9 = 176, no even rounding for pictures.
    assert_eq!((identified.width, identified.height), (176, 99));
    let identified = converted(input, "mp4", "png", r#"{"width": 101, "height": 51}"#).identify();
    assert_eq!((identified.width, identified.height), (101, 51));
}

#[test]
fn the_last_moment_gives_the_last_frame() {
    // The manifest gives the length to the millisecond, rounded up: 4.002 s for 4.0017 s.
    let sample = Sample::get("video/mov-h264-aac-gps.mov");
    let options = format!(r#"{{"time": {}}}"#, sample.duration);
    let output = converted(&sample.path, "mov", "png", &options);
    let ours = fingerprint(&output.path, None);
    let last = fingerprint(Path::new(&sample.path), Some(3.95));
    assert!(difference(&ours, &last) < 0.5);
}

#[test]
fn a_time_past_the_end_is_refused() {
    for (input, source) in [
        (fixture!("video/ogv-theora.ogv"), "ogv"),
        (fixture!("video/mkv-h264-aac.mkv"), "mkv"),
    ] {
        let message = refused(
            input,
            source,
            "jpg",
            r#"{"time": 10}"#,
            ErrorKind::InvalidOptions,
        );
        assert!(message.contains("past the end"), "{message}");
    }
}

#[test]
fn invalid_options_are_refused() {
    let input = fixture!("video/mkv-h264-aac.mkv");
    for (options, expected) in [
        (r#"{"time": -1}"#, "from 0"),
        (r#"{"width": 10}"#, "from 16 to 16384"),
        (r#"{"duration": 1}"#, "unknown field"),
    ] {
        let message = refused(input, "mkv", "png", options, ErrorKind::InvalidOptions);
        assert!(message.contains(expected), "{options}: {message}");
    }
}
