//! The value every format is read into and written from: a JSON-like tree whose objects keep
//! their members in document order (so columns, keys and elements come out in the order
//! they went in).

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// The members of an object, in document order.
pub(crate) type Map = IndexMap<String, Value>;

/// A document or a record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// No value: JSON `null`, an empty cell.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits 64 signed bits.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A floating-point number (possibly NaN or infinite when read from YAML or TOML).
    Float(f64),
    /// Text.
    String(String),
    /// An ordered list.
    Array(Vec<Value>),
    /// Named members, in document order.
    Object(Map),
}

impl Value {
    /// What kind of value this is, for messages: "a number", "an array"…
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Int(_) | Self::UInt(_) | Self::Float(_) => "a number",
            Self::String(_) => "a string",
            Self::Array(_) => "an array",
            Self::Object(_) => "an object",
        }
    }

    /// The value as the text of one table cell: numbers and booleans as JSON writes them,
    /// null as an empty cell, arrays and objects as compact JSON.
    pub(crate) fn cell_text(&self) -> Cow<'_, str> {
        match self {
            Self::Null => Cow::Borrowed(""),
            Self::Bool(true) => Cow::Borrowed("true"),
            Self::Bool(false) => Cow::Borrowed("false"),
            Self::Int(number) => Cow::Owned(number.to_string()),
            Self::UInt(number) => Cow::Owned(number.to_string()),
            Self::Float(number) => Cow::Owned(float_text(*number)),
            Self::String(text) => Cow::Borrowed(text),
            Self::Array(_) | Self::Object(_) => {
                Cow::Owned(serde_json::to_string(self).unwrap_or_default())
            }
        }
    }

    /// The first NaN or infinite number inside, as a path for messages (`$` is the value
    /// itself): JSON has no way to write one.
    pub(crate) fn non_finite_path(&self) -> Option<String> {
        match self {
            Self::Float(number) if !number.is_finite() => Some("$".to_owned()),
            Self::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
                item.non_finite_path()
                    .map(|path| join_path(&format!("$[{index}]"), &path))
            }),
            Self::Object(members) => members.iter().find_map(|(key, member)| {
                member
                    .non_finite_path()
                    .map(|path| join_path(&format!("$.{key}"), &path))
            }),
            _ => None,
        }
    }
}

/// `$.a` + `$.b` → `$.a.b`.
fn join_path(outer: &str, inner: &str) -> String {
    format!("{outer}{}", inner.strip_prefix('$').unwrap_or(inner))
}

/// A float as JSON writes it (`1.5`, `1e300`, `2.0`); NaN and infinities as YAML does.
pub(crate) fn float_text(number: f64) -> String {
    if number.is_nan() {
        ".nan".to_owned()
    } else if number.is_infinite() {
        if number > 0.0 { ".inf" } else { "-.inf" }.to_owned()
    } else {
        serde_json::to_string(&number).unwrap_or_else(|_never| number.to_string())
    }
}

/// Reads the text of a table cell as the value it spells, for typed targets:
///
/// - empty → null;
/// - `true` / `false` → a boolean;
/// - an integer without sign or leading zeros (`0`, `-12`, `7610`) → a number, if it fits
///   64 bits (so `007`, `+1` and 30-digit identifiers stay text);
/// - a decimal as JSON spells it (`-0.5`, `65.2419444`, `1e-3`) with at most 15 significant
///   digits, which a double holds exactly → a number;
/// - anything else stays text.
pub(crate) fn infer(text: String) -> Value {
    match text.as_str() {
        "" => return Value::Null,
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    match number_shape(&text) {
        Some(NumberShape::Integer) => {
            if let Ok(number) = text.parse::<i64>() {
                return Value::Int(number);
            }
            if let Ok(number) = text.parse::<u64>() {
                return Value::UInt(number);
            }
        }
        Some(NumberShape::Decimal { significant }) if significant <= 15 => {
            if let Ok(number) = text.parse::<f64>()
                && number.is_finite()
                && (number == 0.0 || number.abs() >= f64::MIN_POSITIVE)
            {
                return Value::Float(number);
            }
        }
        _ => {}
    }
    Value::String(text)
}

/// How a text spells a number, if it is written as JSON writes numbers.
enum NumberShape {
    Integer,
    Decimal { significant: usize },
}

/// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number_shape(text: &str) -> Option<NumberShape> {
    let bytes = text.as_bytes();
    let mut at = usize::from(bytes.first() == Some(&b'-'));
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let whole = digits(at);
    if whole == 0 || (whole > 1 && bytes[at] == b'0') {
        return None;
    }
    let mut mantissa: Vec<u8> = bytes[at..at + whole].to_vec();
    at += whole;
    let mut decimal = false;
    if bytes.get(at) == Some(&b'.') {
        let fraction = digits(at + 1);
        if fraction == 0 {
            return None;
        }
        mantissa.extend_from_slice(&bytes[at + 1..at + 1 + fraction]);
        at += 1 + fraction;
        decimal = true;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(at);
        if exponent == 0 {
            return None;
        }
        at += exponent;
        decimal = true;
    }
    if at != bytes.len() {
        return None;
    }
    if !decimal {
        return Some(NumberShape::Integer);
    }
    let significant = std::str::from_utf8(&mantissa)
        .map(|digits| digits.trim_start_matches('0').trim_end_matches('0').len())
        .unwrap_or(usize::MAX);
    Some(NumberShape::Decimal { significant })
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(value) => serializer.serialize_bool(*value),
            Self::Int(value) => serializer.serialize_i64(*value),
            Self::UInt(value) => serializer.serialize_u64(*value),
            Self::Float(value) => serializer.serialize_f64(*value),
            Self::String(value) => serializer.serialize_str(value),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, member) in members {
                    map.serialize_entry(key, member)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Builds a [`Value`] from any self-describing format.
pub(crate) struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Int(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(i64::try_from(value).map_or(Value::UInt(value), Value::Int))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::Float(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(key) = map.next_key::<String>()? {
            let member = map.next_value()?;
            members.insert(key, member);
        }
        Ok(Value::Object(members))
    }
}

/// What [`Elements`] found at the top of a document.
pub(crate) enum Top {
    /// The top level was an array, whose items were handed out one by one.
    Streamed,
    /// The top level was something else, read whole.
    Document(Value),
}

/// Reads a document whose top level may be a long array without holding the array: each
/// item goes to `each` as soon as it is read. Anything else is read whole.
///
/// An error from `each` stops the reading; it is kept in `failure`, because the format's
/// own error type cannot carry it.
pub(crate) struct Elements<'a, F: ?Sized> {
    /// Receives each item of a top-level array.
    pub(crate) each: &'a mut F,
    /// Where an error of `each` is kept.
    pub(crate) failure: &'a mut Option<metamorph_plugin_api::ConvertError>,
}

impl<'de, F: ?Sized> DeserializeSeed<'de> for Elements<'_, F>
where
    F: FnMut(Value) -> Result<(), metamorph_plugin_api::ConvertError>,
{
    type Value = Top;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Top, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: ?Sized> Visitor<'de> for Elements<'_, F>
where
    F: FnMut(Value) -> Result<(), metamorph_plugin_api::ConvertError>,
{
    type Value = Top;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            if let Err(error) = (self.each)(item) {
                *self.failure = Some(error);
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(Top::Streamed)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top, A::Error> {
        ValueVisitor.visit_map(map).map(Top::Document)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Top, E> {
        Ok(Top::Document(Value::Bool(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Top, E> {
        ValueVisitor.visit_i64(value).map(Top::Document)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Top, E> {
        ValueVisitor.visit_u64(value).map(Top::Document)
    }

    fn visit_f64<E>(self, value: f64) -> Result<Top, E> {
        Ok(Top::Document(Value::Float(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Top, E> {
        Ok(Top::Document(Value::String(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Top, E> {
        Ok(Top::Document(Value::String(value)))
    }

    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::Document(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_spell_numbers_exactly_become_numbers_and_the_rest_stays_text() {
        assert_eq!(infer("7610".into()), Value::Int(7610));
        assert_eq!(infer("-12".into()), Value::Int(-12));
        assert_eq!(infer("65.2419444".into()), Value::Float(65.241_944_4));
        assert_eq!(infer("1e-3".into()), Value::Float(0.001));
        assert_eq!(infer("18446744073709551615".into()), Value::UInt(u64::MAX));
        assert_eq!(infer("".into()), Value::Null);
        assert_eq!(infer("true".into()), Value::Bool(true));
        for text in [
            "007",
            "+1",
            "1.",
            ".5",
            "1e",
            "NaN",
            "inf",
            "1_000",
            " 1",
            "0x10",
            "True",
            "123456789012345678901234567890",
            "0.12345678901234567",
            "1e400",
            "1e-320",
            "-",
        ] {
            assert_eq!(infer(text.into()), Value::String(text.into()), "{text:?}");
        }
    }

    #[test]
    fn cell_text_writes_numbers_as_json_does_and_nested_values_as_compact_json() {
        assert_eq!(Value::Float(2.0).cell_text(), "2.0");
        assert_eq!(Value::Float(f64::NAN).cell_text(), ".nan");
        assert_eq!(Value::Null.cell_text(), "");
        let nested = Value::Array(vec![Value::Int(1), Value::String("a".into())]);
        assert_eq!(nested.cell_text(), r#"[1,"a"]"#);
    }

    #[test]
    fn the_path_of_a_non_finite_number_is_reported() {
        let mut members = Map::new();
        members.insert(
            "b".into(),
            Value::Array(vec![Value::Int(1), Value::Float(f64::INFINITY)]),
        );
        assert_eq!(
            Value::Object(members).non_finite_path().as_deref(),
            Some("$.b[1]")
        );
        assert_eq!(Value::Int(1).non_finite_path(), None);
    }
}
