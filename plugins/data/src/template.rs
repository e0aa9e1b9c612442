//! Example files: the same small table of products in every format.

use metamorph_plugin_api::ConvertError;

use crate::options::{Options, Settings};
use crate::value::{Map, Value};
use crate::{Format, records};

/// The example table: a header row, then three rows (one with an empty cell, one with a
/// comma inside a cell).
fn rows() -> Vec<Vec<Value>> {
    let text = |text: &str| Value::String(text.to_owned());
    vec![
        vec![
            text("id"),
            text("name"),
            text("price"),
            text("in_stock"),
            text("added"),
        ],
        vec![
            Value::Int(1),
            text("Notebook"),
            Value::Float(2.5),
            Value::Bool(true),
            text("2024-03-01"),
        ],
        vec![
            Value::Int(2),
            text("Pen, blue"),
            Value::Float(1.25),
            Value::Bool(false),
            text("2024-03-15"),
        ],
        vec![
            Value::Int(3),
            text("Stapler"),
            Value::Null,
            Value::Bool(true),
            text("2024-04-02"),
        ],
    ]
}

/// The example table as records, one per row below the header.
fn records() -> Vec<Value> {
    let mut rows = rows().into_iter();
    let header: Vec<String> = rows
        .next()
        .unwrap_or_default()
        .iter()
        .map(|cell| cell.cell_text().into_owned())
        .collect();
    rows.map(|row| {
        let record: Map = header.iter().cloned().zip(row).collect();
        Value::Object(record)
    })
    .collect()
}

/// A small valid file of `format`.
pub(crate) fn example(format: &str) -> Result<Vec<u8>, ConvertError> {
    let target = Format::from_name(format)?;
    let settings = Settings::new(Options::default(), Format::Json, target)?;
    let mut output = Vec::new();
    if target.is_table() {
        let mut writer = crate::table_writer(target, &settings, &mut output)?;
        for (index, row) in rows().iter().enumerate() {
            writer.row(row, index == 0)?;
        }
        writer.finish()?;
    } else {
        records::write_document(Value::Array(records()), target, &settings, &mut output)?;
    }
    Ok(output)
}
