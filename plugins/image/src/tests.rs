use image::{GenericImageView, ImageFormat};
use metamorph_plugin_api::{ConvertError, ErrorKind, convert_bytes, convert_file};

use super::{FORMATS, ImagePlugin};

fn corpus(path: &str) -> String {
    format!(
        "{}/../../tests/fixtures/corpus/{path}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A sample input of each format: a corpus file, or the plugin's own template where the
/// corpus has none.
fn sample(format: &str) -> Vec<u8> {
    let file = match format {
        "png" => "image/png-rgba-alpha.png",
        "jpg" => "image/jpeg-exif-gps.jpg",
        "gif" => "image/gif-static.gif",
        "webp" => "image/webp-lossy.webp",
        "bmp" => "image/bmp-rgb24.bmp",
        "tif" => "image/tiff-rgb.tif",
        "ico" => "image/ico-multisize.ico",
        _ => return <ImagePlugin as metamorph_plugin_api::Converter>::template(format).unwrap(),
    };
    std::fs::read(corpus(file)).unwrap()
}

fn decode(bytes: &[u8], format: &str) -> image::DynamicImage {
    image::load_from_memory_with_format(bytes, super::pipeline::format(format).unwrap()).unwrap()
}

fn kind(result: Result<Vec<u8>, ConvertError>) -> ErrorKind {
    result.unwrap_err().kind
}

#[test]
fn every_format_converts_to_every_format_and_decodes_back_at_its_size() {
    for source in FORMATS {
        let input = sample(source);
        let original = decode(&input, source);
        for target in FORMATS {
            let output = convert_bytes::<ImagePlugin>(&input, source, target, "{}")
                .unwrap_or_else(|error| panic!("{source} → {target}: {error}"));
            let expected = super::pipeline::format(target).unwrap();
            // TGA has no signature to recognise; it is checked by decoding below.
            if expected != ImageFormat::Tga {
                let format = image::guess_format(&output)
                    .unwrap_or_else(|_| panic!("{source} → {target} wrote no image"));
                assert_eq!(format, expected, "{source} → {target}");
            }
            let converted = decode(&output, target);
            let (width, height) =
                if target == "ico" && (original.width() > 256 || original.height() > 256) {
                    (converted.width(), converted.height())
                } else {
                    original.dimensions()
                };
            assert_eq!(
                converted.dimensions(),
                (width, height),
                "{source} → {target}"
            );
        }
    }
}

/// Mean absolute difference per channel of two images, compared at 60×45.
fn difference(a: &image::DynamicImage, b: &image::DynamicImage) -> f64 {
    let small = |image: &image::DynamicImage| {
        image
            .resize_exact(60, 45, image::imageops::FilterType::Triangle)
            .to_rgb8()
    };
    let (a, b) = (small(a), small(b));
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn the_exif_orientation_is_applied() {
    // The eight corpus photos are one picture stored in each EXIF orientation (5 to 8
    // stored portrait); applied, all of them look like orientation 1.
    let upright = |n: u32, options: &str| {
        let path = corpus(&format!("image/jpeg-orientation-{n}.jpg"));
        decode(
            &convert_file::<ImagePlugin>(path, "jpg", "png", options).unwrap(),
            "png",
        )
    };
    let reference = upright(1, "{}");
    assert_eq!(reference.dimensions(), (600, 450));
    for n in 2..=8 {
        let oriented = upright(n, "{}");
        assert_eq!(oriented.dimensions(), (600, 450), "orientation {n}");
        // Orientation 1 was encoded differently from the others, so the upright images are
        // not identical to it; but they must be far closer to it than any wrong turn.
        let upright_off = difference(&reference, &oriented);
        let mirrored_off = difference(&reference, &oriented.fliph());
        let turned_off = difference(&reference, &oriented.rotate180());
        assert!(
            upright_off * 2.0 < mirrored_off.min(turned_off),
            "orientation {n} does not look upright: {upright_off:.1} vs mirrored {mirrored_off:.1}, turned {turned_off:.1}"
        );
        let stored = upright(n, r#"{"auto_orient":false}"#);
        let expected = if n >= 5 { (450, 600) } else { (600, 450) };
        assert_eq!(
            stored.dimensions(),
            expected,
            "auto_orient false keeps the stored pixels"
        );
        assert!(
            stored.dimensions() != (600, 450)
                || difference(&reference, &stored) > upright_off * 2.0,
            "orientation {n} stored as is"
        );
    }
}

#[test]
fn resizing_follows_width_height_and_fit() {
    let input = std::fs::read(corpus("image/jpeg-exif-gps.jpg")).unwrap();
    let (width, height) = decode(&input, "jpg").dimensions();
    let by_width = decode(
        &convert_bytes::<ImagePlugin>(&input, "jpg", "png", r#"{"width":100}"#).unwrap(),
        "png",
    );
    let expected_height = (u64::from(height) * 100 + u64::from(width) / 2) / u64::from(width);
    assert_eq!(
        by_width.dimensions(),
        (100, u32::try_from(expected_height).unwrap())
    );
    let contain = decode(
        &convert_bytes::<ImagePlugin>(&input, "jpg", "png", r#"{"width":50,"height":50}"#).unwrap(),
        "png",
    );
    assert!(
        contain.width() <= 50
            && contain.height() <= 50
            && (contain.width() == 50 || contain.height() == 50)
    );
    let cover = decode(
        &convert_bytes::<ImagePlugin>(
            &input,
            "jpg",
            "png",
            r#"{"width":50,"height":50,"fit":"cover"}"#,
        )
        .unwrap(),
        "png",
    );
    assert_eq!(cover.dimensions(), (50, 50));
    let fill = decode(
        &convert_bytes::<ImagePlugin>(
            &input,
            "jpg",
            "png",
            r#"{"width":40,"height":90,"fit":"fill"}"#,
        )
        .unwrap(),
        "png",
    );
    assert_eq!(fill.dimensions(), (40, 90));
}

#[test]
fn transparency_is_flattened_onto_the_background_for_jpeg() {
    let template = <ImagePlugin as metamorph_plugin_api::Converter>::template("png").unwrap();
    let red = decode(
        &convert_bytes::<ImagePlugin>(
            &template,
            "png",
            "jpg",
            r##"{"background":"#ff0000","quality":100}"##,
        )
        .unwrap(),
        "jpg",
    );
    let corner = red.to_rgb8().get_pixel(2, 2).0;
    assert!(
        corner[0] > 230 && corner[1] < 30 && corner[2] < 30,
        "transparent corner on red: {corner:?}"
    );
    let white = decode(
        &convert_bytes::<ImagePlugin>(&template, "png", "jpg", "{}").unwrap(),
        "jpg",
    );
    assert!(
        white
            .to_rgb8()
            .get_pixel(2, 2)
            .0
            .iter()
            .all(|channel| *channel > 230)
    );
}

#[test]
fn jpeg_quality_trades_size_for_fidelity() {
    let input = std::fs::read(corpus("image/png-rgba-alpha.png")).unwrap();
    let low = convert_bytes::<ImagePlugin>(&input, "png", "jpg", r#"{"quality":20}"#).unwrap();
    let high = convert_bytes::<ImagePlugin>(&input, "png", "jpg", r#"{"quality":95}"#).unwrap();
    assert!(low.len() < high.len(), "{} vs {}", low.len(), high.len());
}

#[test]
fn bad_options_are_refused_saying_what_is_allowed() {
    let input = sample("png");
    for (target, options, fragment) in [
        ("jpg", r#"{"quality":0}"#, "1 to 100"),
        ("jpg", r##"{"background":"red"}"##, "#ffffff"),
        ("webp", r#"{"lossless":false}"#, "lossless"),
        ("png", r#"{"quality":80}"#, "unknown field"),
        ("png", r#"{"width":0}"#, "1 to 30000"),
        ("png", r#"{"fit":"stretch"}"#, "unknown variant"),
    ] {
        let error = convert_bytes::<ImagePlugin>(&input, "png", target, options).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidOptions, "{options}");
        assert!(
            error.message.contains(fragment),
            "{options}: {}",
            error.message
        );
    }
}

#[test]
fn malformed_images_are_typed_errors_not_panics() {
    for (file, format) in [
        ("malformed/png-bad-ihdr-crc.png", "png"),
        ("malformed/png-bad-signature.png", "png"),
        ("malformed/png-truncated.png", "png"),
        ("malformed/jpeg-truncated.jpg", "jpg"),
        ("malformed/gif-truncated.gif", "gif"),
        ("malformed/bmp-short.bmp", "bmp"),
        ("malformed/tiff-bad-strip.tif", "tif"),
        ("malformed/webp-fuzzed-vp8l.webp", "webp"),
    ] {
        let result = convert_file::<ImagePlugin>(corpus(file), format, "png", "{}");
        match result {
            Err(error) => assert_eq!(error.kind, ErrorKind::MalformedInput, "{file}: {error}"),
            // Some decoders recover what is there; that is a valid outcome, not a crash.
            Ok(bytes) => assert!(image::guess_format(&bytes).is_ok(), "{file} gave garbage"),
        }
    }
    assert_eq!(
        kind(convert_bytes::<ImagePlugin>(
            b"not an image at all",
            "png",
            "jpg",
            "{}"
        )),
        ErrorKind::MalformedInput
    );
    assert_eq!(
        kind(convert_bytes::<ImagePlugin>(b"", "jpg", "png", "{}")),
        ErrorKind::MalformedInput
    );
}

/// The CRC-32 of PNG (and zlib, gzip), a bit at a time.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The table-driven CRC-32 that WebAssembly builds use (the patched crc32fast under
/// `vendor/`, whose long buffers take a block-wise path with XORs, not lookups) gives the
/// bitwise CRC for every length around its thresholds, any alignment, and a running CRC
/// carried over from an earlier part. Natively the PNG codec uses the carry-less multiply
/// path instead, so this is where that code runs in the native test suite.
#[test]
fn the_crc_of_wasm_builds_is_the_bitwise_crc() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let bytes: Vec<u8> = (0..300_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    for length in [
        0, 1, 15, 4_799, 4_800, 14_399, 14_400, 14_401, 14_415, 22_592, 65_536, 262_144, 299_990,
    ] {
        for start in [0, 1, 7] {
            let data = &bytes[start..start + length];
            let mut whole = crc32fast::Hasher::internal_new_baseline(0, 0);
            whole.update(data);
            assert_eq!(
                whole.finalize(),
                crc32(data),
                "length {length}, start {start}"
            );
            // In two parts, the second long enough for the block-wise path.
            let split = length / 5;
            let mut parts = crc32fast::Hasher::internal_new_baseline(0, 0);
            parts.update(&data[..split]);
            parts.update(&data[split..]);
            assert_eq!(
                parts.finalize(),
                crc32(data),
                "length {length} in two parts"
            );
        }
    }
}

/// A PNG header claiming 100 000 × 100 000 pixels, with a valid CRC and no pixel data.
fn bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(100_000_u32.to_be_bytes());
    chunk.extend(100_000_u32.to_be_bytes());
    chunk.extend([8, 6, 0, 0, 0]);
    png.extend(13_u32.to_be_bytes());
    png.extend(&chunk);
    png.extend(crc32(&chunk).to_be_bytes());
    png
}

#[test]
fn a_decompression_bomb_is_refused_before_its_pixels_are_allocated() {
    let started = std::time::Instant::now();
    let error = convert_bytes::<ImagePlugin>(&bomb(), "png", "jpg", "{}").unwrap_err();
    assert_eq!(error.kind, ErrorKind::LimitExceeded, "{error}");
    assert!(error.message.contains("30000"), "{}", error.message);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn every_format_has_a_template_that_decodes() {
    for format in FORMATS {
        let bytes = <ImagePlugin as metamorph_plugin_api::Converter>::template(format).unwrap();
        assert_eq!(decode(&bytes, format).dimensions(), (64, 48), "{format}");
    }
}

/// A resized JPEG goes from the decoder to the resizer a band of rows at a time, and on to
/// the JPEG encoder when it is written as a JPEG: the pixels must be those of decoding it
/// whole and resizing that, and the JPEG the one written of that image, for every layout
/// (subsampling, restart markers, grey, odd sizes), every kind of resize, and broken files.
#[test]
fn a_jpeg_resized_band_by_band_has_the_pixels_of_one_resized_whole() {
    use super::options::{Compression, Filter, Fit, Settings};
    use super::pipeline::{self, Resized, RowsTo};
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    let photo = decode(&sample("jpg"), "jpg").to_rgb8();
    let mut inputs: Vec<(String, Vec<u8>)> = [
        "image/jpeg-exif-gps.jpg",
        "image/jpeg-grayscale.jpg",
        "image/jpeg-progressive.jpg",
        "image/jpeg-cmyk-adobe.jpg",
        "image/jpeg-orientation-6.jpg",
        "malformed/jpeg-truncated.jpg",
        "malformed/jpeg-bad-exif.jpg",
    ]
    .iter()
    .map(|path| ((*path).to_owned(), std::fs::read(corpus(path)).unwrap()))
    .collect();
    // Layouts the corpus lacks, at sizes that are not a multiple of the MCU.
    let layouts = [
        (SamplingFactor::F_2_2, 301, 203, 0),
        (SamplingFactor::F_2_1, 333, 117, 0),
        (SamplingFactor::F_1_2, 129, 257, 0),
        (SamplingFactor::F_1_1, 97, 61, 0),
        (SamplingFactor::F_2_2, 250, 170, 1),
        (SamplingFactor::F_4_1, 221, 90, 3),
    ];
    for (sampling, width, height, restarts) in layouts {
        let source = image::imageops::thumbnail(&photo, width, height);
        let mut bytes = Vec::new();
        let mut encoder = Encoder::new(&mut bytes, 90);
        encoder.set_sampling_factor(sampling);
        if restarts > 0 {
            encoder.set_restart_interval(restarts);
        }
        let (w, h) = (
            u16::try_from(width).unwrap(),
            u16::try_from(height).unwrap(),
        );
        encoder
            .encode(source.as_raw(), w, h, ColorType::Rgb)
            .unwrap();
        inputs.push((format!("{sampling:?} {width}×{height}"), bytes));
    }
    let grey = image::imageops::grayscale(&image::imageops::thumbnail(&photo, 203, 151));
    let mut bytes = Vec::new();
    Encoder::new(&mut bytes, 80)
        .encode(grey.as_raw(), 203, 151, ColorType::Luma)
        .unwrap();
    inputs.push(("grey 203×151".to_owned(), bytes));

    let settings = |width, height, fit, filter, auto_orient| Settings {
        width,
        height,
        fit,
        filter,
        auto_orient,
        quality: 85,
        background: [255; 3],
        compression: Compression::Fast,
    };
    let resizes = [
        settings(Some(97), None, Fit::Contain, Filter::Catmullrom, true),
        settings(None, Some(40), Fit::Contain, Filter::Lanczos3, true),
        settings(Some(500), None, Fit::Contain, Filter::Triangle, true),
        settings(Some(60), Some(60), Fit::Cover, Filter::Catmullrom, true),
        settings(Some(33), Some(190), Fit::Fill, Filter::Lanczos3, false),
        settings(Some(50), None, Fit::Contain, Filter::Nearest, true),
    ];
    let mut banded = 0;
    for (name, bytes) in &inputs {
        for settings in &resizes {
            let whole = pipeline::decode(
                std::io::Cursor::new(bytes),
                ImageFormat::Jpeg,
                settings.auto_orient,
            )
            .and_then(|image| pipeline::resize(image, settings));
            let rows = pipeline::jpeg_in_rows(bytes, settings, RowsTo::Image).map(|resized| {
                resized.map(|resized| match resized {
                    Resized::Image(image) => image,
                    Resized::Written => panic!("{name} {settings:?}: no image"),
                })
            });
            let mut jpeg = Vec::new();
            let jpeg_rows = pipeline::jpeg_in_rows(bytes, settings, RowsTo::Jpeg(&mut jpeg));
            match (rows, whole) {
                (Ok(Some(rows)), Ok(whole)) => {
                    banded += 1;
                    assert_eq!(rows.color(), whole.color(), "{name} {settings:?}");
                    assert_eq!(rows.dimensions(), whole.dimensions(), "{name} {settings:?}");
                    assert!(
                        rows.as_bytes() == whole.as_bytes(),
                        "{name} {settings:?}: other pixels band by band"
                    );
                    // Resized rows encoded as they come: the JPEG of the whole image.
                    assert!(
                        matches!(jpeg_rows, Ok(Some(Resized::Written))),
                        "{name} {settings:?}: not written band by band"
                    );
                    let mut expected = Vec::new();
                    pipeline::encode_jpeg(&whole, settings, &mut expected).unwrap();
                    assert!(
                        jpeg == expected,
                        "{name} {settings:?}: another JPEG band by band"
                    );
                }
                (Ok(None), _) => assert!(
                    matches!(jpeg_rows, Ok(None)) && jpeg.is_empty(),
                    "{name} {settings:?}"
                ),
                (Err(rows), Err(whole)) => {
                    assert_eq!(rows.kind, whole.kind, "{name} {settings:?}");
                    assert_eq!(
                        jpeg_rows.err().map(|error| error.kind),
                        Some(whole.kind),
                        "{name} {settings:?}"
                    );
                }
                (rows, whole) => panic!(
                    "{name} {settings:?}: band by band {:?}, whole {:?}",
                    rows.map(|image| image.map(|image| image.dimensions())),
                    whole.map(|image| image.dimensions())
                ),
            }
        }
    }
    // All but the nearest-neighbour resizes, the rotated photo and the CMYK file (which
    // `image` reads as RGB, so it goes band by band too).
    assert!(banded >= 60, "only {banded} resizes went band by band");
}
