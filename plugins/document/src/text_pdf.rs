//! txt → pdf and md → pdf: text laid out with the standard PDF fonts.
//!
//! Plain text keeps its lines: each is wrapped at spaces to the page width, a form feed
//! starts a new page and tabs stop every 8 columns. Markdown is set as headings (larger,
//! bold), paragraphs with bold, italic and code spans, bulleted, numbered and task lists,
//! block quotes, code blocks (Courier on grey), rules and tables (columns sized to their
//! content, cells wrapped within them). Images show as their alternative text, links as
//! their text, and raw HTML as the text between its tags. Characters outside WinAnsi are
//! mapped as [`crate::fonts`] describes.

use std::io::Write;

use metamorph_plugin_api::ConvertError;
use pulldown_cmark::{Event, HeadingLevel, Tag, TagEnd};

use crate::fonts::{Font, encode};
use crate::layout::{Layout, ParagraphStyle, Style, Token};
use crate::markdown;
use crate::options::{MarkdownPdfOptions, TextFont, TextPdfOptions, check_range};

/// txt → pdf.
pub(crate) fn text_to_pdf(
    text: &str,
    options: &TextPdfOptions,
    out: &mut dyn Write,
) -> Result<(), ConvertError> {
    let size = check_range("font_size", options.font_size, 4.0, 72.0)?;
    let margin = check_range("margin", options.margin, 0.0, 200.0)?;
    let mut layout = Layout::new(options.page_size, margin)?;
    let font = match options.font {
        TextFont::Monospace => Font::Mono,
        TextFont::Sans => Font::Regular,
    };
    let style = Style { font, size };
    let paragraph = ParagraphStyle {
        preserve_spaces: true,
        leading: 1.25,
        ..ParagraphStyle::body(size)
    };
    let text = markdown::strip_bom(text);
    let text = text.strip_suffix('\n').unwrap_or(text);
    for (index, page) in text.split('\u{c}').enumerate() {
        if index > 0 {
            layout.new_page()?;
        }
        let page = page.strip_prefix('\n').unwrap_or(page);
        let mut tokens = Vec::new();
        for (number, line) in page.lines().enumerate() {
            if number > 0 {
                tokens.push(Token::Break);
            }
            tokens.push(Token::Text(style, encode(&expand_tabs(line, 8))));
        }
        layout.paragraph(&tokens, &paragraph)?;
    }
    layout.finish(None, out)
}

/// `line` with each tab replaced by spaces up to the next multiple of `width` columns.
fn expand_tabs(line: &str, width: usize) -> String {
    if !line.contains('\t') {
        return line.to_owned();
    }
    let mut expanded = String::with_capacity(line.len() + 16);
    let mut column = 0;
    for character in line.chars() {
        if character == '\t' {
            let spaces = width - column % width;
            expanded.extend(std::iter::repeat_n(' ', spaces));
            column += spaces;
        } else {
            expanded.push(character);
            column += 1;
        }
    }
    expanded
}

/// md → pdf.
pub(crate) fn markdown_to_pdf(
    source: &str,
    options: &MarkdownPdfOptions,
    out: &mut dyn Write,
) -> Result<(), ConvertError> {
    let size = check_range("font_size", options.font_size, 4.0, 72.0)?;
    let margin = check_range("margin", options.margin, 0.0, 200.0)?;
    let mut writer = MarkdownWriter::new(Layout::new(options.page_size, margin)?, size);
    for event in markdown::parser(source) {
        writer.event(event)?;
    }
    writer.flush()?;
    let title = markdown::first_heading(source);
    writer.layout.finish(title.as_deref(), out)
}

/// Indentation of each list level, in points.
const LIST_INDENT: f64 = 18.0;
/// Indentation of each block quote level, in points.
const QUOTE_INDENT: f64 = 14.0;

/// Sets Markdown events on pages.
struct MarkdownWriter {
    layout: Layout,
    /// Body text size.
    size: f64,
    /// The inline content of the block being read.
    tokens: Vec<Token>,
    bold: usize,
    italic: usize,
    heading: Option<HeadingLevel>,
    /// Open lists, innermost last: the next number of an ordered list, `None` for bullets.
    lists: Vec<Option<u64>>,
    /// Whether the innermost list is tight (items without blank lines between them).
    tight: Vec<bool>,
    /// The bullet or number of a list item whose first block is not set yet.
    marker: Option<Vec<Token>>,
    quotes: usize,
    /// The text of the code block being read.
    code: Option<String>,
    /// The cells of the table row being read.
    row: Vec<Vec<Token>>,
    /// The rows of the table being read.
    table: Vec<Vec<Vec<Token>>>,
    in_table_head: bool,
    /// How many rows of the table being read are headers.
    header_rows: usize,
}

impl MarkdownWriter {
    fn new(layout: Layout, size: f64) -> Self {
        Self {
            layout,
            size,
            tokens: Vec::new(),
            bold: 0,
            italic: 0,
            heading: None,
            lists: Vec::new(),
            tight: Vec::new(),
            marker: None,
            quotes: 0,
            code: None,
            row: Vec::new(),
            table: Vec::new(),
            in_table_head: false,
            header_rows: 0,
        }
    }

    fn heading_scale(level: HeadingLevel) -> f64 {
        match level {
            HeadingLevel::H1 => 1.8,
            HeadingLevel::H2 => 1.5,
            HeadingLevel::H3 => 1.25,
            HeadingLevel::H4 => 1.1,
            HeadingLevel::H5 => 1.0,
            HeadingLevel::H6 => 0.95,
        }
    }

    /// The style of inline text here.
    fn style(&self) -> Style {
        let mut font = Font::Regular;
        if self.bold > 0 || self.heading.is_some() || self.in_table_head {
            font = font.bold();
        }
        if self.italic > 0 {
            font = font.italic();
        }
        let size = self
            .heading
            .map_or(self.size, |level| self.size * Self::heading_scale(level));
        Style { font, size }
    }

    fn text(&mut self, text: &str) {
        let style = self.style();
        self.tokens.push(Token::Text(style, encode(text)));
    }

    fn code_span(&mut self, text: &str) {
        let style = self.style();
        let style = Style {
            font: style.font.mono(),
            size: style.size,
        };
        self.tokens.push(Token::Text(style, encode(text)));
    }

    /// The paragraph style of body blocks at the current nesting.
    fn block_style(&mut self) -> ParagraphStyle {
        let in_tight_list = self.tight.last().copied().unwrap_or(false);
        ParagraphStyle {
            indent: self.lists.len() as f64 * LIST_INDENT + self.quotes as f64 * QUOTE_INDENT,
            space_after: if in_tight_list {
                self.size * 0.2
            } else {
                self.size * 0.6
            },
            bar: (self.quotes > 0).then_some(QUOTE_INDENT * 0.65),
            marker: self.marker.take().unwrap_or_default(),
            ..ParagraphStyle::body(self.size)
        }
    }

    /// Sets the inline content read so far as a paragraph.
    fn flush(&mut self) -> Result<(), ConvertError> {
        let has_text = self.tokens.iter().any(|token| match token {
            Token::Text(_, text) => text.iter().any(|byte| *byte != b' '),
            Token::Break => false,
        });
        if !has_text && self.marker.is_none() {
            self.tokens.clear();
            return Ok(());
        }
        let tokens = std::mem::take(&mut self.tokens);
        let style = self.block_style();
        self.layout.paragraph(&tokens, &style)
    }

    fn event(&mut self, event: Event<'_>) -> Result<(), ConvertError> {
        match event {
            Event::Start(tag) => self.start(&tag)?,
            Event::End(tag) => self.end(tag)?,
            Event::Text(text) => match &mut self.code {
                Some(code) => code.push_str(&text),
                None => self.text(&text),
            },
            Event::Code(text) => self.code_span(&text),
            Event::SoftBreak => self.text(" "),
            Event::HardBreak => self.tokens.push(Token::Break),
            Event::Rule => {
                self.flush()?;
                self.layout.rule(self.size * 0.6)?;
            }
            Event::TaskListMarker(checked) => {
                self.code_span(if checked { "[x]" } else { "[ ]" });
                self.text(" ");
            }
            Event::Html(html) => {
                let text = strip_tags(&html);
                if !text.trim().is_empty() {
                    self.text(&text);
                }
            }
            Event::InlineHtml(html) => {
                let tag = html.trim().to_ascii_lowercase();
                if tag.starts_with("<br") {
                    self.tokens.push(Token::Break);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn start(&mut self, tag: &Tag<'_>) -> Result<(), ConvertError> {
        match tag {
            Tag::Heading { level, .. } => {
                self.flush()?;
                self.heading = Some(*level);
            }
            Tag::BlockQuote(_) => {
                self.flush()?;
                self.quotes += 1;
            }
            Tag::CodeBlock(_) => {
                self.flush()?;
                self.code = Some(String::new());
            }
            Tag::List(start) => {
                self.flush()?;
                self.lists.push(*start);
                self.tight.push(true);
            }
            Tag::Item => {
                self.flush()?;
                let marker = match self.lists.last_mut() {
                    Some(Some(number)) => {
                        let marker = format!("{number}.");
                        *number = number.saturating_add(1);
                        marker.into_bytes()
                    }
                    _ => vec![0x95],
                };
                self.marker = Some(vec![Token::Text(
                    Style {
                        font: Font::Regular,
                        size: self.size,
                    },
                    marker,
                )]);
            }
            Tag::Paragraph => {
                // A list whose items hold paragraphs is loose: its items are spaced apart.
                if self.marker.is_some()
                    && let Some(tight) = self.tight.last_mut()
                {
                    *tight = false;
                }
            }
            Tag::Emphasis => self.italic += 1,
            Tag::Strong => self.bold += 1,
            Tag::Image { .. } => {
                self.italic += 1;
                self.text("[image: ");
            }
            Tag::Table(_) => {
                self.flush()?;
                self.table.clear();
                self.header_rows = 0;
            }
            Tag::TableHead => {
                self.in_table_head = true;
                self.row.clear();
            }
            Tag::TableRow => self.row.clear(),
            Tag::TableCell => self.tokens.clear(),
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, tag: TagEnd) -> Result<(), ConvertError> {
        match tag {
            TagEnd::Paragraph | TagEnd::Item | TagEnd::HtmlBlock => self.flush()?,
            TagEnd::Heading(level) => {
                let tokens = std::mem::take(&mut self.tokens);
                let scale = Self::heading_scale(level);
                let style = ParagraphStyle {
                    space_before: self.size * scale * 0.9,
                    space_after: self.size * 0.45,
                    leading: 1.25,
                    keep_with_next: self.size * 1.35 * 2.0,
                    ..self.block_style()
                };
                self.layout.paragraph(&tokens, &style)?;
                self.heading = None;
            }
            TagEnd::BlockQuote(_) => {
                self.flush()?;
                self.quotes = self.quotes.saturating_sub(1);
            }
            TagEnd::CodeBlock => self.code_block()?,
            TagEnd::List(_) => {
                self.flush()?;
                self.lists.pop();
                self.tight.pop();
                if self.lists.is_empty() {
                    self.layout.space(self.size * 0.5)?;
                }
            }
            TagEnd::Emphasis => self.italic = self.italic.saturating_sub(1),
            TagEnd::Strong => self.bold = self.bold.saturating_sub(1),
            TagEnd::Image => {
                self.text("]");
                self.italic = self.italic.saturating_sub(1);
            }
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.tokens);
                self.row.push(cell);
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                let row = std::mem::take(&mut self.row);
                self.table.push(row);
                if self.in_table_head {
                    self.in_table_head = false;
                    self.header_rows = self.table.len();
                }
            }
            TagEnd::Table => {
                let rows = std::mem::take(&mut self.table);
                let indent = self.block_style().indent;
                self.layout
                    .table(&rows, self.header_rows, indent, self.size)?;
                self.layout.space(self.size * 0.6)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Sets the code block read: Courier, lines kept, on grey.
    fn code_block(&mut self) -> Result<(), ConvertError> {
        let code = self.code.take().unwrap_or_default();
        let code = code.strip_suffix('\n').unwrap_or(&code);
        let style = Style {
            font: Font::Mono,
            size: self.size * 0.9,
        };
        let mut tokens = Vec::new();
        for (index, line) in code.lines().enumerate() {
            if index > 0 {
                tokens.push(Token::Break);
            }
            tokens.push(Token::Text(style, encode(&expand_tabs(line, 4))));
        }
        let base = self.block_style();
        let paragraph = ParagraphStyle {
            indent: base.indent + 6.0,
            leading: 1.3,
            space_before: self.size * 0.2,
            space_after: self.size * 0.8,
            preserve_spaces: true,
            background: Some(0.93),
            empty_size: style.size,
            ..base
        };
        self.layout.paragraph(&tokens, &paragraph)
    }
}

/// The text of an HTML fragment: tags and comments removed, a few entities decoded.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = if after.starts_with("<!--") {
            after.find("-->").map(|end| end + 3)
        } else {
            after.find('>').map(|end| end + 1)
        };
        match end {
            Some(end) => rest = &after[end..],
            None => {
                rest = "";
            }
        }
    }
    text.push_str(rest);
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::{expand_tabs, strip_tags};

    #[test]
    fn tabs_expand_to_the_next_tab_stop() {
        assert_eq!(expand_tabs("a\tb", 8), "a       b");
        assert_eq!(expand_tabs("\tx", 4), "    x");
    }

    #[test]
    fn html_blocks_keep_the_text_between_their_tags() {
        assert_eq!(
            strip_tags("<p align=\"center\">Hello <b>there</b></p>\n<!-- a comment -->"),
            "Hello there"
        );
        assert_eq!(strip_tags("a &amp; b <unclosed"), "a & b");
    }
}
