//! Markdown: to HTML with pulldown-cmark, and the parsing shared with Markdown to PDF.

use std::fmt::Write as _;

use metamorph_plugin_api::ConvertError;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::options::HtmlOptions;

/// The Markdown dialect: CommonMark with GitHub's tables, strikethrough and task lists, and
/// smart punctuation (curly quotes, dashes, ellipses).
pub(crate) fn parser(source: &str) -> Parser<'_> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_SMART_PUNCTUATION;
    Parser::new_ext(strip_bom(source), options)
}

/// `text` without a leading byte order mark.
pub(crate) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// The plain text of the first heading, if any.
pub(crate) fn first_heading(source: &str) -> Option<String> {
    let mut heading: Option<String> = None;
    for event in parser(source) {
        match (&mut heading, event) {
            (None, Event::Start(Tag::Heading { .. })) => heading = Some(String::new()),
            (Some(text), Event::Text(part) | Event::Code(part)) => text.push_str(&part),
            (Some(text), Event::SoftBreak | Event::HardBreak) => text.push(' '),
            (Some(text), Event::End(TagEnd::Heading(_))) => {
                let text = text.trim();
                if !text.is_empty() {
                    return Some(text.to_owned());
                }
                heading = None;
            }
            _ => {}
        }
    }
    None
}

/// md → html.
pub(crate) fn to_html(source: &str, options: &HtmlOptions) -> Result<Vec<u8>, ConvertError> {
    let mut body = String::with_capacity(source.len() * 3 / 2);
    let raw_html = options.raw_html;
    let events = parser(source).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) if !raw_html => Event::Text(html),
        other => other,
    });
    pulldown_cmark::html::push_html(&mut body, events);
    if !options.standalone {
        return Ok(body.into_bytes());
    }
    let title = options
        .title
        .clone()
        .or_else(|| first_heading(source))
        .unwrap_or_else(|| "Document".to_owned());
    let mut page = String::with_capacity(body.len() + STYLESHEET.len() + 256);
    page.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(page, "<title>{}</title>", escape_html(&title));
    let _ = writeln!(page, "<style>\n{STYLESHEET}</style>");
    page.push_str("</head>\n<body>\n<main>\n");
    page.push_str(&body);
    page.push_str("</main>\n</body>\n</html>\n");
    Ok(page.into_bytes())
}

/// `text` safe inside HTML text and attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The stylesheet of complete pages: readable line length and spacing, light and dark.
const STYLESHEET: &str = "\
:root { color-scheme: light dark; }
body { margin: 0; padding: 2rem 1rem; font: 16px/1.6 system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif; }
main { max-width: 46rem; margin: 0 auto; }
h1, h2, h3, h4, h5, h6 { line-height: 1.25; margin: 1.6em 0 0.6em; }
h1 { font-size: 2em; } h2 { font-size: 1.5em; } h3 { font-size: 1.25em; }
a { color: #0b63c5; }
img { max-width: 100%; height: auto; }
pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; }
code { background: rgba(127, 127, 127, 0.15); padding: 0.1em 0.3em; border-radius: 3px; }
pre { background: rgba(127, 127, 127, 0.12); padding: 0.8em 1em; overflow-x: auto; border-radius: 4px; }
pre code { background: none; padding: 0; }
blockquote { margin: 1em 0; padding: 0 1em; border-left: 4px solid rgba(127, 127, 127, 0.4); color: inherit; opacity: 0.85; }
table { border-collapse: collapse; margin: 1em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid rgba(127, 127, 127, 0.4); padding: 0.35em 0.7em; }
th { background: rgba(127, 127, 127, 0.12); }
hr { border: 0; border-top: 1px solid rgba(127, 127, 127, 0.4); margin: 2em 0; }
li > input[type=checkbox] { margin-right: 0.4em; }
";
