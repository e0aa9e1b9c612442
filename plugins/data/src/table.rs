//! Tables: CSV and TSV read and written as streams of rows (never whole), and the mapping
//! between rows and records.
//!
//! A row is a list of cell values. Rows read from CSV hold strings, typed by [`infer`] when
//! the target has types; rows read from a workbook hold the cells' own types. A header row
//! names the columns of the records made from the rows below it.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};

use indexmap::IndexSet;
use metamorph_plugin_api::{ConvertError, Input};

use crate::records::{RecordSink, RecordSource};
use crate::value::{Map, Value, infer};

/// One row of a table.
pub(crate) struct Row {
    /// Its cells, left to right.
    pub(crate) cells: Vec<Value>,
    /// Where it starts (1-based line of a text file, row of a sheet), for messages.
    pub(crate) line: u64,
}

/// Rows read one at a time.
pub(crate) trait RowSource {
    /// The next row, or `None` at the end.
    fn next_row(&mut self) -> Result<Option<Row>, ConvertError>;

    /// What a row's `line` counts: `line` for text files, `row` for sheets.
    fn unit(&self) -> &'static str;
}

/// Rows written one at a time.
pub(crate) trait TableWriter {
    /// Writes a row; `header` marks the header row.
    fn row(&mut self, cells: &[Value], header: bool) -> Result<(), ConvertError>;

    /// Completes the output.
    fn finish(self: Box<Self>) -> Result<(), ConvertError>;
}

/// How a CSV or TSV file is written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialect {
    /// The field delimiter.
    pub(crate) delimiter: u8,
    /// The character that escapes a quote inside quotes (`None`: quotes are doubled).
    pub(crate) escape: Option<u8>,
    /// The character that starts a comment line.
    pub(crate) comment: Option<u8>,
}

/// The rows of a CSV or TSV file, read as a stream.
pub(crate) struct CsvRows<'a> {
    input: &'a Input,
    dialect: Dialect,
    reader: csv::Reader<BufReader<File>>,
    record: csv::StringRecord,
    /// Type cells with [`infer`].
    infer: bool,
    /// Leave the first row untyped (it is a header).
    header: bool,
    /// Rows read so far.
    rows: u64,
    /// Byte offset of the last row read.
    last_start: Option<u64>,
    /// Line on which the last row read starts.
    last_line: u64,
    done: bool,
}

impl<'a> CsvRows<'a> {
    /// Opens `input`. With `infer`, cells become typed values (except those of the header
    /// row when `header`).
    pub(crate) fn open(
        input: &'a Input,
        dialect: Dialect,
        infer: bool,
        header: bool,
    ) -> Result<Self, ConvertError> {
        let reader = csv::ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .escape(dialect.escape)
            .double_quote(dialect.escape.is_none())
            .comment(dialect.comment)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(input.reader()?);
        Ok(Self {
            input,
            dialect,
            reader,
            record: csv::StringRecord::new(),
            infer,
            header,
            rows: 0,
            last_start: None,
            last_line: 0,
            done: false,
        })
    }

    /// Fails if the last row opens a quoted field that never closes: the CSV parser reads
    /// such a field to the end of the file without complaint, which is how truncated files
    /// look.
    fn check_last_row_closed(&self) -> Result<(), ConvertError> {
        let Some(start) = self.last_start else {
            return Ok(());
        };
        let mut file = self.input.open()?;
        file.seek(SeekFrom::Start(start))?;
        let Dialect {
            delimiter, escape, ..
        } = self.dialect;
        let mut state = Quoting::FieldStart;
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            for &byte in &buffer[..read] {
                let separator = byte == delimiter || byte == b'\n' || byte == b'\r';
                state = match state {
                    Quoting::FieldStart if byte == b'"' => Quoting::Quoted,
                    Quoting::FieldStart | Quoting::Unquoted | Quoting::QuoteInQuoted
                        if separator =>
                    {
                        Quoting::FieldStart
                    }
                    Quoting::FieldStart | Quoting::Unquoted => Quoting::Unquoted,
                    Quoting::Quoted if Some(byte) == escape => Quoting::Escaped,
                    Quoting::Quoted if byte == b'"' => Quoting::QuoteInQuoted,
                    Quoting::Quoted | Quoting::Escaped => Quoting::Quoted,
                    Quoting::QuoteInQuoted if byte == b'"' && escape.is_none() => Quoting::Quoted,
                    Quoting::QuoteInQuoted => Quoting::Unquoted,
                };
            }
        }
        if matches!(state, Quoting::Quoted | Quoting::Escaped) {
            let line = self.last_line;
            return Err(ConvertError::malformed(format!(
                "a quoted field on line {line} is never closed: the file may be truncated"
            )));
        }
        Ok(())
    }
}

/// Where a scan of CSV text stands.
#[derive(Clone, Copy)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    Escaped,
    QuoteInQuoted,
}

impl RowSource for CsvRows<'_> {
    fn next_row(&mut self) -> Result<Option<Row>, ConvertError> {
        if self.done {
            return Ok(None);
        }
        match self.reader.read_record(&mut self.record) {
            Ok(true) => {
                let position = self.record.position();
                self.last_start = position.map(csv::Position::byte);
                let line = position.map_or(0, csv::Position::line);
                self.last_line = line;
                let typed = self.infer && !(self.header && self.rows == 0);
                self.rows += 1;
                let cells = self
                    .record
                    .iter()
                    .map(|field| {
                        if typed {
                            infer(field.to_owned())
                        } else {
                            Value::String(field.to_owned())
                        }
                    })
                    .collect();
                Ok(Some(Row { cells, line }))
            }
            Ok(false) => {
                self.done = true;
                self.check_last_row_closed()?;
                Ok(None)
            }
            Err(error) => Err(csv_error(error)),
        }
    }

    fn unit(&self) -> &'static str {
        "line"
    }
}

/// A CSV reading error as a conversion error.
fn csv_error(error: csv::Error) -> ConvertError {
    let line = error.position().map(csv::Position::line);
    match error.into_kind() {
        csv::ErrorKind::Utf8 { pos, err } => ConvertError::malformed(format!(
            "line {} is not UTF-8 text (field {}): convert the file to UTF-8 first",
            pos.map_or(0, |pos| pos.line()),
            err.field() + 1
        )),
        csv::ErrorKind::Io(error) if error.kind() == std::io::ErrorKind::InvalidData => {
            ConvertError::malformed(format!("the input cannot be read as CSV: {error}"))
        }
        csv::ErrorKind::Io(error) => ConvertError::from(error),
        other => ConvertError::malformed(format!(
            "the CSV is malformed{}: {other:?}",
            line.map(|line| format!(" on line {line}"))
                .unwrap_or_default()
        )),
    }
}

/// Writes rows as CSV (or TSV, with a tab delimiter), quoting fields only where needed.
pub(crate) struct CsvWriter<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> CsvWriter<W> {
    /// Writes to `output` with `delimiter`.
    pub(crate) fn new(output: W, delimiter: u8) -> Self {
        let writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_writer(output);
        Self { writer }
    }
}

impl<W: Write> TableWriter for CsvWriter<W> {
    fn row(&mut self, cells: &[Value], _header: bool) -> Result<(), ConvertError> {
        for cell in cells {
            self.writer
                .write_field(cell.cell_text().as_bytes())
                .map_err(write_error)?;
        }
        self.writer.write_record(None::<&[u8]>).map_err(write_error)
    }

    fn finish(mut self: Box<Self>) -> Result<(), ConvertError> {
        self.writer.flush()?;
        Ok(())
    }
}

/// A CSV writing error as a conversion error (a failed write is the output limit, or i/o).
fn write_error(error: csv::Error) -> ConvertError {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => ConvertError::from(error),
        other => ConvertError::internal(format!("cannot write CSV: {other:?}")),
    }
}

/// The most cells a row of `rows` has.
pub(crate) fn widest(rows: &mut dyn RowSource) -> Result<usize, ConvertError> {
    let mut width = 0;
    while let Some(row) = rows.next_row()? {
        width = width.max(row.cells.len());
    }
    Ok(width)
}

/// Rows made as wide as the widest, so that a table written from ragged rows has the same
/// number of fields on every line (as RFC 4180 asks).
pub(crate) struct Padded<'r> {
    /// The rows.
    pub(crate) rows: &'r mut dyn RowSource,
    /// The width every row is given.
    pub(crate) width: usize,
    /// The cell added.
    pub(crate) empty: Value,
}

impl RowSource for Padded<'_> {
    fn next_row(&mut self) -> Result<Option<Row>, ConvertError> {
        let mut row = self.rows.next_row()?;
        if let Some(row) = &mut row
            && row.cells.len() < self.width
        {
            row.cells.resize(self.width, self.empty.clone());
        }
        Ok(row)
    }

    fn unit(&self) -> &'static str {
        self.rows.unit()
    }
}

/// Writes every row of `rows` to `writer`; with `header`, the first row is the header.
pub(crate) fn copy_rows(
    rows: &mut dyn RowSource,
    writer: &mut dyn TableWriter,
    header: bool,
) -> Result<(), ConvertError> {
    let mut first = true;
    while let Some(row) = rows.next_row()? {
        writer.row(&row.cells, header && first)?;
        first = false;
    }
    Ok(())
}

/// Turns rows into records: with `header`, objects keyed by the header row's names (cells
/// missing at the end of a row take `empty`; cells past the header's last column must be
/// empty); without, one array of cells per row.
pub(crate) fn rows_to_records(
    rows: &mut dyn RowSource,
    header: bool,
    empty: &Value,
    sink: &mut dyn RecordSink,
) -> Result<(), ConvertError> {
    let keys = if header {
        match rows.next_row()? {
            Some(row) => Some(column_names(&row.cells)),
            None => return Ok(()),
        }
    } else {
        None
    };
    while let Some(row) = rows.next_row()? {
        let Some(keys) = &keys else {
            sink.item(&Value::Array(row.cells))?;
            continue;
        };
        let extra = row.cells.get(keys.len()..).unwrap_or_default();
        if extra.iter().any(|cell| !is_empty(cell)) {
            return Err(ConvertError::malformed(format!(
                "{} {} has {} fields, but the header names {} columns: fix the row, or read \
                 the table with `header: false`",
                rows.unit(),
                row.line,
                row.cells.len(),
                keys.len()
            )));
        }
        let mut record = Map::with_capacity(keys.len());
        let mut cells = row.cells.into_iter();
        for key in keys {
            record.insert(key.clone(), cells.next().unwrap_or_else(|| empty.clone()));
        }
        sink.item(&Value::Object(record))?;
    }
    Ok(())
}

/// Whether a cell holds nothing.
fn is_empty(cell: &Value) -> bool {
    match cell {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        _ => false,
    }
}

/// The names a header row gives its columns: an empty name becomes the column's position,
/// and a name seen before gets `_2`, `_3`… so that no column hides another.
pub(crate) fn column_names(cells: &[Value]) -> Vec<String> {
    let mut seen = IndexSet::with_capacity(cells.len());
    cells
        .iter()
        .enumerate()
        .map(|(index, cell)| {
            let text = cell.cell_text();
            let base = if text.is_empty() {
                (index + 1).to_string()
            } else {
                text.into_owned()
            };
            let mut name = base.clone();
            let mut suffix = 2;
            while seen.contains(&name) {
                name = format!("{base}_{suffix}");
                suffix += 1;
            }
            seen.insert(name.clone());
            name
        })
        .collect()
}

/// Writes records as a table: the columns are every key met, in the order first met (read in
/// a first pass over the records), then one row per record. Arrays are rows whose columns
/// are named by position; anything else is not a record.
pub(crate) fn records_to_table(
    source: &mut RecordSource<'_>,
    header: bool,
    writer: &mut dyn TableWriter,
) -> Result<(), ConvertError> {
    let mut columns: IndexSet<String> = IndexSet::new();
    let mut count = 0_u64;
    // A record that cannot be a row is reported once the whole input has been read, so that
    // broken input is reported as such rather than as what its first items are.
    let mut problem = None;
    source.for_each(&mut |record| {
        count += 1;
        match record {
            Value::Object(members) => {
                for key in members.keys() {
                    if !columns.contains(key) {
                        columns.insert(key.clone());
                    }
                }
            }
            Value::Array(items) => {
                for position in 1..=items.len() {
                    columns.insert(position.to_string());
                }
            }
            other => {
                problem.get_or_insert_with(|| not_a_record(count, other));
            }
        }
        Ok(())
    })?;
    if let Some(problem) = problem {
        return Err(problem);
    }
    if header && !columns.is_empty() {
        let names: Vec<Value> = columns
            .iter()
            .map(|name| Value::String(name.clone()))
            .collect();
        writer.row(&names, true)?;
    }
    let mut cells = Vec::with_capacity(columns.len());
    source.for_each(&mut |record| {
        cells.clear();
        match record {
            Value::Object(members) => cells.extend(
                columns
                    .iter()
                    .map(|column| members.get(column).cloned().unwrap_or(Value::Null)),
            ),
            Value::Array(items) => cells.extend(columns.iter().map(|column| {
                let position = column.parse::<usize>().ok().and_then(|n| n.checked_sub(1));
                position
                    .and_then(|index| items.get(index))
                    .cloned()
                    .unwrap_or(Value::Null)
            })),
            _ => {}
        }
        writer.row(&cells, false)
    })
}

/// The error for an item of a list that cannot be a table row.
pub(crate) fn not_a_record(number: u64, value: &Value) -> ConvertError {
    ConvertError::unsupported(format!(
        "item {number} is {}, not a record: a table is made from a list of objects (or of \
         arrays)",
        value.kind()
    ))
}
