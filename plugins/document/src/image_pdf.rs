//! png → pdf and jpg → pdf: one page showing the image.
//!
//! A JPEG is embedded as it is (`DCTDecode`, no re-encoding), with its EXIF orientation
//! applied by the page's transformation and its ICC profile kept. A PNG is decoded and
//! embedded Flate-compressed at 8 bits per component, its alpha channel as a soft mask and
//! its ICC profile kept; an animated PNG gives its first frame.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use lopdf::{Dictionary, Object, Stream};
use metamorph_plugin_api::{ConvertError, Input};
use png::{ColorType, DecodingError, Transformations, Unit};

use crate::jpeg::{self, icc_matches};
use crate::options::{ImageOptions, ImagePageSize, check_range};
use crate::pdf::{MAX_PAGE_SIDE, PdfWriter};
use crate::{MAX_PIXELS, MAX_SIDE};

/// An image ready to be placed: its XObject and how it is drawn.
struct PreparedImage {
    /// The image XObject, without its colour space.
    xobject: Stream,
    color_space: ColorSpace,
    soft_mask: Option<Stream>,
    /// Size in pixels as shown (after the orientation is applied).
    width: u32,
    height: u32,
    /// Pixels per inch, horizontal and vertical, as shown.
    density: Option<(f64, f64)>,
    /// EXIF orientation, 1 to 8.
    orientation: u8,
}

/// Refuses images past the size limits.
fn check_size(width: u32, height: u32) -> Result<(), ConvertError> {
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ConvertError::limit(format!(
            "the image is {width}×{height} pixels; at most {MAX_SIDE}×{MAX_SIDE} are accepted"
        )));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ConvertError::limit(format!(
            "the image has {} megapixels; at most {} are accepted",
            u64::from(width) * u64::from(height) / 1_000_000,
            MAX_PIXELS / 1_000_000
        )));
    }
    Ok(())
}

/// jpg → pdf.
pub(crate) fn jpeg_to_pdf(
    mut bytes: Vec<u8>,
    options: &ImageOptions,
    out: &mut dyn Write,
) -> Result<(), ConvertError> {
    let info = jpeg::parse(&bytes)?;
    check_size(info.width, info.height)?;
    let mut dictionary = Dictionary::new();
    dictionary.set("Type", "XObject");
    dictionary.set("Subtype", "Image");
    dictionary.set("Width", info.width);
    dictionary.set("Height", info.height);
    dictionary.set("BitsPerComponent", 8);
    dictionary.set("Filter", "DCTDecode");
    let device = match info.components {
        1 => "DeviceGray",
        3 => "DeviceRGB",
        _ => "DeviceCMYK",
    };
    if info.components == 4 && info.adobe {
        let decode = [1, 0, 1, 0, 1, 0, 1, 0].map(Object::Integer);
        dictionary.set("Decode", decode.to_vec());
    }
    // Only the first image of the file: MPO files carry more after the first end marker.
    bytes.truncate(info.end);
    let swapped = info.orientation >= 5;
    let image = PreparedImage {
        xobject: Stream::new(dictionary, bytes).with_compression(false),
        color_space: ColorSpace::new(device, info.components, info.icc_profile),
        soft_mask: None,
        width: if swapped { info.height } else { info.width },
        height: if swapped { info.width } else { info.height },
        density: info
            .density
            .map(|(x, y)| if swapped { (y, x) } else { (x, y) }),
        orientation: info.orientation,
    };
    image_page(image, options, out)
}

/// An image's colour space: a device space, ICC-based when the file has a suitable profile.
struct ColorSpace {
    device: &'static str,
    components: u8,
    profile: Option<Vec<u8>>,
}

impl ColorSpace {
    fn new(device: &'static str, components: u8, profile: Option<Vec<u8>>) -> Self {
        let profile = profile.filter(|profile| icc_matches(profile, components));
        Self {
            device,
            components,
            profile,
        }
    }

    /// The colour space object, adding the profile's stream to `writer`.
    fn object(self, writer: &mut PdfWriter) -> Object {
        let Some(profile) = self.profile else {
            return self.device.into();
        };
        let mut dictionary = Dictionary::new();
        dictionary.set("N", self.components);
        dictionary.set("Alternate", self.device);
        let mut stream = Stream::new(dictionary, profile);
        // Profiles compress well; a failure only leaves this one uncompressed.
        let _ = stream.compress();
        Object::Array(vec!["ICCBased".into(), writer.add(stream).into()])
    }
}

/// The error for a PNG the decoder refused.
fn png_error(error: DecodingError) -> ConvertError {
    match error {
        DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ConvertError::malformed("the PNG is truncated: its data ends early")
        }
        DecodingError::IoError(io) => {
            ConvertError::internal(format!("reading the PNG failed: {io}"))
        }
        DecodingError::Format(format) => {
            ConvertError::malformed(format!("the PNG is corrupt: {format}"))
        }
        DecodingError::LimitsExceeded => ConvertError::limit(format!(
            "the PNG needs more memory to decode than the {} MiB allowed",
            png_memory_limit() / 1024 / 1024
        )),
        DecodingError::Parameter(parameter) => {
            ConvertError::internal(format!("the PNG decoder was misused: {parameter}"))
        }
    }
}

/// The decoder's memory budget: the largest accepted image, 16 bits per component with
/// alpha, plus room for its chunks.
fn png_memory_limit() -> usize {
    usize::try_from(MAX_PIXELS * 4 + 64 * 1024 * 1024).unwrap_or(usize::MAX)
}

/// png → pdf.
pub(crate) fn png_to_pdf(
    input: &Input,
    options: &ImageOptions,
    out: &mut dyn Write,
) -> Result<(), ConvertError> {
    let reader = input.reader()?;
    let mut decoder = png::Decoder::new_with_limits(
        reader,
        png::Limits {
            bytes: png_memory_limit(),
        },
    );
    decoder.set_transformations(Transformations::normalize_to_color8());
    let header = decoder.read_header_info().map_err(png_error)?;
    check_size(header.width, header.height)?;
    let mut reader = decoder.read_info().map_err(png_error)?;
    let buffer_size = reader
        .output_buffer_size()
        .ok_or_else(|| ConvertError::limit("the PNG is too large to decode"))?;
    let mut pixels = vec![0; buffer_size];
    let frame = reader.next_frame(&mut pixels).map_err(png_error)?;
    let info = reader.info();
    let density = info.pixel_dims.and_then(|dims| match dims.unit {
        Unit::Meter if dims.xppu > 0 && dims.yppu > 0 => {
            Some((f64::from(dims.xppu) * 0.0254, f64::from(dims.yppu) * 0.0254))
        }
        _ => None,
    });
    let icc_profile = info.icc_profile.as_ref().map(|profile| profile.to_vec());
    let (width, height) = (frame.width, frame.height);
    let (colors, has_alpha, device): (u8, bool, &'static str) = match frame.color_type {
        ColorType::Grayscale => (1, false, "DeviceGray"),
        ColorType::GrayscaleAlpha => (1, true, "DeviceGray"),
        ColorType::Rgb => (3, false, "DeviceRGB"),
        ColorType::Rgba => (3, true, "DeviceRGB"),
        ColorType::Indexed => {
            return Err(ConvertError::internal("the PNG palette was not expanded"));
        }
    };
    let used = pixels.get(..frame.buffer_size()).unwrap_or(&pixels);
    let (color, alpha) = split_channels(used, usize::from(colors), has_alpha)?;
    // The decoded pixels are the largest allocation: gone before the PDF is built.
    drop(pixels);

    let mut dictionary = image_dictionary(width, height);
    dictionary.set("Filter", "FlateDecode");
    let soft_mask = alpha.map(|alpha| {
        let mut mask = image_dictionary(width, height);
        mask.set("ColorSpace", "DeviceGray");
        mask.set("Filter", "FlateDecode");
        Stream::new(mask, alpha).with_compression(false)
    });
    let image = PreparedImage {
        xobject: Stream::new(dictionary, color).with_compression(false),
        color_space: ColorSpace::new(device, colors, icc_profile),
        soft_mask,
        width,
        height,
        density,
        orientation: 1,
    };
    image_page(image, options, out)
}

fn image_dictionary(width: u32, height: u32) -> Dictionary {
    let mut dictionary = Dictionary::new();
    dictionary.set("Type", "XObject");
    dictionary.set("Subtype", "Image");
    dictionary.set("Width", width);
    dictionary.set("Height", height);
    dictionary.set("BitsPerComponent", 8);
    dictionary
}

/// Splits 8-bit pixels into the zlib-compressed colour samples and, when the image has an
/// alpha channel that is not fully opaque, the compressed alpha samples.
fn split_channels(
    pixels: &[u8],
    colors: usize,
    has_alpha: bool,
) -> Result<(Vec<u8>, Option<Vec<u8>>), ConvertError> {
    let failed =
        |error: std::io::Error| ConvertError::internal(format!("compressing failed: {error}"));
    if !has_alpha {
        return Ok((deflate(pixels).map_err(failed)?, None));
    }
    let stride = colors + 1;
    let pixel_count = pixels.len() / stride;
    let mut color = ZlibEncoder::new(
        Vec::with_capacity(compressed_bound(pixel_count * colors)),
        Compression::default(),
    );
    let mut alpha = ZlibEncoder::new(
        Vec::with_capacity(compressed_bound(pixel_count)),
        Compression::default(),
    );
    let mut opaque = true;
    // Work through the pixels in blocks so that the extra memory stays small.
    let mut color_block = Vec::with_capacity(64 * 1024 * colors);
    let mut alpha_block = Vec::with_capacity(64 * 1024);
    for block in pixels.chunks(64 * 1024 * stride) {
        color_block.clear();
        alpha_block.clear();
        for pixel in block.chunks_exact(stride) {
            let (samples, coverage) = pixel.split_at(colors);
            color_block.extend_from_slice(samples);
            alpha_block.extend_from_slice(coverage);
        }
        opaque &= alpha_block.iter().all(|&value| value == 0xFF);
        color.write_all(&color_block).map_err(failed)?;
        alpha.write_all(&alpha_block).map_err(failed)?;
    }
    let color = shrink(color.finish().map_err(failed)?);
    if opaque {
        return Ok((color, None));
    }
    Ok((color, Some(shrink(alpha.finish().map_err(failed)?))))
}

fn deflate(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(compressed_bound(data.len())),
        Compression::default(),
    );
    encoder.write_all(data)?;
    encoder.finish().map(shrink)
}

/// Room for `length` bytes once deflated, even if they do not compress. Reserving it up
/// front means the buffer never grows by reallocation, which in WebAssembly's linear memory
/// would need the old and the new buffer at once.
fn compressed_bound(length: usize) -> usize {
    length + length / 100 + 64 * 1024
}

fn shrink(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.shrink_to_fit();
    bytes
}

/// Where an image goes on its page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placement {
    /// Page width and height, in points.
    pub(crate) page: (f64, f64),
    /// The image's lower-left corner and size on the page, in points.
    pub(crate) origin: (f64, f64),
    pub(crate) size: (f64, f64),
}

/// Lays out an image of `width` × `height` pixels at `density` pixels per inch.
pub(crate) fn place(
    width: u32,
    height: u32,
    density: (f64, f64),
    options: &ImageOptions,
) -> Result<Placement, ConvertError> {
    let margin = check_range("margin", options.margin, 0.0, 1000.0)?;
    let natural = (
        f64::from(width) * 72.0 / density.0,
        f64::from(height) * 72.0 / density.1,
    );
    let paper = match options.page_size {
        ImagePageSize::Fit => None,
        ImagePageSize::A4 => Some((595.276, 841.89)),
        ImagePageSize::Letter => Some((612.0, 792.0)),
    };
    let Some((short, long)) = paper else {
        // The page is the image plus margins, scaled down only past what readers accept.
        let largest = natural.0.max(natural.1) + 2.0 * margin;
        let scale = (MAX_PAGE_SIDE / largest).min(1.0);
        let size = (natural.0 * scale, natural.1 * scale);
        let margin = margin * scale;
        return Ok(Placement {
            page: (size.0 + 2.0 * margin, size.1 + 2.0 * margin),
            origin: (margin, margin),
            size,
        });
    };
    let page = if natural.0 > natural.1 {
        (long, short)
    } else {
        (short, long)
    };
    let available = (page.0 - 2.0 * margin, page.1 - 2.0 * margin);
    if available.0 < 1.0 || available.1 < 1.0 {
        return Err(ConvertError::invalid_options(format!(
            "a margin of {margin} points leaves no room for the image on the page"
        )));
    }
    let scale = (available.0 / natural.0)
        .min(available.1 / natural.1)
        .min(1.0);
    let size = (natural.0 * scale, natural.1 * scale);
    Ok(Placement {
        page,
        origin: ((page.0 - size.0) / 2.0, (page.1 - size.1) / 2.0),
        size,
    })
}

/// The transformation that draws the unit square of an image stored with EXIF
/// `orientation` upright into the box at `origin` of `size` (as shown).
pub(crate) fn image_matrix(orientation: u8, origin: (f64, f64), size: (f64, f64)) -> [f64; 6] {
    let ((x, y), (w, h)) = (origin, size);
    match orientation {
        2 => [-w, 0.0, 0.0, h, x + w, y],
        3 => [-w, 0.0, 0.0, -h, x + w, y + h],
        4 => [w, 0.0, 0.0, -h, x, y + h],
        5 => [0.0, -h, -w, 0.0, x + w, y + h],
        6 => [0.0, -h, w, 0.0, x, y + h],
        7 => [0.0, h, w, 0.0, x, y],
        8 => [0.0, h, -w, 0.0, x + w, y],
        _ => [w, 0.0, 0.0, h, x, y],
    }
}

/// The one-page PDF of `image`.
fn image_page(
    image: PreparedImage,
    options: &ImageOptions,
    out: &mut dyn Write,
) -> Result<(), ConvertError> {
    let density = match options.dpi {
        Some(dpi) => {
            let dpi = check_range("dpi", dpi, 1.0, 10_000.0)?;
            (dpi, dpi)
        }
        None => image.density.unwrap_or((72.0, 72.0)),
    };
    let placement = place(image.width, image.height, density, options)?;
    let mut writer = PdfWriter::new("1.4");
    let mut xobject = image.xobject;
    xobject
        .dict
        .set("ColorSpace", image.color_space.object(&mut writer));
    if let Some(mask) = image.soft_mask {
        let mask_id = writer.add(mask);
        xobject.dict.set("SMask", mask_id);
    }
    let image_id = writer.add(xobject);
    let mut xobjects = Dictionary::new();
    xobjects.set("Im0", image_id);
    let mut resources = Dictionary::new();
    resources.set("XObject", xobjects);
    let matrix = image_matrix(image.orientation, placement.origin, placement.size);
    let operands: Vec<String> = matrix.iter().map(|value| format_real(*value)).collect();
    let content = format!("q {} cm /Im0 Do Q\n", operands.join(" "));
    writer.add_page(
        placement.page.0,
        placement.page.1,
        content.into_bytes(),
        Object::Dictionary(resources),
    )?;
    writer.finish(None, out)
}

/// A real number for a content stream: at most three decimals, no exponent.
fn format_real(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}
