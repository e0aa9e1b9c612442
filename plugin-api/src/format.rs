//! Canonical format names.
//!
//! A format is named by its canonical file extension, lowercase and without a dot:
//! `png`, `jpg`, `tif`, `md`. Clients and plugins may write a format the way they are used
//! to (`"JPEG"`, `".jpeg"`, `"tiff"`); [`FormatName::parse`] turns each spelling into the
//! one canonical name, so that the host compares formats by simple equality.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted format name, in bytes. Real extensions are far shorter; the cap keeps a
/// hostile client from sending a megabyte "format".
pub const MAX_FORMAT_NAME_LEN: usize = 32;

/// Spellings that are the same format as a canonical name: `(alias, canonical)`.
///
/// Keep sorted by alias. Only true synonyms belong here (two extensions for one format),
/// never conversions.
const ALIASES: &[(&str, &str)] = &[
    ("aif", "aiff"),
    ("heif", "heic"),
    ("htm", "html"),
    ("jfif", "jpg"),
    ("jpe", "jpg"),
    ("jpeg", "jpg"),
    ("jsonl", "ndjson"),
    ("markdown", "md"),
    ("mpeg", "mpg"),
    ("oga", "ogg"),
    ("pam", "pnm"),
    ("pbm", "pnm"),
    ("pgm", "pnm"),
    ("ppm", "pnm"),
    ("text", "txt"),
    ("tiff", "tif"),
    ("yml", "yaml"),
];

/// A format the host knows without any plugin: its media types, extensions and category.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownFormat {
    /// Canonical name.
    pub name: &'static str,
    /// IANA media types, preferred first.
    pub media_types: &'static [&'static str],
    /// Extensions, preferred first.
    pub extensions: &'static [&'static str],
    /// `image`, `audio`, `video`, `document`, `data` or `archive`.
    pub category: &'static str,
    /// One line for people.
    pub description: &'static str,
}

macro_rules! known {
    ($name:literal, [$($mime:literal),+], [$($ext:literal),+], $category:literal, $description:literal) => {
        KnownFormat {
            name: $name,
            media_types: &[$($mime),+],
            extensions: &[$($ext),+],
            category: $category,
            description: $description,
        }
    };
}

/// The formats the host knows, sorted by name. Plugins may declare more.
pub const KNOWN_FORMATS: &[KnownFormat] = &[
    known!("aac", ["audio/aac"], ["aac"], "audio", "AAC audio (ADTS)"),
    known!(
        "aiff",
        ["audio/aiff"],
        ["aiff", "aif"],
        "audio",
        "Audio Interchange File Format"
    ),
    known!("avi", ["video/x-msvideo"], ["avi"], "video", "AVI video"),
    known!(
        "avif",
        ["image/avif"],
        ["avif"],
        "image",
        "AV1 Image File Format"
    ),
    known!("bmp", ["image/bmp"], ["bmp"], "image", "Windows bitmap"),
    known!(
        "csv",
        ["text/csv"],
        ["csv"],
        "data",
        "Comma-separated values"
    ),
    known!(
        "docx",
        ["application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
        ["docx"],
        "document",
        "Word document"
    ),
    known!(
        "flac",
        ["audio/flac"],
        ["flac"],
        "audio",
        "Free Lossless Audio Codec"
    ),
    known!(
        "gif",
        ["image/gif"],
        ["gif"],
        "image",
        "Graphics Interchange Format, possibly animated"
    ),
    known!(
        "heic",
        ["image/heic"],
        ["heic", "heif"],
        "image",
        "High Efficiency Image File Format"
    ),
    known!(
        "html",
        ["text/html"],
        ["html", "htm"],
        "document",
        "HTML document"
    ),
    known!(
        "ico",
        ["image/vnd.microsoft.icon", "image/x-icon"],
        ["ico"],
        "image",
        "Windows icon"
    ),
    known!(
        "jpg",
        ["image/jpeg"],
        ["jpg", "jpeg", "jpe", "jfif"],
        "image",
        "JPEG image"
    ),
    known!(
        "json",
        ["application/json"],
        ["json"],
        "data",
        "JSON document"
    ),
    known!("m4a", ["audio/mp4"], ["m4a"], "audio", "MPEG-4 audio (AAC)"),
    known!(
        "md",
        ["text/markdown"],
        ["md", "markdown"],
        "document",
        "Markdown text"
    ),
    known!(
        "mkv",
        ["video/x-matroska"],
        ["mkv"],
        "video",
        "Matroska video"
    ),
    known!(
        "mov",
        ["video/quicktime"],
        ["mov"],
        "video",
        "QuickTime video"
    ),
    known!(
        "mp3",
        ["audio/mpeg"],
        ["mp3"],
        "audio",
        "MPEG-1 Layer III audio"
    ),
    known!(
        "mp4",
        ["video/mp4"],
        ["mp4"],
        "video",
        "MPEG-4 video (H.264 and AAC)"
    ),
    known!(
        "ndjson",
        ["application/x-ndjson"],
        ["ndjson", "jsonl"],
        "data",
        "Newline-delimited JSON records"
    ),
    known!(
        "ogg",
        ["audio/ogg"],
        ["ogg", "oga"],
        "audio",
        "Ogg Vorbis audio"
    ),
    known!(
        "opus",
        ["audio/opus", "audio/ogg"],
        ["opus"],
        "audio",
        "Opus audio in Ogg"
    ),
    known!(
        "pdf",
        ["application/pdf"],
        ["pdf"],
        "document",
        "Portable Document Format"
    ),
    known!(
        "png",
        ["image/png"],
        ["png"],
        "image",
        "Portable Network Graphics"
    ),
    known!(
        "pnm",
        ["image/x-portable-anymap"],
        ["pnm", "ppm", "pgm", "pbm", "pam"],
        "image",
        "Netpbm image"
    ),
    known!("qoi", ["image/qoi"], ["qoi"], "image", "Quite OK Image"),
    known!(
        "svg",
        ["image/svg+xml"],
        ["svg"],
        "image",
        "Scalable Vector Graphics"
    ),
    known!("tga", ["image/x-tga"], ["tga"], "image", "Truevision TGA"),
    known!(
        "tif",
        ["image/tiff"],
        ["tif", "tiff"],
        "image",
        "Tagged Image File Format"
    ),
    known!(
        "toml",
        ["application/toml"],
        ["toml"],
        "data",
        "TOML document"
    ),
    known!(
        "tsv",
        ["text/tab-separated-values"],
        ["tsv"],
        "data",
        "Tab-separated values"
    ),
    known!(
        "txt",
        ["text/plain"],
        ["txt", "text"],
        "document",
        "Plain text"
    ),
    known!(
        "wav",
        ["audio/wav", "audio/x-wav"],
        ["wav"],
        "audio",
        "Waveform audio (PCM)"
    ),
    known!(
        "webm",
        ["video/webm"],
        ["webm"],
        "video",
        "WebM video (VP9 and Opus)"
    ),
    known!("webp", ["image/webp"], ["webp"], "image", "WebP image"),
    known!(
        "xlsx",
        ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
        ["xlsx"],
        "data",
        "Excel workbook"
    ),
    known!(
        "xml",
        ["application/xml", "text/xml"],
        ["xml"],
        "data",
        "XML document"
    ),
    known!(
        "yaml",
        ["application/yaml"],
        ["yaml", "yml"],
        "data",
        "YAML document"
    ),
];

/// The known format named `name` (canonical).
pub fn known_format(name: &str) -> Option<&'static KnownFormat> {
    KNOWN_FORMATS
        .binary_search_by(|known| known.name.cmp(name))
        .ok()
        .map(|index| &KNOWN_FORMATS[index])
}

/// A format's canonical name: lowercase ASCII letters and digits (plus `-`, `_`, `+` inside),
/// with synonyms folded into one name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FormatName(String);

/// Why a string is not a format name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatNameError {
    /// The name is empty (or only a dot).
    #[error("a format name cannot be empty")]
    Empty,
    /// The name is longer than [`MAX_FORMAT_NAME_LEN`].
    #[error("a format name has at most {MAX_FORMAT_NAME_LEN} characters")]
    TooLong,
    /// The name has a character other than ASCII letters, digits, `-`, `_` or `+`.
    #[error(
        "`{0}` is not a format name: use a file extension such as `png` or `pdf` \
         (letters, digits, `-`, `_` and `+` only)"
    )]
    InvalidCharacter(String),
}

impl FormatName {
    /// Parses any usual spelling of a format into its canonical name.
    ///
    /// Surrounding whitespace and one leading dot are ignored, case is folded and synonyms
    /// are mapped (`".JPEG"` → `jpg`).
    pub fn parse(input: &str) -> Result<Self, FormatNameError> {
        let trimmed = input.trim();
        let name = trimmed.strip_prefix('.').unwrap_or(trimmed);
        if name.is_empty() {
            return Err(FormatNameError::Empty);
        }
        if name.len() > MAX_FORMAT_NAME_LEN {
            return Err(FormatNameError::TooLong);
        }
        let valid_inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+');
        let starts_well = name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !starts_well || !name.chars().all(valid_inner) {
            return Err(FormatNameError::InvalidCharacter(name.to_owned()));
        }
        let lower = name.to_ascii_lowercase();
        let canonical = match ALIASES.binary_search_by(|(alias, _)| alias.cmp(&lower.as_str())) {
            Ok(index) => ALIASES[index].1.to_owned(),
            Err(_) => lower,
        };
        Ok(Self(canonical))
    }

    /// The canonical name, e.g. `jpg`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FormatName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for FormatName {
    type Err = FormatNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for FormatName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for FormatName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FormatName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_format_is_one_name() {
        for spelling in ["pdf", "PDF", ".pdf", " .Pdf "] {
            assert_eq!(
                FormatName::parse(spelling).unwrap().as_str(),
                "pdf",
                "{spelling}"
            );
        }
        for spelling in ["jpeg", "JPG", ".jpe", "jfif"] {
            assert_eq!(
                FormatName::parse(spelling).unwrap().as_str(),
                "jpg",
                "{spelling}"
            );
        }
        assert_eq!(FormatName::parse("TIFF").unwrap().as_str(), "tif");
        assert_eq!(FormatName::parse("svg+xml").unwrap().as_str(), "svg+xml");
    }

    #[test]
    fn aliases_and_known_formats_are_sorted_so_binary_search_finds_them() {
        assert!(ALIASES.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert!(
            KNOWN_FORMATS
                .windows(2)
                .all(|pair| pair[0].name < pair[1].name)
        );
        for known in KNOWN_FORMATS {
            assert_eq!(
                FormatName::parse(known.name).unwrap().as_str(),
                known.name,
                "canonical"
            );
            for extension in known.extensions {
                assert_eq!(
                    FormatName::parse(extension).unwrap().as_str(),
                    known.name,
                    "{extension}"
                );
            }
        }
        assert_eq!(known_format("jpg").unwrap().media_types[0], "image/jpeg");
        assert!(known_format("nope").is_none());
    }

    #[test]
    fn names_that_could_escape_a_path_or_header_are_refused() {
        assert_eq!(FormatName::parse(""), Err(FormatNameError::Empty));
        assert_eq!(FormatName::parse("."), Err(FormatNameError::Empty));
        for bad in ["../etc", "p df", "p\r\nng", "-png", "ü", "a/b"] {
            assert!(
                matches!(
                    FormatName::parse(bad),
                    Err(FormatNameError::InvalidCharacter(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            FormatName::parse(&"x".repeat(33)),
            Err(FormatNameError::TooLong)
        );
    }

    #[test]
    fn deserializing_normalises_and_reports_bad_names() {
        let name: FormatName = serde_json::from_str("\".JPEG\"").unwrap();
        assert_eq!(name.as_str(), "jpg");
        let error = serde_json::from_str::<FormatName>("\"a b\"").unwrap_err();
        assert!(error.to_string().contains("not a format name"), "{error}");
    }
}
