//! Encoding of WebP images.
use std::collections::BinaryHeap;
use std::io::{self, Write};

use quick_error::quick_error;

/// Color type of the image.
///
/// Note that the WebP format doesn't have a concept of color type. All images are encoded as RGBA
/// and some decoders may treat them as such. This enum is used to indicate the color type of the
/// input data provided to the encoder, which can help improve compression ratio.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ColorType {
    /// Opaque image with a single luminance byte per pixel.
    L8,
    /// Image with a luminance and alpha byte per pixel.
    La8,
    /// Opaque image with a red, green, and blue byte per pixel.
    Rgb8,
    /// Image with a red, green, blue, and alpha byte per pixel.
    Rgba8,
}

quick_error! {
    /// Error that can occur during encoding.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum EncodingError {
        /// An IO error occurred.
        IoError(err: io::Error) {
            from()
            display("IO error: {}", err)
            source(err)
        }

        /// The image dimensions are not allowed by the WebP format.
        InvalidDimensions {
            display("Invalid dimensions")
        }
    }
}

/// The encoded frame, gathered in blocks instead of one buffer that is copied each time it
/// grows (in WebAssembly, the copies and the old and new buffer side by side at the peak
/// cost more than the encoding of a block).
///
/// The current block is allocated at its full size and filled up to `filled`, so that the bit
/// writer's eight bytes are one store: appended to a `Vec` with `extend_from_slice`, they
/// were an out-of-line call and, in WebAssembly, a `memory.copy` (a call into the runtime).
#[derive(Default)]
struct Frame {
    full: Vec<Vec<u8>>,
    current: Vec<u8>,
    filled: usize,
}

impl Frame {
    const BLOCK: usize = 256 * 1024;

    fn len(&self) -> usize {
        self.parts().map(<[u8]>::len).sum()
    }

    /// Appends eight bytes, the bit writer's unit.
    #[inline(always)]
    fn push8(&mut self, bytes: [u8; 8]) {
        if self.current.len() - self.filled < 8 {
            self.next_block();
        }
        self.current[self.filled..self.filled + 8].copy_from_slice(&bytes);
        self.filled += 8;
    }

    #[cold]
    #[inline(never)]
    fn next_block(&mut self) {
        let mut full = std::mem::replace(&mut self.current, vec![0; Self::BLOCK]);
        full.truncate(std::mem::take(&mut self.filled));
        if !full.is_empty() {
            self.full.push(full);
        }
    }

    /// The bytes in order.
    fn parts(&self) -> impl Iterator<Item = &[u8]> {
        self.full
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::once(&self.current[..self.filled]))
    }
}

impl Write for Frame {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let written = data.len();
        while !data.is_empty() {
            if self.filled == self.current.len() {
                self.next_block();
            }
            let room = &mut self.current[self.filled..];
            let (part, rest) = data.split_at(data.len().min(room.len()));
            room[..part.len()].copy_from_slice(part);
            self.filled += part.len();
            data = rest;
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct BitWriter<'a> {
    writer: &'a mut Frame,
    buffer: u64,
    nbits: u32,
}

impl BitWriter<'_> {
    #[inline(always)]
    fn write_bits(&mut self, bits: u64, nbits: u8) -> io::Result<()> {
        self.put(bits, u32::from(nbits));
        Ok(())
    }

    /// Appends the low `nbits` bits of `bits` (no bits above them may be set).
    #[inline(always)]
    fn put(&mut self, bits: u64, nbits: u32) {
        debug_assert!(nbits <= 64);

        self.buffer |= bits << self.nbits;
        self.nbits += nbits;

        if self.nbits >= 64 {
            self.writer.push8(self.buffer.to_le_bytes());
            self.nbits -= 64;
            self.buffer = bits.checked_shr(nbits - self.nbits).unwrap_or(0);
        }
        debug_assert!(self.nbits < 64);
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.nbits % 8 != 0 {
            self.put(0, 8 - self.nbits % 8);
        }
        if self.nbits > 0 {
            self.writer
                .write_all(&self.buffer.to_le_bytes()[..self.nbits as usize / 8])
                .unwrap();
            self.buffer = 0;
            self.nbits = 0;
        }
        Ok(())
    }
}

fn write_single_entry_huffman_tree(w: &mut BitWriter<'_>, symbol: u8) -> io::Result<()> {
    w.write_bits(1, 2)?;
    if symbol <= 1 {
        w.write_bits(0, 1)?;
        w.write_bits(u64::from(symbol), 1)?;
    } else {
        w.write_bits(1, 1)?;
        w.write_bits(u64::from(symbol), 8)?;
    }
    Ok(())
}

fn build_huffman_tree(
    frequencies: &[u32],
    lengths: &mut [u8],
    codes: &mut [u16],
    length_limit: u8,
) -> bool {
    assert_eq!(frequencies.len(), lengths.len());
    assert_eq!(frequencies.len(), codes.len());

    if frequencies.iter().filter(|&&f| f > 0).count() <= 1 {
        lengths.fill(0);
        codes.fill(0);
        return false;
    }

    #[derive(Eq, PartialEq, Copy, Clone, Debug)]
    struct Item(u32, u16);
    impl Ord for Item {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            other.0.cmp(&self.0)
        }
    }
    impl PartialOrd for Item {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }

    // Build a huffman tree
    let mut internal_nodes = Vec::new();
    let mut nodes = BinaryHeap::from_iter(
        frequencies
            .iter()
            .enumerate()
            .filter(|(_, &frequency)| frequency > 0)
            .map(|(i, &frequency)| Item(frequency, i as u16)),
    );
    while nodes.len() > 1 {
        let Item(frequency1, index1) = nodes.pop().unwrap();
        let mut root = nodes.peek_mut().unwrap();
        internal_nodes.push((index1, root.1));
        *root = Item(
            frequency1 + root.0,
            internal_nodes.len() as u16 + frequencies.len() as u16 - 1,
        );
    }

    // Walk the tree to assign code lengths
    lengths.fill(0);
    let mut stack = Vec::new();
    stack.push((nodes.pop().unwrap().1, 0));
    while let Some((node, depth)) = stack.pop() {
        let node = node as usize;
        if node < frequencies.len() {
            lengths[node] = depth as u8;
        } else {
            let (left, right) = internal_nodes[node - frequencies.len()];
            stack.push((left, depth + 1));
            stack.push((right, depth + 1));
        }
    }

    // Limit the codes to length length_limit
    let mut max_length = 0;
    for &length in lengths.iter() {
        max_length = max_length.max(length);
    }
    if max_length > length_limit {
        let mut counts = [0u32; 16];
        for &length in lengths.iter() {
            counts[length.min(length_limit) as usize] += 1;
        }

        let mut total = 0;
        for (i, count) in counts
            .iter()
            .enumerate()
            .skip(1)
            .take(length_limit as usize)
        {
            total += count << (length_limit as usize - i);
        }

        while total > 1u32 << length_limit {
            let mut i = length_limit as usize - 1;
            while counts[i] == 0 {
                i -= 1;
            }
            counts[i] -= 1;
            counts[length_limit as usize] -= 1;
            counts[i + 1] += 2;
            total -= 1;
        }

        // assign new lengths
        let mut len = length_limit;
        let mut indexes = frequencies.iter().copied().enumerate().collect::<Vec<_>>();
        // A stable sort, so that symbols of equal frequency keep their order: the unstable
        // sort's order among them depended on the size of the elements, `(usize, u32)`, 8
        // bytes on wasm32 and 16 on x86-64, and the two builds wrote different (equally valid)
        // codes for the same image.
        indexes.sort_by_key(|&(_, frequency)| frequency);
        for &(i, frequency) in &indexes {
            if frequency > 0 {
                while counts[len as usize] == 0 {
                    len -= 1;
                }
                lengths[i] = len;
                counts[len as usize] -= 1;
            }
        }
    }

    // Assign codes
    codes.fill(0);
    let mut code = 0u32;
    for len in 1..=length_limit {
        for (i, &length) in lengths.iter().enumerate() {
            if length == len {
                codes[i] = (code as u16).reverse_bits() >> (16 - len);
                code += 1;
            }
        }
        code <<= 1;
    }
    assert_eq!(code, 2 << length_limit);

    true
}

fn write_huffman_tree(
    w: &mut BitWriter<'_>,
    frequencies: &[u32],
    lengths: &mut [u8],
    codes: &mut [u16],
) -> io::Result<()> {
    if !build_huffman_tree(frequencies, lengths, codes, 15) {
        let symbol = frequencies
            .iter()
            .position(|&frequency| frequency > 0)
            .unwrap_or(0);
        return write_single_entry_huffman_tree(w, symbol as u8);
    }

    let mut code_length_lengths = [0u8; 16];
    let mut code_length_codes = [0u16; 16];
    let mut code_length_frequencies = [0u32; 16];
    for &length in lengths.iter() {
        code_length_frequencies[length as usize] += 1;
    }
    let single_code_length_length = !build_huffman_tree(
        &code_length_frequencies,
        &mut code_length_lengths,
        &mut code_length_codes,
        7,
    );

    const CODE_LENGTH_ORDER: [usize; 19] = [
        17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    ];

    // Write the huffman tree
    w.write_bits(0, 1)?; // normal huffman tree
    w.write_bits(19 - 4, 4)?; // num_code_lengths - 4

    for i in CODE_LENGTH_ORDER {
        if i > 15 || code_length_frequencies[i] == 0 {
            w.write_bits(0, 3)?;
        } else if single_code_length_length {
            w.write_bits(1, 3)?;
        } else {
            w.write_bits(u64::from(code_length_lengths[i]), 3)?;
        }
    }

    match lengths.len() {
        256 => {
            w.write_bits(1, 1)?; // max_symbol is stored
            w.write_bits(3, 3)?; // max_symbol_nbits / 2 - 2
            w.write_bits(254, 8)?; // max_symbol - 2
        }
        280 => w.write_bits(0, 1)?,
        _ => unreachable!(),
    }

    // Write the huffman codes
    if !single_code_length_length {
        for &len in lengths.iter() {
            w.write_bits(
                u64::from(code_length_codes[len as usize]),
                code_length_lengths[len as usize],
            )?;
        }
    }

    Ok(())
}

const fn length_to_symbol(len: u16) -> (u16, u8) {
    let len = len - 1;
    let highest_bit = len.ilog2() as u16;
    let second_highest_bit = (len >> (highest_bit - 1)) & 1;
    let extra_bits = highest_bit - 1;
    let symbol = 2 * highest_bit + second_highest_bit;
    (symbol, extra_bits as u8)
}

/// How many pixels after `pixels[i]` repeat it, at most 4096 (a longer run goes on with the
/// pixel as a literal again). A pixel unlike the next, the common case, takes no loop: in
/// WebAssembly every loop header checks the time limit.
#[inline(always)]
fn run_after(pixels: &[[u8; 4]], i: usize) -> usize {
    let pixel = pixels[i];
    let rest = &pixels[i + 1..];
    if rest.first() != Some(&pixel) {
        return 0;
    }
    let rest = &rest[1..rest.len().min(4096)];
    1 + rest.iter().position(|p| *p != pixel).unwrap_or(rest.len())
}

/// The length symbol of a run of `run` (1 to 4096) pixels, counted from 256 in the green
/// alphabet, with the number of extra bits that follow it and their value.
#[inline(always)]
fn run_symbol(run: usize) -> (usize, u32, u64) {
    if run <= 4 {
        (256 + run - 1, 0, 0)
    } else {
        let (symbol, extra_bits) = length_to_symbol(run as u16);
        (
            256 + symbol as usize,
            u32::from(extra_bits),
            (run as u64 - 1) & ((1 << extra_bits) - 1),
        )
    }
}

/// A number for each symbol of the four Huffman alphabets: green and run lengths (1), red
/// (0), blue (2) and alpha (3). The symbols' frequencies, or their codes (`code_table`).
struct Alphabets {
    green: [u32; 280],
    red: [u32; 256],
    blue: [u32; 256],
    alpha: [u32; 256],
}

/// Counts the symbols that `write_pixels` writes for `pixels`: each pixel's green, red and
/// blue where the image has colour (`COLOR`), alpha where it has alpha (`ALPHA`), and a run of
/// the same pixel after it as one length symbol.
fn count_symbols<const COLOR: bool, const ALPHA: bool>(pixels: &[[u8; 4]], f: &mut Alphabets) {
    let mut i = 0;
    while i < pixels.len() {
        let pixel = pixels[i];
        f.green[pixel[1] as usize] += 1;
        if COLOR {
            f.red[pixel[0] as usize] += 1;
            f.blue[pixel[2] as usize] += 1;
        }
        if ALPHA {
            f.alpha[pixel[3] as usize] += 1;
        }
        let run = run_after(pixels, i);
        if run > 0 {
            f.green[run_symbol(run).0] += 1;
        }
        i += 1 + run;
    }
}

/// A Huffman alphabet's codes with their lengths, one entry per symbol: the code in the low
/// 16 bits and its length above them, so that writing a channel takes one lookup.
fn code_table<const N: usize>(codes: &[u16; N], lengths: &[u8; N]) -> [u32; N] {
    std::array::from_fn(|i| u32::from(codes[i]) | u32::from(lengths[i]) << 16)
}

/// A table entry's code and length.
#[inline(always)]
fn code_and_length(entry: u32) -> (u64, u32) {
    (u64::from(entry & 0xffff), entry >> 16)
}

/// Writes the pixels with the codes of `tables`, the symbols that `count_symbols` counts: for
/// each pixel its channels' codes in the order green, red, blue, alpha, then a run of the
/// same pixel after it.
///
/// The bit buffer and its count are locals for the loop: `w` itself lives in memory (the
/// functions that write the headers and trees take its address), and in WebAssembly every
/// write through it stored both and loaded them back.
fn write_pixels<const COLOR: bool, const ALPHA: bool>(
    w: &mut BitWriter<'_>,
    pixels: &[[u8; 4]],
    tables: &Alphabets,
) {
    let mut bits = BitWriter {
        writer: &mut *w.writer,
        buffer: w.buffer,
        nbits: w.nbits,
    };
    let mut i = 0;
    while i < pixels.len() {
        let pixel = pixels[i];
        let (mut code, mut len) = code_and_length(tables.green[pixel[1] as usize]);
        if COLOR {
            let (red, red_len) = code_and_length(tables.red[pixel[0] as usize]);
            let (blue, blue_len) = code_and_length(tables.blue[pixel[2] as usize]);
            code |= red << len | blue << (len + red_len);
            len += red_len + blue_len;
        }
        if ALPHA {
            let (alpha, alpha_len) = code_and_length(tables.alpha[pixel[3] as usize]);
            code |= alpha << len;
            len += alpha_len;
        }
        bits.put(code, len);
        let run = run_after(pixels, i);
        if run > 0 {
            let (symbol, extra_len, extra) = run_symbol(run);
            let (code, len) = code_and_length(tables.green[symbol]);
            bits.put(code | extra << len, len + extra_len);
        }
        i += 1 + run;
    }
    let (buffer, nbits) = (bits.buffer, bits.nbits);
    w.buffer = buffer;
    w.nbits = nbits;
}

/// Allows fine-tuning some encoder parameters.
///
/// Pass to [`WebPEncoder::set_params()`].
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct EncoderParams {
    /// Use a predictor transform. Enabled by default.
    pub use_predictor_transform: bool,
}

impl Default for EncoderParams {
    fn default() -> Self {
        Self {
            use_predictor_transform: true,
        }
    }
}

/// The RGBA pixels of `data`, whose pixels have `N` bytes each, as `pixel` maps them: four
/// at a time (a 16-byte array each) and then the last ones one by one.
fn expand_pixels<const N: usize>(data: &[u8], pixel: impl Fn(&[u8; N]) -> [u8; 4]) -> Vec<u8> {
    let one = |p: &[u8]| pixel(p.try_into().unwrap());
    let groups = data.chunks_exact(4 * N);
    let rest = groups.remainder();
    // One group more than needed, so that the last pixels fit without a reallocation.
    let mut pixels: Vec<[u8; 16]> = Vec::with_capacity(groups.len() + 1);
    pixels.extend(groups.map(|group| {
        let mut out = [0; 16];
        for (o, p) in out.chunks_exact_mut(4).zip(group.chunks_exact(N)) {
            o.copy_from_slice(&one(p));
        }
        out
    }));
    let mut pixels = pixels.into_flattened();
    pixels.extend(rest.chunks_exact(N).flat_map(one));
    pixels
}

/// An RGB pixel as RGBA, with the subtract green transform.
fn rgb_subtract_green(p: &[u8; 3]) -> [u8; 4] {
    [p[0].wrapping_sub(p[1]), p[1], p[2].wrapping_sub(p[1]), 255]
}

/// An RGBA pixel with the subtract green transform.
fn rgba_subtract_green(p: &[u8; 4]) -> [u8; 4] {
    [p[0].wrapping_sub(p[1]), p[1], p[2].wrapping_sub(p[1]), p[3]]
}

/// The RGB and RGBA expansion with the subtract green transform in WebAssembly SIMD128, where
/// LLVM makes byte-by-byte code of `expand_pixels`: sixteen RGB pixels (three vectors) or
/// four RGBA pixels (one) at a time, the same bytes.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use core::arch::wasm32::*;

    use super::{expand_pixels, rgb_subtract_green, rgba_subtract_green};

    fn load(bytes: &[u8]) -> v128 {
        let half = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        u64x2(half(0), half(8))
    }

    fn store(v: v128) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&u64x2_extract_lane::<0>(v).to_le_bytes());
        out[8..].copy_from_slice(&u64x2_extract_lane::<1>(v).to_le_bytes());
        out
    }

    /// Four RGBA pixels minus their green in red and blue.
    fn subtract_green(v: v128) -> v128 {
        let green = i8x16_shuffle::<1, 16, 1, 16, 5, 16, 5, 16, 9, 16, 9, 16, 13, 16, 13, 16>(
            v,
            u8x16_splat(0),
        );
        i8x16_sub(v, green)
    }

    pub(super) fn expand_rgb(data: &[u8]) -> Vec<u8> {
        let alpha = u32x4_splat(0xff00_0000);
        let groups = data.chunks_exact(48);
        let rest = groups.remainder();
        let mut pixels: Vec<[[u8; 16]; 4]> = Vec::with_capacity(groups.len() + 1);
        pixels.extend(groups.map(|group| {
            let (a, b, c) = (load(&group[..16]), load(&group[16..32]), load(&group[32..]));
            // Pixels 0-3 from bytes 0-11, 4-7 from 12-23, 8-11 from 24-35, 12-15 from 36-47;
            // the alpha lanes take any byte, then 0xff from `alpha`.
            let p0 = i8x16_shuffle::<0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8, 0, 9, 10, 11, 0>(a, a);
            let p1 =
                i8x16_shuffle::<12, 13, 14, 0, 15, 16, 17, 0, 18, 19, 20, 0, 21, 22, 23, 0>(a, b);
            let p2 =
                i8x16_shuffle::<8, 9, 10, 0, 11, 12, 13, 0, 14, 15, 16, 0, 17, 18, 19, 0>(b, c);
            let p3 = i8x16_shuffle::<4, 5, 6, 0, 7, 8, 9, 0, 10, 11, 12, 0, 13, 14, 15, 0>(c, c);
            [p0, p1, p2, p3].map(|p| store(subtract_green(v128_or(p, alpha))))
        }));
        let mut pixels = pixels.into_flattened().into_flattened();
        pixels.extend_from_slice(&expand_pixels(rest, rgb_subtract_green));
        pixels
    }

    pub(super) fn expand_rgba(data: &[u8]) -> Vec<u8> {
        let groups = data.chunks_exact(16);
        let rest = groups.remainder();
        let mut pixels: Vec<[u8; 16]> = Vec::with_capacity(groups.len() + 1);
        pixels.extend(groups.map(|group| store(subtract_green(load(group)))));
        let mut pixels = pixels.into_flattened();
        pixels.extend_from_slice(&expand_pixels(rest, rgba_subtract_green));
        pixels
    }
}

/// Encode image data with the indicated color type.
///
/// # Panics
///
/// Panics if the image data is not of the indicated dimensions.
fn encode_frame(
    writer: &mut Frame,
    data: &[u8],
    width: u32,
    height: u32,
    color: ColorType,
    params: EncoderParams,
) -> Result<(), EncodingError> {
    let w = &mut BitWriter {
        writer,
        buffer: 0,
        nbits: 0,
    };

    let (is_color, is_alpha, bytes_per_pixel) = match color {
        ColorType::L8 => (false, false, 1),
        ColorType::La8 => (false, true, 2),
        ColorType::Rgb8 => (true, false, 3),
        ColorType::Rgba8 => (true, true, 4),
    };

    assert_eq!(
        (u64::from(width) * u64::from(height)).saturating_mul(bytes_per_pixel),
        data.len() as u64
    );

    if width == 0 || width > 16384 || height == 0 || height > 16384 {
        return Err(EncodingError::InvalidDimensions);
    }

    w.write_bits(0x2f, 8)?; // signature
    w.write_bits(u64::from(width) - 1, 14)?;
    w.write_bits(u64::from(height) - 1, 14)?;

    w.write_bits(u64::from(is_alpha), 1)?; // alpha used
    w.write_bits(0x0, 3)?; // version

    // subtract green transform
    w.write_bits(0b101, 3)?;

    // predictor transform
    if params.use_predictor_transform {
        w.write_bits(0b111001, 6)?;
        w.write_bits(0x0, 1)?; // no color cache
        write_single_entry_huffman_tree(w, 2)?;
        for _ in 0..4 {
            write_single_entry_huffman_tree(w, 0)?;
        }
    }

    // transforms done
    w.write_bits(0x0, 1)?;

    // color cache
    w.write_bits(0x0, 1)?;

    // meta-huffman codes
    w.write_bits(0x0, 1)?;

    // expand to RGBA and compute the subtract green transform, in one pass that writes whole
    // pixels straight into a buffer of the right size (a `flat_map` is collected byte by
    // byte, with a capacity check each time); SIMD128 shuffles for RGB and RGBA in wasm
    let mut pixels = match color {
        ColorType::L8 => expand_pixels(data, |p: &[u8; 1]| [0, p[0], 0, 255]),
        ColorType::La8 => expand_pixels(data, |p: &[u8; 2]| [0, p[0], 0, p[1]]),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        ColorType::Rgb8 => simd128::expand_rgb(data),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        ColorType::Rgba8 => simd128::expand_rgba(data),
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        ColorType::Rgb8 => expand_pixels(data, rgb_subtract_green),
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        ColorType::Rgba8 => expand_pixels(data, rgba_subtract_green),
    };

    // compute predictor transform
    if params.use_predictor_transform {
        let row_bytes = width as usize * 4;
        for y in (1..height as usize).rev() {
            let (prev, current) =
                pixels[(y - 1) * row_bytes..][..row_bytes * 2].split_at_mut(row_bytes);
            for (c, p) in current.iter_mut().zip(prev) {
                *c = c.wrapping_sub(*p);
            }
        }
        for i in (4..row_bytes).rev() {
            pixels[i] = pixels[i].wrapping_sub(pixels[i - 4]);
        }
        pixels[3] = pixels[3].wrapping_sub(255);
    }

    // compute frequencies
    let pixels = pixels.as_chunks::<4>().0;
    let mut frequencies = Alphabets {
        green: [0; 280],
        red: [0; 256],
        blue: [0; 256],
        alpha: [0; 256],
    };
    match color {
        ColorType::L8 => {
            frequencies.red[0] = 1;
            frequencies.blue[0] = 1;
            frequencies.alpha[0] = 1;
            count_symbols::<false, false>(pixels, &mut frequencies);
        }
        ColorType::La8 => {
            frequencies.red[0] = 1;
            frequencies.blue[0] = 1;
            count_symbols::<false, true>(pixels, &mut frequencies);
        }
        ColorType::Rgb8 => {
            frequencies.alpha[0] = 1;
            count_symbols::<true, false>(pixels, &mut frequencies);
        }
        ColorType::Rgba8 => count_symbols::<true, true>(pixels, &mut frequencies),
    }

    // compute and write huffman codes
    let mut lengths0 = [0u8; 256];
    let mut lengths1 = [0u8; 280];
    let mut lengths2 = [0u8; 256];
    let mut lengths3 = [0u8; 256];
    let mut codes0 = [0u16; 256];
    let mut codes1 = [0u16; 280];
    let mut codes2 = [0u16; 256];
    let mut codes3 = [0u16; 256];
    write_huffman_tree(w, &frequencies.green, &mut lengths1, &mut codes1)?;
    if is_color {
        write_huffman_tree(w, &frequencies.red, &mut lengths0, &mut codes0)?;
        write_huffman_tree(w, &frequencies.blue, &mut lengths2, &mut codes2)?;
    } else {
        write_single_entry_huffman_tree(w, 0)?;
        write_single_entry_huffman_tree(w, 0)?;
    }
    if is_alpha {
        write_huffman_tree(w, &frequencies.alpha, &mut lengths3, &mut codes3)?;
    } else if params.use_predictor_transform {
        write_single_entry_huffman_tree(w, 0)?;
    } else {
        write_single_entry_huffman_tree(w, 255)?;
    }
    write_single_entry_huffman_tree(w, 1)?;

    // Write image data
    let tables = Alphabets {
        green: code_table(&codes1, &lengths1),
        red: code_table(&codes0, &lengths0),
        blue: code_table(&codes2, &lengths2),
        alpha: code_table(&codes3, &lengths3),
    };
    match color {
        ColorType::L8 => write_pixels::<false, false>(w, pixels, &tables),
        ColorType::La8 => write_pixels::<false, true>(w, pixels, &tables),
        ColorType::Rgb8 => write_pixels::<true, false>(w, pixels, &tables),
        ColorType::Rgba8 => write_pixels::<true, true>(w, pixels, &tables),
    }

    w.flush()?;
    Ok(())
}

const fn chunk_size(inner_bytes: usize) -> u32 {
    if inner_bytes % 2 == 1 {
        (inner_bytes + 1) as u32 + 8
    } else {
        inner_bytes as u32 + 8
    }
}

fn write_chunk<W: Write>(w: W, name: &[u8], data: &[u8]) -> io::Result<()> {
    write_chunk_parts(w, name, data.len(), std::iter::once(data))
}

/// Writes a chunk of `len` bytes given in `parts`.
fn write_chunk_parts<'a, W: Write>(
    mut w: W,
    name: &[u8],
    len: usize,
    parts: impl Iterator<Item = &'a [u8]>,
) -> io::Result<()> {
    debug_assert!(name.len() == 4);

    w.write_all(name)?;
    w.write_all(&(len as u32).to_le_bytes())?;
    for part in parts {
        w.write_all(part)?;
    }
    if len % 2 == 1 {
        w.write_all(&[0])?;
    }
    Ok(())
}

/// WebP Encoder.
pub struct WebPEncoder<W> {
    writer: W,
    icc_profile: Vec<u8>,
    exif_metadata: Vec<u8>,
    xmp_metadata: Vec<u8>,
    params: EncoderParams,
}

impl<W: Write> WebPEncoder<W> {
    /// Create a new encoder that writes its output to `w`.
    ///
    /// Only supports "VP8L" lossless encoding.
    pub fn new(w: W) -> Self {
        Self {
            writer: w,
            icc_profile: Vec::new(),
            exif_metadata: Vec::new(),
            xmp_metadata: Vec::new(),
            params: EncoderParams::default(),
        }
    }

    /// Set the ICC profile to use for the image.
    pub fn set_icc_profile(&mut self, icc_profile: Vec<u8>) {
        self.icc_profile = icc_profile;
    }

    /// Set the EXIF metadata to use for the image.
    pub fn set_exif_metadata(&mut self, exif_metadata: Vec<u8>) {
        self.exif_metadata = exif_metadata;
    }

    /// Set the XMP metadata to use for the image.
    pub fn set_xmp_metadata(&mut self, xmp_metadata: Vec<u8>) {
        self.xmp_metadata = xmp_metadata;
    }

    /// Set the `EncoderParams` to use.
    pub fn set_params(&mut self, params: EncoderParams) {
        self.params = params;
    }

    /// Encode image data with the indicated color type.
    ///
    /// # Panics
    ///
    /// Panics if the image data is not of the indicated dimensions.
    pub fn encode(
        mut self,
        data: &[u8],
        width: u32,
        height: u32,
        color: ColorType,
    ) -> Result<(), EncodingError> {
        let mut frame = Frame::default();
        encode_frame(&mut frame, data, width, height, color, self.params)?;

        // If the image has no metadata, it can be encoded with the "simple" WebP container format.
        if self.icc_profile.is_empty()
            && self.exif_metadata.is_empty()
            && self.xmp_metadata.is_empty()
        {
            self.writer.write_all(b"RIFF")?;
            self.writer
                .write_all(&(chunk_size(frame.len()) + 4).to_le_bytes())?;
            self.writer.write_all(b"WEBP")?;
            write_chunk_parts(&mut self.writer, b"VP8L", frame.len(), frame.parts())?;
        } else {
            let mut total_bytes = 22 + chunk_size(frame.len());
            if !self.icc_profile.is_empty() {
                total_bytes += chunk_size(self.icc_profile.len());
            }
            if !self.exif_metadata.is_empty() {
                total_bytes += chunk_size(self.exif_metadata.len());
            }
            if !self.xmp_metadata.is_empty() {
                total_bytes += chunk_size(self.xmp_metadata.len());
            }

            let mut flags = 0;
            if !self.xmp_metadata.is_empty() {
                flags |= 1 << 2;
            }
            if !self.exif_metadata.is_empty() {
                flags |= 1 << 3;
            }
            if let ColorType::La8 | ColorType::Rgba8 = color {
                flags |= 1 << 4;
            }
            if !self.icc_profile.is_empty() {
                flags |= 1 << 5;
            }

            self.writer.write_all(b"RIFF")?;
            self.writer.write_all(&total_bytes.to_le_bytes())?;
            self.writer.write_all(b"WEBP")?;

            let mut vp8x = Vec::new();
            vp8x.write_all(&[flags])?; // flags
            vp8x.write_all(&[0; 3])?; // reserved
            vp8x.write_all(&(width - 1).to_le_bytes()[..3])?; // canvas width
            vp8x.write_all(&(height - 1).to_le_bytes()[..3])?; // canvas height
            write_chunk(&mut self.writer, b"VP8X", &vp8x)?;

            if !self.icc_profile.is_empty() {
                write_chunk(&mut self.writer, b"ICCP", &self.icc_profile)?;
            }

            write_chunk_parts(&mut self.writer, b"VP8L", frame.len(), frame.parts())?;

            if !self.exif_metadata.is_empty() {
                write_chunk(&mut self.writer, b"EXIF", &self.exif_metadata)?;
            }

            if !self.xmp_metadata.is_empty() {
                write_chunk(&mut self.writer, b"XMP ", &self.xmp_metadata)?;
            }
        }

        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::RngCore;

    use super::*;

    #[test]
    fn write_webp() {
        let mut img = vec![0; 256 * 256 * 4];
        rand::thread_rng().fill_bytes(&mut img);

        let mut output = Vec::new();
        WebPEncoder::new(&mut output)
            .encode(&img, 256, 256, crate::ColorType::Rgba8)
            .unwrap();

        let mut decoder = crate::WebPDecoder::new(std::io::Cursor::new(output)).unwrap();
        let mut img2 = vec![0; 256 * 256 * 4];
        decoder.read_image(&mut img2).unwrap();
        assert_eq!(img, img2);
    }

    #[test]
    fn write_webp_gray() {
        let mut gray = vec![0; 97 * 61 * 2];
        rand::thread_rng().fill_bytes(&mut gray);
        for (color, bytes, channels) in [
            (crate::ColorType::L8, &gray[..97 * 61], 3),
            (crate::ColorType::La8, &gray[..], 4),
        ] {
            let mut output = Vec::new();
            WebPEncoder::new(&mut output)
                .encode(bytes, 97, 61, color)
                .unwrap();

            let mut decoder = crate::WebPDecoder::new(std::io::Cursor::new(output)).unwrap();
            let mut img = vec![0; 97 * 61 * channels];
            decoder.read_image(&mut img).unwrap();
            let expected: Vec<u8> = bytes
                .chunks_exact(channels - 2)
                .flat_map(|p| [p[0], p[0], p[0], p[p.len() - 1]][..channels].to_vec())
                .collect();
            assert_eq!(img, expected, "{color:?}");
        }
    }

    /// Runs of a repeated pixel are written as length symbols (of at most 4096 pixels each):
    /// every colour type with runs from one pixel to longer than the longest.
    #[test]
    fn write_webp_runs() {
        let (width, height) = (1000u32, 23u32);
        let mut rng = rand::thread_rng();
        let mut rgba = Vec::new();
        let mut lengths = [
            1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 100, 4095, 4096, 4097, 8193,
        ]
        .iter()
        .cycle();
        while rgba.len() < (width * height * 4) as usize {
            let mut pixel = [0; 4];
            rng.fill_bytes(&mut pixel);
            for _ in 0..*lengths.next().unwrap() {
                rgba.extend_from_slice(&pixel);
            }
        }
        rgba.truncate((width * height * 4) as usize);
        for (color, channels) in [
            (crate::ColorType::L8, 1),
            (crate::ColorType::La8, 2),
            (crate::ColorType::Rgb8, 3),
            (crate::ColorType::Rgba8, 4),
        ] {
            let bytes: Vec<u8> = rgba
                .chunks_exact(4)
                .flat_map(|p| p[4 - channels..].to_vec())
                .collect();
            let mut output = Vec::new();
            WebPEncoder::new(&mut output)
                .encode(&bytes, width, height, color)
                .unwrap();

            let mut decoder = crate::WebPDecoder::new(std::io::Cursor::new(output)).unwrap();
            let decoded_channels = if decoder.has_alpha() { 4 } else { 3 };
            let mut img = vec![0; (width * height) as usize * decoded_channels];
            decoder.read_image(&mut img).unwrap();
            let expected: Vec<u8> = bytes
                .chunks_exact(channels)
                .flat_map(|p| match channels {
                    1 => vec![p[0], p[0], p[0]],
                    2 => vec![p[0], p[0], p[0], p[1]],
                    _ => p.to_vec(),
                })
                .collect();
            assert!(img == expected, "{color:?}");
        }
    }

    #[test]
    fn write_webp_exif() {
        let mut img = vec![0; 256 * 256 * 3];
        rand::thread_rng().fill_bytes(&mut img);

        let mut exif = vec![0; 10];
        rand::thread_rng().fill_bytes(&mut exif);

        let mut output = Vec::new();
        let mut encoder = WebPEncoder::new(&mut output);
        encoder.set_exif_metadata(exif.clone());
        encoder
            .encode(&img, 256, 256, crate::ColorType::Rgb8)
            .unwrap();

        let mut decoder = crate::WebPDecoder::new(std::io::Cursor::new(output)).unwrap();

        let mut img2 = vec![0; 256 * 256 * 3];
        decoder.read_image(&mut img2).unwrap();
        assert_eq!(img, img2);

        let exif2 = decoder.exif_metadata().unwrap();
        assert_eq!(Some(exif), exif2);
    }

    #[test]
    fn roundtrip_libwebp() {
        roundtrip_libwebp_params(EncoderParams::default());
        roundtrip_libwebp_params(EncoderParams {
            use_predictor_transform: false,
            ..Default::default()
        });
    }

    fn roundtrip_libwebp_params(params: EncoderParams) {
        println!("Testing {params:?}");

        let mut img = vec![0; 256 * 256 * 4];
        rand::thread_rng().fill_bytes(&mut img);

        let mut output = Vec::new();
        let mut encoder = WebPEncoder::new(&mut output);
        encoder.set_params(params.clone());
        encoder
            .encode(&img[..256 * 256 * 3], 256, 256, crate::ColorType::Rgb8)
            .unwrap();
        let decoded = webp::Decoder::new(&output).decode().unwrap();
        assert_eq!(img[..256 * 256 * 3], *decoded);

        let mut output = Vec::new();
        let mut encoder = WebPEncoder::new(&mut output);
        encoder.set_params(params.clone());
        encoder
            .encode(&img, 256, 256, crate::ColorType::Rgba8)
            .unwrap();
        let decoded = webp::Decoder::new(&output).decode().unwrap();
        assert_eq!(img, *decoded);

        let mut output = Vec::new();
        let mut encoder = WebPEncoder::new(&mut output);
        encoder.set_params(params.clone());
        encoder.set_icc_profile(vec![0; 10]);
        encoder
            .encode(&img, 256, 256, crate::ColorType::Rgba8)
            .unwrap();
        let decoded = webp::Decoder::new(&output).decode().unwrap();
        assert_eq!(img, *decoded);

        let mut output = Vec::new();
        let mut encoder = WebPEncoder::new(&mut output);
        encoder.set_params(params.clone());
        encoder.set_exif_metadata(vec![0; 10]);
        encoder
            .encode(&img, 256, 256, crate::ColorType::Rgba8)
            .unwrap();
        let decoded = webp::Decoder::new(&output).decode().unwrap();
        assert_eq!(img, *decoded);

        let mut output = Vec::new();
        let mut encoder = WebPEncoder::new(&mut output);
        encoder.set_params(params);
        encoder.set_xmp_metadata(vec![0; 7]);
        encoder.set_icc_profile(vec![0; 8]);
        encoder.set_icc_profile(vec![0; 9]);
        encoder
            .encode(&img, 256, 256, crate::ColorType::Rgba8)
            .unwrap();
        let decoded = webp::Decoder::new(&output).decode().unwrap();
        assert_eq!(img, *decoded);
    }
}
