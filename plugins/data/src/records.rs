//! Records and documents: JSON, NDJSON, YAML and TOML read into [`Value`]s and written from
//! them.
//!
//! NDJSON is read and written a line at a time, and a JSON document whose top level is an
//! array is read an item at a time, so long lists of records stream. YAML, TOML and other
//! JSON documents are read whole. YAML is written by [`crate::yaml`], XML read and written by
//! [`crate::xml`].

use std::io::{BufRead, Write};

use metamorph_plugin_api::{ConvertError, Input};
use serde::Deserialize;
use serde::de::DeserializeSeed;

use crate::Format;
use crate::options::Settings;
use crate::value::{Elements, Map, Top, Value};

/// Receives the items of a list one at a time and writes them as one document.
pub(crate) trait RecordSink {
    /// Writes the next item.
    fn item(&mut self, value: &Value) -> Result<(), ConvertError>;

    /// Completes the document.
    fn finish(self: Box<Self>) -> Result<(), ConvertError>;
}

/// Where records come from. A source can be read more than once: a table needs its columns
/// before its first row, so records are read twice rather than held.
pub(crate) enum RecordSource<'a> {
    /// NDJSON lines, streamed.
    Ndjson(&'a Input),
    /// A JSON document: its top-level array is streamed; anything else is read whole and
    /// its records located (see [`located`]).
    Json(&'a Input),
    /// Records already in memory.
    Loaded(Vec<Value>),
}

impl RecordSource<'_> {
    /// Calls `each` with every record, in order.
    pub(crate) fn for_each(
        &mut self,
        each: &mut dyn FnMut(&Value) -> Result<(), ConvertError>,
    ) -> Result<(), ConvertError> {
        match self {
            Self::Ndjson(input) => read_ndjson(input, &mut |value| each(&value)),
            Self::Json(input) => match read_json(input, &mut |value| each(&value))? {
                Top::Streamed => Ok(()),
                Top::Document(document) => {
                    let records = located(document);
                    records.iter().try_for_each(&mut *each)?;
                    *self = Self::Loaded(records);
                    Ok(())
                }
            },
            Self::Loaded(records) => records.iter().try_for_each(each),
        }
    }
}

/// The records of a document that is not itself a list:
///
/// - an object with a single member that is an array or an object stands for that member
///   (`{"rows": [...]}`, as TOML must write a list, or `{"rows": {"row": [...]}}`, as XML
///   reads), XML attributes beside it (`@name` members) aside: the search goes on inside it;
/// - an array is the list of records;
/// - an object of two or more members that are all objects (`{"id1": {...}, "id2": {...}}`)
///   is a map of records: one record per member, with the member's name in a first field
///   `key`;
/// - anything else is a single record.
pub(crate) fn located(mut value: Value) -> Vec<Value> {
    loop {
        value = match value {
            Value::Array(items) => return items,
            Value::Object(members) if wraps_one(&members) => members
                .into_iter()
                .find(|(key, _)| !key.starts_with('@'))
                .map_or(Value::Null, |(_, member)| member),
            Value::Object(members)
                if members.len() >= 2
                    && members
                        .values()
                        .all(|member| matches!(member, Value::Object(_))) =>
            {
                return members
                    .into_iter()
                    .map(|(key, member)| keyed(key, member))
                    .collect();
            }
            other => return vec![other],
        };
    }
}

/// Whether an object stands for its one member that is an array or an object: it has no
/// other member but XML attributes (`@name` members with a scalar value, as the namespace
/// declarations of a root element).
fn wraps_one(members: &Map) -> bool {
    let mut wrapped = 0;
    for (key, member) in members {
        match member {
            Value::Array(_) | Value::Object(_) if !key.starts_with('@') => wrapped += 1,
            Value::Array(_) | Value::Object(_) => return false,
            _ if key.starts_with('@') => {}
            _ => return false,
        }
    }
    wrapped == 1
}

/// A member of a map of records, as a record with the member's name first.
fn keyed(key: String, member: Value) -> Value {
    let Value::Object(fields) = member else {
        return member;
    };
    let mut record = Map::with_capacity(fields.len() + 1);
    record.insert("key".to_owned(), Value::String(key));
    record.extend(fields);
    Value::Object(record)
}

/// Skips a UTF-8 byte-order mark at the start of `reader`.
fn skip_bom(reader: &mut impl BufRead) -> Result<(), ConvertError> {
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(())
}

/// Reads NDJSON: one JSON value per line; blank lines are skipped.
pub(crate) fn read_ndjson(
    input: &Input,
    each: &mut dyn FnMut(Value) -> Result<(), ConvertError>,
) -> Result<(), ConvertError> {
    let mut reader = input.reader()?;
    skip_bom(&mut reader)?;
    let mut line = Vec::new();
    let mut number = 0_u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_slice(text).map_err(|error| {
            let message = error.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            ConvertError::malformed(format!(
                "line {number} is not JSON (column {}): {message}",
                error.column()
            ))
        })?;
        each(value)?;
    }
}

/// Reads a JSON document, giving the items of a top-level array to `each` as they are
/// read, or returning any other document whole.
pub(crate) fn read_json(
    input: &Input,
    each: &mut dyn FnMut(Value) -> Result<(), ConvertError>,
) -> Result<Top, ConvertError> {
    let mut reader = input.reader()?;
    skip_bom(&mut reader)?;
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let mut failure = None;
    let top = Elements {
        each,
        failure: &mut failure,
    }
    .deserialize(&mut deserializer);
    if let Some(error) = failure {
        return Err(error);
    }
    let top = top.map_err(json_read_error)?;
    deserializer.end().map_err(json_read_error)?;
    Ok(top)
}

/// A JSON reading error as a conversion error.
fn json_read_error(error: serde_json::Error) -> ConvertError {
    if error.is_io() {
        ConvertError::from(std::io::Error::from(error))
    } else {
        ConvertError::malformed(format!("the JSON is malformed: {error}"))
    }
}

/// A JSON writing error as a conversion error (a failed write is the output limit).
fn json_write_error(error: serde_json::Error) -> ConvertError {
    if error.is_io() {
        ConvertError::from(std::io::Error::from(error))
    } else {
        ConvertError::internal(format!("cannot write JSON: {error}"))
    }
}

/// Reads a YAML stream: one document is that document; several are an array of them; none
/// is null. Merge keys (`<<`) are applied and tags dropped.
pub(crate) fn read_yaml(input: &Input) -> Result<Value, ConvertError> {
    let bytes = input.read_all()?;
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_slice(&bytes) {
        let mut value = serde_norway::Value::deserialize(document)
            .map_err(|error| ConvertError::malformed(format!("the YAML is malformed: {error}")))?;
        value.apply_merge().map_err(|error| {
            ConvertError::malformed(format!(
                "a YAML merge key (`<<`) cannot be applied: {error}"
            ))
        })?;
        documents.push(from_yaml(value)?);
    }
    Ok(match documents.len() {
        0 => Value::Null,
        1 => documents.pop().unwrap_or(Value::Null),
        _ => Value::Array(documents),
    })
}

/// A YAML value as a [`Value`].
fn from_yaml(value: serde_norway::Value) -> Result<Value, ConvertError> {
    Ok(match value {
        serde_norway::Value::Null => Value::Null,
        serde_norway::Value::Bool(value) => Value::Bool(value),
        serde_norway::Value::Number(number) => {
            if let Some(number) = number.as_i64() {
                Value::Int(number)
            } else if let Some(number) = number.as_u64() {
                Value::UInt(number)
            } else {
                Value::Float(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_norway::Value::String(text) => Value::String(text),
        serde_norway::Value::Sequence(items) => {
            Value::Array(items.into_iter().map(from_yaml).collect::<Result<_, _>>()?)
        }
        serde_norway::Value::Mapping(mapping) => {
            let mut members = Map::with_capacity(mapping.len());
            for (key, member) in mapping {
                members.insert(yaml_key(key)?, from_yaml(member)?);
            }
            Value::Object(members)
        }
        serde_norway::Value::Tagged(tagged) => from_yaml(tagged.value)?,
    })
}

/// A YAML mapping key as text.
fn yaml_key(key: serde_norway::Value) -> Result<String, ConvertError> {
    match key {
        serde_norway::Value::String(text) => Ok(text),
        serde_norway::Value::Number(number) => Ok(number.to_string()),
        serde_norway::Value::Bool(value) => Ok(value.to_string()),
        serde_norway::Value::Null => Ok("null".to_owned()),
        serde_norway::Value::Tagged(tagged) => yaml_key(tagged.value),
        serde_norway::Value::Sequence(_) | serde_norway::Value::Mapping(_) => {
            Err(ConvertError::unsupported(
                "a YAML mapping key is itself a list or a mapping: only text, number and \
                 boolean keys can be converted",
            ))
        }
    }
}

/// Reads a TOML document. Dates and times become RFC 3339 text.
pub(crate) fn read_toml(input: &Input) -> Result<Value, ConvertError> {
    let text = input.read_text()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let table: toml::Table = toml::from_str(text).map_err(|error| {
        ConvertError::malformed(format!(
            "the TOML is malformed: {}",
            error.to_string().trim_end()
        ))
    })?;
    Ok(from_toml(toml::Value::Table(table)))
}

/// A TOML value as a [`Value`].
fn from_toml(value: toml::Value) -> Value {
    match value {
        toml::Value::String(text) => Value::String(text),
        toml::Value::Integer(number) => Value::Int(number),
        toml::Value::Float(number) => Value::Float(number),
        toml::Value::Boolean(value) => Value::Bool(value),
        toml::Value::Datetime(datetime) => Value::String(datetime.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(from_toml).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(key, member)| (key, from_toml(member)))
                .collect(),
        ),
    }
}

/// A sink writing `target`.
pub(crate) fn sink<'w>(
    target: Format,
    settings: &Settings,
    output: &'w mut dyn Write,
) -> Result<Box<dyn RecordSink + 'w>, ConvertError> {
    Ok(match target {
        Format::Json => Box::new(JsonSink::new(output, settings.pretty, "JSON")),
        Format::Yaml => Box::new(crate::yaml::YamlSink::new(output, settings.pretty)),
        Format::Ndjson => Box::new(NdjsonSink {
            output,
            count: 0,
            buffer: Vec::new(),
        }),
        Format::Toml => Box::new(TomlSink {
            output,
            root: settings.root.clone(),
            pretty: settings.pretty,
            items: Vec::new(),
            count: 0,
            streaming: false,
        }),
        Format::Xml => Box::new(crate::xml::XmlSink::new(output, settings)?),
        Format::Csv | Format::Tsv | Format::Xlsx => {
            return Err(ConvertError::internal(format!(
                "{target:?} is not a records format"
            )));
        }
    })
}

/// Writes a whole document as `target`. A top-level array is written as the sink writes a
/// list, so the same list looks the same whether it was streamed or not.
pub(crate) fn write_document(
    value: Value,
    target: Format,
    settings: &Settings,
    output: &mut dyn Write,
) -> Result<(), ConvertError> {
    let items = match (value, target) {
        (Value::Array(items), _) => items,
        (document, Format::Ndjson) => located(document),
        (document, Format::Json) => {
            return write_json_document(&document, settings.pretty, "JSON", output);
        }
        (document, Format::Yaml) => {
            return crate::yaml::write_document(&document, settings.pretty, output);
        }
        (document, Format::Toml) => {
            let text = toml_document(document, settings.root.as_deref(), settings.pretty)?;
            output.write_all(text.as_bytes())?;
            return Ok(());
        }
        (document, Format::Xml) => return crate::xml::write_document(&document, settings, output),
        (_, Format::Csv | Format::Tsv | Format::Xlsx) => {
            return Err(ConvertError::internal(format!(
                "{target:?} is not a document format"
            )));
        }
    };
    let mut sink = sink(target, settings, output)?;
    for item in &items {
        sink.item(item)?;
    }
    sink.finish()
}

/// The error for a NaN or an infinity where JSON syntax is written.
fn check_finite(value: &Value, what: &str, item: Option<u64>) -> Result<(), ConvertError> {
    match value.non_finite_path() {
        None => Ok(()),
        Some(path) => {
            let place = item.map(|n| format!(" in item {n}")).unwrap_or_default();
            Err(ConvertError::unsupported(format!(
                "{what} cannot hold NaN or infinity, found at `{path}`{place}"
            )))
        }
    }
}

/// Writes a document that is not a list as JSON text.
fn write_json_document(
    value: &Value,
    pretty: bool,
    what: &str,
    output: &mut dyn Write,
) -> Result<(), ConvertError> {
    check_finite(value, what, None)?;
    if pretty {
        serde_json::to_writer_pretty(&mut *output, value).map_err(json_write_error)?;
    } else {
        serde_json::to_writer(&mut *output, value).map_err(json_write_error)?;
    }
    output.write_all(b"\n")?;
    Ok(())
}

/// Writes a JSON array an item at a time.
struct JsonSink<'w> {
    /// Where the JSON goes.
    output: &'w mut dyn Write,
    /// Indent.
    pretty: bool,
    /// The format named in messages.
    what: &'static str,
    /// Items written so far.
    count: u64,
    /// The text of the item being written.
    buffer: Vec<u8>,
}

impl<'w> JsonSink<'w> {
    /// A sink writing nothing before its first item.
    fn new(output: &'w mut dyn Write, pretty: bool, what: &'static str) -> Self {
        Self {
            output,
            pretty,
            what,
            count: 0,
            buffer: Vec::new(),
        }
    }
}

impl RecordSink for JsonSink<'_> {
    fn item(&mut self, value: &Value) -> Result<(), ConvertError> {
        self.count += 1;
        check_finite(value, self.what, Some(self.count))?;
        self.output
            .write_all(if self.count == 1 { b"[" } else { b"," })?;
        if self.pretty {
            // Each item is indented one level: JSON text has no raw line breaks inside
            // strings, so every line break of the item's own pretty form is structural.
            self.buffer.clear();
            serde_json::to_writer_pretty(&mut self.buffer, value).map_err(json_write_error)?;
            for line in self.buffer.split(|&byte| byte == b'\n') {
                self.output.write_all(b"\n  ")?;
                self.output.write_all(line)?;
            }
        } else {
            serde_json::to_writer(&mut *self.output, value).map_err(json_write_error)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), ConvertError> {
        let end: &[u8] = match (self.count, self.pretty) {
            (0, _) => b"[]\n",
            (_, true) => b"\n]\n",
            (_, false) => b"]\n",
        };
        self.output.write_all(end)?;
        Ok(())
    }
}

/// Writes NDJSON, a line per item.
struct NdjsonSink<'w> {
    /// Where the lines go.
    output: &'w mut dyn Write,
    /// Lines written so far.
    count: u64,
    /// The text of the line being written.
    buffer: Vec<u8>,
}

impl RecordSink for NdjsonSink<'_> {
    fn item(&mut self, value: &Value) -> Result<(), ConvertError> {
        self.count += 1;
        check_finite(value, "NDJSON", Some(self.count))?;
        self.buffer.clear();
        serde_json::to_writer(&mut self.buffer, value).map_err(json_write_error)?;
        write_escaping_line_breaks(&self.buffer, &mut *self.output)?;
        self.output.write_all(b"\n")?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), ConvertError> {
        Ok(())
    }
}

/// Writes JSON text with the characters that some readers take for line breaks (U+0085,
/// U+2028, U+2029; Python's `str.splitlines` among them) escaped, so that an NDJSON line is
/// one line for every reader. JSON text holds them only inside strings, where an escape
/// means the same.
fn write_escaping_line_breaks(json: &[u8], output: &mut dyn Write) -> Result<(), ConvertError> {
    let mut rest = json;
    while let Some(at) = rest.iter().position(|&byte| byte == 0xC2 || byte == 0xE2) {
        let (escape, length): (&[u8], usize) = match &rest[at..] {
            [0xC2, 0x85, ..] => (b"\\u0085", 2),
            [0xE2, 0x80, 0xA8, ..] => (b"\\u2028", 3),
            [0xE2, 0x80, 0xA9, ..] => (b"\\u2029", 3),
            _ => {
                output.write_all(&rest[..=at])?;
                rest = &rest[at + 1..];
                continue;
            }
        };
        output.write_all(&rest[..at])?;
        output.write_all(escape)?;
        rest = &rest[at + length..];
    }
    output.write_all(rest)?;
    Ok(())
}

/// Writes TOML. A list of tables is written a table at a time, as `[[root]]` sections one
/// after another; any other list is held and written at the end (as `root = [...]`).
struct TomlSink<'w> {
    /// Where the TOML goes.
    output: &'w mut dyn Write,
    /// The key the list goes under (default [`TOML_ROOT`]).
    root: Option<String>,
    /// Multi-line arrays.
    pretty: bool,
    /// Items held, when the list does not start with a table.
    items: Vec<Value>,
    /// Items seen.
    count: u64,
    /// Whether the items are written as they come (the first one was a table).
    streaming: bool,
}

impl RecordSink for TomlSink<'_> {
    fn item(&mut self, value: &Value) -> Result<(), ConvertError> {
        let index = self.count;
        self.count += 1;
        if index == 0 {
            self.streaming = matches!(value, Value::Object(_));
        }
        if !self.streaming {
            self.items.push(value.clone());
            return Ok(());
        }
        let root = self.root.as_deref().unwrap_or(TOML_ROOT);
        if !matches!(value, Value::Object(_)) {
            return Err(ConvertError::unsupported(format!(
                "item {} is {}, but the items before it are tables: TOML writes a list of \
                 tables as `[[{root}]]` sections and cannot put anything else among them; \
                 convert to JSON or YAML instead",
                self.count,
                value.kind()
            )));
        }
        let table = to_toml(value.clone()).map_err(|mut problem| {
            problem.path.push(format!("[{index}]"));
            problem.path.push(format!(".{root}"));
            problem.into_error()
        })?;
        // A one-table list is written as one `[[root]]` section (sub-tables as
        // `[root.sub]`, which belong to the section before them); sections one after another
        // make the list.
        let mut document = toml::Table::new();
        document.insert(
            root.to_owned(),
            toml::Value::Array(vec![
                table.unwrap_or_else(|| toml::Value::Table(toml::Table::new())),
            ]),
        );
        let text = if self.pretty {
            toml::to_string_pretty(&document)
        } else {
            toml::to_string(&document)
        }
        .map_err(|error| ConvertError::internal(format!("cannot write TOML: {error}")))?;
        if index > 0 {
            self.output.write_all(b"\n")?;
        }
        self.output.write_all(text.as_bytes())?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), ConvertError> {
        if !self.streaming {
            let text = toml_document(Value::Array(self.items), self.root.as_deref(), self.pretty)?;
            self.output.write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

/// The key a non-table top level goes under in TOML, unless `root` is given.
const TOML_ROOT: &str = "items";

/// A value as a TOML document. A TOML document is a table: anything else, or everything
/// when `root` is given, goes under the key `root` (default [`TOML_ROOT`]). TOML has no
/// null: null members of tables are left out, and a null in an array is refused.
fn toml_document(value: Value, root: Option<&str>, pretty: bool) -> Result<String, ConvertError> {
    let value = match (value, root) {
        (Value::Object(members), None) => Value::Object(members),
        (other, root) => {
            let mut members = Map::with_capacity(1);
            members.insert(root.unwrap_or(TOML_ROOT).to_owned(), other);
            Value::Object(members)
        }
    };
    let table = match to_toml(value) {
        Ok(Some(toml::Value::Table(table))) => table,
        Ok(_) => toml::Table::new(),
        Err(problem) => return Err(problem.into_error()),
    };
    let text = if pretty {
        toml::to_string_pretty(&table)
    } else {
        toml::to_string(&table)
    };
    text.map_err(|error| ConvertError::internal(format!("cannot write TOML: {error}")))
}

/// Why a value cannot be written as TOML, and where (innermost segment first).
struct TomlProblem {
    message: String,
    path: Vec<String>,
}

impl TomlProblem {
    fn into_error(self) -> ConvertError {
        let path: String = self.path.iter().rev().map(String::as_str).collect();
        ConvertError::unsupported(format!(
            "{} (at `{}`): TOML cannot hold this value; convert to JSON or YAML instead",
            self.message,
            path.trim_start_matches('.')
        ))
    }
}

/// A value as TOML; `None` for null.
fn to_toml(value: Value) -> Result<Option<toml::Value>, TomlProblem> {
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Bool(value) => toml::Value::Boolean(value),
        Value::Int(number) => toml::Value::Integer(number),
        Value::UInt(number) => {
            return Err(TomlProblem {
                message: format!("TOML integers are 64-bit signed: {number} does not fit"),
                path: Vec::new(),
            });
        }
        Value::Float(number) => toml::Value::Float(number),
        Value::String(text) => toml::Value::String(text),
        Value::Array(items) => {
            let mut array = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let converted = to_toml(item).map_err(|mut problem| {
                    problem.path.push(format!("[{index}]"));
                    problem
                })?;
                array.push(converted.ok_or_else(|| TomlProblem {
                    message: "TOML has no null, and an array cannot leave one out".to_owned(),
                    path: vec![format!("[{index}]")],
                })?);
            }
            toml::Value::Array(array)
        }
        Value::Object(members) => {
            let mut table = toml::Table::new();
            for (key, member) in members {
                let converted = to_toml(member).map_err(|mut problem| {
                    problem.path.push(format!(".{key}"));
                    problem
                })?;
                if let Some(converted) = converted {
                    table.insert(key, converted);
                }
            }
            toml::Value::Table(table)
        }
    }))
}
