//! A small typesetter: paragraphs of styled text broken into lines at spaces, lines into
//! pages, drawn with the standard PDF fonts.

use std::fmt::Write as _;
use std::io::Write;

use lopdf::{Dictionary, Object};
use metamorph_plugin_api::ConvertError;

use crate::fonts::Font;
use crate::options::PaperSize;
use crate::pdf::PdfWriter;

/// Most pages one document may have.
pub(crate) const MAX_PAGES: usize = 100_000;

/// How text looks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Style {
    /// The font.
    pub(crate) font: Font,
    /// The size in points.
    pub(crate) size: f64,
}

/// A piece of a paragraph.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Token {
    /// Text in WinAnsi bytes.
    Text(Style, Vec<u8>),
    /// A forced line break.
    Break,
}

/// How a paragraph is set.
#[derive(Clone, Debug)]
pub(crate) struct ParagraphStyle {
    /// Space between the left margin and every line, in points.
    pub(crate) indent: f64,
    /// Line height as a multiple of the largest font size on the line.
    pub(crate) leading: f64,
    /// Space above the paragraph, in points (dropped at the top of a page).
    pub(crate) space_before: f64,
    /// Space below the paragraph, in points.
    pub(crate) space_after: f64,
    /// Extra height that must fit below the paragraph's first line on the same page, so that
    /// a heading stays with what follows it.
    pub(crate) keep_with_next: f64,
    /// Keep runs of spaces, and spaces at the start of a line (plain text and code);
    /// otherwise they collapse into one.
    pub(crate) preserve_spaces: bool,
    /// A grey (0 black to 1 white) filled behind the lines (code blocks).
    pub(crate) background: Option<f64>,
    /// Draw a bar left of the lines (block quotes), this far left of the text.
    pub(crate) bar: Option<f64>,
    /// Text drawn left of the first line (list bullets and numbers), right-aligned.
    pub(crate) marker: Vec<Token>,
    /// The size of an empty line.
    pub(crate) empty_size: f64,
}

impl ParagraphStyle {
    /// Body text of `size` points.
    pub(crate) fn body(size: f64) -> Self {
        Self {
            indent: 0.0,
            leading: 1.35,
            space_before: 0.0,
            space_after: 0.0,
            keep_with_next: 0.0,
            preserve_spaces: false,
            background: None,
            bar: None,
            marker: Vec::new(),
            empty_size: size,
        }
    }
}

/// One laid-out line: its pieces of text and its size.
#[derive(Debug, Default)]
struct Line {
    pieces: Vec<(Style, Vec<u8>)>,
    width: f64,
    size: f64,
    /// Whether the line holds a word (not only leading spaces).
    has_word: bool,
}

impl Line {
    fn push(&mut self, style: Style, text: &[u8], width: f64) {
        if text.is_empty() {
            return;
        }
        self.width += width;
        self.size = self.size.max(style.size);
        match self.pieces.last_mut() {
            Some((last, bytes)) if *last == style => bytes.extend_from_slice(text),
            _ => self.pieces.push((style, text.to_vec())),
        }
    }

    fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

/// A word (text between spaces, possibly in several styles) or a run of spaces.
enum Item {
    Word(Vec<(Style, Vec<u8>)>),
    Spaces(Style, usize),
    Break,
}

fn width_of(pieces: &[(Style, Vec<u8>)]) -> f64 {
    pieces
        .iter()
        .map(|(style, text)| style.font.text_width(text, style.size))
        .sum()
}

/// Splits tokens into words, runs of spaces and breaks.
fn items(tokens: &[Token], preserve_spaces: bool) -> Vec<Item> {
    let mut items = Vec::new();
    let mut word: Vec<(Style, Vec<u8>)> = Vec::new();
    for token in tokens {
        let (style, text) = match token {
            Token::Text(style, text) => (*style, text),
            Token::Break => {
                if !word.is_empty() {
                    items.push(Item::Word(std::mem::take(&mut word)));
                }
                items.push(Item::Break);
                continue;
            }
        };
        for &byte in text {
            if byte == b' ' {
                if !word.is_empty() {
                    items.push(Item::Word(std::mem::take(&mut word)));
                }
                match items.last_mut() {
                    Some(Item::Spaces(_, count)) if preserve_spaces => *count += 1,
                    Some(Item::Spaces(..)) => {}
                    _ => items.push(Item::Spaces(style, 1)),
                }
            } else {
                match word.last_mut() {
                    Some((last, bytes)) if *last == style => bytes.push(byte),
                    _ => word.push((style, vec![byte])),
                }
            }
        }
    }
    if !word.is_empty() {
        items.push(Item::Word(word));
    }
    items
}

/// Breaks `tokens` into lines no wider than `available` points.
fn break_lines(tokens: &[Token], available: f64, preserve_spaces: bool) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut line = Line::default();
    let mut pending: Option<(Style, usize)> = None;
    // Whether `line` starts where the source starts a line (not after a wrap): only there are
    // leading spaces kept.
    let mut source_start = true;
    for item in items(tokens, preserve_spaces) {
        match item {
            Item::Spaces(style, count) => {
                if line.is_empty() && source_start && preserve_spaces {
                    let text = vec![b' '; count];
                    let width = style.font.text_width(&text, style.size);
                    if width < available {
                        line.push(style, &text, width);
                    }
                } else if !line.is_empty() {
                    pending = Some((style, count));
                }
            }
            Item::Break => {
                lines.push(std::mem::take(&mut line));
                pending = None;
                source_start = true;
            }
            Item::Word(pieces) => {
                let width = width_of(&pieces);
                let spaces = pending.take().map(|(style, count)| {
                    let text = vec![b' '; count];
                    let width = style.font.text_width(&text, style.size);
                    (style, text, width)
                });
                let space_width = spaces.as_ref().map_or(0.0, |(_, _, width)| *width);
                if line.has_word && line.width + space_width + width > available {
                    lines.push(std::mem::take(&mut line));
                    source_start = false;
                } else if let Some((style, text, width)) = spaces {
                    line.push(style, &text, width);
                }
                line.has_word = true;
                if line.width + width <= available {
                    for (style, text) in &pieces {
                        line.push(*style, text, style.font.text_width(text, style.size));
                    }
                } else {
                    // A word wider than the line: break it between characters.
                    for (style, text) in &pieces {
                        for &byte in text {
                            let width = style.font.text_width(&[byte], style.size);
                            if !line.is_empty() && line.width + width > available {
                                lines.push(std::mem::take(&mut line));
                                source_start = false;
                            }
                            line.push(*style, &[byte], width);
                            line.has_word = true;
                        }
                    }
                }
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Pages of laid-out text.
pub(crate) struct Layout {
    writer: PdfWriter,
    resources: Object,
    width: f64,
    height: f64,
    margin: f64,
    /// The top of the free space on the current page, in points from the bottom.
    y: f64,
    /// The current page's content, `None` before the first page.
    content: Option<String>,
}

impl Layout {
    /// An empty document of `paper` pages with `margin` points on each side.
    pub(crate) fn new(paper: PaperSize, margin: f64) -> Result<Self, ConvertError> {
        let (width, height): (f64, f64) = match paper {
            PaperSize::A4 => (595.276, 841.89),
            PaperSize::Letter => (612.0, 792.0),
        };
        if margin * 2.0 > width.min(height) - 72.0 {
            return Err(ConvertError::invalid_options(format!(
                "a margin of {margin} points leaves no room for text on the page"
            )));
        }
        let mut writer = PdfWriter::new("1.4");
        let mut fonts = Dictionary::new();
        for font in Font::ALL {
            let mut dictionary = Dictionary::new();
            dictionary.set("Type", "Font");
            dictionary.set("Subtype", "Type1");
            dictionary.set("BaseFont", font.base_font());
            dictionary.set("Encoding", "WinAnsiEncoding");
            fonts.set(font.resource_name(), writer.add(dictionary));
        }
        let mut resources = Dictionary::new();
        resources.set("Font", fonts);
        resources.set("ProcSet", vec!["PDF".into(), "Text".into()]);
        let resources = Object::Reference(writer.add(resources));
        Ok(Self {
            writer,
            resources,
            width,
            height,
            margin,
            y: 0.0,
            content: None,
        })
    }

    /// The width available to text, in points.
    pub(crate) fn text_width(&self) -> f64 {
        self.width - 2.0 * self.margin
    }

    fn top(&self) -> f64 {
        self.height - self.margin
    }

    /// Whether nothing was drawn yet on the current page.
    fn at_page_top(&self) -> bool {
        self.content.is_none() || (self.y - self.top()).abs() < f64::EPSILON
    }

    /// Ends the current page (if any) and starts a new one.
    pub(crate) fn new_page(&mut self) -> Result<(), ConvertError> {
        self.flush_page()?;
        if self.writer.page_count() >= MAX_PAGES {
            return Err(ConvertError::limit(format!(
                "the document would have more than {MAX_PAGES} pages"
            )));
        }
        self.content = Some(String::new());
        self.y = self.top();
        Ok(())
    }

    fn flush_page(&mut self) -> Result<(), ConvertError> {
        if let Some(content) = self.content.take() {
            self.writer.add_page(
                self.width,
                self.height,
                content.into_bytes(),
                self.resources.clone(),
            )?;
        }
        Ok(())
    }

    /// Makes room for `height` points, starting a new page when the current one is full.
    fn ensure(&mut self, height: f64) -> Result<(), ConvertError> {
        if self.content.is_none() || (self.y - height < self.margin && !self.at_page_top()) {
            self.new_page()?;
        }
        Ok(())
    }

    /// Moves down by `space` points, unless at the top of a page.
    pub(crate) fn space(&mut self, space: f64) -> Result<(), ConvertError> {
        if self.content.is_none() {
            self.new_page()?;
        }
        if !self.at_page_top() {
            self.y = (self.y - space).max(self.margin);
        }
        Ok(())
    }

    /// Sets `tokens` as a paragraph.
    pub(crate) fn paragraph(
        &mut self,
        tokens: &[Token],
        style: &ParagraphStyle,
    ) -> Result<(), ConvertError> {
        let available = (self.text_width() - style.indent).max(self.text_width() / 4.0);
        let lines = break_lines(tokens, available, style.preserve_spaces);
        self.space(style.space_before)?;
        let left = self.margin + self.text_width() - available;
        for (index, line) in lines.iter().enumerate() {
            let size = if line.size > 0.0 {
                line.size
            } else {
                style.empty_size
            };
            let height = size * style.leading;
            let needed = if index == 0 {
                height + style.keep_with_next
            } else {
                height
            };
            self.ensure(needed)?;
            let top = self.y;
            let baseline = top - size * (style.leading - 1.0) / 2.0 - size * 0.8;
            let content = self.content.get_or_insert_with(String::new);
            if let Some(grey) = style.background {
                let _ = writeln!(
                    content,
                    "{grey:.3} g {} {} {} {} re f 0 g",
                    num(left - 4.0),
                    num(top - height),
                    num(available + 8.0),
                    num(height)
                );
            }
            if let Some(offset) = style.bar {
                let _ = writeln!(
                    content,
                    "0.75 g {} {} 2.5 {} re f 0 g",
                    num(left - offset),
                    num(top - height),
                    num(height)
                );
            }
            if index == 0 && !style.marker.is_empty() {
                let marker = break_lines(&style.marker, available, true);
                if let Some(marker) = marker.first() {
                    draw_line(content, marker, left - marker.width - 5.0, baseline);
                }
            }
            draw_line(content, line, left, baseline);
            self.y = top - height;
        }
        self.y = (self.y - style.space_after).max(self.margin);
        Ok(())
    }

    /// Draws a horizontal rule across the text width.
    pub(crate) fn rule(&mut self, space: f64) -> Result<(), ConvertError> {
        self.ensure(space * 2.0)?;
        self.y -= space;
        let (left, right, y) = (self.margin, self.width - self.margin, self.y);
        let content = self.content.get_or_insert_with(String::new);
        let _ = writeln!(
            content,
            "0.6 G 0.75 w {} {} m {} {} l S 0 G",
            num(left),
            num(y),
            num(right),
            num(y)
        );
        self.y -= space;
        Ok(())
    }

    /// Sets a table: `rows` of cells, the first `header_rows` of them followed by a rule.
    /// Columns take their natural widths when they fit and share the width in proportion
    /// otherwise; cells wrap within their column, and a row is never split across pages.
    pub(crate) fn table(
        &mut self,
        rows: &[Vec<Vec<Token>>],
        header_rows: usize,
        indent: f64,
        size: f64,
    ) -> Result<(), ConvertError> {
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        if columns == 0 {
            return Ok(());
        }
        let gap = size;
        let available = (self.text_width() - indent).max(self.text_width() / 4.0);
        let room = (available - gap * (columns - 1) as f64).max(columns as f64);
        let mut natural = vec![0.0_f64; columns];
        for row in rows {
            for (width, cell) in natural.iter_mut().zip(row) {
                let line = break_lines(cell, f64::INFINITY, false);
                *width = line.iter().map(|line| line.width).fold(*width, f64::max);
            }
        }
        let total: f64 = natural.iter().sum();
        let widths: Vec<f64> = if total <= room {
            natural
        } else {
            // Share the room in proportion, but give every column a fair minimum.
            let floor = room / columns as f64 / 2.0;
            let shares: Vec<f64> = natural.iter().map(|width| width.max(floor)).collect();
            let sum: f64 = shares.iter().sum();
            shares.iter().map(|share| share / sum * room).collect()
        };
        let left = self.margin + self.text_width() - available;
        let leading = 1.35;
        for (index, row) in rows.iter().enumerate() {
            let cells: Vec<Vec<Line>> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| break_lines(cell, *width, false))
                .collect();
            let line_height =
                |line: &Line| if line.size > 0.0 { line.size } else { size } * leading;
            let height = cells
                .iter()
                .map(|lines| lines.iter().map(line_height).sum::<f64>())
                .fold(size * leading, f64::max);
            self.ensure(height)?;
            let top = self.y;
            let content = self.content.get_or_insert_with(String::new);
            let mut x = left;
            for (lines, width) in cells.iter().zip(&widths) {
                let mut y = top;
                for line in lines {
                    let line_size = if line.size > 0.0 { line.size } else { size };
                    let baseline = y - line_size * (leading - 1.0) / 2.0 - line_size * 0.8;
                    draw_line(content, line, x, baseline);
                    y -= line_height(line);
                }
                x += width + gap;
            }
            self.y = top - height;
            if index + 1 == header_rows {
                let right = left + widths.iter().sum::<f64>() + gap * (columns - 1) as f64;
                let rule_y = self.y - size * 0.15;
                let _ = writeln!(
                    content,
                    "0.6 G 0.75 w {} {} m {} {} l S 0 G",
                    num(left),
                    num(rule_y),
                    num(right),
                    num(rule_y)
                );
                self.y -= size * 0.3;
            }
        }
        Ok(())
    }

    /// The finished file.
    pub(crate) fn finish(
        mut self,
        title: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<(), ConvertError> {
        if self.content.is_none() {
            self.new_page()?;
        }
        self.flush_page()?;
        self.writer.finish(title, out)
    }
}

/// Writes one line of text with its baseline's left end at (`x`, `baseline`).
fn draw_line(content: &mut String, line: &Line, x: f64, baseline: f64) {
    if line.is_empty() {
        return;
    }
    let _ = writeln!(content, "BT {} {} Td", num(x), num(baseline));
    let mut current: Option<Style> = None;
    for (style, text) in &line.pieces {
        if current != Some(*style) {
            let _ = write!(
                content,
                "/{} {} Tf ",
                style.font.resource_name(),
                num(style.size)
            );
            current = Some(*style);
        }
        content.push('(');
        for &byte in text {
            match byte {
                b'(' | b')' | b'\\' => {
                    content.push('\\');
                    content.push(char::from(byte));
                }
                0x20..=0x7E => content.push(char::from(byte)),
                // Content streams are bytes; writing other bytes as octal escapes keeps this
                // content ASCII.
                _ => {
                    let _ = write!(content, "\\{byte:03o}");
                }
            }
        }
        content.push_str(") Tj\n");
    }
    content.push_str("ET\n");
}

/// A number for a content stream: at most two decimals, no exponent.
fn num(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::{Style, Token, break_lines, num};
    use crate::fonts::Font;

    fn text(text: &str) -> Token {
        Token::Text(
            Style {
                font: Font::Mono,
                size: 10.0,
            },
            text.as_bytes().to_vec(),
        )
    }

    fn rendered(lines: &[super::Line]) -> Vec<String> {
        lines
            .iter()
            .map(|line| {
                line.pieces
                    .iter()
                    .map(|(_, text)| String::from_utf8_lossy(text))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn words_wrap_at_spaces_within_the_width() {
        // Courier at 10 points: 6 points a character, so 60 points hold 10 characters.
        let lines = break_lines(&[text("alpha beta gamma delta")], 60.0, false);
        assert_eq!(rendered(&lines), ["alpha beta", "gamma", "delta"]);
    }

    #[test]
    fn a_word_longer_than_the_line_is_broken_between_characters() {
        let lines = break_lines(&[text("abcdefghijklmnopqrstuvwxyz")], 60.0, false);
        assert_eq!(rendered(&lines), ["abcdefghij", "klmnopqrst", "uvwxyz"]);
    }

    #[test]
    fn leading_spaces_are_kept_only_where_the_source_line_starts() {
        let lines = break_lines(&[text("    indented words here")], 60.0, true);
        assert_eq!(rendered(&lines), ["    indent", "ed words", "here"]);
    }

    #[test]
    fn numbers_are_written_without_exponent_or_trailing_zeros() {
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(0.123), "0.12");
    }
}
