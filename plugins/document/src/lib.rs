//! Metamorph's document converter.
//!
//! | pair | what it does |
//! | --- | --- |
//! | md → html | CommonMark with GitHub tables, strikethrough, task lists and smart punctuation, as a complete page or a fragment |
//! | png → pdf, jpg → pdf | one page per image; JPEG embedded as-is (no re-encoding), PNG losslessly with its alpha channel |
//! | pdf → pdf | keeps or removes pages by ranges such as `1-3,5,8-` |
//! | pdf → txt | the text of each page, pages separated by form feeds |
//! | txt → pdf, md → pdf | text laid out on A4 or Letter with the standard PDF fonts (nothing embedded) |
//!
//! Only PNG and JPEG images are accepted for PDF pages: the host reaches PDF from other image
//! formats by chaining the image plugin (for example tif → png → pdf).
//!
//! Every input is bounded: images wider or taller than [`MAX_SIDE`] pixels or with more than
//! [`MAX_PIXELS`] pixels are refused before their pixels are decoded, PDF streams may not
//! inflate past [`MAX_STREAM_BYTES`], and text extraction stops after
//! [`extract::MAX_OPERATIONS`] content operations.

mod decode;
mod extract;
mod fonts;
mod image_pdf;
mod jpeg;
mod layout;
mod markdown;
pub mod options;
mod pages;
mod pdf;
mod template;
mod text_pdf;

#[cfg(test)]
mod tests;

use std::io::Write;

use metamorph_plugin_api::{ConvertError, Converter, Input, Output, PluginInfo, Request};

use options::{
    ExtractOptions, HtmlOptions, ImageOptions, MarkdownPdfOptions, PageOptions, TextPdfOptions,
};

/// Widest or tallest image accepted, in pixels.
pub const MAX_SIDE: u32 = 20_000;
/// Most pixels an image may have (50 megapixels).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Most bytes one PDF stream may inflate to while a PDF is read.
pub const MAX_STREAM_BYTES: usize = 128 * 1024 * 1024;

/// The formats of which [`DocumentPlugin::template`] makes examples.
pub const TEMPLATES: [&str; 4] = ["pdf", "html", "md", "txt"];

/// The document plugin.
pub struct DocumentPlugin;

impl Converter for DocumentPlugin {
    fn describe() -> PluginInfo {
        let mut info = PluginInfo::new("document", env!("CARGO_PKG_VERSION"))
            .description(
                "Documents: Markdown to HTML and PDF, text to PDF, PNG and JPEG to PDF, PDF page \
                 selection and PDF text extraction",
            )
            .options::<HtmlOptions>()
            .convert_with::<HtmlOptions>("md", "html", 2)
            .convert_with::<MarkdownPdfOptions>("md", "pdf", 20)
            .convert_with::<TextPdfOptions>("txt", "pdf", 15)
            // A JPEG is embedded as it is, yet priced above a PNG: the planner then reaches PDF
            // from other image formats through a lossless PNG (tif → png → pdf) rather than a
            // JPEG re-encoding, while a JPEG source still goes straight to PDF.
            .convert_with::<ImageOptions>("jpg", "pdf", 20)
            .convert_with::<ImageOptions>("png", "pdf", 10)
            .convert_with::<PageOptions>("pdf", "pdf", 30)
            .convert_with::<ExtractOptions>("pdf", "txt", 40);
        for format in TEMPLATES {
            info = info.template(format);
        }
        info
    }

    fn convert(
        request: &Request,
        input: &mut Input,
        output: &mut Output<'_>,
    ) -> Result<(), ConvertError> {
        match request.pair() {
            ("md", "html") => {
                let html = markdown::to_html(&input.read_text()?, &request.options()?)?;
                output.write_all(&html)?;
            }
            ("md", "pdf") => {
                text_pdf::markdown_to_pdf(&input.read_text()?, &request.options()?, output)?;
            }
            ("txt", "pdf") => {
                text_pdf::text_to_pdf(&input.read_text()?, &request.options()?, output)?;
            }
            ("jpg", "pdf") => {
                image_pdf::jpeg_to_pdf(input.read_all()?, &request.options()?, output)?;
            }
            ("png", "pdf") => {
                image_pdf::png_to_pdf(input, &request.options()?, output)?;
            }
            ("pdf", "pdf") => {
                let options: PageOptions = request.options()?;
                pages::select(pdf::load(&input.read_all()?)?, &options, output)?;
            }
            ("pdf", "txt") => {
                let options: ExtractOptions = request.options()?;
                let text = extract::to_text(&pdf::load(&input.read_all()?)?, &options)?;
                output.write_all(&text)?;
            }
            (source, target) => {
                return Err(ConvertError::unsupported(format!(
                    "the document plugin does not convert {source} to {target}"
                )));
            }
        }
        output.flush()?;
        Ok(())
    }

    fn template(format: &str) -> Result<Vec<u8>, ConvertError> {
        template::example(format)
    }
}

metamorph_plugin_api::export_plugin!(DocumentPlugin);
