//! Conversions of the templates and of real files from the shared corpus, checked by reading
//! the results back independently: serde_json, the csv crate, calamine, serde_norway, toml
//! and quick-xml.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use metamorph_plugin_api::{ConvertError, Converter, ErrorKind, convert_bytes, convert_file};
use serde_json::{Value as Json, json};

use crate::{DataPlugin, FORMATS, TEMPLATES};

macro_rules! corpus {
    ($path:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/corpus/",
            $path
        )
    };
}

const USPOP: &str = corpus!("data/csv-uspop.csv");
const SEMICOLON: &str = corpus!("data/csv-semicolon-quoted.csv");
const MIME_DB: &str = corpus!("data/json-mime-db.json");
const XMP: &str = corpus!("data/xml-xmp-rdf.xml");
const XLSX_DATES: &str = corpus!("document/xlsx-dates.xlsx");
const UNCLOSED: &str = corpus!("malformed/json-unclosed-array.json");
const DOCX: &str = corpus!("document/docx-coreprops.docx");

/// The semicolon file's dialect: `\"` escapes quotes, `#` starts comments, no header.
const SEMICOLON_OPTIONS: &str =
    r##"{"delimiter": ";", "escape": "\\", "comment": "#", "header": false}"##;

fn convert(bytes: &[u8], source: &str, target: &str, options: &str) -> Vec<u8> {
    convert_bytes::<DataPlugin>(bytes, source, target, options)
        .unwrap_or_else(|error| panic!("{source} → {target} {options}: {error}"))
}

fn convert_path(path: &str, source: &str, target: &str, options: &str) -> Vec<u8> {
    convert_file::<DataPlugin>(path, source, target, options)
        .unwrap_or_else(|error| panic!("{path} {source} → {target} {options}: {error}"))
}

fn failure(result: Result<Vec<u8>, ConvertError>) -> ConvertError {
    match result {
        Ok(bytes) => panic!(
            "expected an error, got {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        ),
        Err(error) => error,
    }
}

fn template(format: &str) -> Vec<u8> {
    DataPlugin::template(format).unwrap_or_else(|error| panic!("template {format}: {error}"))
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("the output is UTF-8")
}

/// Every declared pair.
fn pairs() -> Vec<(String, String)> {
    DataPlugin::describe()
        .conversions
        .into_iter()
        .map(|conversion| (conversion.source, conversion.target))
        .collect()
}

fn is_table(format: &str) -> bool {
    matches!(format, "csv" | "tsv" | "xlsx")
}

/// A table output's rows, cells as text. CSV and TSV are read strictly: every row must
/// have the same number of fields.
fn table(bytes: &[u8], format: &str) -> Vec<Vec<String>> {
    match format {
        "csv" | "tsv" => {
            let delimiter = if format == "tsv" { b'\t' } else { b',' };
            csv_rows(bytes, delimiter)
        }
        "xlsx" => sheet(bytes, None)
            .rows()
            .map(|row| row.iter().map(xlsx_text).collect())
            .collect(),
        other => panic!("{other} is not a table"),
    }
}

fn csv_rows(bytes: &[u8], delimiter: u8) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(bytes)
        .records()
        .map(|record| {
            record
                .expect("a well-formed CSV row, as wide as the others")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// A sheet of a workbook read with calamine (the first when `name` is `None`).
fn sheet(bytes: &[u8], name: Option<&str>) -> calamine::Range<Data> {
    let mut workbook = Xlsx::new(Cursor::new(bytes.to_vec())).expect("calamine opens the workbook");
    let name = name.map_or_else(|| workbook.sheet_names()[0].clone(), str::to_owned);
    workbook.worksheet_range(&name).expect("the sheet reads")
}

/// A workbook cell as text: whole numbers without a point, dates as ISO 8601.
fn xlsx_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::Float(number) if number.fract() == 0.0 => format!("{}", *number as i64),
        Data::DateTime(datetime) if datetime.is_datetime() => {
            let (year, month, day, hour, minute, second, _) = datetime.to_ymd_hms_milli();
            if (hour, minute, second) == (0, 0, 0) {
                format!("{year:04}-{month:02}-{day:02}")
            } else {
                format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}")
            }
        }
        other => other.to_string(),
    }
}

/// A records output read back: JSON and NDJSON with serde_json, YAML with serde_norway,
/// TOML with toml, XML checked with quick-xml and read into JSON by the plugin.
fn document(bytes: &[u8], format: &str) -> Json {
    match format {
        "json" => serde_json::from_slice(bytes).expect("the output is JSON"),
        "ndjson" => Json::Array(
            text(bytes)
                .lines()
                .map(|line| serde_json::from_str(line).expect("each line is JSON"))
                .collect(),
        ),
        "yaml" => serde_norway::from_slice(bytes).expect("the output is YAML"),
        "toml" => toml::from_str(text(bytes)).expect("the output is TOML"),
        "xml" => {
            well_formed_xml(bytes);
            serde_json::from_slice(&convert(bytes, "xml", "json", "{}")).expect("JSON")
        }
        other => panic!("{other} is not a records format"),
    }
}

/// Reads XML through to the end with quick-xml, which checks that it is well formed.
fn well_formed_xml(bytes: &[u8]) {
    let mut reader = quick_xml::Reader::from_str(text(bytes));
    let mut depth = 0_i64;
    let mut roots = 0;
    loop {
        match reader.read_event().expect("the output is well-formed XML") {
            quick_xml::events::Event::Start(_) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            quick_xml::events::Event::Empty(_) if depth == 0 => roots += 1,
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!((depth, roots), (0, 1), "one root element, closed");
}

/// The list a records output holds: the document, or the list inside objects of one member
/// (TOML keeps a list under `items`, XML under `root`/`item`).
fn records(bytes: &[u8], format: &str) -> Vec<Json> {
    let mut list = document(bytes, format);
    loop {
        list = match list {
            Json::Array(items) => return items,
            Json::Object(members) if members.len() == 1 => members.into_iter().next().unwrap().1,
            other => panic!("not a list: {other}"),
        };
    }
}

/// A JSON scalar as a cell's text.
fn cell(value: &Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Records as a table with `columns` (missing fields are empty cells).
fn as_table(records: &[Json], columns: &[String]) -> Vec<Vec<String>> {
    let mut rows = vec![columns.to_vec()];
    for record in records {
        rows.push(
            columns
                .iter()
                .map(|column| cell(record.get(column).unwrap_or(&Json::Null)))
                .collect(),
        );
    }
    rows
}

/// The templates' table.
fn template_table() -> Vec<Vec<String>> {
    [
        ["id", "name", "price", "in_stock", "added"],
        ["1", "Notebook", "2.5", "true", "2024-03-01"],
        ["2", "Pen, blue", "1.25", "false", "2024-03-15"],
        ["3", "Stapler", "", "true", "2024-04-02"],
    ]
    .iter()
    .map(|row| row.iter().map(|cell| (*cell).to_owned()).collect())
    .collect()
}

/// Tables equal row by row, cells matched by their column's name (the columns may come in
/// another order) and equal as text, or as numbers when both are numbers (`-91.9475000` is
/// `-91.9475`).
fn same_cells(left: &[Vec<String>], right: &[Vec<String>]) -> bool {
    let (Some(left_header), Some(right_header)) = (left.first(), right.first()) else {
        return left.is_empty() && right.is_empty();
    };
    let mut names = left_header.clone();
    names.sort();
    let mut other_names = right_header.clone();
    other_names.sort();
    if names != other_names || left.len() != right.len() {
        return false;
    }
    left.iter().zip(right).skip(1).all(|(a, b)| {
        left_header.iter().zip(a).all(|(name, x)| {
            let at = right_header.iter().position(|other| other == name).unwrap();
            let y = &b[at];
            x == y || matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
        })
    })
}

// ---------------------------------------------------------------------------------------
// What the plugin declares
// ---------------------------------------------------------------------------------------

#[test]
fn tables_and_records_convert_in_every_direction_but_to_themselves() {
    let pairs = pairs();
    for source in FORMATS {
        for target in FORMATS {
            let declared = pairs.iter().any(|(s, t)| s == source && t == target);
            let expected =
                source != target || matches!(source, "csv" | "json" | "yaml" | "toml" | "xml");
            assert_eq!(declared, expected, "{source} → {target}");
        }
    }
    assert_eq!(pairs.len(), 61);
    let info = DataPlugin::describe();
    assert_eq!(info.name, "data");
    assert_eq!(info.templates, TEMPLATES.map(str::to_owned).to_vec());
    assert!(
        info.conversions
            .iter()
            .all(|conversion| conversion.options_schema.is_some())
    );
    // A direct conversion is always cheaper than a chain through another format.
    let cost = |s: &str, t: &str| {
        info.conversions
            .iter()
            .find(|c| c.source == s && c.target == t)
            .map(|c| c.cost)
    };
    assert!(
        cost("xlsx", "yaml") < Some(cost("xlsx", "json").unwrap() + cost("json", "yaml").unwrap())
    );
}

#[test]
fn each_pair_declares_only_the_options_that_apply_to_it() {
    let info = DataPlugin::describe();
    let options = |source: &str, target: &str| -> Vec<String> {
        let conversion = info
            .conversions
            .iter()
            .find(|c| c.source == source && c.target == target)
            .unwrap();
        let schema: Json =
            serde_json::from_str(conversion.options_schema.as_ref().unwrap()).unwrap();
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    assert_eq!(
        options("csv", "json"),
        [
            "comment",
            "delimiter",
            "escape",
            "header",
            "infer_types",
            "pretty"
        ]
    );
    assert_eq!(
        options("csv", "csv"),
        ["comment", "delimiter", "escape", "output_delimiter"]
    );
    assert_eq!(options("xlsx", "csv"), ["delimiter", "sheet"]);
    assert_eq!(
        options("csv", "xlsx"),
        [
            "comment",
            "delimiter",
            "escape",
            "header",
            "infer_types",
            "sheet"
        ]
    );
    assert_eq!(options("json", "toml"), ["pretty", "root"]);
    assert_eq!(options("yaml", "xml"), ["item", "pretty", "root"]);
    assert_eq!(options("xml", "tsv"), ["header"]);
    assert!(options("json", "ndjson").is_empty());
    let plugin: Json = serde_json::from_str(&info.options_schema).unwrap();
    assert_eq!(plugin["properties"].as_object().unwrap().len(), 10);
}

#[test]
fn templates_are_valid_files_of_their_format() {
    for format in TEMPLATES {
        let bytes = template(format);
        let rows = if is_table(format) {
            table(&bytes, format)
        } else {
            as_table(&records(&bytes, format), &template_table()[0])
        };
        assert_eq!(rows, template_table(), "{format}");
    }
    assert_eq!(
        failure(DataPlugin::template("png")).kind,
        ErrorKind::Unsupported
    );
}

// ---------------------------------------------------------------------------------------
// Every pair, from the templates and from the corpus
// ---------------------------------------------------------------------------------------

#[test]
fn every_declared_pair_converts_each_template_and_keeps_its_values() {
    for (source, target) in pairs() {
        let output = convert(&template(&source), &source, &target, "{}");
        let rows = if is_table(&target) {
            table(&output, &target)
        } else {
            as_table(&records(&output, &target), &template_table()[0])
        };
        assert_eq!(rows, template_table(), "{source} → {target}");
    }
}

#[test]
fn every_declared_pair_converts_the_corpus_files() {
    let samples = [
        (USPOP, "csv", "{}"),
        (SEMICOLON, "csv", SEMICOLON_OPTIONS),
        (MIME_DB, "json", "{}"),
        (XMP, "xml", "{}"),
        (XLSX_DATES, "xlsx", "{}"),
    ];
    for (source, target) in pairs() {
        for (path, format, options) in samples {
            if format != source {
                continue;
            }
            // Only the options this pair takes (`header` is not one of CSV to CSV's).
            let mut options: Json = serde_json::from_str(options).unwrap();
            if source == "csv" && matches!(target.as_str(), "csv" | "tsv") {
                options.as_object_mut().unwrap().remove("header");
            }
            let output = convert_path(path, &source, &target, &options.to_string());
            if is_table(&target) {
                assert!(!table(&output, &target).is_empty(), "{path} → {target}");
            } else {
                assert_ne!(document(&output, &target), Json::Null, "{path} → {target}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tables to records and back
// ---------------------------------------------------------------------------------------

#[test]
fn csv_rows_become_typed_records_named_by_the_header() {
    let output = convert_path(USPOP, "csv", "json", "{}");
    let records: Vec<Json> = serde_json::from_slice(&output).unwrap();
    assert_eq!(records.len(), 100);
    assert_eq!(
        records[0],
        json!({"City": "Davidsons Landing", "State": "AK", "Population": null,
               "Latitude": 65.2419444, "Longitude": -165.2716667})
    );
    assert_eq!(records[1]["Population"], json!(7610));
    // Keys keep the header's order.
    assert!(text(&output).find("\"City\"").unwrap() < text(&output).find("\"Longitude\"").unwrap());
}

#[test]
fn csv_to_json_to_csv_keeps_every_value() {
    let original = std::fs::read(USPOP).unwrap();
    let json = convert(&original, "csv", "json", "{}");
    let back = convert(&json, "json", "csv", "{}");
    let (before, after) = (csv_rows(&original, b','), csv_rows(&back, b','));
    assert!(
        same_cells(&before, &after),
        "the values survive the round trip"
    );
    // Untyped, the text survives byte for byte.
    let json = convert(&original, "csv", "json", r#"{"infer_types": false}"#);
    assert_eq!(convert(&json, "json", "csv", "{}"), original);
    // Through NDJSON, YAML, TOML, XML and a workbook too.
    for via in ["ndjson", "yaml", "toml", "xml", "xlsx", "tsv"] {
        let middle = convert(&original, "csv", via, "{}");
        let back = csv_rows(&convert(&middle, via, "csv", "{}"), b',');
        assert!(same_cells(&before, &back), "csv → {via} → csv");
    }
}

#[test]
fn a_workbook_gives_its_cells_with_dates_as_iso_8601() {
    let csv = convert_path(XLSX_DATES, "xlsx", "csv", "{}");
    assert_eq!(
        text(&csv),
        "2021-01-01,15\n2021-01-02,16\nPT255H10M10S,17\n"
    );
    let tsv = convert_path(XLSX_DATES, "xlsx", "tsv", "{}");
    assert_eq!(
        text(&tsv),
        "2021-01-01\t15\n2021-01-02\t16\nPT255H10M10S\t17\n"
    );
    let rows: Json = serde_json::from_slice(&convert_path(
        XLSX_DATES,
        "xlsx",
        "json",
        r#"{"header": false}"#,
    ))
    .unwrap();
    assert_eq!(
        rows,
        json!([["2021-01-01", 15], ["2021-01-02", 16], ["PT255H10M10S", 17]])
    );
    // With a header (the default) the first row names the fields.
    let records: Json =
        serde_json::from_slice(&convert_path(XLSX_DATES, "xlsx", "json", "{}")).unwrap();
    assert_eq!(records[0], json!({"2021-01-01": "2021-01-02", "15": 16}));
}

#[test]
fn dates_and_durations_written_to_a_workbook_are_excel_dates_again() {
    let csv = convert_path(XLSX_DATES, "xlsx", "csv", "{}");
    let workbook = convert(&csv, "csv", "xlsx", r#"{"header": false}"#);
    let range = sheet(&workbook, None);
    let Some(Data::DateTime(date)) = range.get((0, 0)) else {
        panic!("A1 is a date: {:?}", range.get((0, 0)));
    };
    assert!(date.is_datetime());
    assert_eq!(date.to_ymd_hms_milli(), (2021, 1, 1, 0, 0, 0, 0));
    let Some(Data::DateTime(duration)) = range.get((2, 0)) else {
        panic!("A3 is a duration: {:?}", range.get((2, 0)));
    };
    assert!(duration.is_duration());
    assert!((duration.as_f64() - 10.632_060_185_185_2).abs() < 1e-9);
    assert_eq!(range.get((0, 1)), Some(&Data::Float(15.0)));
    // And read back, the same text.
    assert_eq!(convert(&workbook, "xlsx", "csv", "{}"), csv);
}

#[test]
fn records_become_rows_with_every_key_as_a_column_and_nested_values_as_json() {
    let input = br#"[{"a": 1, "b": {"x": [1, 2]}}, {"c": "three", "a": null}, {"b": [true]}]"#;
    let output = convert(input, "json", "csv", "{}");
    assert_eq!(
        csv_rows(&output, b','),
        [
            vec!["a", "b", "c"],
            vec!["1", r#"{"x":[1,2]}"#, ""],
            vec!["", "", "three"],
            vec!["", "[true]", ""],
        ]
    );
    // A map of records gives each its name in a first field `key`.
    let output = convert_path(MIME_DB, "json", "csv", "{}");
    let rows = csv_rows(&output, b',');
    assert_eq!(rows[0][..3], ["key", "source", "charset"]);
    let mime_db: serde_json::Map<String, Json> =
        serde_json::from_slice(&std::fs::read(MIME_DB).unwrap()).unwrap();
    assert_eq!(rows.len(), mime_db.len() + 1);
    let extensions = rows[0]
        .iter()
        .position(|name| name == "extensions")
        .unwrap();
    let json_row = rows
        .iter()
        .find(|row| row[0] == "application/json")
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Json>(&json_row[extensions]).unwrap(),
        mime_db["application/json"]["extensions"]
    );
    // A workbook keeps the types.
    let workbook = convert(input, "json", "xlsx", "{}");
    let range = sheet(&workbook, None);
    assert_eq!(range.get((0, 0)), Some(&Data::String("a".into())));
    assert_eq!(range.get((1, 0)), Some(&Data::Float(1.0)));
    assert_eq!(range.get((3, 1)), Some(&Data::String("[true]".into())));
}

#[test]
fn lists_in_xml_yaml_and_toml_documents_are_found() {
    let xml = b"<?xml version=\"1.0\"?><rows><row><a>1</a></row><row><a>2</a></row></rows>";
    assert_eq!(text(&convert(xml, "xml", "csv", "{}")), "a\n1\n2\n");
    let toml = b"[[people]]\nname = \"Ada\"\n\n[[people]]\nname = \"Alan\"\n";
    assert_eq!(
        text(&convert(toml, "toml", "csv", "{}")),
        "name\nAda\nAlan\n"
    );
    let yaml = b"- name: Ada\n  born: 1815\n- name: Alan\n";
    assert_eq!(
        text(&convert(yaml, "yaml", "tsv", "{}")),
        "name\tborn\nAda\t1815\nAlan\t\n"
    );
    // A single object is one record.
    assert_eq!(
        text(&convert(b"{\"a\": 1, \"b\": 2}", "json", "csv", "{}")),
        "a,b\n1,2\n"
    );
    // XML attributes are fields too; XMP gives one record of its description.
    let rows = csv_rows(&convert_path(XMP, "xml", "csv", "{}"), b',');
    assert_eq!(rows.len(), 2);
    let about = rows[0]
        .iter()
        .position(|name| name == "@rdf:about")
        .unwrap();
    assert_eq!(rows[1][about], "t/images/Nikon.jpg");
}

#[test]
fn byte_order_marks_and_crlf_line_ends_are_read() {
    let output = convert(b"\xEF\xBB\xBFa,b\r\n1,2\r\n", "csv", "json", "{}");
    assert_eq!(document(&output, "json"), json!([{"a": 1, "b": 2}]));
    let output = convert(b"\xEF\xBB\xBF{\"a\": 1}\r\n", "ndjson", "json", "{}");
    assert_eq!(document(&output, "json"), json!([{"a": 1}]));
    let output = convert(b"\xEF\xBB\xBF[{\"a\": 1}]", "json", "csv", "{}");
    assert_eq!(text(&output), "a\n1\n");
    let output = convert(b"\xEF\xBB\xBFa = 1\r\n", "toml", "json", "{}");
    assert_eq!(document(&output, "json"), json!({"a": 1}));
    let output = convert(b"\xEF\xBB\xBF<a>1</a>", "xml", "json", "{}");
    assert_eq!(document(&output, "json"), json!({"a": "1"}));
    let output = convert(b"\xEF\xBB\xBFa: 1\r\n", "yaml", "json", "{}");
    assert_eq!(document(&output, "json"), json!({"a": 1}));
}

#[test]
fn a_scalar_is_not_a_table() {
    let error = failure(convert_bytes::<DataPlugin>(b"[1, 2]", "json", "csv", "{}"));
    assert_eq!(error.kind, ErrorKind::Unsupported);
    assert!(
        error.message.contains("item 1 is a number, not a record"),
        "{}",
        error.message
    );
}

// ---------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------

#[test]
fn json_documents_survive_yaml_and_toml() {
    let original: Json = serde_json::from_slice(&std::fs::read(MIME_DB).unwrap()).unwrap();
    for via in ["yaml", "toml", "json"] {
        let middle = convert_path(MIME_DB, "json", via, "{}");
        assert_eq!(document(&middle, via), original, "json → {via}");
        let back: Json = serde_json::from_slice(&convert(&middle, via, "json", "{}")).unwrap();
        assert_eq!(back, original, "json → {via} → json");
    }
}

#[test]
fn xml_reads_into_objects_the_common_way_and_writes_back_the_same() {
    let json: Json = serde_json::from_slice(&convert_path(XMP, "xml", "json", "{}")).unwrap();
    let description = &json["rdf:RDF"]["rdf:Description"];
    assert_eq!(description["@rdf:about"], "t/images/Nikon.jpg");
    assert_eq!(
        description["IFD0:Make"],
        json!({"@et:id": "271", "#text": "NIKON"})
    );
    assert_eq!(
        description["ExifIFD:UserComment"],
        json!({"@et:id": "37510"})
    );
    // Whitespace that is an element's whole text is kept.
    assert_eq!(description["IFD0:ImageDescription"]["#text"], "          ");
    let xml = convert_path(XMP, "xml", "xml", "{}");
    well_formed_xml(&xml);
    assert!(text(&xml).contains("<IFD0:Make et:id=\"271\">NIKON</IFD0:Make>"));
    let again: Json = serde_json::from_slice(&convert(&xml, "xml", "json", "{}")).unwrap();
    assert_eq!(again, json);

    let input = br#"<?xml version="1.0"?>
<!-- a comment -->
<list kind="demo">
  <entry id="1">first &amp; <b>bold</b> &#x263A;</entry>
  <entry/>
  <entry><![CDATA[<raw>]]></entry>
  <single>text</single>
</list>"#;
    let json: Json = serde_json::from_slice(&convert(input, "xml", "json", "{}")).unwrap();
    assert_eq!(
        json,
        json!({"list": {"@kind": "demo", "entry": [
            {"@id": "1", "b": "bold", "#text": "first &  ☺"},
            null,
            "<raw>"
        ], "single": "text"}})
    );
}

#[test]
fn keys_that_are_not_xml_names_are_made_names_and_text_is_escaped() {
    let input = br##"{"data": {"Population Estimate": 5, "2024": "a < b & \"c\"", "@id": "x\ny", "#text": "t", "ns:tag": 1, "list": [1, [2, 3]], "empty": []}}"##;
    let output = convert(input, "json", "xml", r#"{"pretty": false}"#);
    assert_eq!(
        text(&output),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><data id=\"x&#10;y\">t\
         <Population_Estimate>5</Population_Estimate><_2024>a &lt; b &amp; \"c\"</_2024>\
         <ns_tag>1</ns_tag><list>1</list><list><item>2</item><item>3</item></list><empty/></data>\n"
    );
    well_formed_xml(&output);
    let back: Json = serde_json::from_slice(&convert(&output, "xml", "json", "{}")).unwrap();
    assert_eq!(back["data"]["@id"], "x\ny");
    assert_eq!(back["data"]["_2024"], "a < b & \"c\"");
    // XML 1.0 cannot hold most control characters at all.
    let error = failure(convert_bytes::<DataPlugin>(
        br#"[{"a": "bell\u0007"}]"#,
        "json",
        "xml",
        "{}",
    ));
    assert_eq!(error.kind, ErrorKind::Unsupported);
    assert!(
        error.message.contains("U+0007") && error.message.contains("$[0].a"),
        "{}",
        error.message
    );
}

#[test]
fn toml_needs_a_table_at_the_top() {
    let output = convert(b"[1, 2, 3]", "json", "toml", "{}");
    assert_eq!(document(&output, "toml"), json!({"items": [1, 2, 3]}));
    let output = convert(b"42", "json", "toml", r#"{"root": "answer"}"#);
    assert_eq!(document(&output, "toml"), json!({"answer": 42}));
    let output = convert(b"{\"a\": null, \"b\": 1}", "json", "toml", "{}");
    assert_eq!(
        document(&output, "toml"),
        json!({"b": 1}),
        "TOML leaves null members out"
    );
    for (input, place) in [
        (&b"[1, null]"[..], "items[1]"),
        (b"{\"big\": 18446744073709551615}", "big"),
    ] {
        let error = failure(convert_bytes::<DataPlugin>(input, "json", "toml", "{}"));
        assert_eq!(error.kind, ErrorKind::Unsupported);
        assert!(error.message.contains(place), "{}", error.message);
    }
    // A list of tables is written a table at a time, sub-tables and all.
    let input = br#"[{"a": 1, "sub": {"x": [1, 2]}, "list": [{"y": 1}, {"y": 2}]}, {"a": 2, "sub": {"x": []}}]"#;
    for options in ["{}", r#"{"pretty": false}"#, r#"{"root": "rows"}"#] {
        let output = convert(input, "json", "toml", options);
        let key = if options.contains("rows") {
            "rows"
        } else {
            "items"
        };
        let expected = json!({key: serde_json::from_slice::<Json>(input).unwrap()});
        assert_eq!(document(&output, "toml"), expected, "{options}");
    }
    let error = failure(convert_bytes::<DataPlugin>(
        br#"[{"a": 1}, 2]"#,
        "json",
        "toml",
        "{}",
    ));
    assert_eq!(error.kind, ErrorKind::Unsupported);
    assert!(
        error.message.contains("item 2 is a number"),
        "{}",
        error.message
    );
    let error = failure(convert_bytes::<DataPlugin>(
        br#"[{"a": 1}, {"t": [null]}]"#,
        "json",
        "toml",
        "{}",
    ));
    assert!(error.message.contains("items[1].t[0]"), "{}", error.message);
    // TOML dates are read as their text.
    let output = convert(b"when = 2024-03-01T10:00:00Z\n", "toml", "json", "{}");
    assert_eq!(
        document(&output, "json"),
        json!({"when": "2024-03-01T10:00:00Z"})
    );
}

#[test]
fn yaml_strings_that_look_like_other_things_are_quoted() {
    let input = br#"{"a": "yes", "b": "2024-03-01", "c": "1:20", "d": "0x1F", "e": "", "f": "plain text", "g": 1e300, "h": "null", "i": "x: y", "j": [], "k": {}}"#;
    let output = convert(input, "json", "yaml", "{}");
    let yaml = text(&output);
    for line in [
        "a: \"yes\"",
        "b: \"2024-03-01\"",
        "c: \"1:20\"",
        "d: \"0x1F\"",
        "e: \"\"",
        "f: plain text",
        "g: 1.0e+300",
        "h: \"null\"",
        "j: []",
        "k: {}",
    ] {
        assert!(yaml.lines().any(|l| l == line), "{line} in\n{yaml}");
    }
    let original: Json = serde_json::from_slice(input).unwrap();
    assert_eq!(document(&output, "yaml"), original);
    let flow = convert(input, "json", "yaml", r#"{"pretty": false}"#);
    assert_eq!(text(&flow).lines().count(), 1);
    assert_eq!(document(&flow, "yaml"), original);
    // Several YAML documents are a list; anchors and merge keys are resolved.
    let input = b"base: &b {x: 1}\nthing:\n  <<: *b\n  y: 2\n---\nsecond: true\n";
    assert_eq!(
        document(&convert(input, "yaml", "json", "{}"), "json"),
        json!([{"base": {"x": 1}, "thing": {"x": 1, "y": 2}}, {"second": true}])
    );
    // NaN fits YAML, not JSON.
    let error = failure(convert_bytes::<DataPlugin>(
        b"a: .nan\n",
        "yaml",
        "json",
        "{}",
    ));
    assert_eq!(error.kind, ErrorKind::Unsupported);
    assert!(error.message.contains("$.a"), "{}", error.message);
}

#[test]
fn ndjson_is_a_line_per_record() {
    let output = convert_path(USPOP, "csv", "ndjson", "{}");
    assert_eq!(text(&output).lines().count(), 100);
    let back = convert(&output, "ndjson", "json", "{}");
    assert_eq!(
        document(&back, "json"),
        document(&convert_path(USPOP, "csv", "json", "{}"), "json")
    );
    let output = convert(b"{\"a\": 1}\n\n{\"a\": 2}\n", "ndjson", "yaml", "{}");
    assert_eq!(text(&output), "- a: 1\n- a: 2\n");
    // Characters some readers split lines at are escaped, so a record stays one line.
    let input = "[{\"a\": \"x\u{2028}y\u{85}z\u{2029}\"}]";
    let output = convert(input.as_bytes(), "json", "ndjson", "{}");
    assert_eq!(text(&output), "{\"a\":\"x\\u2028y\\u0085z\\u2029\"}\n");
    assert_eq!(
        document(&output, "ndjson"),
        serde_json::from_str::<Json>(input).unwrap()
    );
}

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

#[test]
fn the_csv_dialect_options_read_the_semicolon_file() {
    let output = convert_path(SEMICOLON, "csv", "json", SEMICOLON_OPTIONS);
    assert_eq!(
        document(&output, "json"),
        json!([
            ["\"Hacksaw\" Jim Duggan", 1987],
            ["Bret \"Hit Man\" Hart", 1984],
            ["Rafael Halperin"],
            ["\"Big Cat\" Ernie Ladd", 1964],
            ["\"Macho Man\" Randy Savage", 1985],
            ["Jake \"The Snake\" Roberts", 1986]
        ])
    );
    // CSV to CSV rewrites the dialect as RFC 4180 says, padding the short row.
    let options =
        r##"{"delimiter": ";", "escape": "\\", "comment": "#", "output_delimiter": "|"}"##;
    let output = convert_path(SEMICOLON, "csv", "csv", options);
    let rows = csv_rows(&output, b'|');
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0], ["\"Hacksaw\" Jim Duggan", "1987"]);
    assert_eq!(rows[2], ["Rafael Halperin", ""]);
    assert!(text(&output).starts_with("\"\"\"Hacksaw\"\" Jim Duggan\"|1987\n"));
    // Without the escape option, the file is read differently (and still not refused).
    let plain = convert_path(SEMICOLON, "csv", "csv", r#"{"delimiter": ";"}"#);
    assert_ne!(plain, output);
}

#[test]
fn delimiter_sets_the_csv_written() {
    let output = convert(&template("json"), "json", "csv", r#"{"delimiter": ";"}"#);
    assert!(
        text(&output).starts_with("id;name;price;in_stock;added\n1;Notebook;2.5;true;2024-03-01\n")
    );
    let output = convert(&template("xlsx"), "xlsx", "csv", r#"{"delimiter": "\t"}"#);
    assert_eq!(output, template("tsv"));
    let output = convert(&template("tsv"), "tsv", "csv", r#"{"delimiter": "|"}"#);
    assert_eq!(csv_rows(&output, b'|'), template_table());
}

#[test]
fn header_false_reads_rows_as_arrays_and_writes_no_header() {
    let output = convert(&template("csv"), "csv", "ndjson", r#"{"header": false}"#);
    let first = text(&output).lines().next().unwrap();
    assert_eq!(first, r#"["id","name","price","in_stock","added"]"#);
    let output = convert(&template("json"), "json", "csv", r#"{"header": false}"#);
    assert_eq!(csv_rows(&output, b','), template_table()[1..]);
    let output = convert(&template("yaml"), "yaml", "xlsx", r#"{"header": false}"#);
    assert_eq!(table(&output, "xlsx"), template_table()[1..]);
    // Arrays are rows too.
    let output = convert(b"[[1, 2], [3]]", "json", "csv", r#"{"header": false}"#);
    assert_eq!(text(&output), "1,2\n3,\n");
}

#[test]
fn infer_types_false_keeps_every_cell_as_text() {
    let output = convert_path(USPOP, "csv", "json", r#"{"infer_types": false}"#);
    let records = document(&output, "json");
    assert_eq!(records[1]["Population"], "7610");
    assert_eq!(records[0]["Population"], "");
    let output = convert(b"n,code\n1,007\n", "csv", "yaml", "{}");
    assert_eq!(document(&output, "yaml"), json!([{"n": 1, "code": "007"}]));
    let output = convert(
        b"n,d\n1,2024-03-01\n",
        "csv",
        "xlsx",
        r#"{"infer_types": false}"#,
    );
    let range = sheet(&output, None);
    assert_eq!(range.get((1, 0)), Some(&Data::String("1".into())));
    assert_eq!(range.get((1, 1)), Some(&Data::String("2024-03-01".into())));
}

#[test]
fn sheet_picks_the_worksheet_read_and_names_the_one_written() {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    workbook
        .add_worksheet()
        .set_name("First")
        .unwrap()
        .write_string(0, 0, "one")
        .unwrap();
    workbook
        .add_worksheet()
        .set_name("Second")
        .unwrap()
        .write_string(0, 0, "two")
        .unwrap();
    let bytes = workbook.save_to_buffer().unwrap();
    assert_eq!(text(&convert(&bytes, "xlsx", "csv", "{}")), "one\n");
    assert_eq!(
        text(&convert(&bytes, "xlsx", "csv", r#"{"sheet": "Second"}"#)),
        "two\n"
    );
    assert_eq!(
        text(&convert(&bytes, "xlsx", "csv", r#"{"sheet": "second"}"#)),
        "two\n"
    );
    assert_eq!(
        text(&convert(&bytes, "xlsx", "csv", r#"{"sheet": 2}"#)),
        "two\n"
    );
    for options in [
        r#"{"sheet": "Third"}"#,
        r#"{"sheet": 3}"#,
        r#"{"sheet": 0}"#,
        r#"{"sheet": -1}"#,
    ] {
        let error = failure(convert_bytes::<DataPlugin>(&bytes, "xlsx", "csv", options));
        assert_eq!(error.kind, ErrorKind::InvalidOptions, "{options}");
        assert!(
            error.message.contains("sheet"),
            "{options}: {}",
            error.message
        );
    }
    let output = convert(&template("csv"), "csv", "xlsx", r#"{"sheet": "Products"}"#);
    let names = Xlsx::new(Cursor::new(output)).unwrap().sheet_names();
    assert_eq!(names, ["Products"]);
    for options in [
        r#"{"sheet": "a/b"}"#,
        r#"{"sheet": 2}"#,
        r#"{"sheet": "History"}"#,
    ] {
        let error = failure(convert_bytes::<DataPlugin>(
            &template("csv"),
            "csv",
            "xlsx",
            options,
        ));
        assert_eq!(error.kind, ErrorKind::InvalidOptions, "{options}");
        assert!(
            error.message.contains("`sheet`"),
            "{options}: {}",
            error.message
        );
    }
}

#[test]
fn pretty_false_writes_compact_output() {
    let json = convert(&template("csv"), "csv", "json", r#"{"pretty": false}"#);
    assert_eq!(text(&json).lines().count(), 1);
    assert_eq!(document(&json, "json"), document(&template("json"), "json"));
    let xml = convert(&template("csv"), "csv", "xml", r#"{"pretty": false}"#);
    assert_eq!(text(&xml).lines().count(), 1);
    assert!(text(&xml).contains("<root><item><id>1</id><name>Notebook</name>"));
    let toml = convert(
        b"{\"a\": {\"b\": [1, 2]}}",
        "json",
        "toml",
        r#"{"pretty": false}"#,
    );
    assert_eq!(document(&toml, "toml"), json!({"a": {"b": [1, 2]}}));
    let pretty = convert(b"{\"a\": {\"b\": [1, 2]}}", "json", "toml", "{}");
    assert_eq!(document(&pretty, "toml"), json!({"a": {"b": [1, 2]}}));
}

#[test]
fn root_and_item_name_what_is_written() {
    let toml = convert(&template("csv"), "csv", "toml", r#"{"root": "products"}"#);
    assert!(text(&toml).starts_with("[[products]]\n"));
    let xml = convert(
        &template("csv"),
        "csv",
        "xml",
        r#"{"root": "products", "item": "product"}"#,
    );
    let json = document(&xml, "xml");
    assert_eq!(json["products"]["product"][1]["name"], "Pen, blue");
    let xml = convert(b"{\"a\": 1}", "json", "xml", r#"{"root": "doc"}"#);
    assert!(text(&xml).contains("<doc>\n  <a>1</a>\n</doc>"));
}

#[test]
fn bad_option_values_are_refused_naming_the_option() {
    let csv = template("csv");
    for (target, options, name) in [
        ("json", r#"{"delimiter": ";;"}"#, "delimiter"),
        ("json", r#"{"delimiter": "\""}"#, "delimiter"),
        ("json", r#"{"delimiter": "é"}"#, "delimiter"),
        ("json", r#"{"escape": ","}"#, "escape"),
        ("json", r#"{"comment": ","}"#, "comment"),
        ("json", r#"{"pretty": "yes"}"#, "pretty"),
        ("json", r#"{"header": 1}"#, "header"),
        ("json", r#"{"infer_types": null, "sheet": 1}"#, "sheet"),
        ("json", r#"{"root": "x"}"#, "root"),
        ("xml", r#"{"root": "1st"}"#, "root"),
        ("xml", r#"{"item": "an item"}"#, "item"),
        ("xml", r#"{"root": "a:b"}"#, "root"),
        ("toml", r#"{"root": ""}"#, "root"),
        ("csv", r#"{"output_delimiter": "ab"}"#, "output_delimiter"),
        ("tsv", r#"{"output_delimiter": ";"}"#, "output_delimiter"),
        ("yaml", r#"{"colour": "red"}"#, "colour"),
    ] {
        let error = failure(convert_bytes::<DataPlugin>(&csv, "csv", target, options));
        assert_eq!(
            error.kind,
            ErrorKind::InvalidOptions,
            "{target} {options}: {}",
            error.message
        );
        assert!(
            error.message.contains(name),
            "{target} {options}: {}",
            error.message
        );
    }
}

// ---------------------------------------------------------------------------------------
// Broken input
// ---------------------------------------------------------------------------------------

#[test]
fn the_unclosed_json_array_is_malformed_input() {
    for (source, target) in pairs() {
        if source != "json" {
            continue;
        }
        let error = failure(convert_file::<DataPlugin>(UNCLOSED, "json", &target, "{}"));
        assert_eq!(
            error.kind,
            ErrorKind::MalformedInput,
            "json → {target}: {}",
            error.message
        );
        assert!(error.message.contains("line 1"), "{}", error.message);
    }
}

#[test]
fn broken_text_inputs_are_malformed_with_their_place() {
    for (input, source, target, place) in [
        (&b"a,b\n1,2\n3,\xff\n"[..], "csv", "json", "line 3"),
        (b"a,b\n1,2\n3,\xff\n", "csv", "csv", "line 3"),
        (b"a,b\n1,\"2\n3,4\n", "csv", "json", "line 2"),
        (b"a,b\n1,2\n3,4,5\n", "csv", "json", "line 3"),
        (b"a\tb\n1\t2\t3\n", "tsv", "yaml", "line 2"),
        (b"{\"a\": 1}\n{\"a\": \n", "ndjson", "json", "line 2"),
        (b"{\"a\": 1}\n[1, 2", "ndjson", "csv", "line 2"),
        (b"a: [1, 2\n", "yaml", "json", "line"),
        (b"a = \n", "toml", "json", "line 1"),
        (b"<a>\n  <b></c>\n</a>", "xml", "json", "line 2"),
        (b"<a>\n  <b>", "xml", "json", "<b>"),
        (b"<a/><b/>", "xml", "json", "second root"),
        (b"text", "xml", "json", "outside"),
        (b"", "xml", "json", "no root element"),
        (b"<a>&custom;</a>", "xml", "json", "&custom;"),
        (b"\xff\xfe<a/>", "xml", "json", "UTF-8"),
        (b"{\"a\": 1} x", "json", "yaml", "trailing"),
        (b"", "json", "csv", "EOF"),
    ] {
        let error = failure(convert_bytes::<DataPlugin>(input, source, target, "{}"));
        assert_eq!(
            error.kind,
            ErrorKind::MalformedInput,
            "{source}: {}",
            error.message
        );
        assert!(
            error.message.contains(place),
            "{source} {place}: {}",
            error.message
        );
    }
}

#[test]
fn entity_expansion_is_refused() {
    let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"#;
    let error = failure(convert_bytes::<DataPlugin>(bomb, "xml", "json", "{}"));
    assert_eq!(error.kind, ErrorKind::MalformedInput);
    // A document type without entities in use is fine.
    let fine = b"<!DOCTYPE a [<!ELEMENT a (#PCDATA)>]><a>x</a>";
    assert_eq!(
        document(&convert(fine, "xml", "json", "{}"), "json"),
        json!({"a": "x"})
    );
}

#[test]
fn what_is_not_a_workbook_is_malformed() {
    let docx = std::fs::read(DOCX).unwrap();
    let mut truncated = template("xlsx");
    truncated.truncate(truncated.len() / 2);
    for (name, input) in [
        ("docx", docx),
        ("text", b"a,b\n1,2\n".to_vec()),
        ("empty", Vec::new()),
        ("truncated", truncated),
    ] {
        let error = failure(convert_bytes::<DataPlugin>(&input, "xlsx", "csv", "{}"));
        assert_eq!(
            error.kind,
            ErrorKind::MalformedInput,
            "{name}: {}",
            error.message
        );
    }
}

#[test]
fn deep_nesting_and_huge_sheets_are_limits() {
    let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
    let error = failure(convert_bytes::<DataPlugin>(
        deep.as_bytes(),
        "xml",
        "json",
        "{}",
    ));
    assert_eq!(error.kind, ErrorKind::LimitExceeded);
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let error = failure(convert_bytes::<DataPlugin>(
        deep.as_bytes(),
        "json",
        "yaml",
        "{}",
    ));
    assert_eq!(error.kind, ErrorKind::MalformedInput, "{}", error.message);
    // Two cells at opposite corners span a whole sheet: 17 billion cells.
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "corner").unwrap();
    sheet.write_string(1_048_575, 16_383, "far corner").unwrap();
    let bytes = workbook.save_to_buffer().unwrap();
    let error = failure(convert_bytes::<DataPlugin>(&bytes, "xlsx", "csv", "{}"));
    assert_eq!(error.kind, ErrorKind::LimitExceeded);
    assert!(
        error.message.contains("1048576 rows by 16384 columns"),
        "{}",
        error.message
    );
}

#[test]
fn truncated_and_damaged_files_never_panic() {
    for format in FORMATS {
        let sample = template(format);
        let step = if format == "xlsx" { 53 } else { 1 };
        let targets = if is_table(format) {
            ["json", "csv"]
        } else {
            ["csv", "yaml"]
        };
        for cut in (0..sample.len()).step_by(step) {
            for target in targets {
                if let Err(error) =
                    convert_bytes::<DataPlugin>(&sample[..cut], format, target, "{}")
                {
                    assert_ne!(
                        error.kind,
                        ErrorKind::Internal,
                        "{format} cut at {cut}: {}",
                        error.message
                    );
                }
            }
        }
        for at in (0..sample.len()).step_by(step * 7) {
            let mut damaged = sample.clone();
            damaged[at] ^= 0x5A;
            for target in targets {
                if let Err(error) = convert_bytes::<DataPlugin>(&damaged, format, target, "{}") {
                    assert_ne!(
                        error.kind,
                        ErrorKind::Internal,
                        "{format} damaged at {at}: {}",
                        error.message
                    );
                }
            }
        }
    }
}

#[test]
fn unknown_formats_and_pairs_are_unsupported() {
    for (source, target) in [
        ("png", "csv"),
        ("csv", "pdf"),
        ("tsv", "tsv"),
        ("xlsx", "xlsx"),
    ] {
        let error = failure(convert_bytes::<DataPlugin>(b"a", source, target, "{}"));
        assert_eq!(error.kind, ErrorKind::Unsupported, "{source} → {target}");
    }
}

#[test]
fn empty_inputs_give_empty_outputs() {
    assert_eq!(convert(b"", "csv", "json", "{}"), b"[]\n");
    assert_eq!(convert(b"", "csv", "csv", "{}"), b"");
    assert_eq!(
        convert(b"", "ndjson", "xml", "{}"),
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root/>\n"
    );
    assert_eq!(convert(b"[]", "json", "yaml", "{}"), b"[]\n");
    assert_eq!(
        document(&convert(b"", "toml", "json", "{}"), "json"),
        json!({})
    );
    assert_eq!(
        document(&convert(b"", "yaml", "json", "{}"), "json"),
        Json::Null
    );
    let workbook = convert(b"[]", "json", "xlsx", "{}");
    assert!(table(&workbook, "xlsx").is_empty());
    assert_eq!(convert(&workbook, "xlsx", "json", "{}"), b"[]\n");
}
