//! XLSX workbooks: one worksheet read a row at a time, and one written.
//!
//! A sheet is read twice, first to find the range its cells cover, then a row at a time, so
//! only one row is held however large the sheet. Every row has the range's width; the table
//! starts at the first row and column holding a value. Cells keep their types: numbers,
//! booleans and text; dates and times become ISO 8601 text (`2021-01-01`,
//! `2021-01-01T10:30:00`, `10:30:00`) and durations ISO 8601 durations (`PT255H10M10S`);
//! error cells their error text (`#DIV/0!`).
//!
//! A workbook written is built in memory, then saved: numbers, booleans and text keep their
//! types, ISO 8601 dates, times and durations (as read above) become Excel dates, times and
//! durations, and arrays and objects are written as JSON text.

use std::io::{Read, Seek, Write};

use calamine::{DataRef, ExcelDateTime, Reader, SheetType, Xlsx, XlsxCellReader, XlsxError};
use metamorph_plugin_api::{ConvertError, Input};
use rust_xlsxwriter::{Format as CellFormat, Workbook, Worksheet};

use crate::options::SheetRef;
use crate::table::{Row, RowSource, TableWriter};
use crate::value::Value;

/// Most cells the range of a sheet read may cover (its rows times its columns).
pub const MAX_SHEET_CELLS: u64 = 50_000_000;
/// Most cells a workbook written may hold, empty ones included: it is built in memory.
pub const MAX_WRITTEN_CELLS: u64 = 2_000_000;
/// Most bytes of text the cells of a workbook written may hold together.
pub const MAX_WRITTEN_TEXT: u64 = 64 * 1024 * 1024;
/// Rows in an Excel worksheet.
pub const MAX_ROWS: u32 = 1_048_576;
/// Columns in an Excel worksheet.
pub const MAX_COLUMNS: u32 = 16_384;

/// The largest integer a double holds exactly: larger ones are written as text.
const MAX_EXACT_INTEGER: u64 = 1 << 53;

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// Opens the workbook in `input`, picks the sheet (`sheet`, or the first worksheet) and
/// hands its rows to `body`.
pub(crate) fn with_rows<T>(
    input: &Input,
    sheet: Option<&SheetRef>,
    body: impl FnOnce(&mut dyn RowSource) -> Result<T, ConvertError>,
) -> Result<T, ConvertError> {
    let mut workbook: Xlsx<_> = Xlsx::new(input.reader()?).map_err(read_error)?;
    let name = pick_sheet(workbook.sheets_metadata(), sheet)?;
    let extent = scan(&mut workbook, &name)?;
    let cells = workbook.worksheet_cells_reader(&name).map_err(read_error)?;
    let mut rows = SheetRows {
        cells,
        extent,
        next: extent.map_or(0, |extent| extent.first_row),
        pending: None,
    };
    body(&mut rows)
}

/// The name of the sheet to read.
fn pick_sheet(
    sheets: &[calamine::Sheet],
    sheet: Option<&SheetRef>,
) -> Result<String, ConvertError> {
    let list = || {
        let names: Vec<String> = sheets
            .iter()
            .map(|sheet| format!("{:?}", sheet.name))
            .collect();
        names.join(", ")
    };
    let chosen = match sheet {
        None => sheets
            .iter()
            .find(|sheet| sheet.typ == SheetType::WorkSheet)
            .ok_or_else(|| ConvertError::malformed("the workbook has no worksheet"))?,
        Some(SheetRef::Name(name)) => sheets
            .iter()
            .find(|sheet| sheet.name == *name)
            .or_else(|| {
                sheets
                    .iter()
                    .find(|sheet| sheet.name.eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| {
                ConvertError::invalid_options(format!(
                    "`sheet`: the workbook has no sheet named {name:?}; its sheets are {}",
                    list()
                ))
            })?,
        Some(SheetRef::Index(number)) => usize::try_from(*number)
            .ok()
            .and_then(|number| number.checked_sub(1))
            .and_then(|index| sheets.get(index))
            .ok_or_else(|| {
                ConvertError::invalid_options(format!(
                    "`sheet` {number} does not exist: the workbook has {} sheets ({}), numbered \
                     from 1",
                    sheets.len(),
                    list()
                ))
            })?,
    };
    if chosen.typ != SheetType::WorkSheet {
        return Err(ConvertError::unsupported(format!(
            "sheet {:?} is a chart, dialog or macro sheet, which has no cells to read: choose \
             a worksheet with `sheet` (the sheets are {})",
            chosen.name,
            list()
        )));
    }
    Ok(chosen.name.clone())
}

/// The range of rows and columns (0-based, inclusive) a sheet's values cover.
#[derive(Clone, Copy, Debug)]
struct Extent {
    /// The first row holding a value.
    first_row: u32,
    /// The last row holding a value.
    last_row: u32,
    /// The first column holding a value.
    first_column: u32,
    /// The last column holding a value.
    last_column: u32,
}

impl Extent {
    /// Columns in the range.
    fn width(self) -> u32 {
        self.last_column - self.first_column + 1
    }

    /// Rows in the range.
    fn height(self) -> u32 {
        self.last_row - self.first_row + 1
    }
}

/// The first pass over a sheet: the range its values cover, checked against the limits.
fn scan<RS: Read + Seek>(
    workbook: &mut Xlsx<RS>,
    name: &str,
) -> Result<Option<Extent>, ConvertError> {
    let mut cells = workbook.worksheet_cells_reader(name).map_err(read_error)?;
    let mut extent: Option<Extent> = None;
    while let Some(cell) = cells.next_cell().map_err(read_error)? {
        if matches!(cell.get_value(), DataRef::Empty) {
            continue;
        }
        let (row, column) = cell.get_position();
        if row >= MAX_ROWS || column >= MAX_COLUMNS {
            return Err(ConvertError::malformed(format!(
                "the sheet has a cell at row {}, column {}, beyond Excel's {MAX_ROWS} rows and \
                 {MAX_COLUMNS} columns",
                u64::from(row) + 1,
                u64::from(column) + 1
            )));
        }
        extent = Some(match extent {
            None => Extent {
                first_row: row,
                last_row: row,
                first_column: column,
                last_column: column,
            },
            Some(extent) => Extent {
                first_row: extent.first_row.min(row),
                last_row: extent.last_row.max(row),
                first_column: extent.first_column.min(column),
                last_column: extent.last_column.max(column),
            },
        });
    }
    if let Some(extent) = extent {
        let cells = u64::from(extent.height()) * u64::from(extent.width());
        if cells > MAX_SHEET_CELLS {
            return Err(ConvertError::limit(format!(
                "the sheet spans {} rows by {} columns, {cells} cells: at most \
                 {MAX_SHEET_CELLS} are read",
                extent.height(),
                extent.width()
            )));
        }
    }
    Ok(extent)
}

/// The second pass over a sheet: its rows, one at a time.
struct SheetRows<'a, RS: Read + Seek> {
    /// The sheet's cells, in the order they are stored (row by row).
    cells: XlsxCellReader<'a, RS>,
    /// The range found by [`scan`] (`None`: the sheet holds no value).
    extent: Option<Extent>,
    /// The next row to give (0-based).
    next: u32,
    /// A cell read that belongs to a later row: (row, column, value).
    pending: Option<(u32, u32, Value)>,
}

impl<RS: Read + Seek> SheetRows<'_, RS> {
    /// The next cell holding a value.
    fn next_cell(&mut self) -> Result<Option<(u32, u32, Value)>, ConvertError> {
        if let Some(pending) = self.pending.take() {
            return Ok(Some(pending));
        }
        while let Some(cell) = self.cells.next_cell().map_err(read_error)? {
            let (row, column) = cell.get_position();
            let value = cell_value(cell.get_value());
            if value != Value::Null {
                return Ok(Some((row, column, value)));
            }
        }
        Ok(None)
    }
}

impl<RS: Read + Seek> RowSource for SheetRows<'_, RS> {
    fn next_row(&mut self) -> Result<Option<Row>, ConvertError> {
        let Some(extent) = self.extent else {
            return Ok(None);
        };
        if self.next > extent.last_row {
            return Ok(None);
        }
        let row = self.next;
        let width = usize::try_from(extent.width()).unwrap_or(usize::MAX);
        let mut cells = vec![Value::Null; width];
        while let Some((cell_row, column, value)) = self.next_cell()? {
            if cell_row > row {
                self.pending = Some((cell_row, column, value));
                break;
            }
            if cell_row < row {
                return Err(ConvertError::malformed(format!(
                    "the sheet's rows are out of order (row {} comes after row {}): the \
                     workbook is damaged",
                    u64::from(cell_row) + 1,
                    u64::from(row) + 1
                )));
            }
            let index = column
                .checked_sub(extent.first_column)
                .and_then(|at| usize::try_from(at).ok());
            if let Some(slot) = index.and_then(|index| cells.get_mut(index)) {
                *slot = value;
            }
        }
        self.next += 1;
        Ok(Some(Row {
            cells,
            line: u64::from(row) + 1,
        }))
    }

    fn unit(&self) -> &'static str {
        "row"
    }
}

/// A cell's value: whole numbers as integers, dates and durations as ISO 8601 text.
fn cell_value(data: &DataRef<'_>) -> Value {
    match data {
        DataRef::Int(number) => Value::Int(*number),
        DataRef::Float(number) => number_value(*number),
        DataRef::String(text) => Value::String(text.clone()),
        DataRef::SharedString(text) => Value::String((*text).to_owned()),
        DataRef::Bool(value) => Value::Bool(*value),
        DataRef::DateTime(datetime) => {
            date_text(datetime).map_or_else(|| number_value(datetime.as_f64()), Value::String)
        }
        DataRef::DateTimeIso(text) | DataRef::DurationIso(text) => Value::String(text.clone()),
        DataRef::Error(error) => Value::String(error.to_string()),
        DataRef::Empty => Value::Null,
    }
}

/// A number from a sheet: whole numbers that a double holds exactly are integers (Excel
/// stores every number as a double, so `15` is read as `15.0`).
#[allow(
    clippy::cast_possible_truncation,
    reason = "the number is whole and within ±2^53, so it converts exactly"
)]
fn number_value(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() <= 9_007_199_254_740_992.0 {
        Value::Int(number as i64)
    } else {
        Value::Float(number)
    }
}

/// A date, time or duration cell as ISO 8601 text; `None` for serial numbers outside
/// Excel's dates (before its epoch or after 9999).
fn date_text(datetime: &ExcelDateTime) -> Option<String> {
    let serial = datetime.as_f64();
    if !serial.is_finite() {
        return None;
    }
    if datetime.is_duration() {
        return duration_text(serial);
    }
    if !(0.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let (year, month, day, hour, minute, second, milli) = datetime.to_ymd_hms_milli();
    let time = if milli == 0 {
        format!("{hour:02}:{minute:02}:{second:02}")
    } else {
        format!("{hour:02}:{minute:02}:{second:02}.{milli:03}")
    };
    Some(if serial < 1.0 {
        // No day: a time of day.
        time
    } else if (hour, minute, second, milli) == (0, 0, 0, 0) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{time}")
    })
}

/// A duration of `days` as ISO 8601 (`PT255H10M10S`, `-PT0H0M1.5S`).
#[allow(
    clippy::cast_possible_truncation,
    reason = "the milliseconds are bounded by the check just before"
)]
fn duration_text(days: f64) -> Option<String> {
    let millis = (days * 86_400_000.0).round();
    if millis.abs() > 1e15 {
        return None;
    }
    let millis = millis as i64;
    let sign = if millis < 0 { "-" } else { "" };
    let millis = millis.unsigned_abs();
    let (hours, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, milli) = (rest / 1000, rest % 1000);
    Some(if milli == 0 {
        format!("{sign}PT{hours}H{minutes}M{seconds}S")
    } else {
        format!("{sign}PT{hours}H{minutes}M{seconds}.{milli:03}S")
    })
}

/// A workbook reading error as a conversion error.
fn read_error(error: XlsxError) -> ConvertError {
    match error {
        XlsxError::Zip(_) | XlsxError::FileNotFound(_) | XlsxError::RelationshipNotFound => {
            ConvertError::malformed(format!(
                "the input is not an XLSX workbook (a ZIP archive of spreadsheet parts): {error}"
            ))
        }
        other => ConvertError::malformed(format!("the workbook is malformed: {other}")),
    }
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// Writes rows into the first worksheet of a workbook, saved at the end.
pub(crate) struct XlsxWriter<'w> {
    /// The workbook being built.
    workbook: Workbook,
    /// Where it is saved.
    output: &'w mut dyn Write,
    /// The next row (0-based).
    row: u32,
    /// Cells written so far, empty ones included.
    cells: u64,
    /// Bytes of text written so far.
    text: u64,
    /// The cell formats used.
    formats: Formats,
}

/// The cell formats used.
struct Formats {
    /// Whether ISO 8601 text is written as dates, times and durations.
    moments: bool,
    /// The header row: bold.
    header: CellFormat,
    /// Dates: `yyyy-mm-dd`.
    date: CellFormat,
    /// Dates and times: `yyyy-mm-dd hh:mm:ss`.
    datetime: CellFormat,
    /// Dates and times to the millisecond.
    datetime_milli: CellFormat,
    /// Times of day: `hh:mm:ss`.
    time: CellFormat,
    /// Durations: `[h]:mm:ss`, hours past 24 included.
    duration: CellFormat,
}

impl<'w> XlsxWriter<'w> {
    /// A workbook with one sheet named `sheet`, saved to `output` at the end. With `moments`,
    /// ISO 8601 text becomes Excel dates, times and durations.
    pub(crate) fn new(
        sheet: &str,
        moments: bool,
        output: &'w mut dyn Write,
    ) -> Result<Self, ConvertError> {
        let mut workbook = Workbook::new();
        workbook.add_worksheet().set_name(sheet).map_err(|error| {
            ConvertError::invalid_options(format!(
                "`sheet` {sheet:?} cannot name a worksheet: {error}"
            ))
        })?;
        Ok(Self {
            workbook,
            output,
            row: 0,
            cells: 0,
            text: 0,
            formats: Formats {
                moments,
                header: CellFormat::new().set_bold(),
                date: CellFormat::new().set_num_format("yyyy-mm-dd"),
                datetime: CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
                datetime_milli: CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss.000"),
                time: CellFormat::new().set_num_format("hh:mm:ss"),
                duration: CellFormat::new().set_num_format("[h]:mm:ss"),
            },
        })
    }
}

impl TableWriter for XlsxWriter<'_> {
    fn row(&mut self, cells: &[Value], header: bool) -> Result<(), ConvertError> {
        if self.row >= MAX_ROWS {
            return Err(ConvertError::limit(format!(
                "a worksheet holds at most {MAX_ROWS} rows: split the data, or convert it to CSV"
            )));
        }
        if cells.len() > MAX_COLUMNS as usize {
            return Err(ConvertError::limit(format!(
                "row {} has {} cells, but a worksheet holds at most {MAX_COLUMNS} columns",
                u64::from(self.row) + 1,
                cells.len()
            )));
        }
        self.cells += cells.len() as u64;
        if self.cells > MAX_WRITTEN_CELLS {
            return Err(ConvertError::limit(format!(
                "the workbook would hold more than {MAX_WRITTEN_CELLS} cells, the most written: \
                 split the data, or convert it to CSV"
            )));
        }
        self.text += cells
            .iter()
            .map(|cell| match cell {
                Value::String(text) => text.len() as u64,
                Value::Array(_) | Value::Object(_) => cell.cell_text().len() as u64,
                _ => 0,
            })
            .sum::<u64>();
        if self.text > MAX_WRITTEN_TEXT {
            return Err(ConvertError::limit(format!(
                "the workbook would hold more than {} MiB of text, the most written: split the \
                 data, or convert it to CSV",
                MAX_WRITTEN_TEXT / (1024 * 1024)
            )));
        }
        let sheet = self.workbook.worksheet_from_index(0).map_err(|error| {
            ConvertError::internal(format!("the worksheet is missing: {error}"))
        })?;
        for (column, cell) in cells.iter().enumerate() {
            let column = u16::try_from(column).unwrap_or(u16::MAX);
            write_cell(sheet, self.row, column, cell, header, &self.formats)?;
        }
        self.row += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), ConvertError> {
        let Self {
            mut workbook,
            output,
            ..
        } = *self;
        let bytes = workbook.save_to_buffer().map_err(|error| {
            ConvertError::internal(format!("cannot save the workbook: {error}"))
        })?;
        output.write_all(&bytes)?;
        Ok(())
    }
}

/// Writes one cell.
#[allow(
    clippy::cast_precision_loss,
    reason = "only integers within ±2^53, which a double holds exactly, are written as numbers"
)]
fn write_cell(
    sheet: &mut Worksheet,
    row: u32,
    column: u16,
    cell: &Value,
    header: bool,
    formats: &Formats,
) -> Result<(), ConvertError> {
    let written = match cell {
        Value::Null => return Ok(()),
        Value::String(text) if header => {
            sheet.write_string_with_format(row, column, text, &formats.header)
        }
        Value::Bool(value) => sheet.write_boolean(row, column, *value),
        Value::Int(number) if number.unsigned_abs() <= MAX_EXACT_INTEGER => {
            sheet.write_number(row, column, *number as f64)
        }
        Value::Float(number) if number.is_finite() => sheet.write_number(row, column, *number),
        Value::String(text) => match parse_moment(text).filter(|_| formats.moments) {
            Some((serial, kind)) => {
                let format = match kind {
                    Moment::Date => &formats.date,
                    Moment::DateTime => &formats.datetime,
                    Moment::DateTimeMilli => &formats.datetime_milli,
                    Moment::Time => &formats.time,
                    Moment::Duration => &formats.duration,
                };
                sheet.write_number_with_format(row, column, serial, format)
            }
            None => sheet.write_string(row, column, text),
        },
        other => sheet.write_string(row, column, other.cell_text()),
    };
    written
        .map(|_sheet| ())
        .map_err(|error| cell_error(row, column, &error))
}

/// A cell writing error: a string too long for a cell, or an internal one.
fn cell_error(row: u32, column: u16, error: &rust_xlsxwriter::XlsxError) -> ConvertError {
    let cell = format!("{}{}", column_letters(column), u64::from(row) + 1);
    match error {
        rust_xlsxwriter::XlsxError::MaxStringLengthExceeded => ConvertError::unsupported(format!(
            "cell {cell} would hold more than 32767 characters, the most an Excel cell holds: \
             convert to CSV instead"
        )),
        other => ConvertError::internal(format!("cannot write cell {cell}: {other}")),
    }
}

/// A column's letters (`A`, `Z`, `AA`…) from its 0-based number.
fn column_letters(column: u16) -> String {
    let mut number = u32::from(column) + 1;
    let mut letters = Vec::new();
    while number > 0 {
        let rest = (number - 1) % 26;
        letters.push(char::from(b'A' + u8::try_from(rest).unwrap_or(0)));
        number = (number - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// What an ISO 8601 text written as an Excel serial number is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    /// `2021-01-01`.
    Date,
    /// `2021-01-01T10:30:00`.
    DateTime,
    /// `2021-01-01T10:30:00.250`.
    DateTimeMilli,
    /// `10:30:00`, with or without milliseconds.
    Time,
    /// `PT255H10M10S`.
    Duration,
}

/// Reads ISO 8601 text as read from sheets, as an Excel serial number: `2021-01-01`,
/// `2021-01-01T10:30:00` (or with a space, or with milliseconds), `10:30:00`,
/// `PT255H10M10S`. Anything else (time zones included, which Excel has no way to keep) is
/// not a moment.
fn parse_moment(text: &str) -> Option<(f64, Moment)> {
    let bytes = text.as_bytes();
    if text.starts_with("PT") || text.starts_with("-PT") {
        return parse_duration(text).map(|serial| (serial, Moment::Duration));
    }
    if bytes.len() >= 10 && bytes[4] == b'-' && bytes[7] == b'-' {
        let date = parse_date(&text[..10])?;
        if bytes.len() == 10 {
            return Some((date.to_excel(), Moment::Date));
        }
        let (separator, time) = text[10..].split_at_checked(1)?;
        if separator != "T" && separator != " " {
            return None;
        }
        let (hour, minute, second, milli) = parse_time(time)?;
        let datetime = date
            .and_hms_milli(hour, minute, second, milli.unwrap_or(0))
            .ok()?;
        let kind = if milli.is_some() {
            Moment::DateTimeMilli
        } else {
            Moment::DateTime
        };
        return Some((datetime.to_excel(), kind));
    }
    let (hour, minute, second, milli) = parse_time(text)?;
    if hour > 23 {
        return None;
    }
    let time =
        rust_xlsxwriter::ExcelDateTime::from_hms_milli(hour, minute, second, milli.unwrap_or(0))
            .ok()?;
    Some((time.to_excel(), Moment::Time))
}

/// `YYYY-MM-DD`, within Excel's years (1900 to 9999).
fn parse_date(text: &str) -> Option<rust_xlsxwriter::ExcelDateTime> {
    let year = digits(text.get(0..4)?).filter(|year| *year >= 1900)?;
    let month = digits(text.get(5..7)?)?;
    let day = digits(text.get(8..10)?)?;
    rust_xlsxwriter::ExcelDateTime::from_ymd(
        u16::try_from(year).ok()?,
        u8::try_from(month).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()
}

/// `HH:MM:SS` or `HH:MM:SS.mmm`: hour, minute, second and the milliseconds if given.
fn parse_time(text: &str) -> Option<(u16, u8, u8, Option<u16>)> {
    let bytes = text.as_bytes();
    if !(bytes.len() == 8 || bytes.len() == 12) || bytes[2] != b':' || bytes[5] != b':' {
        return None;
    }
    let hour = u16::try_from(digits(&text[0..2])?).ok()?;
    let minute = u8::try_from(digits(&text[3..5])?).ok()?;
    let second = u8::try_from(digits(&text[6..8])?).ok()?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let milli = if bytes.len() == 12 {
        if bytes[8] != b'.' {
            return None;
        }
        Some(u16::try_from(digits(&text[9..12])?).ok()?)
    } else {
        None
    };
    Some((hour, minute, second, milli))
}

/// `PT…H…M…S` (each part optional, seconds possibly with a fraction; `-` before for a
/// negative duration) as days.
fn parse_duration(text: &str) -> Option<f64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut rest = rest.strip_prefix("PT")?;
    let mut seconds = 0.0;
    let mut parts = 0;
    for (unit, scale) in [('H', 3600.0), ('M', 60.0), ('S', 1.0)] {
        let Some(end) = rest.find(unit) else {
            continue;
        };
        let number = &rest[..end];
        let whole = number.split_once('.').map_or(number, |(whole, _)| whole);
        let valid = !whole.is_empty()
            && whole.bytes().all(|byte| byte.is_ascii_digit())
            && (unit == 'S' || !number.contains('.'))
            && number.split_once('.').is_none_or(|(_, fraction)| {
                !fraction.is_empty() && fraction.bytes().all(|byte| byte.is_ascii_digit())
            });
        if !valid {
            return None;
        }
        seconds += number.parse::<f64>().ok()? * scale;
        rest = &rest[end + 1..];
        parts += 1;
    }
    if parts == 0 || !rest.is_empty() || !seconds.is_finite() {
        return None;
    }
    let days = seconds / 86_400.0;
    Some(if negative { -days } else { days })
}

/// ASCII digits only, as a number.
fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_text_reads_as_excel_serials() {
        assert_eq!(parse_moment("2021-01-01"), Some((44197.0, Moment::Date)));
        assert_eq!(
            parse_moment("2000-01-01T12:00:00"),
            Some((36526.5, Moment::DateTime))
        );
        assert_eq!(parse_moment("12:00:00"), Some((0.5, Moment::Time)));
        let (serial, kind) = parse_moment("PT255H10M10S").unwrap();
        assert_eq!(kind, Moment::Duration);
        assert_eq!(duration_text(serial).as_deref(), Some("PT255H10M10S"));
        for text in [
            "2021-13-01",
            "2021-02-30",
            "1899-12-31",
            "2021-01-01Z",
            "2021-01-01T25:00:00",
            "PT",
            "PTH",
            "PT1.5H",
            "P1D",
            "12:00",
            "hello",
            "2021-01-01T12:00:00+02:00",
        ] {
            assert_eq!(parse_moment(text), None, "{text}");
        }
    }

    #[test]
    fn columns_are_lettered_as_excel_does() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(16_383), "XFD");
    }
}
