//! Metamorph's image converter: png, jpg, gif, webp, bmp, tif, ico, tga, qoi and pnm, in
//! every direction, with resizing, JPEG quality, PNG compression, alpha flattening onto a
//! background colour, and the EXIF orientation applied.
//!
//! Decoding is bounded: images wider or taller than [`MAX_SIDE`] or whose pixels would take
//! more than [`MAX_ALLOC`] are refused before their pixels are allocated, so a
//! decompression bomb costs nothing. Animated inputs (GIF, APNG, WebP) give their first
//! frame. WebP is written lossless.

mod options;
mod pipeline;
mod template;

use metamorph_plugin_api::{ConvertError, Converter, Input, Output, PluginInfo, Request};

use options::{BasicOptions, JpegOptions, PngOptions, WebpOptions};

/// Widest or tallest image accepted, in pixels.
pub const MAX_SIDE: u32 = 30_000;
/// Most memory the decoded pixels of one image may take.
pub const MAX_ALLOC: u64 = 768 * 1024 * 1024;

/// Every format read and written.
pub const FORMATS: [&str; 10] = [
    "png", "jpg", "gif", "webp", "bmp", "tif", "ico", "tga", "qoi", "pnm",
];

/// Relative cost of decoding a format (a 2-megapixel image, roughly milliseconds).
fn decode_cost(format: &str) -> u32 {
    match format {
        "png" | "webp" => 15,
        "jpg" => 12,
        "gif" | "tif" => 10,
        _ => 5,
    }
}

/// Relative cost of encoding a format.
fn encode_cost(format: &str) -> u32 {
    match format {
        "webp" => 45,
        "gif" => 40,
        "png" => 25,
        "jpg" => 20,
        "tif" => 10,
        _ => 5,
    }
}

/// The image plugin.
pub struct ImagePlugin;

impl Converter for ImagePlugin {
    fn describe() -> PluginInfo {
        // Built natively (feature `native`, for benchmarks against the sandbox) it takes
        // another name, so both can be installed side by side.
        let name = if cfg!(feature = "native") {
            "image-native"
        } else {
            "image"
        };
        let mut info = PluginInfo::new(name, env!("CARGO_PKG_VERSION"))
            .description("Raster images: png, jpg, gif, webp, bmp, tif, ico, tga, qoi and pnm, in every direction")
            .options::<BasicOptions>();
        for source in FORMATS {
            for target in FORMATS {
                let cost = decode_cost(source) + encode_cost(target);
                info = match target {
                    "jpg" => info.convert_with::<JpegOptions>(source, target, cost),
                    "png" => info.convert_with::<PngOptions>(source, target, cost),
                    "webp" => info.convert_with::<WebpOptions>(source, target, cost),
                    _ => info.convert_with::<BasicOptions>(source, target, cost),
                };
            }
        }
        for format in FORMATS {
            info = info.template(format);
        }
        info
    }

    fn convert(
        request: &Request,
        input: &mut Input,
        output: &mut Output<'_>,
    ) -> Result<(), ConvertError> {
        let source = pipeline::format(&request.source)?;
        let target = pipeline::format(&request.target)?;
        let settings = pipeline::settings(request, target)?;
        pipeline::convert(input, source, target, &settings, output)
    }

    fn template(format: &str) -> Result<Vec<u8>, ConvertError> {
        template::make(format)
    }
}

metamorph_plugin_api::export_plugin!(ImagePlugin);
#[cfg(feature = "native")]
metamorph_plugin_api::export_native_plugin!(ImagePlugin);

#[cfg(test)]
mod tests;
