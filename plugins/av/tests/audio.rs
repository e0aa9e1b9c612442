//! Audio to audio, and the sound of videos to audio.

mod common;

use common::{converted, refused};
use metamorph_plugin_api::ErrorKind;

#[test]
fn wav_becomes_a_stereo_mp3_of_the_same_length() {
    let probe = converted(fixture!("audio/wav-pcm16.wav"), "wav", "mp3", "{}").probe();
    assert_eq!(probe.format_name, "mp3");
    let audio = probe.stream("audio");
    assert_eq!(audio.codec_name, "mp3");
    assert_eq!(audio.channels, 2);
    assert_eq!(audio.sample_rate, 22_050);
    probe.assert_duration(1.225, 0.08);
}

#[test]
fn mp3_becomes_ogg_vorbis() {
    let probe = converted(fixture!("audio/mp3-id3v23-v1.mp3"), "mp3", "ogg", "").probe();
    assert_eq!(probe.format_name, "ogg");
    assert_eq!(probe.stream("audio").codec_name, "vorbis");
    probe.assert_duration(3.768, 0.1);
}

#[test]
fn flac_becomes_opus_resampled_to_48_khz() {
    let probe = converted(
        fixture!("audio/flac-vorbis-comments-picture.flac"),
        "flac",
        "opus",
        "{}",
    )
    .probe();
    assert_eq!(probe.format_name, "ogg");
    let audio = probe.stream("audio");
    assert_eq!(audio.codec_name, "opus");
    assert_eq!(audio.sample_rate, 48_000);
    assert_eq!(audio.channels, 2);
    assert_eq!(probe.count("video"), 0, "cover art is not copied");
    probe.assert_duration(3.685, 0.1);
}

#[test]
fn ogg_becomes_lossless_flac() {
    let probe = converted(
        fixture!("audio/ogg-vorbis-comments-multipage.ogg"),
        "ogg",
        "flac",
        "",
    )
    .probe();
    assert_eq!(probe.format_name, "flac");
    let audio = probe.stream("audio");
    assert_eq!(audio.codec_name, "flac");
    assert_eq!(audio.sample_rate, 44_100);
    probe.assert_duration(3.685, 0.05);
}

#[test]
fn opus_becomes_aac_in_m4a() {
    let probe = converted(fixture!("audio/opus-tags.opus"), "opus", "m4a", "").probe();
    assert!(probe.format_name.contains("m4a"), "{}", probe.format_name);
    let audio = probe.stream("audio");
    assert_eq!(audio.codec_name, "aac");
    assert_eq!(audio.channels, 1);
    probe.assert_duration(2.92, 0.1);
}

#[test]
fn m4a_with_aac_and_with_alac_become_wav() {
    for input in [
        fixture!("audio/m4a-aac-tags-cover.m4a"),
        fixture!("audio/m4a-alac.m4a"),
    ] {
        let probe = converted(input, "m4a", "wav", "").probe();
        assert_eq!(probe.format_name, "wav");
        let audio = probe.stream("audio");
        assert_eq!(audio.codec_name, "pcm_s16le");
        assert_eq!(audio.sample_rate, 44_100);
        probe.assert_duration(3.7, 0.1);
    }
}

#[test]
fn aiff_becomes_mp3() {
    let probe = converted(fixture!("audio/aiff-id3.aiff"), "aiff", "mp3", "").probe();
    let audio = probe.stream("audio");
    assert_eq!(audio.codec_name, "mp3");
    assert_eq!(audio.sample_rate, 8000);
    assert_eq!(audio.channels, 1);
    // One second of sound padded to whole 576-sample frames at 8 kHz, as `ffmpeg` writes it.
    probe.assert_duration(1.152, 0.05);
}

#[test]
fn unsigned_8_bit_wav_becomes_flac() {
    let probe = converted(fixture!("audio/wav-riff-info-id3.wav"), "wav", "flac", "").probe();
    let audio = probe.stream("audio");
    assert_eq!(audio.codec_name, "flac");
    assert_eq!(audio.sample_rate, 16_000);
    probe.assert_duration(2.0, 0.05);
}

#[test]
fn the_mp3_bitrate_follows_the_option() {
    let probe = converted(
        fixture!("audio/ogg-vorbis-comments-multipage.ogg"),
        "ogg",
        "mp3",
        r#"{"bitrate": 64}"#,
    )
    .probe();
    assert_eq!(probe.stream("audio").bit_rate, 64_000);
}

#[test]
fn sample_rate_and_channels_follow_the_options() {
    let options = r#"{"sample_rate": 8000, "channels": 1}"#;
    let probe = converted(fixture!("audio/wav-pcm16.wav"), "wav", "flac", options).probe();
    let audio = probe.stream("audio");
    assert_eq!(audio.sample_rate, 8000);
    assert_eq!(audio.channels, 1);
    probe.assert_duration(1.225, 0.05);
}

#[test]
fn start_and_duration_cut_the_audio() {
    let options = r#"{"start": 1.0, "duration": 1.5}"#;
    let probe = converted(
        fixture!("audio/flac-vorbis-comments-picture.flac"),
        "flac",
        "wav",
        options,
    )
    .probe();
    probe.assert_duration(1.5, 0.01);
}

#[test]
fn a_start_past_the_end_is_refused_as_an_invalid_option() {
    let message = refused(
        fixture!("audio/wav-pcm16.wav"),
        "wav",
        "mp3",
        r#"{"start": 5}"#,
        ErrorKind::InvalidOptions,
    );
    assert!(message.contains("past the end"), "{message}");
}

#[test]
fn a_bitrate_for_a_lossless_format_is_refused() {
    let message = refused(
        fixture!("audio/mp3-id3v1-only.mp3"),
        "mp3",
        "flac",
        r#"{"bitrate": 128}"#,
        ErrorKind::InvalidOptions,
    );
    assert!(message.contains("lossless"), "{message}");
}

#[test]
fn an_out_of_range_bitrate_is_refused_with_the_range() {
    let message = refused(
        fixture!("audio/wav-pcm16.wav"),
        "wav",
        "mp3",
        r#"{"bitrate": 500}"#,
        ErrorKind::InvalidOptions,
    );
    assert!(message.contains("from 8 to 320"), "{message}");
}

#[test]
fn an_opus_sample_rate_outside_its_list_is_refused_with_the_list() {
    let message = refused(
        fixture!("audio/wav-pcm16.wav"),
        "wav",
        "opus",
        r#"{"sample_rate": 44100}"#,
        ErrorKind::InvalidOptions,
    );
    assert!(
        message.contains("8000, 12000, 16000, 24000 and 48000"),
        "{message}"
    );
}

#[test]
fn mp3_with_more_than_two_channels_is_refused() {
    let message = refused(
        fixture!("audio/wav-pcm16.wav"),
        "wav",
        "mp3",
        r#"{"channels": 6}"#,
        ErrorKind::InvalidOptions,
    );
    assert!(message.contains("at most 2 channels"), "{message}");
}

#[test]
fn unknown_options_are_refused() {
    refused(
        fixture!("audio/wav-pcm16.wav"),
        "wav",
        "mp3",
        r#"{"volume": 2}"#,
        ErrorKind::InvalidOptions,
    );
}

#[test]
fn the_sound_of_an_mkv_becomes_mp3() {
    let probe = converted(fixture!("video/mkv-h264-aac.mkv"), "mkv", "mp3", "").probe();
    assert_eq!(probe.count("video"), 0);
    assert_eq!(probe.stream("audio").codec_name, "mp3");
    assert_eq!(probe.stream("audio").sample_rate, 44_100);
}

#[test]
fn the_sound_of_a_webm_becomes_wav() {
    let probe = converted(fixture!("video/webm-vp8-vorbis.webm"), "webm", "wav", "").probe();
    assert_eq!(probe.streams.len(), 1);
    assert_eq!(probe.stream("audio").codec_name, "pcm_s16le");
    probe.assert_duration(0.07, 0.05);
}

#[test]
fn the_sound_of_a_mov_becomes_opus() {
    let options = r#"{"duration": 1}"#;
    let probe = converted(
        fixture!("video/mov-h264-aac-gps.mov"),
        "mov",
        "opus",
        options,
    )
    .probe();
    assert_eq!(probe.stream("audio").codec_name, "opus");
    probe.assert_duration(1.0, 0.05);
}

#[test]
fn the_adpcm_sound_of_an_avi_becomes_m4a() {
    let probe = converted(fixture!("video/avi-msmpeg4-adpcm.avi"), "avi", "m4a", "").probe();
    assert_eq!(probe.stream("audio").codec_name, "aac");
}

#[test]
fn a_video_without_sound_has_no_audio_to_extract() {
    refused(
        fixture!("video/ogv-theora.ogv"),
        "ogv",
        "mp3",
        "",
        ErrorKind::Unsupported,
    );
}
