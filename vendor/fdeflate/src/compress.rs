use simd_adler32::Adler32;
use std::io::{self, Seek, SeekFrom, Write};

use crate::tables::{
    BITMASKS, HUFFMAN_CODES, HUFFMAN_LENGTHS, LENGTH_TO_LEN_EXTRA, LENGTH_TO_SYMBOL,
};

/// Compressor that produces fdeflate compressed streams.
pub struct Compressor<W: Write> {
    checksum: Adler32,
    buffer: u64,
    nbits: u8,
    writer: W,
}
impl<W: Write> Compressor<W> {
    // Inlined into the loops that call it, as LLVM does natively but not for WebAssembly,
    // where the call kept the bit buffer in memory instead of in registers.
    #[inline(always)]
    fn write_bits(&mut self, bits: u64, nbits: u8) -> io::Result<()> {
        debug_assert!(nbits <= 64);

        self.buffer |= bits << self.nbits;
        self.nbits += nbits;

        if self.nbits >= 64 {
            self.writer.write_all(&self.buffer.to_le_bytes())?;
            self.nbits -= 64;
            self.buffer = bits.checked_shr((nbits - self.nbits) as u32).unwrap_or(0);
        }
        debug_assert!(self.nbits < 64);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.nbits % 8 != 0 {
            self.write_bits(0, 8 - self.nbits % 8)?;
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

    /// Create a new Compressor.
    pub fn new(writer: W) -> io::Result<Self> {
        let mut compressor = Self {
            checksum: Adler32::new(),
            buffer: 0,
            nbits: 0,
            writer,
        };
        compressor.write_headers()?;
        Ok(compressor)
    }

    fn write_headers(&mut self) -> io::Result<()> {
        const HEADER: [u8; 54] = [
            120, 1, 237, 192, 3, 160, 36, 89, 150, 198, 241, 255, 119, 238, 141, 200, 204, 167,
            114, 75, 99, 174, 109, 219, 182, 109, 219, 182, 109, 219, 182, 109, 105, 140, 158, 150,
            74, 175, 158, 50, 51, 34, 238, 249, 118, 183, 106, 122, 166, 135, 59, 107, 213, 15,
        ];
        self.writer.write_all(&HEADER[..53]).unwrap();
        self.write_bits(HEADER[53] as u64, 5)?;

        Ok(())
    }

    /// Write data to the compressor.
    ///
    /// The bits are gathered in a [`BitSink`] held in locals, so that the bit buffer stays in
    /// registers, and reach the writer through a staging buffer a few kilobytes at a time
    /// rather than eight bytes per call.
    pub fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        self.checksum.write(data);

        let mut staging = [0u8; STAGING];
        let mut sink = BitSink::new(self.buffer, self.nbits, &mut staging);

        let mut run = 0;
        let mut chunks = data.chunks_exact(8);
        for chunk in &mut chunks {
            if sink.pos > STAGING - MARGIN {
                sink.drain(&mut staging, &mut self.writer)?;
            }
            let ichunk = u64::from_le_bytes(chunk.try_into().unwrap());

            if ichunk == 0 {
                run += 8;
                continue;
            } else if run > 0 {
                let run_extra = ichunk.trailing_zeros() / 8;
                sink.put_run(run + run_extra, &mut staging, &mut self.writer)?;
                run = 0;

                if run_extra > 0 {
                    run = ichunk.leading_zeros() / 8;
                    for &b in &chunk[run_extra as usize..8 - run as usize] {
                        sink.put(
                            HUFFMAN_CODES[b as usize] as u64,
                            HUFFMAN_LENGTHS[b as usize] as u32,
                            &mut staging,
                        );
                    }
                    continue;
                }
            }

            let run_start = ichunk.leading_zeros() / 8;
            if run_start > 0 {
                for &b in &chunk[..8 - run_start as usize] {
                    sink.put(
                        HUFFMAN_CODES[b as usize] as u64,
                        HUFFMAN_LENGTHS[b as usize] as u32,
                        &mut staging,
                    );
                }
                run = run_start;
                continue;
            }

            let n0 = HUFFMAN_LENGTHS[chunk[0] as usize] as u32;
            let n1 = HUFFMAN_LENGTHS[chunk[1] as usize] as u32;
            let n2 = HUFFMAN_LENGTHS[chunk[2] as usize] as u32;
            let n3 = HUFFMAN_LENGTHS[chunk[3] as usize] as u32;
            let bits = HUFFMAN_CODES[chunk[0] as usize] as u64
                | ((HUFFMAN_CODES[chunk[1] as usize] as u64) << n0)
                | ((HUFFMAN_CODES[chunk[2] as usize] as u64) << (n0 + n1))
                | ((HUFFMAN_CODES[chunk[3] as usize] as u64) << (n0 + n1 + n2));
            sink.put(bits, n0 + n1 + n2 + n3, &mut staging);

            let n4 = HUFFMAN_LENGTHS[chunk[4] as usize] as u32;
            let n5 = HUFFMAN_LENGTHS[chunk[5] as usize] as u32;
            let n6 = HUFFMAN_LENGTHS[chunk[6] as usize] as u32;
            let n7 = HUFFMAN_LENGTHS[chunk[7] as usize] as u32;
            let bits2 = HUFFMAN_CODES[chunk[4] as usize] as u64
                | ((HUFFMAN_CODES[chunk[5] as usize] as u64) << n4)
                | ((HUFFMAN_CODES[chunk[6] as usize] as u64) << (n4 + n5))
                | ((HUFFMAN_CODES[chunk[7] as usize] as u64) << (n4 + n5 + n6));
            sink.put(bits2, n4 + n5 + n6 + n7, &mut staging);
        }

        if run > 0 {
            sink.put_run(run, &mut staging, &mut self.writer)?;
        }

        if sink.pos > STAGING - MARGIN {
            sink.drain(&mut staging, &mut self.writer)?;
        }
        for &b in chunks.remainder() {
            sink.put(
                HUFFMAN_CODES[b as usize] as u64,
                HUFFMAN_LENGTHS[b as usize] as u32,
                &mut staging,
            );
        }

        sink.drain(&mut staging, &mut self.writer)?;
        self.buffer = sink.buffer;
        self.nbits = sink.nbits as u8;
        Ok(())
    }

    /// Write the remainder of the stream and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        // Write end of block
        self.write_bits(HUFFMAN_CODES[256] as u64, HUFFMAN_LENGTHS[256])?;
        self.flush()?;

        // Write Adler32 checksum
        let checksum: u32 = self.checksum.finish();
        self.writer
            .write_all(checksum.to_be_bytes().as_ref())
            .unwrap();
        Ok(self.writer)
    }
}

/// Bytes of the staging buffer `Compressor::write_data` gathers its output in.
const STAGING: usize = 4096;
/// Room left in the staging buffer before a chunk of eight input bytes: its codes (at most
/// 14 bytes) plus the eight-byte store that may run past them.
const MARGIN: usize = 64;

/// The bit writer of `Compressor::write_data`: the bits not yet stored (always fewer than
/// eight between calls) and the position in the staging buffer. After each code the whole
/// 64-bit buffer is stored at `pos` and `pos` moves on by the complete bytes, so there is no
/// branch on whether the buffer is full. The stream is the same as `write_bits` makes.
struct BitSink {
    buffer: u64,
    nbits: u32,
    pos: usize,
}

impl BitSink {
    /// Takes over `Compressor`'s bit buffer (up to 63 bits), moving its complete bytes to the
    /// staging buffer.
    #[inline(always)]
    fn new(buffer: u64, nbits: u8, staging: &mut [u8; STAGING]) -> Self {
        let mut sink = Self {
            buffer,
            nbits: u32::from(nbits),
            pos: 0,
        };
        sink.settle(staging);
        sink
    }

    /// Stores the buffer and keeps only its incomplete byte.
    #[inline(always)]
    fn settle(&mut self, staging: &mut [u8; STAGING]) {
        staging[self.pos..self.pos + 8].copy_from_slice(&self.buffer.to_le_bytes());
        let bytes = self.nbits / 8;
        self.pos += bytes as usize;
        // `bytes` is at most 7, so the shift stays below 64.
        self.buffer >>= bytes * 8;
        self.nbits %= 8;
    }

    /// Appends `nbits` bits (at most 56), least significant first.
    #[inline(always)]
    fn put(&mut self, bits: u64, nbits: u32, staging: &mut [u8; STAGING]) {
        debug_assert!(nbits <= 56 && self.nbits < 8);
        self.buffer |= bits << self.nbits;
        self.nbits += nbits;
        self.settle(staging);
    }

    /// Hands the complete bytes gathered so far to the writer.
    fn drain<W: Write>(&mut self, staging: &mut [u8; STAGING], writer: &mut W) -> io::Result<()> {
        writer.write_all(&staging[..self.pos])?;
        self.pos = 0;
        Ok(())
    }

    /// A run of `run` zero bytes: a literal zero, then matches at distance 1.
    ///
    /// Inlined so that the sink's fields stay in registers: a call takes the sink's address,
    /// which in WebAssembly kept them in linear memory, loaded and stored at every code.
    #[inline(always)]
    fn put_run<W: Write>(
        &mut self,
        mut run: u32,
        staging: &mut [u8; STAGING],
        writer: &mut W,
    ) -> io::Result<()> {
        self.put(HUFFMAN_CODES[0] as u64, HUFFMAN_LENGTHS[0] as u32, staging);
        run -= 1;

        while run >= 258 {
            if self.pos > STAGING - MARGIN {
                self.drain(staging, writer)?;
            }
            self.put(
                HUFFMAN_CODES[285] as u64,
                HUFFMAN_LENGTHS[285] as u32 + 1,
                staging,
            );
            run -= 258;
        }

        if run > 4 {
            let sym = LENGTH_TO_SYMBOL[run as usize - 3] as usize;
            self.put(HUFFMAN_CODES[sym] as u64, HUFFMAN_LENGTHS[sym] as u32, staging);

            let len_extra = LENGTH_TO_LEN_EXTRA[run as usize - 3];
            let extra = ((run - 3) & BITMASKS[len_extra as usize]) as u64;
            self.put(extra, len_extra as u32 + 1, staging);
        } else {
            debug_assert_eq!(HUFFMAN_CODES[0], 0);
            self.put(0, run * HUFFMAN_LENGTHS[0] as u32, staging);
        }
        Ok(())
    }
}

/// Compressor that only writes the stored blocks.
///
/// This is useful for writing files that are not compressed, but still need to be wrapped in a
/// zlib stream.
pub struct StoredOnlyCompressor<W> {
    writer: W,
    checksum: Adler32,
    block_bytes: u16,
}
impl<W: Write + Seek> StoredOnlyCompressor<W> {
    /// Creates a new `StoredOnlyCompressor` that writes to the given writer.
    pub fn new(mut writer: W) -> io::Result<Self> {
        writer.write_all(&[0x78, 0x01])?; // zlib header
        writer.write_all(&[0; 5])?; // placeholder stored block header

        Ok(Self {
            writer,
            checksum: Adler32::new(),
            block_bytes: 0,
        })
    }

    fn set_block_header(&mut self, size: u16, last: bool) -> io::Result<()> {
        self.writer.seek(SeekFrom::Current(-(size as i64 + 5)))?;
        self.writer.write_all(&[
            last as u8,
            (size & 0xFF) as u8,
            ((size >> 8) & 0xFF) as u8,
            (!size & 0xFF) as u8,
            ((!size >> 8) & 0xFF) as u8,
        ])?;
        self.writer.seek(SeekFrom::Current(size as i64))?;

        Ok(())
    }

    /// Writes the given data to the underlying writer.
    pub fn write_data(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.checksum.write(data);
        while !data.is_empty() {
            if self.block_bytes == u16::MAX {
                self.set_block_header(u16::MAX, false)?;
                self.writer.write_all(&[0; 5])?; // placeholder stored block header
                self.block_bytes = 0;
            }

            let prefix_bytes = data.len().min((u16::MAX - self.block_bytes) as usize);
            self.writer.write_all(&data[..prefix_bytes])?;
            self.block_bytes += prefix_bytes as u16;
            data = &data[prefix_bytes..];
        }

        Ok(())
    }

    /// Finish writing the final block and return the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.set_block_header(self.block_bytes, true)?;

        // Write Adler32 checksum
        let checksum: u32 = self.checksum.finish();
        self.writer
            .write_all(checksum.to_be_bytes().as_ref())
            .unwrap();

        Ok(self.writer)
    }
}
impl<W> StoredOnlyCompressor<W> {
    /// Return the number of bytes that will be written to the output stream
    /// for the given input size. Because this compressor only writes stored blocks,
    /// the output size is always slightly *larger* than the input size.
    pub fn compressed_size(raw_size: usize) -> usize {
        (raw_size.saturating_sub(1) / u16::MAX as usize) * (u16::MAX as usize + 5)
            + (raw_size % u16::MAX as usize + 5)
            + 6
    }
}

/// Compresses the given data.
pub fn compress_to_vec(input: &[u8]) -> Vec<u8> {
    let mut compressor = Compressor::new(Vec::with_capacity(input.len() / 4)).unwrap();
    compressor.write_data(input).unwrap();
    compressor.finish().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn roundtrip(data: &[u8]) {
        let compressed = compress_to_vec(data);
        let decompressed = miniz_oxide::inflate::decompress_to_vec_zlib(&compressed).unwrap();
        assert_eq!(&decompressed, data);
    }

    #[test]
    fn it_works() {
        roundtrip(b"Hello world!");
    }

    #[test]
    fn constant() {
        roundtrip(&vec![0; 2048]);
        roundtrip(&vec![5; 2048]);
        roundtrip(&vec![128; 2048]);
        roundtrip(&vec![254; 2048]);
    }

    #[test]
    fn random() {
        let mut rng = rand::thread_rng();
        let mut data = vec![0; 2048];
        for _ in 0..10 {
            for byte in &mut data {
                *byte = rng.gen();
            }
            roundtrip(&data);
        }
    }
}
