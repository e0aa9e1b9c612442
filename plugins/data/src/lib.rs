//! Metamorph's data converter: tables (csv, tsv, xlsx) and records or documents (json,
//! ndjson, yaml, toml, xml), in the directions that make sense.
//!
//! | from | to | what it does |
//! | --- | --- | --- |
//! | csv, tsv, xlsx | csv, tsv, xlsx | copies the cells (csv → csv changes the delimiter) |
//! | csv, tsv, xlsx | json, ndjson, yaml, toml, xml | one record per row, its fields named by the header row (`header: false`: one array per row) |
//! | json, ndjson, yaml, toml, xml | csv, tsv, xlsx | one row per record; the columns are every key met, in the order first met, and nested values are written as JSON text |
//! | json, ndjson, yaml, toml, xml | json, ndjson, yaml, toml, xml | the same document in another syntax, where it fits (TOML has no null and needs a top-level table) |
//!
//! Where records come from a document that is not itself a list, they are located as
//! [`records::located`] says: `{"rows": [...]}` stands for its list, and an object of objects
//! (`{"id1": {...}, "id2": {...}}`) is a map of records, each given its name in a field `key`.
//!
//! XML is read into objects the common way: attributes are members named `@name`, repeated
//! child elements make an array, text beside child elements is the member `#text`, and an
//! empty element is null. It is written back the same way, and a list of records is written
//! as `<root><item><field>…</field></item></root>`.
//!
//! Memory is bounded: CSV, TSV and NDJSON are read and written a row at a time, a JSON list
//! an item at a time, and an XLSX sheet a row at a time (sheets of more than
//! [`xlsx::MAX_SHEET_CELLS`] cells are refused). Workbooks written are built in memory, so
//! they are limited to [`xlsx::MAX_WRITTEN_CELLS`] cells and [`xlsx::MAX_WRITTEN_TEXT`] bytes
//! of text; TOML lists that are not lists of tables, and YAML, TOML and XML documents read,
//! are held whole.

mod options;
mod records;
mod table;
mod template;
mod value;
pub mod xlsx;
mod xml;
mod yaml;

#[cfg(test)]
mod tests;

use std::io::Write;

use metamorph_plugin_api::{ConvertError, Converter, Input, Output, PluginInfo, Request};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use options::{
    CsvToCsv, CsvToJson, CsvToNdjson, CsvToToml, CsvToTsv, CsvToXlsx, CsvToXml, Options, Settings,
    ToCsv, ToJson, ToNdjson, ToToml, ToTsv, ToXlsx, ToXml, TsvToCsv, TsvToJson, TsvToNdjson,
    TsvToToml, TsvToXlsx, TsvToXml, XlsxToCsv, XlsxToJson, XlsxToNdjson, XlsxToToml, XlsxToTsv,
    XlsxToXml,
};
use records::{RecordSink, RecordSource};
use table::{CsvRows, CsvWriter, RowSource, TableWriter};
use value::{Top, Value};

/// Every format read and written, tables first.
pub const FORMATS: [&str; 8] = [
    "csv", "tsv", "xlsx", "json", "ndjson", "yaml", "toml", "xml",
];

/// The formats of which [`DataPlugin::template`] makes examples (all of them).
pub const TEMPLATES: [&str; 8] = FORMATS;

/// A format the plugin reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Comma-separated values (RFC 4180), or another delimiter.
    Csv,
    /// Tab-separated values.
    Tsv,
    /// An Excel workbook (Office Open XML).
    Xlsx,
    /// One JSON document.
    Json,
    /// Newline-delimited JSON: one value per line.
    Ndjson,
    /// YAML.
    Yaml,
    /// TOML.
    Toml,
    /// XML.
    Xml,
}

impl Format {
    /// Every format, in the order of [`FORMATS`].
    const ALL: [Self; 8] = [
        Self::Csv,
        Self::Tsv,
        Self::Xlsx,
        Self::Json,
        Self::Ndjson,
        Self::Yaml,
        Self::Toml,
        Self::Xml,
    ];

    /// The canonical name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Tsv => "tsv",
            Self::Xlsx => "xlsx",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Yaml => "yaml",
            Self::Toml => "toml",
            Self::Xml => "xml",
        }
    }

    /// The format of a canonical name; anything else is unsupported.
    pub(crate) fn from_name(name: &str) -> Result<Self, ConvertError> {
        Self::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| {
                ConvertError::unsupported(format!(
                    "the data plugin does not know the format `{name}`: it converts {}",
                    FORMATS.join(", ")
                ))
            })
    }

    /// Whether the format is a table of rows and cells (rather than records).
    pub(crate) fn is_table(self) -> bool {
        matches!(self, Self::Csv | Self::Tsv | Self::Xlsx)
    }

    /// Relative cost of reading a typical file (roughly milliseconds).
    fn read_cost(self) -> u32 {
        match self {
            Self::Csv | Self::Tsv | Self::Json | Self::Ndjson => 5,
            Self::Yaml | Self::Toml | Self::Xml => 10,
            Self::Xlsx => 30,
        }
    }

    /// Relative cost of writing a typical file.
    fn write_cost(self) -> u32 {
        match self {
            Self::Csv | Self::Tsv | Self::Json | Self::Ndjson => 5,
            Self::Yaml | Self::Toml | Self::Xml => 10,
            Self::Xlsx => 40,
        }
    }
}

/// Receives the options type of a pair (see [`pair_options`]).
trait OptionsVisitor {
    /// What the visit gives.
    type Output;

    /// Visits the options type `T`.
    fn visit<T: JsonSchema + DeserializeOwned + Default>(self) -> Self::Output;
}

/// Calls `visitor` with the options type of `source` → `target`, or gives `None` when the
/// plugin does not convert the pair. This is the one list of the pairs converted.
fn pair_options<V: OptionsVisitor>(
    source: Format,
    target: Format,
    visitor: V,
) -> Option<V::Output> {
    use Format::{Csv, Json, Ndjson, Toml, Tsv, Xlsx, Xml, Yaml};
    Some(match (source, target) {
        // Re-encoding a table as itself only makes sense where an option changes it.
        (Tsv, Tsv) | (Xlsx, Xlsx) | (Ndjson, Ndjson) => return None,
        (Csv, Csv) => visitor.visit::<CsvToCsv>(),
        (Csv, Tsv) => visitor.visit::<CsvToTsv>(),
        (Csv, Xlsx) => visitor.visit::<CsvToXlsx>(),
        (Csv, Ndjson) => visitor.visit::<CsvToNdjson>(),
        (Csv, Json | Yaml) => visitor.visit::<CsvToJson>(),
        (Csv, Toml) => visitor.visit::<CsvToToml>(),
        (Csv, Xml) => visitor.visit::<CsvToXml>(),
        (Tsv, Csv) => visitor.visit::<TsvToCsv>(),
        (Tsv, Xlsx) => visitor.visit::<TsvToXlsx>(),
        (Tsv, Ndjson) => visitor.visit::<TsvToNdjson>(),
        (Tsv, Json | Yaml) => visitor.visit::<TsvToJson>(),
        (Tsv, Toml) => visitor.visit::<TsvToToml>(),
        (Tsv, Xml) => visitor.visit::<TsvToXml>(),
        (Xlsx, Csv) => visitor.visit::<XlsxToCsv>(),
        (Xlsx, Tsv) => visitor.visit::<XlsxToTsv>(),
        (Xlsx, Ndjson) => visitor.visit::<XlsxToNdjson>(),
        (Xlsx, Json | Yaml) => visitor.visit::<XlsxToJson>(),
        (Xlsx, Toml) => visitor.visit::<XlsxToToml>(),
        (Xlsx, Xml) => visitor.visit::<XlsxToXml>(),
        (_, Csv) => visitor.visit::<ToCsv>(),
        (_, Tsv) => visitor.visit::<ToTsv>(),
        (_, Xlsx) => visitor.visit::<ToXlsx>(),
        (_, Ndjson) => visitor.visit::<ToNdjson>(),
        (_, Json | Yaml) => visitor.visit::<ToJson>(),
        (_, Toml) => visitor.visit::<ToToml>(),
        (_, Xml) => visitor.visit::<ToXml>(),
    })
}

/// Gives the declaration of a pair with its own options type.
struct Declare;

impl OptionsVisitor for Declare {
    type Output = fn(PluginInfo, &str, &str, u32) -> PluginInfo;

    fn visit<T: JsonSchema + DeserializeOwned + Default>(self) -> Self::Output {
        PluginInfo::convert_with::<T>
    }
}

/// Checks a request's options against its pair's own type, which refuses the options that
/// do not apply to the pair. Messages name the option at fault.
struct Check<'a>(&'a Request);

impl OptionsVisitor for Check<'_> {
    type Output = Result<(), ConvertError>;

    fn visit<T: JsonSchema + DeserializeOwned + Default>(self) -> Result<(), ConvertError> {
        let text = self.0.options_json().trim();
        if text.is_empty() || text == "null" {
            return Ok(());
        }
        let mut deserializer = serde_json::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
            Ok(_checked) => Ok(()),
            Err(error) => {
                let path = error.path().to_string();
                let message = error.into_inner().to_string();
                Err(ConvertError::invalid_options(
                    if message.starts_with("unknown field") {
                        format!(
                            "{message} (the options of {} → {})",
                            self.0.source, self.0.target
                        )
                    } else if path.is_empty() || path == "." {
                        message
                    } else {
                        format!("`{path}`: {message}")
                    },
                ))
            }
        }
    }
}

/// The data plugin.
pub struct DataPlugin;

impl Converter for DataPlugin {
    fn describe() -> PluginInfo {
        let mut info = PluginInfo::new("data", env!("CARGO_PKG_VERSION"))
            .description(
                "Tabular and record data: csv, tsv, xlsx, json, ndjson, yaml, toml and xml, \
                 tables to records and back",
            )
            .options::<Options>();
        for source in Format::ALL {
            for target in Format::ALL {
                if let Some(declare) = pair_options(source, target, Declare) {
                    let cost = source.read_cost() + target.write_cost();
                    info = declare(info, source.name(), target.name(), cost);
                }
            }
        }
        for format in TEMPLATES {
            info = info.template(format);
        }
        info
    }

    fn convert(
        request: &Request,
        input: &mut Input,
        output: &mut Output<'_>,
    ) -> Result<(), ConvertError> {
        let source = Format::from_name(&request.source)?;
        let target = Format::from_name(&request.target)?;
        pair_options(source, target, Check(request)).ok_or_else(|| {
            ConvertError::unsupported(format!(
                "the data plugin does not convert {} to {}",
                source.name(),
                target.name()
            ))
        })??;
        let settings = Settings::new(request.options::<Options>()?, source, target)?;
        run(source, target, &settings, input, output)?;
        output.flush()?;
        Ok(())
    }

    fn template(format: &str) -> Result<Vec<u8>, ConvertError> {
        template::example(format)
    }
}

/// Converts `input` from `source` to `target`.
fn run(
    source: Format,
    target: Format,
    settings: &Settings,
    input: &Input,
    output: &mut dyn Write,
) -> Result<(), ConvertError> {
    match source {
        Format::Csv | Format::Tsv => {
            // Cells stay text where the target has no types of its own.
            let typed =
                settings.infer_types && !matches!(target, Format::Csv | Format::Tsv | Format::Xml);
            let empty = if typed {
                Value::Null
            } else {
                Value::String(String::new())
            };
            let dialect = table::Dialect {
                delimiter: settings.input_delimiter,
                escape: settings.escape,
                comment: settings.comment,
            };
            let mut rows = CsvRows::open(input, dialect, typed, settings.header)?;
            if matches!(target, Format::Csv | Format::Tsv) {
                // A first pass finds the widest row, so that ragged rows are written padded.
                let width = table::widest(&mut CsvRows::open(input, dialect, false, false)?)?;
                let mut padded = table::Padded {
                    rows: &mut rows,
                    width,
                    empty: empty.clone(),
                };
                return from_rows(&mut padded, target, settings, &empty, output);
            }
            from_rows(&mut rows, target, settings, &empty, output)
        }
        Format::Xlsx => xlsx::with_rows(input, settings.sheet.as_ref(), |rows| {
            from_rows(rows, target, settings, &Value::Null, output)
        }),
        _ if target.is_table() => {
            let mut records = match source {
                Format::Json => RecordSource::Json(input),
                Format::Ndjson => RecordSource::Ndjson(input),
                _ => RecordSource::Loaded(records::located(read_document(source, input)?)),
            };
            let mut writer = table_writer(target, settings, output)?;
            table::records_to_table(&mut records, settings.header, writer.as_mut())?;
            writer.finish()
        }
        Format::Json => {
            // Sinks write nothing before their first item, so one made for a list that turns
            // out to be another document is dropped unused.
            let mut sink = records::sink(target, settings, &mut *output)?;
            match records::read_json(input, &mut |value| sink.item(&value))? {
                Top::Streamed => sink.finish(),
                Top::Document(document) => {
                    drop(sink);
                    records::write_document(document, target, settings, output)
                }
            }
        }
        Format::Ndjson => {
            let mut sink = records::sink(target, settings, output)?;
            records::read_ndjson(input, &mut |value| sink.item(&value))?;
            sink.finish()
        }
        Format::Yaml | Format::Toml | Format::Xml => {
            records::write_document(read_document(source, input)?, target, settings, output)
        }
    }
}

/// Reads a whole YAML, TOML or XML document.
fn read_document(source: Format, input: &Input) -> Result<Value, ConvertError> {
    match source {
        Format::Yaml => records::read_yaml(input),
        Format::Toml => records::read_toml(input),
        Format::Xml => xml::read(input),
        _ => Err(ConvertError::internal(format!(
            "{} is not read as a whole document",
            source.name()
        ))),
    }
}

/// Writes the rows of a table as `target`: as a table, or as records.
fn from_rows(
    rows: &mut dyn RowSource,
    target: Format,
    settings: &Settings,
    empty: &Value,
    output: &mut dyn Write,
) -> Result<(), ConvertError> {
    if target.is_table() {
        let mut writer = table_writer(target, settings, output)?;
        table::copy_rows(rows, writer.as_mut(), settings.header)?;
        writer.finish()
    } else {
        let mut sink: Box<dyn RecordSink + '_> = records::sink(target, settings, output)?;
        table::rows_to_records(rows, settings.header, empty, sink.as_mut())?;
        sink.finish()
    }
}

/// A writer of `target`, a table format.
fn table_writer<'w>(
    target: Format,
    settings: &Settings,
    output: &'w mut dyn Write,
) -> Result<Box<dyn TableWriter + 'w>, ConvertError> {
    Ok(match target {
        // `infer_types: false` keeps dates as text too.
        Format::Xlsx => Box::new(xlsx::XlsxWriter::new(
            &settings.sheet_name,
            settings.infer_types,
            output,
        )?),
        _ => Box::new(CsvWriter::new(output, settings.output_delimiter)),
    })
}

metamorph_plugin_api::export_plugin!(DataPlugin);
