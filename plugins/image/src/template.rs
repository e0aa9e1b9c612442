//! Example files: a small colour gradient with a transparent corner, in every format.

use std::io::Write;

use image::{DynamicImage, Rgba, RgbaImage};
use metamorph_plugin_api::{ConvertError, Output};

use crate::options::{Compression, Filter, Fit, Settings};
use crate::pipeline;

/// A 64×48 example image of `format`.
pub(crate) fn make(format: &str) -> Result<Vec<u8>, ConvertError> {
    let target = pipeline::format(format)?;
    let image = RgbaImage::from_fn(64, 48, |x, y| {
        let alpha = if x < 12 && y < 12 { 0 } else { 255 };
        let channel = |value: u32, range: u32| u8::try_from(value * 255 / range).unwrap_or(u8::MAX);
        Rgba([channel(x, 63), channel(y, 47), channel(127, 255), alpha])
    });
    let settings = Settings {
        width: None,
        height: None,
        fit: Fit::Contain,
        filter: Filter::Catmullrom,
        auto_orient: false,
        quality: 85,
        background: [255, 255, 255],
        compression: Compression::Best,
    };
    let mut output = Output::memory();
    pipeline::encode(
        &DynamicImage::ImageRgba8(image),
        target,
        &settings,
        &mut output,
    )?;
    output.flush()?;
    Ok(output.into_bytes())
}
