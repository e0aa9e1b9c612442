//! Conversions of real files from the shared corpus, checked by reading the results back
//! independently: lopdf for PDF structure, the png crate for pixels, and qpdf and pdfinfo
//! when they are installed.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use lopdf::{Document, Object, ObjectId, dictionary};
use metamorph_plugin_api::{ConvertError, Converter, ErrorKind, convert_bytes, convert_file};

use crate::DocumentPlugin;
use crate::extract::page_texts;

macro_rules! corpus {
    ($path:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/corpus/",
            $path
        )
    };
}

const MULTIPAGE: &str = corpus!("document/pdf-multipage-14.pdf");
const MINIMAL: &str = corpus!("document/pdf-minimal.pdf");
const INFO_XMP: &str = corpus!("document/pdf-info-xmp.pdf");
const ENCRYPTED: &str = corpus!("document/pdf-encrypted-aes256.pdf");
const README: &str = corpus!("data/md-readme.md");

const A4: (f64, f64) = (595.276, 841.89);
const LETTER: (f64, f64) = (612.0, 792.0);

fn convert(path: &str, source: &str, target: &str, options: &str) -> Vec<u8> {
    convert_file::<DocumentPlugin>(path, source, target, options)
        .unwrap_or_else(|error| panic!("{path} {source} → {target} {options}: {error}"))
}

fn failure(result: Result<Vec<u8>, ConvertError>) -> ConvertError {
    match result {
        Ok(bytes) => panic!("expected an error, got {} bytes", bytes.len()),
        Err(error) => error,
    }
}

/// Loads a produced PDF with lopdf, and checks it with qpdf and pdfinfo when they are
/// installed.
fn load(bytes: &[u8]) -> Document {
    let document = parse(bytes);
    external_checks(bytes, document.get_pages().len());
    document
}

/// Loads a produced PDF with lopdf only (for PDFs holding synthetic image data that
/// stricter checkers would decode).
fn parse(bytes: &[u8]) -> Document {
    let document = Document::load_mem(bytes).expect("the output is a PDF");
    assert_eq!(
        document.xref_recovery, None,
        "the cross-reference table is exact"
    );
    assert!(bytes.starts_with(b"%PDF-1."));
    document
}

static NEXT_FILE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn external_checks(bytes: &[u8], pages: usize) {
    let qpdf = Path::new("/usr/bin/qpdf").exists();
    let pdfinfo = Path::new("/usr/bin/pdfinfo").exists();
    if !qpdf && !pdfinfo {
        return;
    }
    let path = std::env::temp_dir().join(format!(
        "metamorph-document-{}-{}.pdf",
        std::process::id(),
        NEXT_FILE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).unwrap();
    if qpdf {
        let check = Command::new("/usr/bin/qpdf")
            .arg("--check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "qpdf --check: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    if pdfinfo {
        let info = Command::new("/usr/bin/pdfinfo")
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.status.success(),
            "pdfinfo: {}",
            String::from_utf8_lossy(&info.stderr)
        );
        assert!(
            stdout
                .lines()
                .any(|line| line.split_whitespace().eq(["Pages:", &pages.to_string()])),
            "pdfinfo counts {pages} pages: {stdout}"
        );
    }
    let _ = std::fs::remove_file(&path);
}

/// The page's MediaBox size, following inheritance.
fn page_size(document: &Document, page: ObjectId) -> (f64, f64) {
    let mut node = document.get_dictionary(page).unwrap();
    loop {
        if let Ok(media_box) = node.get(b"MediaBox") {
            let values: Vec<f64> = document
                .dereference(media_box)
                .unwrap()
                .1
                .as_array()
                .unwrap()
                .iter()
                .map(|value| f64::from(value.as_float().unwrap()))
                .collect();
            return (values[2] - values[0], values[3] - values[1]);
        }
        let parent = node.get(b"Parent").unwrap().as_reference().unwrap();
        node = document.get_dictionary(parent).unwrap();
    }
}

fn page_sizes(document: &Document) -> Vec<(f64, f64)> {
    document
        .page_iter()
        .map(|page| page_size(document, page))
        .collect()
}

fn assert_size(actual: (f64, f64), expected: (f64, f64)) {
    assert!(
        (actual.0 - expected.0).abs() < 0.01 && (actual.1 - expected.1).abs() < 0.01,
        "page size {actual:?}, expected {expected:?}"
    );
}

/// The image XObjects of the first page, with their names.
fn page_images(document: &Document) -> Vec<lopdf::Stream> {
    let page = document.page_iter().next().unwrap();
    let (direct, referenced) = document.get_page_resources(page).unwrap();
    let mut resources: Vec<&lopdf::Dictionary> = direct.into_iter().collect();
    resources.extend(
        referenced
            .iter()
            .map(|id| document.get_dictionary(*id).unwrap()),
    );
    resources
        .iter()
        .filter_map(|resources| resources.get(b"XObject").ok())
        .flat_map(|xobjects| {
            document
                .dereference(xobjects)
                .unwrap()
                .1
                .as_dict()
                .unwrap()
                .iter()
        })
        .map(|(_, image)| {
            document
                .dereference(image)
                .unwrap()
                .1
                .as_stream()
                .unwrap()
                .clone()
        })
        .collect()
}

fn text_of(document: &Document) -> Vec<String> {
    page_texts(document).unwrap()
}

fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

// md → html

#[test]
fn markdown_becomes_a_complete_page_titled_by_its_first_heading() {
    let html = String::from_utf8(convert(README, "md", "html", "{}")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(
        html.contains("<title>Smallest possible […] file</title>"),
        "{html}"
    );
    assert!(html.contains("<style>") && html.contains("max-width"));
    assert!(html.contains("<h1>Smallest possible […] file</h1>"));
    assert!(html.contains("<h2>License</h2>"));
    assert_eq!(
        html.matches("<h3>").count() + html.matches("<h2>").count() + 1,
        12
    );
    assert!(
        html.contains("<ul>") && html.contains("<li><a href=\"BZip2.bz2\">bzip2 .bz2</a></li>")
    );
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn github_tables_strikethrough_task_lists_and_smart_punctuation_are_rendered() {
    let source = "| a | b |\n|---|:-:|\n| 1 | 2 |\n\n~~gone~~\n\n- [x] done\n- [ ] todo\n\n\"quoted\" -- it's...\n";
    let html = String::from_utf8(
        convert_bytes::<DocumentPlugin>(source.as_bytes(), "md", "html", r#"{"standalone":false}"#)
            .unwrap(),
    )
    .unwrap();
    assert!(
        html.contains("<table>") && html.contains("<th>a</th>") && html.contains("<td>1</td>"),
        "{html}"
    );
    assert!(html.contains("<del>gone</del>"), "{html}");
    assert!(
        html.contains("<input disabled=\"\" type=\"checkbox\" checked=\"\"/>"),
        "{html}"
    );
    assert!(
        html.contains("<input disabled=\"\" type=\"checkbox\"/>"),
        "{html}"
    );
    assert!(html.contains("“quoted” – it’s…"), "{html}");
}

#[test]
fn a_fragment_is_only_the_content() {
    let html =
        convert_bytes::<DocumentPlugin>(b"# Hi\n\ntext", "md", "html", r#"{"standalone":false}"#)
            .unwrap();
    assert_eq!(
        String::from_utf8(html).unwrap(),
        "<h1>Hi</h1>\n<p>text</p>\n"
    );
}

#[test]
fn the_title_option_wins_and_is_escaped() {
    let html =
        convert_bytes::<DocumentPlugin>(b"# Heading", "md", "html", r#"{"title":"<A & B>"}"#)
            .unwrap();
    assert!(
        String::from_utf8(html)
            .unwrap()
            .contains("<title>&lt;A &amp; B&gt;</title>")
    );
    let untitled = convert_bytes::<DocumentPlugin>(b"no heading", "md", "html", "{}").unwrap();
    assert!(
        String::from_utf8(untitled)
            .unwrap()
            .contains("<title>Document</title>")
    );
}

#[test]
fn raw_html_passes_through_unless_refused() {
    let source = b"<script>alert(1)</script>\n\nhi <b>there</b>";
    let kept = String::from_utf8(
        convert_bytes::<DocumentPlugin>(source, "md", "html", r#"{"standalone":false}"#).unwrap(),
    )
    .unwrap();
    assert!(kept.contains("<script>alert(1)</script>") && kept.contains("<b>there</b>"));
    let escaped = String::from_utf8(
        convert_bytes::<DocumentPlugin>(
            source,
            "md",
            "html",
            r#"{"standalone":false,"raw_html":false}"#,
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        !escaped.contains("<script>") && !escaped.contains("<b>"),
        "{escaped}"
    );
    assert!(
        escaped.contains("&lt;script&gt;") && escaped.contains("&lt;b&gt;there"),
        "{escaped}"
    );
}

#[test]
fn markdown_that_is_not_utf8_is_malformed() {
    let error = failure(convert_bytes::<DocumentPlugin>(
        b"\xff\xfe# x",
        "md",
        "html",
        "{}",
    ));
    assert_eq!(error.kind, ErrorKind::MalformedInput);
}

// md → pdf and txt → pdf

#[test]
fn markdown_is_laid_out_on_a4_pages_whose_text_reads_back() {
    let pdf = convert(README, "md", "pdf", "{}");
    let document = load(&pdf);
    let sizes = page_sizes(&document);
    assert!(sizes.len() >= 2, "{} pages", sizes.len());
    for size in sizes {
        assert_size(size, A4);
    }
    let text = text_of(&document).join("\n");
    for expected in [
        "Smallest possible […] file",
        "License",
        "File types",
        "bzip2 .bz2",
        "ZIP .zip",
    ] {
        assert!(
            words(&text)
                .windows(words(expected).len())
                .any(|window| window == words(expected)),
            "{expected:?} in {text}"
        );
    }
    let info = document
        .trailer
        .get(b"Info")
        .unwrap()
        .as_reference()
        .unwrap();
    let title = document
        .get_dictionary(info)
        .unwrap()
        .get(b"Title")
        .unwrap();
    assert_eq!(
        lopdf::decode_text_string(title).unwrap(),
        "Smallest possible […] file"
    );
}

#[test]
fn markdown_styles_use_the_standard_fonts_without_embedding_them() {
    let source = "# Title\n\nSome **bold**, *italic* and `code`.\n\n1. one\n2. two\n\n> quoted\n\n```\nlet x = 1;\n```\n\n---\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
    let pdf = convert_bytes::<DocumentPlugin>(source.as_bytes(), "md", "pdf", "{}").unwrap();
    let document = load(&pdf);
    let fonts: BTreeSet<String> = document
        .objects
        .values()
        .filter_map(|object| object.as_dict().ok())
        .filter(|dictionary| dictionary.has_type(b"Font"))
        .map(|font| {
            assert!(!font.has(b"FontDescriptor"), "no font is embedded");
            String::from_utf8(font.get(b"BaseFont").unwrap().as_name().unwrap().to_vec()).unwrap()
        })
        .collect();
    assert!(fonts.is_superset(&BTreeSet::from([
        "Helvetica".into(),
        "Helvetica-Bold".into(),
        "Courier".into()
    ])));
    let content = document.get_page_content(document.page_iter().next().unwrap());
    let content = String::from_utf8_lossy(&content);
    // The heading is bold and larger than the 11-point body; code is in Courier.
    assert!(content.contains("/F2 19.8 Tf (Title) Tj"), "{content}");
    assert!(content.contains("/F5 11 Tf (code)"), "{content}");
    assert!(content.contains("/F5 9.9 Tf (let x = 1;) Tj"), "{content}");
    let text = words(&text_of(&document).join(" ")).join(" ");
    for expected in [
        "Title",
        "Some bold, italic and code.",
        "1. one",
        "2. two",
        "quoted",
        "let x = 1;",
        "a b",
        "1 2",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
}

#[test]
fn page_size_and_font_size_change_the_layout() {
    let letter = load(&convert(README, "md", "pdf", r#"{"page_size":"letter"}"#));
    for size in page_sizes(&letter) {
        assert_size(size, LETTER);
    }
    let small = load(&convert(README, "md", "pdf", r#"{"font_size":8}"#))
        .get_pages()
        .len();
    let large = load(&convert(README, "md", "pdf", r#"{"font_size":16}"#))
        .get_pages()
        .len();
    assert!(
        large > small,
        "16-point text takes more pages ({large}) than 8-point ({small})"
    );
}

#[test]
fn plain_text_wraps_long_lines_and_paginates() {
    let mut text = String::new();
    for line in 1..=150 {
        text.push_str(&format!("Line {line} says something fairly long so that it has to wrap on an A4 page at eleven points.\n"));
    }
    let pdf = convert_bytes::<DocumentPlugin>(text.as_bytes(), "txt", "pdf", "{}").unwrap();
    let document = load(&pdf);
    assert!(
        document.get_pages().len() >= 5,
        "{} pages",
        document.get_pages().len()
    );
    for size in page_sizes(&document) {
        assert_size(size, A4);
    }
    let extracted = text_of(&document).join(" ");
    assert_eq!(words(&extracted), words(&text));
    let sans = load(
        &convert_bytes::<DocumentPlugin>(text.as_bytes(), "txt", "pdf", r#"{"font":"sans"}"#)
            .unwrap(),
    );
    assert!(
        sans.get_pages().len() < document.get_pages().len(),
        "Helvetica is narrower than Courier"
    );
}

#[test]
fn form_feeds_start_new_pages_and_empty_text_gives_one_blank_page() {
    let pdf =
        convert_bytes::<DocumentPlugin>(b"first\x0csecond\x0cthird\n", "txt", "pdf", "{}").unwrap();
    let document = load(&pdf);
    assert_eq!(text_of(&document), ["first\n", "second\n", "third\n"]);
    let empty = load(&convert_bytes::<DocumentPlugin>(b"", "txt", "pdf", "{}").unwrap());
    assert_eq!(empty.get_pages().len(), 1);
}

#[test]
fn indentation_of_plain_text_is_kept_in_courier() {
    let pdf =
        convert_bytes::<DocumentPlugin>(b"def f():\n\treturn 1\n", "txt", "pdf", "{}").unwrap();
    let document = load(&pdf);
    let content = document.get_page_content(document.page_iter().next().unwrap());
    assert!(String::from_utf8_lossy(&content).contains("(        return 1) Tj"));
}

#[test]
fn characters_outside_winansi_are_mapped_or_replaced() {
    let source = "Łódź → Kraków: ﬁne “quotes” — 5 € — 東京 — x\u{301}\n";
    for source_format in ["txt", "md"] {
        let pdf =
            convert_bytes::<DocumentPlugin>(source.as_bytes(), source_format, "pdf", "{}").unwrap();
        let text = text_of(&load(&pdf)).join("");
        assert_eq!(
            text.trim(),
            "Lódz -> Kraków: fine “quotes” — 5 € — ?? — x",
            "{source_format}"
        );
    }
}

#[test]
fn text_options_out_of_range_or_unknown_are_invalid() {
    for options in [
        r#"{"font_size":1}"#,
        r#"{"margin":400}"#,
        r#"{"page_size":"a3"}"#,
        r#"{"colour":"red"}"#,
    ] {
        let error = failure(convert_bytes::<DocumentPlugin>(
            b"text", "txt", "pdf", options,
        ));
        assert_eq!(error.kind, ErrorKind::InvalidOptions, "{options}");
    }
}

// jpg → pdf

const JPEGS: [(&str, u32, u32, u8); 6] = [
    (corpus!("image/jpeg-exif-gps.jpg"), 640, 480, 3),
    (corpus!("image/jpeg-progressive.jpg"), 320, 240, 3),
    (corpus!("image/jpeg-grayscale.jpg"), 128, 128, 1),
    (corpus!("image/jpeg-cmyk-adobe.jpg"), 100, 100, 4),
    (corpus!("image/jpeg-exif-icc-canon.jpg"), 100, 68, 3),
    (corpus!("malformed/jpeg-bad-exif.jpg"), 200, 200, 3),
];

#[test]
fn a_jpeg_becomes_one_page_of_its_size_with_the_file_embedded_unchanged() {
    for (path, width, height, components) in JPEGS {
        let original = std::fs::read(path).unwrap();
        let pdf = convert(path, "jpg", "pdf", r#"{"dpi":72}"#);
        let document = load(&pdf);
        assert_eq!(
            page_sizes(&document),
            [(f64::from(width), f64::from(height))],
            "{path}"
        );
        let images = page_images(&document);
        let [image] = images.as_slice() else {
            panic!("{path}: one image")
        };
        assert_eq!(
            image.dict.get(b"Filter").unwrap().as_name().unwrap(),
            b"DCTDecode"
        );
        assert_eq!(
            image.dict.get(b"Width").unwrap().as_i64().unwrap(),
            i64::from(width)
        );
        assert_eq!(
            image.dict.get(b"Height").unwrap().as_i64().unwrap(),
            i64::from(height)
        );
        assert!(
            original.starts_with(&image.content),
            "{path}: the JPEG data is the file's own"
        );
        assert!(image.content.ends_with(&[0xFF, 0xD9]));
        let color_space = document
            .dereference(image.dict.get(b"ColorSpace").unwrap())
            .unwrap()
            .1;
        let channels = match color_space {
            Object::Name(name) => match name.as_slice() {
                b"DeviceGray" => 1,
                b"DeviceRGB" => 3,
                b"DeviceCMYK" => 4,
                other => panic!("{path}: colour space {}", String::from_utf8_lossy(other)),
            },
            Object::Array(icc) => {
                let profile = document
                    .dereference(&icc[1])
                    .unwrap()
                    .1
                    .as_stream()
                    .unwrap();
                profile.dict.get(b"N").unwrap().as_i64().unwrap()
            }
            other => panic!("{path}: colour space {other:?}"),
        };
        assert_eq!(channels, i64::from(components), "{path}");
        assert_eq!(
            image.dict.has(b"Decode"),
            components == 4,
            "{path}: Adobe CMYK is inverted"
        );
    }
}

#[test]
fn a_jpeg_takes_its_printed_size_from_its_resolution() {
    // 128 pixels at the file's 96 ppi are 96 points.
    let document = load(&convert(
        corpus!("image/jpeg-grayscale.jpg"),
        "jpg",
        "pdf",
        "{}",
    ));
    assert_size(page_sizes(&document)[0], (96.0, 96.0));
    // An explicit resolution wins: 640 × 480 pixels at 144 ppi.
    let document = load(&convert(
        corpus!("image/jpeg-exif-gps.jpg"),
        "jpg",
        "pdf",
        r#"{"dpi":144}"#,
    ));
    assert_size(page_sizes(&document)[0], (320.0, 240.0));
}

#[test]
fn exif_orientation_turns_the_page_without_touching_the_data() {
    for orientation in 1..=8 {
        let path = format!(
            "{}/../../tests/fixtures/corpus/image/jpeg-orientation-{orientation}.jpg",
            env!("CARGO_MANIFEST_DIR")
        );
        let document = load(&convert(&path, "jpg", "pdf", r#"{"dpi":72}"#));
        assert_eq!(
            page_sizes(&document),
            [(600.0, 450.0)],
            "orientation {orientation}"
        );
        let content = document.get_page_content(document.page_iter().next().unwrap());
        let content = String::from_utf8(content).unwrap();
        let expected = match orientation {
            1 => "q 600 0 0 450 0 0 cm",
            2 => "q -600 0 0 450 600 0 cm",
            3 => "q -600 0 0 -450 600 450 cm",
            4 => "q 600 0 0 -450 0 450 cm",
            5 => "q 0 -450 -600 0 600 450 cm",
            6 => "q 0 -450 600 0 0 450 cm",
            7 => "q 0 450 600 0 0 0 cm",
            _ => "q 0 450 -600 0 600 0 cm",
        };
        assert!(
            content.starts_with(expected),
            "orientation {orientation}: {content}"
        );
    }
}

#[test]
fn paper_pages_fit_the_image_inside_the_margins_turned_to_its_shape() {
    // 640 × 480 pixels at 50 ppi (921.6 × 691.2 points) are larger than landscape A4 less
    // two 36-point margins: scaled to the height left, 523.276 points, and centred.
    let document = load(&convert(
        corpus!("image/jpeg-exif-gps.jpg"),
        "jpg",
        "pdf",
        r#"{"page_size":"a4","margin":36,"dpi":50}"#,
    ));
    assert_size(page_sizes(&document)[0], (841.89, 595.276));
    let content =
        String::from_utf8(document.get_page_content(document.page_iter().next().unwrap())).unwrap();
    let matrix: Vec<f64> = content
        .split_whitespace()
        .skip(1)
        .take(6)
        .map(|value| value.parse().unwrap())
        .collect();
    let height = 595.276 - 72.0;
    let width = height * 4.0 / 3.0;
    let expected = [width, 0.0, 0.0, height, (841.89 - width) / 2.0, 36.0];
    assert!(
        matrix
            .iter()
            .zip(expected)
            .all(|(actual, expected)| (actual - expected).abs() < 0.01),
        "{content}"
    );
    // A small image keeps its size, centred on a portrait Letter page.
    let document = load(&convert(
        corpus!("image/jpeg-grayscale.jpg"),
        "jpg",
        "pdf",
        r#"{"page_size":"letter"}"#,
    ));
    assert_size(page_sizes(&document)[0], LETTER);
    let content =
        String::from_utf8(document.get_page_content(document.page_iter().next().unwrap())).unwrap();
    assert!(content.starts_with("q 96 0 0 96 258 348 cm"), "{content}");
}

#[test]
fn broken_jpegs_are_malformed() {
    let truncated = failure(convert_file::<DocumentPlugin>(
        corpus!("malformed/jpeg-truncated.jpg"),
        "jpg",
        "pdf",
        "{}",
    ));
    assert_eq!(truncated.kind, ErrorKind::MalformedInput);
    assert!(
        truncated.message.contains("truncated"),
        "{}",
        truncated.message
    );
    let png = failure(convert_file::<DocumentPlugin>(
        corpus!("image/png-palette.png"),
        "jpg",
        "pdf",
        "{}",
    ));
    assert_eq!(png.kind, ErrorKind::MalformedInput);
    let cut = std::fs::read(corpus!("image/jpeg-exif-gps.jpg")).unwrap();
    for length in [0, 1, 2, 3, 100, cut.len() / 2, cut.len() - 1] {
        let error = failure(convert_bytes::<DocumentPlugin>(
            &cut[..length],
            "jpg",
            "pdf",
            "{}",
        ));
        assert_eq!(error.kind, ErrorKind::MalformedInput, "cut at {length}");
    }
}

/// A minimal JPEG structure of `width` × `height` pixels (headers and one byte of data).
fn jpeg_header(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 8];
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    bytes.extend_from_slice(&[
        0xFF, 0xDA, 0x00, 0x0C, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3F, 0,
    ]);
    bytes.extend_from_slice(&[0x00, 0xFF, 0xD9]);
    bytes
}

#[test]
fn oversized_jpegs_are_refused_as_a_limit() {
    let error = failure(convert_bytes::<DocumentPlugin>(
        &jpeg_header(30_000, 100),
        "jpg",
        "pdf",
        "{}",
    ));
    assert_eq!(error.kind, ErrorKind::LimitExceeded, "{}", error.message);
    let error = failure(convert_bytes::<DocumentPlugin>(
        &jpeg_header(10_000, 10_000),
        "jpg",
        "pdf",
        "{}",
    ));
    assert_eq!(error.kind, ErrorKind::LimitExceeded, "{}", error.message);
    parse(&convert_bytes::<DocumentPlugin>(&jpeg_header(100, 50), "jpg", "pdf", "{}").unwrap());
}

#[test]
fn a_huge_image_is_scaled_so_that_its_page_stays_within_pdf_limits() {
    let document = parse(
        &convert_bytes::<DocumentPlugin>(&jpeg_header(20_000, 100), "jpg", "pdf", "{}").unwrap(),
    );
    let (width, height) = page_sizes(&document)[0];
    assert!(
        (width - 14_400.0).abs() < 0.01 && (height - 72.0).abs() < 0.01,
        "{width} × {height}"
    );
}

// png → pdf

/// Decodes a PNG to 8-bit colour samples and alpha samples, independently of the plugin.
fn decode_png(path: &str) -> (u32, u32, usize, Vec<u8>, Vec<u8>) {
    let mut decoder =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let (colors, alpha) = match frame.color_type {
        png::ColorType::Grayscale => (1, false),
        png::ColorType::GrayscaleAlpha => (1, true),
        png::ColorType::Rgb => (3, false),
        png::ColorType::Rgba => (3, true),
        png::ColorType::Indexed => unreachable!(),
    };
    let stride = colors + usize::from(alpha);
    let mut color = Vec::new();
    let mut coverage = Vec::new();
    for pixel in pixels[..frame.buffer_size()].chunks(stride) {
        color.extend_from_slice(&pixel[..colors]);
        coverage.extend_from_slice(&pixel[colors..]);
    }
    (frame.width, frame.height, colors, color, coverage)
}

#[test]
fn a_png_becomes_one_page_with_its_pixels_and_alpha_as_a_soft_mask() {
    for path in [
        corpus!("image/png-rgba-alpha.png"),
        corpus!("image/png-16bit-rgba.png"),
        corpus!("image/png-palette.png"),
        corpus!("image/png-interlaced-rgb.png"),
        corpus!("image/png-text-tEXt.png"),
        corpus!("image/png-icc-profile.png"),
    ] {
        let (width, height, colors, color, alpha) = decode_png(path);
        let document = load(&convert(path, "png", "pdf", r#"{"dpi":72}"#));
        assert_eq!(
            page_sizes(&document),
            [(f64::from(width), f64::from(height))],
            "{path}"
        );
        let images = page_images(&document);
        let [image] = images.as_slice() else {
            panic!("{path}: one image")
        };
        assert_eq!(
            image.dict.get(b"Filter").unwrap().as_name().unwrap(),
            b"FlateDecode"
        );
        assert_eq!(
            image
                .dict
                .get(b"BitsPerComponent")
                .unwrap()
                .as_i64()
                .unwrap(),
            8
        );
        assert_eq!(
            image.decompressed_content().unwrap(),
            color,
            "{path}: colour samples"
        );
        let opaque = alpha.iter().all(|value| *value == 0xFF);
        match image.dict.get(b"SMask") {
            Ok(mask) => {
                let mask = document.dereference(mask).unwrap().1.as_stream().unwrap();
                assert_eq!(
                    mask.dict.get(b"ColorSpace").unwrap().as_name().unwrap(),
                    b"DeviceGray"
                );
                assert_eq!(
                    mask.decompressed_content().unwrap(),
                    alpha,
                    "{path}: alpha samples"
                );
            }
            Err(_) => assert!(opaque, "{path}: a soft mask for a translucent image"),
        }
        assert!(
            !opaque || !image.dict.has(b"SMask"),
            "{path}: no soft mask for an opaque image"
        );
        let _ = colors;
    }
}

#[test]
fn a_png_with_a_recorded_resolution_prints_at_it() {
    // png-rgba-alpha.png has a pHYs chunk.
    let path = corpus!("image/png-rgba-alpha.png");
    let reader = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()))
        .read_info()
        .unwrap();
    let dims = reader.info().pixel_dims.unwrap();
    let expected = (
        200.0 * 72.0 / (f64::from(dims.xppu) * 0.0254),
        150.0 * 72.0 / (f64::from(dims.yppu) * 0.0254),
    );
    let document = load(&convert(path, "png", "pdf", "{}"));
    let (width, height) = page_sizes(&document)[0];
    assert!(
        (width - expected.0).abs() < 0.01 && (height - expected.1).abs() < 0.01,
        "{width} × {height} for {expected:?}"
    );
}

#[test]
fn broken_pngs_are_malformed() {
    for path in [
        corpus!("malformed/png-bad-ihdr-crc.png"),
        corpus!("malformed/png-bad-signature.png"),
        corpus!("malformed/png-truncated.png"),
        corpus!("image/jpeg-grayscale.jpg"),
    ] {
        let error = failure(convert_file::<DocumentPlugin>(path, "png", "pdf", "{}"));
        assert_eq!(error.kind, ErrorKind::MalformedInput, "{path}: {error}");
        assert!(error.message.contains("PNG"), "{path}: {}", error.message);
    }
}

/// A PNG signature and header chunk of `width` × `height` pixels, and nothing more.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut crc = flate2::Crc::new();
    crc.update(&chunk);
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0d".to_vec();
    bytes.extend_from_slice(&chunk);
    bytes.extend_from_slice(&crc.sum().to_be_bytes());
    bytes
}

#[test]
fn oversized_pngs_are_refused_before_decoding() {
    for (width, height) in [(20_001, 1), (1, 1_000_000), (10_000, 10_000)] {
        let error = failure(convert_bytes::<DocumentPlugin>(
            &png_header(width, height),
            "png",
            "pdf",
            "{}",
        ));
        assert_eq!(
            error.kind,
            ErrorKind::LimitExceeded,
            "{width}×{height}: {}",
            error.message
        );
    }
}

#[test]
fn image_options_out_of_range_are_invalid() {
    let path = corpus!("image/png-palette.png");
    for options in [
        r#"{"dpi":0}"#,
        r#"{"margin":-1}"#,
        r#"{"page_size":"a4","margin":400}"#,
        r#"{"page_size":"a5"}"#,
        r#"{"quality":1}"#,
    ] {
        let error = failure(convert_file::<DocumentPlugin>(path, "png", "pdf", options));
        assert_eq!(error.kind, ErrorKind::InvalidOptions, "{options}");
    }
}

// pdf → pdf

#[test]
fn kept_pages_keep_their_size_and_text_in_document_order() {
    let source = Document::load(MULTIPAGE).unwrap();
    let source_text = text_of(&source);
    assert_eq!(source_text.len(), 14);
    let pdf = convert(MULTIPAGE, "pdf", "pdf", r#"{"pages":"5,1-3"}"#);
    let document = load(&pdf);
    assert_eq!(page_sizes(&document), [LETTER; 4]);
    let kept = [0, 1, 2, 4].map(|index| source_text[index].clone());
    assert_eq!(text_of(&document), kept);
    assert!(!kept[0].is_empty() && kept[0].contains("Trace-based"));
    // Nothing of the other pages stays in the file.
    let pages = document
        .objects
        .values()
        .filter(|object| {
            object
                .as_dict()
                .is_ok_and(|dictionary| dictionary.has_type(b"Page"))
        })
        .count();
    assert_eq!(pages, 4);
    assert!(pdf.len() < std::fs::metadata(MULTIPAGE).unwrap().len() as usize);
}

#[test]
fn removed_pages_are_gone_and_the_rest_kept() {
    let source_text = text_of(&Document::load(MULTIPAGE).unwrap());
    let document = load(&convert(MULTIPAGE, "pdf", "pdf", r#"{"remove":"2-13"}"#));
    assert_eq!(
        text_of(&document),
        [source_text[0].clone(), source_text[13].clone()]
    );
    let document = load(&convert(MULTIPAGE, "pdf", "pdf", r#"{"pages":"12-"}"#));
    assert_eq!(text_of(&document), source_text[11..].to_vec());
}

#[test]
fn single_page_documents_come_through_with_their_page_size() {
    for (path, size) in [(MINIMAL, (300.0, 144.0)), (INFO_XMP, (595.0, 842.0))] {
        let source = text_of(&Document::load(path).unwrap());
        let document = load(&convert(path, "pdf", "pdf", r#"{"pages":"1"}"#));
        assert_eq!(page_sizes(&document), [size], "{path}");
        assert_eq!(text_of(&document), source, "{path}");
    }
}

#[test]
fn page_selection_mistakes_are_invalid_options_with_clear_messages() {
    let cases = [
        (r#"{"pages":"1-20"}"#, "14 pages"),
        (r#"{"pages":"15"}"#, "14 pages"),
        (r#"{"remove":"1-"}"#, "14 pages"),
        (r#"{"pages":"0"}"#, "numbered from 1"),
        (r#"{"pages":"x"}"#, "not a page number"),
        (r#"{"pages":"1","remove":"2"}"#, "not both"),
        ("{}", "`pages`"),
    ];
    for (options, expected) in cases {
        let error = failure(convert_file::<DocumentPlugin>(
            MULTIPAGE, "pdf", "pdf", options,
        ));
        assert_eq!(error.kind, ErrorKind::InvalidOptions, "{options}");
        assert!(
            error.message.contains(expected),
            "{options}: {}",
            error.message
        );
    }
}

// pdf → txt

#[test]
fn the_text_of_each_page_is_separated_by_form_feeds() {
    let text = String::from_utf8(convert(MULTIPAGE, "pdf", "txt", "{}")).unwrap();
    let pages: Vec<&str> = text.split('\u{c}').collect();
    assert_eq!(pages.len(), 14);
    assert!(
        pages[0]
            .starts_with("Trace-based Just-in-Time Type Specialization for Dynamic\nLanguages\n"),
        "{}",
        pages[0]
    );
    assert!(
        pages[0].contains("more difficult to com-\npile"),
        "ligatures are read as letters: {}",
        pages[0]
    );
    assert!(
        pages[0].contains("{gal,brendan,shaver"),
        "braces come through their font's Differences: {}",
        pages[0]
    );
    assert!(
        pages
            .iter()
            .all(|page| page.split_whitespace().count() > 100),
        "every page has text"
    );
    let only = String::from_utf8(convert(MULTIPAGE, "pdf", "txt", r#"{"pages":"2,14"}"#)).unwrap();
    assert_eq!(only, [pages[1], pages[13]].join("\u{c}"));
}

#[test]
fn simple_pdfs_give_their_text() {
    assert_eq!(convert(MINIMAL, "pdf", "txt", "{}"), b"Hello World\n");
    let text = String::from_utf8(convert(INFO_XMP, "pdf", "txt", "{}")).unwrap();
    assert!(text.starts_with("Adobe Acrobat PDF Files\nAdobe® Portable Document Format (PDF) is a universal file format"), "{text}");
}

#[test]
fn text_laid_out_as_pdf_reads_back_the_same() {
    let source = "A short paragraph of text.\n\n    indented line\nlast line\n";
    let pdf = convert_bytes::<DocumentPlugin>(source.as_bytes(), "txt", "pdf", "{}").unwrap();
    let text = convert_bytes::<DocumentPlugin>(&pdf, "pdf", "txt", "{}").unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "A short paragraph of text.\n    indented line\nlast line\n"
    );
}

// Broken and encrypted PDFs

#[test]
fn encrypted_pdfs_are_refused_saying_so() {
    for target in ["pdf", "txt"] {
        let options = if target == "pdf" {
            r#"{"pages":"1"}"#
        } else {
            "{}"
        };
        let error = failure(convert_file::<DocumentPlugin>(
            ENCRYPTED, "pdf", target, options,
        ));
        assert_eq!(error.kind, ErrorKind::Unsupported, "{target}");
        assert!(error.message.contains("encrypted"), "{}", error.message);
    }
}

#[test]
fn damaged_pdfs_are_malformed_and_never_hang() {
    let mut inputs = vec![
        (
            "bad xref",
            std::fs::read(corpus!("malformed/pdf-bad-xref.pdf")).unwrap(),
        ),
        (
            "trailer loop",
            std::fs::read(corpus!("malformed/pdf-trailer-loop.pdf")).unwrap(),
        ),
        ("not a pdf", b"hello".to_vec()),
        ("empty", Vec::new()),
        ("header only", b"%PDF-1.7\n".to_vec()),
    ];
    let whole = std::fs::read(MINIMAL).unwrap();
    inputs.push(("cut", whole[..whole.len() / 2].to_vec()));
    for (name, bytes) in inputs {
        for (target, options) in [("pdf", r#"{"pages":"1"}"#), ("txt", "{}")] {
            let error = failure(convert_bytes::<DocumentPlugin>(
                &bytes, "pdf", target, options,
            ));
            assert_eq!(
                error.kind,
                ErrorKind::MalformedInput,
                "{name} → {target}: {error}"
            );
            assert!(error.message.contains("PDF"), "{name}: {}", error.message);
        }
    }
}

// The plugin's description and templates

#[test]
fn every_pair_is_described_with_its_own_options() {
    let info = DocumentPlugin::describe();
    assert_eq!(info.name, "document");
    let pairs: BTreeSet<(String, String)> = info
        .conversions
        .iter()
        .map(|conversion| (conversion.source.clone(), conversion.target.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("md", "html"),
        ("md", "pdf"),
        ("txt", "pdf"),
        ("jpg", "pdf"),
        ("png", "pdf"),
        ("pdf", "pdf"),
        ("pdf", "txt"),
    ]
    .into_iter()
    .map(|(source, target)| (source.to_owned(), target.to_owned()))
    .collect();
    assert_eq!(pairs, expected);
    for conversion in &info.conversions {
        let schema: serde_json::Value =
            serde_json::from_str(conversion.options_schema.as_deref().unwrap()).unwrap();
        let properties = schema["properties"].as_object().unwrap();
        let expected = match (conversion.source.as_str(), conversion.target.as_str()) {
            ("md", "html") => vec!["standalone", "title", "raw_html"],
            ("png" | "jpg", _) => vec!["page_size", "margin", "dpi"],
            ("pdf", "pdf") => vec!["pages", "remove"],
            ("pdf", "txt") => vec!["pages"],
            ("txt", _) => vec!["page_size", "font_size", "margin", "font"],
            _ => vec!["page_size", "font_size", "margin"],
        };
        assert_eq!(properties.len(), expected.len(), "{}", conversion.source);
        for key in expected {
            assert!(
                properties[key]["description"].is_string(),
                "{key} is documented"
            );
        }
        assert_eq!(schema["additionalProperties"], false);
    }
    let html_schema: serde_json::Value = serde_json::from_str(&info.options_schema).unwrap();
    assert_eq!(html_schema["properties"]["standalone"]["default"], true);
    assert_eq!(info.templates, ["pdf", "html", "md", "txt"]);
}

#[test]
fn templates_are_small_valid_files_that_convert() {
    let markdown = DocumentPlugin::template("md").unwrap();
    assert!(
        String::from_utf8(markdown)
            .unwrap()
            .starts_with("# Example document")
    );
    let text = DocumentPlugin::template("txt").unwrap();
    assert!(String::from_utf8(text).unwrap().contains("plain text"));
    let html = String::from_utf8(DocumentPlugin::template("html").unwrap()).unwrap();
    assert!(
        html.contains("<h1>Example document</h1>")
            && html.contains("<title>Example document</title>")
    );
    let pdf = DocumentPlugin::template("pdf").unwrap();
    assert!(pdf.len() < 8 * 1024);
    let document = load(&pdf);
    assert_eq!(document.get_pages().len(), 1);
    let text =
        String::from_utf8(convert_bytes::<DocumentPlugin>(&pdf, "pdf", "txt", "{}").unwrap())
            .unwrap();
    assert!(text.starts_with("Example document\n"), "{text}");
    assert_eq!(
        DocumentPlugin::template("docx").unwrap_err().kind,
        ErrorKind::Unsupported
    );
}

#[test]
fn pairs_the_plugin_does_not_offer_are_unsupported() {
    for (source, target) in [("pdf", "md"), ("gif", "pdf"), ("html", "md")] {
        let error = failure(convert_bytes::<DocumentPlugin>(b"x", source, target, "{}"));
        assert_eq!(error.kind, ErrorKind::Unsupported, "{source} → {target}");
    }
}

// Robustness

/// Mangles `bytes` in a few ways (overwritten bytes, truncation, runs of digits where numbers
/// or offsets were), deterministically.
fn mangled(bytes: &[u8], rounds: usize) -> Vec<Vec<u8>> {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % 1_000_000_007).unwrap()
    };
    (0..rounds)
        .map(|round| {
            let mut input = bytes.to_vec();
            match round % 3 {
                0 => {
                    for _ in 0..=next() % 8 {
                        let index = next() % input.len();
                        input[index] = u8::try_from(next() % 256).unwrap();
                    }
                }
                1 => input.truncate(next() % input.len()),
                _ => {
                    let start = next() % input.len();
                    let end = (start + next() % 64).min(input.len());
                    input[start..end].fill(b'9');
                }
            }
            input
        })
        .collect()
}

#[test]
fn mangled_inputs_give_a_result_or_a_typed_error_never_a_panic() {
    let cases = [
        (MINIMAL, "pdf", "txt", "{}"),
        (MINIMAL, "pdf", "pdf", r#"{"pages":"1"}"#),
        (INFO_XMP, "pdf", "txt", "{}"),
        (
            corpus!("document/pdf-attachment.pdf"),
            "pdf",
            "pdf",
            r#"{"pages":"1"}"#,
        ),
        (corpus!("image/jpeg-cmyk-adobe.jpg"), "jpg", "pdf", "{}"),
        (corpus!("image/png-interlaced-rgb.png"), "png", "pdf", "{}"),
        (corpus!("image/png-palette.png"), "png", "pdf", "{}"),
        (README, "md", "pdf", "{}"),
    ];
    for (path, source, target, options) in cases {
        for input in mangled(&std::fs::read(path).unwrap(), 120) {
            if let Err(error) = convert_bytes::<DocumentPlugin>(&input, source, target, options) {
                assert!(
                    matches!(
                        error.kind,
                        ErrorKind::MalformedInput | ErrorKind::Unsupported
                    ),
                    "{path} {source} → {target}: {error}"
                );
            }
        }
    }
}

#[test]
fn a_pdf_stream_that_inflates_without_bound_is_refused_as_a_limit() {
    use std::io::Write as _;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(b"BT /F1 12 Tf (x) Tj ET\n").unwrap();
    let spaces = vec![b' '; 1024 * 1024];
    for _ in 0..(crate::MAX_STREAM_BYTES / spaces.len() + 1) {
        encoder.write_all(&spaces).unwrap();
    }
    let content = encoder.finish().unwrap();
    let mut document = Document::with_version("1.4");
    let font = document.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let mut stream = lopdf::Stream::new(dictionary! { "Filter" => "FlateDecode" }, content);
    stream.allows_compression = false;
    let content = document.add_object(stream);
    let pages = document.new_object_id();
    let page = document.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages, "MediaBox" => vec![0.into(), 0.into(), 200.into(), 200.into()],
        "Contents" => content, "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
    });
    document.objects.insert(
        pages,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1,
        }),
    );
    let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
    document.trailer.set("Root", catalog);
    let mut pdf = Vec::new();
    document.save_to(&mut pdf).unwrap();
    assert!(pdf.len() < 1024 * 1024, "a small file: {} bytes", pdf.len());
    let error = failure(convert_bytes::<DocumentPlugin>(&pdf, "pdf", "txt", "{}"));
    assert_eq!(error.kind, ErrorKind::LimitExceeded, "{error}");
    // Selecting pages copies the stream without inflating it.
    let selected = convert_bytes::<DocumentPlugin>(&pdf, "pdf", "pdf", r#"{"pages":"1"}"#).unwrap();
    assert_eq!(parse(&selected).get_pages().len(), 1);
}

#[test]
fn self_referencing_form_xobjects_are_read_once() {
    let mut document = Document::with_version("1.4");
    let font = document.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let form = document.new_object_id();
    let resources = dictionary! {
        "Font" => dictionary! { "F1" => font },
        "XObject" => dictionary! { "X1" => form },
    };
    document.objects.insert(form, Object::Stream(lopdf::Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Form", "BBox" => vec![0.into(), 0.into(), 9.into(), 9.into()],
            "Resources" => resources.clone(),
        },
        b"BT /F1 12 Tf 0 50 Td (inside) Tj ET /X1 Do".to_vec(),
    )));
    let content = document.add_object(lopdf::Stream::new(
        dictionary! {},
        [
            &b"q ".repeat(10_000)[..],
            b"BT /F1 12 Tf 10 10 Td (outside) Tj ET /X1 Do",
        ]
        .concat(),
    ));
    let pages = document.new_object_id();
    let page = document.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages, "MediaBox" => vec![0.into(), 0.into(), 200.into(), 200.into()],
        "Contents" => content, "Resources" => resources,
    });
    document.objects.insert(
        pages,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1,
        }),
    );
    let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
    document.trailer.set("Root", catalog);
    let mut pdf = Vec::new();
    document.save_to(&mut pdf).unwrap();
    let text = convert_bytes::<DocumentPlugin>(&pdf, "pdf", "txt", "{}").unwrap();
    assert_eq!(String::from_utf8(text).unwrap(), "outside\ninside\n");
}
