//! Options. Each pair declares only the options that apply to it (CSV options only where
//! CSV is read or written, `sheet` only where a workbook is, …), so that in a planned chain
//! each option reaches the step it belongs to; [`Options`] is their union, from which the
//! values are read once the pair's own type has accepted them.

use std::borrow::Cow;
use std::fmt;

use metamorph_plugin_api::ConvertError;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::Format;

/// A worksheet, by name or by 1-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SheetRef {
    /// The sheet named so.
    Name(String),
    /// The sheet at this position, from 1.
    Index(u64),
}

impl<'de> Deserialize<'de> for SheetRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SheetVisitor;

        impl Visitor<'_> for SheetVisitor {
            type Value = SheetRef;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a sheet name, or a sheet number from 1")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<SheetRef, E> {
                Ok(SheetRef::Name(value.to_owned()))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<SheetRef, E> {
                Ok(SheetRef::Index(value))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<SheetRef, E> {
                u64::try_from(value)
                    .map(SheetRef::Index)
                    .map_err(|_negative| {
                        E::custom(format!(
                            "sheet {value} does not exist: sheets are numbered from 1"
                        ))
                    })
            }
        }

        deserializer.deserialize_any(SheetVisitor)
    }
}

impl JsonSchema for SheetRef {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("SheetRef")
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A sheet name, or a sheet number from 1.",
            "anyOf": [
                { "type": "string", "minLength": 1 },
                { "type": "integer", "minimum": 1 }
            ]
        })
    }
}

/// Declares an options type from groups of fields, so that each pair's type lists exactly
/// the options that apply to it, each documented once.
macro_rules! options {
    ($(#[$meta:meta])* $name:ident { $($group:ident),* $(,)? }) => {
        options!(@munch [$(#[$meta])*] $name [] $($group)*);
    };
    (@munch [$($meta:tt)*] $name:ident [$($fields:tt)*]) => {
        $($meta)*
        #[derive(Debug, Default, Deserialize, JsonSchema)]
        #[serde(default, deny_unknown_fields)]
        #[allow(dead_code, reason = "read through `Options`; this type only checks which apply")]
        pub(crate) struct $name { $($fields)* }
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] delimiter_in $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// The field delimiter of the CSV input: one ASCII character such as `,` (the
            /// default), `;`, `|` or a tab (`"\t"`).
            #[schemars(length(min = 1, max = 1))]
            pub(crate) delimiter: Option<String>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] delimiter_out $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// The field delimiter of the CSV written: one ASCII character such as `,` (the
            /// default), `;`, `|` or a tab (`"\t"`).
            #[schemars(length(min = 1, max = 1))]
            pub(crate) delimiter: Option<String>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] output_delimiter $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// The field delimiter of the CSV written (`delimiter` is the input's): one ASCII
            /// character such as `,` (the default), `;`, `|` or a tab (`"\t"`).
            #[schemars(length(min = 1, max = 1))]
            pub(crate) output_delimiter: Option<String>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] dialect $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// The character that escapes a quote inside a quoted field, such as `\`. By
            /// default a quote inside a quoted field is written twice (`""`), as RFC 4180
            /// says.
            #[schemars(length(min = 1, max = 1))]
            pub(crate) escape: Option<String>,
            /// Lines of the input that start with this character, such as `#`, are comments
            /// and are skipped. By default no line is a comment.
            #[schemars(length(min = 1, max = 1))]
            pub(crate) comment: Option<String>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] header $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// Whether the first row of the table is a header naming the columns (default
            /// true). When false, each row of a table read becomes an array of its cells, and
            /// a table written has no header row.
            pub(crate) header: Option<bool>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] infer $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// Whether cells that spell a number or a boolean exactly become numbers and
            /// booleans, and empty cells null (default true). Text that would change if read
            /// as a number stays text: `007`, `+1`, 30-digit identifiers. When false, every
            /// cell is a string.
            pub(crate) infer_types: Option<bool>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] sheet_in $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// The worksheet to read: its name, or its number from 1. Default: the first
            /// sheet.
            pub(crate) sheet: Option<SheetRef>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] sheet_out $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// The name of the worksheet written (default `Sheet1`): at most 31 characters,
            /// none of `[ ] : * ? / \`.
            #[schemars(length(min = 1, max = 31))]
            pub(crate) sheet: Option<String>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] pretty $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// Indent the output for people (default true). When false, JSON and YAML are
            /// written on one line (YAML in flow style), XML without whitespace between
            /// elements, and TOML with inline arrays.
            pub(crate) pretty: Option<bool>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] toml_root $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// The key under which the data is written when it is not a table: a TOML
            /// document is a table, so a list of records or any other top-level value goes
            /// under this key (default `items`, giving `[[items]]` tables).
            #[schemars(length(min = 1))]
            pub(crate) root: Option<String>,
        ] $($rest)*);
    };
    (@munch $meta:tt $name:ident [$($fields:tt)*] xml_root $($rest:ident)*) => {
        options!(@munch $meta $name [$($fields)*
            /// The name of the root element. By default an object with a single member that
            /// is not a list (`{"config": {...}}`, as XML read by this plugin is) makes that
            /// member the root element, and anything else is wrapped in `<root>`. When given,
            /// the whole value is wrapped in this element.
            #[schemars(length(min = 1))]
            pub(crate) root: Option<String>,
            /// The element name of each item of a list that has no name of its own: the
            /// records of a table, the items of a top-level array, arrays in arrays (default
            /// `item`).
            #[schemars(length(min = 1))]
            pub(crate) item: Option<String>,
        ] $($rest)*);
    };
}

options!(
    /// Options of CSV to CSV.
    CsvToCsv { delimiter_in, output_delimiter, dialect }
);
options!(
    /// Options of CSV to TSV.
    CsvToTsv { delimiter_in, dialect }
);
options!(
    /// Options of CSV to a workbook.
    CsvToXlsx { delimiter_in, dialect, header, infer, sheet_out }
);
options!(
    /// Options of CSV to NDJSON.
    CsvToNdjson { delimiter_in, dialect, header, infer }
);
options!(
    /// Options of CSV to JSON or YAML.
    CsvToJson { delimiter_in, dialect, header, infer, pretty }
);
options!(
    /// Options of CSV to TOML.
    CsvToToml { delimiter_in, dialect, header, infer, pretty, toml_root }
);
options!(
    /// Options of CSV to XML.
    CsvToXml { delimiter_in, dialect, header, pretty, xml_root }
);
options!(
    /// Options of TSV to CSV.
    TsvToCsv { delimiter_out, dialect }
);
options!(
    /// Options of TSV to a workbook.
    TsvToXlsx { dialect, header, infer, sheet_out }
);
options!(
    /// Options of TSV to NDJSON.
    TsvToNdjson { dialect, header, infer }
);
options!(
    /// Options of TSV to JSON or YAML.
    TsvToJson { dialect, header, infer, pretty }
);
options!(
    /// Options of TSV to TOML.
    TsvToToml { dialect, header, infer, pretty, toml_root }
);
options!(
    /// Options of TSV to XML.
    TsvToXml { dialect, header, pretty, xml_root }
);
options!(
    /// Options of a workbook to CSV.
    XlsxToCsv { sheet_in, delimiter_out }
);
options!(
    /// Options of a workbook to TSV.
    XlsxToTsv { sheet_in }
);
options!(
    /// Options of a workbook to NDJSON.
    XlsxToNdjson { sheet_in, header }
);
options!(
    /// Options of a workbook to JSON or YAML.
    XlsxToJson { sheet_in, header, pretty }
);
options!(
    /// Options of a workbook to TOML.
    XlsxToToml { sheet_in, header, pretty, toml_root }
);
options!(
    /// Options of a workbook to XML.
    XlsxToXml { sheet_in, header, pretty, xml_root }
);
options!(
    /// Options of records or a document to CSV.
    ToCsv { delimiter_out, header }
);
options!(
    /// Options of records or a document to TSV.
    ToTsv { header }
);
options!(
    /// Options of records or a document to a workbook.
    ToXlsx { header, sheet_out }
);
options!(
    /// Options of a document to NDJSON (there are none).
    ToNdjson {}
);
options!(
    /// Options of records or a document to JSON or YAML.
    ToJson { pretty }
);
options!(
    /// Options of records or a document to TOML.
    ToToml { pretty, toml_root }
);
options!(
    /// Options of records or a document to XML.
    ToXml { pretty, xml_root }
);

/// Every option of the plugin; each pair accepts the subset that applies to it.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Options {
    /// The CSV field delimiter: one ASCII character such as `,` (the default), `;`, `|` or a
    /// tab (`"\t"`). It is the input's when CSV is read, the output's when CSV is written.
    #[schemars(length(min = 1, max = 1))]
    pub(crate) delimiter: Option<String>,
    /// CSV to CSV only: the delimiter of the CSV written (`delimiter` is the input's).
    #[schemars(length(min = 1, max = 1))]
    pub(crate) output_delimiter: Option<String>,
    /// CSV and TSV input: the character that escapes a quote inside a quoted field, such as
    /// `\`. By default a quote inside a quoted field is written twice (`""`).
    #[schemars(length(min = 1, max = 1))]
    pub(crate) escape: Option<String>,
    /// CSV and TSV input: lines that start with this character, such as `#`, are skipped.
    #[schemars(length(min = 1, max = 1))]
    pub(crate) comment: Option<String>,
    /// Whether the first row of a table is a header naming the columns (default true). When
    /// false, each row of a table read becomes an array of its cells, and a table written
    /// has no header row.
    pub(crate) header: Option<bool>,
    /// CSV and TSV to typed formats: whether cells that spell a number or a boolean exactly
    /// become numbers and booleans, and empty cells null (default true).
    pub(crate) infer_types: Option<bool>,
    /// Workbooks: the sheet read (its name or its number from 1; default the first), or the
    /// name of the sheet written (default `Sheet1`).
    pub(crate) sheet: Option<SheetRef>,
    /// JSON, YAML, TOML and XML output: indent for people (default true).
    pub(crate) pretty: Option<bool>,
    /// TOML output: the key under which a non-table top level goes (default `items`). XML
    /// output: the root element's name (default: the single member of a one-member object,
    /// else `root`).
    #[schemars(length(min = 1))]
    pub(crate) root: Option<String>,
    /// XML output: the element name of list items that have no name of their own (default
    /// `item`).
    #[schemars(length(min = 1))]
    pub(crate) item: Option<String>,
}

/// The options of a conversion, checked and with their defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The delimiter of CSV read.
    pub(crate) input_delimiter: u8,
    /// The delimiter of CSV written.
    pub(crate) output_delimiter: u8,
    /// The quote escape of CSV or TSV read.
    pub(crate) escape: Option<u8>,
    /// The comment character of CSV or TSV read.
    pub(crate) comment: Option<u8>,
    /// Whether tables have a header row.
    pub(crate) header: bool,
    /// Whether CSV and TSV cells are typed.
    pub(crate) infer_types: bool,
    /// The sheet read.
    pub(crate) sheet: Option<SheetRef>,
    /// The name of the sheet written.
    pub(crate) sheet_name: String,
    /// Indentation.
    pub(crate) pretty: bool,
    /// The TOML key or XML root element given, if any.
    pub(crate) root: Option<String>,
    /// The XML element of unnamed list items.
    pub(crate) item: String,
}

impl Settings {
    /// Checks `options` for a conversion from `source` to `target`.
    pub(crate) fn new(
        options: Options,
        source: Format,
        target: Format,
    ) -> Result<Self, ConvertError> {
        let character = |name: &str, value: Option<&str>| -> Result<Option<u8>, ConvertError> {
            value.map(|text| one_ascii(name, text)).transpose()
        };
        let delimiter = character("delimiter", options.delimiter.as_deref())?;
        let output_delimiter = character("output_delimiter", options.output_delimiter.as_deref())?;
        let escape = character("escape", options.escape.as_deref())?;
        let comment = character("comment", options.comment.as_deref())?;
        let tab = b'\t';
        let input_delimiter = match source {
            Format::Tsv => tab,
            _ => delimiter.unwrap_or(b','),
        };
        let output_delimiter = match (source, target) {
            (_, Format::Tsv) => tab,
            (Format::Csv, Format::Csv) => output_delimiter.unwrap_or(b','),
            _ => delimiter.unwrap_or(b','),
        };
        let for_input = |name: &str, character: Option<u8>| match character {
            Some(c) if c == input_delimiter => Err(ConvertError::invalid_options(format!(
                "`{name}` cannot be the field delimiter `{}`",
                char::from(c).escape_default()
            ))),
            _ => Ok(character),
        };
        let escape = for_input("escape", escape)?;
        let comment = for_input("comment", comment)?;
        let (sheet, sheet_name) = match (target, options.sheet) {
            (Format::Xlsx, Some(SheetRef::Name(name))) => (None, sheet_name(name)?),
            (Format::Xlsx, Some(SheetRef::Index(_))) => {
                return Err(ConvertError::invalid_options(
                    "`sheet` names the worksheet written: give a name such as \"Data\"",
                ));
            }
            (Format::Xlsx, None) => (None, "Sheet1".to_owned()),
            (_, Some(SheetRef::Index(0))) => {
                return Err(ConvertError::invalid_options(
                    "`sheet` 0 does not exist: sheets are numbered from 1",
                ));
            }
            (_, sheet) => (sheet, "Sheet1".to_owned()),
        };
        let root = match (target, options.root) {
            (Format::Xml, Some(root)) => Some(xml_name_option("root", root)?),
            (_, Some(root)) if root.is_empty() => {
                return Err(ConvertError::invalid_options("`root` cannot be empty"));
            }
            (_, root) => root,
        };
        let item = xml_name_option("item", options.item.unwrap_or_else(|| "item".to_owned()))?;
        Ok(Self {
            input_delimiter,
            output_delimiter,
            escape,
            comment,
            header: options.header.unwrap_or(true),
            infer_types: options.infer_types.unwrap_or(true),
            sheet,
            sheet_name,
            pretty: options.pretty.unwrap_or(true),
            root,
            item,
        })
    }
}

/// A one-character option as a byte.
fn one_ascii(name: &str, text: &str) -> Result<u8, ConvertError> {
    let mut chars = text.chars();
    let single = match (chars.next(), chars.next()) {
        (Some(c), None) if !matches!(c, '"' | '\n' | '\r') => u8::try_from(c).ok(),
        _ => None,
    };
    single.filter(u8::is_ascii).ok_or_else(|| {
        ConvertError::invalid_options(format!(
            "`{name}` must be one ASCII character other than a quote or a line break, such as \
             `,`, `;`, `|` or a tab (\"\\t\"); got {text:?}"
        ))
    })
}

/// Checks a worksheet name as Excel does.
fn sheet_name(name: String) -> Result<String, ConvertError> {
    let forbidden = ['[', ']', ':', '*', '?', '/', '\\'];
    let length = name.chars().count();
    if length == 0
        || length > 31
        || name.contains(forbidden)
        || name.starts_with('\'')
        || name.ends_with('\'')
        || name.eq_ignore_ascii_case("history")
    {
        return Err(ConvertError::invalid_options(format!(
            "`sheet` {name:?} cannot name a worksheet: use 1 to 31 characters, none of `[ ] : * ? / \\`, \
             not starting or ending with `'`, and not `History`"
        )));
    }
    Ok(name)
}

/// Checks an element name given as an option.
fn xml_name_option(option: &str, name: String) -> Result<String, ConvertError> {
    if crate::xml::is_name(&name) {
        Ok(name)
    } else {
        Err(ConvertError::invalid_options(format!(
            "`{option}` {name:?} is not an XML element name: start with a letter or `_`, then \
             use letters, digits, `-`, `_` or `.` (no `:`: a namespace prefix would need a \
             declaration)"
        )))
    }
}
