//! Video to animated GIF, checked with `ffprobe` and ImageMagick's `identify`.

mod common;

use std::path::Path;

use common::{Sample, VIDEO_SAMPLES, converted, difference, fingerprint, refused};
use metamorph_plugin_api::ErrorKind;

#[test]
fn every_video_source_becomes_a_gif() {
    for name in VIDEO_SAMPLES {
        let sample = Sample::get(name);
        let options = if sample.duration > 1.0 {
            r#"{"duration": 1}"#
        } else {
            "{}"
        };
        let output = converted(&sample.path, &sample.format, "gif", options);
        let probe = output.probe();
        assert_eq!(probe.format_name, "gif", "{name}");
        let video = probe.stream("video");
        assert_eq!(video.codec_name, "gif", "{name}");
        // At most 480 wide by default, the aspect ratio kept.
        let (width, height) = sample.display_size();
        let expected_width = width.min(480);
        assert_eq!(video.width, expected_width, "{name}");
        let expected_height = (height as f64 * expected_width as f64 / width as f64).round();
        assert_eq!(video.height as f64, expected_height, "{name}");
        // 10 frames a second, at least one.
        let frames = output.video_frames();
        let expected = (sample.duration.min(1.0) * 10.0).ceil() as u64;
        assert_eq!(frames, expected.max(1), "{name}");
        let identified = output.identify();
        assert_eq!(identified.format, "GIF", "{name}");
        assert_eq!(identified.frames as u64, frames, "{name}");
    }
}

#[test]
fn the_whole_clip_is_kept_at_10_frames_a_second() {
    // 5.6 s of Theora at 10 fps: 56 frames, the last one included.
    let output = converted(fixture!("video/ogv-theora.ogv"), "ogv", "gif", "{}");
    let probe = output.probe();
    assert_eq!(output.video_frames(), 56);
    probe.assert_duration(5.6, 0.02);
    let video = probe.stream("video");
    assert_eq!((video.width, video.height), (300, 200));
}

#[test]
fn fps_and_duration_set_the_frame_count() {
    let output = converted(
        fixture!("video/mov-h264-aac-gps.mov"),
        "mov",
        "gif",
        r#"{"fps": 5, "start": 1, "duration": 2}"#,
    );
    assert_eq!(output.video_frames(), 10);
    output.probe().assert_duration(2.0, 0.02);
    let output = converted(
        fixture!("video/ogv-theora.ogv"),
        "ogv",
        "gif",
        r#"{"fps": 4, "duration": 1.5}"#,
    );
    assert_eq!(output.video_frames(), 6);
}

#[test]
fn a_one_frame_clip_gives_a_one_frame_gif() {
    // 42 ms of video: shorter than a frame at 10 fps, still a picture.
    let output = converted(fixture!("video/mkv-h264-aac.mkv"), "mkv", "gif", "{}");
    assert_eq!(output.video_frames(), 1);
    assert_eq!(output.identify().frames, 1);
}

#[test]
fn a_width_keeps_the_aspect_ratio() {
    let probe = converted(
        fixture!("video/mp4-h264-aac-gps.mp4"),
        "mp4",
        "gif",
        r#"{"width": 160}"#,
    )
    .probe();
    let video = probe.stream("video");
    assert_eq!((video.width, video.height), (160, 90));
}

#[test]
fn a_height_keeps_the_aspect_ratio_of_the_upright_picture() {
    let probe = converted(
        fixture!("video/mov-h264-aac-gps.mov"),
        "mov",
        "gif",
        r#"{"height": 284, "duration": 0.3}"#,
    )
    .probe();
    let video = probe.stream("video");
    assert_eq!((video.width, video.height), (160, 284));
}

#[test]
fn width_and_height_together_give_that_size() {
    let identified = converted(
        fixture!("video/ogv-theora.ogv"),
        "ogv",
        "gif",
        r#"{"width": 99, "height": 33, "duration": 0.5}"#,
    )
    .identify();
    assert_eq!((identified.width, identified.height), (99, 33));
    assert_eq!(identified.frames, 5);
}

#[test]
fn large_videos_are_shrunk_to_480_wide_by_default() {
    let probe = converted(fixture!("video/mp4-h264-aac-gps.mp4"), "mp4", "gif", "{}").probe();
    let video = probe.stream("video");
    assert_eq!((video.width, video.height), (480, 270));
}

#[test]
fn the_gif_shows_the_upright_pictures() {
    let sample = Sample::get("video/mov-h264-aac-gps.mov");
    let output = converted(&sample.path, "mov", "gif", r#"{"duration": 0.2}"#);
    let ours = fingerprint(&output.path, None);
    let reference = fingerprint(Path::new(&sample.path), None);
    // A palette of 256 colours with dithering: close, not equal.
    let close = difference(&ours, &reference);
    assert!(close < 8.0, "differs from ffmpeg's picture by {close}");
}

#[test]
fn options_out_of_range_are_refused() {
    let input = fixture!("video/mkv-h264-aac.mkv");
    for (options, expected) in [
        (r#"{"width": 2000}"#, "from 16 to 1920"),
        (r#"{"fps": 60}"#, "from 1 to 50"),
        (r#"{"quality": 10}"#, "unknown field"),
    ] {
        let message = refused(input, "mkv", "gif", options, ErrorKind::InvalidOptions);
        assert!(message.contains(expected), "{options}: {message}");
    }
}

#[test]
fn a_gif_too_large_to_hold_is_refused_before_decoding() {
    let message = refused(
        fixture!("video/ogv-theora.ogv"),
        "ogv",
        "gif",
        r#"{"width": 1920, "height": 1920, "fps": 50}"#,
        ErrorKind::LimitExceeded,
    );
    assert!(message.contains("shorter duration"), "{message}");
}
