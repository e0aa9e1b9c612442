//! Turning the character codes of PDF strings back into text.
//!
//! Composite (Type 0) fonts are read through their `ToUnicode` map. For simple fonts each of
//! the 256 codes is resolved once: from the `ToUnicode` map when there is one, otherwise
//! from the font's encoding, a standard base encoding with `Differences`. lopdf knows the
//! Adobe Glyph List; it is asked about one glyph name at a time, so that a single name it
//! does not know (TeX fonts use several) costs only that glyph and not the whole encoding.
//! Names of the forms `uniXXXX`, `uXXXX`, `f_i` and `name.suffix` are resolved here.

use lopdf::{Dictionary, Document, Encoding, Object};

use crate::MAX_STREAM_BYTES;

/// How a font's codes become text.
pub(crate) enum Decoder {
    /// One-byte codes, each with its text (possibly empty).
    Table(Vec<String>),
    /// Codes of one to four bytes through a `ToUnicode` map.
    Map(Encoding<'static>),
    /// Unknown: the font's strings give no text.
    Unknown,
}

impl Decoder {
    /// The text of `bytes`.
    pub(crate) fn decode(&self, bytes: &[u8]) -> String {
        let mut text = String::new();
        match self {
            Decoder::Table(table) => {
                for &byte in bytes {
                    if let Some(part) = table.get(usize::from(byte)) {
                        text.push_str(part);
                    }
                }
            }
            Decoder::Map(encoding) => {
                if encoding.write_to_string(bytes, &mut text).is_err() {
                    text.clear();
                }
            }
            Decoder::Unknown => {}
        }
        let mut clean = String::with_capacity(text.len());
        for character in text.chars() {
            match character {
                '\u{FFFD}' => {}
                // Typographic ligatures are written as their letters, so that words are found.
                '\u{FB00}' => clean.push_str("ff"),
                '\u{FB01}' => clean.push_str("fi"),
                '\u{FB02}' => clean.push_str("fl"),
                '\u{FB03}' => clean.push_str("ffi"),
                '\u{FB04}' => clean.push_str("ffl"),
                '\u{FB05}' | '\u{FB06}' => clean.push_str("st"),
                other if other.is_control() && other != '\t' => {}
                other => clean.push(other),
            }
        }
        clean
    }
}

/// The `ToUnicode` map of `font`, if it has a readable one.
fn to_unicode(document: &Document, font: &Dictionary) -> Option<Encoding<'static>> {
    let map = font.get(b"ToUnicode").ok()?;
    let mut probe = Dictionary::new();
    probe.set("Type", "Font");
    probe.set("ToUnicode", map.clone());
    match probe
        .get_font_encoding_with_limit(document, MAX_STREAM_BYTES)
        .ok()?
    {
        Encoding::UnicodeMapEncoding(map) => Some(Encoding::UnicodeMapEncoding(map)),
        _ => None,
    }
}

/// The decoder of a composite font.
pub(crate) fn composite(document: &Document, font: &Dictionary) -> Decoder {
    if let Some(map) = to_unicode(document, font) {
        return Decoder::Map(map);
    }
    // Without a map only the predefined Unicode CMaps give text.
    match font.get(b"Encoding").and_then(Object::as_name) {
        Ok(name @ (b"UniGB-UCS2-H" | b"UniGB-UTF16-H")) => {
            let name: &'static [u8] = if name == b"UniGB-UCS2-H" {
                b"UniGB-UCS2-H"
            } else {
                b"UniGB-UTF16-H"
            };
            Decoder::Map(Encoding::SimpleEncoding(name))
        }
        _ => Decoder::Unknown,
    }
}

/// The decoder of a simple font (Type 1, TrueType, Type 3).
pub(crate) fn simple(document: &Document, font: &Dictionary) -> Decoder {
    let deref = |object: &Object| {
        document
            .dereference(object)
            .ok()
            .map(|(_, object)| object.clone())
    };
    let encoding = font.get(b"Encoding").ok().and_then(deref);
    let (base, differences) = match &encoding {
        Some(Object::Name(name)) => (name.clone(), None),
        Some(Object::Dictionary(dictionary)) => (
            dictionary
                .get(b"BaseEncoding")
                .and_then(Object::as_name)
                .map_or_else(|_| b"StandardEncoding".to_vec(), <[u8]>::to_vec),
            dictionary.get(b"Differences").ok().and_then(deref),
        ),
        _ => (b"StandardEncoding".to_vec(), None),
    };
    let mut table = base_table(document, &base);
    if let Some(Object::Array(differences)) = differences {
        let mut code: Option<u8> = None;
        for entry in &differences {
            match entry {
                Object::Integer(number) => code = u8::try_from(*number).ok(),
                Object::Name(name) => {
                    if let Some(current) = code {
                        if let Some(slot) = table.get_mut(usize::from(current)) {
                            *slot = glyph_text(document, name).unwrap_or_default();
                        }
                        code = current.checked_add(1);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(map) = to_unicode(document, font) {
        for (code, slot) in (0..=255u8).zip(table.iter_mut()) {
            let mut text = String::new();
            if map.write_to_string(&[code], &mut text).is_ok()
                && !text.is_empty()
                && !text.contains('\u{FFFD}')
            {
                *slot = text;
            }
        }
    }
    Decoder::Table(table)
}

/// The text of each code in the standard encoding `name` (StandardEncoding when unknown).
fn base_table(document: &Document, name: &[u8]) -> Vec<String> {
    let name = match name {
        b"WinAnsiEncoding" | b"MacRomanEncoding" | b"MacExpertEncoding" => name,
        _ => b"StandardEncoding",
    };
    let mut probe = Dictionary::new();
    probe.set("Type", "Font");
    probe.set("Encoding", Object::Name(name.to_vec()));
    let Ok(encoding) = probe.get_font_encoding(document) else {
        return vec![String::new(); 256];
    };
    (0..=255u8)
        .map(|code| {
            let mut text = String::new();
            let _ = encoding.write_to_string(&[code], &mut text);
            text
        })
        .collect()
}

/// The text of glyph `name`, if known.
fn glyph_text(document: &Document, name: &[u8]) -> Option<String> {
    if name == b".notdef" {
        return Some(String::new());
    }
    if let Some(text) = known_glyph(document, name) {
        return Some(text);
    }
    let name = std::str::from_utf8(name).ok()?;
    if let Some(text) = tex_glyph(name) {
        return Some(text.to_owned());
    }
    if let Some(hex) = name.strip_prefix("uni")
        && hex.len() >= 4
        && hex.len() % 4 == 0
    {
        let units: Option<Vec<u16>> = (0..hex.len())
            .step_by(4)
            .map(|index| u16::from_str_radix(hex.get(index..index + 4)?, 16).ok())
            .collect();
        return String::from_utf16(&units?).ok();
    }
    if let Some(hex) = name.strip_prefix('u')
        && (4..=6).contains(&hex.len())
    {
        return u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .map(String::from);
    }
    // `a.sc`, `one.oldstyle`: the part before the suffix.
    if let Some((base, _suffix)) = name.split_once('.')
        && !base.is_empty()
    {
        return glyph_text(document, base.as_bytes());
    }
    // `f_f_i`: a ligature of its components.
    if name.contains('_') {
        return name
            .split('_')
            .map(|part| glyph_text(document, part.as_bytes()))
            .collect::<Option<String>>();
    }
    None
}

/// Asks lopdf about one glyph name: a one-entry `Differences` encoding decodes it only if
/// the name is in its glyph list.
fn known_glyph(document: &Document, name: &[u8]) -> Option<String> {
    let mut encoding = Dictionary::new();
    encoding.set(
        "Differences",
        vec![Object::Integer(65), Object::Name(name.to_vec())],
    );
    let mut probe = Dictionary::new();
    probe.set("Type", "Font");
    probe.set("Encoding", encoding);
    match probe.get_font_encoding(document).ok()? {
        differences @ Encoding::Differences(_) => {
            let mut text = String::new();
            differences.write_to_string(b"A", &mut text).ok()?;
            Some(text)
        }
        _ => None,
    }
}

/// Glyph names of the TeX fonts that are not in the Adobe Glyph List.
fn tex_glyph(name: &str) -> Option<&'static str> {
    Some(match name {
        "asteriskmath" => "∗",
        "circlecopyrt" => "©",
        "openbullet" => "◦",
        "dotlessj" => "ȷ",
        "angbracketleft" => "⟨",
        "angbracketright" => "⟩",
        "arrowdblright" => "⇒",
        "arrowdblleft" => "⇐",
        "negationslash" => "/",
        "similar" => "∼",
        "minusplus" => "∓",
        "lscript" => "ℓ",
        "visiblespace" => "␣",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{Decoder, glyph_text, simple};
    use lopdf::{Dictionary, Document, Object};

    #[test]
    fn glyph_names_resolve_through_the_glyph_list_and_the_naming_conventions() {
        let document = Document::new();
        let text = |name: &str| glyph_text(&document, name.as_bytes());
        assert_eq!(text("fi").as_deref(), Some("ﬁ"));
        assert_eq!(text("Euro").as_deref(), Some("€"));
        assert_eq!(text("uni00E9").as_deref(), Some("é"));
        assert_eq!(text("u1F600").as_deref(), Some("😀"));
        assert_eq!(text("c_t").as_deref(), Some("ct"));
        assert_eq!(text("a.sc").as_deref(), Some("a"));
        assert_eq!(text("asteriskmath").as_deref(), Some("∗"));
        assert_eq!(text("no-such-glyph"), None);
    }

    #[test]
    fn an_unknown_glyph_name_costs_only_its_own_code() {
        let document = Document::new();
        let mut encoding = Dictionary::new();
        encoding.set(
            "Differences",
            vec![
                Object::Integer(1),
                "fi".into(),
                "madeup".into(),
                Object::Integer(102),
                "braceleft".into(),
            ],
        );
        let mut font = Dictionary::new();
        font.set("Type", "Font");
        font.set("Subtype", "Type1");
        font.set("Encoding", encoding);
        let decoder = simple(&document, &font);
        assert!(matches!(decoder, Decoder::Table(_)));
        assert_eq!(decoder.decode(b"\x01\x02f x"), "fi{ x");
    }
}
