//! Small example files of the formats the plugin knows.

use metamorph_plugin_api::ConvertError;

use crate::options::{HtmlOptions, MarkdownPdfOptions};
use crate::{markdown, text_pdf};

/// The example Markdown document, also the source of the HTML and PDF examples.
const MARKDOWN: &str = "\
# Example document

This is a *small* example with **bold** text, `code` and a [link](https://example.org).

- a bulleted list
- [x] a finished task

```
fn main() {}
```
";

/// The example plain text.
const TEXT: &str = "Example text\n\nThis is a small plain text file.\n";

/// A small valid file of `format`.
pub(crate) fn example(format: &str) -> Result<Vec<u8>, ConvertError> {
    match format {
        "md" => Ok(MARKDOWN.as_bytes().to_vec()),
        "txt" => Ok(TEXT.as_bytes().to_vec()),
        "html" => markdown::to_html(MARKDOWN, &HtmlOptions::default()),
        "pdf" => {
            let mut pdf = Vec::new();
            text_pdf::markdown_to_pdf(MARKDOWN, &MarkdownPdfOptions::default(), &mut pdf)?;
            Ok(pdf)
        }
        other => Err(ConvertError::unsupported(format!(
            "no template of `{other}`"
        ))),
    }
}
