//! YAML writing. Values are written so that YAML 1.2 and YAML 1.1 readers (PyYAML) read
//! them back alike: a string is written plain only when it cannot be read as anything else
//! (`yes`, `2024-03-01`, `1:20` and `0x1F` are quoted, which YAML 1.1 would read as a
//! boolean, a date or numbers), floats always have a point and a signed exponent
//! (`1.0e+300`), and characters YAML forbids in a stream are escaped.

use std::io::Write;

use metamorph_plugin_api::ConvertError;

use crate::records::RecordSink;
use crate::value::{Map, Value};

/// Writes `value` as a YAML document: in block style when `pretty`, else in flow style on
/// one line.
pub(crate) fn write_document(
    value: &Value,
    pretty: bool,
    output: &mut dyn Write,
) -> Result<(), ConvertError> {
    let mut text = String::new();
    if pretty {
        block(&mut text, value, 0);
    } else {
        flow(&mut text, value);
        text.push('\n');
    }
    output.write_all(text.as_bytes())?;
    Ok(())
}

/// Writes a YAML sequence an item at a time.
pub(crate) struct YamlSink<'w> {
    /// Where the YAML goes.
    output: &'w mut dyn Write,
    /// Block style (else flow style).
    pretty: bool,
    /// Items written so far.
    count: u64,
    /// The text of the item being written.
    text: String,
}

impl<'w> YamlSink<'w> {
    /// A sink writing block style when `pretty`, else flow style; nothing is written before
    /// the first item.
    pub(crate) fn new(output: &'w mut dyn Write, pretty: bool) -> Self {
        Self {
            output,
            pretty,
            count: 0,
            text: String::new(),
        }
    }
}

impl RecordSink for YamlSink<'_> {
    fn item(&mut self, value: &Value) -> Result<(), ConvertError> {
        self.text.clear();
        if self.pretty {
            sequence(&mut self.text, std::slice::from_ref(value), 0, false);
        } else {
            self.text.push_str(if self.count == 0 { "[" } else { ", " });
            flow(&mut self.text, value);
        }
        self.count += 1;
        self.output.write_all(self.text.as_bytes())?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), ConvertError> {
        let end: &[u8] = match (self.count, self.pretty) {
            (0, _) => b"[]\n",
            (_, true) => b"",
            (_, false) => b"]\n",
        };
        self.output.write_all(end)?;
        Ok(())
    }
}

/// Whether a value is written on the line of its key or dash (scalars and empty
/// collections).
fn is_inline(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        _ => true,
    }
}

/// Writes a value in block style at `indent`, ending with a line break.
fn block(text: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(members) if !members.is_empty() => mapping(text, members, indent, false),
        Value::Array(items) if !items.is_empty() => sequence(text, items, indent, false),
        other => {
            scalar(text, other);
            text.push('\n');
        }
    }
}

/// Writes a scalar or an empty collection on its line in block style: strings plain where
/// they cannot be misread.
fn scalar(text: &mut String, value: &Value) {
    match value {
        Value::String(value) => string(text, value, false),
        other => flow(text, other),
    }
}

/// Writes a non-empty mapping in block style; with `inline`, its first line continues the
/// line already started (after a dash).
fn mapping(text: &mut String, members: &Map, indent: usize, inline: bool) {
    for (index, (key, member)) in members.iter().enumerate() {
        if index > 0 || !inline {
            spaces(text, indent);
        }
        string(text, key, false);
        text.push(':');
        if is_inline(member) {
            text.push(' ');
            scalar(text, member);
            text.push('\n');
        } else {
            text.push('\n');
            block(text, member, indent + 2);
        }
    }
}

/// Writes a non-empty sequence in block style; with `inline`, its first line continues the
/// line already started.
fn sequence(text: &mut String, items: &[Value], indent: usize, inline: bool) {
    for (index, item) in items.iter().enumerate() {
        if index > 0 || !inline {
            spaces(text, indent);
        }
        text.push_str("- ");
        match item {
            Value::Object(members) if !members.is_empty() => {
                mapping(text, members, indent + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => sequence(text, inner, indent + 2, true),
            other => {
                scalar(text, other);
                text.push('\n');
            }
        }
    }
}

/// Indentation.
fn spaces(text: &mut String, count: usize) {
    text.extend(std::iter::repeat_n(' ', count));
}

/// Writes a value in flow style (for collections, on one line; strings always quoted).
fn flow(text: &mut String, value: &Value) {
    match value {
        Value::Null => text.push_str("null"),
        Value::Bool(true) => text.push_str("true"),
        Value::Bool(false) => text.push_str("false"),
        Value::Int(number) => text.push_str(&number.to_string()),
        Value::UInt(number) => text.push_str(&number.to_string()),
        Value::Float(number) => text.push_str(&float(*number)),
        Value::String(value) => string(text, value, true),
        Value::Array(items) => {
            text.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    text.push_str(", ");
                }
                flow(text, item);
            }
            text.push(']');
        }
        Value::Object(members) => {
            text.push('{');
            for (index, (key, member)) in members.iter().enumerate() {
                if index > 0 {
                    text.push_str(", ");
                }
                string(text, key, true);
                text.push_str(": ");
                flow(text, member);
            }
            text.push('}');
        }
    }
}

/// A float as both YAML 1.1 and 1.2 read it: with a point, and a signed exponent.
fn float(number: f64) -> String {
    if number.is_nan() {
        return ".nan".to_owned();
    }
    if number.is_infinite() {
        return if number > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    // Rust writes the shortest text that reads back exactly, without an exponent for
    // ordinary magnitudes; very large and small ones get one.
    let plain = number.to_string();
    let magnitude = number.abs();
    if magnitude != 0.0 && !(1e-5..1e16).contains(&magnitude) {
        let exponent = format!("{number:e}");
        let (mantissa, power) = exponent.split_once('e').unwrap_or((&exponent, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        let power = if power.starts_with('-') {
            power.to_owned()
        } else {
            format!("+{power}")
        };
        return format!("{mantissa}e{power}");
    }
    if plain.contains('.') {
        plain
    } else {
        format!("{plain}.0")
    }
}

/// Writes a string: plain when that cannot be misread (and `quote_all` is false), else
/// double-quoted with escapes.
fn string(text: &mut String, value: &str, quote_all: bool) {
    if !quote_all && is_plain(value) {
        text.push_str(value);
        return;
    }
    text.push('"');
    for c in value.chars() {
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            '\n' => text.push_str("\\n"),
            '\t' => text.push_str("\\t"),
            '\r' => text.push_str("\\r"),
            c if is_printable(c) => text.push(c),
            c => {
                let code = u32::from(c);
                if code <= 0xFFFF {
                    text.push_str(&format!("\\u{code:04X}"));
                } else {
                    text.push_str(&format!("\\U{code:08X}"));
                }
            }
        }
    }
    text.push('"');
}

/// Whether YAML allows `c` unescaped in a stream (YAML 1.1's printable set, which 1.2
/// also allows), leaving out the line breaks and BOM that a quoted string escapes anyway.
fn is_printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

/// Whether a string can be written plain: it starts with a letter or `_`, holds only
/// letters, digits, spaces and a few harmless punctuation marks, does not end with a space,
/// and is not a word YAML 1.1 or 1.2 reads as a boolean or null.
fn is_plain(value: &str) -> bool {
    const RESERVED: [&str; 9] = ["y", "n", "yes", "no", "true", "false", "on", "off", "null"];
    let mut chars = value.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && chars.all(|c| {
            c.is_alphanumeric()
                || matches!(
                    c,
                    ' ' | '_'
                        | '-'
                        | '.'
                        | '/'
                        | '('
                        | ')'
                        | ','
                        | '\''
                        | '+'
                        | '&'
                        | '='
                        | '@'
                        | ';'
                )
        })
        && !value.ends_with(' ')
        && value.chars().all(is_printable)
        && !RESERVED.iter().any(|word| word.eq_ignore_ascii_case(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_have_a_point_and_a_signed_exponent() {
        assert_eq!(float(2.0), "2.0");
        assert_eq!(float(-0.5), "-0.5");
        assert_eq!(float(1e300), "1.0e+300");
        assert_eq!(float(1.5e-7), "1.5e-7");
        assert_eq!(float(123_456.789), "123456.789");
        assert_eq!(float(f64::NEG_INFINITY), "-.inf");
    }

    #[test]
    fn strings_that_could_be_misread_are_quoted() {
        let write = |value: &str| {
            let mut text = String::new();
            string(&mut text, value, false);
            text
        };
        assert_eq!(write("Pen, blue"), "Pen, blue");
        assert_eq!(write("Müller"), "Müller");
        for value in [
            "yes",
            "No",
            "ON",
            "null",
            "2024-03-01",
            "1:20",
            "0x1F",
            "",
            " a",
            "a ",
            "a: b",
            "a #b",
            "-",
            "~",
            "\u{85}",
        ] {
            assert!(write(value).starts_with('"'), "{value:?}");
        }
        assert_eq!(write("a\u{1}\"b"), "\"a\\u0001\\\"b\"");
    }
}
