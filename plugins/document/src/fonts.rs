//! The standard PDF fonts used for laid-out text, their metrics, and the mapping of text to
//! their WinAnsi (Windows-1252) encoding.
//!
//! The standard fonts are never embedded, so only WinAnsi characters can be shown. Others
//! are mapped by [`encode`]: letters with diacritics outside Latin-1 become their base
//! letter (`ł` → `l`, `ő` → `o`), typographic characters become look-alikes (`−` → `-`,
//! `→` → `->`, `ﬁ` → `fi`), invisible ones are dropped, and anything else becomes `?`.

/// A font of laid-out text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Font {
    /// Helvetica.
    Regular,
    /// Helvetica-Bold.
    Bold,
    /// Helvetica-Oblique.
    Italic,
    /// Helvetica-BoldOblique.
    BoldItalic,
    /// Courier.
    Mono,
    /// Courier-Bold.
    MonoBold,
}

impl Font {
    /// Every font, in the order of their resource names.
    pub(crate) const ALL: [Font; 6] = [
        Font::Regular,
        Font::Bold,
        Font::Italic,
        Font::BoldItalic,
        Font::Mono,
        Font::MonoBold,
    ];

    /// The PostScript name of the standard font.
    pub(crate) fn base_font(self) -> &'static str {
        match self {
            Font::Regular => "Helvetica",
            Font::Bold => "Helvetica-Bold",
            Font::Italic => "Helvetica-Oblique",
            Font::BoldItalic => "Helvetica-BoldOblique",
            Font::Mono => "Courier",
            Font::MonoBold => "Courier-Bold",
        }
    }

    /// The font's name in page resources.
    pub(crate) fn resource_name(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
            Font::Italic => "F3",
            Font::BoldItalic => "F4",
            Font::Mono => "F5",
            Font::MonoBold => "F6",
        }
    }

    /// The bold variant.
    pub(crate) fn bold(self) -> Font {
        match self {
            Font::Regular | Font::Bold => Font::Bold,
            Font::Italic | Font::BoldItalic => Font::BoldItalic,
            Font::Mono | Font::MonoBold => Font::MonoBold,
        }
    }

    /// The oblique variant (Courier stays upright).
    pub(crate) fn italic(self) -> Font {
        match self {
            Font::Regular | Font::Italic => Font::Italic,
            Font::Bold | Font::BoldItalic => Font::BoldItalic,
            Font::Mono | Font::MonoBold => self,
        }
    }

    /// The monospaced variant, keeping the weight.
    pub(crate) fn mono(self) -> Font {
        match self {
            Font::Regular | Font::Italic | Font::Mono => Font::Mono,
            Font::Bold | Font::BoldItalic | Font::MonoBold => Font::MonoBold,
        }
    }

    /// The advance width of WinAnsi code `code`, in 1/1000 of the font size.
    pub(crate) fn width(self, code: u8) -> u16 {
        let table = match self {
            Font::Mono | Font::MonoBold => return 600,
            Font::Regular | Font::Italic => &HELVETICA,
            Font::Bold | Font::BoldItalic => &HELVETICA_BOLD,
        };
        code.checked_sub(32)
            .and_then(|index| table.get(usize::from(index)))
            .copied()
            .unwrap_or(0)
    }

    /// The width of WinAnsi-encoded `text` at `size` points.
    pub(crate) fn text_width(self, text: &[u8], size: f64) -> f64 {
        let units: u32 = text.iter().map(|&code| u32::from(self.width(code))).sum();
        f64::from(units) * size / 1000.0
    }
}

/// `text` in WinAnsi (Windows-1252) bytes, with what WinAnsi lacks mapped or replaced as the
/// module documentation says. Control characters other than tab are dropped; tabs become a
/// space (callers expand tabs first where columns matter).
pub(crate) fn encode(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for character in text.chars() {
        encode_char(character, &mut bytes);
    }
    bytes
}

fn encode_char(character: char, out: &mut Vec<u8>) {
    let code = u32::from(character);
    match code {
        0x09 => out.push(b' '),
        0x20..=0x7E | 0xA0..=0xAC | 0xAE..=0xFF => {
            // Both ranges are the same in Unicode and WinAnsi.
            out.push(u8::try_from(code).unwrap_or(b'?'));
        }
        // Control characters, and the soft hyphen, which marks where a word may break.
        0x00..=0x1F | 0x7F..=0x9F | 0xAD => {}
        0x0100..=0x024F => {
            let index = usize::try_from(code - 0x0100).unwrap_or(usize::MAX);
            match character {
                'Ĳ' => out.extend_from_slice(b"IJ"),
                'ĳ' => out.extend_from_slice(b"ij"),
                'Ŀ' => out.push(b'L'),
                'ŀ' => out.push(b'l'),
                'Œ' => out.push(0x8C),
                'œ' => out.push(0x9C),
                'Š' => out.push(0x8A),
                'š' => out.push(0x9A),
                'Ž' => out.push(0x8E),
                'ž' => out.push(0x9E),
                'Ÿ' => out.push(0x9F),
                'ƒ' => out.push(0x83),
                _ => out.push(LATIN_EXTENDED.get(index).copied().unwrap_or(b'?')),
            }
        }
        // Combining diacritical marks, zero-width characters, soft hyphen look-alikes and
        // the byte order mark show nothing.
        0x0300..=0x036F | 0x200B..=0x200F | 0x2060..=0x2064 | 0xFE00..=0xFE0F | 0xFEFF => {}
        _ => out.extend_from_slice(special(character)),
    }
}

/// WinAnsi bytes for characters outside Latin-1 and Latin Extended.
fn special(character: char) -> &'static [u8] {
    match character {
        '€' => b"\x80",
        '‚' => b"\x82",
        '„' => b"\x84",
        '…' => b"\x85",
        '†' => b"\x86",
        '‡' => b"\x87",
        'ˆ' => b"\x88",
        '‰' => b"\x89",
        '‹' => b"\x8B",
        '‘' => b"\x91",
        '’' => b"\x92",
        '“' => b"\x93",
        '”' => b"\x94",
        '•' => b"\x95",
        '–' => b"\x96",
        '—' => b"\x97",
        '˜' => b"\x98",
        '™' => b"\x99",
        '›' => b"\x9B",
        '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => b" ",
        '\u{2010}' | '\u{2011}' | '\u{2043}' | '\u{2212}' => b"-",
        '\u{2012}' | '\u{2015}' => b"\x96",
        '\u{2016}' => b"||",
        '\u{201B}' | '\u{2032}' | '\u{02B9}' | '\u{02BC}' => b"'",
        '\u{201F}' | '\u{2033}' | '\u{02BA}' => b"\"",
        '\u{2024}' => b".",
        '\u{2025}' => b"..",
        '\u{2027}' | '\u{2219}' | '\u{22C5}' => b"\xB7",
        '\u{25CF}' | '\u{25E6}' | '\u{2023}' | '\u{25AA}' | '\u{25A0}' => b"\x95",
        '\u{2044}' | '\u{2215}' => b"/",
        '\u{2190}' => b"<-",
        '\u{2192}' => b"->",
        '\u{2194}' => b"<->",
        '\u{21D0}' => b"<=",
        '\u{21D2}' => b"=>",
        '\u{2260}' => b"!=",
        '\u{2264}' => b"<=",
        '\u{2265}' => b">=",
        '\u{2248}' => b"~",
        '\u{221E}' => b"oo",
        '\u{2713}' | '\u{2714}' => b"v",
        '\u{2717}' | '\u{2718}' => b"x",
        '\u{FB00}' => b"ff",
        '\u{FB01}' => b"fi",
        '\u{FB02}' => b"fl",
        '\u{FB03}' => b"ffi",
        '\u{FB04}' => b"ffl",
        '\u{FB06}' => b"st",
        _ => b"?",
    }
}

/// The base letter of each character from U+0100 to U+024F, `?` where there is none.
const LATIN_EXTENDED: &[u8; 336] = b"\
AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi??JjKkkLlLlLl?\
?LlNnNnNnnNnOoOoOo??RrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs\
b??????????????????????I??l?????Oo?????????????Uu????Zz?????????\
?????????????AaIiOoUuUuUuUuUu?AaAa??GgGgKkOoOo??j???Gg??NnAa????\
AaAaEeEeIiIiOoOoRrRrUuUuSsTt??Hh??????AaEeOoOoOoOoYy????????????\
???B????????????";

/// Helvetica (and Helvetica-Oblique) advance widths of WinAnsi codes 32 to 255, from the
/// Adobe font metrics.
const HELVETICA: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
    350, 556, 350, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 350, 611, 350, 350,
    222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 350, 500, 667, 278, 333, 556,
    556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333, 400, 584, 333, 333, 333, 578,
    537, 278, 333, 333, 365, 556, 834, 834, 834, 611, 667, 667, 667, 667, 667, 667, 1000, 722, 667,
    667, 667, 667, 278, 278, 278, 278, 722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722,
    722, 667, 667, 611, 556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278,
    278, 556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];

/// Helvetica-Bold (and Helvetica-BoldOblique) advance widths of WinAnsi codes 32 to 255.
const HELVETICA_BOLD: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
    350, 556, 350, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 350, 611, 350, 350,
    278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 350, 500, 667, 278, 333, 556,
    556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333, 400, 584, 333, 333, 333, 611,
    556, 278, 333, 333, 365, 556, 834, 834, 834, 611, 722, 722, 722, 722, 722, 722, 1000, 722, 667,
    667, 667, 667, 278, 278, 278, 278, 722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722,
    722, 667, 667, 611, 556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278,
    278, 611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];
