//! Decode, orient, resize, flatten and encode.

use std::borrow::Cow;
use std::io::{BufRead, BufWriter, Cursor, Seek, Write};

use fast_image_resize::{
    FilterType as ResizeFilter, PixelType, ResizeAlg, ResizeOptions, Resizer, RowResizer,
};
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::error::{
    DecodingError, ImageError, LimitError, LimitErrorKind, UnsupportedError, UnsupportedErrorKind,
};
use image::metadata::Orientation;
use image::{
    DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage,
};
use metamorph_plugin_api::{ConvertError, Input, Output, Request};

use crate::options::{
    BasicOptions, Compression, Filter, Fit, JpegOptions, PngOptions, Settings, WebpOptions,
    parse_colour,
};
use crate::{MAX_ALLOC, MAX_SIDE};

/// The `image` format of a canonical format name.
pub(crate) fn format(name: &str) -> Result<ImageFormat, ConvertError> {
    Ok(match name {
        "png" => ImageFormat::Png,
        "jpg" => ImageFormat::Jpeg,
        "gif" => ImageFormat::Gif,
        "webp" => ImageFormat::WebP,
        "bmp" => ImageFormat::Bmp,
        "tif" => ImageFormat::Tiff,
        "ico" => ImageFormat::Ico,
        "tga" => ImageFormat::Tga,
        "qoi" => ImageFormat::Qoi,
        "pnm" => ImageFormat::Pnm,
        other => {
            return Err(ConvertError::unsupported(format!(
                "the image plugin does not handle `{other}`"
            )));
        }
    })
}

/// The options of a request, for its target.
pub(crate) fn settings(request: &Request, target: ImageFormat) -> Result<Settings, ConvertError> {
    let mut settings = Settings {
        width: None,
        height: None,
        fit: Fit::Contain,
        filter: Filter::Catmullrom,
        auto_orient: true,
        quality: 85,
        background: [255, 255, 255],
        compression: Compression::Fast,
    };
    macro_rules! common {
        ($options:ty) => {{
            let options: $options = request.options()?;
            settings.width = options.width;
            settings.height = options.height;
            settings.fit = options.fit;
            settings.filter = options.filter;
            settings.auto_orient = options.auto_orient.unwrap_or(true);
            options
        }};
    }
    match target {
        ImageFormat::Jpeg => {
            let options = common!(JpegOptions);
            if let Some(quality) = options.quality {
                if !(1..=100).contains(&quality) {
                    return Err(ConvertError::invalid_options(format!(
                        "`quality` is 1 to 100, not {quality}"
                    )));
                }
                settings.quality = quality;
            }
            if let Some(colour) = &options.background {
                settings.background = parse_colour(colour).ok_or_else(|| {
                    ConvertError::invalid_options(format!(
                        "`background` is a colour like #ffffff, not `{colour}`"
                    ))
                })?;
            }
        }
        ImageFormat::Png => {
            let options = common!(PngOptions);
            settings.compression = options.compression;
        }
        ImageFormat::WebP => {
            let options = common!(WebpOptions);
            if options.lossless == Some(false) {
                return Err(ConvertError::invalid_options(
                    "WebP is written lossless only; leave out `lossless` or set it to true",
                ));
            }
        }
        _ => {
            let _ = common!(BasicOptions);
        }
    }
    for (name, value) in [("width", settings.width), ("height", settings.height)] {
        if let Some(value) = value
            && !(1..=MAX_SIDE).contains(&value)
        {
            return Err(ConvertError::invalid_options(format!(
                "`{name}` is 1 to {MAX_SIDE}, not {value}"
            )));
        }
    }
    Ok(settings)
}

fn decode_error(error: ImageError, format: ImageFormat) -> ConvertError {
    match error {
        ImageError::Limits(limit) => match limit.kind() {
            LimitErrorKind::DimensionError => ConvertError::limit(format!(
                "the image is larger than {MAX_SIDE}×{MAX_SIDE} pixels"
            )),
            _ => ConvertError::limit(format!(
                "decoding the image would take more than {} MiB of memory",
                MAX_ALLOC / 1024 / 1024
            )),
        },
        ImageError::IoError(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            ConvertError::malformed(format!("the {} ends too early", name(format)))
        }
        ImageError::Unsupported(unsupported) => ConvertError::malformed(format!(
            "this {} uses a feature that cannot be decoded: {unsupported}",
            name(format)
        )),
        other => ConvertError::malformed(format!("not a valid {}: {other}", name(format))),
    }
}

fn name(format: ImageFormat) -> &'static str {
    format
        .extensions_str()
        .first()
        .map_or("image", |extension| match *extension {
            "jpg" | "jpeg" => "JPEG",
            "png" => "PNG",
            "gif" => "GIF",
            "webp" => "WebP",
            "bmp" => "BMP",
            "tif" | "tiff" => "TIFF",
            "ico" => "ICO",
            "tga" => "TGA",
            "qoi" => "QOI",
            _ => "PNM",
        })
}

/// Converts the input from `source` to `target` as the settings ask: decodes it (first
/// frame, within the limits, with its EXIF orientation applied when asked), resizes it and
/// encodes it. A JPEG that is resized goes from the decoder to the resizer a band of rows
/// at a time, without the whole decoded image in memory, and when it is written as a JPEG
/// the resized rows go on to the encoder the same way; everything else is decoded whole,
/// then resized and encoded.
pub(crate) fn convert(
    input: &mut Input,
    source: ImageFormat,
    target: ImageFormat,
    settings: &Settings,
    output: &mut Output<'_>,
) -> Result<(), ConvertError> {
    let image =
        if source == ImageFormat::Jpeg && (settings.width.is_some() || settings.height.is_some()) {
            let bytes = input.read_all()?;
            let to = if target == ImageFormat::Jpeg {
                RowsTo::Jpeg(&mut *output)
            } else {
                RowsTo::Image
            };
            match jpeg_in_rows(&bytes, settings, to)? {
                Some(Resized::Written) => return Ok(()),
                Some(Resized::Image(image)) => image,
                None => {
                    let image = decode(Cursor::new(bytes), source, settings.auto_orient)?;
                    resize(image, settings)?
                }
            }
        } else {
            let image = decode(input.reader()?, source, settings.auto_orient)?;
            resize(image, settings)?
        };
    encode(&image, target, settings, output)
}

/// Decodes the input (first frame), within the limits, with its EXIF orientation applied
/// when asked.
pub(crate) fn decode(
    input: impl BufRead + Seek,
    format: ImageFormat,
    auto_orient: bool,
) -> Result<DynamicImage, ConvertError> {
    let mut reader = ImageReader::with_format(input, format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|error| decode_error(error, format))?;
    let orientation = if auto_orient {
        decoder.orientation().ok()
    } else {
        None
    };
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|error| decode_error(error, format))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image)
}

/// Where [`jpeg_in_rows`] puts the resized rows.
pub(crate) enum RowsTo<'a> {
    /// Into an image.
    Image,
    /// Into a JPEG encoder writing there, as [`encode`] writes the image.
    Jpeg(&'a mut dyn Write),
}

/// What [`jpeg_in_rows`] made.
pub(crate) enum Resized {
    Image(DynamicImage),
    /// The JPEG, written.
    Written,
}

/// A JPEG decoded band by band straight into the resizer, and from there into an image
/// (the pixels `decode` and `resize` give) or a JPEG encoder (the bytes `encode` writes of
/// that image); `None` where this way does not apply (progressive images are decoded whole
/// anyway; EXIF rotation, alpha, sizes past the limits and resizes in one pass or none go
/// the whole-image way, which also words their errors).
pub(crate) fn jpeg_in_rows(
    bytes: &[u8],
    settings: &Settings,
    to: RowsTo<'_>,
) -> Result<Option<Resized>, ConvertError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;

    // The options `image` decodes with.
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    if decoder.decode_headers().is_err() {
        return Ok(None);
    }
    let (Some((width, height)), Some(colour)) = (decoder.dimensions(), decoder.input_colorspace())
    else {
        return Ok(None);
    };
    let (pixel_type, colour) = match colour {
        ColorSpace::Luma => (PixelType::U8, ColorSpace::Luma),
        ColorSpace::RGBA | ColorSpace::LumaA => return Ok(None),
        _ => (PixelType::U8x3, ColorSpace::RGB),
    };
    let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
        return Ok(None);
    };
    let channels = if colour == ColorSpace::Luma { 1 } else { 3 };
    if width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) * channels > MAX_ALLOC
    {
        return Ok(None);
    }
    if settings.auto_orient
        && decoder
            .exif()
            .and_then(|exif| Orientation::from_exif_chunk(exif))
            .is_some_and(|orientation| orientation != Orientation::NoTransforms)
    {
        return Ok(None);
    }
    let Some((size, crop)) = target_size((width, height), settings) else {
        return Ok(None);
    };
    let Some(mut resizer) = RowResizer::new(
        pixel_type,
        (width, height),
        size,
        &resize_options(crop, settings.filter),
    ) else {
        return Ok(None);
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(colour));
    let decode_failed = |error| decode_error(jpeg_error(error), ImageFormat::Jpeg);
    if let RowsTo::Jpeg(output) = to {
        let (Ok(width), Ok(height)) = (u16::try_from(size.0), u16::try_from(size.1)) else {
            return Ok(None);
        };
        let colour = if colour == ColorSpace::Luma {
            jpeg_encoder::ColorType::Luma
        } else {
            jpeg_encoder::ColorType::Rgb
        };
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER, output);
        let mut encoder = jpeg_encoder(&mut writer, settings)
            .encode_rows(width, height, colour)
            .map_err(jpeg_encode_error)?;
        let mut written = Ok(());
        decoder
            .decode_rows(&mut |rows: &[u8]| {
                resizer.push_rows(rows, &mut |rows: &[u8]| {
                    if written.is_ok() {
                        written = encoder.push(rows);
                    }
                });
            })
            .map_err(decode_failed)?;
        written
            .and_then(|()| encoder.finish())
            .map_err(jpeg_encode_error)?;
        writer.flush()?;
        return Ok(Some(Resized::Written));
    }
    let output_bytes = usize::try_from(u64::from(size.0) * u64::from(size.1) * channels)
        .map_err(|error| ConvertError::limit(format!("the resized image is too large: {error}")))?;
    let mut pixels = vec![0; output_bytes];
    decoder
        .decode_rows(&mut |rows: &[u8]| resizer.push(rows, &mut pixels))
        .map_err(decode_failed)?;
    let image = if colour == ColorSpace::Luma {
        GrayImage::from_raw(size.0, size.1, pixels).map(DynamicImage::ImageLuma8)
    } else {
        RgbImage::from_raw(size.0, size.1, pixels).map(DynamicImage::ImageRgb8)
    };
    image
        .map(|image| Some(Resized::Image(image)))
        .ok_or_else(|| ConvertError::internal("the resized image has the wrong size"))
}

/// A zune-jpeg error as `image` words it.
fn jpeg_error(error: zune_jpeg::errors::DecodeErrors) -> ImageError {
    use zune_jpeg::errors::DecodeErrors;
    match error {
        DecodeErrors::Unsupported(description) => {
            ImageError::Unsupported(UnsupportedError::from_format_and_kind(
                ImageFormat::Jpeg.into(),
                UnsupportedErrorKind::GenericFeature(format!("{description:?}")),
            ))
        }
        DecodeErrors::LargeDimensions(_) => {
            ImageError::Limits(LimitError::from_kind(LimitErrorKind::DimensionError))
        }
        other => ImageError::Decoding(DecodingError::new(ImageFormat::Jpeg.into(), other)),
    }
}

fn algorithm(filter: Filter) -> ResizeAlg {
    match filter {
        Filter::Nearest => ResizeAlg::Nearest,
        Filter::Triangle => ResizeAlg::Convolution(ResizeFilter::Bilinear),
        Filter::Catmullrom => ResizeAlg::Convolution(ResizeFilter::CatmullRom),
        Filter::Lanczos3 => ResizeAlg::Convolution(ResizeFilter::Lanczos3),
    }
}

/// The size the settings ask for an image of `width × height`, and whether to crop to it
/// (cover); `None` when they ask for no resize.
fn target_size((width, height): (u32, u32), settings: &Settings) -> Option<((u32, u32), bool)> {
    Some(match (settings.width, settings.height) {
        (None, None) => return None,
        (Some(w), None) => ((w, scaled(height, w, width)), false),
        (None, Some(h)) => ((scaled(width, h, height), h), false),
        (Some(w), Some(h)) => match settings.fit {
            Fit::Contain => (contained(width, height, w, h), false),
            Fit::Cover => ((w, h), true),
            Fit::Fill => ((w, h), false),
        },
    })
}

/// Resizes as the settings ask (or leaves the image as it is), with `fast_image_resize`:
/// SIMD convolution on x86, Arm and WebAssembly alike, alpha premultiplied while it mixes.
pub(crate) fn resize(
    image: DynamicImage,
    settings: &Settings,
) -> Result<DynamicImage, ConvertError> {
    match target_size((image.width(), image.height()), settings) {
        None => Ok(image),
        Some((size, crop)) => resize_to(image, size, crop, settings.filter),
    }
}

/// `fast_image_resize`'s options for `filter`; with `crop`, the centre of the image with
/// the proportions of the destination fills it (cover).
fn resize_options(crop: bool, filter: Filter) -> ResizeOptions {
    let options = ResizeOptions::new().resize_alg(algorithm(filter));
    if crop {
        options.fit_into_destination(Some((0.5, 0.5)))
    } else {
        options
    }
}

/// Resizes to `size`; with `crop`, the centre of the image with the proportions of `size`
/// fills it (cover), otherwise the whole image is stretched to it.
fn resize_to(
    image: DynamicImage,
    (width, height): (u32, u32),
    crop: bool,
    filter: Filter,
) -> Result<DynamicImage, ConvertError> {
    let options = resize_options(crop, filter);
    // `DynamicImage` is non-exhaustive: a pixel layout added to it later is resized as
    // 16-bit RGBA.
    let source = match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_)
        | DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_)
        | DynamicImage::ImageRgb16(_)
        | DynamicImage::ImageRgba16(_)
        | DynamicImage::ImageRgb32F(_)
        | DynamicImage::ImageRgba32F(_) => image,
        other => DynamicImage::ImageRgba16(other.to_rgba16()),
    };
    let mut resized = DynamicImage::new(width, height, source.color());
    Resizer::new()
        .resize(&source, &mut resized, &options)
        .map_err(|error| ConvertError::internal(format!("cannot resize the image: {error}")))?;
    Ok(resized)
}

/// The largest size with the image's proportions that fits in `w × h` (at least 1×1).
fn contained(width: u32, height: u32, w: u32, h: u32) -> (u32, u32) {
    let ratio = (f64::from(w) / f64::from(width)).min(f64::from(h) / f64::from(height));
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a whole number in 1..=limit"
    )]
    let side = |side: u32, limit: u32| {
        (f64::from(side) * ratio)
            .round()
            .clamp(1.0, f64::from(limit)) as u32
    };
    (side(width, w), side(height, h))
}

/// `side × target / reference`, rounded, at least 1.
fn scaled(side: u32, target: u32, reference: u32) -> u32 {
    let value = (u64::from(side) * u64::from(target) + u64::from(reference) / 2)
        / u64::from(reference.max(1));
    u32::try_from(value.max(1)).unwrap_or(u32::MAX)
}

/// The image without alpha, composited onto `background`; an 8-bit RGB image as it is.
fn flatten(image: &DynamicImage, background: [u8; 3]) -> Cow<'_, RgbImage> {
    if let DynamicImage::ImageRgb8(rgb) = image {
        return Cow::Borrowed(rgb);
    }
    if !image.color().has_alpha() {
        return Cow::Owned(image.to_rgb8());
    }
    let rgba = image.to_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (out, pixel) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u16::from(pixel[3]);
        let blend = |channel: u8, base: u8| {
            let mixed = (u16::from(channel) * alpha + u16::from(base) * (255 - alpha) + 127) / 255;
            u8::try_from(mixed).unwrap_or(u8::MAX)
        };
        *out = Rgb([
            blend(pixel[0], background[0]),
            blend(pixel[1], background[1]),
            blend(pixel[2], background[2]),
        ]);
    }
    Cow::Owned(rgb)
}

fn encode_error(error: ImageError, format: ImageFormat) -> ConvertError {
    match error {
        ImageError::IoError(error) => ConvertError::from(error),
        other => ConvertError::internal(format!("cannot write {}: {other}", name(format))),
    }
}

/// Encodes the image as `format`.
pub(crate) fn encode(
    image: &DynamicImage,
    format: ImageFormat,
    settings: &Settings,
    output: &mut Output<'_>,
) -> Result<(), ConvertError> {
    let failed = |error| encode_error(error, format);
    match format {
        ImageFormat::Jpeg => encode_jpeg(image, settings, output),
        ImageFormat::Png => {
            let compression = match settings.compression {
                Compression::Fast => CompressionType::Fast,
                Compression::Default => CompressionType::Default,
                Compression::Best => CompressionType::Best,
            };
            let mut writer = BufWriter::with_capacity(WRITE_BUFFER, &mut *output);
            let encoder =
                PngEncoder::new_with_quality(&mut writer, compression, PngFilter::Adaptive);
            image.write_with_encoder(encoder).map_err(failed)?;
            Ok(writer.flush()?)
        }
        ImageFormat::WebP => {
            let mut writer = BufWriter::with_capacity(WRITE_BUFFER, &mut *output);
            let encoder = WebPEncoder::new_lossless(&mut writer);
            // 8-bit RGB and RGBA go to the encoder as they are, without a copy.
            if matches!(
                image,
                DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)
            ) {
                image.write_with_encoder(encoder).map_err(failed)?;
            } else if image.color().has_alpha() {
                image
                    .to_rgba8()
                    .write_with_encoder(encoder)
                    .map_err(failed)?;
            } else {
                image
                    .to_rgb8()
                    .write_with_encoder(encoder)
                    .map_err(failed)?;
            }
            Ok(writer.flush()?)
        }
        ImageFormat::Ico => {
            // Icons hold at most 256×256.
            let icon = if image.width() > 256 || image.height() > 256 {
                let size = contained(image.width(), image.height(), 256, 256);
                resize_to(image.clone(), size, false, Filter::Catmullrom)?
            } else {
                image.clone()
            };
            via_buffer(&DynamicImage::ImageRgba8(icon.to_rgba8()), format, output)
        }
        ImageFormat::Gif | ImageFormat::Qoi | ImageFormat::Tga => {
            let converted = if image.color().has_alpha() {
                DynamicImage::ImageRgba8(image.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(image.to_rgb8())
            };
            via_buffer(&converted, format, output)
        }
        ImageFormat::Bmp | ImageFormat::Pnm => {
            let converted = match (image.color().has_alpha(), image.color().channel_count()) {
                (false, 1) => DynamicImage::ImageLuma8(image.to_luma8()),
                (true, _) if format == ImageFormat::Bmp => {
                    DynamicImage::ImageRgba8(image.to_rgba8())
                }
                _ => DynamicImage::ImageRgb8(flatten(image, settings.background).into_owned()),
            };
            via_buffer(&converted, format, output)
        }
        _ => via_buffer(image, format, output),
    }
}

/// Encoders write a few bytes at a time; they go out in chunks of this size.
const WRITE_BUFFER: usize = 64 * 1024;

/// Encodes a JPEG with the `jpeg-encoder` crate (baseline, 4:2:0 chroma below quality 90
/// as libjpeg does, 4:4:4 from 90): integer quantisation, where `image`'s own encoder
/// rounds floats, which a WebAssembly build pays dearly for.
pub(crate) fn encode_jpeg(
    image: &DynamicImage,
    settings: &Settings,
    output: &mut dyn Write,
) -> Result<(), ConvertError> {
    let (width, height) = (u16::try_from(image.width()), u16::try_from(image.height()));
    let (Ok(width), Ok(height)) = (width, height) else {
        return Err(ConvertError::limit(format!(
            "a JPEG is at most 65535 pixels a side; this image is {}×{}: resize it with `width` or `height`",
            image.width(),
            image.height()
        )));
    };
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, output);
    let encoder = jpeg_encoder(&mut writer, settings);
    let result = if image.color().channel_count() <= 2 {
        let luma = image.to_luma8();
        encoder.encode(luma.as_raw(), width, height, jpeg_encoder::ColorType::Luma)
    } else {
        let rgb = flatten(image, settings.background);
        encoder.encode(rgb.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
    };
    result.map_err(jpeg_encode_error)?;
    Ok(writer.flush()?)
}

/// A JPEG encoder with the settings' quality and its chroma subsampling.
fn jpeg_encoder<W: jpeg_encoder::JfifWrite>(
    writer: W,
    settings: &Settings,
) -> jpeg_encoder::Encoder<W> {
    let mut encoder = jpeg_encoder::Encoder::new(writer, settings.quality);
    encoder.set_sampling_factor(if settings.quality >= 90 {
        jpeg_encoder::SamplingFactor::F_1_1
    } else {
        jpeg_encoder::SamplingFactor::F_2_2
    });
    encoder
}

fn jpeg_encode_error(error: jpeg_encoder::EncodingError) -> ConvertError {
    match error {
        jpeg_encoder::EncodingError::IoError(error) => ConvertError::from(error),
        other => ConvertError::internal(format!("cannot write JPEG: {other}")),
    }
}

/// Encoders that need to seek write to memory first.
fn via_buffer(
    image: &DynamicImage,
    format: ImageFormat,
    output: &mut Output<'_>,
) -> Result<(), ConvertError> {
    let mut buffer = Cursor::new(Vec::new());
    image
        .write_to(&mut buffer, format)
        .map_err(|error| encode_error(error, format))?;
    output.write_all(buffer.get_ref())?;
    Ok(())
}
