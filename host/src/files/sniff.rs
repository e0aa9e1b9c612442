//! What format a file is, from its first bytes.
//!
//! Magic numbers decide wherever a format has one: a PNG named `photo.jpg` is a `png`.
//! The name is only a hint for what bytes cannot tell apart: text formats (CSV, Markdown,
//! YAML… are all just UTF-8) and the few binary formats without a signature (TGA).

use metamorph_plugin_api::format::FormatName;

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_LEN: usize = 8 * 1024;

/// Text formats told apart by the file's extension only.
const TEXT_FORMATS: &[&str] = &[
    "csv", "html", "json", "md", "ndjson", "svg", "toml", "tsv", "txt", "xml", "yaml",
];

/// Binary formats without a signature, recognised by their extension when nothing else
/// matches.
const UNSIGNED_FORMATS: &[&str] = &["tga"];

/// The canonical format of a file whose first bytes are `head` (up to [`SNIFF_LEN`]) and
/// whose name is `filename`; `None` when neither says.
pub fn sniff(head: &[u8], filename: &str) -> Option<String> {
    let hinted = filename
        .rsplit_once('.')
        .and_then(|(_, extension)| FormatName::parse(extension).ok())
        .map(|name| name.as_str().to_owned());
    if let Some(found) = signature(head) {
        // A signature names a container; keep the name's more precise format when it is
        // one the same container holds (an `.ods` is a zip, an `.m4a` an MP4).
        if let Some(hint) = &hinted
            && same_container(&found, hint)
        {
            return Some(hint.clone());
        }
        return Some(found);
    }
    if looks_like_text(head) {
        let hinted = hinted.filter(|hint| TEXT_FORMATS.contains(&hint.as_str()));
        return Some(hinted.unwrap_or_else(|| text_kind(head).to_owned()));
    }
    hinted.filter(|hint| UNSIGNED_FORMATS.contains(&hint.as_str()))
}

/// A format recognised by its magic number.
fn signature(head: &[u8]) -> Option<String> {
    if head.starts_with(b"qoif") {
        return Some("qoi".into());
    }
    if is_pnm(head) {
        return Some("pnm".into());
    }
    if head.starts_with(b"II\x2b\0") || head.starts_with(b"MM\0\x2b") {
        return Some("tif".into()); // BigTIFF
    }
    if let Some(found) = iso_media(head)
        .or_else(|| zip_document(head))
        .or_else(|| ogg(head))
    {
        return Some(found.into());
    }
    let kind = infer::get(head)?;
    let extension = match kind.extension() {
        // Text matchers of `infer` are guesses; the text rules below decide.
        "html" | "xml" | "sh" => return None,
        other => other,
    };
    FormatName::parse(extension)
        .ok()
        .map(|name| name.as_str().to_owned())
}

/// ISO base media files (`ftyp` box), by their major brand.
fn iso_media(head: &[u8]) -> Option<&'static str> {
    if head.get(4..8)? != b"ftyp" {
        return None;
    }
    Some(match head.get(8..12)? {
        b"M4A " | b"M4B " | b"M4P " => "m4a",
        b"qt  " => "mov",
        b"heic" | b"heix" | b"heim" | b"heis" | b"mif1" | b"msf1" => "heic",
        b"avif" | b"avis" => "avif",
        b"M4V " | b"M4VH" | b"M4VP" => "m4v",
        _ => "mp4",
    })
}

/// Documents that are zip archives, by the entries at the start of the archive.
fn zip_document(head: &[u8]) -> Option<&'static str> {
    if !head.starts_with(b"PK\x03\x04") {
        return None;
    }
    let contains = |needle: &[u8]| head.windows(needle.len()).any(|window| window == needle);
    const ODF: &[(&[u8], &str)] = &[
        (b"mimetypeapplication/vnd.oasis.opendocument.text", "odt"),
        (
            b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet",
            "ods",
        ),
        (
            b"mimetypeapplication/vnd.oasis.opendocument.presentation",
            "odp",
        ),
        (b"mimetypeapplication/epub+zip", "epub"),
    ];
    if let Some((_, format)) = ODF.iter().find(|(marker, _)| contains(marker)) {
        return Some(format);
    }
    if contains(b"word/") {
        Some("docx")
    } else if contains(b"xl/") {
        Some("xlsx")
    } else if contains(b"ppt/") {
        Some("pptx")
    } else {
        None
    }
}

/// Ogg streams, by the codec of their first packet.
fn ogg(head: &[u8]) -> Option<&'static str> {
    if !head.starts_with(b"OggS") {
        return None;
    }
    let first_packet = head.get(28..36)?;
    if first_packet.starts_with(b"OpusHead") {
        Some("opus")
    } else if first_packet.starts_with(b"\x80theora") {
        Some("ogv")
    } else {
        Some("ogg")
    }
}

/// Netpbm: `P1` to `P7`, then whitespace.
fn is_pnm(head: &[u8]) -> bool {
    matches!(head, [b'P', b'1'..=b'7', next, ..] if next.is_ascii_whitespace())
}

/// Formats that share a signature with `found` and may be named more precisely.
fn same_container(found: &str, hint: &str) -> bool {
    const FAMILIES: &[&[&str]] = &[
        &["zip", "docx", "xlsx", "pptx", "odt", "ods", "odp", "epub"],
        &["mp4", "m4a", "m4v", "mov"],
        &["mkv", "webm"],
        &["ogg", "opus", "ogv"],
        &["heic", "avif"],
    ];
    found == hint
        || FAMILIES
            .iter()
            .any(|family| family.contains(&found) && family.contains(&hint))
}

/// Text in UTF-8 or a single-byte encoding (Latin-1…): no NUL bytes and almost no control
/// characters other than tabs, line breaks and form feeds.
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    let controls = head
        .iter()
        .filter(|&&byte| byte < 0x20 && !matches!(byte, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
        .count();
    controls * 100 <= head.len()
}

/// The text format the content itself suggests.
fn text_kind(head: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let lower: String = trimmed.chars().take(256).collect::<String>().to_lowercase();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        "json"
    } else if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        "html"
    } else if lower.starts_with("<svg") || (lower.starts_with("<?xml") && lower.contains("<svg")) {
        "svg"
    } else if lower.starts_with("<?xml") {
        "xml"
    } else {
        "txt"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_win_over_names() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff(png, "photo.jpg").as_deref(), Some("png"));
        assert_eq!(sniff(b"%PDF-1.7\n", "notes.txt").as_deref(), Some("pdf"));
        assert_eq!(sniff(b"qoif\0\0\0\x01", "x").as_deref(), Some("qoi"));
        assert_eq!(sniff(b"P6\n3 2\n255\n", "x.bin").as_deref(), Some("pnm"));
    }

    #[test]
    fn a_container_keeps_the_more_precise_name() {
        let zip = b"PK\x03\x04\x14\0\0\0\x08\0";
        assert_eq!(sniff(zip, "sheet.ods").as_deref(), Some("ods"));
        assert_eq!(sniff(zip, "photo.png").as_deref(), Some("zip"));
    }

    #[test]
    fn text_is_named_by_its_extension_or_its_look() {
        assert_eq!(sniff(b"a,b\n1,2\n", "t.csv").as_deref(), Some("csv"));
        assert_eq!(sniff(b"a: 1\n", "c.YML").as_deref(), Some("yaml"));
        assert_eq!(sniff(b"{\"a\": 1}", "data").as_deref(), Some("json"));
        assert_eq!(sniff(b"<svg xmlns=\"\"/>", "x.dat").as_deref(), Some("svg"));
        assert_eq!(sniff(b"hello", "x.png").as_deref(), Some("txt"));
        // A multi-byte character cut at the end of the sniffed prefix is still text.
        assert_eq!(
            sniff("caf\u{e9}".as_bytes()[..4].as_ref(), "a.md").as_deref(),
            Some("md")
        );
    }

    #[test]
    fn unknown_binary_is_unknown_unless_the_format_has_no_signature() {
        let binary = [0u8, 1, 2, 3, 0xff, 0xfe];
        assert_eq!(sniff(&binary, "blob.png"), None);
        assert_eq!(sniff(&binary, "image.tga").as_deref(), Some("tga"));
        assert_eq!(sniff(b"", "empty.txt"), None);
    }
}

#[cfg(test)]
mod corpus {
    use super::*;

    /// Every well-formed corpus file is recognised from its bytes under a meaningless
    /// name (text formats, which bytes cannot tell apart, under their own name, and a
    /// container's precise kind, when its bytes do not say, by its name).
    #[test]
    fn every_corpus_file_is_recognised() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/corpus");
        let manifest = std::fs::read_to_string(root.join("MANIFEST.tsv")).unwrap();
        let mut wrong = Vec::new();
        for line in manifest.lines().skip(1) {
            let fields: Vec<&str> = line.split('\t').collect();
            let (path, format) = (fields[0], fields[1]);
            if path.starts_with("malformed/") {
                continue;
            }
            let bytes = std::fs::read(root.join(path)).unwrap();
            let head = &bytes[..bytes.len().min(SNIFF_LEN)];
            let expected = FormatName::parse(format)
                .map_or(format.to_owned(), |name| name.as_str().to_owned());
            let name = if TEXT_FORMATS.contains(&expected.as_str())
                || UNSIGNED_FORMATS.contains(&expected.as_str())
            {
                path.rsplit('/').next().unwrap().to_owned()
            } else {
                "upload.bin".to_owned()
            };
            let mut found = sniff(head, &name);
            // An MP4 holding only audio is an `m4a` by its name alone.
            if let Some(container) = found.clone()
                && container != expected
                && same_container(&container, &expected)
            {
                found = sniff(head, path);
            }
            if found.as_deref() != Some(expected.as_str()) {
                wrong.push(format!("{path}: {found:?}, expected {expected}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
