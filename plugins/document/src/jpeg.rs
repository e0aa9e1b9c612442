//! What PDF needs to know of a JPEG file to embed it as-is: its size, colour components,
//! resolution, orientation, colour profile and where it ends. The whole marker structure
//! is walked, entropy-coded data included, so a truncated file is refused here instead of
//! producing a PDF that no viewer can show.

use metamorph_plugin_api::ConvertError;

/// The header facts of a JPEG file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JpegInfo {
    /// Width in pixels.
    pub(crate) width: u32,
    /// Height in pixels.
    pub(crate) height: u32,
    /// Colour components: 1 (grey), 3 (YCbCr or RGB) or 4 (CMYK or YCCK).
    pub(crate) components: u8,
    /// Whether an Adobe APP14 segment is present: Adobe's CMYK JPEGs store inverted values.
    pub(crate) adobe: bool,
    /// Pixels per inch (horizontal, vertical), when the JFIF header records it.
    pub(crate) density: Option<(f64, f64)>,
    /// The EXIF orientation, 1 to 8 (1 when absent or unreadable).
    pub(crate) orientation: u8,
    /// The embedded ICC colour profile, when complete.
    pub(crate) icc_profile: Option<Vec<u8>>,
    /// The offset just past the end-of-image marker: the first image of the file.
    pub(crate) end: usize,
}

fn truncated() -> ConvertError {
    ConvertError::malformed("the JPEG is truncated: its data ends before the end-of-image marker")
}

/// Reads the header facts of `bytes`, walking every segment up to the end-of-image marker.
pub(crate) fn parse(bytes: &[u8]) -> Result<JpegInfo, ConvertError> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(ConvertError::malformed(
            "the input is not a JPEG: it does not start with a start-of-image marker",
        ));
    }
    let mut frame: Option<(u32, u32, u8)> = None;
    let mut adobe = false;
    let mut density = None;
    let mut orientation = 1;
    let mut icc_chunks: Vec<(u8, u8, &[u8])> = Vec::new();
    let mut scans = 0usize;
    let mut position = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if *bytes.get(position).ok_or_else(truncated)? != 0xFF {
            return Err(ConvertError::malformed(format!(
                "the JPEG is corrupt: a marker was expected at byte {position}"
            )));
        }
        while bytes.get(position) == Some(&0xFF) {
            position += 1;
        }
        let marker = *bytes.get(position).ok_or_else(truncated)?;
        position += 1;
        match marker {
            0xD9 => {
                if frame.is_none() || scans == 0 {
                    return Err(ConvertError::malformed("the JPEG has no image data"));
                }
                break;
            }
            0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let length_bytes: [u8; 2] = bytes
            .get(position..position + 2)
            .and_then(|pair| pair.try_into().ok())
            .ok_or_else(truncated)?;
        let length = usize::from(u16::from_be_bytes(length_bytes));
        if length < 2 {
            return Err(ConvertError::malformed(
                "the JPEG is corrupt: a segment has a bad length",
            ));
        }
        let segment = bytes
            .get(position + 2..position + length)
            .ok_or_else(truncated)?;
        position += length;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                frame = Some(start_of_frame(marker, segment)?);
            }
            0xE0 if segment.starts_with(b"JFIF\0") => density = jfif_density(segment),
            0xE1 if segment.starts_with(b"Exif\0\0") => {
                orientation = exif_orientation(&segment[6..]).unwrap_or(1);
            }
            0xE2 if segment.starts_with(b"ICC_PROFILE\0") && segment.len() > 14 => {
                icc_chunks.push((segment[12], segment[13], &segment[14..]));
            }
            0xEE if segment.starts_with(b"Adobe") => adobe = true,
            0xDA => {
                if frame.is_none() {
                    return Err(ConvertError::malformed(
                        "the JPEG is corrupt: image data comes before the frame header",
                    ));
                }
                scans += 1;
                position = skip_entropy_coded(bytes, position)?;
            }
            _ => {}
        }
    }
    let (width, height, components) = frame.ok_or_else(truncated)?;
    let icc_profile = assemble_icc(icc_chunks, components);
    Ok(JpegInfo {
        width,
        height,
        components,
        adobe,
        density,
        orientation,
        icc_profile,
        end: position,
    })
}

/// The size and components of a start-of-frame segment, refusing what PDF cannot show.
fn start_of_frame(marker: u8, segment: &[u8]) -> Result<(u32, u32, u8), ConvertError> {
    if matches!(marker, 0xC3 | 0xC7 | 0xCB | 0xCF) {
        return Err(ConvertError::unsupported(
            "lossless JPEG cannot be embedded in a PDF; convert it to PNG first",
        ));
    }
    if marker >= 0xC9 {
        return Err(ConvertError::unsupported(
            "arithmetic-coded JPEG cannot be embedded in a PDF; convert it to PNG first",
        ));
    }
    let [precision, h1, h0, w1, w0, components, ..] = *segment else {
        return Err(ConvertError::malformed(
            "the JPEG is corrupt: its frame header is too short",
        ));
    };
    if precision != 8 {
        return Err(ConvertError::unsupported(format!(
            "{precision}-bit JPEG cannot be embedded in a PDF; convert it to PNG first"
        )));
    }
    let height = u32::from(u16::from_be_bytes([h1, h0]));
    let width = u32::from(u16::from_be_bytes([w1, w0]));
    if width == 0 || height == 0 {
        return Err(ConvertError::malformed(format!(
            "the JPEG's frame header gives a size of {width}×{height} pixels"
        )));
    }
    if !matches!(components, 1 | 3 | 4) {
        return Err(ConvertError::unsupported(format!(
            "a JPEG with {components} colour components cannot be embedded in a PDF"
        )));
    }
    Ok((width, height, components))
}

/// Skips the entropy-coded data that follows a start-of-scan header, returning the offset
/// of the next marker.
fn skip_entropy_coded(bytes: &[u8], mut position: usize) -> Result<usize, ConvertError> {
    loop {
        let offset = bytes
            .get(position..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF));
        let marker_at = position + offset.ok_or_else(truncated)?;
        match bytes.get(marker_at + 1) {
            None => return Err(truncated()),
            // A stuffed zero byte, a restart marker, or fill bytes: still data.
            Some(0x00 | 0xD0..=0xD7 | 0xFF) => position = marker_at + 1,
            Some(_) => return Ok(marker_at),
        }
    }
}

/// Pixels per inch from a JFIF APP0 segment (units 1: per inch, 2: per centimetre).
fn jfif_density(segment: &[u8]) -> Option<(f64, f64)> {
    let [units, x1, x0, y1, y0] = *segment.get(7..12)? else {
        return None;
    };
    let (x, y) = (
        f64::from(u16::from_be_bytes([x1, x0])),
        f64::from(u16::from_be_bytes([y1, y0])),
    );
    if x < 1.0 || y < 1.0 {
        return None;
    }
    match units {
        1 => Some((x, y)),
        2 => Some((x * 2.54, y * 2.54)),
        _ => None,
    }
}

/// The orientation tag (0x0112) of the first IFD of an EXIF (TIFF) block.
fn exif_orientation(tiff: &[u8]) -> Option<u8> {
    let big_endian = match tiff.get(0..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |offset: usize| -> Option<u16> {
        let pair: [u8; 2] = tiff.get(offset..offset + 2)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        })
    };
    let u32_at = |offset: usize| -> Option<u32> {
        let quad: [u8; 4] = tiff.get(offset..offset + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(quad)
        } else {
            u32::from_le_bytes(quad)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    (0..count).find_map(|index| {
        let entry = ifd + 2 + index * 12;
        if u16_at(entry)? != 0x0112 || u16_at(entry + 2)? != 3 {
            return None;
        }
        let value = u16_at(entry + 8)?;
        u8::try_from(value)
            .ok()
            .filter(|value| (1..=8).contains(value))
    })
}

/// The ICC profile from its APP2 chunks, if every chunk is there and it describes
/// `components` colour components.
fn assemble_icc(mut chunks: Vec<(u8, u8, &[u8])>, components: u8) -> Option<Vec<u8>> {
    let total = chunks.first()?.1;
    chunks.sort_by_key(|(sequence, _, _)| *sequence);
    let complete = chunks.len() == usize::from(total)
        && chunks
            .iter()
            .enumerate()
            .all(|(index, (sequence, count, _))| {
                usize::from(*sequence) == index + 1 && *count == total
            });
    if !complete {
        return None;
    }
    let profile: Vec<u8> = chunks
        .iter()
        .flat_map(|(_, _, data)| data.iter().copied())
        .collect();
    icc_matches(&profile, components).then_some(profile)
}

/// Whether an ICC profile's colour space has `components` components.
pub(crate) fn icc_matches(profile: &[u8], components: u8) -> bool {
    if profile.len() < 128 {
        return false;
    }
    let expected: &[u8] = match components {
        1 => b"GRAY",
        3 => b"RGB ",
        4 => b"CMYK",
        _ => return false,
    };
    profile.get(16..20) == Some(expected)
}

#[cfg(test)]
mod tests {
    use super::{exif_orientation, parse};
    use metamorph_plugin_api::ErrorKind;

    #[test]
    fn a_file_without_start_of_image_is_not_a_jpeg() {
        assert_eq!(
            parse(b"GIF89a").unwrap_err().kind,
            ErrorKind::MalformedInput
        );
    }

    #[test]
    fn a_file_cut_inside_a_segment_is_truncated() {
        let error = parse(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J']).unwrap_err();
        assert_eq!(error.kind, ErrorKind::MalformedInput);
        assert!(error.message.contains("truncated"), "{}", error.message);
    }

    #[test]
    fn the_orientation_is_read_from_either_byte_order() {
        let little = [
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0,
        ];
        assert_eq!(exif_orientation(&little), Some(6));
        let big = [
            b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0,
        ];
        assert_eq!(exif_orientation(&big), Some(8));
        assert_eq!(exif_orientation(b"II*\0\xff\xff\xff\xff"), None);
    }
}
