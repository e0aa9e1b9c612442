//! Options, by target format: each target's schema lists only the options that apply to
//! it, so that in a planned chain each option reaches the step it belongs to.

use schemars::JsonSchema;
use serde::Deserialize;

/// How the image fills `width` × `height` when both are given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Fit {
    /// Scale to fit inside the box, keeping the aspect ratio (default).
    #[default]
    Contain,
    /// Scale to cover the box, keeping the aspect ratio, and crop what overflows.
    Cover,
    /// Stretch to exactly the box.
    Fill,
}

/// The resampling filter used when resizing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Filter {
    /// Nearest neighbour: fastest, blocky.
    Nearest,
    /// Linear: fast.
    Triangle,
    /// Catmull-Rom cubic: sharp and fast enough (default).
    #[default]
    Catmullrom,
    /// Lanczos with window 3: sharpest, slowest.
    Lanczos3,
}

/// PNG compression effort.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Compression {
    /// Fastest, larger files (default).
    #[default]
    Fast,
    /// Balanced.
    Default,
    /// Smallest files, slowest.
    Best,
}

/// Declares an options type for a group of targets: the shared resizing fields plus the
/// target's own.
macro_rules! target_options {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Deserialize, JsonSchema)]
        #[serde(default, deny_unknown_fields)]
        pub(crate) struct $name {
            /// Width in pixels to resize to. With only `width` (or only `height`), the
            /// other follows the aspect ratio.
            #[schemars(range(min = 1, max = 30000))]
            pub(crate) width: Option<u32>,
            /// Height in pixels to resize to.
            #[schemars(range(min = 1, max = 30000))]
            pub(crate) height: Option<u32>,
            /// How the image fills `width` × `height` when both are given.
            pub(crate) fit: Fit,
            /// The resampling filter.
            pub(crate) filter: Filter,
            /// Apply the EXIF orientation of the source (rotate or flip as the camera
            /// recorded), so the output looks upright. Default true.
            pub(crate) auto_orient: Option<bool>,
            $($(#[$field_meta])* pub(crate) $field: $ty,)*
        }
    };
}

target_options!(
    /// Options when writing JPEG.
    JpegOptions {
        /// JPEG quality, 1 (smallest) to 100 (best). Default 85.
        #[schemars(range(min = 1, max = 100))]
        quality: Option<u8>,
        /// Colour that transparent pixels are flattened onto, as `#rrggbb`. Default `#ffffff`.
        #[schemars(regex(pattern = r"^#[0-9a-fA-F]{6}$"))]
        background: Option<String>,
    }
);

target_options!(
    /// Options when writing PNG.
    PngOptions {
        /// Compression effort: `fast` (default), `default` or `best`.
        compression: Compression,
    }
);

target_options!(
    /// Options when writing WebP.
    WebpOptions {
        /// WebP is written lossless (the only mode this plugin encodes); `false` is refused.
        lossless: Option<bool>,
    }
);

target_options!(
    /// Options when writing GIF, BMP, TIFF, ICO, TGA, QOI or PNM.
    BasicOptions {}
);

/// What a conversion does, whatever the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Resize width.
    pub(crate) width: Option<u32>,
    /// Resize height.
    pub(crate) height: Option<u32>,
    /// Box fitting.
    pub(crate) fit: Fit,
    /// Resampling filter.
    pub(crate) filter: Filter,
    /// Apply EXIF orientation.
    pub(crate) auto_orient: bool,
    /// JPEG quality.
    pub(crate) quality: u8,
    /// Background for flattening, RGB.
    pub(crate) background: [u8; 3],
    /// PNG compression.
    pub(crate) compression: Compression,
}

/// Parses `#rrggbb`.
pub(crate) fn parse_colour(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#')?;
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let channel = |range: std::ops::Range<usize>| u8::from_str_radix(hex.get(range)?, 16).ok();
    Some([channel(0..2)?, channel(2..4)?, channel(4..6)?])
}
