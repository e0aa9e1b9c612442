//! XML, read into [`Value`]s and written from them the common way (as `xmltodict` and most
//! converters do):
//!
//! - an element with neither attributes nor child elements is its text, or null when empty;
//! - any other element is an object: attributes are members named `@name`, child elements
//!   are members named as they are (repeated ones make an array), and text beside child
//!   elements or attributes is the member `#text`;
//! - the document is an object with one member, the root element.
//!
//! Writing reverses this. A list of records is `<root><item><field>…</field></item></root>`;
//! keys that are not XML names (`Population Estimate`, `2024`) become names by replacing
//! what is not allowed with `_` (`Population_Estimate`, `_2024`).
//!
//! Only the five predefined entities and character references are read: a document type's
//! own entities are refused, so entity expansion cannot blow up.

use std::borrow::Cow;
use std::io::Write;

use indexmap::IndexSet;
use metamorph_plugin_api::{ConvertError, Input};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::options::Settings;
use crate::records::RecordSink;
use crate::value::{Map, Value};

/// The deepest nesting of elements read.
pub(crate) const MAX_DEPTH: usize = 128;

/// The root element's name when neither the `root` option nor the value gives one.
const DEFAULT_ROOT: &str = "root";

/// Whether `name` is an XML element name without a namespace prefix (letters, digits, `-`,
/// `_` and `.`, not starting with a digit, `-` or `.`).
pub(crate) fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// XML 1.0's `NameStartChar`, without `:`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0's `NameChar`, without `:`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Whether XML 1.0 can hold `c` at all (even as a character reference).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// An element being read.
struct Open {
    /// Its name as written.
    name: String,
    /// Its attributes (`@name`) and child elements so far.
    members: Map,
    /// Its text so far.
    text: String,
    /// Whether it has child elements.
    children: bool,
}

/// Reads an XML document as an object whose single member is the root element.
pub(crate) fn read(input: &Input) -> Result<Value, ConvertError> {
    let text = input.read_text()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    loop {
        // Where the event starts, for messages about it.
        let start_position = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|error| malformed_at(text, reader.error_position(), &error.to_string()))?;
        let at = || start_position;
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(ConvertError::limit(format!(
                        "the XML nests elements more than {MAX_DEPTH} deep"
                    )));
                }
                let open = open(&start).map_err(|message| malformed_at(text, at(), &message))?;
                if stack.is_empty() && root.is_some() {
                    return Err(malformed_at(
                        text,
                        at(),
                        "the XML has a second root element",
                    ));
                }
                stack.push(open);
            }
            Event::Empty(start) => {
                if stack.is_empty() && root.is_some() {
                    return Err(malformed_at(
                        text,
                        at(),
                        "the XML has a second root element",
                    ));
                }
                let open = open(&start).map_err(|message| malformed_at(text, at(), &message))?;
                attach(&mut stack, &mut root, close(open));
            }
            Event::End(_) => {
                // The reader checks that end tags match their start tags.
                if let Some(open) = stack.pop() {
                    attach(&mut stack, &mut root, close(open));
                }
            }
            Event::Text(content) => {
                let content = content.xml10_content();
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => {
                        return Err(malformed_at(
                            text,
                            at(),
                            "the XML has text outside its root element",
                        ));
                    }
                }
            }
            Event::CData(content) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&content.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Cow::Owned(c.to_string()),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&reference) {
                        Some(replacement) => Cow::Borrowed(replacement),
                        None => {
                            let message = format!(
                                "the entity `&{};` is not one of XML's five predefined \
                                 entities (`&lt;`, `&gt;`, `&amp;`, `&apos;`, `&quot;`): \
                                 entities declared in a document type are not read",
                                &*reference
                            );
                            return Err(malformed_at(text, at(), &message));
                        }
                    },
                    Err(error) => return Err(malformed_at(text, at(), &error.to_string())),
                };
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&resolved);
                }
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(ConvertError::malformed(format!(
            "the XML ends inside the element <{}>: the file may be truncated",
            open.name
        )));
    }
    let (name, value) = root.ok_or_else(|| {
        ConvertError::malformed("the XML has no root element: the file is empty or not XML")
    })?;
    let mut document = Map::with_capacity(1);
    document.insert(name, value);
    Ok(Value::Object(document))
}

/// An element opened by a start tag, with its attributes.
fn open(start: &BytesStart<'_>) -> Result<Open, String> {
    let mut members = Map::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| format!("an attribute is malformed: {error}"))?;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|error| format!("an attribute value is malformed: {error}"))?;
        members.insert(
            format!("@{}", attribute.key.as_ref()),
            Value::String(value.into_owned()),
        );
    }
    Ok(Open {
        name: start.name().as_ref().to_owned(),
        members,
        text: String::new(),
        children: false,
    })
}

/// An element's name and value, once its end tag is read.
fn close(open: Open) -> (String, Value) {
    let Open {
        name,
        mut members,
        text,
        children,
    } = open;
    // Text between child elements is mostly indentation: it is kept only when it says
    // something, and then without the indentation around it.
    let text = if children { text.trim() } else { text.as_str() };
    let value = if members.is_empty() {
        if text.is_empty() {
            Value::Null
        } else {
            Value::String(text.to_owned())
        }
    } else {
        if !text.is_empty() {
            members.insert("#text".to_owned(), Value::String(text.to_owned()));
        }
        Value::Object(members)
    };
    (name, value)
}

/// Adds a closed element to its parent (a repeated name makes an array), or makes it the
/// root.
fn attach(stack: &mut [Open], root: &mut Option<(String, Value)>, (name, value): (String, Value)) {
    let Some(parent) = stack.last_mut() else {
        *root = Some((name, value));
        return;
    };
    parent.children = true;
    match parent.members.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = std::mem::replace(existing, Value::Null);
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            parent.members.insert(name, value);
        }
    }
}

/// A malformed-input error at byte `position` of `text`, with its line and column.
fn malformed_at(text: &str, position: u64, message: &str) -> ConvertError {
    let end = usize::try_from(position)
        .unwrap_or(usize::MAX)
        .min(text.len());
    let before = &text.as_bytes()[..end];
    let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    // Columns count characters: every byte but UTF-8 continuation bytes starts one.
    let column = before[line_start..]
        .iter()
        .filter(|&&byte| byte & 0xC0 != 0x80)
        .count()
        + 1;
    ConvertError::malformed(format!(
        "the XML is malformed at line {line}, column {column}: {message}"
    ))
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// Writes values as XML elements.
struct XmlWriter<'w> {
    /// Where the XML goes.
    output: &'w mut dyn Write,
    /// Indent nested elements.
    pretty: bool,
    /// The element name of list items that have no name of their own.
    item: String,
    /// Namespace prefixes declared by the elements open (`xmlns:prefix` attributes).
    prefixes: Vec<String>,
    /// Where the value being written is, for messages (`$` is the whole value).
    path: Vec<String>,
}

impl<'w> XmlWriter<'w> {
    /// A writer to `output`, indenting and naming items as `settings` say.
    fn new(output: &'w mut dyn Write, settings: &Settings) -> Self {
        Self {
            output,
            pretty: settings.pretty,
            item: settings.item.clone(),
            prefixes: Vec::new(),
            path: Vec::new(),
        }
    }

    /// Writes the XML declaration.
    fn declaration(&mut self) -> Result<(), ConvertError> {
        self.output
            .write_all(br#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        if self.pretty {
            self.output.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Starts a line at `depth` when pretty.
    fn indent(&mut self, depth: usize, pretty: bool) -> Result<(), ConvertError> {
        if pretty {
            self.output.write_all(b"\n")?;
            for _ in 0..depth {
                self.output.write_all(b"  ")?;
            }
        }
        Ok(())
    }

    /// Writes `value` as the element `key` (made a valid name), its first line already
    /// indented.
    fn element(
        &mut self,
        key: &str,
        value: &Value,
        depth: usize,
        pretty: bool,
    ) -> Result<(), ConvertError> {
        let declared = self.prefixes.len();
        let result = match value {
            Value::Object(members) => self.object(key, members, depth, pretty),
            Value::Array(items) => {
                let name = self.name(key).into_owned();
                if items.is_empty() {
                    write!(self.output, "<{name}/>")?;
                } else {
                    write!(self.output, "<{name}>")?;
                    let item = self.item.clone();
                    for (index, item_value) in items.iter().enumerate() {
                        self.path.push(format!("[{index}]"));
                        self.indent(depth + 1, pretty)?;
                        self.element(&item, item_value, depth + 1, pretty)?;
                        self.path.pop();
                    }
                    self.indent(depth, pretty)?;
                    write!(self.output, "</{name}>")?;
                }
                Ok(())
            }
            Value::Null => {
                let name = self.name(key);
                write!(self.output, "<{name}/>")?;
                Ok(())
            }
            scalar => {
                let name = self.name(key).into_owned();
                let text = scalar.cell_text();
                let text = self.escape(&text, false)?;
                write!(self.output, "<{name}>{text}</{name}>")?;
                Ok(())
            }
        };
        self.prefixes.truncate(declared);
        result
    }

    /// Writes an object as an element: `@` members as attributes, `#text` as text, the rest
    /// as child elements.
    fn object(
        &mut self,
        key: &str,
        members: &Map,
        depth: usize,
        pretty: bool,
    ) -> Result<(), ConvertError> {
        // Namespace declarations first: they make prefixed names valid, the element's own
        // included.
        for member in members.keys() {
            if let Some(prefix) = member.strip_prefix("@xmlns:")
                && is_name(prefix)
            {
                self.prefixes.push(prefix.to_owned());
            }
        }
        let name = self.name(key).into_owned();
        let mut attributes: IndexSet<String> = IndexSet::new();
        let mut values = Vec::new();
        let mut text = None;
        let mut children = Vec::new();
        for (member, value) in members {
            let scalar = !matches!(value, Value::Array(_) | Value::Object(_));
            if let Some(attribute) = member.strip_prefix('@')
                && scalar
            {
                let attribute = self.name(attribute).into_owned();
                // Two keys may make the same name; the second is written as an element.
                if !attributes.contains(&attribute) {
                    self.path.push(format!(".{member}"));
                    let escaped = self.escape(&value.cell_text(), true)?.into_owned();
                    self.path.pop();
                    attributes.insert(attribute);
                    values.push(escaped);
                    continue;
                }
            }
            if member == "#text" && scalar && text.is_none() {
                text = Some(value);
                continue;
            }
            children.push((member, value));
        }
        write!(self.output, "<{name}")?;
        for (attribute, value) in attributes.iter().zip(&values) {
            write!(self.output, " {attribute}=\"{value}\"")?;
        }
        if text.is_none() && children.is_empty() {
            self.output.write_all(b"/>")?;
            return Ok(());
        }
        self.output.write_all(b">")?;
        // Indentation would become part of mixed text, so mixed content is written as is.
        let pretty = pretty && text.is_none();
        if let Some(text) = text {
            self.path.push(".#text".to_owned());
            let escaped = self.escape(&text.cell_text(), false)?.into_owned();
            self.path.pop();
            self.output.write_all(escaped.as_bytes())?;
        }
        for &(member, value) in &children {
            self.path.push(format!(".{member}"));
            match value {
                // A list member is the element repeated; an empty one, an empty element.
                Value::Array(items) if !items.is_empty() => {
                    for (index, item) in items.iter().enumerate() {
                        self.path.push(format!("[{index}]"));
                        self.indent(depth + 1, pretty)?;
                        self.element(member, item, depth + 1, pretty)?;
                        self.path.pop();
                    }
                }
                Value::Array(_) => {
                    self.indent(depth + 1, pretty)?;
                    self.element(member, &Value::Null, depth + 1, pretty)?;
                }
                _ => {
                    self.indent(depth + 1, pretty)?;
                    self.element(member, value, depth + 1, pretty)?;
                }
            }
            self.path.pop();
        }
        if !children.is_empty() {
            self.indent(depth, pretty)?;
        }
        write!(self.output, "</{name}>")?;
        Ok(())
    }

    /// `key` as an element or attribute name: as it is when valid (a prefix is valid when
    /// declared), else with every character a name cannot hold replaced by `_`.
    fn name<'k>(&self, key: &'k str) -> Cow<'k, str> {
        if is_name(key) || key == "xmlns" {
            return Cow::Borrowed(key);
        }
        if let Some((prefix, local)) = key.split_once(':')
            && is_name(prefix)
            && is_name(local)
            && (prefix == "xml"
                || prefix == "xmlns"
                || self.prefixes.iter().any(|declared| declared == prefix))
        {
            return Cow::Borrowed(key);
        }
        let mut name = String::with_capacity(key.len() + 1);
        if !key.chars().next().is_some_and(is_name_start) {
            name.push('_');
        }
        name.extend(key.chars().map(|c| if is_name_char(c) { c } else { '_' }));
        Cow::Owned(name)
    }

    /// Escapes text for content (`attribute` false) or an attribute value in double quotes,
    /// keeping line breaks and tabs as they are read back.
    fn escape<'t>(&self, text: &'t str, attribute: bool) -> Result<Cow<'t, str>, ConvertError> {
        if let Some(bad) = text.chars().find(|&c| !is_xml_char(c)) {
            let path: String = self.path.concat();
            return Err(ConvertError::unsupported(format!(
                "the text at `${path}` holds the control character U+{:04X}, which XML 1.0 \
                 cannot hold: remove it, or convert to JSON instead",
                u32::from(bad)
            )));
        }
        let special = |c: char| {
            matches!(c, '&' | '<' | '>' | '\r') || (attribute && matches!(c, '"' | '\n' | '\t'))
        };
        if !text.contains(special) {
            return Ok(Cow::Borrowed(text));
        }
        let mut escaped = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            match c {
                '&' => escaped.push_str("&amp;"),
                '<' => escaped.push_str("&lt;"),
                '>' => escaped.push_str("&gt;"),
                '\r' => escaped.push_str("&#13;"),
                '"' if attribute => escaped.push_str("&quot;"),
                '\n' if attribute => escaped.push_str("&#10;"),
                '\t' if attribute => escaped.push_str("&#9;"),
                other => escaped.push(other),
            }
        }
        Ok(Cow::Owned(escaped))
    }
}

/// Writes a whole document. With the `root` option, the value is wrapped in that element;
/// without, an object with a single member that is not a list (as XML read by this plugin
/// is) is that element, and anything else is wrapped in `<root>`.
pub(crate) fn write_document(
    value: &Value,
    settings: &Settings,
    output: &mut dyn Write,
) -> Result<(), ConvertError> {
    let mut writer = XmlWriter::new(output, settings);
    writer.declaration()?;
    match (&settings.root, value) {
        (None, Value::Object(members)) if members.len() == 1 => match members.first() {
            Some((key, member)) if !matches!(member, Value::Array(_)) => {
                writer.path.push(format!(".{key}"));
                writer.element(key, member, 0, settings.pretty)?;
            }
            _ => writer.element(DEFAULT_ROOT, value, 0, settings.pretty)?,
        },
        (root, _) => {
            let root = root.as_deref().unwrap_or(DEFAULT_ROOT);
            writer.element(root, value, 0, settings.pretty)?;
        }
    }
    writer.output.write_all(b"\n")?;
    Ok(())
}

/// Writes a list as `<root><item>…</item>…</root>`, an item at a time.
pub(crate) struct XmlSink<'w> {
    /// The writer of the items.
    writer: XmlWriter<'w>,
    /// The root element's name.
    root: String,
    /// Items written so far.
    count: u64,
}

impl<'w> XmlSink<'w> {
    /// A sink writing to `output`; nothing is written before the first item.
    pub(crate) fn new(
        output: &'w mut dyn Write,
        settings: &Settings,
    ) -> Result<Self, ConvertError> {
        Ok(Self {
            writer: XmlWriter::new(output, settings),
            root: settings
                .root
                .clone()
                .unwrap_or_else(|| DEFAULT_ROOT.to_owned()),
            count: 0,
        })
    }
}

impl RecordSink for XmlSink<'_> {
    fn item(&mut self, value: &Value) -> Result<(), ConvertError> {
        if self.count == 0 {
            self.writer.declaration()?;
            write!(self.writer.output, "<{}>", self.root)?;
        }
        let pretty = self.writer.pretty;
        self.writer.path.clear();
        self.writer.path.push(format!("[{}]", self.count));
        self.count += 1;
        self.writer.indent(1, pretty)?;
        let item = self.writer.item.clone();
        self.writer.element(&item, value, 1, pretty)
    }

    fn finish(mut self: Box<Self>) -> Result<(), ConvertError> {
        if self.count == 0 {
            self.writer.declaration()?;
            write!(self.writer.output, "<{}/>", self.root)?;
        } else {
            let pretty = self.writer.pretty;
            self.writer.indent(0, pretty)?;
            write!(self.writer.output, "</{}>", self.root)?;
        }
        self.writer.output.write_all(b"\n")?;
        Ok(())
    }
}
