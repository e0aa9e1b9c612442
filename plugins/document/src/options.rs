//! The options of each pair. Their doc comments are the documentation clients see.
//!
//! Types whose defaults are not the zero values implement [`Default`] by hand: the SDK
//! answers an empty options object with `Default::default()`, and the JSON Schema shows the
//! same defaults.

use metamorph_plugin_api::ConvertError;
use schemars::JsonSchema;
use serde::Deserialize;

/// Options of md → html.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HtmlOptions {
    /// Make a complete HTML page (doctype, head, title and a small readable stylesheet);
    /// `false` gives only the HTML of the content, to embed in another page.
    pub standalone: bool,
    /// The page's title (complete pages only). By default the text of the first heading, or
    /// "Document" when there is none.
    pub title: Option<String>,
    /// Pass HTML written inside the Markdown through, as CommonMark does. `false` escapes it so
    /// that it shows as text: use it for Markdown from people you do not trust.
    pub raw_html: bool,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        Self {
            standalone: true,
            title: None,
            raw_html: true,
        }
    }
}

/// The size of the pages made of images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImagePageSize {
    /// The image's own size at its resolution, plus the margins.
    #[default]
    Fit,
    /// ISO A4 (210 × 297 mm), turned to landscape for landscape images.
    A4,
    /// US Letter (8.5 × 11 in), turned to landscape for landscape images.
    Letter,
}

/// Options of png → pdf and jpg → pdf.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImageOptions {
    /// The page size. On A4 and Letter pages an image larger than the space inside the
    /// margins is scaled down to fit; a smaller one keeps its size. Either is centred.
    pub page_size: ImagePageSize,
    /// The blank margin around the image, in points (1/72 in).
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub margin: f64,
    /// The image's resolution in pixels per inch, which sets its printed size. By default the
    /// resolution the file records, or 72 (one pixel per point).
    #[schemars(range(min = 1.0, max = 10000.0))]
    pub dpi: Option<f64>,
}

/// The paper size of laid-out text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaperSize {
    /// ISO A4 (210 × 297 mm).
    #[default]
    A4,
    /// US Letter (8.5 × 11 in).
    Letter,
}

/// The typeface of plain text laid out as PDF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TextFont {
    /// Courier: keeps the columns, indentation and ASCII art of plain text.
    #[default]
    Monospace,
    /// Helvetica: reads better for prose.
    Sans,
}

/// Options of txt → pdf.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TextPdfOptions {
    /// The paper size.
    pub page_size: PaperSize,
    /// The font size, in points.
    #[schemars(range(min = 4.0, max = 72.0))]
    pub font_size: f64,
    /// The margin on each side of the page, in points (1/72 in).
    #[schemars(range(min = 0.0, max = 200.0))]
    pub margin: f64,
    /// The typeface. Characters outside Latin-1 (Windows-1252) are replaced: accented
    /// letters by their base letter where one exists, typographic symbols by ASCII
    /// look-alikes, anything else by `?`.
    pub font: TextFont,
}

impl Default for TextPdfOptions {
    fn default() -> Self {
        Self {
            page_size: PaperSize::A4,
            font_size: DEFAULT_FONT_SIZE,
            margin: DEFAULT_MARGIN,
            font: TextFont::Monospace,
        }
    }
}

/// Options of md → pdf.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MarkdownPdfOptions {
    /// The paper size.
    pub page_size: PaperSize,
    /// The size of body text, in points; headings are larger. Characters outside Latin-1
    /// (Windows-1252) are replaced: accented letters by their base letter where one exists,
    /// typographic symbols by ASCII look-alikes, anything else by `?`.
    #[schemars(range(min = 4.0, max = 72.0))]
    pub font_size: f64,
    /// The margin on each side of the page, in points (1/72 in).
    #[schemars(range(min = 0.0, max = 200.0))]
    pub margin: f64,
}

impl Default for MarkdownPdfOptions {
    fn default() -> Self {
        Self {
            page_size: PaperSize::A4,
            font_size: DEFAULT_FONT_SIZE,
            margin: DEFAULT_MARGIN,
        }
    }
}

/// Options of pdf → pdf: give exactly one of `pages` and `remove`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PageOptions {
    /// The pages to keep, numbered from 1: single pages and ranges separated by commas, such
    /// as `1-3,5,8-` (`8-` runs to the last page, `-3` from the first). The kept pages stay
    /// in the document's order.
    pub pages: Option<String>,
    /// The pages to drop, in the same notation as `pages`.
    pub remove: Option<String>,
}

/// Options of pdf → txt.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ExtractOptions {
    /// Only these pages, numbered from 1, such as `1-3,5,8-`; every page by default.
    pub pages: Option<String>,
}

/// The default font size of laid-out text, in points.
pub const DEFAULT_FONT_SIZE: f64 = 11.0;
/// The default page margin of laid-out text, in points (2 cm).
pub const DEFAULT_MARGIN: f64 = 56.7;

/// Checks that the number option `name` is finite and within `min..=max`.
pub fn check_range(name: &str, value: f64, min: f64, max: f64) -> Result<f64, ConvertError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConvertError::invalid_options(format!(
            "`{name}` is {min} to {max}, not {value}"
        )))
    }
}
