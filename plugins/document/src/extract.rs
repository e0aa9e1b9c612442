//! pdf → txt: the text of each page, pages separated by form feeds (`\f`).
//!
//! The page's content is interpreted far enough to know where each string is drawn: the
//! graphics and text matrices, the text state, and form XObjects. Strings are decoded with
//! their font's encoding or `ToUnicode` map and written in the order the content draws
//! them; a new line starts where the baseline moves, and a space is added where the gap
//! between two strings is wider than a fraction of the font size.
//!
//! What it cannot do: recover text that is drawn as images or vector outlines (scans need
//! OCR), decode fonts with neither a known encoding nor a `ToUnicode` map (often CJK fonts
//! using predefined CMaps), put multi-column or table layouts back into reading order when
//! the content draws them in another order, or follow rotated or vertical text. Annotations
//! and form field values are not part of the page's content and are not extracted.

use std::collections::HashMap;
use std::rc::Rc;

use lopdf::content::Content;
use lopdf::{DecompressError, Dictionary, Document, Object, ObjectId};
use metamorph_plugin_api::ConvertError;

use crate::decode::{self, Decoder};
use crate::fonts::Font;
use crate::options::ExtractOptions;
use crate::pages::parse_ranges;
use crate::{MAX_STREAM_BYTES, pdf};

/// Most content operations interpreted for one document, form XObjects included; past it
/// extraction stops with a limit error rather than run for minutes.
pub(crate) const MAX_OPERATIONS: usize = 20_000_000;
/// Deepest nesting of form XObjects followed.
const MAX_FORM_DEPTH: usize = 12;
/// Deepest graphics state stack kept.
const MAX_STATE_DEPTH: usize = 256;

/// pdf → txt.
pub(crate) fn to_text(
    document: &Document,
    options: &ExtractOptions,
) -> Result<Vec<u8>, ConvertError> {
    let pages: Vec<ObjectId> = document.page_iter().collect();
    let count = u32::try_from(pages.len())
        .map_err(|_too_many| ConvertError::limit("the PDF has too many pages"))?;
    let numbers: Vec<u32> = match &options.pages {
        Some(spec) => parse_ranges(spec, count, "pages")?.into_iter().collect(),
        None => (1..=count).collect(),
    };
    let mut extractor = Extractor::new(document);
    let mut text = String::new();
    for (index, number) in numbers.into_iter().enumerate() {
        if index > 0 {
            text.push('\u{c}');
        }
        let page = usize::try_from(number - 1)
            .ok()
            .and_then(|index| pages.get(index));
        if let Some(page) = page {
            text.push_str(&extractor.page(*page)?);
        }
    }
    Ok(text.into_bytes())
}

/// The text of every page of `document`, one string a page.
#[cfg(test)]
pub(crate) fn page_texts(document: &Document) -> Result<Vec<String>, ConvertError> {
    let mut extractor = Extractor::new(document);
    document
        .page_iter()
        .map(|page| extractor.page(page))
        .collect()
}

/// A 2D affine transformation `[a b c d e f]`, applied to row vectors as PDF does.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Matrix([f64; 6]);

impl Matrix {
    const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    fn translate(x: f64, y: f64) -> Matrix {
        Matrix([1.0, 0.0, 0.0, 1.0, x, y])
    }

    /// `self` followed by `then`.
    fn then(self, then: Matrix) -> Matrix {
        let [a, b, c, d, e, f] = self.0;
        let [a2, b2, c2, d2, e2, f2] = then.0;
        Matrix([
            a * a2 + b * c2,
            a * b2 + b * d2,
            c * a2 + d * c2,
            c * b2 + d * d2,
            e * a2 + f * c2 + e2,
            e * b2 + f * d2 + f2,
        ])
    }

    fn origin(self) -> (f64, f64) {
        (self.0[4], self.0[5])
    }

    /// How much the transformation scales vertical distances.
    fn vertical_scale(self) -> f64 {
        self.0[2].hypot(self.0[3])
    }

    fn from_operands(operands: &[Object]) -> Option<Matrix> {
        let values: Vec<f64> = operands.iter().filter_map(number).collect();
        let values: [f64; 6] = values.try_into().ok()?;
        values
            .iter()
            .all(|value| value.is_finite())
            .then_some(Matrix(values))
    }
}

/// A number operand.
fn number(object: &Object) -> Option<f64> {
    match object {
        Object::Integer(value) => Some(*value as f64),
        Object::Real(value) => Some(f64::from(*value)),
        _ => None,
    }
}

/// Glyph widths of a font, in text space units per unit of font size.
enum Widths {
    /// A simple font: widths from `first` on, and a default.
    Simple {
        first: i64,
        widths: Vec<f64>,
        missing: f64,
    },
    /// A composite font: single widths, ranges and a default.
    Composite {
        single: HashMap<u32, f64>,
        ranges: Vec<(u32, u32, f64)>,
        default: f64,
    },
}

/// What extraction needs of a font.
struct FontInfo {
    decoder: Decoder,
    /// Composite fonts use two-byte codes.
    two_byte: bool,
    widths: Widths,
}

impl FontInfo {
    fn width(&self, code: u32) -> f64 {
        match &self.widths {
            Widths::Simple {
                first,
                widths,
                missing,
            } => i64::from(code)
                .checked_sub(*first)
                .and_then(|index| usize::try_from(index).ok())
                .and_then(|index| widths.get(index))
                .copied()
                .unwrap_or(*missing),
            Widths::Composite {
                single,
                ranges,
                default,
            } => single
                .get(&code)
                .copied()
                .or_else(|| {
                    ranges
                        .iter()
                        .find(|(first, last, _)| (*first..=*last).contains(&code))
                        .map(|(_, _, width)| *width)
                })
                .unwrap_or(*default),
        }
    }
}

/// The graphics state parts that matter for text.
#[derive(Clone)]
struct GraphicsState {
    ctm: Matrix,
    font: Option<Rc<FontInfo>>,
    size: f64,
    char_spacing: f64,
    word_spacing: f64,
    horizontal_scale: f64,
    leading: f64,
    rise: f64,
}

impl GraphicsState {
    fn new(ctm: Matrix) -> Self {
        Self {
            ctm,
            font: None,
            size: 0.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            horizontal_scale: 1.0,
            leading: 0.0,
            rise: 0.0,
        }
    }
}

/// Where the previous string ended.
#[derive(Clone, Copy)]
struct Position {
    x_end: f64,
    y: f64,
    size: f64,
}

/// The text of a page as it is drawn.
#[derive(Default)]
struct PageText {
    text: String,
    last: Option<Position>,
}

impl PageText {
    fn push(&mut self, text: &str, start: (f64, f64), end: (f64, f64), size: f64) {
        let size = size.max(0.1);
        if text.is_empty() {
            return;
        }
        if let Some(last) = self.last {
            let line = size.max(last.size);
            let starts_blank = text.starts_with(char::is_whitespace);
            let ends_blank = self.text.is_empty() || self.text.ends_with(char::is_whitespace);
            if (start.1 - last.y).abs() > line * 0.6 {
                if !self.text.ends_with('\n') {
                    self.text.push('\n');
                }
            } else {
                let gap = start.0 - last.x_end;
                if (gap > line * 0.15 || gap < -line * 3.0) && !starts_blank && !ends_blank {
                    self.text.push(' ');
                }
            }
        }
        self.text.push_str(text);
        self.last = Some(Position {
            x_end: end.0,
            y: start.1,
            size,
        });
    }

    /// The text with trailing spaces and blank lines trimmed, ending in a newline unless
    /// empty.
    fn finish(self) -> String {
        let mut text = String::with_capacity(self.text.len() + 1);
        for line in self.text.lines() {
            text.push_str(line.trim_end());
            text.push('\n');
        }
        let trimmed = text.trim_matches('\n');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("{trimmed}\n")
        }
    }
}

/// Resource dictionaries, nearest first.
type Resources<'a> = Vec<&'a Dictionary>;

struct Extractor<'a> {
    document: &'a Document,
    fonts: HashMap<ObjectId, Rc<FontInfo>>,
    budget: usize,
}

impl<'a> Extractor<'a> {
    fn new(document: &'a Document) -> Self {
        Self {
            document,
            fonts: HashMap::new(),
            budget: MAX_OPERATIONS,
        }
    }

    fn page(&mut self, page: ObjectId) -> Result<String, ConvertError> {
        let content = match self
            .document
            .get_page_content_with_limit(page, MAX_STREAM_BYTES)
        {
            Ok(content) => content,
            Err(error @ lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
                return Err(pdf::read_error(&error));
            }
            // A page whose content cannot be read has no text to give.
            Err(_unreadable) => return Ok(String::new()),
        };
        let mut resources = Vec::new();
        if let Ok((direct, referenced)) = self.document.get_page_resources(page) {
            resources.extend(direct);
            resources.extend(
                referenced
                    .into_iter()
                    .filter_map(|id| self.document.get_dictionary(id).ok()),
            );
        }
        let mut text = PageText::default();
        let mut forms = Vec::new();
        self.run(
            &content,
            &resources,
            Matrix::IDENTITY,
            &mut text,
            &mut forms,
        )?;
        Ok(text.finish())
    }

    /// Looks `name` up in the `category` (`Font`, `XObject`) of `resources`.
    fn resource(
        &self,
        resources: &Resources<'a>,
        category: &[u8],
        name: &[u8],
    ) -> Option<&'a Object> {
        resources.iter().find_map(|dictionary| {
            let (_, entries) = self
                .document
                .dereference(dictionary.get(category).ok()?)
                .ok()?;
            entries.as_dict().ok()?.get(name).ok()
        })
    }

    fn font(&mut self, resources: &Resources<'a>, name: &[u8]) -> Option<Rc<FontInfo>> {
        let object = self.resource(resources, b"Font", name)?;
        let id = object.as_reference().ok();
        if let Some(font) = id.and_then(|id| self.fonts.get(&id)) {
            return Some(Rc::clone(font));
        }
        let (_, object) = self.document.dereference(object).ok()?;
        let font = Rc::new(self.font_info(object.as_dict().ok()?));
        if let Some(id) = id {
            self.fonts.insert(id, Rc::clone(&font));
        }
        Some(font)
    }

    fn font_info(&self, font: &'a Dictionary) -> FontInfo {
        let document = self.document;
        let subtype = font
            .get(b"Subtype")
            .and_then(Object::as_name)
            .unwrap_or(b"Type1");
        let deref =
            |object: &'a Object| document.dereference(object).ok().map(|(_, object)| object);
        if subtype == b"Type0" {
            let descendant = font
                .get(b"DescendantFonts")
                .ok()
                .and_then(deref)
                .and_then(|fonts| fonts.as_array().ok())
                .and_then(|fonts| fonts.first())
                .and_then(deref)
                .and_then(|descendant| descendant.as_dict().ok());
            let default = descendant
                .and_then(|descendant| descendant.get(b"DW").ok())
                .and_then(number)
                .unwrap_or(1000.0)
                / 1000.0;
            let widths = descendant
                .and_then(|descendant| descendant.get(b"W").ok())
                .and_then(deref)
                .and_then(|widths| widths.as_array().ok())
                .map_or_else(
                    || Widths::Composite {
                        single: HashMap::new(),
                        ranges: Vec::new(),
                        default,
                    },
                    |widths| composite_widths(document, widths, default),
                );
            return FontInfo {
                decoder: decode::composite(document, font),
                two_byte: true,
                widths,
            };
        }
        // Type 3 glyph widths are in glyph space, which the font matrix maps to text space.
        let scale = if subtype == b"Type3" {
            font.get(b"FontMatrix")
                .ok()
                .and_then(deref)
                .and_then(|matrix| matrix.as_array().ok())
                .and_then(|matrix| matrix.first())
                .and_then(number)
                .unwrap_or(0.001)
        } else {
            0.001
        };
        let widths: Option<Vec<f64>> = font
            .get(b"Widths")
            .ok()
            .and_then(deref)
            .and_then(|widths| widths.as_array().ok())
            .map(|widths| {
                widths
                    .iter()
                    .map(|width| deref(width).and_then(number).unwrap_or(0.0) * scale)
                    .collect()
            });
        let missing = font
            .get(b"FontDescriptor")
            .ok()
            .and_then(deref)
            .and_then(|descriptor| descriptor.as_dict().ok())
            .and_then(|descriptor| descriptor.get(b"MissingWidth").ok())
            .and_then(number)
            .map(|width| width * scale);
        let widths = match widths {
            Some(widths) => Widths::Simple {
                first: font.get(b"FirstChar").and_then(Object::as_i64).unwrap_or(0),
                widths,
                missing: missing.unwrap_or(0.5),
            },
            None => standard_widths(
                font.get(b"BaseFont")
                    .and_then(Object::as_name)
                    .unwrap_or(b""),
            ),
        };
        FontInfo {
            decoder: decode::simple(document, font),
            two_byte: false,
            widths,
        }
    }

    /// Interprets `content` drawn with `resources` under `ctm`.
    fn run(
        &mut self,
        content: &[u8],
        resources: &Resources<'a>,
        ctm: Matrix,
        out: &mut PageText,
        forms: &mut Vec<ObjectId>,
    ) -> Result<(), ConvertError> {
        let mut state = GraphicsState::new(ctm);
        let mut saved: Vec<GraphicsState> = Vec::new();
        let mut text_matrix = Matrix::IDENTITY;
        let mut line_matrix = Matrix::IDENTITY;
        for operation in Content::decode_iter(content) {
            // Content past a syntax error cannot be read reliably; keep what came before.
            let Ok(operation) = operation else { break };
            self.budget = self.budget.checked_sub(1).ok_or_else(|| {
                ConvertError::limit(format!(
                    "the PDF's content is too complex: more than {MAX_OPERATIONS} operations"
                ))
            })?;
            let operands = &operation.operands;
            let first = operands.first().and_then(number);
            match operation.operator.as_str() {
                "q" if saved.len() < MAX_STATE_DEPTH => saved.push(state.clone()),
                "Q" => {
                    if let Some(previous) = saved.pop() {
                        state = previous;
                    }
                }
                "cm" => {
                    if let Some(matrix) = Matrix::from_operands(operands) {
                        state.ctm = matrix.then(state.ctm);
                    }
                }
                "BT" => {
                    text_matrix = Matrix::IDENTITY;
                    line_matrix = Matrix::IDENTITY;
                }
                "Tf" => {
                    let name = operands.first().and_then(|name| name.as_name().ok());
                    state.font = name.and_then(|name| self.font(resources, name));
                    state.size = operands.get(1).and_then(number).unwrap_or(0.0);
                }
                "Tc" => state.char_spacing = first.unwrap_or(0.0),
                "Tw" => state.word_spacing = first.unwrap_or(0.0),
                "Tz" => state.horizontal_scale = first.unwrap_or(100.0) / 100.0,
                "TL" => state.leading = first.unwrap_or(0.0),
                "Ts" => state.rise = first.unwrap_or(0.0),
                "Td" | "TD" => {
                    let x = first.unwrap_or(0.0);
                    let y = operands.get(1).and_then(number).unwrap_or(0.0);
                    if operation.operator == "TD" {
                        state.leading = -y;
                    }
                    line_matrix = Matrix::translate(x, y).then(line_matrix);
                    text_matrix = line_matrix;
                }
                "Tm" => {
                    if let Some(matrix) = Matrix::from_operands(operands) {
                        line_matrix = matrix;
                        text_matrix = matrix;
                    }
                }
                "T*" => {
                    line_matrix = Matrix::translate(0.0, -state.leading).then(line_matrix);
                    text_matrix = line_matrix;
                }
                "Tj" | "'" | "\"" => {
                    if operation.operator != "Tj" {
                        if operation.operator == "\"" {
                            state.word_spacing = first.unwrap_or(state.word_spacing);
                            state.char_spacing = operands
                                .get(1)
                                .and_then(number)
                                .unwrap_or(state.char_spacing);
                        }
                        line_matrix = Matrix::translate(0.0, -state.leading).then(line_matrix);
                        text_matrix = line_matrix;
                    }
                    if let Some(Object::String(bytes, _)) = operands.last() {
                        show(&state, &mut text_matrix, bytes.as_slice(), out);
                    }
                }
                "TJ" => {
                    let elements = operands.first().and_then(|array| array.as_array().ok());
                    for element in elements.into_iter().flatten() {
                        match element {
                            Object::String(bytes, _) => {
                                show(&state, &mut text_matrix, bytes.as_slice(), out);
                            }
                            other => {
                                let adjustment = number(other).unwrap_or(0.0);
                                let shift =
                                    -adjustment / 1000.0 * state.size * state.horizontal_scale;
                                text_matrix = Matrix::translate(shift, 0.0).then(text_matrix);
                            }
                        }
                    }
                }
                "Do" => {
                    if let Some(name) = operands.first().and_then(|name| name.as_name().ok()) {
                        self.form(resources, name, state.ctm, out, forms)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Interprets the form XObject `name`, if it is one.
    fn form(
        &mut self,
        resources: &Resources<'a>,
        name: &[u8],
        ctm: Matrix,
        out: &mut PageText,
        forms: &mut Vec<ObjectId>,
    ) -> Result<(), ConvertError> {
        let Some(Object::Reference(id)) = self.resource(resources, b"XObject", name) else {
            return Ok(());
        };
        if forms.contains(id) || forms.len() >= MAX_FORM_DEPTH {
            return Ok(());
        }
        let Ok(stream) = self.document.get_object(*id).and_then(Object::as_stream) else {
            return Ok(());
        };
        if stream.dict.get(b"Subtype").and_then(Object::as_name).ok() != Some(b"Form") {
            return Ok(());
        }
        let content = match stream.get_plain_content_with_limit(MAX_STREAM_BYTES) {
            Ok(content) => content,
            Err(error @ lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
                return Err(pdf::read_error(&error));
            }
            Err(_unreadable) => return Ok(()),
        };
        let matrix = stream
            .dict
            .get(b"Matrix")
            .ok()
            .and_then(|matrix| matrix.as_array().ok())
            .and_then(|matrix| Matrix::from_operands(matrix))
            .unwrap_or(Matrix::IDENTITY);
        let own = stream
            .dict
            .get(b"Resources")
            .ok()
            .and_then(|object| self.document.dereference(object).ok())
            .and_then(|(_, object)| object.as_dict().ok());
        let form_resources = match own {
            Some(own) => vec![own],
            None => resources.clone(),
        };
        forms.push(*id);
        let result = self.run(&content, &form_resources, matrix.then(ctm), out, forms);
        forms.pop();
        result
    }
}

/// Shows the string `bytes`: decodes it, records it where it is drawn, and advances the
/// text matrix by its width.
fn show(state: &GraphicsState, text_matrix: &mut Matrix, bytes: &[u8], out: &mut PageText) {
    let Some(font) = &state.font else {
        return;
    };
    let rendering = Matrix::translate(0.0, state.rise)
        .then(*text_matrix)
        .then(state.ctm);
    let start = rendering.origin();
    let size = state.size.abs() * rendering.vertical_scale();

    let mut advance = 0.0;
    let mut add = |code: u32, single_byte: bool| {
        let mut width = font.width(code) * state.size + state.char_spacing;
        if single_byte && code == 32 {
            width += state.word_spacing;
        }
        advance += width * state.horizontal_scale;
    };
    if font.two_byte {
        for pair in bytes.chunks(2) {
            let code = pair
                .iter()
                .fold(0u32, |code, byte| code << 8 | u32::from(*byte));
            add(code, pair.len() == 1);
        }
    } else {
        for &byte in bytes {
            add(u32::from(byte), true);
        }
    }
    *text_matrix = Matrix::translate(advance, 0.0).then(*text_matrix);
    let end = Matrix::translate(0.0, state.rise)
        .then(*text_matrix)
        .then(state.ctm)
        .origin();

    out.push(&font.decoder.decode(bytes), start, end, size);
}

/// Widths from a composite font's `W` array: `c [w1 w2 …]` gives widths from `c` on, and
/// `first last w` one width for a range.
fn composite_widths<'a>(document: &'a Document, array: &'a [Object], default: f64) -> Widths {
    /// Most single widths read, against hostile arrays.
    const MAX_WIDTHS: usize = 1 << 16;
    let mut single = HashMap::new();
    let mut ranges = Vec::new();
    let mut index = 0;
    let value = |object: &'a Object| document.dereference(object).ok().map(|(_, object)| object);
    let code = |object: Option<&Object>| {
        object
            .and_then(number)
            .and_then(|n| u32::try_from(n as i64).ok())
    };
    while index < array.len() && single.len() < MAX_WIDTHS {
        let Some(first) = code(array.get(index)) else {
            break;
        };
        match array.get(index + 1).and_then(value) {
            Some(Object::Array(widths)) => {
                for (offset, width) in widths.iter().take(MAX_WIDTHS).enumerate() {
                    if let (Some(width), Ok(offset)) = (number(width), u32::try_from(offset)) {
                        single.insert(first.saturating_add(offset), width / 1000.0);
                    }
                }
                index += 2;
            }
            Some(last) => {
                let (Some(last), Some(width)) =
                    (code(Some(last)), array.get(index + 2).and_then(number))
                else {
                    break;
                };
                ranges.push((first, last, width / 1000.0));
                index += 3;
            }
            None => break,
        }
    }
    Widths::Composite {
        single,
        ranges,
        default,
    }
}

/// Widths of a simple font without a `Widths` array: one of the standard fonts, whose
/// metrics readers know. Helvetica's stand in for the proportional ones; Courier's are all
/// 600.
fn standard_widths(base_font: &[u8]) -> Widths {
    let name = String::from_utf8_lossy(base_font).to_ascii_lowercase();
    let font = if name.contains("courier") || name.contains("mono") {
        Font::Mono
    } else if name.contains("bold") {
        Font::Bold
    } else {
        Font::Regular
    };
    let widths = (0..=255u8)
        .map(|code| f64::from(font.width(code)) / 1000.0)
        .collect();
    Widths::Simple {
        first: 0,
        widths,
        missing: 0.5,
    }
}
